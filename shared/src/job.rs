//! Jobs: one uploaded file's import, from upload to email.
//!
//! ```text
//! awaiting_upload ─► splitting ─► processing ─► finalizing ─► completed
//!   (API uploads)     ▲  │                                 └─► completed_with_errors
//!       waiting ──────┘  └─► rejected (bad header or file)
//!   (membership files, until their turn)
//! ```
//!
//! Its length (about 550 lines of code, then its tests): the job item, its
//! statuses and the keys of its files are one record's rules; the rules of an
//! upload becoming a job are in `crate::upload` and `crate::admission`.

use crate::csv_input::CsvInput;
use crate::digest::ErrorDigest;
use crate::kind::ImportKind;
use crate::outcome::Tally;
use crate::points::PreviewRow;
use crate::smile::Mode;

fn is_add(mode: &Mode) -> bool {
    *mode == Mode::Add
}
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    AwaitingUpload,
    /// A membership file waiting for its turn in its tenant's order.
    Waiting,
    Splitting,
    Processing,
    Finalizing,
    Completed,
    CompletedWithErrors,
    Rejected,
    /// A review's file is being read whole; nothing is applied.
    Reviewing,
    /// The review is ready: the admin starts the import or discards it.
    ReadyForReview,
    /// The admin discarded the review: nothing was applied.
    Discarded,
    /// The review was never started: nothing was applied.
    Expired,
}

impl JobStatus {
    /// Its file is being read or its rows applied or reported.
    pub fn is_importing(self) -> bool {
        matches!(
            self,
            JobStatus::Splitting | JobStatus::Processing | JobStatus::Finalizing
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::AwaitingUpload => "awaiting_upload",
            JobStatus::Waiting => "waiting",
            JobStatus::Splitting => "splitting",
            JobStatus::Processing => "processing",
            JobStatus::Finalizing => "finalizing",
            JobStatus::Completed => "completed",
            JobStatus::CompletedWithErrors => "completed_with_errors",
            JobStatus::Rejected => "rejected",
            JobStatus::Reviewing => "reviewing",
            JobStatus::ReadyForReview => "ready_for_review",
            JobStatus::Discarded => "discarded",
            JobStatus::Expired => "expired",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed
                | JobStatus::CompletedWithErrors
                | JobStatus::Rejected
                | JobStatus::Discarded
                | JobStatus::Expired
        )
    }

    /// The final status a job with these totals ends in.
    pub fn finished(tally: &Tally) -> Self {
        if tally.failed > 0 {
            JobStatus::CompletedWithErrors
        } else {
            JobStatus::Completed
        }
    }
}

