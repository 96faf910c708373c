//! Event in, job out. The splitting itself is `shared::split`; this file finds
//! the job an object belongs to and connects the split to S3, SQS and DynamoDB.
//!
//! A membership file (a console drop under `incoming/<tenant>/memberships/`
//! or named `<universe>_<scope>_<subsection>_<YYYYMMDD>[_<seq>].csv`, or an
//! API upload of kind `cardcode` or `tierchange`) first takes its place
//! in its tenant's order (`shared::membership::order`) and waits for its turn;
//! its event comes back when the file before it is done, and with every
//! watchdog sweep.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use chrono::Utc;
use loyalty_aws::metrics::Record;
use loyalty_aws::queues::FinalizeRequest;
use loyalty_aws::s3_event::{self, ObjectCreated};
use loyalty_aws::{Aws, AwsError};
use shared::batch::{Batch, BatchRow};
use shared::csv_input::CsvInput;
use shared::job::{self, keys, Job, JobStatus};
use shared::kind::ImportKind;
use shared::membership::file_name::{FileName, Scope};
use shared::membership::order::{self, Placed, Turn};
use shared::outcome::RowOutcome;
use shared::points::PreviewRow;
use shared::redact::{self, Redacted};
use shared::smile::Mode;
use shared::split::{
    self, split_cards_input, split_input, split_tier_changes_input, Checkpoint, Flow, SplitError,
    SplitRequest, SplitSink, SplitSummary,
};
use shared::tenant::Tenant;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// The upload as the split reads it.
type Source = Box<dyn std::io::Read + Send + 'static>;
use tracing::{info, instrument, warn};

/// The splitter's time limit in the template: what [`handle`] assumes.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Handles an SQS event carrying S3 notifications, or a plain S3 event,
/// within the template's time limit from now.
pub async fn handle(
    aws: &Aws,
    event: serde_json::Value,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    handle_until(aws, event, Instant::now() + TIME_LIMIT).await
}

/// Handles the event; a split that would run past `deadline` stops at a
/// checkpoint before it and hands itself the rest (`Queues::resubmit`).
pub async fn handle_until(
    aws: &Aws,
    event: serde_json::Value,
    deadline: Instant,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let deliveries = s3_event::deliveries(&event)?;
    let mut retry = Vec::new();
    for delivery in deliveries {
        let dead = delivery.source_arn.is_some()
            && delivery.source_arn.as_deref() == aws.settings.dead_upload_queue_arn.as_deref();
        for object in &delivery.objects {
            let result = if dead {
                give_up_object(aws, object).await
            } else {
                import_object(aws, object, deadline).await
            };
            if let Err(err) = result {
                tracing::error!(key = %redact::object_key(&object.key), error = %Redacted(&err), "splitting failed; the event will be retried");
                match &delivery.message_id {
                    Some(id) => retry.push(id.clone()),
                    None => return Err(err.into()),
                }
                break;
            }
        }
    }
    Ok(loyalty_aws::sqs::retry_only(retry))
}

#[derive(Debug, thiserror::Error)]
pub enum SplitterError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("reading the upload failed: {0}")]
    Read(String),
    #[error("the split task stopped: {0}")]
    Task(String),
}

/// Starts (or resumes) the import of one uploaded object.
#[instrument(skip_all, fields(key = %redact::object_key(&object.key)))]
pub async fn import_object(
    aws: &Aws,
    object: &ObjectCreated,
    deadline: Instant,
) -> Result<(), SplitterError> {
    let Some(incoming) = keys::parse_incoming(&object.key) else {
        if object.key.ends_with('/') {
            // The S3 console's "Create folder": no file to import.
            info!("a folder, not a file: nothing to import");
        } else {
            ignore_upload(aws, object, IGNORED_NO_TENANT_FOLDER, None);
        }
        return Ok(());
    };
    let Some(tenant) = aws.tables.tenant(incoming.tenant).await? else {
        ignore_upload(aws, object, IGNORED_UNKNOWN_TENANT, Some(incoming.tenant));
        return Ok(());
    };
    for object in announced(aws, object).await? {
        if let Some(job) = job_for(aws, &object, &tenant, incoming).await? {
            split_job(aws, &object, &tenant, job, deadline).await?;
        }
    }
    Ok(())
}

