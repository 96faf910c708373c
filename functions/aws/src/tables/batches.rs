//! How a job ends (`jobs` table): each batch counted into its job once,
//! with a marker item (`sk = JOB#<job>#BATCH#<n>`) that says it is done
//! with; a job whose batches stopped coming marked stalled and its batches
//! closed; the finalizer's lease on the job while it writes the processed
//! file; the final status, totals and errors by code; the email sent.

use super::jobs::{batch_sk, job_sk};
use super::request::{check_item, put_item};
use super::{epoch_in_days, item, n, s, Tables, OUTCOME_TTL_DAYS};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use shared::digest::ErrorDigest;
use shared::job::{Job, JobStatus};
use shared::outcome::Tally;

impl Tables {
    /// Counts a finished batch into its job, once however often it is
    /// reported, and returns the job as it stands.
    pub async fn record_batch(
        &self,
        tenant_id: &str,
        job_id: &str,
        batch_number: u64,
        tally: &Tally,
    ) -> Result<Job, AwsError> {
        let marker = item([
            ("tenant_id", s(tenant_id)),
            ("sk", s(batch_sk(job_id, batch_number))),
            ("ttl", n(epoch_in_days(OUTCOME_TTL_DAYS))),
        ]);
        let count = Update::builder()
            .table_name(&self.jobs)
            .key("tenant_id", s(tenant_id))
            .key("sk", s(job_sk(job_id)))
            .update_expression(
                "SET progress_at = :now \
                 ADD batches_done :one, rows_done :rows, applied :applied, failed :failed, skipped :skipped, \
                 credited :credited, debited :debited",
            )
            // A job closed already (finalized as stalled) keeps the totals
            // of its processed file.
            .condition_expression("#status IN (:splitting, :processing)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":splitting", s(JobStatus::Splitting.as_str()))
            .expression_attribute_values(":processing", s(JobStatus::Processing.as_str()))
            .expression_attribute_values(":now", s(Utc::now().to_rfc3339()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":rows", n(tally.rows()))
            .expression_attribute_values(":applied", n(tally.applied))
            .expression_attribute_values(":failed", n(tally.failed))
            .expression_attribute_values(":skipped", n(tally.skipped))
            .expression_attribute_values(":credited", n(tally.credited))
            .expression_attribute_values(":debited", n(tally.debited))
            .build()
            .map_err(|e| AwsError::new("dynamodb:TransactWriteItems", e))?;
        let items = vec![
            put_item(&self.jobs, marker, Some("attribute_not_exists(sk)"), None)?,
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact(items).await? {
            Ok(()) => {}
            // Counted by an earlier delivery of the same batch, or the job
            // was closed without it.
            Err(refused) if refused.any_condition_failed() => {}
            Err(refused) => return Err(refused.into_error()),
        }
        self.job(tenant_id, job_id)
            .await?
            .ok_or_else(|| AwsError::new("dynamodb:GetItem", format!("job {job_id} vanished")))
    }

    /// The transaction item checking that a batch is still open: the job
    /// was not closed without it.
    pub(super) fn batch_open(
        &self,
        tenant_id: &str,
        job_id: &str,
        batch: u64,
    ) -> Result<TransactWriteItem, AwsError> {
        let key = item([
            ("tenant_id", s(tenant_id)),
            ("sk", s(batch_sk(job_id, batch))),
        ]);
        check_item(&self.jobs, key, "attribute_not_exists(sk)", None)
    }

    /// Closes the batches of a stalled job: a batch not recorded as applied
    /// by now never will be, and no delivery of it can decide a row any more
    /// (a commit checks its batch is open).
    pub async fn close_batches(&self, job: &Job) -> Result<(), AwsError> {
        let ttl = n(epoch_in_days(OUTCOME_TTL_DAYS));
        let items = (1..=job.batches_total)
            .map(|batch| {
                item([
                    ("tenant_id", s(&job.tenant_id)),
                    ("sk", s(batch_sk(&job.job_id, batch))),
                    ("closed", AttributeValue::Bool(true)),
                    ("ttl", ttl.clone()),
                ])
            })
            .collect();
        self.batch_put(&self.jobs, items).await
    }

    /// Marks a job whose batches stopped coming as stalled, if it has not
    /// moved since it was read.
    pub async fn mark_stalled(&self, job: &Job) -> Result<Option<Job>, AwsError> {
        let Some(seen) = job.progress_at else {
            return Ok(None);
        };
        self.update_job(
            &job.tenant_id,
            &job.job_id,
            "SET stalled_at = :now",
            Some("#status = :processing AND attribute_not_exists(stalled_at) AND progress_at = :seen"),
            &[("#status", "status")],
            vec![
                (":now", s(Utc::now().to_rfc3339())),
                (":processing", s(JobStatus::Processing.as_str())),
                (":seen", s(seen.to_rfc3339())),
            ],
        )
        .await
    }

    /// Marks a split the API asked for, that never began, as asked for
    /// again at `now` (its stall period starts over): `None` if it began
    /// or moved on meanwhile.
    pub async fn ask_split_again(
        &self,
        job: &Job,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, AwsError> {
        self.update_job(
            &job.tenant_id,
            &job.job_id,
            "SET progress_at = :now",
            Some("#status = :splitting AND attribute_not_exists(split_checkpoint)"),
            &[("#status", "status")],
            vec![
                (":now", s(now.to_rfc3339())),
                (":splitting", s(JobStatus::Splitting.as_str())),
            ],
        )
        .await
    }

    /// Takes the job for finalizing, for `lease_seconds`, unless another
    /// run holds it. Returns the lease's end, which names this run's hold
    /// ([`Self::save_finalize_checkpoint`]), and the job as it is now (a
    /// run before may have checkpointed since `job` was read); or `None`.
    pub async fn claim_finalization(
        &self,
        job: &Job,
        lease_seconds: i64,
    ) -> Result<Option<(i64, Job)>, AwsError> {
        let now = Utc::now().timestamp();
        let next = match job.status {
            JobStatus::Processing => JobStatus::Finalizing,
            other => other,
        };
        let until = now + lease_seconds;
        let claimed = self
            .update_job(
                &job.tenant_id,
                &job.job_id,
                "SET #status = :next, lease_until = :until",
                Some(
                    "#status = :seen AND attribute_not_exists(email_sent_at) \
                     AND (attribute_not_exists(lease_until) OR lease_until < :now)",
                ),
                &[("#status", "status")],
                vec![
                    (":next", s(next.as_str())),
                    (":seen", s(job.status.as_str())),
                    (":until", n(until)),
                    (":now", n(now)),
                ],
            )
            .await?;
        Ok(claimed.map(|job| (until, job)))
    }

    /// Records where the processed file's writing stands, if the run holding
    /// the lease `held` still holds it (a lease outlasts its run: the
    /// finalizer's lease is longer than its time limit). A run that stops
    /// gives the lease up with it, so that the next takes over at once.
    /// `false` if another run has the job now.
    pub async fn save_finalize_checkpoint(
        &self,
        job: &Job,
        held: i64,
        stopping: bool,
        at: &shared::job::FinalizeCheckpoint,
    ) -> Result<bool, AwsError> {
        let call = "dynamodb:UpdateItem";
        let checkpoint =
            serde_dynamo::to_attribute_value(at).map_err(|e| AwsError::new(call, e))?;
        let update = if stopping {
            "SET finalize_checkpoint = :at, progress_at = :now REMOVE lease_until"
        } else {
            "SET finalize_checkpoint = :at, progress_at = :now"
        };
        Ok(self
            .update_job(
                &job.tenant_id,
                &job.job_id,
                update,
                Some("lease_until = :held AND attribute_not_exists(email_sent_at)"),
                &[],
                vec![
                    (":at", checkpoint),
                    (":now", s(Utc::now().to_rfc3339())),
                    (":held", n(held)),
                ],
            )
            .await?
            .is_some())
    }

    /// Gives up the lease `held` (a run that failed: its retry need not wait
    /// for the lease to lapse).
    pub async fn release_finalization(&self, job: &Job, held: i64) -> Result<(), AwsError> {
        self.update_job(
            &job.tenant_id,
            &job.job_id,
            "REMOVE lease_until",
            Some("lease_until = :held"),
            &[],
            vec![(":held", n(held))],
        )
        .await?;
        Ok(())
    }

    /// Records the final status, totals and errors by code once the
    /// processed file is written, and the emailed link's token and expiry unless an earlier
    /// run set them (its email may have gone out), if the run holding the
    /// lease `held` still holds it. Returns the job as stored, or `None`
    /// if another run has the job now (this one outlived its lease).
    pub async fn finish_job(
        &self,
        job: &Job,
        held: i64,
        status: JobStatus,
        totals: (&Tally, &ErrorDigest),
        processed_key: &str,
        download: (&str, DateTime<Utc>),
    ) -> Result<Option<Job>, AwsError> {
        let (tally, errors) = totals;
        let (token, until) = download;
        let call = "dynamodb:UpdateItem";
        // Under 30 KB (`shared::digest`), replacing the checkpoint that
        // carried it: the job item grows by no more.
        let errors =
            serde_dynamo::to_attribute_value(errors).map_err(|e| AwsError::new(call, e))?;
        self.update_job(
            &job.tenant_id,
            &job.job_id,
            "SET #status = :status, applied = :applied, failed = :failed, skipped = :skipped, \
             credited = :credited, debited = :debited, errors = :errors, processed_key = :key, \
             finished_at = :now, \
             download_token = if_not_exists(download_token, :token), \
             download_until = if_not_exists(download_until, :until) \
             REMOVE finalize_checkpoint",
            Some("lease_until = :held"),
            &[("#status", "status")],
            vec![
                (":held", n(held)),
                (":status", s(status.as_str())),
                (":applied", n(tally.applied)),
                (":failed", n(tally.failed)),
                (":skipped", n(tally.skipped)),
                (":credited", n(tally.credited)),
                (":debited", n(tally.debited)),
                (":errors", errors),
                (":key", s(processed_key)),
                (":now", s(Utc::now().to_rfc3339())),
                (":token", s(token)),
                (":until", s(until.to_rfc3339())),
            ],
        )
        .await
    }

    pub async fn mark_email_sent(&self, job: &Job) -> Result<(), AwsError> {
        self.update_job(
            &job.tenant_id,
            &job.job_id,
            "SET email_sent_at = :now REMOVE lease_until, unfinished",
            None,
            &[],
            vec![(":now", s(Utc::now().to_rfc3339()))],
        )
        .await?;
        Ok(())
    }
}
