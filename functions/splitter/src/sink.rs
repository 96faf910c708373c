//! Where a split's results go: failed rows to the outcomes table, the
//! preview to the job, checkpoints to the job (stopping the split if the
//! next interval may not fit before the deadline), and batches to the batch
//! queue, ten at a time, the job's highest batch number raised before each
//! send.

use crate::pace::Pace;
use loyalty_aws::{Aws, AwsError};
use shared::batch::{Batch, BatchRow};
use shared::job::Job;
use shared::kind::ImportKind;
use shared::outcome::RowOutcome;
use shared::points::PreviewRow;
use shared::split::{Checkpoint, Flow, SplitSink};
use std::time::Instant;
use tokio::runtime::Handle;

/// Sends the split's results to the tables and the batch queue, and keeps
/// its checkpoints on the job. The split runs off the async threads; the
/// sink calls back into the runtime for each write.
pub struct JobSink<R> {
    aws: Aws,
    runtime: Handle,
    job: Job,
    /// The preview is on the job already (written before the split).
    previewed: bool,
    pending: Vec<Batch<R>>,
    /// The intervals between checkpoints against the deadline.
    pace: Pace,
    /// Another run of the split recorded a later checkpoint.
    pub overtaken: bool,
}

/// Batches sent per SendMessageBatch call.
const SEND_AT_ONCE: usize = 10;

/// What the split's driver asks of a sink once the split has returned.
pub trait Flush {
    /// Sends what the sink still holds.
    fn flush(&mut self) -> Result<(), AwsError>;
    /// Another run of the split recorded a later checkpoint.
    fn overtaken(&self) -> bool;
}

impl<R: BatchRow> Flush for JobSink<R> {
    fn flush(&mut self) -> Result<(), AwsError> {
        JobSink::flush(self)
    }

    fn overtaken(&self) -> bool {
        self.overtaken
    }
}

impl<R: BatchRow> JobSink<R> {
    pub fn new(aws: &Aws, job: &Job, previewed: bool, deadline: Instant) -> Self {
        JobSink {
            aws: aws.clone(),
            runtime: Handle::current(),
            job: job.clone(),
            previewed,
            pending: Vec::new(),
            pace: Pace::new(deadline),
            overtaken: false,
        }
    }

    /// Sends the batches cut so far.
    pub fn flush(&mut self) -> Result<(), AwsError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.pending);
        // Recorded first: a split given up later closes every batch it may
        // have sent, and no other (`Tables::abandon_split`).
        let last = batches.iter().map(|b| b.number).max().unwrap_or_default();
        self.runtime.block_on(async {
            self.aws.tables.raise_batches_sent(&self.job, last).await?;
            self.aws.queues.send_batches(&batches).await
        })
    }
}

/// Writes the preview on the job, unless it is there already (written
/// before the read).
pub fn write_preview(
    aws: &Aws,
    runtime: &Handle,
    job: &Job,
    previewed: bool,
    kind: ImportKind,
    rows: &[PreviewRow],
) -> Result<(), AwsError> {
    if previewed {
        return Ok(());
    }
    runtime.block_on(
        aws.tables
            .set_preview(&job.tenant_id, &job.job_id, kind, rows),
    )
}

impl<R: BatchRow> SplitSink<R> for JobSink<R> {
    type Error = AwsError;

    fn preview(&mut self, kind: ImportKind, rows: &[PreviewRow]) -> Result<(), AwsError> {
        write_preview(
            &self.aws,
            &self.runtime,
            &self.job,
            self.previewed,
            kind,
            rows,
        )
    }

    fn failed(&mut self, outcomes: &[RowOutcome]) -> Result<(), AwsError> {
        self.runtime
            .block_on(self.aws.tables.put_outcomes(&self.job.job_id, outcomes))
    }

    fn checkpoint(&mut self, at: &Checkpoint) -> Result<Flow, AwsError> {
        self.flush()?;
        if !self
            .runtime
            .block_on(self.aws.tables.save_checkpoint(&self.job, at))?
        {
            self.overtaken = true;
            return Ok(Flow::Stop);
        }
        // Go on only if another interval surely fits before the deadline.
        Ok(if self.pace.another_fits() {
            Flow::Go
        } else {
            Flow::Stop
        })
    }

    fn batch(&mut self, batch: Batch<R>) -> Result<(), AwsError> {
        self.pending.push(batch);
        if self.pending.len() >= SEND_AT_ONCE {
            self.flush()?;
        }
        Ok(())
    }
}
