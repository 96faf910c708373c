//! Delivers queue messages to the same handler code the Lambdas run.
//!
//! Like an SQS event source mapping, the runner receives up to ten messages,
//! hands them to the function as one SQS event, deletes the ones the function
//! did not report as failed, and makes failed ones visible again for retry
//! (at once, instead of after the queue's visibility timeout, so local runs
//! do not wait minutes). After five receives the emulator moves a message to
//! its dead-letter queue, as the queue's redrive policy says.

use crate::env;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use loyalty_aws::Aws;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Splitter,
    Processor,
    Finalizer,
}

pub struct Runner {
    aws: Aws,
    queues: Vec<(Function, String)>,
}

/// How long a received message stays hidden from other receivers locally.
const LOCAL_VISIBILITY_SECONDS: i32 = 60;

impl Runner {
    /// Reads the queue of each function (`LOCAL_QUEUE_*`) from the environment.
    pub fn new(aws: Aws) -> anyhow::Result<Self> {
        Ok(Runner {
            queues: vec![
                (Function::Splitter, env::var("LOCAL_QUEUE_SPLITTER")?),
                (Function::Processor, env::var("LOCAL_QUEUE_PROCESSOR")?),
                (Function::Finalizer, env::var("LOCAL_QUEUE_FINALIZER")?),
            ],
            aws,
        })
    }

    pub fn aws(&self) -> &Aws {
        &self.aws
    }

    /// One receive from every queue, delivered; returns how many messages were handled.
    pub async fn pump(&self) -> anyhow::Result<usize> {
        let mut handled = 0;
        for (function, url) in &self.queues {
            handled += self.deliver(*function, url).await?;
        }
        Ok(handled)
    }

    /// Runs until every queue is drained and no job is in flight (of
    /// `tenant`, or of any tenant), or fails after `timeout`.
    pub async fn run_until_idle(
        &self,
        tenant: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.pump().await? == 0 && self.queues_empty().await? {
                let unfinished = self.aws.tables.unfinished_jobs().await?;
                let waiting: Vec<_> = unfinished
                    .iter()
                    .filter(|j| tenant.is_none_or(|t| t == j.tenant_id))
                    .collect();
                if waiting.is_empty() {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    let list: Vec<String> = waiting
                        .iter()
                        .map(|j| format!("{}/{} ({})", j.tenant_id, j.job_id, j.status.as_str()))
                        .collect();
                    anyhow::bail!(
                        "queues are empty but jobs are still unfinished: {}",
                        list.join(", ")
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if Instant::now() > deadline {
                anyhow::bail!("the pipeline did not settle within {timeout:?}");
            }
        }
    }

    /// Delivers messages as they come, until the process is stopped.
    pub async fn run_forever(&self) -> anyhow::Result<()> {
        loop {
            if self.pump().await? == 0 {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }

    async fn queues_empty(&self) -> anyhow::Result<bool> {
        for (_, url) in &self.queues {
            let out = self
                .aws
                .queues
                .client()
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await?;
            let count = |name: QueueAttributeName| {
                out.attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if count(QueueAttributeName::ApproximateNumberOfMessages) > 0
                || count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible) > 0
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One receive from one function's queue, delivered.
    pub async fn pump_function(&self, function: Function) -> anyhow::Result<usize> {
        self.deliver(function, self.queue_url(function)).await
    }

    /// The queue that feeds a function.
    pub fn queue_url(&self, function: Function) -> &str {
        self.queues
            .iter()
            .find(|(f, _)| *f == function)
            .map(|(_, url)| url.as_str())
            .unwrap_or_default()
    }

    async fn deliver(&self, function: Function, url: &str) -> anyhow::Result<usize> {
        let sqs = self.aws.queues.client();
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(LOCAL_VISIBILITY_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
        let event = sqs_event(url, &messages);
        debug!(?function, count = messages.len(), "delivering");
        let result = match function {
            Function::Splitter => splitter::handle(&self.aws, event).await,
            Function::Processor => {
                processor::handle(&self.aws, serde_json::from_value::<SqsEvent>(event)?).await
            }
            Function::Finalizer => {
                finalizer::handle(&self.aws, serde_json::from_value::<SqsEvent>(event)?).await
            }
        };
        let failed: HashSet<String> = match result {
            Ok(SqsBatchResponse {
                batch_item_failures,
                ..
            }) => batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(err) => {
                warn!(?function, error = %err, "the function failed; every message will be retried");
                messages
                    .iter()
                    .filter_map(|m| m.message_id.clone())
                    .collect()
            }
        };
        for message in &messages {
            let (Some(id), Some(receipt)) = (&message.message_id, &message.receipt_handle) else {
                continue;
            };
            if failed.contains(id) {
                sqs.change_message_visibility()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await?;
            } else {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .send()
                    .await?;
            }
        }
        Ok(messages.len())
    }
}

/// The SQS event Lambda would build for these messages.
pub fn sqs_event(queue_url: &str, messages: &[Message]) -> serde_json::Value {
    let arn = queue_arn(queue_url);
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

/// `http://host/123456789012/name` → `arn:aws:sqs:us-east-1:123456789012:name`.
fn queue_arn(url: &str) -> String {
    let mut parts = url.rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    format!("arn:aws:sqs:us-east-1:{account}:{name}")
}
