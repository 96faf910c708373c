//! The batch queue (FIFO, one message group per job shard), the finalize
//! queue, and the ingest queue (for imports handed to the splitter again).

use crate::settings::Settings;
use crate::AwsError;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use serde::{Deserialize, Serialize};
use shared::batch::{Batch, BatchRow};

/// Asks the finalizer to finish a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizeRequest {
    pub tenant_id: String,
    pub job_id: String,
}

impl FinalizeRequest {
    pub fn of(job: &shared::job::Job) -> Self {
        FinalizeRequest {
            tenant_id: job.tenant_id.clone(),
            job_id: job.job_id.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Queues {
    client: Client,
    bucket: String,
    ingest_queue_url: String,
    batch_queue_url: String,
    finalize_queue_url: String,
}

/// SQS takes at most 10 messages and 256 KiB per SendMessageBatch.
const MAX_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 200 * 1024;

impl Queues {
    pub fn new(client: Client, settings: &Settings) -> Self {
        Queues {
            client,
            bucket: settings.bucket.clone(),
            ingest_queue_url: settings.ingest_queue_url.clone(),
            batch_queue_url: settings.batch_queue_url.clone(),
            finalize_queue_url: settings.finalize_queue_url.clone(),
        }
    }

    /// The raw SDK client (feature `testing`: the local runner and the
    /// tests only; a function goes through the methods below).
    #[cfg(any(test, feature = "testing"))]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Enqueues batches, keeping each shard's batches in order.
    pub async fn send_batches<R: BatchRow>(&self, batches: &[Batch<R>]) -> Result<(), AwsError> {
        let mut entries = Vec::new();
        let mut bytes = 0;
        for batch in batches {
            let body = batch
                .to_json()
                .map_err(|e| AwsError::new("sqs:SendMessageBatch", e))?;
            if entries.len() == MAX_ENTRIES
                || (bytes + body.len() > MAX_BATCH_BYTES && !entries.is_empty())
            {
                self.send_entries(std::mem::take(&mut entries)).await?;
                bytes = 0;
            }
            bytes += body.len();
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(format!("b{}", batch.number))
                    .message_body(body)
                    .message_group_id(batch.group_id())
                    .message_deduplication_id(batch.dedup_id())
                    .build()
                    .map_err(|e| AwsError::new("sqs:SendMessageBatch", e))?,
            );
        }
        if !entries.is_empty() {
            self.send_entries(entries).await?;
        }
        Ok(())
    }

    async fn send_entries(
        &self,
        entries: Vec<SendMessageBatchRequestEntry>,
    ) -> Result<(), AwsError> {
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.batch_queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| AwsError::sdk("sqs:SendMessageBatch", e))?;
        match out.failed().first() {
            // The splitter's retry re-sends them; the deduplication id and the
            // processor's per-row decisions make the re-send harmless.
            Some(failed) => Err(AwsError::new(
                "sqs:SendMessageBatch",
                format!(
                    "{} messages refused, first: {} {}",
                    out.failed().len(),
                    failed.code(),
                    failed.message().unwrap_or("")
                ),
            )),
            None => Ok(()),
        }
    }

    pub async fn request_finalize(&self, request: &FinalizeRequest) -> Result<(), AwsError> {
        let body =
            serde_json::to_string(request).map_err(|e| AwsError::new("sqs:SendMessage", e))?;
        self.send(&self.finalize_queue_url, body).await
    }

    /// Hands a job's file to the splitter again, as its upload's event did:
    /// a waiting membership file whose turn may have come.
    pub async fn resubmit(&self, job: &shared::job::Job) -> Result<(), AwsError> {
        let object = crate::s3_event::ObjectCreated {
            bucket: self.bucket.clone(),
            key: job.source_key.clone(),
            version_id: job.source_version.clone(),
            size: None,
            sequencer: None,
        };
        let body = crate::s3_event::object_created_event(&object).to_string();
        self.send(&self.ingest_queue_url, body).await
    }

    async fn send(&self, queue_url: &str, body: String) -> Result<(), AwsError> {
        self.client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| AwsError::sdk("sqs:SendMessage", e))?;
        Ok(())
    }
}