/// The job record, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub tenant_id: String,
    pub job_id: String,
    pub status: JobStatus,
    /// Asked for at upload, named by a membership file's name, or inferred
    /// from the header for other console drops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ImportKind>,
    /// Why a waiting membership file is not imported yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    pub reason: String,
    #[serde(default)]
    pub dry_run: bool,
    /// A Smile.io file's mode: add the points, or set each balance to them.
    #[serde(default, skip_serializing_if = "is_add")]
    pub smile_mode: Mode,
    pub filename: String,
    /// The object the job reads: `incoming/<tenant>/...`.
    pub source_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_etag: Option<String>,
    /// Largest upload accepted (API uploads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<String>,
    #[serde(default)]
    pub splitting_done: bool,
    /// Where the split stands, while it is split over several runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_checkpoint: Option<crate::split::Checkpoint>,
    /// How far the content's identity has been read, while it is read over
    /// several runs (before the split: it decides whether the file is a
    /// duplicate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashing: Option<ContentHash>,
    /// The highest batch number the split may have sent: raised before
    /// each send, so no batch beyond it was ever sent.
    #[serde(default)]
    pub batches_sent: u64,
    /// Why the split was given up before the end of the file (it failed
    /// on every delivery): the rows it never reached are not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_abandoned: Option<String>,
    /// Where the processed file's writing stands, while it is written over
    /// several runs of the finalizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalize_checkpoint: Option<FinalizeCheckpoint>,
    #[serde(default)]
    pub total_rows: u64,
    #[serde(default)]
    pub invalid_rows: u64,
    #[serde(default)]
    pub batches_total: u64,
    /// The shards the batches were spread over (0 until the file is split).
    #[serde(default)]
    pub shards: u32,
    #[serde(default)]
    pub batches_done: u64,
    #[serde(default)]
    pub rows_done: u64,
    #[serde(default)]
    pub applied: u64,
    #[serde(default)]
    pub skipped: u64,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub credited: u64,
    #[serde(default)]
    pub debited: u64,
    /// The rows not applied, by error code with the first few of each: set
    /// with the final status (bounded: `crate::digest`).
    #[serde(default, skip_serializing_if = "ErrorDigest::is_empty")]
    pub errors: ErrorDigest,
    #[serde(default)]
    pub preview: Vec<PreviewRow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_sent_at: Option<DateTime<Utc>>,
    /// The secret part of the emailed download link
    /// (`downloads/<tenant>/<job>/<token>`): set once, when the job finishes,
    /// so that an email sent again carries the same link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_token: Option<String>,
    /// Until when the emailed link downloads the processed file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_until: Option<DateTime<Utc>>,
    /// When the job last moved (split, a batch counted); the watchdog
    /// measures stalls from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_at: Option<DateTime<Utc>>,
    /// Set by the watchdog when the job stopped moving: it is finalized with
    /// the rows never processed reported as `not_processed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled_at: Option<DateTime<Utc>>,
    /// The upload asked to be imported even if the same content was before.
    #[serde(default)]
    pub allow_duplicate: bool,
    /// The upload asked to be reviewed before it is applied
    /// (`crate::review`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub review_first: bool,
    /// What the review found: so far while the file is read, all of it
    /// once ready. Kept after the import starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<crate::review::Review>,
    /// When the admin started the reviewed import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// A reversal's original job: this job applies the opposite of each of
    /// its applied rows (`crate::reversal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverts: Option<String>,
    /// The job that reverts this one, once asked: a job is reverted at most
    /// once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted_by: Option<String>,
}

impl Job {
    pub fn new(
        tenant_id: &str,
        job_id: &str,
        source_key: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Job {
            tenant_id: tenant_id.to_owned(),
            job_id: job_id.to_owned(),
            status: JobStatus::Splitting,
            kind: None,
            waiting_for: None,
            reason: reason.to_owned(),
            dry_run: false,
            smile_mode: Mode::Add,
            filename: filename_of(source_key).to_owned(),
            source_key: source_key.to_owned(),
            source_version: None,
            source_etag: None,
            max_bytes: None,
            created_at: now,
            rejection: None,
            splitting_done: false,
            split_checkpoint: None,
            hashing: None,
            batches_sent: 0,
            split_abandoned: None,
            finalize_checkpoint: None,
            total_rows: 0,
            invalid_rows: 0,
            batches_total: 0,
            shards: 0,
            batches_done: 0,
            rows_done: 0,
            applied: 0,
            skipped: 0,
            failed: 0,
            credited: 0,
            debited: 0,
            errors: ErrorDigest::default(),
            preview: Vec::new(),
            processed_key: None,
            finished_at: None,
            email_sent_at: None,
            download_token: None,
            download_until: None,
            progress_at: None,
            stalled_at: None,
            allow_duplicate: false,
            review_first: false,
            review: None,
            started_at: None,
            reverts: None,
            reverted_by: None,
        }
    }

    /// The processed file's key, if the emailed link `token` may download it
    /// at `now`: the job's own token (compared in constant time), before the
    /// link expires.
    pub fn download(&self, token: &str, now: DateTime<Utc>) -> Option<&str> {
        let own = self.download_token.as_deref()?;
        let until = self.download_until?;
        (crate::tenant::constant_time_eq(own.as_bytes(), token.as_bytes()) && now < until)
            .then_some(self.processed_key.as_deref())
            .flatten()
    }

