//! An import reviewed before it is applied: its whole file is read and
//! validated, nothing is changed, and the admin sees what it would do —
//! its rows, the valid and the invalid, the points it would credit and
//! debit, the customers it names and how many are new, the errors by code
//! — then starts it (the same object version is applied) or discards it.
//!
//! A membership file is reviewed the same way: its rows move no points, so
//! what it names once each is its cards (by card code; new: no card with
//! that code yet), with the codes it leaves to be generated (card codes)
//! or its rows by tier (tier changes). Started, it takes its place in its
//! tenant's order of membership files and waits for its turn there.
//!
//! ```text
//! awaiting_upload ─► reviewing ─► ready_for_review ─► splitting ─► … ─► completed
//!                        │               ├─► waiting ─► splitting  (a membership file, in its turn)
//!                        │               ├─► discarded  (the admin said no)
//!                        └─► rejected    └─► expired    (never started in REVIEW_VALID_DAYS)
//! ```

use crate::batch::BatchRow;
use crate::digest::ErrorDigest;
use crate::job::{Job, JobStatus};
use crate::membership::cards::CardRow;
use crate::membership::tier_changes::TierChangeRow;
use crate::outcome::{RowOutcome, RowStatus};
use crate::points::{Operation, PointsRow};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long a review can be started after it is ready; then it expires.
pub const REVIEW_VALID_DAYS: i64 = 7;

/// Tier names a review lists with their rows; the rows of any further
/// name are summed (`Review::other_tier_rows`). With names of at most 128
/// characters the list stays under 11 KB of the job's item (DynamoDB:
/// 400 KB), beside the error digest's 30 KB.
pub const MAX_TIERS_SHOWN: usize = 20;

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
    /// Distinct customers the valid rows name (a membership file: distinct
    /// card codes).
    pub customers: u64,
    /// Of those, customers with no wallet when they were counted (a
    /// membership file: card codes with no card).
    pub new_customers: u64,
    /// Card code rows with an empty card code: each would create a card
    /// under a code generated for it (if the tenant generates codes).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub codes_to_generate: u64,
    /// Tier change rows by the tier they move their card to, named as the
    /// file first writes it (names match in any case), the first
    /// [`MAX_TIERS_SHOWN`] names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierRows>,
    /// Tier change rows of names beyond those listed in `tiers`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_tier_rows: u64,
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

/// Tier change rows moving their card to one tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierRows {
    pub tier_name: String,
    pub rows: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Movement {
    fn add(&mut self, points: i64) {
        self.rows += 1;
        self.points += points.unsigned_abs();
    }
}

impl Review {
    /// A valid row, and what it would do.
    pub fn add_valid<R: Reviewed>(&mut self, row: &R) {
        self.rows += 1;
        self.valid += 1;
        row.count(self);
    }

