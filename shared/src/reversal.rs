//! Undoing an import (`POST /imports/{job}/revert`): which jobs can be
//! undone, the reversal job that does it, and how each of its rows is
//! decided on the wallet and the original row's ledger entry.
//!
//! A reversal is a job of its own: it reads the original upload again with
//! the original kind's row format, and applies, once per row, the opposite
//! of what the original's row applied (its entry `ENTRY#<original>#<row>`).
//! A credit's reversal takes the same points back from the same lot; a
//! debit's gives each portion back to the lot it came from. What cannot be
//! taken back as it was given (spent, expired since) is refused for the row,
//! never taken from elsewhere nor below zero.
//!
//! ```text
//! original: completed ──(POST …/revert: reverted_by = <original>-revert)──► reverted once
//! reversal: splitting ─► processing ─► finalizing ─► completed(_with_errors)
//! ```

use crate::identifier::CustomerRef;
use crate::job::{Job, JobStatus};
use crate::kind::ImportKind;
use crate::ledger::{credit_lot, end_of, lot_day, Applied, Consumed, LedgerEntry, Wallet};
use crate::points::Operation;
use crate::upload::request::MAX_REASON_CHARS;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;

/// The reversal job's id: derived from the original's, so a retried request
/// finds the reversal it made, and the two ids sort together.
pub fn reversal_id(original: &str) -> String {
    format!("{original}-revert")
}

/// Why a job cannot be reverted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("job {job} was reverted already, by job {by}")]
    AlreadyReverted { job: String, by: String },
    #[error("job {job} cannot be reverted: {why}")]
    NotRevertible { job: String, why: String },
}

/// Whether `job` may be reverted: a points import (points, with expiry,
/// Smile.io) that finished, applied for real, is not itself a reversal and
/// was not reverted before.
pub fn revertible(job: &Job) -> Result<(), Refusal> {
    Candidate {
        job_id: &job.job_id,
        status: job.status,
        kind: job.kind,
        dry_run: job.dry_run,
        reverts: job.reverts.as_deref(),
        reverted_by: job.reverted_by.as_deref(),
    }
    .revertible()
}

/// What decides whether a job may be reverted: the job, or what the
/// history lists of it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub job_id: &'a str,
    pub status: JobStatus,
    pub kind: Option<ImportKind>,
    pub dry_run: bool,
    pub reverts: Option<&'a str>,
    pub reverted_by: Option<&'a str>,
}

impl Candidate<'_> {
    /// See [`revertible`].
    pub fn revertible(&self) -> Result<(), Refusal> {
        if let Some(by) = self.reverted_by {
            return Err(Refusal::AlreadyReverted {
                job: self.job_id.to_owned(),
                by: by.to_owned(),
            });
        }
        let why = if self.reverts.is_some() {
            Some("it is itself a reversal".to_owned())
        } else if self.dry_run {
            Some("it is a dry run: it applied nothing".to_owned())
        } else if !matches!(
            self.kind,
            Some(ImportKind::Points | ImportKind::PointsWithExpiry | ImportKind::Smile)
        ) {
            Some(format!(
                "only points imports can be reverted, and it is {}",
                self.kind.map_or("of no known kind", ImportKind::as_str)
            ))
        } else if !matches!(
            self.status,
            JobStatus::Completed | JobStatus::CompletedWithErrors
        ) {
            Some(format!(
                "only a completed import can be reverted, and it is {}",
                self.status.as_str()
            ))
        } else {
            None
        };
        match why {
            Some(why) => Err(Refusal::NotRevertible {
                job: self.job_id.to_owned(),
                why,
            }),
            None => Ok(()),
        }
    }
}

/// The job that reverts `original`: same kind, mode and upload (the same
/// object version, read again), its reason naming the original.
pub fn reversal_job(original: &Job, now: DateTime<Utc>) -> Job {
    let reason = format!(
        "Reversal of import {} ({}): {}",
        original.job_id, original.filename, original.reason
    );
    let mut job = Job::new(
        &original.tenant_id,
        &reversal_id(&original.job_id),
        &original.source_key,
        &reason.chars().take(MAX_REASON_CHARS).collect::<String>(),
        now,
    );
    job.kind = original.kind;
    job.smile_mode = original.smile_mode;
    job.filename = original.filename.clone();
    job.source_version = original.source_version.clone();
    job.source_etag = original.source_etag.clone();
    job.reverts = Some(original.job_id.clone());
    job
}

