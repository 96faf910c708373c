//! The split of a job's file (`shared::split`): from its start, after a
//! points file's preview and the checks before the split, or from its
//! checkpoint; the file streamed from S3 through a blocking bridge to the
//! CSV reader, its results sent through the [`JobSink`]. At the end the job
//! is `processing` with its totals; a split that would outlast the
//! invocation stops at a checkpoint and hands itself the rest.

use crate::before_split::{refused_before_split, too_large, BeforeSplit};
use crate::finish::{reject, request_finalize};
use crate::handler::SplitterError;
use crate::review::ReviewSink;
use crate::sink::{Flush, JobSink};
use crate::turn::take_turn;
use chrono::Utc;
use loyalty_aws::metrics::{kind_dimension, names, Record, Unit};
use loyalty_aws::s3_event::ObjectCreated;
use loyalty_aws::{Aws, AwsError};
use shared::csv_input::CsvInput;
use shared::job::{Job, JobStatus};
use shared::membership::admission::{self, NO_PROGRAMS};
use shared::membership::cards::CardRow;
use shared::membership::file_name::Scope;
use shared::membership::tier_changes::TierChangeRow;
use shared::points::PointsRow;
use shared::review::{Review, Reviewed};
use shared::split::{
    self, split_cards_input, split_input, split_tier_changes_input, Checkpoint, SplitError,
    SplitRequest, SplitSink, SplitSummary,
};
use shared::tenant::Tenant;
use std::time::{Duration, Instant};
use tracing::{info, instrument};

/// The upload as the split reads it.
type Source = Box<dyn std::io::Read + Send + 'static>;

/// Splits the object as this job's file, unless it was split before; a
/// membership file first waits for its turn.
#[instrument(name = "job", skip_all, fields(tenant = %job.tenant_id, job = %job.job_id))]
pub async fn split_job(
    aws: &Aws,
    object: &ObjectCreated,
    tenant: &Tenant,
    job: Job,
    deadline: Instant,
) -> Result<(), SplitterError> {
    let job = match job.status {
        JobStatus::Waiting => match take_turn(aws, tenant, job).await? {
            Some(started) => started,
            None => return Ok(()),
        },
        _ => job,
    };
    if !matches!(job.status, JobStatus::Splitting | JobStatus::Reviewing) {
        // Split before: a redelivered event, or a retry after a crash that
        // came between the split and the request to finalize.
        if job.finalization_due() {
            request_finalize(aws, &job).await?;
        }
        info!(status = job.status.as_str(), "already split");
        return Ok(());
    }
    if job.status == JobStatus::Reviewing && job.membership_scope().is_some() {
        // A membership file takes its place in its tenant's order only when
        // its review is started; what would refuse it there now is said now.
        if let Err(why) = admission::admit(&job.filename, tenant.memberships.as_ref()) {
            return reject(aws, &job, &why).await;
        }
    }
    // Checked once, on the first run: a split or a read going on passed it.
    if job.split_checkpoint.is_none() && job.hashing.is_none() {
        if let Some(why) = too_large(aws, object, &job).await? {
            return reject(aws, &job, &why).await;
        }
    }
    run_split(aws, tenant, job, deadline).await
}

/// The shards the job's rows are spread over: those its split began with
/// (`Checkpoint::shards`; a checkpoint written before they were kept had
/// the setting's), or for a split not checkpointed yet, more for a larger
/// points file (`shared::split::shards_for`, from its size, the same on
/// every run). A membership file's rows all go to one shard, so it keeps
/// the setting's. The split and a split given up both read them here.
pub(crate) async fn job_shards(aws: &Aws, job: &Job) -> Result<u32, SplitterError> {
    let least = aws.settings.shards;
    if let Some(checkpoint) = &job.split_checkpoint {
        return Ok(checkpoint.shards.unwrap_or(least));
    }
    if job.membership_scope().is_some() {
        return Ok(least);
    }
    let size = aws
        .objects
        .head(&job.source_key, job.source_version.as_deref())
        .await?
        .map_or(0, |info| info.size);
    Ok(shared::split::shards_for(size, least))
}