    fn add_tier(&mut self, name: &str) {
        let name = name.trim();
        if let Some(tier) = self
            .tiers
            .iter_mut()
            .find(|t| t.tier_name.eq_ignore_ascii_case(name))
        {
            tier.rows += 1;
        } else if self.tiers.len() < MAX_TIERS_SHOWN {
            self.tiers.push(TierRows {
                tier_name: name.to_owned(),
                rows: 1,
            });
        } else {
            self.other_tier_rows += 1;
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

/// What a review counts once per file, and calls new if nothing of it is
/// stored yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Named {
    /// A points row's customer (`email:…`, `mobile:…`, `customer_id:…`):
    /// new without a wallet.
    Customer(String),
    /// A membership row's card, by its code: new without a card.
    Card(String),
}

impl Named {
    /// How the review's marker names it: the customer, or `card:<code>`.
    pub fn marker(&self) -> String {
        match self {
            Named::Customer(customer) => customer.clone(),
            Named::Card(code) => format!("card:{code}"),
        }
    }
}

/// A valid row as a review counts it.
pub trait Reviewed: BatchRow {
    /// Adds what the row would do to the review (its row is counted).
    fn count(&self, review: &mut Review);
    /// What the row names that the review counts once per file; `None`
    /// for a card whose code is yet to be generated.
    fn named(&self) -> Option<Named>;
}

impl Reviewed for PointsRow {
    fn count(&self, review: &mut Review) {
        if self.set_balance {
            review.set_balance_rows += 1;
        } else {
            match self.operation {
                Operation::Credit => review.credits.add(self.amount),
                Operation::Debit => review.debits.add(self.amount),
            }
        }
    }

    fn named(&self) -> Option<Named> {
        Some(Named::Customer(self.customer.to_string()))
    }
}

impl Reviewed for CardRow {
    fn count(&self, review: &mut Review) {
        if self.card_code.is_none() {
            review.codes_to_generate += 1;
        }
    }

    fn named(&self) -> Option<Named> {
        self.card_code.clone().map(Named::Card)
    }
}

impl Reviewed for TierChangeRow {
    fn count(&self, review: &mut Review) {
        review.add_tier(&self.tier_name);
    }

    fn named(&self) -> Option<Named> {
        Some(Named::Card(self.card_code.clone()))
    }
}

/// Of a batch's rows, each customer (or card) with the row that first
/// names it (the rows are in file order): what a review counts if no
/// earlier batch named it.
pub fn first_rows<R: Reviewed>(rows: &[R]) -> Vec<(Named, u64)> {
    let mut seen = std::collections::HashSet::new();
    rows.iter()
        .filter_map(|r| Some((r.named()?, r.row())))
        .filter(|(named, _)| seen.insert(named.clone()))
        .collect()
}

/// The status a started review moves to: its split, or for a membership
/// file its place in its tenant's order, where it waits for its turn (a
/// review reads the file without taking a place: it applies nothing).
pub fn started(job: &Job) -> JobStatus {
    match job.membership_scope() {
        Some(_) => JobStatus::Waiting,
        None => JobStatus::Splitting,
    }
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
    use crate::test_support::{card_rows, club, tier_rows};
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
                (Named::Customer("email:a@x.com".to_owned()), 2),
                (Named::Customer("email:b@x.com".to_owned()), 3)
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
    fn a_card_code_review_counts_its_cards_once_and_the_codes_to_generate() {
        let rows = card_rows(
            "card_code;customer_key;id_program",
            "C-1;ann@x.com;1\n;bob@x.com;1\nC-1;ann@x.com;\n;eve@x.com;1\n",
            &club(true),
        );
        let mut review = Review::default();
        for row in &rows {
            review.add_valid(row);
        }
        assert_eq!((review.rows, review.valid), (4, 4));
        assert_eq!(review.codes_to_generate, 2);
        assert_eq!(review.credits, Movement::default());
        assert_eq!(review.debits, Movement::default());
        // A card is counted at its first row; a code to generate names none.
        assert_eq!(first_rows(&rows), [(Named::Card("C-1".to_owned()), 1)]);
        assert_eq!(Named::Card("C-1".into()).marker(), "card:C-1");
    }

    #[test]
    fn a_tier_change_review_counts_rows_by_tier_in_any_case() {
        let rows = tier_rows("A;Gold;;2026-01-10;\nB;gold ;;2026-01-10;\nA;Silver;;2026-01-11;\n");
        let mut review = Review::default();
        for row in &rows {
            review.add_valid(row);
        }
        let tiers = |review: &Review| {
            review
                .tiers
                .iter()
                .map(|t| (t.tier_name.clone(), t.rows))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            tiers(&review),
            [("Gold".to_owned(), 2), ("Silver".to_owned(), 1)]
        );
        assert_eq!(
            first_rows(&rows),
            [
                (Named::Card("A".to_owned()), 1),
                (Named::Card("B".to_owned()), 2)
            ]
        );
    }

    #[test]
    fn a_review_lists_a_bounded_number_of_tiers_and_sums_the_rest() {
        let body: String = (0..MAX_TIERS_SHOWN + 3)
            .map(|n| format!("C{n};Tier {n};;2026-01-10;\n"))
            .collect();
        let mut review = Review::default();
        for row in &tier_rows(&body) {
            review.add_valid(row);
        }
        assert_eq!(review.tiers.len(), MAX_TIERS_SHOWN);
        assert_eq!(review.other_tier_rows, 3);
    }

    #[test]
    fn a_review_stored_before_cards_were_reviewed_reads_and_a_points_review_shows_no_card_fields() {
        let stored = r#"{"rows":1,"valid":1,"invalid":0,"credits":{"rows":1,"points":5},
            "debits":{"rows":0,"points":0},"customers":1,"new_customers":1}"#;
        let review: Review = serde_json::from_str(stored).unwrap();
        assert_eq!((review.codes_to_generate, review.tiers.len()), (0, 0));
        let shown = serde_json::to_value(&review).unwrap();
        for field in ["codes_to_generate", "tiers", "other_tier_rows"] {
            assert!(shown.get(field).is_none(), "{shown}");
        }
    }

    #[test]
    fn a_started_review_is_split_or_for_a_membership_file_waits_for_its_turn() {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let mut job = Job::new("acme", "J1", "incoming/acme/uploads/J1/f.csv", "r", at);
        job.kind = Some(crate::kind::ImportKind::Points);
        assert_eq!(started(&job), JobStatus::Splitting);
        job.kind = Some(crate::kind::ImportKind::TierChange);
        assert_eq!(started(&job), JobStatus::Waiting);
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
