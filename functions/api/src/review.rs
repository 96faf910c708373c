//! A review's admin answers it (`shared::review`): `POST
//! /imports/{job_id}/start` applies the file it read — the same object
//! version, handed to the splitter again (a membership file first takes
//! its place in its tenant's order) — and `POST
//! /imports/{job_id}/discard` closes it with nothing applied. Either only
//! while it is ready; a review past its days can no longer start.

use crate::error::{refuse, ApiError, Code};
use chrono::Utc;
use loyalty_aws::Aws;
use shared::job::{Job, JobStatus};
use shared::review;
use shared::tenant::Tenant;
use tracing::info;

/// Starts a ready review.
pub async fn start(aws: &Aws, tenant: &Tenant, job_id: &str) -> Result<(), ApiError> {
    let now = Utc::now();
    let job = ready(aws, tenant, job_id).await?;
    if job.review.as_ref().is_some_and(|r| r.expired(now)) {
        return Err(refuse(
            Code::ReviewExpired,
            format!("the review of job {job_id} expired; upload the file again to import it"),
        ));
    }
    let Some(started) = aws
        .tables
        .start_review(&tenant.tenant_id, job_id, review::started(&job), now)
        .await?
    else {
        return Err(not_ready(&job));
    };
    aws.queues.resubmit(&started).await?;
    info!(tenant = %tenant.tenant_id, job = %job_id, "review started");
    Ok(())
}

/// Discards a ready review: nothing of it is applied.
pub async fn discard(aws: &Aws, tenant: &Tenant, job_id: &str) -> Result<(), ApiError> {
    let job = ready(aws, tenant, job_id).await?;
    aws.tables
        .close_review(&tenant.tenant_id, job_id, JobStatus::Discarded, Utc::now())
        .await?
        .ok_or_else(|| not_ready(&job))?;
    info!(tenant = %tenant.tenant_id, job = %job_id, "review discarded");
    Ok(())
}

/// The job, if it is a review ready for its admin.
async fn ready(aws: &Aws, tenant: &Tenant, job_id: &str) -> Result<Job, ApiError> {
    let job = aws
        .tables
        .job(&tenant.tenant_id, job_id)
        .await?
        .ok_or_else(|| refuse(Code::NotFound, format!("no job {job_id}")))?;
    match job.status {
        JobStatus::ReadyForReview => Ok(job),
        _ => Err(not_ready(&job)),
    }
}

fn not_ready(job: &Job) -> ApiError {
    let why = match job.status {
        JobStatus::Expired => "its review expired".to_owned(),
        _ if !job.review_first => "it was not created to be reviewed first".to_owned(),
        status => format!("it is {}", status.as_str()),
    };
    refuse(
        Code::NotReady,
        format!(
            "job {} is not a review ready to start or discard: {why}",
            job.job_id
        ),
    )
}