async fn run_split(
    aws: &Aws,
    tenant: &Tenant,
    job: Job,
    deadline: Instant,
) -> Result<(), SplitterError> {
    let request = SplitRequest {
        tenant_id: job.tenant_id.clone(),
        job_id: job.job_id.clone(),
        kind: job.kind,
        reason: job.reason.clone(),
        dry_run: job.dry_run,
        smile_mode: job.smile_mode,
        default_country: tenant.default_country.clone(),
        rows_per_batch: aws.settings.rows_per_batch,
        shards: job_shards(aws, &job).await?,
        checkpoint_rows: aws.settings.split_checkpoint_rows,
        reverts: job.reverts.clone(),
    };
    let from = job.split_checkpoint.clone();
    // A reversal reads its original's upload: it was checked as that, and
    // its preview is written as the split reads it.
    let reversal = job.reverts.is_some();
    let previewed = job.membership_scope().is_none() && !job.dry_run && !reversal;
    // A started review passed the checks and has its preview: its read did.
    let checked = (job.status == JobStatus::Splitting && job.review.is_some()) || reversal;
    if from.is_none() && !checked {
        // A points file's preview is written before the whole file is read
        // to check it (its hash): the merchant sees the first rows as soon
        // as the upload arrived. (A dry run is not checked: its split
        // starts at once.)
        if previewed && job.hashing.is_none() {
            preview_now(aws, &job, &request).await?;
        }
        match refused_before_split(aws, &job, deadline).await? {
            BeforeSplit::Go => {}
            BeforeSplit::Refused(why) => return reject(aws, &job, &why).await,
            BeforeSplit::Stopped => return Ok(()),
        }
    } else {
        info!(
            row = from.as_ref().map(|c| c.row),
            "the split goes on from its checkpoint"
        );
    }
    let input = open_input(aws, &job, from.as_ref()).await?;
    if job.status == JobStatus::Reviewing {
        let read = Reading(ReviewSink::new(aws, &job, previewed, deadline));
        let result = split_by_kind(tenant, &job, input, from, request, read).await?;
        return reviewed(aws, &job, result).await;
    }
    let (started, from_row) = (Instant::now(), from.as_ref().map_or(0, |c| c.row));
    let import = Import {
        aws: aws.clone(),
        job: job.clone(),
        previewed,
        deadline,
    };
    let result = split_by_kind(tenant, &job, input, from, request, import).await?;
    if let Ok((summary, _, ())) = &result {
        emit_split(aws, &job, summary, from_row, started.elapsed());
    }
    match result {
        Ok((summary, _, ())) if summary.stopped.is_some() => {
            let at = summary.stopped.as_ref().map(|c| c.row);
            info!(
                row = at,
                "the split stops at a checkpoint before its deadline and hands itself the rest"
            );
            Ok(aws.queues.resubmit(&job).await?)
        }
        Ok((_, true, ())) => {
            info!("another run of this split has got further: this one stops");
            Ok(())
        }
        Ok((summary, _, ())) => {
            info!(
                rows = summary.total_rows,
                invalid = summary.invalid_rows,
                batches = summary.batches,
                "file split"
            );
            if let Some(after) = aws
                .tables
                .finish_split(&job.tenant_id, &job.job_id, &summary)
                .await?
            {
                if after.ready_to_finalize() {
                    request_finalize(aws, &after).await?;
                }
            }
            Ok(())
        }
        Err(SplitError::Rejected(why)) => reject(aws, &job, &why).await,
        Err(SplitError::Read(e)) => Err(SplitterError::Read(e)),
        Err(SplitError::Sink(e)) => Err(e.into()),
    }
}

/// The split's run as metrics: the rows it read (from its checkpoint, if
/// it went on from one) and how fast.
fn emit_split(aws: &Aws, job: &Job, summary: &SplitSummary, from_row: u64, took: Duration) {
    let rows = summary.total_rows.saturating_sub(from_row);
    let seconds = took.as_secs_f64();
    let record = Record::new()
        .dimension("Function", "splitter")
        .dimension("Kind", kind_dimension(Some(summary.kind)))
        .count(names::SPLIT_ROWS, rows)
        .value(names::SPLIT_SECONDS, Unit::Seconds, seconds)
        .value(
            names::SPLIT_ROWS_PER_SECOND,
            Unit::CountPerSecond,
            if seconds > 0.0 {
                rows as f64 / seconds
            } else {
                0.0
            },
        )
        .property("tenant", job.tenant_id.as_str())
        .property("job", job.job_id.as_str())
        .property("done", summary.stopped.is_none());
    aws.metrics.emit(record);
}

/// What a review's read of its whole file found: the review ready for its
/// admin, or the read going on from its checkpoint, or the file refused.
async fn reviewed(aws: &Aws, job: &Job, result: Split<Review>) -> Result<(), SplitterError> {
    match result {
        Ok((summary, _, _)) if summary.stopped.is_some() => {
            info!(
                row = summary.stopped.as_ref().map(|c| c.row),
                "the review's read stops at a checkpoint before its deadline and hands itself the rest"
            );
            Ok(aws.queues.resubmit(job).await?)
        }
        Ok((_, true, _)) => {
            info!("another run of this review has got further: this one stops");
            Ok(())
        }
        Ok((summary, _, mut review)) => {
            review.ready(Utc::now());
            info!(
                rows = review.rows,
                invalid = review.invalid,
                customers = review.customers,
                "the review is ready"
            );
            aws.tables.finish_review(job, &summary, &review).await?;
            Ok(())
        }
        Err(SplitError::Rejected(why)) => reject(aws, job, &why).await,
        Err(SplitError::Read(e)) => Err(SplitterError::Read(e)),
        Err(SplitError::Sink(e)) => Err(e.into()),
    }
}