/// Why a row's entry cannot be reversed; nothing of it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannotReverse {
    #[error(
        "the {points} points it credited{lot} have been spent since: only {left} are left, \
         so nothing is taken back"
    )]
    Spent {
        points: i64,
        left: i64,
        /// ` to the lot expiring on <day>`, or ` without expiry`.
        lot: String,
    },
    #[error("the {points} points it credited expired on {day}: nothing is taken back")]
    Expired { points: i64, day: NaiveDate },
    #[error(
        "{points} of the points it debited came from the lot expiring on {day}, which has \
         expired since: nothing is given back"
    )]
    LotExpired { points: i64, day: NaiveDate },
    #[error(
        "it debited points from more than 100 lots and its entry sums {points} of them \
         ({from}) without naming each lot: nothing is given back"
    )]
    Summarised { points: i64, from: String },
    #[error("its entry names a source of points it does not know: '{0}'")]
    Unknown(String),
}

/// The opposite of `entry`, applied to `wallet` at `now`: a credit taken
/// back from the lot it went to (or the points without expiry), a debit
/// given back to each lot it came from. The wallet itself is unchanged; the
/// caller stores the returned one (its version one higher).
pub fn reverse(
    wallet: &Wallet,
    entry: &LedgerEntry,
    now: DateTime<Utc>,
) -> Result<Applied, CannotReverse> {
    let mut next = wallet.next_at(now);
    let consumed = match entry.operation {
        Operation::Credit => take_back(&mut next, entry, now)?,
        Operation::Debit => give_back(&mut next, entry, now)?,
    };
    Ok(Applied {
        balance_after: next.balance_at(now),
        wallet: next,
        expires_at: None,
        consumed,
    })
}

/// A credit's points taken back from where it put them, if all are there.
fn take_back(
    next: &mut Wallet,
    entry: &LedgerEntry,
    now: DateTime<Utc>,
) -> Result<Vec<Consumed>, CannotReverse> {
    let points = entry.amount;
    let Some(expires_at) = entry.expires_at else {
        if next.permanent < points {
            return Err(CannotReverse::Spent {
                points,
                left: next.permanent.max(0),
                lot: " without expiry".to_owned(),
            });
        }
        next.permanent -= points;
        return Ok(vec![Consumed {
            from: "permanent".to_owned(),
            points,
        }]);
    };
    let day = lot_day(expires_at);
    if expires_at <= now {
        return Err(CannotReverse::Expired { points, day });
    }
    let Some(lot) = next.lots.iter_mut().find(|l| l.expires_on == day) else {
        return Err(spent(points, 0, day));
    };
    if lot.remaining < points {
        return Err(spent(points, lot.remaining, day));
    }
    lot.remaining -= points;
    let name = lot.name();
    next.lots.retain(|l| l.remaining > 0);
    Ok(vec![Consumed { from: name, points }])
}

fn spent(points: i64, left: i64, day: NaiveDate) -> CannotReverse {
    CannotReverse::Spent {
        points,
        left,
        lot: format!(" to the lot expiring on {day}"),
    }
}

/// A debit's points given back to each lot it took them from, if none of
/// those lots has expired and the entry names each.
fn give_back(
    next: &mut Wallet,
    entry: &LedgerEntry,
    now: DateTime<Utc>,
) -> Result<Vec<Consumed>, CannotReverse> {
    for portion in &entry.consumed {
        match source(portion)? {
            Source::Permanent => next.permanent += portion.points,
            Source::Lot(day) if end_of(day) <= now => {
                return Err(CannotReverse::LotExpired {
                    points: portion.points,
                    day,
                })
            }
            Source::Lot(day) => credit_lot(&mut next.lots, day, portion.points),
        }
    }
    Ok(entry.consumed.clone())
}

/// A customer's debits in the original's later batches, given back by a
/// reversal's batch ahead of a credit they spent.
///
/// A reversal's batches go in file order (a shard's one after the other)
/// and each undoes its rows last first. A credit undone in one batch may
/// have been spent by the same import's debit in a later batch: taken back
/// first, its points would be found gone. So when a credit cannot be taken
/// back in full, the batch reads the customer's entries of the original and
/// of the reversal, and gives back first, last first, each debit of a later
/// batch not given back yet (`apply::Commit::ahead`). That debit's own batch
/// then finds its reversal entry and records the row as applied with it.
#[derive(Debug, Default)]
pub struct LaterDebits {
    /// Per customer looked up: the debits still to give back, last first.
    pending: HashMap<CustomerRef, Vec<LedgerEntry>>,
}

