//! A job's end as the splitter decides it: rejected (with the reason the
//! admin is emailed), given up after its split failed on every delivery,
//! or handed to the finalizer once its batches are applied.

use crate::handler::SplitterError;
use loyalty_aws::queues::FinalizeRequest;
use loyalty_aws::Aws;
use shared::job::{self, Job, JobStatus};
use shared::redact::Redacted;
use tracing::{info, instrument, warn};

/// Rejects the job's file, and asks the finalizer to tell the admin why.
pub async fn reject(aws: &Aws, job: &Job, why: &str) -> Result<(), SplitterError> {
    info!(why = %Redacted(why), "file rejected");
    if aws
        .tables
        .reject_job(&job.tenant_id, &job.job_id, why)
        .await?
        .is_some()
    {
        request_finalize(aws, job).await?;
    }
    Ok(())
}

/// Asks the finalizer to write the job's processed file and email it.
pub async fn request_finalize(aws: &Aws, job: &Job) -> Result<(), SplitterError> {
    Ok(aws
        .queues
        .request_finalize(&FinalizeRequest::of(job))
        .await?)
}

/// Why a review whose read failed on every delivery is refused.
const REVIEW_GIVEN_UP: &str = "the file could not be read whole for its review (every attempt \
     failed); nothing was applied: upload it again";

/// Gives up the split of a job whose event failed on every delivery: the
/// job goes on without the rows the split never reached.
#[instrument(name = "job", skip_all, fields(tenant = %job.tenant_id, job = %job.job_id))]
pub async fn give_up_split(aws: &Aws, job: Job) -> Result<(), SplitterError> {
    if job.status == JobStatus::Reviewing {
        // Nothing is applied yet: the review is refused as a whole.
        warn!("the review's read is given up");
        return reject(aws, &job, REVIEW_GIVEN_UP).await;
    }
    if job.status != JobStatus::Splitting {
        // A membership file still waiting has its event sent again by the
        // watchdog; any other job got past its split.
        info!(
            status = job.status.as_str(),
            "a dead upload event for a job not splitting: nothing to give up"
        );
        return Ok(());
    }
    let read = job.split_checkpoint.as_ref().map_or(0, |c| c.row);
    let why = job::split_given_up(read);
    warn!(rows_read = read, "the split is given up");
    // The shards the split sent batches to, not the setting's: the
    // finalizer reads each one's outcomes.
    let shards = crate::split::job_shards(aws, &job).await?;
    if let Some(after) = aws.tables.abandon_split(&job, shards, &why).await? {
        if after.ready_to_finalize() {
            request_finalize(aws, &after).await?;
        }
    }
    Ok(())
}
