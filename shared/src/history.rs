//! A tenant's imports, newest first (`GET /imports`): where a job stands in
//! that list, what the list shows of it, and how a page of it ends.

use crate::job::{Counts, JobStatus};
use crate::kind::ImportKind;
use crate::outcome::Tally;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// A job's creation time as its place in the history: fixed width, with
/// nanoseconds, so that text order is time order even within a second.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.9fZ";
/// The width of [`TIME_FORMAT`]'s text (years 0 to 9999).
const TIME_WIDTH: usize = "2026-12-04T09:00:00.000000000Z".len();
/// Longer than any job id (`shared::job::job_id`), as the jobs table reads
/// them.
const MAX_JOB_ID_BYTES: usize = 64;

/// A job's place in its tenant's history, `<created_at>#<job_id>`
/// (`2026-12-04T09:00:00.123456789Z#20261204090000-3f2a9c0d1e4b`): its
/// creation time, then its id, so that two jobs of the same instant keep
/// one order. Compared as text, the later job is the greater.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position(String);

impl Position {
    pub fn of(created_at: DateTime<Utc>, job_id: &str) -> Position {
        Position(format!("{}#{job_id}", created_at.format(TIME_FORMAT)))
    }

    /// A position read back from a client, accepted only in the form
    /// [`Position::of`] writes: a time of exactly that width and a job id of
    /// letters, digits, `-`, `_` and `.`, at most 64 bytes.
    pub fn parse(text: &str) -> Option<Position> {
        let (time, job_id) = text.split_once('#')?;
        let at = NaiveDateTime::parse_from_str(time, TIME_FORMAT).ok()?;
        let id_ok = !job_id.is_empty()
            && job_id.len() <= MAX_JOB_ID_BYTES
            && job_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let position = Position::of(at.and_utc(), job_id);
        (time.len() == TIME_WIDTH && id_ok && position.0 == text).then_some(position)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn job_id(&self) -> &str {
        self.0.split_once('#').map_or("", |(_, id)| id)
    }

    /// The position as a page's cursor: its hex, opaque to clients (the
    /// API's `next_cursor`, `loyalty-local jobs --cursor`).
    pub fn cursor(&self) -> String {
        hex::encode(self.as_str())
    }

    /// The position a cursor stands for, if it is exactly one
    /// [`Position::cursor`] gives.
    pub fn from_cursor(cursor: &str) -> Option<Position> {
        let lower_hex = cursor.len() <= MAX_CURSOR_CHARS
            && cursor
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !lower_hex {
            return None;
        }
        let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
        Position::parse(&text)
    }
}

/// A position is a 30-character time, `#` and a job id of at most 64
/// bytes: its cursor, the hex, twice that.
pub const MAX_CURSOR_CHARS: usize = 2 * (TIME_WIDTH + 1 + MAX_JOB_ID_BYTES);

/// What the history shows of a job: read from the jobs table's `History`
/// index, which holds these attributes of a job and no others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedJob {
    pub job_id: String,
    pub status: JobStatus,
    #[serde(default)]
    pub kind: Option<ImportKind>,
    pub filename: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub review_first: bool,
    #[serde(default)]
    pub splitting_done: bool,
    #[serde(default)]
    pub total_rows: u64,
    #[serde(default)]
    pub invalid_rows: u64,
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
    #[serde(default)]
    pub reverts: Option<String>,
    #[serde(default)]
    pub reverted_by: Option<String>,
}

/// The attributes a [`ListedJob`] is read from, besides the table's keys:
/// what the `History` index must project.
pub const LISTED_ATTRIBUTES: [&str; 19] = [
    "job_id",
    "status",
    "kind",
    "filename",
    "reason",
    "created_at",
    "finished_at",
    "dry_run",
    "review_first",
    "splitting_done",
    "total_rows",
    "invalid_rows",
    "applied",
    "skipped",
    "failed",
    "credited",
    "debited",
    "reverts",
    "reverted_by",
];

impl ListedJob {
    pub fn position(&self) -> Position {
        Position::of(self.created_at, &self.job_id)
    }

    /// Whether the admin may revert it (`crate::reversal::revertible`).
    pub fn can_revert(&self) -> bool {
        crate::reversal::Candidate {
            job_id: &self.job_id,
            status: self.status,
            kind: self.kind,
            dry_run: self.dry_run,
            reverts: self.reverts.as_deref(),
            reverted_by: self.reverted_by.as_deref(),
        }
        .revertible()
        .is_ok()
    }

    /// Rows decided so far: the list holds no `rows_done`, so while the
    /// job runs, its invalid rows and the outcomes counted from its
    /// batches; once it is final, all of them.
    pub fn rows_decided(&self) -> u64 {
        if self.status.is_final() {
            self.total_rows
        } else {
            self.invalid_rows + self.applied + self.skipped + self.failed
        }
    }

