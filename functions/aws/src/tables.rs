//! The DynamoDB tables.
//!
//! | table    | key                                   | items                                   |
//! |----------|---------------------------------------|-----------------------------------------|
//! | tenants  | `tenant_id`                           | one per tenant                          |
//! | jobs     | `tenant_id`, `sk` = `JOB#<job>`       | the job; `JOB#<job>#BATCH#<n>` markers; `CONTENT#<sha256>` claims; `MEMBERSHIP#<date>#<seq>#<scope>` places (`order`) |
//! | wallets  | `pk` = `<tenant>#<customer>`, `sk`    | `WALLET` (its lots packed: `lots`), and `ENTRY#<job>#<row>` ledger entries |
//! | outcomes | `job_id`, `row`                       | one per row decided alone; pages of a batch's rows (`pages`) |
//! | subscriptions | `pk`, `sk`                       | cards and active-card claims (`cards`)  |
//!
//! A dry run keeps its own copies of wallets under `pk` =
//! `<tenant>#dryrun:<job>#<customer>`, with a TTL.

use crate::settings::Settings;
use crate::AwsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, PutRequest, ReturnValue,
    TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::apply::{Account, Commit, Committed, LedgerStore, Page};
use shared::identifier::CustomerRef;
use shared::job::{Job, JobStatus};
use shared::kind::ImportKind;
use shared::ledger::{LedgerEntry, Lot, Wallet};
use shared::membership::programs::Memberships;
use shared::outcome::{RowOutcome, Tally};
use shared::points::PreviewRow;
use shared::split::SplitSummary;
use shared::tenant::Tenant;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Dry-run wallets and outcomes are kept this long.
const SCRATCH_TTL_DAYS: i64 = 30;
/// Row outcomes are kept this long after the import (the processed file stays).
mod cards;
mod lots;
mod order;
mod pages;

pub use pages::JobOutcomes;

const OUTCOME_TTL_DAYS: i64 = 90;

#[derive(Clone)]
pub struct Tables {
    client: Client,
    tenants: String,
    jobs: String,
    wallets: String,
    outcomes: String,
    subscriptions: String,
}

#[derive(Serialize, Deserialize)]
struct JobItem {
    sk: String,
    #[serde(flatten)]
    job: Job,
    /// [`UNFINISHED`] from the upload to the email, then removed: the key of
    /// the sparse index the watchdog sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unfinished: Option<String>,
}

/// The jobs table's sparse index of jobs between upload and email.
const UNFINISHED_INDEX: &str = "Unfinished";
/// Its one key value: every unfinished job of every tenant.
const UNFINISHED: &str = "open";

#[derive(Serialize, Deserialize)]
struct WalletItem {
    pk: String,
    sk: String,
    tenant_id: String,
    customer: CustomerRef,
    permanent: i64,
    /// One binary attribute: the item's size stays bounded (`lots`).
    #[serde(with = "lots")]
    lots: Vec<Lot>,
    version: u64,
    /// The balance when last written (expiry may have lowered it since).
    balance: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_by: Option<String>,
    updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct EntryItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    entry: LedgerEntry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct OutcomeItem {
    job_id: String,
    #[serde(flatten)]
    outcome: RowOutcome,
    ttl: i64,
}

/// A customer's wallet with its history, for display.
#[derive(Debug, Clone, Serialize)]
pub struct WalletView {
    pub wallet: Option<Wallet>,
    pub entries: Vec<LedgerEntry>,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Longer than any job id (`<yyyymmddhhmmss>-<12 hex>`, `shared::job::job_id`),
/// far below DynamoDB's 1,024-byte sort key.
const MAX_JOB_ID_BYTES: usize = 64;

fn to_item<T: Serialize>(call: &'static str, value: &T) -> Result<Item, AwsError> {
    serde_dynamo::to_item(value).map_err(|e| AwsError::new(call, e))
}

fn from_item<T: for<'de> Deserialize<'de>>(call: &'static str, item: Item) -> Result<T, AwsError> {
    serde_dynamo::from_item(item).map_err(|e| AwsError::new(call, e))
}

fn job_sk(job_id: &str) -> String {
    format!("JOB#{job_id}")
}

/// The item in `jobs` that says a batch is done with: recorded as applied,
/// or closed without it when its job was closed as stalled.
fn batch_sk(job_id: &str, batch: u64) -> String {
    format!("{}#BATCH#{batch}", job_sk(job_id))
}

/// The item in `jobs` that says which job imported a content.
fn content_sk(sha256: &str) -> String {
    format!("CONTENT#{sha256}")
}

fn wallet_pk(account: &Account) -> String {
    match &account.dry_run_of {
        None => format!("{}#{}", account.tenant_id, account.customer),
        Some(job) => format!("{}#dryrun:{job}#{}", account.tenant_id, account.customer),
    }
}

fn epoch_in_days(days: i64) -> i64 {
    (Utc::now() + chrono::Duration::days(days)).timestamp()
}

/// A dry run's wallets and entries expire; live ones are kept.
fn scratch_ttl(account: &Account) -> Option<i64> {
    account
        .dry_run_of
        .as_ref()
        .map(|_| epoch_in_days(SCRATCH_TTL_DAYS))
}

fn wallet_of(call: &'static str, item: Item) -> Result<Wallet, AwsError> {
    let w: WalletItem = from_item(call, item)?;
    Ok(Wallet {
        customer: w.customer,
        permanent: w.permanent,
        lots: w.lots,
        version: w.version,
        created_by: w.created_by,
    })
}

impl Tables {
    pub fn new(client: Client, settings: &Settings) -> Self {
        Tables {
            client,
            tenants: settings.tenants_table.clone(),
            jobs: settings.jobs_table.clone(),
            wallets: settings.wallets_table.clone(),
            outcomes: settings.outcomes_table.clone(),
            subscriptions: settings.subscriptions_table.clone(),
        }
    }

