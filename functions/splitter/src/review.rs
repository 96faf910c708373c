//! A review's read of its file (`shared::review`): the split's rows are
//! counted, not sent — the valid ones by what they would do (points rows by
//! direction and points, card code rows' codes to generate, tier change rows
//! by tier), their customers (or a membership file's cards) once each
//! (marked in the wallets table, so the count is right however often the
//! read stops), the others by error code. Its checkpoints
//! carry what it found so far; at the end the review is ready for the
//! admin. Nothing is applied and no outcome is written.

use crate::pace::Pace;
use crate::sink::{write_preview, Flush};
use loyalty_aws::{Aws, AwsError};
use shared::batch::Batch;
use shared::job::Job;
use shared::kind::ImportKind;
use shared::outcome::RowOutcome;
use shared::points::PreviewRow;
use shared::review::{first_rows, Review, Reviewed};
use shared::split::{Checkpoint, Flow, SplitSink};
use std::time::Instant;
use tokio::runtime::Handle;

pub struct ReviewSink {
    aws: Aws,
    runtime: Handle,
    job: Job,
    /// The preview is on the job already (written before the read).
    previewed: bool,
    /// What the read found: up to its checkpoint when it goes on from one.
    pub review: Review,
    pace: Pace,
    overtaken: bool,
}

impl ReviewSink {
    pub fn new(aws: &Aws, job: &Job, previewed: bool, deadline: Instant) -> Self {
        ReviewSink {
            aws: aws.clone(),
            runtime: Handle::current(),
            job: job.clone(),
            previewed,
            // Taken up from the checkpoint with what was found before it.
            review: match job.split_checkpoint {
                Some(_) => job.review.clone().unwrap_or_default(),
                None => Review::default(),
            },
            pace: Pace::new(deadline),
            overtaken: false,
        }
    }
}

impl Flush for ReviewSink {
    fn flush(&mut self) -> Result<(), AwsError> {
        Ok(())
    }

    fn overtaken(&self) -> bool {
        self.overtaken
    }
}

impl<R: Reviewed> SplitSink<R> for ReviewSink {
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
        for outcome in outcomes {
            self.review.add_not_imported(outcome);
        }
        Ok(())
    }

    fn batch(&mut self, batch: Batch<R>) -> Result<(), AwsError> {
        for row in &batch.rows {
            self.review.add_valid(row);
        }
        let (customers, new) = self
            .runtime
            .block_on(self.aws.tables.count_first_sightings(
                &self.job.tenant_id,
                &self.job.job_id,
                &first_rows(&batch.rows),
            ))?;
        self.review.add_customers(customers, new);
        Ok(())
    }

    fn checkpoint(&mut self, at: &Checkpoint) -> Result<Flow, AwsError> {
        let saved = self
            .runtime
            .block_on(
                self.aws
                    .tables
                    .save_review_checkpoint(&self.job, at, &self.review),
            )?;
        if !saved {
            self.overtaken = true;
            return Ok(Flow::Stop);
        }
        Ok(if self.pace.another_fits() {
            Flow::Go
        } else {
            Flow::Stop
        })
    }
}
