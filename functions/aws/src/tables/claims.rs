//! Content claims (`jobs` table, `sk = CONTENT#<sha256>`): which job imports
//! a file's content, so that the same content uploaded again is not
//! imported twice. A job that applied nothing can hand its claim over.

use super::{item, s, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use shared::job::Job;

/// The item in `jobs` that says which job imported a content.
fn content_sk(sha256: &str) -> String {
    format!("CONTENT#{sha256}")
}

impl Tables {
    /// Records that `job` imports the content `sha256` of its tenant, unless
    /// another job did first: then returns that job's id.
    pub async fn claim_content(&self, job: &Job, sha256: &str) -> Result<Option<String>, AwsError> {
        if self.put_content_claim(job, sha256, None).await? {
            return Ok(None);
        }
        let claim = self.jobs_item(&job.tenant_id, &content_sk(sha256)).await?;
        match claim.as_ref().and_then(|i| i.get("job_id")) {
            Some(AttributeValue::S(holder)) => Ok(Some(holder.clone())),
            _ => Err(AwsError::new(
                "dynamodb:GetItem",
                format!("the claim on content {sha256} has no job"),
            )),
        }
    }

    /// Hands the claim on a content from `holder` (a job that applied
    /// nothing) to `job`; false if `holder` no longer holds it.
    pub async fn take_over_content(
        &self,
        job: &Job,
        sha256: &str,
        holder: &str,
    ) -> Result<bool, AwsError> {
        self.put_content_claim(job, sha256, Some(holder)).await
    }

    /// Puts `job`'s claim on the content: if there is none yet (or it is
    /// `job`'s already), or, with `from`, if that job holds it.
    async fn put_content_claim(
        &self,
        job: &Job,
        sha256: &str,
        from: Option<&str>,
    ) -> Result<bool, AwsError> {
        let claim = item([
            ("tenant_id", s(&job.tenant_id)),
            ("sk", s(content_sk(sha256))),
            ("job_id", s(&job.job_id)),
            ("filename", s(&job.filename)),
            ("claimed_at", s(Utc::now().to_rfc3339())),
        ]);
        match from {
            None => {
                let values = vec![(":job", s(&job.job_id))];
                let condition = "attribute_not_exists(sk) OR job_id = :job";
                self.put_if(&self.jobs, claim, condition, values).await
            }
            Some(holder) => {
                let values = vec![(":holder", s(holder))];
                self.put_if(&self.jobs, claim, "job_id = :holder", values)
                    .await
            }
        }
    }
}