/// The metric counting uploads no job was made for (the `reason` property
/// says why): an operator's alarm, since nobody else hears of them (no
/// tenant, no admin to email).
pub const UPLOADS_IGNORED: &str = "UploadsIgnored";
/// A file under `incoming/<tenant>/` for a tenant that does not exist.
pub const IGNORED_UNKNOWN_TENANT: &str = "unknown_tenant";
/// A file under `incoming/` but in no tenant's folder.
pub const IGNORED_NO_TENANT_FOLDER: &str = "no_tenant_folder";

/// Counts and logs an upload that no tenant owns: it is left in the bucket
/// as it is (for the operator to move to the right tenant, or delete).
fn ignore_upload(aws: &Aws, object: &ObjectCreated, reason: &'static str, tenant: Option<&str>) {
    let key = redact::object_key(&object.key);
    let tenant = tenant.map(redact::object_key);
    warn!(
        reason,
        tenant = tenant.as_deref().unwrap_or(""),
        "an upload no tenant owns: ignored"
    );
    let mut record = Record::new()
        .dimension("Function", "splitter")
        .count(UPLOADS_IGNORED, 1)
        .property("reason", reason)
        .property("key", key);
    if let Some(tenant) = tenant {
        record = record.property("tenant", tenant);
    }
    if let Some(version) = &object.version_id {
        record = record.property("version", version.as_str());
    }
    aws.metrics.emit(record);
}

/// The object versions an event stands for: the one it names, or, for an
/// event that names none (S3 names it in a versioned bucket; an emulator or
/// a hand-made event may not), every version of its key the bucket keeps,
/// oldest first. Read as "the latest", two uploads to one key before the
/// first event is read would import the second twice over and the first
/// never; each version's job is found by the version, so one imported
/// already is not imported again.
async fn announced(aws: &Aws, object: &ObjectCreated) -> Result<Vec<ObjectCreated>, SplitterError> {
    if object.version_id.is_some() {
        return Ok(vec![object.clone()]);
    }
    let versions = aws.objects.versions(&object.key).await?;
    if versions.is_empty() {
        // No versions kept: the object as it is now.
        return Ok(vec![object.clone()]);
    }
    Ok(versions
        .into_iter()
        .map(|version| ObjectCreated {
            version_id: Some(version),
            size: None,
            sequencer: None,
            ..object.clone()
        })
        .collect())
}

/// An upload whose split failed on every delivery (its event came from
/// the ingest dead-letter queue): its job goes on without the rows the split
/// never reached, reported as not applied, and the admin is told how to
/// import them.
#[instrument(skip_all, fields(key = %redact::object_key(&object.key)))]
pub async fn give_up_object(aws: &Aws, object: &ObjectCreated) -> Result<(), SplitterError> {
    let Some(incoming) = keys::parse_incoming(&object.key) else {
        return Ok(());
    };
    let Some(tenant) = aws.tables.tenant(incoming.tenant).await? else {
        return Ok(());
    };
    // The object as the event names it, not every version of its key: a
    // version whose own event is still on its way must not be given up.
    let Some(job) = job_for(aws, object, &tenant, incoming).await? else {
        return Ok(());
    };
    give_up_split(aws, job).await
}

#[instrument(name = "job", skip_all, fields(tenant = %job.tenant_id, job = %job.job_id))]
async fn give_up_split(aws: &Aws, job: Job) -> Result<(), SplitterError> {
    if job.status != JobStatus::Splitting {
        // A membership file still waiting has its event sent again by the
        // watchdog; any other job got past its split.
        info!(
            status = job.status.as_str(),
            "a dead upload event for a job not splitting: nothing to give up"
        );
        return Ok(());
    }
    let read = job.split_checkpoint.as_ref().map_or(0, |c| c.row);
    let why = format!(
        "the file could not be read to its end (its split failed on every attempt): the rows \
         after row {read} that were not applied are reported not_processed"
    );
    warn!(rows_read = read, "the split is given up");
    if let Some(after) = aws
        .tables
        .abandon_split(&job, aws.settings.shards, &why)
        .await?
    {
        if after.ready_to_finalize() {
            request_finalize(aws, &after).await?;
        }
    }
    Ok(())
}