    // ----- tenants -----

    /// Stores a new tenant; `false` if the id is taken.
    /// The DynamoDB client, for developer tools that measure the tables.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, AwsError> {
        self.put_new(
            &self.tenants,
            to_item("dynamodb:PutItem", tenant)?,
            "tenant_id",
        )
        .await
    }

    /// Sets a tenant's membership configuration; `false` if there is no
    /// such tenant.
    pub async fn set_memberships(
        &self,
        tenant_id: &str,
        memberships: &Memberships,
    ) -> Result<bool, AwsError> {
        let call = "dynamodb:UpdateItem";
        let value =
            serde_dynamo::to_attribute_value(memberships).map_err(|e| AwsError::new(call, e))?;
        match self
            .client
            .update_item()
            .table_name(&self.tenants)
            .key("tenant_id", s(tenant_id))
            .update_expression("SET memberships = :m")
            .condition_expression("attribute_exists(tenant_id)")
            .expression_attribute_values(":m", value)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::sdk(call, e)),
        }
    }

    /// Puts an item unless one with its key exists; `false` if it does.
    async fn put_new(
        &self,
        table: &str,
        item: Item,
        key_attribute: &str,
    ) -> Result<bool, AwsError> {
        self.put_if(
            table,
            item,
            &format!("attribute_not_exists({key_attribute})"),
            vec![],
        )
        .await
    }

    /// Puts `item` if `condition` holds; returns whether it did.
    async fn put_if(
        &self,
        table: &str,
        item: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, AwsError> {
        let mut request = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::sdk("dynamodb:PutItem", e)),
        }
    }

    /// Records that `job` imports the content `sha256` of its tenant, unless
    /// another job did first: then returns that job's id.
    pub async fn claim_content(&self, job: &Job, sha256: &str) -> Result<Option<String>, AwsError> {
        if self.put_content_claim(job, sha256, None).await? {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.jobs)
            .key("tenant_id", s(&job.tenant_id))
            .key("sk", s(content_sk(sha256)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb:GetItem", e))?;
        match out.item.as_ref().and_then(|i| i.get("job_id")) {
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

    async fn put_content_claim(
        &self,
        job: &Job,
        sha256: &str,
        from: Option<&str>,
    ) -> Result<bool, AwsError> {
        let item = HashMap::from([
            ("tenant_id".to_owned(), s(&job.tenant_id)),
            ("sk".to_owned(), s(content_sk(sha256))),
            ("job_id".to_owned(), s(&job.job_id)),
            ("filename".to_owned(), s(&job.filename)),
            ("claimed_at".to_owned(), s(Utc::now().to_rfc3339())),
        ]);
        match from {
            None => {
                self.put_if(
                    &self.jobs,
                    item,
                    "attribute_not_exists(sk) OR job_id = :job",
                    vec![(":job", s(&job.job_id))],
                )
                .await
            }
            Some(holder) => {
                self.put_if(
                    &self.jobs,
                    item,
                    "job_id = :holder",
                    vec![(":holder", s(holder))],
                )
                .await
            }
        }
    }

    pub async fn tenant(&self, tenant_id: &str) -> Result<Option<Tenant>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tenants)
            .key("tenant_id", s(tenant_id))
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb:GetItem", e))?;
        out.item
            .map(|i| from_item("dynamodb:GetItem", i))
            .transpose()
    }

    // ----- jobs -----

    /// Stores a new job; `false` if a job with this id exists already.
    pub async fn create_job(&self, job: &Job) -> Result<bool, AwsError> {
        let item = JobItem {
            sk: job_sk(&job.job_id),
            job: job.clone(),
            // An API job awaiting its upload is not in flight yet.
            unfinished: (job.status != JobStatus::AwaitingUpload).then(|| UNFINISHED.to_owned()),
        };
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
        let out = self
            .client
            .get_item()
            .table_name(&self.jobs)
            .key("tenant_id", s(tenant_id))
            .key("sk", s(job_sk(job_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb:GetItem", e))?;
        out.item
            .map(|i| from_item::<JobItem>("dynamodb:GetItem", i).map(|j| j.job))
            .transpose()
    }

    /// Applies `SET`s to a job if `condition` holds; returns the job after, or
    /// `None` if the condition failed.
    async fn update_job(
        &self,
        tenant_id: &str,
        job_id: &str,
        update: &str,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<Job>, AwsError> {
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
        match request.send().await {
            Ok(out) => out
                .attributes
                .map(|i| from_item::<JobItem>("dynamodb:UpdateItem", i).map(|j| j.job))
                .transpose(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::sdk("dynamodb:UpdateItem", e)),
        }
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

    /// Sets `attribute` to `value` on a job still splitting, unless the
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
                    "#status = :splitting AND (attribute_not_exists({attribute}) \
                     OR {attribute}.#field < :position)"
                )),
                &[("#status", "status"), ("#field", field)],
                vec![
                    (":at", value),
                    (":now", s(Utc::now().to_rfc3339())),
                    (":splitting", s(JobStatus::Splitting.as_str())),
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
            Some("#status IN (:splitting, :awaiting, :waiting)"),
            &[("#status", "status")],
            vec![
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

    /// Counts a finished batch into its job, once however often it is
    /// reported, and returns the job as it stands.
    pub async fn record_batch(
        &self,
        tenant_id: &str,
        job_id: &str,
        batch_number: u64,
        tally: &Tally,
    ) -> Result<Job, AwsError> {
        let marker = Put::builder()
            .table_name(&self.jobs)
            .item("tenant_id", s(tenant_id))
            .item("sk", s(batch_sk(job_id, batch_number)))
            .item("ttl", n(epoch_in_days(OUTCOME_TTL_DAYS)))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(|e| AwsError::new("dynamodb:TransactWriteItems", e))?;
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
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(marker).build())
            .transact_items(TransactWriteItem::builder().update(count).build())
            .send()
            .await;
        match result {
            Ok(_) => {}
            // Counted by an earlier delivery of the same batch, or the job
            // was closed without it.
            Err(e)
                if cancellation_codes(&e)
                    .iter()
                    .any(|c| c == "ConditionalCheckFailed") => {}
            Err(e) => return Err(AwsError::sdk("dynamodb:TransactWriteItems", e)),
        }
        self.job(tenant_id, job_id)
            .await?
            .ok_or_else(|| AwsError::new("dynamodb:GetItem", format!("job {job_id} vanished")))
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

    /// Records the final status and totals once the processed file is
    /// written, and the emailed link's token and expiry unless an earlier
    /// run set them (its email may have gone out), if the run holding the
    /// lease `held` still holds it. Returns the job as stored, or `None`
    /// if another run has the job now (this one outlived its lease).
    pub async fn finish_job(
        &self,
        job: &Job,
        held: i64,
        status: JobStatus,
        tally: &Tally,
        processed_key: &str,
        download: (&str, DateTime<Utc>),
    ) -> Result<Option<Job>, AwsError> {
        let (token, until) = download;
        self.update_job(
            &job.tenant_id,
            &job.job_id,
            "SET #status = :status, applied = :applied, failed = :failed, skipped = :skipped, \
             credited = :credited, debited = :debited, processed_key = :key, finished_at = :now, \
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
    async fn jobs_items(&self, tenant_id: &str, prefix: &str) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.jobs)
                .key_condition_expression("tenant_id = :t AND begins_with(sk, :p)")
                .expression_attribute_values(":t", s(tenant_id))
                .expression_attribute_values(":p", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::sdk("dynamodb:Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
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

    // ----- outcomes -----

    /// Records outcomes decided outside a ledger commit (rows that failed
    /// validation). Re-recording the same outcome is harmless.
    pub async fn put_outcomes(
        &self,
        job_id: &str,
        outcomes: &[RowOutcome],
    ) -> Result<(), AwsError> {
        let call = "dynamodb:BatchWriteItem";
        let ttl = epoch_in_days(OUTCOME_TTL_DAYS);
        let items = outcomes
            .iter()
            .map(|o| {
                let item = OutcomeItem {
                    job_id: job_id.to_owned(),
                    outcome: o.clone(),
                    ttl,
                };
                to_item(call, &item)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_put(&self.outcomes, items).await
    }

    /// Closes the batches of a stalled job: a batch not recorded as applied
    /// by now never will be, and no delivery of it can decide a row any more
    /// (a commit checks its batch is open).
    pub async fn close_batches(&self, job: &Job) -> Result<(), AwsError> {
        let ttl = n(epoch_in_days(OUTCOME_TTL_DAYS));
        let items = (1..=job.batches_total)
            .map(|batch| {
                HashMap::from([
                    ("tenant_id".to_owned(), s(&job.tenant_id)),
                    ("sk".to_owned(), s(batch_sk(&job.job_id, batch))),
                    ("closed".to_owned(), AttributeValue::Bool(true)),
                    ("ttl".to_owned(), ttl.clone()),
                ])
            })
            .collect();
        self.batch_put(&self.jobs, items).await
    }

    /// Puts items, 25 a request, until every one is written.
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<(), AwsError> {
        let call = "dynamodb:BatchWriteItem";
        for chunk in items.chunks(25) {
            let mut requests = chunk
                .iter()
                .map(|item| {
                    Ok(WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item.clone()))
                                .build()
                                .map_err(|e| AwsError::new(call, e))?,
                        )
                        .build())
                })
                .collect::<Result<Vec<_>, AwsError>>()?;
            let mut attempt = 0;
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .map_err(|e| AwsError::sdk(call, e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
                attempt += 1;
                backoff(attempt, !requests.is_empty()).await;
            }
        }
        Ok(())
    }

    // ----- wallets -----

    /// A wallet and its ledger entries (live wallets only).
    pub async fn wallet_view(
        &self,
        tenant_id: &str,
        customer: &CustomerRef,
    ) -> Result<WalletView, AwsError> {
        let pk = wallet_pk(&Account {
            tenant_id: tenant_id.to_owned(),
            customer: customer.clone(),
            dry_run_of: None,
        });
        let mut view = WalletView {
            wallet: None,
            entries: Vec::new(),
        };
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.wallets)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::sdk("dynamodb:Query", e))?;
            for item in out.items.unwrap_or_default() {
                let is_wallet =
                    matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk == "WALLET");
                if is_wallet {
                    view.wallet = Some(wallet_of("dynamodb:Query", item)?);
                } else {
                    view.entries
                        .push(from_item::<EntryItem>("dynamodb:Query", item)?.entry);
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        view.entries.sort_by(|a, b| {
            (a.applied_at, &a.job_id, a.row).cmp(&(b.applied_at, &b.job_id, b.row))
        });
        Ok(view)
    }

    /// The stored wallets among `pks`, by `pk`.
    async fn stored_wallets(&self, pks: Vec<String>) -> Result<HashMap<String, Wallet>, AwsError> {
        let call = "dynamodb:BatchGetItem";
        let keys = pks
            .into_iter()
            .map(|pk| HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s("WALLET"))]))
            .collect();
        let mut found = HashMap::new();
        for item in self.batch_get(&self.wallets, keys).await? {
            let pk = match item.get("pk") {
                Some(AttributeValue::S(pk)) => pk.clone(),
                _ => return Err(AwsError::new(call, "a wallet item without its pk")),
            };
            found.insert(pk, wallet_of(call, item)?);
        }
        Ok(found)
    }

    /// The items of `table` with these keys that exist, read consistently,
    /// a hundred keys a request.
    async fn batch_get(&self, table: &str, keys: Vec<Item>) -> Result<Vec<Item>, AwsError> {
        let call = "dynamodb:BatchGetItem";
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            let mut keys = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| AwsError::new(call, e))?,
            );
            let mut attempt = 0;
            while let Some(request) = keys.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| AwsError::sdk(call, e))?;
                found.extend(
                    out.responses
                        .and_then(|mut r| r.remove(table))
                        .unwrap_or_default(),
                );
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .filter(|k| !k.keys().is_empty());
                attempt += 1;
                backoff(attempt, keys.is_some()).await;
            }
        }
        Ok(found)
    }

    /// The transaction item writing the rows' outcomes into their page, if
    /// none of them has one yet.
    fn page_update(&self, c: &Commit) -> Result<TransactWriteItem, AwsError> {
        let call = "dynamodb:TransactWriteItems";
        let mut set = vec!["#ttl = :ttl".to_owned()];
        let mut condition = Vec::new();
        let mut names = HashMap::from([("#ttl".to_owned(), "ttl".to_owned())]);
        let mut values = HashMap::from([(":ttl".to_owned(), n(epoch_in_days(OUTCOME_TTL_DAYS)))]);
        for (i, row) in c.rows.iter().enumerate() {
            names.insert(format!("#r{i}"), pages::row_attribute(row.outcome.row));
            values.insert(format!(":r{i}"), s(pages::encode(&row.outcome)));
            set.push(format!("#r{i} = :r{i}"));
            condition.push(format!("attribute_not_exists(#r{i})"));
        }
        Ok(TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.outcomes)
                    .key("job_id", s(&c.page.job_id))
                    .key("row", n(pages::page_key(&c.page)))
                    .update_expression(format!("SET {}", set.join(", ")))
                    .condition_expression(condition.join(" AND "))
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .build()
                    .map_err(|e| AwsError::new(call, e))?,
            )
            .build())
    }

    /// The transaction item recording a row's outcome, if it has none yet.
    fn outcome_put(
        &self,
        job_id: &str,
        outcome: &RowOutcome,
    ) -> Result<TransactWriteItem, AwsError> {
        let call = "dynamodb:TransactWriteItems";
        let item = OutcomeItem {
            job_id: job_id.to_owned(),
            outcome: outcome.clone(),
            ttl: epoch_in_days(OUTCOME_TTL_DAYS),
        };
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.outcomes)
                    .set_item(Some(to_item(call, &item)?))
                    .condition_expression("attribute_not_exists(job_id)")
                    .build()
                    .map_err(|e| AwsError::new(call, e))?,
            )
            .build())
    }

    fn version_condition(read_version: u64) -> (&'static str, Option<AttributeValue>) {
        if read_version == 0 {
            ("attribute_not_exists(pk)", None)
        } else {
            ("version = :v", Some(n(read_version)))
        }
    }
}

