//! Finalizing a job. Whoever holds the job's lease writes the processed file,
//! records the final status and sends the email; a second request for the
//! same job finds the email sent (or the lease held) and does nothing.
//!
//! The function is also run on a schedule, as the watchdog
//! (`crate::watchdog`).

use crate::processed_file::{write_processed_file, Wrote};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use loyalty_aws::mail::MailError;
use loyalty_aws::metrics::{kind_dimension, names, Record, Unit};
use loyalty_aws::queues::FinalizeRequest;
use loyalty_aws::{Aws, AwsError};
use serde::Deserialize;
use shared::digest::ErrorDigest;
use shared::job::{keys, Job, JobStatus};
use shared::membership::file_name::FileName;
use shared::notification::{completion_email, rejection_email};
use shared::outcome::{ErrorCode, Tally};
use shared::redact::Redacted;
use std::time::{Duration, Instant};
use tracing::{error, info, instrument};

/// What the function is invoked with: finalize requests from its queue, or
/// the watchdog's schedule.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FinalizerEvent {
    Queue(SqsEvent),
    Schedule {
        #[serde(rename = "detail-type")]
        detail_type: String,
    },
}

/// The finalizer's time limit in the template: what [`handle`] and
/// [`handle_event`] assume.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Time kept in hand to send the email (SES answers in well under a
/// second): a send never starts with less left, so the function's deadline
/// never cuts one off half done (SES would have it, and no record of it
/// would say so).
const EMAIL_MARGIN: Duration = Duration::from_secs(1);

pub async fn handle_event(
    aws: &Aws,
    event: FinalizerEvent,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    handle_event_until(aws, event, Instant::now() + TIME_LIMIT).await
}

/// As [`handle_event`], for an invocation that must be over by `deadline`.
pub async fn handle_event_until(
    aws: &Aws,
    event: FinalizerEvent,
    deadline: Instant,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    Ok(match event {
        FinalizerEvent::Queue(event) => {
            serde_json::to_value(handle_until(aws, event, deadline).await?)?
        }
        FinalizerEvent::Schedule { detail_type } => {
            info!(detail_type, "watchdog sweep");
            serde_json::to_value(crate::watchdog::sweep(aws).await?)?
        }
    })
}

pub async fn handle(aws: &Aws, event: SqsEvent) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    handle_until(aws, event, Instant::now() + TIME_LIMIT).await
}

/// Finalizes the requested jobs, within `deadline`.
pub async fn handle_until(
    aws: &Aws,
    event: SqsEvent,
    deadline: Instant,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut retry = Vec::new();
    for message in &event.records {
        let result = match serde_json::from_str::<FinalizeRequest>(
            message.body.as_deref().unwrap_or_default(),
        ) {
            Ok(request) => finalize_until(aws, &request, deadline).await,
            Err(e) => Err(anyhow::anyhow!("not a finalize request: {e}")),
        };
        if let Err(err) = result {
            error!(error = %Redacted(&err), "finalizing failed; it will be retried");
            retry.extend(message.message_id.clone());
        }
    }
    Ok(loyalty_aws::sqs::retry_only(retry))
}

pub async fn finalize(aws: &Aws, request: &FinalizeRequest) -> anyhow::Result<()> {
    finalize_until(aws, request, Instant::now() + TIME_LIMIT).await
}

#[instrument(skip_all, fields(tenant = %request.tenant_id, job = %request.job_id))]
async fn finalize_until(
    aws: &Aws,
    request: &FinalizeRequest,
    deadline: Instant,
) -> anyhow::Result<()> {
    let Some(job) = aws.tables.job(&request.tenant_id, &request.job_id).await? else {
        info!("no such job: nothing to finalize");
        return Ok(());
    };
    if !job.finalization_due() {
        info!(status = job.status.as_str(), "nothing to finalize");
        if job.email_sent_at.is_some() {
            // A retried request after a run that emailed but failed to hand
            // the waiting membership files back.
            release_waiting(aws, &job).await?;
        }
        return Ok(());
    }
    let lease_seconds = aws.settings.finalize_lease_seconds;
    let Some((lease, claimed)) = aws.tables.claim_finalization(&job, lease_seconds).await? else {
        let now = aws.tables.job(&job.tenant_id, &job.job_id).await?;
        if now.is_some_and(|j| j.finalization_due()) {
            // Another run holds the job; if it died, its lease lapses and
            // this request, retried, takes over.
            anyhow::bail!("another run is finalizing this job; retrying later");
        }
        info!("finalized by another run");
        return Ok(());
    };
    // As claimed, but with the status it was claimed in (the email's branch
    // below goes by it).
    let job = Job {
        status: job.status,
        ..claimed
    };
    let result = finalize_claimed(aws, request, &job, lease, deadline).await;
    if result.is_err() {
        // The retry takes over at once instead of waiting for the lease.
        if let Err(e) = aws.tables.release_finalization(&job, lease).await {
            tracing::warn!(error = %Redacted(&e), "the lease is left to lapse");
        }
    }
    result
}