/// Splits the object as this job's file, unless it was split before.
#[instrument(name = "job", skip_all, fields(tenant = %job.tenant_id, job = %job.job_id))]
async fn split_job(
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
    if job.status != JobStatus::Splitting {
        // Split before: a redelivered event, or a retry after a crash that
        // came between the split and the request to finalize.
        if job.finalization_due() {
            request_finalize(aws, &job).await?;
        }
        info!(status = job.status.as_str(), "already split");
        return Ok(());
    }
    // Checked once, on the first run: a split or a read going on passed it.
    if job.split_checkpoint.is_none() && job.hashing.is_none() {
        if let Some(why) = too_large(aws, object, &job).await? {
            return reject(aws, &job, &why).await;
        }
    }
    run_split(aws, tenant, job, deadline).await
}

/// Why the file is too large to import, if it is: larger than its upload
/// declared, or than any file may be.
async fn too_large(
    aws: &Aws,
    object: &ObjectCreated,
    job: &Job,
) -> Result<Option<String>, SplitterError> {
    let size = match object.size {
        Some(size) => size,
        None => match aws
            .objects
            .head(&job.source_key, job.source_version.as_deref())
            .await?
        {
            Some(info) => info.size,
            None => return Ok(None),
        },
    };
    if let Some(limit) = job.max_bytes.filter(|&limit| size > limit) {
        return Ok(Some(format!(
            "the file is {size} bytes, more than the {limit} bytes declared for this upload"
        )));
    }
    let limit = aws.settings.max_file_bytes;
    Ok((size > limit).then(|| {
        format!(
            "the file is {size} bytes, more than the {limit} bytes ({:.1} GiB) a file may \
             have: split it into several files and upload each",
            limit as f64 / (1024.0 * 1024.0 * 1024.0)
        )
    }))
}

/// The job this object version belongs to (new, or started before), or
/// `None` if it belongs to none (an upload nobody asked for).
async fn job_for(
    aws: &Aws,
    object: &ObjectCreated,
    tenant: &Tenant,
    incoming: keys::Incoming<'_>,
) -> Result<Option<Job>, SplitterError> {
    let tables = &aws.tables;
    let Some(info) = aws
        .objects
        .head(&object.key, object.version_id.as_deref())
        .await?
    else {
        warn!("the object is gone: ignored");
        return Ok(None);
    };
    let same_object = |job: &Job| {
        job.source_version.is_some() && job.source_version == info.version_id
            || job.source_version.is_none() && job.source_etag == info.etag
    };
    if let Some(job_id) = incoming.upload_job {
        let Some(job) = tables.job(&tenant.tenant_id, job_id).await? else {
            warn!(job_id, "upload for an unknown job: ignored");
            return Ok(None);
        };
        return Ok(match job.status {
            JobStatus::AwaitingUpload if job.source_key == object.key => {
                // A membership file waits for its turn before it is split.
                let next = match job.membership_scope() {
                    Some(_) => JobStatus::Waiting,
                    None => JobStatus::Splitting,
                };
                tables
                    .claim_upload(
                        &tenant.tenant_id,
                        job_id,
                        next,
                        info.version_id.as_deref(),
                        info.etag.as_deref(),
                    )
                    .await?
            }
            _ if job.source_key == object.key && same_object(&job) => Some(job),
            _ => {
                warn!(
                    job_id,
                    status = job.status.as_str(),
                    "the job has its file already: this upload is ignored"
                );
                None
            }
        });
    }
    // A console drop: the job id is a function of the object version alone
    // (never of the event that announced it), so the same version can never
    // start two jobs, however often or however it is announced.
    let version = info
        .version_id
        .clone()
        .or_else(|| object.sequencer.clone())
        .or_else(|| info.etag.clone())
        .unwrap_or_default();
    let seed = format!("{}\n{}\n{version}", tenant.tenant_id, object.key);
    let job_id = job::job_id(info.last_modified, seed.as_bytes());
    let reason = info
        .metadata
        .get("reason")
        .filter(|r| !r.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| job::default_reason(incoming.filename));
    let mut job = Job::new(&tenant.tenant_id, &job_id, &object.key, &reason, Utc::now());
    job.allow_duplicate = info
        .metadata
        .get("allow-duplicate")
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1"));
    // A Smile.io file's mode: `x-amz-meta-mode: set_balance` (or add).
    let mode = info.metadata.get("mode").map(|m| m.parse::<Mode>());
    job.smile_mode = match &mode {
        Some(Ok(mode)) => *mode,
        _ => Mode::Add,
    };
    job.source_version = info.version_id.clone();
    job.source_etag = info.etag.clone();
    // A membership file: dropped in the memberships folder (its name is
    // then checked when it takes its place), or named like one anywhere.
    let name = FileName::parse(incoming.filename).ok();
    if incoming.membership || name.is_some() {
        job.status = JobStatus::Waiting;
        job.kind = name.map(|name| name.scope.into());
    }
    if tables.create_job(&job).await? {
        info!(job_id, "job created");
        if let Some(Err(why)) = mode {
            let why = format!("the object's metadata 'mode': {why}");
            reject(aws, &job, &why).await?;
            return Ok(None);
        }
        return Ok(Some(job));
    }
    Ok(tables.job(&tenant.tenant_id, &job_id).await?)
}

