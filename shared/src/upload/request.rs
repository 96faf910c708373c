//! An import asked for through the API (`POST /imports`): what the request
//! may say, the checks it must pass, and the job it creates, awaiting its
//! upload.

use crate::job::{keys, Job, JobStatus};
use crate::kind::ImportKind;
use crate::membership::file_name::FileName;
use crate::smile::Mode;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The longest adjustment reason: it shows in each customer's history.
pub const MAX_REASON_CHARS: usize = 500;
/// The longest file name an upload may give.
pub const MAX_FILENAME_CHARS: usize = 200;

/// A request to create an import. It names no tenant, key, job or
/// recipient, and any field it does not know is refused: the tenant is
/// the API key's, the rest is decided here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateImport {
    pub kind: String,
    pub reason: String,
    pub filename: String,
    /// The exact size of the file to upload, in bytes.
    pub size_bytes: u64,
    #[serde(default)]
    pub dry_run: bool,
    /// Import even if a file with the same content was imported before.
    #[serde(default)]
    pub allow_duplicate: bool,
    /// Smile.io files: `add` (the default) or `set_balance`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Read and check the whole file first, apply it only when started
    /// (`crate::review`).
    #[serde(default)]
    pub review: bool,
}

/// A request that passed its checks: the import to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImport {
    pub kind: ImportKind,
    /// Trimmed.
    pub reason: String,
    /// Trimmed.
    pub filename: String,
    pub size_bytes: u64,
    pub dry_run: bool,
    pub allow_duplicate: bool,
    pub smile_mode: Mode,
    pub review: bool,
}

/// Why a request is refused: its file is larger than the API signs, or the
/// request itself is wrong (the message names the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Refusal::Invalid(message)
    }
}

impl CreateImport {
    /// The import this request asks for, or why it is refused (shown to the
    /// caller as it is). `max_upload_bytes` is the largest upload the API
    /// signs.
    pub fn check(&self, max_upload_bytes: u64) -> Result<NewImport, Refusal> {
        let kind: ImportKind = self.kind.parse()?;
        let reason = self.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(format!(
                "reason must be 1 to {MAX_REASON_CHARS} characters: it shows in each customer's \
                 history"
            )
            .into());
        }
        let filename = self.filename.trim();
        if filename.is_empty()
            || filename.chars().count() > MAX_FILENAME_CHARS
            || filename.contains(['/', '\\'])
            || filename.chars().any(char::is_control)
        {
            return Err(format!(
                "filename must be 1 to {MAX_FILENAME_CHARS} characters, without slashes"
            )
            .into());
        }
        if let Some(scope) = kind.scope() {
            let name = FileName::parse(filename).map_err(|e| e.to_string())?;
            if name.scope != scope {
                return Err(format!(
                    "the file name says scope {}, but the import is of kind {kind}",
                    name.scope.as_str()
                )
                .into());
            }
            if self.dry_run {
                return Err(Refusal::Invalid(
                    "dry runs are for points imports; a membership file is applied or \
                            refused row by row"
                        .into(),
                ));
            }
        }
        if self.review && self.dry_run {
            return Err(Refusal::Invalid(format!(
                "review and dry_run do not go together: a review applies nothing until it is \
                 started, then applies the file (kind {kind}); ask for one or the other"
            )));
        }
        let smile_mode = match (&self.mode, kind) {
            (None, _) => Mode::Add,
            (Some(mode), ImportKind::Smile) => mode.parse()?,
            (Some(_), _) => {
                return Err(
                    format!("mode is for Smile.io files (kind smile), not for kind {kind}").into(),
                )
            }
        };
        if self.size_bytes == 0 || self.size_bytes > max_upload_bytes {
            let message = format!("size_bytes must be between 1 and {max_upload_bytes}");
            return Err(if self.size_bytes == 0 {
                Refusal::Invalid(message)
            } else {
                Refusal::TooLarge(message)
            });
        }
        Ok(NewImport {
            kind,
            reason: reason.to_owned(),
            filename: filename.to_owned(),
            size_bytes: self.size_bytes,
            dry_run: self.dry_run,
            allow_duplicate: self.allow_duplicate,
            smile_mode,
            review: self.review,
        })
    }
}

