//! `POST /imports/{job_id}/revert`: undoes a finished points import
//! (`shared::reversal`). The reversal job is created and the original
//! marked as reverted by it in one transaction, then the original upload is
//! handed to the splitter again, which reads it as the reversal's file.
//!
//! Crash-safe in every order: the reversal's id is derived from the
//! original's, so the transaction is all or nothing and a retried request
//! finds the reversal it made; if a request failed after the transaction,
//! before the upload was handed on, the next request (refused as
//! `already_reverted`) hands it on again while the reversal has not started.

use crate::error::{refuse, ApiError, Code};
use chrono::Utc;
use loyalty_aws::tables::Reverting;
use loyalty_aws::Aws;
use shared::job::{Job, JobStatus};
use shared::reversal::{self, Refusal};
use shared::tenant::Tenant;
use tracing::info;

/// Reverts `job_id`: returns its reversal job's id.
pub async fn revert(aws: &Aws, tenant: &Tenant, job_id: &str) -> Result<String, ApiError> {
    let original = job(aws, tenant, job_id).await?;
    refused(aws, &original).await?;
    let reversal = reversal::reversal_job(&original, Utc::now());
    if aws.tables.revert_job(&original, &reversal).await? == Reverting::Refused {
        // Reverted or changed meanwhile: say why, as read now.
        let now = job(aws, tenant, job_id).await?;
        refused(aws, &now).await?;
        return Err(ApiError::Internal(
            "reverting a job",
            format!("job {job_id} could not be marked as reverted, and nothing says why"),
        ));
    }
    aws.queues.resubmit(&reversal).await?;
    info!(tenant = %tenant.tenant_id, job = %job_id, reversal = %reversal.job_id, "import reverted");
    Ok(reversal.job_id)
}

async fn job(aws: &Aws, tenant: &Tenant, job_id: &str) -> Result<Job, ApiError> {
    aws.tables
        .job(&tenant.tenant_id, job_id)
        .await?
        .ok_or_else(|| refuse(Code::NotFound, format!("no job {job_id}")))
}

/// Why `original` cannot be reverted, if it cannot. A reversal that never
/// started (its request failed before the upload was handed on) is handed
/// on again.
async fn refused(aws: &Aws, original: &Job) -> Result<(), ApiError> {
    match reversal::revertible(original) {
        Ok(()) => Ok(()),
        Err(refusal @ Refusal::AlreadyReverted { .. }) => {
            if let Some(by) = &original.reverted_by {
                let reversal = aws.tables.job(&original.tenant_id, by).await?;
                if let Some(reversal) = reversal.filter(never_started) {
                    aws.queues.resubmit(&reversal).await?;
                }
            }
            Err(refuse(Code::AlreadyReverted, refusal.to_string()))
        }
        Err(refusal @ Refusal::NotRevertible { .. }) => {
            Err(refuse(Code::NotRevertible, refusal.to_string()))
        }
    }
}

/// A job whose split has not begun: nothing of it was read yet.
fn never_started(job: &Job) -> bool {
    job.status == JobStatus::Splitting
        && job.split_checkpoint.is_none()
        && job.batches_sent == 0
        && job.progress_at.is_none()
}
