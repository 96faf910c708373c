//! The processed file: the original file's rows, each with its outcome,
//! streamed into a multipart upload part by part, with checkpoints on the
//! job so that a run stopped by its deadline is taken up by the next.

use loyalty_aws::objects::ObjectWriter;
use loyalty_aws::tables::JobOutcomes;
use loyalty_aws::{Aws, AwsError};
use shared::csv_input::CsvInput;
use shared::digest::ErrorDigest;
use shared::job::FinalizeCheckpoint;
use shared::job::{keys, Job};
use shared::outcome::{RowOutcome, Tally};
use shared::processed::{write_processed_from, Detail, ProcessedOut, Resume, Written};
use shared::redact::Redacted;
use shared::split::Flow;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tracing::info;

/// How far a run got with the processed file.
pub(crate) enum Wrote {
    /// Written whole: its key, the file's totals and its rows not applied
    /// by error code (gathered over every run, carried in the checkpoints).
    Done(String, Tally, ErrorDigest),
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
pub(crate) async fn write_processed_file(
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
            Written::Done(tally, errors) => {
                sink.seal_pending()?;
                if sink.sealed > 0 {
                    info!(
                        sealed = sink.sealed,
                        "rows never processed are reported as not applied"
                    );
                }
                sink.finish()?;
                Ok(Wrote::Done(key, tally, errors))
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
            at: at.clone(),
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