    /// The membership scope of a membership import (card codes or tier
    /// changes); `None` for points, and for a job whose kind is not known
    /// yet.
    pub fn membership_scope(&self) -> Option<crate::membership::file_name::Scope> {
        self.kind.and_then(ImportKind::scope)
    }

    /// When the file joined its tenant's order of membership files: when
    /// it arrived, or, reviewed first, when its admin started it (a review
    /// takes no place in the order: it applies nothing).
    pub fn in_order_since(&self) -> DateTime<Utc> {
        self.started_at.unwrap_or(self.created_at)
    }

    /// All batches are applied: the finalizer may run.
    pub fn ready_to_finalize(&self) -> bool {
        self.status == JobStatus::Processing
            && self.splitting_done
            && self.batches_done >= self.batches_total
    }

    /// The finalizer still owes this job its processed file or its email.
    pub fn finalization_due(&self) -> bool {
        self.email_sent_at.is_none()
            && match self.status {
                JobStatus::Processing => self.ready_to_finalize() || self.stalled_at.is_some(),
                JobStatus::Finalizing
                | JobStatus::Completed
                | JobStatus::CompletedWithErrors
                | JobStatus::Rejected => true,
                JobStatus::AwaitingUpload
                | JobStatus::Waiting
                | JobStatus::Splitting
                | JobStatus::Reviewing
                | JobStatus::ReadyForReview
                | JobStatus::Discarded
                | JobStatus::Expired => false,
            }
    }

    /// What the watchdog should do about this job at `now`, if it has not
    /// moved for `stall_seconds`.
    pub fn watch(&self, now: DateTime<Utc>, stall_seconds: i64) -> Watch {
        if self.status == JobStatus::Waiting {
            return Watch::Waiting;
        }
        if self.status == JobStatus::ReadyForReview {
            return match &self.review {
                Some(review) if review.expired(now) => Watch::ReviewExpired,
                _ => Watch::Fine,
            };
        }
        let moved = self.progress_at.unwrap_or(self.created_at);
        if self.email_sent_at.is_some() || (now - moved).num_seconds() < stall_seconds {
            return Watch::Fine;
        }
        match self.status {
            JobStatus::AwaitingUpload | JobStatus::Waiting => Watch::Fine,
            JobStatus::Splitting
                if self.split_asked_by_api() && self.split_checkpoint.is_none() =>
            {
                Watch::AskSplitAgain
            }
            JobStatus::Splitting | JobStatus::Reviewing => Watch::SplitStalled,
            JobStatus::Processing if !self.splitting_done => Watch::SplitStalled,
            JobStatus::Processing if !self.ready_to_finalize() && self.stalled_at.is_none() => {
                Watch::Stalled
            }
            _ => Watch::FinalizeAgain,
        }
    }

    /// Whether the split was asked for by the API, not by an upload's event:
    /// a reversal's, or a review's once started. The API moves such a job
    /// to `splitting` itself, then sends the upload's event.
    pub fn split_asked_by_api(&self) -> bool {
        self.reverts.is_some() || self.review_first
    }

    /// Rows decided so far (invalid rows are decided when split).
    pub fn progress(&self) -> Progress {
        let decided = self.invalid_rows + self.rows_done;
        Progress {
            rows_decided: decided,
            rows_total: self.splitting_done.then_some(self.total_rows),
            percent: match (self.status.is_final(), self.splitting_done) {
                (true, _) => 100,
                (false, true) if self.total_rows > 0 => (decided * 100 / self.total_rows).min(99),
                _ => 0,
            },
        }
    }

    /// The row counts as the API shows them.
    pub fn counts(&self) -> Counts {
        Counts::new(
            self.splitting_done,
            self.total_rows,
            self.invalid_rows,
            self.tally(),
        )
    }

    pub fn tally(&self) -> Tally {
        Tally {
            applied: self.applied,
            skipped: self.skipped,
            failed: self.failed,
            credited: self.credited,
            debited: self.debited,
        }
    }
}

