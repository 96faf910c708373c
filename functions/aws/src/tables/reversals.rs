//! A job reverted (`shared::reversal`): the reversal job created and the
//! original marked `reverted_by` it in one transaction, so a job is
//! reverted at most once and never marked without its reversal existing.

use super::jobs::{job_sk, JobItem};
use super::request::put_item;
use super::{s, to_item, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use shared::job::{Job, JobStatus};

const CALL: &str = "dynamodb:TransactWriteItems";

/// What became of a request to revert a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reverting {
    /// The reversal was created and the original marked by it.
    Created,
    /// Nothing was written: the original was reverted meanwhile, or is no
    /// longer final (read it again to say why), or the reversal exists.
    Refused,
}

impl Tables {
    /// Creates `reversal` and marks `original` as reverted by it, both or
    /// neither: only if the original is not reverted yet and still
    /// `completed` or `completed_with_errors`, and no job has the
    /// reversal's id.
    pub async fn revert_job(&self, original: &Job, reversal: &Job) -> Result<Reverting, AwsError> {
        let create = put_item(
            &self.jobs,
            to_item(CALL, &JobItem::new(reversal))?,
            Some("attribute_not_exists(sk)"),
            None,
        )?;
        let mark = Update::builder()
            .table_name(&self.jobs)
            .key("tenant_id", s(&original.tenant_id))
            .key("sk", s(job_sk(&original.job_id)))
            .update_expression("SET reverted_by = :by")
            .condition_expression(
                "attribute_exists(sk) AND attribute_not_exists(reverted_by) \
                 AND #status IN (:completed, :with_errors)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":by", s(&reversal.job_id))
            .expression_attribute_values(":completed", s(JobStatus::Completed.as_str()))
            .expression_attribute_values(":with_errors", s(JobStatus::CompletedWithErrors.as_str()))
            .build()
            .map_err(|e| AwsError::new(CALL, e))?;
        let items = vec![create, TransactWriteItem::builder().update(mark).build()];
        match self.transact(items).await? {
            Ok(()) => Ok(Reverting::Created),
            Err(refused) if refused.any_condition_failed() => Ok(Reverting::Refused),
            Err(refused) => Err(refused.into_error()),
        }
    }
}
