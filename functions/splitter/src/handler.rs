//! Event in, calls out: this file translates the upload events (an SQS
//! event carrying S3 notifications, or a plain S3 event) into calls of the
//! splitter's modules, each of which puts a domain decision into effect:
//! the object's tenant (from its key alone, `shared::job::keys`), the object
//! versions the event stands for and the job of each (`job_for`), the job's
//! split (`split`, with a membership file's turn first, `turn`), or, for an
//! event from the ingest dead-letter queue, the split given up (`finish`).
//! An upload no tenant owns gets no job: it is counted in a metric for the
//! operator. An upload whose job was reverted stands for its reversal too
//! (`shared::reversal`), which reads the same object version.
//!
//! A membership file (a console drop under `incoming/<tenant>/memberships/`
//! or named `<universe>_<scope>_<subsection>_<YYYYMMDD>[_<seq>].csv`, or an
//! API upload of kind `cardcode` or `tierchange`) first takes its place
//! in its tenant's order (`shared::membership::order`) and waits for its turn;
//! its event comes back when the file before it is done, and with every
//! watchdog sweep.

use crate::finish;
use crate::job_for::{announced, job_for};
use crate::split::split_job;
use aws_lambda_events::event::sqs::SqsBatchResponse;
use loyalty_aws::metrics::Record;
use loyalty_aws::s3_event::{self, ObjectCreated};
use loyalty_aws::{Aws, AwsError};
use shared::job::{keys, Job};
use shared::redact::{self, Redacted};
use std::time::{Duration, Instant};
use tracing::{info, instrument, warn};

/// The splitter's time limit in the template: what [`handle`] assumes.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Handles an SQS event carrying S3 notifications, or a plain S3 event,
/// within the template's time limit from now.
pub async fn handle(
    aws: &Aws,
    event: serde_json::Value,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    handle_until(aws, event, Instant::now() + TIME_LIMIT).await
}

/// Handles the event; a split that would run past `deadline` stops at a
/// checkpoint before it and hands itself the rest (`Queues::resubmit`).
pub async fn handle_until(
    aws: &Aws,
    event: serde_json::Value,
    deadline: Instant,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let deliveries = s3_event::deliveries(&event)?;
    let mut retry = Vec::new();
    for delivery in deliveries {
        let dead = delivery.source_arn.is_some()
            && delivery.source_arn.as_deref() == aws.settings.dead_upload_queue_arn.as_deref();
        for object in &delivery.objects {
            let result = if dead {
                give_up_object(aws, object).await
            } else {
                import_object(aws, object, deadline).await
            };
            if let Err(err) = result {
                tracing::error!(key = %redact::object_key(&object.key), error = %Redacted(&err), "splitting failed; the event will be retried");
                match &delivery.message_id {
                    Some(id) => retry.push(id.clone()),
                    None => return Err(err.into()),
                }
                break;
            }
        }
    }
    Ok(loyalty_aws::sqs::retry_only(retry))
}

#[derive(Debug, thiserror::Error)]
pub enum SplitterError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("reading the upload failed: {0}")]
    Read(String),
    #[error("the split task stopped: {0}")]
    Task(String),
}

/// Starts (or resumes) the import of one uploaded object.
#[instrument(skip_all, fields(key = %redact::object_key(&object.key)))]
pub async fn import_object(
    aws: &Aws,
    object: &ObjectCreated,
    deadline: Instant,
) -> Result<(), SplitterError> {
    let Some(incoming) = keys::parse_incoming(&object.key) else {
        if object.key.ends_with('/') {
            // The S3 console's "Create folder": no file to import.
            info!("a folder, not a file: nothing to import");
        } else {
            ignore_upload(aws, object, IGNORED_NO_TENANT_FOLDER, None);
        }
        return Ok(());
    };
    let Some(tenant) = aws.tables.tenant(incoming.tenant).await? else {
        ignore_upload(aws, object, IGNORED_UNKNOWN_TENANT, Some(incoming.tenant));
        return Ok(());
    };
    for object in announced(aws, object).await? {
        if let Some(job) = job_for(aws, &object, &tenant, incoming).await? {
            let reversal = reversal_of(aws, &job).await?;
            // Boxed: a split's future is deep, and two of them inline
            // overflow a small stack.
            Box::pin(split_job(aws, &object, &tenant, job, deadline)).await?;
            if let Some(reversal) = reversal {
                Box::pin(split_job(aws, &object, &tenant, reversal, deadline)).await?;
            }
        }
    }
    Ok(())
}

/// The job reverting `job`, if it was reverted: an upload's event stands
/// for its reversal too, which reads the same object version
/// (`shared::reversal`).
async fn reversal_of(aws: &Aws, job: &Job) -> Result<Option<Job>, SplitterError> {
    match &job.reverted_by {
        Some(by) => Ok(aws.tables.job(&job.tenant_id, by).await?),
        None => Ok(None),
    }
}

/// The metric counting uploads no job was made for (the `reason` property
/// says why): an operator's alarm, since nobody else hears of them (no
/// tenant, no admin to email).
pub const UPLOADS_IGNORED: &str = "UploadsIgnored";
/// A file under `incoming/<tenant>/` for a tenant that does not exist.
pub const IGNORED_UNKNOWN_TENANT: &str = "unknown_tenant";
/// A file under `incoming/` but in no tenant's folder.
pub const IGNORED_NO_TENANT_FOLDER: &str = "no_tenant_folder";

/// Counts and logs an upload that no tenant owns: it is left in the bucket
/// as it is (for the operator to move to the right tenant, or delete).
fn ignore_upload(aws: &Aws, object: &ObjectCreated, reason: &'static str, tenant: Option<&str>) {
    let key = redact::object_key(&object.key);
    let tenant = tenant.map(redact::object_key);
    warn!(
        reason,
        tenant = tenant.as_deref().unwrap_or(""),
        "an upload no tenant owns: ignored"
    );
    let mut record = Record::new()
        .dimension("Function", "splitter")
        .count(UPLOADS_IGNORED, 1)
        .property("reason", reason)
        .property("key", key);
    if let Some(tenant) = tenant {
        record = record.property("tenant", tenant);
    }
    if let Some(version) = &object.version_id {
        record = record.property("version", version.as_str());
    }
    aws.metrics.emit(record);
}

/// An upload whose split failed on every delivery (its event came from
/// the ingest dead-letter queue): its job goes on without the rows the split
/// never reached, reported as not applied, and the admin is told how to
/// import them.
#[instrument(skip_all, fields(key = %redact::object_key(&object.key)))]
pub async fn give_up_object(aws: &Aws, object: &ObjectCreated) -> Result<(), SplitterError> {
    let Some(incoming) = keys::parse_incoming(&object.key) else {
        return Ok(());
    };
    let Some(tenant) = aws.tables.tenant(incoming.tenant).await? else {
        return Ok(());
    };
    // The object as the event names it, not every version of its key: a
    // version whose own event is still on its way must not be given up.
    let Some(job) = job_for(aws, object, &tenant, incoming).await? else {
        return Ok(());
    };
    if let Some(reversal) = reversal_of(aws, &job).await? {
        finish::give_up_split(aws, reversal).await?;
    }
    finish::give_up_split(aws, job).await
}