async fn reject(aws: &Aws, job: &Job, why: &str) -> Result<(), SplitterError> {
    info!(why = %Redacted(why), "file rejected");
    if aws
        .tables
        .reject_job(&job.tenant_id, &job.job_id, why)
        .await?
        .is_some()
    {
        request_finalize(aws, job).await?;
    }
    Ok(())
}

async fn request_finalize(aws: &Aws, job: &Job) -> Result<(), SplitterError> {
    Ok(aws
        .queues
        .request_finalize(&FinalizeRequest::of(job))
        .await?)
}

/// A membership file's place in its tenant's order, and whether its turn
/// has come: the job, now splitting, if it has; `None` if it waits (or was
/// rejected, or another delivery started it).
async fn take_turn(aws: &Aws, tenant: &Tenant, job: Job) -> Result<Option<Job>, SplitterError> {
    let name = match FileName::parse(&job.filename) {
        Ok(name) => name,
        Err(e) => return reject(aws, &job, &e.to_string()).await.map(|()| None),
    };
    let Some(config) = &tenant.memberships else {
        let why = "this account has no membership programs set up, so card code and tier change \
                   files cannot be imported yet: ask for the programs to be configured";
        return reject(aws, &job, why).await.map(|()| None);
    };
    if name.universe != config.universe {
        let why = format!(
            "the file name is for the universe '{}', but this account's universe is '{}': \
             name the file {}",
            name.universe,
            config.universe,
            FileName {
                universe: config.universe.clone(),
                ..name.clone()
            }
        );
        return reject(aws, &job, &why).await.map(|()| None);
    }
    let holder = aws.tables.place_membership(&job, &name).await?;
    let files = aws.tables.membership_files(&job.tenant_id).await?;
    let me = Placed {
        job_id: job.job_id.clone(),
        filename: job.filename.clone(),
        position: name.position(),
        status: job.status,
        arrived_at: job.created_at,
    };
    let clash = order::clash(&me, &name, &files).or_else(|| {
        holder.map(|holder| {
            format!(
                "job {holder} holds the place of the {} file of {} already",
                name.scope.as_str(),
                name.date.format("%Y-%m-%d")
            )
        })
    });
    if let Some(why) = clash {
        return reject(aws, &job, &why).await.map(|()| None);
    }
    match order::turn(
        &me,
        &files,
        Utc::now(),
        aws.settings.membership_wait_seconds,
    ) {
        Turn::Wait(why) => {
            // Logged when the wait starts or its reason changes, not at
            // every look (the file is handed back about once a second).
            if job.waiting_for.as_deref() != Some(why.as_str()) {
                aws.tables.set_waiting_for(&job, &why).await?;
                info!(why = %Redacted(&why), "membership file waits for its turn");
            }
            Ok(None)
        }
        Turn::Go => {
            let started = aws.tables.start_waiting_job(&job).await?;
            if started.is_some() {
                let waited = (Utc::now() - job.created_at).num_seconds();
                info!(waited_seconds = waited, "membership file's turn: splitting");
            }
            Ok(started)
        }
    }
}