/// The file to split, opened (its header read), from its start or, for a
/// split going on, from its checkpoint; or why its header is refused.
async fn open_input(
    aws: &Aws,
    job: &Job,
    from: Option<&Checkpoint>,
) -> Result<Result<CsvInput<Source>, String>, SplitterError> {
    let head = aws.objects.open_source(job).await?;
    let rest = match from {
        Some(at) => Some(aws.objects.open_source_from(job, at.offset).await?),
        None => None,
    };
    let from = from.cloned();
    tokio::task::spawn_blocking(move || {
        let input = match split::open_input::<_, AwsError>(head) {
            Ok(input) => input,
            Err(SplitError::Rejected(why)) => return Ok(Err(why)),
            Err(e) => return Err(SplitterError::Read(format!("{e}"))),
        };
        Ok(Ok(match (rest, from) {
            (Some(rest), Some(at)) => {
                CsvInput::resume(rest, input.header().clone(), at.offset, at.row)
            }
            _ => input,
        }))
    })
    .await
    .map_err(|e| SplitterError::Task(e.to_string()))?
}

/// Writes a points file's preview (and kind) on its job, reading only its
/// first rows. A file whose header is refused gets none: the split rejects it.
async fn preview_now(aws: &Aws, job: &Job, request: &SplitRequest) -> Result<(), SplitterError> {
    let reader = aws.objects.open_source(job).await?;
    let request = request.clone();
    let preview = tokio::task::spawn_blocking(move || split::preview(reader, &request))
        .await
        .map_err(|e| SplitterError::Task(e.to_string()))?;
    match preview {
        Ok((kind, rows)) => Ok(aws
            .tables
            .set_preview(&job.tenant_id, &job.job_id, kind, &rows)
            .await?),
        Err(SplitError::Rejected(_)) => Ok(()),
        Err(e) => Err(SplitterError::Read(e.to_string())),
    }
}

/// What a split found: its summary, whether another run of it got further,
/// and what its sink kept; or why it failed.
type Split<T> = Result<(SplitSummary, bool, T), SplitError<AwsError>>;

/// The sink a split of any kind's rows goes into, made for its row type,
/// and what the split's driver keeps of it once the split returns.
trait Sinks: Send + 'static {
    type Sink<R: Reviewed>: SplitSink<R, Error = AwsError> + Flush + Send + 'static;
    type Found: Send + 'static;
    fn sink<R: Reviewed>(self) -> Self::Sink<R>;
    fn found<R: Reviewed>(sink: Self::Sink<R>) -> Self::Found;
}

/// An import's split: its batches sent to be applied.
struct Import {
    aws: Aws,
    job: Job,
    previewed: bool,
    deadline: Instant,
}

impl Sinks for Import {
    type Sink<R: Reviewed> = JobSink<R>;
    type Found = ();
    fn sink<R: Reviewed>(self) -> JobSink<R> {
        JobSink::new(&self.aws, &self.job, self.previewed, self.deadline)
    }
    fn found<R: Reviewed>(_: JobSink<R>) {}
}

/// A review's read: its rows counted, nothing sent.
struct Reading(ReviewSink);

impl Sinks for Reading {
    type Sink<R: Reviewed> = ReviewSink;
    type Found = Review;
    fn sink<R: Reviewed>(self) -> ReviewSink {
        self.0
    }
    fn found<R: Reviewed>(sink: ReviewSink) -> Review {
        sink.review
    }
}

/// Splits the job's file with its kind's format (points, card codes or
/// tier changes) into the sink `sinks` makes for that format's rows.
async fn split_by_kind<K: Sinks>(
    tenant: &Tenant,
    job: &Job,
    input: Result<CsvInput<Source>, String>,
    from: Option<Checkpoint>,
    request: SplitRequest,
    sinks: K,
) -> Result<Split<K::Found>, SplitterError> {
    let input = match input {
        Ok(input) => input,
        Err(why) => return Ok(Err(SplitError::Rejected(why))),
    };
    match job.membership_scope() {
        None => {
            split_off::<PointsRow, _, _>(sinks, move |sink| {
                split_input(input, from.as_ref(), &request, sink)
            })
            .await
        }
        Some(Scope::CardCode) => {
            let Some(config) = tenant.memberships.clone() else {
                return Ok(Err(SplitError::Rejected(NO_PROGRAMS.into())));
            };
            split_off::<CardRow, _, _>(sinks, move |sink| {
                split_cards_input(input, from.as_ref(), &config, &request, sink)
            })
            .await
        }
        Some(Scope::TierChange) => {
            split_off::<TierChangeRow, _, _>(sinks, move |sink| {
                split_tier_changes_input(input, from.as_ref(), &request, sink)
            })
            .await
        }
    }
}

/// Runs a split (the CSV reader is blocking) off the async threads; it calls
/// back into the runtime for each write, and its last batches are sent
/// before it returns.
async fn split_off<R, K, F>(sinks: K, split: F) -> Result<Split<K::Found>, SplitterError>
where
    R: Reviewed,
    K: Sinks,
    F: FnOnce(&mut K::Sink<R>) -> Result<SplitSummary, SplitError<AwsError>> + Send + 'static,
{
    let mut sink = sinks.sink::<R>();
    tokio::task::spawn_blocking(move || {
        let summary = split(&mut sink)?;
        sink.flush().map_err(SplitError::Sink)?;
        let overtaken = sink.overtaken();
        Ok((summary, overtaken, K::found(sink)))
    })
    .await
    .map_err(|e| SplitterError::Task(e.to_string()))
}
