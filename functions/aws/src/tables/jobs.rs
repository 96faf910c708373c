//! Jobs (`jobs` table, `sk = JOB#<job>`): one import from its upload to its
//! email. Here a job is created, read and listed, and moved through its
//! first stages: the upload claimed, the preview, the split and its
//! checkpoints, or the file refused. How a job ends is in `batches`.

use super::request::unless_condition_failed;
use super::{from_item, item, n, s, to_item, Item, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::history::Position;
use shared::job::{Job, JobStatus};
use shared::kind::ImportKind;
use shared::points::PreviewRow;
use shared::split::SplitSummary;
use std::future::Future;

#[derive(Serialize, Deserialize)]
pub(super) struct JobItem {
    pub(super) sk: String,
    #[serde(flatten)]
    pub(super) job: Job,
    /// [`UNFINISHED`] from the upload to the email, then removed: the key of
    /// the sparse index the watchdog sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) unfinished: Option<String>,
    /// The job's place in its tenant's history (`shared::history::Position`):
    /// the key of the sparse index `GET /imports` reads. Set when the job
    /// is created and never written again (every later write is an
    /// `UpdateItem` of other attributes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) listed: Option<String>,
}

impl JobItem {
    /// A new job's item; an API job awaiting its upload is not in flight yet.
    pub(super) fn new(job: &Job) -> Self {
        JobItem {
            sk: job_sk(&job.job_id),
            job: job.clone(),
            unfinished: (job.status != JobStatus::AwaitingUpload).then(|| UNFINISHED.to_owned()),
            listed: Some(
                Position::of(job.created_at, &job.job_id)
                    .as_str()
                    .to_owned(),
            ),
        }
    }
}

/// The jobs table's sparse index of jobs between upload and email.
const UNFINISHED_INDEX: &str = "Unfinished";
/// Its one key value: every unfinished job of every tenant.
pub(super) const UNFINISHED: &str = "open";

/// Longer than any job id (`<yyyymmddhhmmss>-<12 hex>`, `shared::job::job_id`),
/// far below DynamoDB's 1,024-byte sort key.
const MAX_JOB_ID_BYTES: usize = 64;

/// The job's item in `jobs`.
pub(super) fn job_sk(job_id: &str) -> String {
    format!("JOB#{job_id}")
}

/// The item in `jobs` that says a batch is done with: recorded as applied,
/// or closed without it when its job was closed as stalled.
pub(super) fn batch_sk(job_id: &str, batch: u64) -> String {
    format!("{}#BATCH#{batch}", job_sk(job_id))
}

impl Tables {
    /// Stores a new job; `false` if a job with this id exists already.
    pub async fn create_job(&self, job: &Job) -> Result<bool, AwsError> {
        let item = JobItem::new(job);
        self.put_new(&self.jobs, to_item("dynamodb:PutItem", &item)?, "sk")
            .await
    }

    pub async fn job(&self, tenant_id: &str, job_id: &str) -> Result<Option<Job>, AwsError> {
        // `#` separates the parts of the jobs table's sort keys: an id
        // holding one would name a batch marker or a claim, never a job.
        // And a sort key is at most 1 KB: DynamoDB refuses a longer one.
        if job_id.contains('#') || job_id.len() > MAX_JOB_ID_BYTES {
            return Ok(None);
        }
        let key = item([("tenant_id", s(tenant_id)), ("sk", s(job_sk(job_id)))]);
        self.get(&self.jobs, key, true)
            .await?
            .map(|i| from_item::<JobItem>("dynamodb:GetItem", i).map(|j| j.job))
            .transpose()
    }

    /// A tenant's item of the `jobs` table with this `sk`, read consistently.
    pub(super) fn jobs_item(
        &self,
        tenant_id: &str,
        sk: &str,
    ) -> impl Future<Output = Result<Option<Item>, AwsError>> + '_ {
        let key = item([("tenant_id", s(tenant_id)), ("sk", s(sk))]);
        self.get(&self.jobs, key, true)
    }

    /// Applies `SET`s to a job if `condition` holds; returns the job after, or
    /// `None` if the condition failed.
    pub(super) async fn update_job(
        &self,
        tenant_id: &str,
        job_id: &str,
        update: &str,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<Job>, AwsError> {
        let call = "dynamodb:UpdateItem";
        let mut request = self
            .client
            .update_item()
            .table_name(&self.jobs)
            .key("tenant_id", s(tenant_id))
            .key("sk", s(job_sk(job_id)))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned))
            .return_values(ReturnValue::AllNew);
        for (placeholder, name) in names {
            request = request.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        unless_condition_failed(call, request.send().await)?
            .and_then(|out| out.attributes)
            .map(|i| from_item::<JobItem>(call, i).map(|j| j.job))
            .transpose()
    }

    /// Moves an API upload's job from `awaiting_upload` to `next`
    /// (`splitting`, or `waiting` for a membership file), pinning the object
    /// version it will read.
    pub async fn claim_upload(
        &self,
        tenant_id: &str,
        job_id: &str,
        next: JobStatus,
        version: Option<&str>,
        etag: Option<&str>,
    ) -> Result<Option<Job>, AwsError> {
        let mut update =
            String::from("SET #status = :next, progress_at = :now, unfinished = :open");
        let mut values = vec![
            (":open", s(UNFINISHED)),
            (":next", s(next.as_str())),
            (":awaiting", s(JobStatus::AwaitingUpload.as_str())),
            (":now", s(Utc::now().to_rfc3339())),
        ];
        if let Some(v) = version {
            update.push_str(", source_version = :v");
            values.push((":v", s(v)));
        }
        if let Some(e) = etag {
            update.push_str(", source_etag = :e");
            values.push((":e", s(e)));
        }
        self.update_job(
            tenant_id,
            job_id,
            &update,
            Some("#status = :awaiting"),
            &[("#status", "status")],
            values,
        )
        .await
    }

    /// Records the kind read from the header and the preview rows.
    pub async fn set_preview(
        &self,
        tenant_id: &str,
        job_id: &str,
        kind: ImportKind,
        preview: &[PreviewRow],
    ) -> Result<(), AwsError> {
        let preview = serde_dynamo::to_attribute_value(preview)
            .map_err(|e| AwsError::new("dynamodb:UpdateItem", e))?;
        self.update_job(
            tenant_id,
            job_id,
            "SET kind = :kind, preview = :preview",
            None,
            &[],
            vec![(":kind", s(kind.as_str())), (":preview", preview)],
        )
        .await?;
        Ok(())
    }

    /// The whole file is split: the job is now waiting for its batches.
    pub async fn finish_split(
        &self,
        tenant_id: &str,
        job_id: &str,
        summary: &SplitSummary,
    ) -> Result<Option<Job>, AwsError> {
        self.update_job(
            tenant_id,
            job_id,
            "SET #status = :processing, splitting_done = :true, kind = :kind, total_rows = :total, \
             invalid_rows = :invalid, batches_total = :batches, shards = :shards, progress_at = :now",
            Some("#status = :splitting"),
            &[("#status", "status")],
            vec![
                (":processing", s(JobStatus::Processing.as_str())),
                (":splitting", s(JobStatus::Splitting.as_str())),
                (":true", AttributeValue::Bool(true)),
                (":kind", s(summary.kind.as_str())),
                (":total", n(summary.total_rows)),
                (":invalid", n(summary.invalid_rows)),
                (":batches", n(summary.batches)),
                (":shards", n(summary.shards)),
                (":now", s(Utc::now().to_rfc3339())),
            ],
        )
        .await
    }

    /// Records where a split stands, unless another run of it has got
    /// further: `false` then (this run stops, the other goes on).
    pub async fn save_checkpoint(
        &self,
        job: &Job,
        at: &shared::split::Checkpoint,
    ) -> Result<bool, AwsError> {
        self.save_progress(job, "split_checkpoint", at, "row", at.row)
            .await
    }

    /// Records how far the content's identity has been read, unless another
    /// run has read further: `false` then.
    pub async fn save_hashing(
        &self,
        job: &Job,
        at: &shared::job::ContentHash,
    ) -> Result<bool, AwsError> {
        self.save_progress(job, "hashing", at, "offset", at.offset)
            .await
    }

    /// Sets `attribute` to `value` on a job still splitting (or reading
    /// its file for a review), unless the
    /// attribute holds a later one already (its `field` at `position` or
    /// past it): `false` then.
    async fn save_progress<T: Serialize>(
        &self,
        job: &Job,
        attribute: &str,
        value: &T,
        field: &str,
        position: u64,
    ) -> Result<bool, AwsError> {
        let call = "dynamodb:UpdateItem";
        let value = serde_dynamo::to_attribute_value(value).map_err(|e| AwsError::new(call, e))?;
        Ok(self
            .update_job(
                &job.tenant_id,
                &job.job_id,
                &format!("SET {attribute} = :at, progress_at = :now"),
                Some(&format!(
                    "#status IN (:splitting, :reviewing) AND (attribute_not_exists({attribute}) \
                     OR {attribute}.#field < :position)"
                )),
                &[("#status", "status"), ("#field", field)],
                vec![
                    (":at", value),
                    (":now", s(Utc::now().to_rfc3339())),
                    (":splitting", s(JobStatus::Splitting.as_str())),
                    (":reviewing", s(JobStatus::Reviewing.as_str())),
                    (":position", n(position)),
                ],
            )
            .await?
            .is_some())
    }

    /// Raises the highest batch number the split may send, before it sends
    /// up to it (never lowers it).
    pub async fn raise_batches_sent(&self, job: &Job, up_to: u64) -> Result<(), AwsError> {
        self.update_job(
            &job.tenant_id,
            &job.job_id,
            "SET batches_sent = :n",
            Some("attribute_not_exists(batches_sent) OR batches_sent < :n"),
            &[],
            vec![(":n", n(up_to))],
        )
        .await?;
        Ok(())
    }

    /// Gives up a split that failed on every delivery: the job goes on as
    /// split, with the batches it may have sent (applied as usual) and the
    /// rows read up to its last checkpoint; the rows it never reached have
    /// no outcome and are reported not processed. `None` if the job was not
    /// splitting (done, or given up, already).
    pub async fn abandon_split(
        &self,
        job: &Job,
        shards: u32,
        why: &str,
    ) -> Result<Option<Job>, AwsError> {
        let at = job.split_checkpoint.as_ref();
        self.update_job(
            &job.tenant_id,
            &job.job_id,
            "SET #status = :processing, splitting_done = :true, split_abandoned = :why, \
             total_rows = :rows, invalid_rows = :invalid, batches_total = :batches, \
             shards = :shards, progress_at = :now",
            Some("#status = :splitting"),
            &[("#status", "status")],
            vec![
                (":processing", s(JobStatus::Processing.as_str())),
                (":splitting", s(JobStatus::Splitting.as_str())),
                (":true", AttributeValue::Bool(true)),
                (":why", s(why)),
                (":rows", n(at.map_or(0, |c| c.row))),
                (":invalid", n(at.map_or(0, |c| c.invalid_rows))),
                (
                    ":batches",
                    n(job.batches_sent.max(at.map_or(0, |c| c.batches))),
                ),
                (":shards", n(shards)),
                (":now", s(Utc::now().to_rfc3339())),
            ],
        )
        .await
    }

    /// The file is refused as a whole.
    pub async fn reject_job(
        &self,
        tenant_id: &str,
        job_id: &str,
        why: &str,
    ) -> Result<Option<Job>, AwsError> {
        self.update_job(
            tenant_id,
            job_id,
            "SET #status = :rejected, rejection = :why, finished_at = :now REMOVE waiting_for",
            Some("#status IN (:splitting, :awaiting, :waiting, :reviewing)"),
            &[("#status", "status")],
            vec![
                (":reviewing", s(JobStatus::Reviewing.as_str())),
                (":rejected", s(JobStatus::Rejected.as_str())),
                (":waiting", s(JobStatus::Waiting.as_str())),
                (":splitting", s(JobStatus::Splitting.as_str())),
                (":awaiting", s(JobStatus::AwaitingUpload.as_str())),
                (":why", s(why)),
                (":now", s(Utc::now().to_rfc3339())),
            ],
        )
        .await
    }

    /// A tenant's jobs, oldest first (job ids are time-ordered).
    pub async fn jobs(&self, tenant_id: &str) -> Result<Vec<Job>, AwsError> {
        let items = self.jobs_items(tenant_id, "JOB#").await?;
        items
            .into_iter()
            .filter(|item| !matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk.contains("#BATCH#")))
            .map(|item| from_item::<JobItem>("dynamodb:Query", item).map(|i| i.job))
            .collect()
    }

    /// A tenant's items of the `jobs` table whose `sk` starts with `prefix`,
    /// in key order (consistent reads, every page).
    pub(super) async fn jobs_items(
        &self,
        tenant_id: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, AwsError> {
        let query = self
            .client
            .query()
            .table_name(&self.jobs)
            .key_condition_expression("tenant_id = :t AND begins_with(sk, :p)")
            .expression_attribute_values(":t", s(tenant_id))
            .expression_attribute_values(":p", s(prefix))
            .consistent_read(true);
        Self::query_all(query).await
    }

    /// Jobs whose pipeline has not finished, across tenants (the local runner
    /// waits for none to be left). A final job still owing its email counts.
    /// Read from the sparse index: no finished job, claim or marker is read,
    /// so a sweep's cost follows the jobs in flight, not the table's size.
    pub async fn unfinished_jobs(&self) -> Result<Vec<Job>, AwsError> {
        let call = "dynamodb:Query";
        let mut pages = self
            .client
            .query()
            .table_name(&self.jobs)
            .index_name(UNFINISHED_INDEX)
            .key_condition_expression("unfinished = :open")
            .expression_attribute_values(":open", s(UNFINISHED))
            .into_paginator()
            .items()
            .send();
        let mut jobs = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| AwsError::sdk(call, e))?;
            // One job that cannot be read must not hide the others.
            match from_item::<JobItem>(call, item) {
                Ok(item) => jobs.push(item.job),
                Err(err) => {
                    tracing::error!(error = %err, "an unfinished job cannot be read: skipped")
                }
            }
        }
        Ok(jobs)
    }
}
