//! The watchdog: run on a schedule, it finds jobs that stopped moving and
//! sees them finished. A job whose batches stopped coming (a message lost) is
//! marked stalled and finalized, its never-processed rows reported as
//! `not_processed`; a job due for finalizing whose request was lost is asked
//! for again. Asking twice is harmless: finalizing holds a lease and sends
//! one email. A membership file waiting for its turn is handed to the
//! splitter again, which looks at its turn anew (the file it waited for may
//! be done, or its wait for a card code file over). A review never started
//! within its days expires. A split the API asked for (a reversal, a
//! started review) that never began is asked for again, once per stall
//! period. Each sweep leaves its summary in the jobs table
//! (`Tables::record_sweep`), for the operator's `loyalty-local watchdog`.

use chrono::{DateTime, Utc};
use loyalty_aws::metrics::{names, Record};
use loyalty_aws::queues::FinalizeRequest;
use loyalty_aws::{Aws, AwsError};
use serde::Serialize;
use shared::job::{Job, JobStatus, Watch};
use shared::redact::Redacted;
use shared::sweep::{Names, SweepRecord};
use tracing::{error, info, instrument, warn};

/// What one sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sweep {
    /// Unfinished jobs looked at.
    pub jobs: usize,
    /// Jobs closed as stalled.
    pub stalled: Vec<String>,
    /// Jobs whose finalizing was asked for again.
    pub finalize_again: Vec<String>,
    /// Jobs whose split stopped (left to the ingest queue's retries).
    pub split_stalled: Vec<String>,
    /// Waiting membership files handed to the splitter again.
    pub waiting: Vec<String>,
    /// Reviews never started in their time, now expired.
    pub expired_reviews: Vec<String>,
    /// Splits the API asked for that never began, asked for again.
    pub splits_asked_again: Vec<String>,
    /// Jobs whose handling failed this time (logged; the next sweep tries
    /// again, and the others were handled regardless).
    pub failed: Vec<String>,
}

#[instrument(skip_all)]
pub async fn sweep(aws: &Aws) -> Result<Sweep, AwsError> {
    let now = Utc::now();
    let jobs = aws.tables.unfinished_jobs().await?;
    let mut sweep = Sweep {
        jobs: jobs.len(),
        ..Sweep::default()
    };
    for job in jobs {
        let name = format!("{}/{}", job.tenant_id, job.job_id);
        if let Err(err) = watch(aws, &job, now, &name, &mut sweep).await {
            error!(tenant = %job.tenant_id, job = %job.job_id, error = %Redacted(&err),
                "the watchdog could not handle this job; the next sweep tries again");
            sweep.failed.push(name);
        }
    }
    aws.metrics.emit(sweep.metrics());
    // What the sweep did is done: failing to record it only leaves the
    // previous record shown, so it is logged, not retried.
    if let Err(err) = aws
        .tables
        .record_sweep(&sweep.record(now, Utc::now()))
        .await
    {
        warn!(error = %Redacted(&err), "the sweep's summary could not be recorded");
    }
    Ok(sweep)
}

impl Sweep {
    /// The sweep as metrics, zeros included: an alarm on stalled jobs sees
    /// every sweep.
    pub fn metrics(&self) -> Record {
        let count = |names: &[String]| names.len() as u64;
        Record::new()
            .dimension("Function", "watchdog")
            .count(names::UNFINISHED_JOBS, self.jobs as u64)
            .count(names::JOBS_STALLED, count(&self.stalled))
            .count(names::FINALIZE_ASKED_AGAIN, count(&self.finalize_again))
            .count(names::SPLITS_ASKED_AGAIN, count(&self.splits_asked_again))
            .count(names::REVIEWS_EXPIRED, count(&self.expired_reviews))
            .count(names::WATCHDOG_FAILURES, count(&self.failed))
    }

    /// The summary kept of it: its counts, and the first names of each list
    /// (`shared::sweep`).
    pub fn record(&self, started_at: DateTime<Utc>, finished_at: DateTime<Utc>) -> SweepRecord {
        SweepRecord {
            started_at,
            finished_at,
            jobs: self.jobs as u64,
            stalled: Names::of(&self.stalled),
            finalize_again: Names::of(&self.finalize_again),
            split_stalled: Names::of(&self.split_stalled),
            waiting: Names::of(&self.waiting),
            expired_reviews: Names::of(&self.expired_reviews),
            splits_asked_again: Names::of(&self.splits_asked_again),
            failed: Names::of(&self.failed),
        }
    }
}

/// Looks at one unfinished job and does what it needs.
async fn watch(
    aws: &Aws,
    job: &Job,
    now: DateTime<Utc>,
    name: &str,
    sweep: &mut Sweep,
) -> Result<(), AwsError> {
    match job.watch(now, aws.settings.stall_seconds) {
        Watch::Fine => {}
        Watch::Stalled => {
            if let Some(job) = aws.tables.mark_stalled(job).await? {
                warn!(tenant = %job.tenant_id, job = %job.job_id, batches_done = job.batches_done,
                    batches_total = job.batches_total, "the job stalled: it is closed with its unprocessed rows reported");
                aws.queues
                    .request_finalize(&FinalizeRequest::of(&job))
                    .await?;
                sweep.stalled.push(name.to_owned());
            }
        }
        Watch::FinalizeAgain => {
            info!(tenant = %job.tenant_id, job = %job.job_id, "finalizing asked for again");
            aws.queues
                .request_finalize(&FinalizeRequest::of(job))
                .await?;
            sweep.finalize_again.push(name.to_owned());
        }
        Watch::Waiting => {
            aws.queues.resubmit(job).await?;
            sweep.waiting.push(name.to_owned());
        }
        Watch::ReviewExpired => {
            if let Some(job) = aws
                .tables
                .close_review(&job.tenant_id, &job.job_id, JobStatus::Expired, now)
                .await?
            {
                info!(tenant = %job.tenant_id, job = %job.job_id, "the review was never started: it expired");
                sweep.expired_reviews.push(name.to_owned());
            }
        }
        Watch::AskSplitAgain => {
            if let Some(job) = aws.tables.ask_split_again(job, now).await? {
                warn!(tenant = %job.tenant_id, job = %job.job_id,
                    "the split the API asked for never began: its upload's event is sent again");
                aws.queues.resubmit(&job).await?;
                sweep.splits_asked_again.push(name.to_owned());
            }
        }
        Watch::SplitStalled => {
            warn!(tenant = %job.tenant_id, job = %job.job_id,
                "the split stopped; its upload event is retried by the ingest queue, then kept in its dead-letter queue");
            sweep.split_stalled.push(name.to_owned());
        }
    }
    Ok(())
}
