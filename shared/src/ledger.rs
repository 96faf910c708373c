//! The points ledger rules.
//!
//! A wallet holds points that never expire plus lots of expiring points. A
//! credit with an expiry adds to the lot of its expiry day; a debit consumes
//! the soonest-expiring lot first, then points without expiry, and never
//! takes the balance below zero. Expired lots are neither spendable nor
//! counted. Every applied row becomes one immutable [`LedgerEntry`].
//!
//! Bounds, whatever the history: expiry is in whole days of at most
//! [`MAX_EXPIRY_DAYS`], and credits expiring on the same (UTC) day share one
//! lot, so a wallet holds at most [`MAX_LOTS`] unexpired lots; a debit's
//! entry details at most [`MAX_CONSUMED_DETAIL`] lots, then sums the rest.

use crate::identifier::CustomerRef;
use crate::points::{Operation, MAX_EXPIRY_DAYS};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The most unexpired lots a wallet can hold: one per day from tomorrow to
/// the furthest expiry a row may ask for.
pub const MAX_LOTS: usize = MAX_EXPIRY_DAYS as usize + 1;

/// The lots a debit's entry names one by one; the rest it consumed are one
/// summed record, so an entry stays small however many lots it empties.
pub const MAX_CONSUMED_DETAIL: usize = 100;

/// The points of every credit whose expiry falls on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// The points can be spent until the end of this day (UTC).
    pub expires_on: NaiveDate,
    pub remaining: i64,
}

impl Lot {
    /// The instant the lot's points stop counting: midnight UTC after its day.
    pub fn expires_at(&self) -> DateTime<Utc> {
        end_of(self.expires_on)
    }

    /// How a debit's entry names the lot.
    pub(crate) fn name(&self) -> String {
        format!("lot:{}", self.expires_on)
    }
}

/// The day of the lot whose points stop counting at `expires_at` (the end
/// of that day): the inverse of [`Lot::expires_at`].
pub fn lot_day(expires_at: DateTime<Utc>) -> NaiveDate {
    (expires_at - Duration::days(1)).date_naive()
}

/// Adds `points` to the lot of `day` in `lots` (soonest first), making it
/// if there is none.
pub(crate) fn credit_lot(lots: &mut Vec<Lot>, day: NaiveDate, points: i64) {
    let position = lots.partition_point(|l| l.expires_on < day);
    match lots.get_mut(position) {
        Some(lot) if lot.expires_on == day => lot.remaining += points,
        _ => lots.insert(
            position,
            Lot {
                expires_on: day,
                remaining: points,
            },
        ),
    }
}

pub(crate) fn end_of(day: NaiveDate) -> DateTime<Utc> {
    (day + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A customer's points wallet within one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    pub customer: CustomerRef,
    /// Points without expiry.
    pub permanent: i64,
    /// Expiring points, soonest first, one lot per expiry day.
    pub lots: Vec<Lot>,
    /// Incremented by every applied row; 0 means the wallet is not stored yet.
    pub version: u64,
    /// The import whose row first stored the wallet (`None` for a wallet
    /// stored before this was kept): a wallet one import makes did not
    /// exist "before" that import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// One applied row, as kept forever in the customer's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// `<job>#<row>`: the same row always has the same id.
    pub entry_id: String,
    pub tenant: String,
    pub customer: CustomerRef,
    pub job_id: String,
    pub row: u64,
    pub operation: Operation,
    pub amount: i64,
    pub reason: String,
    /// A credit's expiry: the end of its lot's day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub balance_after: i64,
    /// The entry's place in its wallet's history (the wallet's version after
    /// it): 1, 2, 3… with no gap and no repeat.
    #[serde(default)]
    pub sequence: u64,
    pub applied_at: DateTime<Utc>,
    /// For debits: the points taken from each lot (`lot:<day>`; past
    /// [`MAX_CONSUMED_DETAIL`] lots one `lots:<first>..<last>` record sums
    /// the rest), then `permanent` for points without expiry. For a
    /// reversal's credit: where the points went back, named the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumed: Vec<Consumed>,
    /// For a reversal's row: the entry it reverses (`<job>#<row>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverses: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumed {
    pub from: String,
    pub points: i64,
}

/// A movement of points asked for by one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub operation: Operation,
    pub amount: i64,
    pub expire_in_days: Option<u32>,
}

