//! What the watchdog's last sweep found and did, as it is kept for the
//! operator (`loyalty-local watchdog`): one small item, rewritten by each
//! sweep.
//!
//! Bounded whatever the sweep: each list keeps its count and its first
//! [`MAX_NAMES`] names of at most [`MAX_NAME_CHARS`] characters — under
//! 200 KB even if every name were that long, far below DynamoDB's 400 KB
//! per item (a name is `<tenant>/<job>`: about 80 bytes).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many names of each list are kept.
pub const MAX_NAMES: usize = 50;
/// The longest name kept (a longer one is cut).
pub const MAX_NAME_CHARS: usize = 128;

/// One sweep's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepRecord {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Unfinished jobs looked at.
    pub jobs: u64,
    /// Jobs closed as stalled.
    pub stalled: Names,
    /// Jobs whose finalizing was asked for again.
    pub finalize_again: Names,
    /// Jobs whose split stopped (left to the ingest queue's retries).
    pub split_stalled: Names,
    /// Waiting membership files handed to the splitter again.
    pub waiting: Names,
    /// Reviews never started in their time, now expired.
    pub expired_reviews: Names,
    /// Splits the API asked for that never began, asked for again.
    pub splits_asked_again: Names,
    /// Jobs whose handling failed (the next sweep tries again).
    pub failed: Names,
}

/// A list of jobs (`<tenant>/<job>`): how many, and the first of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    pub count: u64,
    pub first: Vec<String>,
}

impl Names {
    /// The count of `names` and the first [`MAX_NAMES`] of them, each cut
    /// to [`MAX_NAME_CHARS`].
    pub fn of<S: AsRef<str>>(names: &[S]) -> Names {
        Names {
            count: names.len() as u64,
            first: names
                .iter()
                .take(MAX_NAMES)
                .map(|n| n.as_ref().chars().take(MAX_NAME_CHARS).collect())
                .collect(),
        }
    }

    /// Those not kept.
    pub fn more(&self) -> u64 {
        self.count.saturating_sub(self.first.len() as u64)
    }
}

impl SweepRecord {
    /// Each list by its name as the record and its JSON call it.
    pub fn lists(&self) -> [(&'static str, &Names); 7] {
        [
            ("stalled", &self.stalled),
            ("finalize_again", &self.finalize_again),
            ("split_stalled", &self.split_stalled),
            ("waiting", &self.waiting),
            ("expired_reviews", &self.expired_reviews),
            ("splits_asked_again", &self.splits_asked_again),
            ("failed", &self.failed),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_keeps_its_count_and_its_first_fifty_names() {
        let names: Vec<String> = (0..120).map(|i| format!("acme/job-{i}")).collect();
        let kept = Names::of(&names);
        assert_eq!(kept.count, 120);
        assert_eq!(kept.first.len(), MAX_NAMES);
        assert_eq!(kept.first[0], "acme/job-0");
        assert_eq!(kept.more(), 70);
        assert_eq!(Names::of::<&str>(&[]), Names::default());
    }

    #[test]
    fn the_fullest_record_stays_far_below_an_items_400_kb() {
        let long = "é".repeat(10_000);
        let names = vec![long; 10_000];
        let full = Names::of(&names);
        let record = SweepRecord {
            jobs: 70_000,
            stalled: full.clone(),
            finalize_again: full.clone(),
            split_stalled: full.clone(),
            waiting: full.clone(),
            expired_reviews: full.clone(),
            splits_asked_again: full.clone(),
            failed: full,
            ..SweepRecord::default()
        };
        let size = serde_json::to_string(&record).unwrap().len();
        assert!(size < 200_000, "{size} bytes");
        assert!(record.lists().iter().all(|(_, n)| n.more() == 9_950));
    }
}
