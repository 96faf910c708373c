//! How an upload becomes a job: an import asked for through the API
//! ([`request`]), a file dropped into the bucket from the console
//! ([`console`]), and what an object arriving at an API upload's key does to
//! the job that asked for it ([`arrival`]).

pub mod console;
pub mod request;

use crate::job::{Job, JobStatus};

/// What an object arriving at an API upload's key does to its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The file the job awaited: the job claims it and moves to this status
    /// (a review is read first; a membership file not reviewed waits for
    /// its turn first).
    Claim(JobStatus),
    /// The job's own file, announced again: the job goes on.
    Resume,
    /// The job has its file already (another key, or another version of
    /// its key): this object is not imported.
    Ignore,
}

/// What the object `key` (`version_id`, `etag`) does to `job`, the job its
/// upload path names. The job's file is the version it was pinned to, or,
/// in a bucket that keeps no versions, the content its etag names.
pub fn arrival(job: &Job, key: &str, version_id: Option<&str>, etag: Option<&str>) -> Arrival {
    if job.source_key != key {
        return Arrival::Ignore;
    }
    if job.status == JobStatus::AwaitingUpload {
        return Arrival::Claim(match job.membership_scope() {
            _ if job.review_first => JobStatus::Reviewing,
            Some(_) => JobStatus::Waiting,
            None => JobStatus::Splitting,
        });
    }
    let same_object = match job.source_version.as_deref() {
        Some(pinned) => Some(pinned) == version_id,
        None => job.source_etag.as_deref() == etag,
    };
    if same_object {
        Arrival::Resume
    } else {
        Arrival::Ignore
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::ImportKind;
    use chrono::{TimeZone, Utc};

    const KEY: &str = "incoming/acme/uploads/J1/bonus.csv";

    fn awaiting(kind: ImportKind) -> Job {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap();
        let mut job = Job::new("acme", "J1", KEY, "r", at);
        job.status = JobStatus::AwaitingUpload;
        job.kind = Some(kind);
        job
    }

    #[test]
    fn an_upload_to_review_is_read_for_its_review_first() {
        let mut points = awaiting(ImportKind::Points);
        points.review_first = true;
        assert_eq!(
            arrival(&points, KEY, Some("v1"), None),
            Arrival::Claim(JobStatus::Reviewing)
        );
        // A membership file is read for its review before it takes a place
        // in its tenant's order.
        let mut cards = awaiting(ImportKind::CardCode);
        cards.review_first = true;
        assert_eq!(
            arrival(&cards, KEY, Some("v1"), None),
            Arrival::Claim(JobStatus::Reviewing)
        );
    }

    #[test]
    fn an_awaited_upload_is_claimed_and_a_membership_file_waits_for_its_turn() {
        let points = awaiting(ImportKind::Points);
        assert_eq!(
            arrival(&points, KEY, Some("v1"), Some("e")),
            Arrival::Claim(JobStatus::Splitting)
        );
        let cards = awaiting(ImportKind::CardCode);
        assert_eq!(
            arrival(&cards, KEY, None, None),
            Arrival::Claim(JobStatus::Waiting)
        );
        assert_eq!(
            arrival(&points, "incoming/acme/uploads/J1/other.csv", None, None),
            Arrival::Ignore
        );
    }

    #[test]
    fn a_claimed_job_goes_on_with_its_own_version_only() {
        let mut job = awaiting(ImportKind::Points);
        job.status = JobStatus::Splitting;
        job.source_version = Some("v1".into());
        job.source_etag = Some("e1".into());
        assert_eq!(arrival(&job, KEY, Some("v1"), Some("e2")), Arrival::Resume);
        assert_eq!(arrival(&job, KEY, Some("v2"), Some("e1")), Arrival::Ignore);
        assert_eq!(arrival(&job, KEY, None, Some("e1")), Arrival::Ignore);
        // Without versions, the content decides.
        job.source_version = None;
        assert_eq!(arrival(&job, KEY, None, Some("e1")), Arrival::Resume);
        assert_eq!(arrival(&job, KEY, Some("v1"), Some("e2")), Arrival::Ignore);
    }
}
