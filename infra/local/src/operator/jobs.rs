//! `jobs <tenant>` and `job <tenant> <job>`: a tenant's imports newest
//! first, read as `GET /imports` reads them (the jobs table's `History`
//! index), and one import in full.

use super::table::{labelled, when, Table};
use clap::Args;
use loyalty_aws::Aws;
use serde_json::json;
use shared::history::{ListedJob, Position};
use shared::job::Job;

/// The most jobs a page lists, as the API's.
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// The tenant's id.
    pub tenant: String,
    /// How many jobs at most (1 to 100).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=MAX_LIMIT as i64))]
    pub limit: u16,
    /// Where the page starts: the `next` cursor a previous page printed
    /// (the API's `next_cursor` works too).
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JobArgs {
    /// The tenant's id.
    pub tenant: String,
    /// The job's id, as `jobs` lists it.
    pub job_id: String,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One page of a tenant's jobs.
#[derive(Debug)]
pub struct JobsPage {
    pub tenant_id: String,
    pub jobs: Vec<ListedJob>,
    /// The cursor of the next page, if one follows.
    pub next: Option<String>,
}

/// A page of the tenant's jobs, newest first, after `cursor` if given.
pub async fn list(
    aws: &Aws,
    tenant_id: &str,
    limit: usize,
    cursor: Option<&str>,
) -> anyhow::Result<JobsPage> {
    super::tenants::existing(aws, tenant_id).await?;
    let after = match cursor {
        Some(c) => Some(Position::from_cursor(c).ok_or_else(|| {
            anyhow::anyhow!("--cursor '{c}' is not a cursor a page of jobs printed")
        })?),
        None => None,
    };
    let page = aws
        .tables
        .history(tenant_id, limit.clamp(1, MAX_LIMIT), after.as_ref())
        .await?;
    Ok(JobsPage {
        tenant_id: tenant_id.to_owned(),
        jobs: page.jobs,
        next: page.next.as_ref().map(Position::cursor),
    })
}

/// The page as JSON: each job as the index holds it, with its rows
/// decided and whether it can be reverted.
pub fn list_json(page: &JobsPage) -> serde_json::Value {
    let jobs: Vec<serde_json::Value> = page
        .jobs
        .iter()
        .map(|job| {
            let mut value = serde_json::to_value(job).unwrap_or_default();
            value["rows_decided"] = job.rows_decided().into();
            value["can_revert"] = job.can_revert().into();
            value
        })
        .collect();
    json!({ "tenant_id": page.tenant_id, "jobs": jobs, "next_cursor": page.next })
}

/// The page as a table, and how to read the next one.
pub fn list_table(page: &JobsPage) -> String {
    if page.jobs.is_empty() {
        return format!("no jobs for tenant {}\n", page.tenant_id);
    }
    let mut table = Table::new(&[
        "JOB",
        "CREATED",
        "KIND",
        "FILE",
        "STATUS",
        "DECIDED/ROWS",
        "APPLIED",
        "FAILED",
        "SKIPPED",
    ]);
    for job in &page.jobs {
        let total = if job.splitting_done {
            job.total_rows.to_string()
        } else {
            "?".to_owned()
        };
        let mut status = job.status.as_str().to_owned();
        if job.dry_run {
            status.push_str(" (dry run)");
        }
        table.row(vec![
            job.job_id.clone(),
            job.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            job.kind.map_or("?", |k| k.as_str()).to_owned(),
            job.filename.clone(),
            status,
            format!("{}/{total}", job.rows_decided()),
            job.applied.to_string(),
            job.failed.to_string(),
            job.skipped.to_string(),
        ]);
    }
    let mut out = table.render();
    if let Some(next) = &page.next {
        out.push_str(&format!(
            "more: loyalty-local jobs {} --cursor {next}\n",
            page.tenant_id
        ));
    }
    out
}

/// One of the tenant's jobs.
pub async fn show(aws: &Aws, tenant_id: &str, job_id: &str) -> anyhow::Result<Job> {
    super::tenants::existing(aws, tenant_id).await?;
    aws.tables
        .job(tenant_id, job_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no job '{job_id}' for tenant '{tenant_id}'"))
}

/// A job as JSON: what `GET /imports/{job}` shows and what an operator
/// looks at besides (the object, the batches, the times), without the
/// download token or the preview's rows (a customer's data).
pub fn job_json(job: &Job) -> serde_json::Value {
    json!({
        "tenant_id": job.tenant_id,
        "job_id": job.job_id,
        "status": job.status,
        "kind": job.kind,
        "filename": job.filename,
        "source_key": job.source_key,
        "source_version": job.source_version,
        "reason": job.reason,
        "dry_run": job.dry_run,
        "allow_duplicate": job.allow_duplicate,
        "waiting_for": job.waiting_for,
        "rejection": job.rejection,
        "split_abandoned": job.split_abandoned,
        "progress": job.progress(),
        "counts": job.counts(),
        "batches": { "done": job.batches_done, "total": job.batches_total, "shards": job.shards },
        "errors": job.errors,
        "review_first": job.review_first,
        "review": job.review,
        "reverts": job.reverts,
        "reverted_by": job.reverted_by,
        "can_revert": shared::reversal::revertible(job).is_ok(),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "progress_at": job.progress_at,
        "stalled_at": job.stalled_at,
        "finished_at": job.finished_at,
        "email_sent_at": job.email_sent_at,
        "processed_key": job.processed_key,
    })
}

/// A job as text: its file, status, progress, counts and dates, then its
/// errors by code with their first rows, and its review's totals.
pub fn job_text(job: &Job) -> String {
    let progress = job.progress();
    let counts = job.counts();
    let total = progress
        .rows_total
        .map_or_else(|| "?".to_owned(), |t| t.to_string());
    let mut pairs = vec![
        ("status", job.status.as_str().to_owned()),
        ("kind", job.kind.map_or("?", |k| k.as_str()).to_owned()),
        ("file", job.filename.clone()),
        (
            "object",
            match &job.source_version {
                Some(v) => format!("{} (version {v})", job.source_key),
                None => job.source_key.clone(),
            },
        ),
        ("reason", job.reason.clone()),
        (
            "progress",
            format!(
                "{}/{total} rows decided ({}%), batches {}/{}",
                progress.rows_decided, progress.percent, job.batches_done, job.batches_total
            ),
        ),
        (
            "counts",
            format!(
                "invalid {}, applied {}, failed {}, skipped {}; points credited {}, debited {}",
                counts.invalid,
                counts.tally.applied,
                counts.tally.failed,
                counts.tally.skipped,
                counts.tally.credited,
                counts.tally.debited
            ),
        ),
        ("created", when(Some(job.created_at))),
        ("last progress", when(job.progress_at)),
        ("finished", when(job.finished_at)),
        ("emailed", when(job.email_sent_at)),
    ];
    let optional = [
        (
            "dry run",
            job.dry_run.then(|| "yes: nothing applied".to_owned()),
        ),
        ("waiting for", job.waiting_for.clone()),
        ("rejected", job.rejection.clone()),
        ("split given up", job.split_abandoned.clone()),
        ("stalled", job.stalled_at.map(|t| when(Some(t)))),
        ("started", job.started_at.map(|t| when(Some(t)))),
        ("reverts", job.reverts.clone()),
        ("reverted by", job.reverted_by.clone()),
        ("processed file", job.processed_key.clone()),
    ];
    pairs.extend(optional.into_iter().filter_map(|(l, v)| Some((l, v?))));
    let mut out = format!("job {} of tenant {}\n", job.job_id, job.tenant_id);
    out.push_str(&labelled(&pairs));
    out.push_str(&errors_text("errors by code", &job.errors));
    if let Some(review) = &job.review {
        out.push_str("review:\n");
        out.push_str(&labelled(&[
            (
                "rows",
                format!(
                    "{} ({} valid, {} invalid, {} skipped)",
                    review.rows, review.valid, review.invalid, review.skipped
                ),
            ),
            (
                "credits",
                format!(
                    "{} rows, {} points",
                    review.credits.rows, review.credits.points
                ),
            ),
            (
                "debits",
                format!(
                    "{} rows, {} points",
                    review.debits.rows, review.debits.points
                ),
            ),
            ("set balance rows", review.set_balance_rows.to_string()),
            (
                "customers",
                format!("{} ({} new)", review.customers, review.new_customers),
            ),
            ("ready", when(review.ready_at)),
            ("expires", when(review.expires_at)),
        ]));
        if review.errors != job.errors {
            out.push_str(&errors_text("review errors by code", &review.errors));
        }
    }
    out
}

/// The rows not applied by code, with the first rows of each.
fn errors_text(title: &str, errors: &shared::digest::ErrorDigest) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let mut table = Table::new(&["CODE", "ROWS", "FIRST ROWS"]);
    for code in &errors.codes {
        let mut examples = code.examples.iter();
        let first = examples.next();
        table.row(vec![
            code.code.to_string(),
            code.count.to_string(),
            first.map_or(String::new(), |e| format!("row {}: {}", e.row, e.detail())),
        ]);
        for e in examples {
            table.row(vec![
                String::new(),
                String::new(),
                format!("row {}: {}", e.row, e.detail()),
            ]);
        }
    }
    format!("{title} ({} rows):\n{}", errors.rows(), table.render())
}
