//! Reading an SQS queue without consuming it, and finding a queue's
//! dead-letter queue.
//!
//! **Peeking.** SQS has no read that leaves a message alone: a receive
//! hides what it returns for its visibility timeout. With a timeout of 0
//! every receive may hand back the same few messages, so a queue of more
//! than ten could never be listed through. So the listing receives with a
//! short timeout (`dlq::PEEK_SECONDS`), each receive then returning messages
//! not seen yet, deletes nothing, and at the end makes every message it saw
//! visible again at once (if that fails, or the command is stopped, they
//! come back by themselves after that time). Meanwhile the ingest
//! and batch dead-letter queues' consumers (the splitter and the processor,
//! which give the work up) see those messages that much later; a receive
//! also counts in a message's receive count, which moves nothing here (a
//! dead-letter queue has no dead-letter queue of its own). A FIFO queue
//! (the batches') shows only the first message of each group: the others
//! wait behind it.

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, Message, QueueAttributeName};
use aws_sdk_sqs::Client;
use loyalty_aws::AwsError;

/// The dead-letter queue of the queue at `source_url`, from its redrive
/// policy.
pub(super) async fn dead_letter_url(sqs: &Client, source_url: &str) -> anyhow::Result<String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(source_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| AwsError::sdk("sqs:GetQueueAttributes", e))?;
    let policy = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        .ok_or_else(|| anyhow::anyhow!("{source_url} has no dead-letter queue"))?;
    let arn = serde_json::from_str::<serde_json::Value>(policy)?["deadLetterTargetArn"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{source_url}: a redrive policy without a target"))?;
    // arn:aws:sqs:<region>:<account>:<name>
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, _, _, _, account, name] = parts[..] else {
        anyhow::bail!("{arn} is not a queue's ARN");
    };
    let url = sqs
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| AwsError::sdk("sqs:GetQueueUrl", e))?;
    url.queue_url()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no URL for the queue {arn}"))
}

pub(super) async fn approximate_count(sqs: &Client, url: &str) -> anyhow::Result<u64> {
    let names = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ];
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| AwsError::sdk("sqs:GetQueueAttributes", e))?;
    Ok(names
        .iter()
        .filter_map(|n| out.attributes()?.get(n)?.parse::<u64>().ok())
        .sum())
}

/// Receives up to `max` distinct messages, each hidden for `hide` seconds,
/// until a receive brings none not seen yet.
pub(super) async fn peek(
    sqs: &Client,
    url: &str,
    max: usize,
    hide: i32,
) -> anyhow::Result<Vec<Message>> {
    let mut seen: Vec<Message> = Vec::new();
    while seen.len() < max {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10.min(max - seen.len()) as i32)
            .visibility_timeout(hide)
            // Long polling asks every server of the queue: short polling
            // samples a few and may answer none while some are there.
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| AwsError::sdk("sqs:ReceiveMessage", e))?;
        let mut new = 0;
        for message in out.messages.unwrap_or_default() {
            match seen
                .iter_mut()
                .find(|m| m.message_id() == message.message_id())
            {
                // Seen again (the listing outlived `hide`): its latest receipt.
                Some(known) => *known = message,
                None => {
                    seen.push(message);
                    new += 1;
                }
            }
        }
        if new == 0 {
            break;
        }
    }
    Ok(seen)
}

/// Makes `messages` visible again at once; if that fails, they come back
/// when their visibility timeout ends.
pub(super) async fn release(sqs: &Client, url: &str, messages: &[Message]) {
    for chunk in messages.chunks(10) {
        let entries = chunk.iter().enumerate().filter_map(|(i, m)| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle()?)
                .visibility_timeout(0)
                .build()
                .ok()
        });
        let result = sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries.collect()))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %AwsError::sdk("sqs:ChangeMessageVisibilityBatch", e),
                "messages peeked at come back when their visibility timeout ends");
        }
    }
}