impl LaterDebits {
    /// Whether the customer's later debits were looked up.
    pub fn looked_up(&self, customer: &CustomerRef) -> bool {
        self.pending.contains_key(customer)
    }

    /// Records what a look-up found: the original's entries of the
    /// customer (`entries`) and the reversal's (`reversed`); the debits
    /// after `last_row` (the batch's last) not reversed yet are pending.
    pub fn found(
        &mut self,
        customer: CustomerRef,
        entries: Vec<LedgerEntry>,
        reversed: &[LedgerEntry],
        last_row: u64,
    ) {
        let mut debits: Vec<LedgerEntry> = entries
            .into_iter()
            .filter(|e| e.operation == Operation::Debit && e.row > last_row)
            .filter(|e| !reversed.iter().any(|r| r.row == e.row))
            .collect();
        debits.sort_by_key(|e| std::cmp::Reverse(e.row));
        self.pending.insert(customer, debits);
    }

    /// The customer's debits still to give back, last first.
    pub fn pending(&self, customer: &CustomerRef) -> &[LedgerEntry] {
        self.pending.get(customer).map_or(&[], Vec::as_slice)
    }

    /// The first `count` pending debits were settled by a commit: given
    /// back, or found impossible to give back (their own batch reports
    /// them).
    pub fn settled(&mut self, customer: &CustomerRef, count: usize) {
        if let Some(debits) = self.pending.get_mut(customer) {
            debits.drain(..count.min(debits.len()));
        }
    }

    /// Forgets every look-up: another delivery may have given debits back.
    pub fn forget(&mut self) {
        self.pending.clear();
    }
}

