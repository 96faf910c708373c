//! Finalizing a job. Whoever holds the job's lease writes the processed file,
//! records the final status and sends the email; a second request for the
//! same job finds the email sent (or the lease held) and does nothing.
//!
//! The function is also run on a schedule, as the watchdog
//! (`crate::watchdog`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use loyalty_aws::mail::MailError;
use loyalty_aws::objects::ObjectWriter;
use loyalty_aws::queues::FinalizeRequest;
use loyalty_aws::tables::JobOutcomes;
use loyalty_aws::{Aws, AwsError};
use serde::Deserialize;
use shared::csv_input::CsvInput;
use shared::job::FinalizeCheckpoint;
use shared::job::{keys, Job, JobStatus};
use shared::membership::file_name::FileName;
use shared::notification::{completion_email, rejection_email};
use shared::outcome::{RowOutcome, Tally};
use shared::processed::{write_processed_from, Detail, ProcessedOut, Resume, Written};
use shared::redact::Redacted;
use shared::split::Flow;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
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
    let email = match job.status {
        JobStatus::Rejected => rejection_email(&tenant, &job),
        JobStatus::Processing | JobStatus::Finalizing => {
            let (key, tally) = match write_processed_file(aws, &job, lease, deadline).await? {
                Wrote::Done(key, tally) => (key, tally),
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
            let until = Utc::now() + chrono::Duration::hours(aws.settings.link_hours as i64);
            let finished = aws
                .tables
                .finish_job(
                    &job,
                    lease,
                    JobStatus::finished(&tally),
                    &tally,
                    &key,
                    (&token, until),
                )
                .await?;
            let Some(finished) = finished else {
                info!("another run has taken this job over");
                return Ok(());
            };
            let link = download_link(aws, &finished, &key).await?;
            completion_email(&tenant, &job, &tally, &link, aws.settings.link_hours)
        }
        // Finished before, but the email was not sent: send it now.
        _ => {
            let key = job
                .processed_key
                .clone()
                .unwrap_or_else(|| keys::processed(&job.tenant_id, &job.job_id, &job.filename));
            let link = download_link(aws, &job, &key).await?;
            completion_email(&tenant, &job, &job.tally(), &link, aws.settings.link_hours)
        }
    };
    if deadline.saturating_duration_since(Instant::now()) < EMAIL_MARGIN {
        // Everything before the email is done and kept; the retried request
        // (its lease lapsed) sends it with time to spare.
        anyhow::bail!("too little time left to send the email safely; the request is retried");
    }
    match aws.mailer.send(&email).await {
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

/// How far a run got with the processed file.
enum Wrote {
    /// Written whole: its key, and the file's totals.
    Done(String, Tally),
    /// Stopped at a checkpoint before the deadline: the next run goes on.
    Stopped,
    /// Another run holds the job now (this one's lease lapsed).
    Overtaken,
}

/// Streams the original file and the job's outcomes (both in row order)
/// into the processed file, uploaded part by part as it is written: memory
/// holds about one part, whatever the file's size, and nothing is staged on
/// disk. The writing checkpoints on the job after each part and stops at a
/// checkpoint before `deadline`; the next run goes on from there. A stalled
/// job's batches are closed first, and its rows no batch decided are
/// sealed `not_processed` as they are written.
async fn write_processed_file(
    aws: &Aws,
    job: &Job,
    lease: i64,
    deadline: Instant,
) -> anyhow::Result<Wrote> {
    let key = keys::processed(&job.tenant_id, &job.job_id, &job.filename);
    let runtime = Handle::current();
    let resumed = match &job.finalize_checkpoint {
        Some(at) => resume_writer(aws, &key, at).await?,
        None => None,
    };
    let (writer, from) = match resumed {
        Some((writer, at)) => {
            info!(
                row = at.at.row,
                parts = at.parts,
                "the processed file goes on from its checkpoint"
            );
            (writer, Some(at))
        }
        None => {
            if job.stalled_at.is_some() {
                aws.tables.close_batches(job).await?;
            }
            (
                aws.objects.writer(runtime.clone(), &key, CONTENT_TYPE),
                None,
            )
        }
    };
    let head = aws.objects.open_source(job).await?;
    let rest = match &from {
        Some(at) => Some(aws.objects.open_source_from(job, at.at.offset).await?),
        None => None,
    };
    let mut outcomes = Outcomes {
        stream: aws
            .tables
            .job_outcomes_from(job, from.as_ref().map_or(&[][..], |at| &at.outcomes_from)),
        runtime: runtime.clone(),
    };
    let mut sink = Checkpoints {
        aws: aws.clone(),
        runtime,
        job: job.clone(),
        parts_kept: writer.parts(),
        writer,
        lease,
        deadline,
        since: Instant::now(),
        carry: from.as_ref().and_then(|at| at.carry.clone()),
        seal: job.stalled_at.is_some().then(Vec::new),
        sealed: 0,
        overtaken: false,
    };
    let detail = Detail::of(job.kind, job.dry_run);
    let every = aws.settings.finalize_boundary_rows;
    let wrote = tokio::task::spawn_blocking(move || -> anyhow::Result<Wrote> {
        let input = CsvInput::open(head)?;
        let input = match (rest, &from) {
            (Some(rest), Some(at)) => {
                CsvInput::resume(rest, input.header().clone(), at.at.offset, at.at.row)
            }
            _ => input,
        };
        let at = from.as_ref().map(|at| &at.at);
        match write_processed_from(input, at, &mut outcomes, &mut sink, detail, every)? {
            Written::Done(tally) => {
                sink.seal_pending()?;
                if sink.sealed > 0 {
                    info!(
                        sealed = sink.sealed,
                        "rows never processed are reported as not applied"
                    );
                }
                sink.finish()?;
                Ok(Wrote::Done(key, tally))
            }
            Written::Stopped(_) if sink.overtaken => Ok(Wrote::Overtaken),
            Written::Stopped(_) => Ok(Wrote::Stopped),
        }
    })
    .await??;
    Ok(wrote)
}

const CONTENT_TYPE: &str = "text/csv; charset=utf-8";

/// The writer of a run that stopped at `at`, taken up again, and `at`;
/// `None` if its upload is gone (a run completed the object and failed
/// before recording it): the file is then written anew.
async fn resume_writer(
    aws: &Aws,
    key: &str,
    at: &FinalizeCheckpoint,
) -> Result<Option<(ObjectWriter, FinalizeCheckpoint)>, AwsError> {
    let pending = match &at.carry {
        Some(carry) => match aws.objects.get_bytes_if_any(carry).await? {
            Some(bytes) => bytes,
            None => {
                tracing::warn!("a checkpoint's carried bytes are gone: the file is written anew");
                return Ok(None);
            }
        },
        None => Vec::new(),
    };
    let writer = aws
        .objects
        .writer_resumed(
            Handle::current(),
            key,
            CONTENT_TYPE,
            at.upload_id.as_deref(),
            at.parts,
            pending,
        )
        .await?;
    if writer.is_none() {
        tracing::warn!("the processed file's upload is gone: it is written anew");
    }
    Ok(writer.map(|w| (w, at.clone())))
}

/// Time kept in hand at a boundary, besides twice the time since the last
/// one: to save the checkpoint (and what was written since the last part,
/// less than a part), ask for the next run, and return.
const SAFETY: Duration = Duration::from_millis(500);

/// The processed file's output: its upload, and its checkpoints on the job.
struct Checkpoints {
    aws: Aws,
    runtime: Handle,
    job: Job,
    writer: ObjectWriter,
    /// Parts uploaded at the last checkpoint.
    parts_kept: u32,
    /// This run's hold on the job (the lease's end).
    lease: i64,
    deadline: Instant,
    /// When the last boundary was passed.
    since: Instant,
    /// The carry object of the last checkpoint.
    carry: Option<String>,
    /// A stalled job's rows without an outcome, to seal (`None`: the job
    /// did not stall, such rows are only reported).
    seal: Option<Vec<RowOutcome>>,
    sealed: u64,
    /// Another run holds the job now: this one stopped.
    overtaken: bool,
}

impl Checkpoints {
    fn seal_pending(&mut self) -> Result<(), AwsError> {
        let Some(rows) = self.seal.as_mut().filter(|rows| !rows.is_empty()) else {
            return Ok(());
        };
        let rows = std::mem::take(rows);
        let sealed = self
            .runtime
            .block_on(self.aws.tables.seal_many(&self.job.job_id, &rows))?;
        if sealed < rows.len() as u64 {
            tracing::warn!(
                asked = rows.len(),
                sealed,
                "rows of a closed job were decided while it was sealed"
            );
        }
        self.sealed += sealed;
        Ok(())
    }

    fn finish(self) -> Result<(), AwsError> {
        let Checkpoints {
            aws,
            runtime,
            writer,
            carry,
            ..
        } = self;
        writer.finish()?;
        if let Some(carry) = &carry {
            forget(&aws, &runtime, carry);
        }
        Ok(())
    }

    fn forget(&self, carry: &str) {
        forget(&self.aws, &self.runtime, carry)
    }
}

/// Deletes a carry object no checkpoint names any more (a failure only
/// leaves it to the bucket's expiry of processed files).
fn forget(aws: &Aws, runtime: &Handle, carry: &str) {
    if let Err(e) = runtime.block_on(aws.objects.delete(carry)) {
        tracing::warn!(error = %Redacted(&e), "an old checkpoint's object is left to expire");
    }
}

impl std::io::Write for Checkpoints {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.writer.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ProcessedOut<Outcomes> for Checkpoints {
    type Error = AwsError;

    fn not_processed(&mut self, row: u64) -> Result<RowOutcome, AwsError> {
        let Some(rows) = self.seal.as_mut() else {
            return Ok(RowOutcome::not_recorded(row));
        };
        let outcome = RowOutcome::never_processed(row);
        rows.push(outcome.clone());
        if rows.len() == shared::apply::MAX_COMMIT_ITEMS {
            self.seal_pending()?;
        }
        Ok(outcome)
    }

    fn boundary(&mut self, at: &Resume, outcomes: &Outcomes) -> Result<Flow, AwsError> {
        // Rows sealed before any checkpoint past them.
        self.seal_pending()?;
        let interval = self.since.elapsed();
        self.since = Instant::now();
        let stop = self.deadline.saturating_duration_since(Instant::now()) < interval * 2 + SAFETY;
        if !stop && self.writer.parts() == self.parts_kept {
            return Ok(Flow::Go);
        }
        let pending = self.writer.pending();
        let carry = if pending.is_empty() {
            None
        } else {
            let key =
                keys::finalize_carry(&self.job.tenant_id, &self.job.job_id, at.row, self.lease);
            self.runtime
                .block_on(self.aws.objects.put_bytes(&key, pending.to_vec()))?;
            Some(key)
        };
        let checkpoint = FinalizeCheckpoint {
            at: *at,
            upload_id: self.writer.upload_id().map(str::to_owned),
            parts: self.writer.parts(),
            carry: carry.clone(),
            outcomes_from: outcomes.stream.resume_keys(),
        };
        let saved = self.runtime.block_on(async {
            let tables = &self.aws.tables;
            Ok::<_, AwsError>(
                tables
                    .save_finalize_checkpoint(&self.job, self.lease, stop, &checkpoint)
                    .await?
                    // Refused, because an attempt the SDK retried had saved
                    // it (and given the lease up)? Then it is saved.
                    || tables
                        .job(&self.job.tenant_id, &self.job.job_id)
                        .await?
                        .is_some_and(|j| j.finalize_checkpoint.as_ref() == Some(&checkpoint)),
            )
        })?;
        if !saved {
            if let Some(carry) = &carry {
                self.forget(carry);
            }
            self.overtaken = true;
            return Ok(Flow::Stop);
        }
        if let Some(old) = std::mem::replace(&mut self.carry, carry) {
            self.forget(&old);
        }
        self.parts_kept = checkpoint.parts;
        Ok(if stop { Flow::Stop } else { Flow::Go })
    }
}

/// A job's outcomes in row order, for the blocking writer.
struct Outcomes {
    stream: JobOutcomes,
    runtime: Handle,
}

impl Iterator for Outcomes {
    type Item = Result<RowOutcome, AwsError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.runtime.block_on(self.stream.next()).transpose()
    }
}