/// Where a processed file's writing can go on from, kept on its job
/// between runs of the finalizer: the rows written, the upload they went
/// to, and where the job's outcomes were being read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizeCheckpoint {
    pub at: crate::processed::Resume,
    /// The object's multipart upload, once one was begun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Parts uploaded to it.
    pub parts: u32,
    /// The object holding what was written after the last part (less than
    /// a part), if anything was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carry: Option<String>,
    /// Where each range of the job's outcomes was being read (one number
    /// per range: the bound of the job's shards).
    pub outcomes_from: Vec<u64>,
}

/// The identity of a file's content, read in blocks of [`HASH_BLOCK`] so
/// that the read can stop at a block and be taken up there in another
/// invocation: each block's SHA-256 is chained into the one before
/// (`chain = SHA-256(chain ‖ SHA-256(block))`, from 32 zero bytes). Two
/// uploads of the same bytes have the same identity, whatever their names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentHash {
    /// The bytes hashed so far (a whole number of blocks until the end).
    pub offset: u64,
    /// The chain so far, hex.
    pub chain: String,
}

/// The bytes of one hashed block: the most read between two looks at the
/// deadline (a few milliseconds of hashing), at one 32-byte chain step per
/// block.
pub const HASH_BLOCK: u64 = 1024 * 1024;

impl Default for ContentHash {
    fn default() -> Self {
        ContentHash {
            offset: 0,
            chain: hex::encode([0u8; 32]),
        }
    }
}

impl ContentHash {
    /// Hashes `input` (the file from `self.offset` on) a block at a time,
    /// asking `go_on` after each whether to read another; returns whether
    /// the end of the file was reached (the identity is then `chain`).
    pub fn read_from<R: std::io::Read>(
        &mut self,
        mut input: R,
        mut go_on: impl FnMut(&ContentHash) -> bool,
    ) -> std::io::Result<bool> {
        let mut chain = hex::decode(&self.chain).map_err(std::io::Error::other)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut block = Sha256::new();
            let mut taken = 0u64;
            while taken < HASH_BLOCK {
                let want = (HASH_BLOCK - taken).min(buf.len() as u64) as usize;
                let read = input.read(&mut buf[..want])?;
                if read == 0 {
                    break;
                }
                block.update(&buf[..read]);
                taken += read as u64;
            }
            if taken > 0 {
                let mut next = Sha256::new();
                next.update(&chain);
                next.update(block.finalize());
                chain = next.finalize().to_vec();
                self.offset += taken;
                self.chain = hex::encode(&chain);
            }
            if taken < HASH_BLOCK {
                return Ok(true);
            }
            if !go_on(self) {
                return Ok(false);
            }
        }
    }
}

/// The data rows of a file (blank lines are not rows), counted up to
/// `limit + 1` at most; `None` if it does not read as CSV (the split then
/// refuses it).
pub fn count_rows<R: std::io::Read>(input: R, limit: u64) -> Option<u64> {
    let mut csv = CsvInput::open(input).ok()?;
    let mut count = 0;
    while let Ok(Some(row)) = csv.next_row() {
        count = row;
        if count > limit {
            break;
        }
    }
    Some(count)
}

/// How the reason a duplicate is refused starts.
pub const DUPLICATE_FILE: &str = "duplicate file:";

/// Why a file whose content was imported before is not imported again.
pub fn duplicate_reason(earlier: &Job) -> String {
    format!(
        "{DUPLICATE_FILE} the same content was imported on {} by job {} ({}); nothing of this \
         upload was applied. To import it again on purpose, upload it with \"allow_duplicate\": true \
         (API) or the object metadata allow-duplicate=true (console).",
        earlier.created_at.format("%Y-%m-%d %H:%M UTC"),
        earlier.job_id,
        earlier.filename
    )
}

/// Why a split that failed on every delivery is given up, having checkpointed
/// `read` rows: the job goes on without the rows after them.
pub fn split_given_up(read: u64) -> String {
    format!(
        "the file could not be read to its end (its split failed on every attempt): the rows \
         after row {read} that were not applied are reported not_processed"
    )
}