/// Why this job's file must not be imported because its content was
/// imported before, if so.
async fn duplicate_of_earlier(
    aws: &Aws,
    job: &Job,
    sha256: &str,
) -> Result<Option<String>, SplitterError> {
    loop {
        let Some(holder) = aws.tables.claim_content(job, sha256).await? else {
            return Ok(None);
        };
        match aws.tables.job(&job.tenant_id, &holder).await? {
            // The earlier upload applied nothing: this one takes its place.
            None => {}
            Some(earlier) if earlier.status == JobStatus::Rejected => {}
            Some(earlier) if job.allow_duplicate => {
                info!(earlier = %earlier.job_id, "same content as an earlier import, imported again as asked");
                return Ok(None);
            }
            Some(earlier) => return Ok(Some(job::duplicate_reason(&earlier))),
        }
        if aws.tables.take_over_content(job, sha256, &holder).await? {
            return Ok(None);
        }
    }
}

/// What reading the whole file before its split decided.
enum BeforeSplit {
    /// The split may start.
    Go,
    /// The file is not imported, and why.
    Refused(String),
    /// The read stopped before the deadline; it goes on in the next
    /// invocation (the event is sent again).
    Stopped,
}

/// Why the whole file must not be imported, found by reading it before
/// anything of it is: a membership file longer than allowed (its rows
/// counted, no further than one past the limit), or the same content
/// imported before (dry runs change nothing, so they are never duplicates
/// nor make a later upload one). The content is read in blocks; a read that
/// would run past the deadline stops at one, recorded on the job, and goes
/// on from there next time.
async fn refused_before_split(
    aws: &Aws,
    job: &Job,
    deadline: Instant,
) -> Result<BeforeSplit, SplitterError> {
    let membership = job.membership_scope().is_some();
    if membership && job.hashing.is_none() {
        let reader = aws.objects.open_source(job).await?;
        let limit = shared::membership::MAX_ROWS;
        let rows = tokio::task::spawn_blocking(move || job::count_rows(reader, limit))
            .await
            .map_err(|e| SplitterError::Task(e.to_string()))?;
        if let Some(rows) = rows.filter(|&rows| rows > limit) {
            return Ok(BeforeSplit::Refused(format!(
                "the file has at least {rows} rows, more than the {limit} a membership file may \
                 have: split it into several files of the same day with sequence numbers \
                 (…_<YYYYMMDD>_2.csv, …_3.csv)"
            )));
        }
    }
    if job.dry_run {
        return Ok(BeforeSplit::Go);
    }
    let mut hash = job.hashing.clone().unwrap_or_default();
    let reader = aws.objects.open_source_from(job, hash.offset).await?;
    let (aws2, job2) = (aws.clone(), job.clone());
    let runtime = Handle::current();
    let (hash, done, overtaken) = tokio::task::spawn_blocking(move || {
        let mut since = Instant::now();
        let mut overtaken = false;
        let done = hash.read_from(reader, |at| {
            // Every block: go on only if another surely fits before the
            // deadline; else keep where the read stands.
            let block = since.elapsed();
            since = Instant::now();
            let left = deadline.saturating_duration_since(Instant::now());
            if left >= block * 2 + SAFETY {
                return true;
            }
            match runtime.block_on(aws2.tables.save_hashing(&job2, at)) {
                Ok(saved) => overtaken = !saved,
                Err(e) => warn!(error = %e, "the content's read could not be recorded"),
            }
            false
        });
        (hash, done, overtaken)
    })
    .await
    .map_err(|e| SplitterError::Task(e.to_string()))?;
    let done = done.map_err(|e| SplitterError::Read(e.to_string()))?;
    if !done {
        if !overtaken {
            info!(
                offset = hash.offset,
                "the content's read stops before the deadline and goes on next time"
            );
            aws.queues.resubmit(job).await?;
        }
        return Ok(BeforeSplit::Stopped);
    }
    Ok(match duplicate_of_earlier(aws, job, &hash.chain).await? {
        Some(why) => BeforeSplit::Refused(why),
        None => BeforeSplit::Go,
    })
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
        shards: aws.settings.shards,
        checkpoint_rows: aws.settings.split_checkpoint_rows,
    };
    let from = job.split_checkpoint.clone();
    let previewed = job.membership_scope().is_none() && !job.dry_run;
    if from.is_none() {
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
    let result = match job.membership_scope() {
        None => {
            split_off(JobSink::new(aws, &job, previewed, deadline), move |sink| {
                let input = input.map_err(SplitError::Rejected)?;
                split_input(input, from.as_ref(), &request, sink)
            })
            .await?
        }
        Some(Scope::CardCode) => {
            let Some(config) = tenant.memberships.clone() else {
                return reject(aws, &job, "this account has no membership programs set up").await;
            };
            split_off(JobSink::new(aws, &job, previewed, deadline), move |sink| {
                let input = input.map_err(SplitError::Rejected)?;
                split_cards_input(input, from.as_ref(), &config, &request, sink)
            })
            .await?
        }
        Some(Scope::TierChange) => {
            split_off(JobSink::new(aws, &job, previewed, deadline), move |sink| {
                let input = input.map_err(SplitError::Rejected)?;
                split_tier_changes_input(input, from.as_ref(), &request, sink)
            })
            .await?
        }
    };
    match result {
        Ok((summary, _)) if summary.stopped.is_some() => {
            let at = summary.stopped.as_ref().map(|c| c.row);
            info!(
                row = at,
                "the split stops at a checkpoint before its deadline and hands itself the rest"
            );
            Ok(aws.queues.resubmit(&job).await?)
        }
        Ok((_, true)) => {
            info!("another run of this split has got further: this one stops");
            Ok(())
        }
        Ok((summary, _)) => {
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

/// Runs a split (the CSV reader is blocking) off the async threads; it calls
/// back into the runtime for each write, and its last batches are sent
/// before it returns.
/// Returns the summary, and whether another run of the split got further.
async fn split_off<R, F>(
    mut sink: JobSink<R>,
    split: F,
) -> Result<Result<(SplitSummary, bool), SplitError<AwsError>>, SplitterError>
where
    R: BatchRow,
    F: FnOnce(&mut JobSink<R>) -> Result<SplitSummary, SplitError<AwsError>> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let summary = split(&mut sink)?;
        sink.flush().map_err(SplitError::Sink)?;
        Ok((summary, sink.overtaken))
    })
    .await
    .map_err(|e| SplitterError::Task(e.to_string()))
}