/// Waits a little longer after each unsuccessful attempt.
async fn backoff(attempt: u32, again: bool) {
    if again {
        let millis = 25u64 << attempt.min(6);
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
}

/// The per-item cancellation codes of a cancelled transaction.
impl Tables {
    /// Records refusals for rows no delivery has decided, up to 100 in one
    /// transaction (each `attribute_not_exists`): a row decided meanwhile
    /// keeps its outcome and drops out, and the rest are written again.
    /// Returns how many were recorded.
    pub async fn seal_many(&self, job_id: &str, outcomes: &[RowOutcome]) -> Result<u64, AwsError> {
        let call = "dynamodb:TransactWriteItems";
        let ttl = epoch_in_days(OUTCOME_TTL_DAYS);
        let mut sealed = 0;
        for chunk in outcomes.chunks(shared::apply::MAX_COMMIT_ITEMS) {
            let mut pending: Vec<&RowOutcome> = chunk.iter().collect();
            while !pending.is_empty() {
                let items = pending
                    .iter()
                    .map(|outcome| {
                        let item = OutcomeItem {
                            job_id: job_id.to_owned(),
                            outcome: (*outcome).clone(),
                            ttl,
                        };
                        Ok(TransactWriteItem::builder()
                            .put(
                                Put::builder()
                                    .table_name(&self.outcomes)
                                    .set_item(Some(to_item(call, &item)?))
                                    .condition_expression("attribute_not_exists(job_id)")
                                    .build()
                                    .map_err(|e| AwsError::new(call, e))?,
                            )
                            .build())
                    })
                    .collect::<Result<Vec<_>, AwsError>>()?;
                match self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send()
                    .await
                {
                    Ok(_) => {
                        sealed += pending.len() as u64;
                        pending.clear();
                    }
                    Err(err) => {
                        let codes = cancellation_codes(&err);
                        let decided: Vec<bool> = codes
                            .iter()
                            .map(|c| c == "ConditionalCheckFailed")
                            .collect();
                        if !decided.iter().any(|&d| d) {
                            return Err(AwsError::sdk(call, err));
                        }
                        pending = pending
                            .into_iter()
                            .zip(decided)
                            .filter(|(_, decided)| !decided)
                            .map(|(outcome, _)| outcome)
                            .collect();
                    }
                }
            }
        }
        Ok(sealed)
    }
}

fn cancellation_codes<R>(
    err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>,
) -> Vec<String> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

impl LedgerStore for Tables {
    type Error = AwsError;

    async fn decided(&self, job_id: &str, rows: &[u64]) -> Result<Vec<RowOutcome>, AwsError> {
        let keys = rows
            .iter()
            .map(|r| HashMap::from([("job_id".to_owned(), s(job_id)), ("row".to_owned(), n(r))]))
            .collect();
        let mut found = self
            .batch_get(&self.outcomes, keys)
            .await?
            .into_iter()
            .map(|item| from_item::<OutcomeItem>("dynamodb:BatchGetItem", item).map(|o| o.outcome))
            .collect::<Result<Vec<_>, _>>()?;
        found.sort_by_key(|o| o.row);
        Ok(found)
    }

    async fn wallet(&self, account: &Account) -> Result<Wallet, AwsError> {
        let mut found = self.wallets(std::slice::from_ref(account)).await?;
        found
            .pop()
            .ok_or_else(|| AwsError::new("dynamodb:BatchGetItem", "no wallet read"))
    }

    async fn seal(&self, job_id: &str, outcome: &RowOutcome) -> Result<bool, AwsError> {
        let item = OutcomeItem {
            job_id: job_id.to_owned(),
            outcome: outcome.clone(),
            ttl: epoch_in_days(OUTCOME_TTL_DAYS),
        };
        self.put_new(
            &self.outcomes,
            to_item("dynamodb:PutItem", &item)?,
            "job_id",
        )
        .await
    }

    async fn wallets(&self, accounts: &[Account]) -> Result<Vec<Wallet>, AwsError> {
        let live_pk = |a: &Account| {
            wallet_pk(&Account {
                dry_run_of: None,
                ..a.clone()
            })
        };
        let mut stored = self
            .stored_wallets(accounts.iter().map(wallet_pk).collect())
            .await?;
        // A dry run's copy never written starts from the live wallet.
        let unwritten: Vec<String> = accounts
            .iter()
            .filter(|a| a.dry_run_of.is_some() && !stored.contains_key(&wallet_pk(a)))
            .map(live_pk)
            .collect();
        let mut live = self.stored_wallets(unwritten).await?;
        Ok(accounts
            .iter()
            .map(|a| match stored.remove(&wallet_pk(a)) {
                Some(wallet) => wallet,
                None => match a.dry_run_of.as_ref().and_then(|_| live.remove(&live_pk(a))) {
                    Some(wallet) => Wallet {
                        version: 0,
                        ..wallet
                    },
                    None => Wallet::empty(a.customer.clone()),
                },
            })
            .collect())
    }

    async fn page_outcomes(&self, pages: &[Page]) -> Result<Vec<RowOutcome>, AwsError> {
        let keys = pages
            .iter()
            .map(|p| {
                HashMap::from([
                    ("job_id".to_owned(), s(&p.job_id)),
                    ("row".to_owned(), n(pages::page_key(p))),
                ])
            })
            .collect();
        let mut found = Vec::new();
        for item in self.batch_get(&self.outcomes, keys).await? {
            found.extend(pages::page_outcomes("dynamodb:BatchGetItem", &item)?);
        }
        Ok(found)
    }

    async fn commit(&self, c: &Commit) -> Result<Committed, AwsError> {
        let call = "dynamodb:TransactWriteItems";
        let now = Utc::now();
        // What each transaction item stands for, to read its cancellation reason.
        enum Part {
            Batch,
            Page,
            Wallet(usize),
            Entry,
        }
        let mut parts = vec![Part::Batch, Part::Page];
        let mut items = vec![
            // The batch is still open: the import was not closed without it.
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.jobs)
                        .key("tenant_id", s(&c.page.tenant_id))
                        .key("sk", s(batch_sk(&c.page.job_id, c.page.batch)))
                        .condition_expression("attribute_not_exists(sk)")
                        .build()
                        .map_err(|e| AwsError::new(call, e))?,
                )
                .build(),
            self.page_update(c)?,
        ];
        for (i, w) in c.wallets.iter().enumerate() {
            let pk = wallet_pk(&w.account);
            let (condition, version) = Self::version_condition(w.read_version);
            let values = version.map(|v| HashMap::from([(":v".to_owned(), v)]));
            let item = match &w.after {
                Some((wallet, balance)) => {
                    let item = WalletItem {
                        pk,
                        sk: "WALLET".to_owned(),
                        tenant_id: w.account.tenant_id.clone(),
                        customer: wallet.customer.clone(),
                        permanent: wallet.permanent,
                        lots: wallet.lots.clone(),
                        version: wallet.version,
                        balance: *balance,
                        created_by: wallet.created_by.clone(),
                        updated_at: now,
                        ttl: scratch_ttl(&w.account),
                    };
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(&self.wallets)
                                .set_item(Some(to_item(call, &item)?))
                                .condition_expression(condition)
                                .set_expression_attribute_values(values)
                                .build()
                                .map_err(|e| AwsError::new(call, e))?,
                        )
                        .build()
                }
                None => TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name(&self.wallets)
                            .key("pk", s(&pk))
                            .key("sk", s("WALLET"))
                            .condition_expression(condition)
                            .set_expression_attribute_values(values)
                            .build()
                            .map_err(|e| AwsError::new(call, e))?,
                    )
                    .build(),
            };
            items.push(item);
            parts.push(Part::Wallet(i));
        }
        let accounts: HashMap<&CustomerRef, &Account> = c
            .wallets
            .iter()
            .map(|w| (&w.account.customer, &w.account))
            .collect();
        for entry in c.rows.iter().filter_map(|r| r.entry.as_ref()) {
            let account = accounts.get(&entry.customer).ok_or_else(|| {
                AwsError::new(
                    call,
                    format!("row {}: its wallet is not in the commit", entry.row),
                )
            })?;
            let item = EntryItem {
                pk: wallet_pk(account),
                sk: format!("ENTRY#{}#{:010}", entry.job_id, entry.row),
                entry: entry.clone(),
                ttl: scratch_ttl(account),
            };
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.wallets)
                            .set_item(Some(to_item(call, &item)?))
                            .condition_expression("attribute_not_exists(pk)")
                            .build()
                            .map_err(|e| AwsError::new(call, e))?,
                    )
                    .build(),
            );
            parts.push(Part::Entry);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Committed::Done),
            Err(err) => {
                let codes = cancellation_codes(&err);
                if codes.is_empty() {
                    return Err(AwsError::sdk(call, err));
                }
                let mut decided_elsewhere = false;
                let mut closed = false;
                let mut stale = Vec::new();
                for (part, code) in parts.iter().zip(&codes) {
                    match (part, code.as_str()) {
                        (_, "None") => {}
                        (Part::Batch, "ConditionalCheckFailed") => closed = true,
                        (Part::Page | Part::Entry, "ConditionalCheckFailed") => {
                            decided_elsewhere = true
                        }
                        (Part::Wallet(i), "ConditionalCheckFailed") => {
                            stale.push(c.wallets[*i].account.clone())
                        }
                        // Another request was writing the same item: read
                        // everything again before deciding again.
                        (_, "TransactionConflict") => {
                            decided_elsewhere = true;
                            stale.extend(c.wallets.iter().map(|w| w.account.clone()));
                        }
                        _ => return Err(AwsError::sdk(call, err)),
                    }
                }
                Ok(Committed::Refused {
                    decided_elsewhere,
                    stale,
                    closed,
                })
            }
        }
    }
}