/// The watchdog's verdict on a job that may have stopped moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Moving, or done.
    Fine,
    /// Its batches stopped coming (a lost message): close it, reporting the
    /// rows never processed.
    Stalled,
    /// Due for finalizing (or closed as stalled) but not finalized: ask again
    /// (the request was lost, or the run holding it died).
    FinalizeAgain,
    /// The split itself stopped: its upload's event is retried by the ingest
    /// queue and, failing that, waits in the ingest dead-letter queue.
    SplitStalled,
    /// A membership file waiting for its turn: its turn is looked at again
    /// (the file it waits for may be done, or its wait over).
    Waiting,
    /// A review never started in its time: it expires, nothing applied.
    ReviewExpired,
    /// A split the API asked for (a reversal, a started review) that never
    /// began: the upload's event may have been lost with the request that
    /// sent it. It is sent again (a split already going finds it has been
    /// overtaken, or overtakes).
    AskSplitAgain,
}

/// A job's row counts as the API shows them: its rows once the whole file
/// is split (`None` before), the rows refused when split, and the outcomes
/// of the others so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub rows: Option<u64>,
    pub invalid: u64,
    #[serde(flatten)]
    pub tally: Tally,
}

impl Counts {
    pub fn new(splitting_done: bool, total_rows: u64, invalid_rows: u64, tally: Tally) -> Self {
        Counts {
            rows: splitting_done.then_some(total_rows),
            invalid: invalid_rows,
            tally,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub rows_decided: u64,
    /// Known once the whole file is split.
    pub rows_total: Option<u64>,
    pub percent: u64,
}

/// A time-ordered job id: `<yyyymmddhhmmss>-<12 hex>`. The same `seed` and
/// time always give the same id, which makes job creation idempotent.
pub fn job_id(at: DateTime<Utc>, seed: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(seed));
    format!("{}-{}", at.format("%Y%m%d%H%M%S"), &digest[..12])
}

/// The default adjustment reason of a console drop without `reason` metadata.
pub fn default_reason(filename: &str) -> String {
    format!("Bulk import from {filename}")
}

/// Where the objects of a tenant live in the bucket.
pub mod keys {
    /// Where API uploads go: `incoming/<tenant>/uploads/<job>/<file>`.
    pub fn upload(tenant: &str, job_id: &str, filename: &str) -> String {
        format!("incoming/{tenant}/uploads/{job_id}/{filename}")
    }

    /// `processed/<tenant>/<job>/<file stem>.processed.csv`.
    /// The API path of a job's emailed download link.
    pub fn download_path(tenant: &str, job_id: &str, token: &str) -> String {
        format!("downloads/{tenant}/{job_id}/{token}")
    }

    pub fn processed(tenant: &str, job_id: &str, filename: &str) -> String {
        let stem = filename
            .strip_suffix(".csv")
            .or_else(|| filename.strip_suffix(".CSV"))
            .unwrap_or(filename);
        format!("processed/{tenant}/{job_id}/{stem}.processed.csv")
    }

    /// What a run of the finalizer wrote after its last uploaded part, kept
    /// for the next run: one object per checkpoint (`row` rows written,
    /// `lease` the run's hold on the job), deleted once taken over (and
    /// expired after a day if a failed run left it).
    pub fn finalize_carry(tenant: &str, job_id: &str, row: u64, lease: i64) -> String {
        format!("finalizing/{tenant}/{job_id}/{row}-{lease}.part")
    }

    /// What an object key under `incoming/` says about its import.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Incoming<'a> {
        pub tenant: &'a str,
        /// Set for uploads through a presigned URL from the API.
        pub upload_job: Option<&'a str>,
        /// A console drop under `incoming/<tenant>/memberships/`: a
        /// membership file, named by the membership naming rule.
        pub membership: bool,
        pub filename: &'a str,
    }

    /// Where console drops of membership files go.
    pub const MEMBERSHIP_FOLDER: &str = "memberships/";

