//! One SQS message = one batch: points rows applied to wallets, or
//! membership rows (card codes, tier changes) applied to cards. Messages of
//! one shard arrive in order; once one fails, the later messages of its
//! shard are handed back untouched so they are not applied ahead of it.
//!
//! A batch that failed on every delivery reaches the batch queue's
//! dead-letter queue, which feeds this function too: such a batch is given
//! up (its undecided rows are reported as `processing_failed`, never to be
//! applied) and counted, so its job still finishes.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use loyalty_aws::metrics::{kind_dimension, names, Record, Unit};
use loyalty_aws::queues::FinalizeRequest;
use loyalty_aws::Aws;
use shared::apply::{apply_batch, give_up_batch, give_up_rows, BatchReport};
use shared::batch::{Batch, BatchHead, BatchRow, RowKind};
use shared::kind::ImportKind;
use shared::membership::apply::{CardJob, MembershipRow};
use shared::membership::cards::CardRow;
use shared::membership::programs::Memberships;
use shared::membership::tier_changes::TierChangeRow;
use shared::points::PointsRow;
use shared::redact::Redacted;
use std::collections::HashSet;
use std::time::Instant;
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
            error!(message_id = %id, error = %Redacted(&err), "batch failed; it will be retried");
            blocked_groups.extend(group);
            retry.push(id);
        }
    }
    Ok(loyalty_aws::sqs::retry_only(retry))
}

/// A batch's delivery: from which queue, its how-manieth, and when its
/// handling began.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    dead_letter: bool,
    /// SQS's `ApproximateReceiveCount`: 1 on the first delivery.
    receive_count: u64,
    started: Instant,
}

#[instrument(skip_all, fields(message_id = message.message_id.as_deref().unwrap_or("")))]
async fn process(aws: &Aws, message: &SqsMessage, dead_letter: bool) -> anyhow::Result<()> {
    let delivery = Delivery {
        dead_letter,
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
        started: Instant::now(),
    };
    let body = message.body.as_deref().unwrap_or_default();
    let head: BatchHead = match serde_json::from_str(body) {
        Ok(head) => head,
        Err(err) => return unreadable(err, dead_letter),
    };
    match head.rows_kind {
        RowKind::Points => settle_message::<PointsRow>(aws, body, delivery).await,
        RowKind::Cards => settle_message::<CardRow>(aws, body, delivery).await,
        RowKind::TierChanges => settle_message::<TierChangeRow>(aws, body, delivery).await,
    }
}

/// Reads a batch of `R` rows and settles it. Boxed: the nested futures of a
/// batch's commit are deep enough that an optimised build overflows the
/// compiler's layout query depth.
async fn settle_message<R: Apply>(aws: &Aws, body: &str, delivery: Delivery) -> anyhow::Result<()> {
    match serde_json::from_str(body) {
        Ok(batch) => Box::pin(settle::<R>(aws, batch, delivery)).await,
        Err(err) => unreadable(err, delivery.dead_letter),
    }
}

/// A message that is not a batch can never be applied. From the batch queue
/// it is refused, so that its retries take it to the dead-letter queue; there
/// it is logged and dropped, not retried until the queue's retention ends: it
/// names no job to report to, and a job that lost a batch this way is closed
/// by the watchdog, the batch's rows reported as `not_processed`.
fn unreadable(err: serde_json::Error, dead_letter: bool) -> anyhow::Result<()> {
    if dead_letter {
        error!(error = %Redacted(&err), "a dead message is not a batch: dropped");
        Ok(())
    } else {
        Err(anyhow::Error::new(err).context("the message is not a batch"))
    }
}

/// Rows the processor knows how to apply, and to give up on.
trait Apply: BatchRow + Sized {
    async fn apply(aws: &Aws, batch: &Batch<Self>) -> anyhow::Result<BatchReport>;

    /// Membership rows' outcomes are recorded one by one.
    async fn give_up(aws: &Aws, batch: &Batch<Self>) -> anyhow::Result<BatchReport> {
        Ok(give_up_rows(&aws.tables, batch).await?)
    }
}

