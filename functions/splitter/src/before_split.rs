//! The checks that come before any row of a file is imported, some reading
//! the whole file: its size (larger than declared, or than any file may
//! be), a membership file's row count (no further than one past the limit),
//! and whether its content was imported before. The verdicts are the
//! domain's (`shared::admission`, `shared::membership::admission`); this
//! module reads the object for them and claims its content in the jobs
//! table.

use crate::handler::SplitterError;
use crate::pace::Pace;
use loyalty_aws::s3_event::ObjectCreated;
use loyalty_aws::Aws;
use shared::admission::{self, Duplicate};
use shared::job::{self, Job};
use shared::membership;
use std::time::Instant;
use tokio::runtime::Handle;
use tracing::{info, warn};

/// Why the file is too large to import, if it is: larger than its upload
/// declared, or than any file may be.
pub async fn too_large(
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
    Ok(admission::too_large(
        size,
        job.max_bytes,
        aws.settings.max_file_bytes,
    ))
}

/// What reading the whole file before its split decided.
pub enum BeforeSplit {
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
pub async fn refused_before_split(
    aws: &Aws,
    job: &Job,
    deadline: Instant,
) -> Result<BeforeSplit, SplitterError> {
    let membership = job.membership_scope().is_some();
    if membership && job.hashing.is_none() {
        let reader = aws.objects.open_source(job).await?;
        let limit = membership::MAX_ROWS;
        let rows = tokio::task::spawn_blocking(move || job::count_rows(reader, limit))
            .await
            .map_err(|e| SplitterError::Task(e.to_string()))?;
        if let Some(why) = rows.and_then(membership::admission::too_many_rows) {
            return Ok(BeforeSplit::Refused(why));
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
        let mut pace = Pace::new(deadline);
        let mut overtaken = false;
        let done = hash.read_from(reader, |at| {
            // Every block: go on only if another surely fits before the
            // deadline; else keep where the read stands.
            if pace.another_fits() {
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

/// Why this job's file must not be imported because its content was
/// imported before, if so. The job claims the content; if another job
/// holds it, the domain decides (`shared::admission::duplicate`) whether
/// this job takes the claim over, is imported again as asked, or is refused.
async fn duplicate_of_earlier(
    aws: &Aws,
    job: &Job,
    sha256: &str,
) -> Result<Option<String>, SplitterError> {
    loop {
        let Some(holder) = aws.tables.claim_content(job, sha256).await? else {
            return Ok(None);
        };
        let earlier = aws.tables.job(&job.tenant_id, &holder).await?;
        match admission::duplicate(job, earlier.as_ref()) {
            Duplicate::TakeOver => {}
            Duplicate::ImportedAgain(earlier) => {
                info!(earlier = %earlier, "same content as an earlier import, imported again as asked");
                return Ok(None);
            }
            Duplicate::Refused(why) => return Ok(Some(why)),
        }
        if aws.tables.take_over_content(job, sha256, &holder).await? {
            return Ok(None);
        }
    }
}
