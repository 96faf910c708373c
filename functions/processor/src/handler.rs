//! One SQS message = one batch. Messages of one shard arrive in order; once
//! one fails, the later messages of its shard are handed back untouched so
//! they are not applied ahead of it.
//!
//! A batch that failed on every delivery reaches the batch queue's
//! dead-letter queue, which feeds this function too: such a batch is given
//! up (its undecided rows are reported as `processing_failed`, never to be
//! applied) and counted, so its job still finishes.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use loyalty_aws::queues::FinalizeRequest;
use loyalty_aws::Aws;
use shared::apply::{apply_batch, give_up_batch};
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
        let dead_letter =
            message.event_source_arn.as_deref() == Some(aws.settings.dead_batch_queue_arn.as_str());
        if let Err(err) = process(aws, message, dead_letter).await {
            error!(message_id = %id, error = %err, "batch failed; it will be retried");
            blocked_groups.extend(group);
            retry.push(id);
        }
    }
    Ok(loyalty_aws::sqs::retry_only(retry))
}

#[instrument(skip_all, fields(message_id = message.message_id.as_deref().unwrap_or("")))]
async fn process(aws: &Aws, message: &SqsMessage, dead_letter: bool) -> anyhow::Result<()> {
    let body = message.body.as_deref().unwrap_or_default();
    let batch: Batch = serde_json::from_str(body)?;
    let span = tracing::info_span!("batch", tenant = %batch.tenant_id, job = %batch.job_id, batch = batch.number);
    let _enter = span.enter();
    // A batch only ever belongs to a job the splitter created; anything else
    // is refused, and after its retries it goes to the dead-letter queue,
    // where it is logged and dropped: it names no job to report to.
    if aws
        .tables
        .job(&batch.tenant_id, &batch.job_id)
        .await?
        .is_none()
    {
        if dead_letter {
            error!("a dead batch names no existing job: dropped");
            return Ok(());
        }
        anyhow::bail!(
            "batch {} names job {} of tenant {}, which does not exist",
            batch.number,
            batch.job_id,
            batch.tenant_id
        );
    }
    let report = if dead_letter {
        error!(
            rows = batch.rows.len(),
            "the batch failed on every delivery: its undecided rows are given up"
        );
        give_up_batch(&aws.tables, &batch).await?
    } else {
        apply_batch(&aws.tables, &batch, Utc::now()).await?
    };
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
            .request_finalize(&FinalizeRequest::of(&job))
            .await?;
    }
    Ok(())
}