/// Finalizes a job this run holds the lease `lease` of.
async fn finalize_claimed(
    aws: &Aws,
    request: &FinalizeRequest,
    job: &Job,
    lease: i64,
    deadline: Instant,
) -> anyhow::Result<()> {
    let job = job.clone();
    let tenant = aws
        .tables
        .tenant(&job.tenant_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant {} is gone", job.tenant_id))?;
    let hours = aws.settings.link_hours;
    let (email, tally, errors) = match job.status {
        JobStatus::Rejected => (
            rejection_email(&tenant, &job),
            job.tally(),
            job.errors.clone(),
        ),
        JobStatus::Processing | JobStatus::Finalizing => {
            let (key, tally, errors) =
                match write_processed_file(aws, &job, lease, deadline).await? {
                    Wrote::Done(key, tally, errors) => (key, tally, errors),
                    Wrote::Stopped => {
                        info!("the processed file goes on in the next run, from its checkpoint");
                        aws.queues.request_finalize(request).await?;
                        return Ok(());
                    }
                    Wrote::Overtaken => {
                        info!("another run has taken this job over");
                        return Ok(());
                    }
                };
            let token = download_token()?;
            let until = Utc::now() + chrono::Duration::hours(hours as i64);
            let finished = aws
                .tables
                .finish_job(
                    &job,
                    lease,
                    JobStatus::finished(&tally),
                    (&tally, &errors),
                    &key,
                    (&token, until),
                )
                .await?;
            let Some(finished) = finished else {
                info!("another run has taken this job over");
                return Ok(());
            };
            let link = download_link(aws, &finished, &key).await?;
            let email = completion_email(&tenant, &job, &tally, &errors, &link, hours);
            (email, tally, errors)
        }
        // Finished before, but the email was not sent: send it now.
        _ => {
            let key = job
                .processed_key
                .clone()
                .unwrap_or_else(|| keys::processed(&job.tenant_id, &job.job_id, &job.filename));
            let link = download_link(aws, &job, &key).await?;
            let email = completion_email(&tenant, &job, &job.tally(), &job.errors, &link, hours);
            (email, job.tally(), job.errors.clone())
        }
    };
    if deadline.saturating_duration_since(Instant::now()) < EMAIL_MARGIN {
        // Everything before the email is done and kept; the retried request
        // (its lease lapsed) sends it with time to spare.
        anyhow::bail!("too little time left to send the email safely; the request is retried");
    }
    let sent = aws.mailer.send(&email).await;
    emit_email(aws, &job, &sent);
    match sent {
        Ok(message_id) => info!(ses_message_id = %message_id, "job finalized and admin emailed"),
        // Nothing went out: the retried request sends it.
        Err(MailError::NotSent(e)) => return Err(e.into()),
        // SES may have it: sending again risks a second email, so the email
        // counts as sent. A merchant can still read the job through the API.
        Err(MailError::Unconfirmed(e)) => {
            tracing::warn!(error = %Redacted(&e), "the email may have been sent; it is not sent again")
        }
    }
    mark_email_sent(aws, &job).await?;
    aws.metrics
        .emit(job_record(&job, &tally, &errors, Utc::now()));
    release_waiting(aws, &job).await?;
    Ok(())
}

/// A membership file is done: its place in the order says so, and the
/// tenant's waiting membership files are handed to the splitter again, one
/// of them now having its turn. (Lost, this is redone by the watchdog, which
/// hands waiting files back on every sweep.)
async fn release_waiting(aws: &Aws, job: &Job) -> Result<(), AwsError> {
    if job.membership_scope().is_none() {
        return Ok(());
    }
    let tables = &aws.tables;
    if let (Ok(name), Some(done)) = (
        FileName::parse(&job.filename),
        tables.job(&job.tenant_id, &job.job_id).await?,
    ) {
        tables.close_membership(&done, &name).await?;
    }
    for placed in tables.membership_files(&job.tenant_id).await? {
        if placed.status != JobStatus::Waiting {
            continue;
        }
        if let Some(waiting) = tables.job(&job.tenant_id, &placed.job_id).await? {
            info!(next = %waiting.job_id, "a waiting membership file is looked at again");
            aws.queues.resubmit(&waiting).await?;
        }
    }
    Ok(())
}

/// Once SES has taken the email, recording it must not fail the run (a
/// retried run would send it again): the write is retried here first.
async fn mark_email_sent(aws: &Aws, job: &Job) -> Result<(), AwsError> {
    let mut attempt = 0;
    loop {
        match aws.tables.mark_email_sent(job).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 => {
                attempt += 1;
                tracing::warn!(error = %Redacted(&e), attempt, "recording the sent email failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The emailed link: the API's download route, which signs a fresh S3 link
/// at each click for as long as the job's `download_until`; without an API
/// (the local emulator), a presigned S3 link.
async fn download_link(aws: &Aws, job: &Job, key: &str) -> Result<String, AwsError> {
    if let (Some(api), Some(token)) = (&aws.settings.api_url, &job.download_token) {
        return Ok(format!(
            "{api}{}",
            keys::download_path(&job.tenant_id, &job.job_id, token)
        ));
    }
    let hours = aws.settings.link_hours;
    aws.objects
        .presign_download(key, Duration::from_secs(hours * 3600))
        .await
}

/// 256 random bits, hex: the secret of a download link.
fn download_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

/// An email's fate as a metric.
fn emit_email<T>(aws: &Aws, job: &Job, sent: &Result<T, MailError>) {
    let name = match sent {
        Ok(_) => names::EMAILS_SENT,
        Err(MailError::NotSent(_)) => names::EMAILS_FAILED,
        Err(MailError::Unconfirmed(_)) => names::EMAILS_UNCONFIRMED,
    };
    let record = Record::new()
        .dimension("Function", "finalizer")
        .count(name, 1)
        .property("tenant", job.tenant_id.as_str())
        .property("job", job.job_id.as_str());
    aws.metrics.emit(record);
}

/// A finished job as metrics, once its email is sent: its rows by outcome
/// (`not_processed` apart from the other failures), its points, and the
/// time from its upload to the email. A dry run applied nothing: its rows
/// are counted apart.
pub fn job_record(job: &Job, tally: &Tally, errors: &ErrorDigest, now: DateTime<Utc>) -> Record {
    let not_processed = errors.count_of(ErrorCode::NotProcessed);
    // Claimed while processing, it has finished since.
    let status = match job.status {
        JobStatus::Processing | JobStatus::Finalizing => JobStatus::finished(tally),
        status => status,
    };
    let seconds = (now - job.created_at).num_milliseconds().max(0) as f64 / 1000.0;
    let mut record = Record::new()
        .dimension("Function", "finalizer")
        .dimension("Kind", kind_dimension(job.kind))
        .value(names::UPLOAD_TO_EMAIL_SECONDS, Unit::Seconds, seconds)
        .property("tenant", job.tenant_id.as_str())
        .property("job", job.job_id.as_str())
        .property("status", status.as_str());
    if job.dry_run {
        return record.count(names::DRY_RUN_ROWS, tally.rows());
    }
    record = record
        .count(names::ROWS_APPLIED, tally.applied)
        .count(
            names::ROWS_FAILED,
            tally.failed.saturating_sub(not_processed),
        )
        .count(names::ROWS_SKIPPED, tally.skipped)
        .count(names::ROWS_NOT_PROCESSED, not_processed)
        .count(names::POINTS_CREDITED, tally.credited)
        .count(names::POINTS_DEBITED, tally.debited);
    record
}