    pub fn parse_incoming(key: &str) -> Option<Incoming<'_>> {
        let rest = key.strip_prefix("incoming/")?;
        let (tenant, path) = rest.split_once('/')?;
        let filename = super::filename_of(path);
        if tenant.is_empty() || filename.is_empty() || path.ends_with('/') {
            return None;
        }
        let upload_job = path
            .strip_prefix("uploads/")
            .and_then(|p| p.split_once('/'))
            .filter(|(_, file)| !file.contains('/'))
            .map(|(job, _)| job);
        Some(Incoming {
            tenant,
            upload_job,
            membership: path.starts_with(MEMBERSHIP_FOLDER),
            filename,
        })
    }
}

fn filename_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_ready_review_waits_for_its_admin_until_it_expires() {
        use chrono::TimeZone;
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap();
        let mut job = Job::new("acme", "J1", "incoming/acme/uploads/J1/f.csv", "r", at);
        job.status = JobStatus::ReadyForReview;
        job.review_first = true;
        let mut review = crate::review::Review::default();
        review.ready(at);
        job.review = Some(review);
        let days = chrono::Duration::days(crate::review::REVIEW_VALID_DAYS);
        assert_eq!(
            job.watch(at + days - chrono::Duration::seconds(1), 60),
            Watch::Fine
        );
        assert_eq!(job.watch(at + days, 60), Watch::ReviewExpired);
        assert!(!job.finalization_due());
        job.status = JobStatus::Reviewing;
        assert_eq!(job.watch(at + days, 60), Watch::SplitStalled);
        // Started, and its split never began: asked for again.
        job.status = JobStatus::Splitting;
        job.progress_at = Some(at);
        assert_eq!(
            job.watch(at + chrono::Duration::seconds(59), 60),
            Watch::Fine
        );
        assert_eq!(job.watch(at + days, 60), Watch::AskSplitAgain);
        job.split_checkpoint = Some(crate::split::Checkpoint {
            offset: 100,
            row: 5,
            invalid_rows: 0,
            batches: 1,
            shards: Some(8),
        });
        assert_eq!(job.watch(at + days, 60), Watch::SplitStalled);
    }

    #[test]
    fn a_reversal_whose_split_never_began_is_asked_for_again() {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap();
        let mut original = Job::new("acme", "J1", "incoming/acme/uploads/J1/f.csv", "r", at);
        original.status = JobStatus::Completed;
        let mut reversal = crate::reversal::reversal_job(&original, at);
        reversal.status = JobStatus::Splitting;
        assert_eq!(
            reversal.watch(at + chrono::Duration::seconds(30), 60),
            Watch::Fine
        );
        assert_eq!(
            reversal.watch(at + chrono::Duration::seconds(61), 60),
            Watch::AskSplitAgain
        );
        // An upload's split is retried by the ingest queue instead.
        original.status = JobStatus::Splitting;
        assert_eq!(
            original.watch(at + chrono::Duration::seconds(61), 60),
            Watch::SplitStalled
        );
    }

    #[test]
    fn a_download_needs_the_jobs_token_before_the_link_expires() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap();
        let mut job = Job::new("acme", "J", "incoming/acme/x.csv", "r", at);
        assert_eq!(job.download("", at), None);
        job.download_token = Some("a1b2".into());
        job.download_until = Some(at + chrono::Duration::hours(72));
        assert_eq!(job.download("a1b2", at), None, "no processed file yet");
        job.processed_key = Some("processed/acme/J/x.processed.csv".into());
        assert_eq!(
            job.download("a1b2", at),
            Some("processed/acme/J/x.processed.csv")
        );
        assert_eq!(job.download("a1b3", at), None);
        assert_eq!(job.download("a1b", at), None);
        assert_eq!(job.download("a1b2", at + chrono::Duration::hours(72)), None);
    }

    #[test]
    fn job_ids_are_deterministic_and_time_ordered() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap();
        assert_eq!(job_id(at, b"x"), job_id(at, b"x"));
        assert_ne!(job_id(at, b"x"), job_id(at, b"y"));
        assert!(job_id(at, b"x").starts_with("20261124093000-"));
    }

    #[test]
    fn the_watchdog_closes_a_job_whose_batches_stopped_and_re_asks_a_lost_finalization() {
        let start = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        let mut job = Job::new("acme", "J1", "incoming/acme/f.csv", "r", start);
        job.status = JobStatus::Processing;
        job.splitting_done = true;
        job.batches_total = 3;
        job.batches_done = 2;
        job.progress_at = Some(start + chrono::Duration::minutes(10));
        let later = |minutes| start + chrono::Duration::minutes(minutes);
        assert_eq!(job.watch(later(30), 3600), Watch::Fine);
        assert_eq!(job.watch(later(71), 3600), Watch::Stalled);
        job.stalled_at = Some(later(71));
        assert!(job.finalization_due());
        assert_eq!(job.watch(later(71), 3600), Watch::FinalizeAgain);
        job.email_sent_at = Some(later(72));
        assert_eq!(job.watch(later(200), 3600), Watch::Fine);
    }

    #[test]
    fn incoming_keys_name_the_tenant_and_api_uploads() {
        let drop = keys::parse_incoming("incoming/acme/march/bonus file.csv").unwrap();
        assert_eq!(
            (drop.tenant, drop.upload_job, drop.filename),
            ("acme", None, "bonus file.csv")
        );
        let api = keys::parse_incoming("incoming/acme/uploads/J1/f.csv").unwrap();
        assert_eq!(api.upload_job, Some("J1"));
        assert!(!api.membership && !drop.membership);
        let cards = keys::parse_incoming("incoming/acme/memberships/u_cardcode_s_20260101.csv");
        assert!(cards.is_some_and(|c| c.membership && c.filename == "u_cardcode_s_20260101.csv"));
        assert!(keys::parse_incoming("processed/acme/f.csv").is_none());
        assert!(keys::parse_incoming("incoming/acme/").is_none());
        assert!(keys::parse_incoming("incoming/f.csv").is_none());
    }

    #[test]
    fn rows_are_counted_not_lines_and_no_further_than_asked() {
        let file = "a;b\n1;\"two\nlines\"\n\n3;4\n5;6\n";
        assert_eq!(count_rows(file.as_bytes(), 10), Some(3));
        assert_eq!(count_rows(file.as_bytes(), 1), Some(2));
    }

    #[test]
    fn a_content_hash_taken_up_where_it_stopped_is_the_hash_read_at_once() {
        let len = 3 * HASH_BLOCK as usize + 12_345;
        let file: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let mut once = ContentHash::default();
        assert!(once.read_from(&file[..], |_| true).unwrap());
        assert_eq!(once.offset, len as u64);
        // A block a run, each taken up at its offset.
        let mut stepped = ContentHash::default();
        let mut runs = 0;
        while !stepped
            .read_from(&file[stepped.offset as usize..], |_| false)
            .unwrap()
        {
            runs += 1;
        }
        assert_eq!((runs, &stepped), (3, &once));
        // Another content, another identity; an empty file has one too.
        let mut other = ContentHash::default();
        other.read_from(&file[1..], |_| true).unwrap();
        assert_ne!(other.chain, once.chain);
        let mut empty = ContentHash::default();
        assert!(empty.read_from(&[][..], |_| true).unwrap());
        assert_eq!(empty, ContentHash::default());
    }

    #[test]
    fn a_split_given_up_says_from_which_row_nothing_was_applied() {
        assert_eq!(
            split_given_up(20_000),
            "the file could not be read to its end (its split failed on every attempt): the rows \
             after row 20000 that were not applied are reported not_processed"
        );
    }

    #[test]
    fn processed_files_sit_under_the_job() {
        assert_eq!(
            keys::processed("acme", "J1", "bonus.csv"),
            "processed/acme/J1/bonus.processed.csv"
        );
    }
}
