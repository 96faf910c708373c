//! The import bucket: uploads in, processed files out, presigned URLs.

use crate::settings::Settings;
use crate::AwsError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

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

    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), AwsError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| AwsError::new("s3:PutObject", e))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| AwsError::sdk("s3:PutObject", e))?;
        Ok(())
    }

    pub async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, AwsError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| AwsError::sdk("s3:GetObject", e))?;
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| AwsError::new("s3:GetObject", e))?;
        Ok(data.into_bytes().to_vec())
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
