//! One SQS message = one batch. Messages of one shard arrive in order; once
//! one fails, the later messages of its shard are handed back untouched so
//! they are not applied ahead of it.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use loyalty_aws::queues::FinalizeRequest;
use loyalty_aws::Aws;
use shared::apply::apply_batch;
use shared::batch::Batch;
use std::collections::HashSet;
use tracing::{error, info, instrument};

pub async fn handle(aws: &Aws, event: SqsEvent) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut retry = Vec::new();
    let mut blocked_groups = HashSet::new();
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let group = message.attributes.get("MessageGroupId").cloned();
        if group.as_ref().is_some_and(|g| blocked_groups.contains(g)) {
            retry.push(id);
            continue;
        }
        if let Err(err) = process(aws, message).await {
            error!(message_id = %id, error = %err, "batch failed; it will be retried");
            blocked_groups.extend(group);
            retry.push(id);
        }
    }
    Ok(loyalty_aws::sqs::retry_only(retry))
}

#[instrument(skip_all, fields(message_id = message.message_id.as_deref().unwrap_or("")))]
async fn process(aws: &Aws, message: &SqsMessage) -> anyhow::Result<()> {
    let body = message.body.as_deref().unwrap_or_default();
    let batch: Batch = serde_json::from_str(body)?;
    let span = tracing::info_span!("batch", tenant = %batch.tenant_id, job = %batch.job_id, batch = batch.number);
    let _enter = span.enter();
    // A batch only ever belongs to a job the splitter created; anything else
    // is refused, and after its retries it waits in the dead-letter queue.
    if aws
        .tables
        .job(&batch.tenant_id, &batch.job_id)
        .await?
        .is_none()
    {
        anyhow::bail!(
            "batch {} names job {} of tenant {}, which does not exist",
            batch.number,
            batch.job_id,
            batch.tenant_id
        );
    }
    let report = apply_batch(&aws.tables, &batch, Utc::now()).await?;
    let job = aws
        .tables
        .record_batch(&batch.tenant_id, &batch.job_id, batch.number, &report.tally)
        .await?;
    info!(
        applied = report.tally.applied,
        failed = report.tally.failed,
        batches_done = job.batches_done,
        "batch applied"
    );
    if job.ready_to_finalize() {
        aws.queues
            .request_finalize(&FinalizeRequest {
                tenant_id: job.tenant_id,
                job_id: job.job_id,
            })
            .await?;
    }
    Ok(())
}