/// A debit larger than the spendable balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a debit of {requested} points is more than the balance of {available} points")]
pub struct InsufficientBalance {
    pub requested: i64,
    pub available: i64,
}

/// The result of applying a movement: the wallet after it and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub wallet: Wallet,
    pub balance_after: i64,
    pub expires_at: Option<DateTime<Utc>>,
    pub consumed: Vec<Consumed>,
}

impl Wallet {
    pub fn empty(customer: CustomerRef) -> Self {
        Wallet {
            customer,
            permanent: 0,
            lots: Vec::new(),
            version: 0,
            created_by: None,
        }
    }

    /// Whether the wallet was stored before import `job_id` started.
    pub fn existed_before(&self, job_id: &str) -> bool {
        self.version > 0 && self.created_by.as_deref() != Some(job_id)
    }

    /// Spendable points at `now`: expired lots do not count.
    pub fn balance_at(&self, now: DateTime<Utc>) -> i64 {
        self.permanent + self.unexpired_lots(now).map(|l| l.remaining).sum::<i64>()
    }

    pub fn unexpired_lots(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Lot> {
        self.lots.iter().filter(move |l| l.expires_at() > now)
    }

    /// The wallet a row applied at `now` starts from: its expired and empty
    /// lots dropped, its version one higher.
    pub(crate) fn next_at(&self, now: DateTime<Utc>) -> Wallet {
        let mut next = self.clone();
        next.lots
            .retain(|l| l.expires_at() > now && l.remaining > 0);
        next.version += 1;
        next
    }

    /// Applies a movement at `now`. The wallet itself is unchanged; the
    /// caller stores the returned one.
    pub fn apply(
        &self,
        movement: &Movement,
        now: DateTime<Utc>,
    ) -> Result<Applied, InsufficientBalance> {
        let mut next = self.next_at(now);
        let mut consumed = Vec::new();
        let mut expires_at = None;
        match movement.operation {
            Operation::Credit => match movement.expire_in_days {
                Some(days) => {
                    let day = (now + Duration::days(i64::from(days))).date_naive();
                    credit_lot(&mut next.lots, day, movement.amount);
                    expires_at = Some(end_of(day));
                }
                None => next.permanent += movement.amount,
            },
            Operation::Debit => {
                let available = next.balance_at(now);
                if movement.amount > available {
                    return Err(InsufficientBalance {
                        requested: movement.amount,
                        available,
                    });
                }
                let mut due = movement.amount;
                let mut summed: Option<(NaiveDate, NaiveDate, i64)> = None;
                for lot in next.lots.iter_mut() {
                    if due == 0 {
                        break;
                    }
                    let take = due.min(lot.remaining);
                    lot.remaining -= take;
                    due -= take;
                    if consumed.len() < MAX_CONSUMED_DETAIL {
                        consumed.push(Consumed {
                            from: lot.name(),
                            points: take,
                        });
                    } else {
                        let (first, _, points) =
                            summed.unwrap_or((lot.expires_on, lot.expires_on, 0));
                        summed = Some((first, lot.expires_on, points + take));
                    }
                }
                if let Some((first, last, points)) = summed {
                    consumed.push(Consumed {
                        from: format!("lots:{first}..{last}"),
                        points,
                    });
                }
                next.lots.retain(|l| l.remaining > 0);
                if due > 0 {
                    next.permanent -= due;
                    consumed.push(Consumed {
                        from: "permanent".to_owned(),
                        points: due,
                    });
                }
            }
        }
        Ok(Applied {
            balance_after: next.balance_at(now),
            wallet: next,
            expires_at,
            consumed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap()
    }

    fn credit(amount: i64, days: Option<u32>) -> Movement {
        Movement {
            operation: Operation::Credit,
            amount,
            expire_in_days: days,
        }
    }

    fn debit(amount: i64) -> Movement {
        Movement {
            operation: Operation::Debit,
            amount,
            expire_in_days: None,
        }
    }

    fn wallet() -> Wallet {
        Wallet::empty(CustomerRef::Email("a@x.io".into()))
    }

    #[test]
    fn a_credit_adds_to_the_balance_and_bumps_the_version() {
        let applied = wallet().apply(&credit(100, None), t(1)).unwrap();
        assert_eq!(applied.balance_after, 100);
        assert_eq!(applied.wallet.version, 1);
    }

    #[test]
    fn a_debit_over_the_balance_is_refused() {
        let w = wallet().apply(&credit(50, None), t(1)).unwrap().wallet;
        assert_eq!(
            w.apply(&debit(60), t(1)).unwrap_err(),
            InsufficientBalance {
                requested: 60,
                available: 50
            }
        );
    }

    #[test]
    fn debits_consume_the_soonest_expiring_points_first() {
        let w = wallet();
        let w = w.apply(&credit(100, None), t(1)).unwrap().wallet;
        let w = w.apply(&credit(30, Some(20)), t(1)).unwrap().wallet;
        let w = w.apply(&credit(40, Some(5)), t(1)).unwrap().wallet;
        let applied = w.apply(&debit(50), t(2)).unwrap();
        assert_eq!(
            applied.consumed,
            [
                Consumed {
                    from: "lot:2026-01-06".into(),
                    points: 40
                },
                Consumed {
                    from: "lot:2026-01-21".into(),
                    points: 10
                }
            ]
        );
        assert_eq!(applied.balance_after, 120);
        assert_eq!(applied.wallet.permanent, 100);
    }

    #[test]
    fn expired_points_are_neither_counted_nor_spendable() {
        let w = wallet().apply(&credit(40, Some(1)), t(1)).unwrap().wallet;
        assert_eq!(w.balance_at(t(1)), 40);
        assert_eq!(w.balance_at(t(3)), 0);
        let refused = w.apply(&debit(10), t(3)).unwrap_err();
        assert_eq!(refused.available, 0);
    }

    #[test]
    fn points_expire_at_the_end_of_the_day_the_given_number_of_days_after_the_row() {
        let applied = wallet().apply(&credit(10, Some(7)), t(1)).unwrap();
        assert_eq!(
            applied.expires_at,
            Some(Utc.with_ymd_and_hms(2026, 1, 9, 0, 0, 0).unwrap())
        );
        assert_eq!(applied.wallet.balance_at(t(8)), 10);
    }

    #[test]
    fn credits_expiring_the_same_day_share_one_lot() {
        let mut w = wallet();
        for days in [7, 30, 7, 7, 30] {
            w = w.apply(&credit(10, Some(days)), t(1)).unwrap().wallet;
        }
        let lots: Vec<(String, i64)> = w
            .lots
            .iter()
            .map(|l| (l.expires_on.to_string(), l.remaining))
            .collect();
        assert_eq!(lots, [("2026-01-08".into(), 30), ("2026-01-31".into(), 20)]);
    }

    #[test]
    fn a_wallet_never_holds_more_lots_than_days_an_expiry_may_reach() {
        // A lot on every day from today to the furthest expiry: full.
        let today = t(1).date_naive();
        let mut w = wallet();
        w.lots = (0..MAX_LOTS as i64)
            .map(|d| Lot {
                expires_on: today + Duration::days(d),
                remaining: 1,
            })
            .collect();
        // Another credit of the furthest expiry joins the last lot; a day
        // later today's lot has expired and the next day's credit takes its place.
        for (now, lots) in [(t(1), MAX_LOTS), (t(2), MAX_LOTS)] {
            w = w
                .apply(&credit(1, Some(MAX_EXPIRY_DAYS)), now)
                .unwrap()
                .wallet;
            assert_eq!(w.lots.len(), lots);
        }
        assert!(w.lots.windows(2).all(|p| p[0].expires_on < p[1].expires_on));
    }

    #[test]
    fn a_debit_that_empties_many_lots_names_the_first_and_sums_the_rest() {
        let mut w = wallet();
        for days in 1..=1_000 {
            w = w.apply(&credit(2, Some(days)), t(1)).unwrap().wallet;
        }
        let applied = w.apply(&debit(1_999), t(1)).unwrap();
        assert_eq!(applied.consumed.len(), MAX_CONSUMED_DETAIL + 1);
        let summed = applied.consumed.last().unwrap();
        assert_eq!(summed.from, "lots:2026-04-12..2028-09-27");
        assert_eq!(summed.points, 1_999 - 2 * MAX_CONSUMED_DETAIL as i64);
        assert_eq!(applied.balance_after, 1);
        assert_eq!(applied.wallet.lots.len(), 1);
    }
}