    pub fn counts(&self) -> Counts {
        let tally = Tally {
            applied: self.applied,
            skipped: self.skipped,
            failed: self.failed,
            credited: self.credited,
            debited: self.debited,
        };
        Counts::new(
            self.splitting_done,
            self.total_rows,
            self.invalid_rows,
            tally,
        )
    }
}

/// One page of a tenant's history, newest first, and where the next one
/// starts (after this page's last job), if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub jobs: Vec<ListedJob>,
    pub next: Option<Position>,
}

impl HistoryPage {
    /// A page of `limit` jobs from jobs read newest first, `limit` + 1 of
    /// them asked for: a job beyond the page says that another page
    /// follows, so the last page never promises one.
    pub fn from_read(mut jobs: Vec<ListedJob>, limit: usize) -> HistoryPage {
        let more = jobs.len() > limit;
        jobs.truncate(limit);
        let next = more.then(|| jobs.last().map(ListedJob::position)).flatten();
        HistoryPage { jobs, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(nanos: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(nanos.into())
    }

    fn listed(job_id: &str, created_at: DateTime<Utc>) -> ListedJob {
        ListedJob {
            job_id: job_id.to_owned(),
            status: JobStatus::Completed,
            kind: None,
            filename: "f.csv".to_owned(),
            reason: "r".to_owned(),
            created_at,
            finished_at: None,
            dry_run: false,
            review_first: false,
            splitting_done: true,
            total_rows: 3,
            invalid_rows: 1,
            applied: 2,
            skipped: 0,
            failed: 0,
            credited: 20,
            debited: 0,
            reverts: None,
            reverted_by: None,
        }
    }

    #[test]
    fn a_position_is_fixed_width_time_then_job() {
        let p = Position::of(at(5), "20261204090000-3f2a9c0d1e4b");
        assert_eq!(
            p.as_str(),
            "2026-12-04T09:00:00.000000005Z#20261204090000-3f2a9c0d1e4b"
        );
        assert_eq!(p.job_id(), "20261204090000-3f2a9c0d1e4b");
        assert_eq!(
            Position::of(at(0), "J").as_str(),
            "2026-12-04T09:00:00.000000000Z#J"
        );
    }

    #[test]
    fn text_order_is_time_order_within_a_second_and_across_seconds() {
        let times = [at(0), at(9), at(10), at(999_999_999), at(1_000_000_000)];
        for pair in times.windows(2) {
            assert!(Position::of(pair[0], "z") < Position::of(pair[1], "a"));
        }
        assert!(Position::of(at(7), "a") < Position::of(at(7), "b"));
    }

    #[test]
    fn a_position_reads_back_only_as_written() {
        let p = Position::of(at(123_456_789), "20261204090000-3f2a9c0d1e4b");
        assert_eq!(Position::parse(p.as_str()), Some(p));
        for bad in [
            "",
            "#J",
            "2026-12-04T09:00:00.000000000Z",
            "2026-12-04T09:00:00.000000000Z#",
            "2026-12-04T09:00:00Z#J",
            "2026-12-04T09:00:00.123Z#J",
            "2026-12-04 09:00:00.000000000Z#J",
            "2026-13-04T09:00:00.000000000Z#J",
            "2026-12-04T09:00:00.000000000Z#J#BATCH#1",
            "2026-12-04T09:00:00.000000000Z#J K",
            "2026-12-04T09:00:00.000000000+00:00#J",
            " 2026-12-04T09:00:00.000000000Z#J",
        ] {
            assert_eq!(Position::parse(bad), None, "{bad:?}");
        }
        let long = format!("2026-12-04T09:00:00.000000000Z#{}", "j".repeat(65));
        assert_eq!(Position::parse(&long), None);
        let longest = format!("2026-12-04T09:00:00.000000000Z#{}", "j".repeat(64));
        assert!(Position::parse(&longest).is_some());
    }

    #[test]
    fn a_page_says_another_follows_only_when_a_job_is_left_beyond_it() {
        let jobs: Vec<ListedJob> = (0..3)
            .map(|i| listed(&format!("J{i}"), at(10 - i)))
            .collect();
        let full = HistoryPage::from_read(jobs.clone(), 2);
        assert_eq!(full.jobs, jobs[..2]);
        assert_eq!(full.next, Some(jobs[1].position()));
        let last = HistoryPage::from_read(jobs.clone(), 3);
        assert_eq!(last.jobs, jobs);
        assert_eq!(last.next, None);
        assert_eq!(HistoryPage::from_read(Vec::new(), 20).next, None);
    }

    #[test]
    fn counts_show_rows_once_the_file_is_split() {
        let mut job = listed("J", at(0));
        assert_eq!(job.counts().rows, Some(3));
        job.splitting_done = false;
        assert_eq!(job.counts().rows, None);
        assert_eq!(job.counts().invalid, 1);
        assert_eq!(
            (job.counts().tally.applied, job.counts().tally.credited),
            (2, 20)
        );
    }
}