/// Each pending debit given back on `wallet` in turn, those that can be:
/// the wallet after them and, for each, the reversal applied.
pub fn give_back_ahead<'a>(
    wallet: &Wallet,
    debits: &'a [LedgerEntry],
    now: DateTime<Utc>,
) -> (Wallet, Vec<(&'a LedgerEntry, Applied)>) {
    let mut wallet = wallet.clone();
    let mut given = Vec::new();
    for debit in debits {
        if let Ok(applied) = reverse(&wallet, debit, now) {
            wallet = applied.wallet.clone();
            given.push((debit, applied));
        }
    }
    (wallet, given)
}

/// Whether taking back this credit fails for want of points that later
/// rows may have spent (so a look-up of later debits may help).
pub fn short_of_points(wallet: &Wallet, entry: &LedgerEntry, now: DateTime<Utc>) -> bool {
    entry.operation == Operation::Credit
        && matches!(
            reverse(wallet, entry, now),
            Err(CannotReverse::Spent { .. })
        )
}

enum Source {
    Permanent,
    Lot(NaiveDate),
}

/// Where a debit's portion came from, as its entry names it.
fn source(portion: &Consumed) -> Result<Source, CannotReverse> {
    if portion.from == "permanent" {
        return Ok(Source::Permanent);
    }
    if portion.from.starts_with("lots:") {
        return Err(CannotReverse::Summarised {
            points: portion.points,
            from: portion.from.clone(),
        });
    }
    portion
        .from
        .strip_prefix("lot:")
        .and_then(|day| day.parse().ok())
        .map(Source::Lot)
        .ok_or_else(|| CannotReverse::Unknown(portion.from.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifier::CustomerRef;
    use crate::ledger::{Lot, Movement};
    use crate::smile::Mode;
    use chrono::{Duration, TimeZone};

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap()
    }

    fn lot(day: &str, remaining: i64) -> Lot {
        Lot {
            expires_on: day.parse().unwrap(),
            remaining,
        }
    }

    fn wallet() -> Wallet {
        Wallet::empty(CustomerRef::Email("a@x.io".into()))
    }

    /// Applies a movement and returns the wallet after it and its entry.
    fn apply(
        w: &Wallet,
        operation: Operation,
        amount: i64,
        days: Option<u32>,
        now: DateTime<Utc>,
    ) -> (Wallet, LedgerEntry) {
        let applied = w
            .apply(
                &Movement {
                    operation,
                    amount,
                    expire_in_days: days,
                },
                now,
            )
            .unwrap();
        let entry = LedgerEntry {
            entry_id: "J1#1".into(),
            tenant: "acme".into(),
            customer: w.customer.clone(),
            job_id: "J1".into(),
            row: 1,
            operation,
            amount,
            reason: "r".into(),
            expires_at: applied.expires_at,
            balance_after: applied.balance_after,
            sequence: applied.wallet.version,
            applied_at: now,
            consumed: applied.consumed,
            reverses: None,
        };
        (applied.wallet, entry)
    }

    #[test]
    fn a_credit_is_taken_back_from_its_lot() {
        let (w, _) = apply(&wallet(), Operation::Credit, 100, None, t(1));
        let (w, credit) = apply(&w, Operation::Credit, 30, Some(10), t(1));
        let undone = reverse(&w, &credit, t(2)).unwrap();
        assert_eq!(undone.balance_after, 100);
        assert!(undone.wallet.lots.is_empty());
        assert_eq!(undone.wallet.version, w.version + 1);
        assert_eq!(
            undone.consumed,
            [Consumed {
                from: "lot:2026-01-11".into(),
                points: 30
            }]
        );
    }

    #[test]
    fn a_credit_partly_spent_is_not_taken_back_and_says_what_is_left() {
        let (w, credit) = apply(&wallet(), Operation::Credit, 30, Some(10), t(1));
        let (w, _) = apply(&w, Operation::Debit, 12, None, t(2));
        let refused = reverse(&w, &credit, t(3)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the 30 points it credited to the lot expiring on 2026-01-11 have been spent since: \
             only 18 are left, so nothing is taken back"
        );
    }

    #[test]
    fn a_credit_whose_lot_expired_is_not_taken_back() {
        let (w, credit) = apply(&wallet(), Operation::Credit, 30, Some(2), t(1));
        let refused = reverse(&w, &credit, t(5)).unwrap_err();
        assert_eq!(
            refused,
            CannotReverse::Expired {
                points: 30,
                day: "2026-01-03".parse().unwrap()
            }
        );
        assert_eq!(
            refused.to_string(),
            "the 30 points it credited expired on 2026-01-03: nothing is taken back"
        );
    }

    #[test]
    fn a_credit_without_expiry_is_taken_back_from_the_points_without_expiry_only() {
        let (w, credit) = apply(&wallet(), Operation::Credit, 50, None, t(1));
        let (w, _) = apply(&w, Operation::Credit, 40, Some(30), t(1));
        assert_eq!(reverse(&w, &credit, t(2)).unwrap().balance_after, 40);
        // Spent from the points without expiry: never taken from the lot.
        let (spent, _) = apply(&w, Operation::Debit, 60, None, t(2));
        assert_eq!(spent.permanent, 30);
        let refused = reverse(&spent, &credit, t(3)).unwrap_err();
        assert!(
            matches!(
                refused,
                CannotReverse::Spent {
                    points: 50,
                    left: 30,
                    ..
                }
            ),
            "{refused}"
        );
        assert!(refused.to_string().contains("without expiry"));
    }

    #[test]
    fn a_debit_across_two_lots_and_the_points_without_expiry_is_given_back_to_each() {
        let (w, _) = apply(&wallet(), Operation::Credit, 100, None, t(1));
        let (w, _) = apply(&w, Operation::Credit, 10, Some(5), t(1));
        let (w, _) = apply(&w, Operation::Credit, 20, Some(9), t(1));
        let (w, debit) = apply(&w, Operation::Debit, 40, None, t(2));
        assert_eq!(debit.consumed.len(), 3);
        let undone = reverse(&w, &debit, t(3)).unwrap();
        assert_eq!(undone.balance_after, 130);
        assert_eq!(undone.wallet.permanent, 100);
        assert_eq!(
            undone.wallet.lots,
            [lot("2026-01-06", 10), lot("2026-01-10", 20)]
        );
        assert_eq!(undone.consumed, debit.consumed);
    }

    #[test]
    fn a_debit_whose_lot_expired_since_is_not_given_back() {
        let (w, _) = apply(&wallet(), Operation::Credit, 10, Some(2), t(1));
        let (w, _) = apply(&w, Operation::Credit, 10, None, t(1));
        let (w, debit) = apply(&w, Operation::Debit, 15, None, t(1));
        let refused = reverse(&w, &debit, t(1) + Duration::days(3)).unwrap_err();
        assert_eq!(
            refused,
            CannotReverse::LotExpired {
                points: 10,
                day: "2026-01-03".parse().unwrap()
            }
        );
    }

    #[test]
    fn a_debit_summarising_lots_is_not_given_back() {
        let mut w = wallet();
        for days in 1..=150 {
            w = apply(&w, Operation::Credit, 1, Some(days), t(1)).0;
        }
        let (w, debit) = apply(&w, Operation::Debit, 150, None, t(1));
        let refused = reverse(&w, &debit, t(1)).unwrap_err();
        assert!(
            matches!(&refused, CannotReverse::Summarised { points: 50, from } if from.starts_with("lots:")),
            "{refused}"
        );
    }

    #[test]
    fn a_set_balance_rows_entry_is_reversed_as_the_credit_or_debit_it_was() {
        // A Smile.io set-balance row from 100 to 40 was a debit of 60.
        let (w, _) = apply(&wallet(), Operation::Credit, 100, None, t(1));
        let (w, set) = apply(&w, Operation::Debit, 60, None, t(1));
        assert_eq!(reverse(&w, &set, t(2)).unwrap().balance_after, 100);
        // From 40 to 90: a credit of 50.
        let (w, set) = apply(&w, Operation::Credit, 50, None, t(1));
        assert_eq!(reverse(&w, &set, t(2)).unwrap().balance_after, 40);
    }

    fn finished(status: JobStatus) -> Job {
        let mut job = Job::new(
            "acme",
            "J1",
            "incoming/acme/uploads/J1/f.csv",
            "spring",
            t(1),
        );
        job.status = status;
        job.kind = Some(ImportKind::PointsWithExpiry);
        job
    }

    #[test]
    fn only_a_finished_real_points_import_not_reverted_before_can_be_reverted() {
        assert_eq!(revertible(&finished(JobStatus::Completed)), Ok(()));
        assert_eq!(
            revertible(&finished(JobStatus::CompletedWithErrors)),
            Ok(())
        );
        for status in [
            JobStatus::Rejected,
            JobStatus::Processing,
            JobStatus::Discarded,
        ] {
            assert!(matches!(
                revertible(&finished(status)),
                Err(Refusal::NotRevertible { .. })
            ));
        }
        let mut dry = finished(JobStatus::Completed);
        dry.dry_run = true;
        let mut cards = finished(JobStatus::Completed);
        cards.kind = Some(ImportKind::CardCode);
        let reversal = reversal_job(&finished(JobStatus::Completed), t(2));
        let mut done = reversal.clone();
        done.status = JobStatus::Completed;
        for job in [dry, cards, done] {
            assert!(
                matches!(revertible(&job), Err(Refusal::NotRevertible { .. })),
                "{job:?}"
            );
        }
        let mut reverted = finished(JobStatus::Completed);
        reverted.reverted_by = Some(reversal.job_id.clone());
        assert_eq!(
            revertible(&reverted).unwrap_err().to_string(),
            "job J1 was reverted already, by job J1-revert"
        );
    }

    #[test]
    fn a_reversal_reads_the_same_upload_and_names_the_original_in_its_reason() {
        let mut original = finished(JobStatus::Completed);
        original.smile_mode = Mode::SetBalance;
        original.source_version = Some("v1".into());
        original.reason = "é".repeat(MAX_REASON_CHARS);
        let reversal = reversal_job(&original, t(2));
        assert_eq!(reversal.job_id, reversal_id("J1"));
        assert_eq!(reversal.status, JobStatus::Splitting);
        assert_eq!(reversal.reverts.as_deref(), Some("J1"));
        assert_eq!(
            (reversal.kind, reversal.smile_mode),
            (original.kind, Mode::SetBalance)
        );
        assert_eq!(
            (&reversal.source_key, &reversal.source_version),
            (&original.source_key, &original.source_version)
        );
        assert!(reversal
            .reason
            .starts_with("Reversal of import J1 (f.csv): éé"));
        assert_eq!(reversal.reason.chars().count(), MAX_REASON_CHARS);
    }
}
