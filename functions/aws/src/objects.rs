//! The import bucket: uploads in, processed files out, presigned URLs.
//!
//! Its length (about 520 lines): every S3 call the functions make, the
//! multipart upload of the processed file included, in one adapter.

use crate::settings::Settings;
use crate::AwsError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use std::collections::HashMap;
use std::time::Duration;
use tokio::runtime::Handle;

#[derive(Clone)]
pub struct Objects {
    client: Client,
    bucket: String,
}

/// What S3 says about an uploaded object.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub size: u64,
    pub version_id: Option<String>,
    pub etag: Option<String>,
    pub last_modified: chrono::DateTime<chrono::Utc>,
    /// User metadata (`x-amz-meta-*`), lower-case keys.
    pub metadata: HashMap<String, String>,
}

/// A presigned request: where to send it and the headers it must carry.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Presigned {
    pub method: String,
    pub url: String,
    pub headers: HashMap<String, String>,
}

impl Objects {
    pub fn new(client: Client, settings: &Settings) -> Self {
        Objects {
            client,
            bucket: settings.bucket.clone(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The raw SDK client (feature `testing`: the local runner and the
    /// tests only; a function goes through the methods below).
    #[cfg(any(test, feature = "testing"))]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `None` when there is no such object.
    pub async fn head(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<ObjectInfo>, AwsError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                version_id: out.version_id().map(str::to_owned).filter(|v| v != "null"),
                etag: out.e_tag().map(str::to_owned),
                last_modified: out
                    .last_modified()
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                    .unwrap_or_default(),
                metadata: out
                    .metadata()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.to_lowercase(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(AwsError::sdk("s3:HeadObject", err)),
        }
    }

    /// Opens one version of an object as a blocking reader, for the CSV
    /// reader to stream from inside `spawn_blocking`. Without a version id,
    /// `if_match` pins the content that was validated.
    async fn open(
        &self,
        key: &str,
        version: Option<&str>,
        if_match: Option<&str>,
        from: u64,
    ) -> Result<Box<dyn std::io::Read + Send + 'static>, AwsError> {
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range((from > 0).then(|| format!("bytes={from}-")))
            .set_version_id(version.map(str::to_owned))
            .set_if_match(if version.is_none() {
                if_match.map(str::to_owned)
            } else {
                None
            })
            .send()
            .await;
        match result {
            Ok(out) => Ok(Box::new(tokio_util::io::SyncIoBridge::new(
                out.body.into_async_read(),
            ))),
            // A range that starts at the object's end: nothing is left.
            Err(err)
                if from > 0
                    && err
                        .raw_response()
                        .is_some_and(|r| r.status().as_u16() == 416) =>
            {
                Ok(Box::new(std::io::empty()))
            }
            Err(err) => Err(AwsError::sdk("s3:GetObject", err)),
        }
    }

    /// Opens the upload a job reads: the version it pinned, or its content
    /// as validated (ETag) when the bucket keeps no versions.
    pub async fn open_source(
        &self,
        job: &shared::job::Job,
    ) -> Result<Box<dyn std::io::Read + Send + 'static>, AwsError> {
        self.open_source_from(job, 0).await
    }

    /// The job's upload from byte `from` on (where a split goes on).
    pub async fn open_source_from(
        &self,
        job: &shared::job::Job,
        from: u64,
    ) -> Result<Box<dyn std::io::Read + Send + 'static>, AwsError> {
        self.open(
            &job.source_key,
            job.source_version.as_deref(),
            job.source_etag.as_deref(),
            from,
        )
        .await
    }

    /// A writer that uploads what it is given to `key` as it goes (a
    /// multipart upload of [`PART_BYTES`] parts): memory holds one part,
    /// nothing is staged on disk, and an object of any size up to S3's
    /// 10,000 parts (80 GB) can be written. For use off the async threads.
    pub fn writer(&self, runtime: Handle, key: &str, content_type: &str) -> ObjectWriter {
        ObjectWriter {
            objects: self.clone(),
            runtime,
            key: key.to_owned(),
            content_type: content_type.to_owned(),
            upload_id: None,
            parts: Vec::new(),
            buffer: Vec::with_capacity(PART_BYTES),
        }
    }

    /// A writer going on with an upload an earlier writer began (see
    /// [`ObjectWriter::upload_id`]): `parts` parts of `upload_id` (if any)
    /// are kept, a part uploaded after them is uploaded again, and
    /// `pending` was written after them. `None` if that upload is gone
    /// (completed or aborted since): the object must be written anew.
    pub async fn writer_resumed(
        &self,
        runtime: Handle,
        key: &str,
        content_type: &str,
        upload_id: Option<&str>,
        parts: u32,
        pending: Vec<u8>,
    ) -> Result<Option<ObjectWriter>, AwsError> {
        let mut writer = self.writer(runtime, key, content_type);
        writer.buffer = pending;
        writer
            .buffer
            .reserve(PART_BYTES.saturating_sub(writer.buffer.len()));
        let Some(upload_id) = upload_id else {
            return Ok((parts == 0).then_some(writer));
        };
        let call = "s3:ListParts";
        let mut pages = self
            .client
            .list_parts()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(err)
                    if err
                        .raw_response()
                        .is_some_and(|r| r.status().as_u16() == 404) =>
                {
                    return Ok(None)
                }
                Err(err) => return Err(AwsError::sdk(call, err)),
            };
            for part in page.parts() {
                if part.part_number().is_some_and(|n| n as u32 <= parts) {
                    writer.parts.push(
                        CompletedPart::builder()
                            .set_part_number(part.part_number())
                            .set_e_tag(part.e_tag().map(str::to_owned))
                            .build(),
                    );
                }
            }
        }
        if writer.parts.len() != parts as usize {
            return Ok(None);
        }
        writer.upload_id = Some(upload_id.to_owned());
        Ok(Some(writer))
    }

    /// The ids of the versions kept of one object, oldest first; none if
    /// the bucket keeps no versions (or the object is gone).
    pub async fn versions(&self, key: &str) -> Result<Vec<String>, AwsError> {
        let call = "s3:ListObjectVersions";
        let mut versions = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| AwsError::sdk(call, e))?;
            for version in page.versions() {
                match (version.key(), version.version_id()) {
                    (Some(k), Some(id)) if k == key && id != "null" => {
                        let at = version
                            .last_modified()
                            .map(|t| (t.secs(), t.subsec_nanos()));
                        versions.push((at, id.to_owned()));
                    }
                    _ => {}
                }
            }
            // Past the key itself, the listing holds other keys only.
            let past = page.next_key_marker().is_some_and(|k| k != key);
            if !page.is_truncated().unwrap_or(false) || past {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
        // S3 lists a key's versions newest first.
        versions.sort_by_key(|(at, _)| *at);
        Ok(versions.into_iter().map(|(_, id)| id).collect())
    }

    /// Puts a small object in one request.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), AwsError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| AwsError::sdk("s3:PutObject", e))?;
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<(), AwsError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| AwsError::sdk("s3:DeleteObject", e))?;
        Ok(())
    }

    /// An object's bytes, or `None` if there is no such object.
    pub async fn get_bytes_if_any(&self, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None)
            }
            Err(err) => return Err(AwsError::sdk("s3:GetObject", err)),
        };
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| AwsError::new("s3:GetObject", e))?;
        Ok(Some(data.into_bytes().to_vec()))
    }

    pub async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, AwsError> {
        self.get_bytes_if_any(key)
            .await?
            .ok_or_else(|| AwsError::new("s3:GetObject", format!("no object at {key}")))
    }

    /// A URL that can PUT exactly `content_length` bytes to `key`, and
    /// nothing else, until it expires.
    pub async fn presign_upload(
        &self,
        key: &str,
        content_length: u64,
        expires: Duration,
    ) -> Result<Presigned, AwsError> {
        let config =
            PresigningConfig::expires_in(expires).map_err(|e| AwsError::new("s3:presign", e))?;
        self.presign_upload_with(key, content_length, config).await
    }

    /// As [`Self::presign_upload`], with a full presigning configuration
    /// (a fixed start time makes signatures comparable).
    pub async fn presign_upload_with(
        &self,
        key: &str,
        content_length: u64,
        config: PresigningConfig,
    ) -> Result<Presigned, AwsError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(content_length as i64)
            .presigned(config)
            .await
            .map_err(|e| AwsError::sdk("s3:presign PutObject", e))?;
        Ok(Presigned {
            method: request.method().to_owned(),
            url: request.uri().to_owned(),
            headers: request
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    /// A time-limited download link.
    pub async fn presign_download(&self, key: &str, expires: Duration) -> Result<String, AwsError> {
        let config =
            PresigningConfig::expires_in(expires).map_err(|e| AwsError::new("s3:presign", e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| AwsError::sdk("s3:presign GetObject", e))?;
        Ok(request.uri().to_owned())
    }
}

/// The size of each part of an [`ObjectWriter`]'s upload but the last (S3:
/// at least 5 MiB, at most 10,000 parts).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// Writes an object part by part as it is written to (see
/// [`Objects::writer`]); [`ObjectWriter::finish`] completes it. An object
/// smaller than one part is put in one request.
pub struct ObjectWriter {
    objects: Objects,
    runtime: Handle,
    key: String,
    content_type: String,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    buffer: Vec<u8>,
}

impl ObjectWriter {
    /// The multipart upload, once a first part was uploaded.
    pub fn upload_id(&self) -> Option<&str> {
        self.upload_id.as_deref()
    }

    /// Parts uploaded so far.
    pub fn parts(&self) -> u32 {
        self.parts.len() as u32
    }

    /// What was written after the last part (less than a part).
    pub fn pending(&self) -> &[u8] {
        &self.buffer
    }

    fn upload_part(&mut self) -> Result<(), AwsError> {
        let client = &self.objects.client;
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let call = "s3:CreateMultipartUpload";
                let created = self
                    .runtime
                    .block_on(
                        client
                            .create_multipart_upload()
                            .bucket(&self.objects.bucket)
                            .key(&self.key)
                            .content_type(&self.content_type)
                            .send(),
                    )
                    .map_err(|e| AwsError::sdk(call, e))?;
                let id = created
                    .upload_id()
                    .ok_or_else(|| AwsError::new(call, "no upload id"))?
                    .to_owned();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = self.parts.len() as i32 + 1;
        let body = std::mem::replace(&mut self.buffer, Vec::with_capacity(PART_BYTES));
        let uploaded = self
            .runtime
            .block_on(
                client
                    .upload_part()
                    .bucket(&self.objects.bucket)
                    .key(&self.key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .map_err(|e| AwsError::sdk("s3:UploadPart", e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    /// Uploads what is left and completes the object.
    pub fn finish(mut self) -> Result<(), AwsError> {
        let client = self.objects.client.clone();
        if self.upload_id.is_none() {
            let body = std::mem::take(&mut self.buffer);
            self.runtime
                .block_on(
                    client
                        .put_object()
                        .bucket(&self.objects.bucket)
                        .key(&self.key)
                        .content_type(&self.content_type)
                        .body(ByteStream::from(body))
                        .send(),
                )
                .map_err(|e| AwsError::sdk("s3:PutObject", e))?;
            return Ok(());
        }
        if !self.buffer.is_empty() {
            self.upload_part()?;
        }
        let parts = std::mem::take(&mut self.parts);
        self.runtime
            .block_on(
                client
                    .complete_multipart_upload()
                    .bucket(&self.objects.bucket)
                    .key(&self.key)
                    .set_upload_id(self.upload_id.clone())
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send(),
            )
            .map_err(|e| AwsError::sdk("s3:CompleteMultipartUpload", e))?;
        Ok(())
    }
}

impl std::io::Write for ObjectWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = PART_BYTES - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == PART_BYTES {
            self.upload_part().map_err(std::io::Error::other)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
