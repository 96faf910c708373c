//! Whether an uploaded file is imported at all, decided before any of its
//! rows is: its size, and whether its content was imported before. (A
//! membership file's own checks are `crate::membership::admission`.)

use crate::job::{self, Job, JobStatus};

/// Why a file of `size` bytes is too large to import, if it is: larger than
/// its upload `declared` (API uploads), or than any file may be (`max`).
pub fn too_large(size: u64, declared: Option<u64>, max: u64) -> Option<String> {
    if let Some(limit) = declared.filter(|&limit| size > limit) {
        return Some(format!(
            "the file is {size} bytes, more than the {limit} bytes declared for this upload"
        ));
    }
    (size > max).then(|| {
        format!(
            "the file is {size} bytes, more than the {max} bytes ({:.1} GiB) a file may \
             have: split it into several files and upload each",
            max as f64 / (1024.0 * 1024.0 * 1024.0)
        )
    })
}

/// What a job whose content another job holds does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duplicate {
    /// The earlier job applied nothing (rejected, or gone): this job takes
    /// the content over and is imported.
    TakeOver,
    /// Imported again, as the upload asked; the earlier job's id.
    ImportedAgain(String),
    /// Not imported, and why.
    Refused(String),
}

/// What `job` does about the `earlier` job that holds its content (`None`
/// if that job is not found).
pub fn duplicate(job: &Job, earlier: Option<&Job>) -> Duplicate {
    match earlier {
        None => Duplicate::TakeOver,
        // It applied nothing: refused, or a review discarded or expired.
        Some(earlier)
            if matches!(
                earlier.status,
                JobStatus::Rejected | JobStatus::Discarded | JobStatus::Expired
            ) =>
        {
            Duplicate::TakeOver
        }
        Some(earlier) if job.allow_duplicate => Duplicate::ImportedAgain(earlier.job_id.clone()),
        Some(earlier) => Duplicate::Refused(job::duplicate_reason(earlier)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn a_file_may_not_outgrow_its_declared_size_nor_the_limit() {
        assert_eq!(too_large(100, Some(100), GIB), None);
        assert_eq!(too_large(GIB, None, GIB), None);
        assert_eq!(
            too_large(101, Some(100), GIB).as_deref(),
            Some("the file is 101 bytes, more than the 100 bytes declared for this upload")
        );
        assert_eq!(
            too_large(GIB + 1, None, GIB).as_deref(),
            Some(
                "the file is 1073741825 bytes, more than the 1073741824 bytes (1.0 GiB) a file \
                 may have: split it into several files and upload each"
            )
        );
        // The declared size speaks first.
        assert!(too_large(GIB + 1, Some(10), GIB)
            .unwrap()
            .contains("declared"));
    }

    #[test]
    fn a_duplicate_is_refused_unless_asked_for_or_the_earlier_job_applied_nothing() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap();
        let mut job = Job::new("acme", "J2", "incoming/acme/b.csv", "r", at);
        let mut earlier = Job::new("acme", "J1", "incoming/acme/a.csv", "r", at);
        earlier.status = JobStatus::Completed;
        assert_eq!(duplicate(&job, None), Duplicate::TakeOver);
        let Duplicate::Refused(why) = duplicate(&job, Some(&earlier)) else {
            panic!("a duplicate is refused");
        };
        assert!(
            why.starts_with(job::DUPLICATE_FILE) && why.contains("job J1 (a.csv)"),
            "{why}"
        );
        job.allow_duplicate = true;
        assert_eq!(
            duplicate(&job, Some(&earlier)),
            Duplicate::ImportedAgain("J1".into())
        );
        earlier.status = JobStatus::Rejected;
        assert_eq!(duplicate(&job, Some(&earlier)), Duplicate::TakeOver);
        job.allow_duplicate = false;
        assert_eq!(duplicate(&job, Some(&earlier)), Duplicate::TakeOver);
        for never_applied in [JobStatus::Discarded, JobStatus::Expired] {
            earlier.status = never_applied;
            assert_eq!(duplicate(&job, Some(&earlier)), Duplicate::TakeOver);
        }
        earlier.status = JobStatus::ReadyForReview;
        assert!(matches!(
            duplicate(&job, Some(&earlier)),
            Duplicate::Refused(_)
        ));
    }
}