/// Sends the split's results to the tables and the batch queue, and keeps
/// its checkpoints on the job.
struct JobSink<R> {
    aws: Aws,
    runtime: Handle,
    job: Job,
    /// The preview is on the job already (`preview_now`).
    previewed: bool,
    pending: Vec<Batch<R>>,
    deadline: Instant,
    /// When the last checkpoint (or the run) began.
    since: Instant,
    /// Another run of the split recorded a later checkpoint.
    overtaken: bool,
}

/// Time kept in hand after a checkpoint, besides twice the last interval's
/// length: to send the rest of the split to the queue and return.
const SAFETY: Duration = Duration::from_millis(500);

impl<R: BatchRow> JobSink<R> {
    fn new(aws: &Aws, job: &Job, previewed: bool, deadline: Instant) -> Self {
        JobSink {
            aws: aws.clone(),
            runtime: Handle::current(),
            job: job.clone(),
            previewed,
            pending: Vec::new(),
            deadline,
            since: Instant::now(),
            overtaken: false,
        }
    }
}

/// Batches sent per SendMessageBatch call.
const SEND_AT_ONCE: usize = 10;

impl<R: BatchRow> JobSink<R> {
    fn flush(&mut self) -> Result<(), AwsError> {
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

impl<R: BatchRow> SplitSink<R> for JobSink<R> {
    type Error = AwsError;

    fn preview(&mut self, kind: ImportKind, rows: &[PreviewRow]) -> Result<(), AwsError> {
        if self.previewed {
            return Ok(());
        }
        self.runtime.block_on(self.aws.tables.set_preview(
            &self.job.tenant_id,
            &self.job.job_id,
            kind,
            rows,
        ))
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
        let interval = self.since.elapsed();
        self.since = Instant::now();
        let left = self.deadline.saturating_duration_since(Instant::now());
        Ok(if left < interval * 2 + SAFETY {
            Flow::Stop
        } else {
            Flow::Go
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
