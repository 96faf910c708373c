//! An import reviewed before it is applied: its whole file is read and
//! validated, nothing is changed, and the admin sees what it would do —
//! its rows, the valid and the invalid, the points it would credit and
//! debit, the customers it names and how many are new, the errors by code
//! — then starts it (the same object version is applied) or discards it.
//!
//! ```text
//! awaiting_upload ─► reviewing ─► ready_for_review ─► splitting ─► … ─► completed
//!                        │               ├─► discarded  (the admin said no)
//!                        └─► rejected    └─► expired    (never started in REVIEW_VALID_DAYS)
//! ```

use crate::digest::ErrorDigest;
use crate::outcome::{RowOutcome, RowStatus};
use crate::points::{Operation, PointsRow};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long a review can be started after it is ready; then it expires.
pub const REVIEW_VALID_DAYS: i64 = 7;

/// What the review of a file found: the rows up to its last checkpoint
/// while it is read, the whole file once it is ready.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    /// Rows that would change nothing (a Smile.io row of 0 points).
    #[serde(default)]
    pub skipped: u64,
    pub credits: Movement,
    pub debits: Movement,
    /// Smile.io rows in set balance mode: a credit or a debit of the
    /// difference, known only when the row is applied.
    #[serde(default)]
    pub set_balance_rows: u64,
    /// Distinct customers the valid rows name.
    pub customers: u64,
    /// Of those, customers with no wallet when they were counted.
    pub new_customers: u64,
    #[serde(default)]
    pub errors: ErrorDigest,
    /// When the whole file was read; the review can be started until
    /// `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Rows of one direction and their points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub rows: u64,
    pub points: u64,
}

impl Movement {
    fn add(&mut self, points: i64) {
        self.rows += 1;
        self.points += points.unsigned_abs();
    }
}

impl Review {
    /// A valid row: its direction and points.
    pub fn add_valid(&mut self, row: &PointsRow) {
        self.rows += 1;
        self.valid += 1;
        if row.set_balance {
            self.set_balance_rows += 1;
        } else {
            match row.operation {
                Operation::Credit => self.credits.add(row.amount),
                Operation::Debit => self.debits.add(row.amount),
            }
        }
    }

    /// A row that validation refused, or found nothing to do for.
    pub fn add_not_imported(&mut self, outcome: &RowOutcome) {
        self.rows += 1;
        match outcome.status {
            RowStatus::Skipped => self.skipped += 1,
            RowStatus::Applied | RowStatus::Failed => self.invalid += 1,
        }
        self.errors.add(outcome);
    }

    /// Customers seen for the first time in the file: `customers` of them,
    /// `new` without a wallet.
    pub fn add_customers(&mut self, customers: u64, new: u64) {
        self.customers += customers;
        self.new_customers += new;
    }

    /// The whole file is read: the review can be started until it expires.
    pub fn ready(&mut self, now: DateTime<Utc>) {
        self.ready_at = Some(now);
        self.expires_at = Some(now + Duration::days(REVIEW_VALID_DAYS));
    }

    /// Whether the review, ready, has expired at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// Of a batch's rows, each customer with the row that first names it (the
/// rows are in file order): the customers a review counts if no earlier
/// batch named them.
pub fn first_rows(rows: &[PointsRow]) -> Vec<(String, u64)> {
    let mut seen = std::collections::HashSet::new();
    rows.iter()
        .filter(|r| seen.insert(r.customer.to_string()))
        .map(|r| (r.customer.to_string(), r.row))
        .collect()
}

/// Whether a customer is counted at `row`: when no earlier row of the file
/// named it, i.e. its first sighting is `row` itself — recorded now, or
/// recorded by an earlier run that read the same rows after the same
/// checkpoint and stopped before the next (so a review counts each
/// customer once however often its read stops).
pub fn counted_at(first_seen: Option<u64>, row: u64) -> bool {
    first_seen.is_none_or(|first| first == row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifier::CustomerRef;
    use crate::outcome::ErrorCode;
    use chrono::TimeZone;

    fn row(n: u64, email: &str, operation: Operation, amount: i64) -> PointsRow {
        PointsRow {
            row: n,
            customer: CustomerRef::email(email).unwrap(),
            operation,
            amount,
            expire_in_days: None,
            set_balance: false,
            also: Vec::new(),
        }
    }

    #[test]
    fn a_review_sums_each_direction_and_counts_errors_by_code() {
        let mut review = Review::default();
        review.add_valid(&row(2, "a@x.com", Operation::Credit, 100));
        review.add_valid(&row(3, "a@x.com", Operation::Debit, 30));
        review.add_valid(&row(4, "b@x.com", Operation::Credit, 5));
        let mut set = row(5, "c@x.com", Operation::Credit, 40);
        set.set_balance = true;
        review.add_valid(&set);
        review.add_not_imported(&RowOutcome::failed(6, ErrorCode::InvalidEmail, "bad"));
        assert_eq!((review.rows, review.valid, review.invalid), (5, 4, 1));
        assert_eq!(
            review.credits,
            Movement {
                rows: 2,
                points: 105
            }
        );
        assert_eq!(
            review.debits,
            Movement {
                rows: 1,
                points: 30
            }
        );
        assert_eq!(review.set_balance_rows, 1);
        assert_eq!(review.errors.rows(), 1);
    }

    #[test]
    fn a_customer_is_counted_at_its_first_row_only() {
        let rows = [
            row(2, "a@x.com", Operation::Credit, 1),
            row(3, "b@x.com", Operation::Credit, 1),
            row(4, "A@x.com", Operation::Debit, 1),
        ];
        assert_eq!(
            first_rows(&rows),
            [
                ("email:a@x.com".to_owned(), 2),
                ("email:b@x.com".to_owned(), 3)
            ]
        );
        assert!(counted_at(None, 9));
        assert!(
            counted_at(Some(9), 9),
            "a run read it after the same checkpoint"
        );
        assert!(!counted_at(Some(2), 9), "an earlier row named it");
    }

    #[test]
    fn a_ready_review_expires_after_its_days() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let mut review = Review::default();
        assert!(!review.expired(now));
        review.ready(now);
        assert!(!review.expired(now + Duration::days(REVIEW_VALID_DAYS) - Duration::seconds(1)));
        assert!(review.expired(now + Duration::days(REVIEW_VALID_DAYS)));
    }
}
