//! A file dropped into the bucket from the S3 console (or any S3 client):
//! its job is made from the object alone, its key, version and metadata.
//!
//! The job id is a function of the tenant, the key and the object version
//! (never of the event that announced it), so the same version can never
//! start two jobs, however often or however it is announced. The metadata
//! may give the adjustment reason (`x-amz-meta-reason`; by default "Bulk
//! import from <file>"), ask to import a content imported before
//! (`allow-duplicate: true`) and give a Smile.io file's mode (`mode:
//! set_balance` or `add`). A file in the tenant's `memberships/` folder, or
//! named like a membership file anywhere, waits for its turn in the
//! tenant's order of membership files.

use crate::job::{self, Job, JobStatus};
use crate::membership::file_name::FileName;
use crate::smile::Mode;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A dropped object, as the bucket describes it.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleDrop<'a> {
    pub tenant_id: &'a str,
    pub key: &'a str,
    pub filename: &'a str,
    /// Under `incoming/<tenant>/memberships/`.
    pub in_memberships_folder: bool,
    pub version_id: Option<&'a str>,
    /// The announcing event's sequencer: what tells the object's versions
    /// apart when the bucket names none.
    pub sequencer: Option<&'a str>,
    pub etag: Option<&'a str>,
    pub last_modified: DateTime<Utc>,
    /// User metadata (`x-amz-meta-*`), lower-case keys.
    pub metadata: &'a HashMap<String, String>,
}

/// The job a drop starts, and why it is refused at once, if it is (a
/// `mode` its metadata gives that is no mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedJob {
    pub job: Job,
    pub refused: Option<String>,
}

impl ConsoleDrop<'_> {
    /// The drop's job id: `<last modified>-<12 hex>` of the tenant, the key
    /// and the version (or, failing that, the sequencer, or the etag).
    pub fn job_id(&self) -> String {
        let version = self
            .version_id
            .or(self.sequencer)
            .or(self.etag)
            .unwrap_or_default();
        let seed = format!("{}\n{}\n{version}", self.tenant_id, self.key);
        job::job_id(self.last_modified, seed.as_bytes())
    }

    /// The job this drop starts at `now`.
    pub fn job(&self, now: DateTime<Utc>) -> DroppedJob {
        let meta = |name: &str| self.metadata.get(name);
        let reason = meta("reason")
            .filter(|r| !r.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| job::default_reason(self.filename));
        let mut job = Job::new(self.tenant_id, &self.job_id(), self.key, &reason, now);
        job.allow_duplicate = meta("allow-duplicate").is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1")
        });
        let mode = meta("mode").map(|m| m.parse::<Mode>());
        job.smile_mode = match &mode {
            Some(Ok(mode)) => *mode,
            _ => Mode::Add,
        };
        job.source_version = self.version_id.map(str::to_owned);
        job.source_etag = self.etag.map(str::to_owned);
        // Its name is checked when it takes its place, if it is in the
        // memberships folder; named like one, it is one anywhere.
        let name = FileName::parse(self.filename).ok();
        if self.in_memberships_folder || name.is_some() {
            job.status = JobStatus::Waiting;
            job.kind = name.map(|name| name.scope.into());
        }
        let refused = match mode {
            Some(Err(why)) => Some(format!("the object's metadata 'mode': {why}")),
            _ => None,
        };
        DroppedJob { job, refused }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::ImportKind;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap()
    }

    fn dropped<'a>(key: &'a str, metadata: &'a HashMap<String, String>) -> ConsoleDrop<'a> {
        let incoming = job::keys::parse_incoming(key).unwrap();
        ConsoleDrop {
            tenant_id: incoming.tenant,
            key,
            filename: incoming.filename,
            in_memberships_folder: incoming.membership,
            version_id: Some("v1"),
            sequencer: Some("s1"),
            etag: Some("e1"),
            last_modified: at(),
            metadata,
        }
    }

    fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_plain_drop_is_a_points_job_of_its_version() {
        let none = meta(&[]);
        let drop = dropped("incoming/acme/march/bonus.csv", &none);
        let DroppedJob { job, refused } = drop.job(at());
        assert_eq!(refused, None);
        assert_eq!(job.job_id, drop.job_id());
        assert!(job.job_id.starts_with("20261124093000-"));
        assert_eq!(job.reason, "Bulk import from bonus.csv");
        assert_eq!(
            (job.status, job.kind, job.smile_mode, job.allow_duplicate),
            (JobStatus::Splitting, None, Mode::Add, false)
        );
        assert_eq!(
            (job.source_version.as_deref(), job.source_etag.as_deref()),
            (Some("v1"), Some("e1"))
        );
    }

    #[test]
    fn the_job_id_is_the_versions_whoever_announces_it() {
        let none = meta(&[]);
        let drop = dropped("incoming/acme/bonus.csv", &none);
        let again = ConsoleDrop {
            sequencer: Some("another"),
            ..drop
        };
        assert_eq!(drop.job_id(), again.job_id());
        let next = ConsoleDrop {
            version_id: Some("v2"),
            ..drop
        };
        assert_ne!(drop.job_id(), next.job_id());
        // Without a version, the sequencer tells the uploads apart, then
        // the etag.
        let unversioned = ConsoleDrop {
            version_id: None,
            ..drop
        };
        assert_ne!(unversioned.job_id(), drop.job_id());
        assert_ne!(
            unversioned.job_id(),
            ConsoleDrop {
                sequencer: None,
                ..unversioned
            }
            .job_id()
        );
        let other_tenant = ConsoleDrop {
            tenant_id: "globex",
            ..drop
        };
        assert_ne!(other_tenant.job_id(), drop.job_id());
    }

    #[test]
    fn metadata_gives_the_reason_the_duplicate_wish_and_the_mode() {
        let given = meta(&[
            ("reason", "Welcome gift"),
            ("allow-duplicate", " YES "),
            ("mode", "set_balance"),
        ]);
        let job = dropped("incoming/acme/smile.csv", &given).job(at()).job;
        assert_eq!(job.reason, "Welcome gift");
        assert!(job.allow_duplicate);
        assert_eq!(job.smile_mode, Mode::SetBalance);
        let blank = meta(&[("reason", "  "), ("allow-duplicate", "no")]);
        let job = dropped("incoming/acme/smile.csv", &blank).job(at()).job;
        assert_eq!(job.reason, "Bulk import from smile.csv");
        assert!(!job.allow_duplicate);
    }

    #[test]
    fn a_mode_that_is_no_mode_refuses_the_file() {
        let wrong = meta(&[("mode", "double")]);
        let DroppedJob { job, refused } = dropped("incoming/acme/smile.csv", &wrong).job(at());
        assert_eq!(job.smile_mode, Mode::Add);
        assert_eq!(
            refused.as_deref(),
            Some("the object's metadata 'mode': 'double' is not a mode: use add or set_balance")
        );
    }

    #[test]
    fn a_membership_file_waits_whether_named_or_foldered() {
        let none = meta(&[]);
        let named = dropped("incoming/acme/u_cardcode_s_20261125.csv", &none).job(at());
        assert_eq!(
            (named.job.status, named.job.kind),
            (JobStatus::Waiting, Some(ImportKind::CardCode))
        );
        // In the folder, a wrong name still waits: its name is refused when
        // it takes its place.
        let foldered = dropped("incoming/acme/memberships/cards.csv", &none).job(at());
        assert_eq!(
            (foldered.job.status, foldered.job.kind),
            (JobStatus::Waiting, None)
        );
    }
}