impl Apply for PointsRow {
    async fn apply(aws: &Aws, batch: &Batch<Self>) -> anyhow::Result<BatchReport> {
        Ok(apply_batch(&aws.tables, batch, Utc::now()).await?)
    }

    /// Points rows' outcomes are recorded in pages.
    async fn give_up(aws: &Aws, batch: &Batch<Self>) -> anyhow::Result<BatchReport> {
        Ok(give_up_batch(&aws.tables, batch).await?)
    }
}

impl Apply for CardRow {
    async fn apply(aws: &Aws, batch: &Batch<Self>) -> anyhow::Result<BatchReport> {
        apply_memberships(aws, batch).await
    }
}

impl Apply for TierChangeRow {
    async fn apply(aws: &Aws, batch: &Batch<Self>) -> anyhow::Result<BatchReport> {
        apply_memberships(aws, batch).await
    }
}

/// Membership rows are decided on the tenant's programs and tiers.
async fn apply_memberships<R: MembershipRow>(
    aws: &Aws,
    batch: &Batch<R>,
) -> anyhow::Result<BatchReport> {
    let config = memberships(aws, &batch.tenant_id).await?;
    let job = CardJob {
        tenant_id: &batch.tenant_id,
        job_id: &batch.job_id,
        config: &config,
    };
    let outcomes = R::apply_all(&job, &aws.tables, &batch.rows, Utc::now()).await?;
    Ok(BatchReport::of(outcomes))
}

/// The tenant's programs and tiers.
async fn memberships(aws: &Aws, tenant_id: &str) -> anyhow::Result<Memberships> {
    aws.tables
        .tenant(tenant_id)
        .await?
        .and_then(|t| t.memberships)
        .ok_or_else(|| anyhow::anyhow!("tenant {tenant_id} has no membership configuration"))
}

#[instrument(name = "batch", skip_all, fields(tenant = %batch.tenant_id, job = %batch.job_id, batch = batch.number))]
async fn settle<R: Apply>(aws: &Aws, batch: Batch<R>, delivery: Delivery) -> anyhow::Result<()> {
    let dead_letter = delivery.dead_letter;
    // A batch only ever belongs to a job the splitter created; anything else
    // is refused, and after its retries it goes to the dead-letter queue,
    // where it is logged and dropped: it names no job to report to.
    let Some(job) = aws.tables.job(&batch.tenant_id, &batch.job_id).await? else {
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
    };
    let kind = job.kind;
    let report = if dead_letter {
        error!(
            rows = batch.rows.len(),
            "the batch failed on every delivery: its undecided rows are given up"
        );
        R::give_up(aws, &batch).await?
    } else {
        R::apply(aws, &batch).await?
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
    emit_batch(aws, &batch, kind, delivery);
    if job.ready_to_finalize() {
        aws.queues
            .request_finalize(&FinalizeRequest::of(&job))
            .await?;
    }
    Ok(())
}

/// A settled batch as metrics: its rows, how long it took, how many
/// deliveries before this one, and whether it was given up.
fn emit_batch<R>(aws: &Aws, batch: &Batch<R>, kind: Option<ImportKind>, delivery: Delivery) {
    let mut record = Record::new()
        .dimension("Function", "processor")
        .dimension("Kind", kind_dimension(kind))
        .count(names::BATCH_ROWS, batch.rows.len() as u64)
        .value(
            names::BATCH_SECONDS,
            Unit::Seconds,
            delivery.started.elapsed().as_secs_f64(),
        )
        .count(
            names::BATCH_RETRIES,
            delivery.receive_count.saturating_sub(1),
        )
        .property("tenant", batch.tenant_id.as_str())
        .property("job", batch.job_id.as_str())
        .property("batch", batch.number);
    if delivery.dead_letter {
        record = record.count(names::DEAD_BATCHES, 1);
    }
    aws.metrics.emit(record);
}