impl NewImport {
    /// The job, awaiting its upload at `incoming/<tenant>/uploads/<job>/<file>`
    /// of no more than the declared size.
    pub fn job(&self, tenant_id: &str, job_id: &str, now: DateTime<Utc>) -> Job {
        let key = keys::upload(tenant_id, job_id, &self.filename);
        let mut job = Job::new(tenant_id, job_id, &key, &self.reason, now);
        job.status = JobStatus::AwaitingUpload;
        job.kind = Some(self.kind);
        job.dry_run = self.dry_run;
        job.smile_mode = self.smile_mode;
        job.allow_duplicate = self.allow_duplicate;
        job.max_bytes = Some(self.size_bytes);
        job.review_first = self.review;
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const MAX: u64 = 1_000;

    fn request(kind: &str, filename: &str) -> CreateImport {
        CreateImport {
            kind: kind.into(),
            reason: "  Spring bonus ".into(),
            filename: filename.into(),
            size_bytes: 10,
            dry_run: false,
            allow_duplicate: false,
            mode: None,
            review: false,
        }
    }

    fn refused(request: CreateImport) -> String {
        request.check(MAX).expect_err("refused").to_string()
    }

    #[test]
    fn a_points_request_becomes_a_job_awaiting_its_upload() {
        let mut asked = request("points", " bonus.csv ");
        asked.allow_duplicate = true;
        let import = asked.check(MAX).unwrap();
        assert_eq!(
            (import.reason.as_str(), import.filename.as_str()),
            ("Spring bonus", "bonus.csv")
        );
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap();
        let job = import.job("acme", "J1", at);
        assert_eq!(job.source_key, "incoming/acme/uploads/J1/bonus.csv");
        assert_eq!(job.filename, "bonus.csv");
        assert_eq!(job.status, JobStatus::AwaitingUpload);
        assert_eq!(job.kind, Some(ImportKind::Points));
        assert_eq!(job.max_bytes, Some(10));
        assert!(job.allow_duplicate && !job.dry_run);
        assert_eq!(job.smile_mode, Mode::Add);
    }

    #[test]
    fn the_reason_the_file_name_and_the_size_are_bounded() {
        let mut blank = request("points", "f.csv");
        blank.reason = "  ".into();
        assert!(refused(blank).starts_with("reason must be 1 to 500 characters"));
        for name in ["", "a/b.csv", "a\\b.csv", "a\u{7}.csv", &"x".repeat(201)] {
            assert_eq!(
                refused(request("points", name)),
                "filename must be 1 to 200 characters, without slashes"
            );
        }
        for size in [0, MAX + 1] {
            let mut sized = request("points", "f.csv");
            sized.size_bytes = size;
            assert_eq!(refused(sized), "size_bytes must be between 1 and 1000");
        }
        let mut large = request("points", "f.csv");
        large.size_bytes = MAX + 1;
        assert!(matches!(large.check(MAX), Err(Refusal::TooLarge(_))));
        assert!(request("points", "f.csv").check(MAX).is_ok());
        assert!(refused(request("bananas", "f.csv")).contains("bananas"));
    }

    #[test]
    fn a_membership_request_needs_a_membership_name_of_its_scope_and_no_dry_run() {
        assert!(refused(request("cardcode", "cards.csv")).contains("the file name 'cards.csv'"));
        assert_eq!(
            refused(request("cardcode", "u_tierchange_s_20261125.csv")),
            "the file name says scope tierchange, but the import is of kind cardcode"
        );
        let mut dry = request("tierchange", "u_tierchange_s_20261125.csv");
        dry.dry_run = true;
        assert!(refused(dry).starts_with("dry runs are for points imports"));
        let import = request("tierchange", "u_tierchange_s_20261125.csv")
            .check(MAX)
            .unwrap();
        assert_eq!(import.kind, ImportKind::TierChange);
    }

    #[test]
    fn any_kind_may_ask_to_be_reviewed_first_but_not_as_a_dry_run() {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 9, 30, 0).unwrap();
        for (kind, filename) in [
            ("smile", "s.csv"),
            ("cardcode", "u_cardcode_s_20261125.csv"),
            ("tierchange", "u_tierchange_s_20261125.csv"),
        ] {
            let mut asked = request(kind, filename);
            asked.review = true;
            let job = asked.check(MAX).unwrap().job("acme", "J1", at);
            assert!(job.review_first, "{kind}");
        }
        let mut dry = request("points", "p.csv");
        dry.review = true;
        dry.dry_run = true;
        assert!(refused(dry).starts_with("review and dry_run do not go together"));
    }

    #[test]
    fn only_a_smile_file_has_a_mode() {
        let mut smile = request("smile", "s.csv");
        smile.mode = Some("set_balance".into());
        assert_eq!(smile.check(MAX).unwrap().smile_mode, Mode::SetBalance);
        smile.mode = Some("halve".into());
        assert!(refused(smile).contains("'halve' is not a mode"));
        let mut points = request("points", "p.csv");
        points.mode = Some("add".into());
        assert_eq!(
            refused(points),
            "mode is for Smile.io files (kind smile), not for kind points"
        );
    }

    #[test]
    fn a_request_naming_anything_else_is_refused() {
        let body = r#"{"kind":"points","reason":"r","filename":"f.csv","size_bytes":1,"tenant_id":"other"}"#;
        let err = serde_json::from_str::<CreateImport>(body).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `tenant_id`"),
            "{err}"
        );
    }
}
