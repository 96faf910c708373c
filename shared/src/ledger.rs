//! The points ledger rules (SPEC §5).
//!
//! A wallet holds points that never expire plus lots of expiring points. A
//! credit with an expiry adds a lot; a debit consumes the soonest-expiring lot
//! first, then points without expiry, and never takes the balance below zero.
//! Expired lots are neither spendable nor counted. Every applied row becomes
//! one immutable [`LedgerEntry`].

use crate::identifier::CustomerRef;
use crate::points::Operation;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A batch of points that expires at a given instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    pub expires_at: DateTime<Utc>,
    pub remaining: i64,
    /// The ledger entry that credited these points.
    pub entry_id: String,
}

/// A customer's points wallet within one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    pub customer: CustomerRef,
    /// Points without expiry.
    pub permanent: i64,
    /// Expiring points, soonest first.
    pub lots: Vec<Lot>,
    /// Incremented by every applied row; 0 means the wallet is not stored yet.
    pub version: u64,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub balance_after: i64,
    /// The entry's place in its wallet's history (the wallet's version after
    /// it): 1, 2, 3… with no gap and no repeat.
    #[serde(default)]
    pub sequence: u64,
    pub applied_at: DateTime<Utc>,
    /// For debits: the points taken from each lot (`permanent` for points without expiry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumed: Vec<Consumed>,
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
        }
    }

    /// Spendable points at `now`: expired lots do not count.
    pub fn balance_at(&self, now: DateTime<Utc>) -> i64 {
        self.permanent + self.unexpired_lots(now).map(|l| l.remaining).sum::<i64>()
    }

    pub fn unexpired_lots(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Lot> {
        self.lots.iter().filter(move |l| l.expires_at > now)
    }

    /// Applies a movement at `now`, recorded under `entry_id`. The wallet
    /// itself is unchanged; the caller stores the returned one.
    pub fn apply(
        &self,
        movement: &Movement,
        entry_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied, InsufficientBalance> {
        let mut next = self.clone();
        next.lots.retain(|l| l.expires_at > now && l.remaining > 0);
        next.version += 1;
        let mut consumed = Vec::new();
        let mut expires_at = None;
        match movement.operation {
            Operation::Credit => match movement.expire_in_days {
                Some(days) => {
                    let at = now + Duration::days(i64::from(days));
                    let position = next.lots.partition_point(|l| l.expires_at <= at);
                    next.lots.insert(
                        position,
                        Lot {
                            expires_at: at,
                            remaining: movement.amount,
                            entry_id: entry_id.to_owned(),
                        },
                    );
                    expires_at = Some(at);
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
                for lot in next.lots.iter_mut() {
                    if due == 0 {
                        break;
                    }
                    let take = due.min(lot.remaining);
                    lot.remaining -= take;
                    due -= take;
                    consumed.push(Consumed {
                        from: lot.entry_id.clone(),
                        points: take,
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
        let applied = wallet().apply(&credit(100, None), "j#1", t(1)).unwrap();
        assert_eq!(applied.balance_after, 100);
        assert_eq!(applied.wallet.version, 1);
    }

    #[test]
    fn a_debit_over_the_balance_is_refused() {
        let w = wallet()
            .apply(&credit(50, None), "j#1", t(1))
            .unwrap()
            .wallet;
        assert_eq!(
            w.apply(&debit(60), "j#2", t(1)).unwrap_err(),
            InsufficientBalance {
                requested: 60,
                available: 50
            }
        );
    }

    #[test]
    fn debits_consume_the_soonest_expiring_points_first() {
        let w = wallet();
        let w = w.apply(&credit(100, None), "j#1", t(1)).unwrap().wallet;
        let w = w.apply(&credit(30, Some(20)), "j#2", t(1)).unwrap().wallet;
        let w = w.apply(&credit(40, Some(5)), "j#3", t(1)).unwrap().wallet;
        let applied = w.apply(&debit(50), "j#4", t(2)).unwrap();
        assert_eq!(
            applied.consumed,
            [
                Consumed {
                    from: "j#3".into(),
                    points: 40
                },
                Consumed {
                    from: "j#2".into(),
                    points: 10
                }
            ]
        );
        assert_eq!(applied.balance_after, 120);
        assert_eq!(applied.wallet.permanent, 100);
    }

    #[test]
    fn expired_points_are_neither_counted_nor_spendable() {
        let w = wallet()
            .apply(&credit(40, Some(1)), "j#1", t(1))
            .unwrap()
            .wallet;
        assert_eq!(w.balance_at(t(1)), 40);
        assert_eq!(w.balance_at(t(3)), 0);
        let refused = w.apply(&debit(10), "j#2", t(3)).unwrap_err();
        assert_eq!(refused.available, 0);
    }

    #[test]
    fn points_expire_the_given_number_of_days_after_the_row_is_applied() {
        let applied = wallet().apply(&credit(10, Some(7)), "j#1", t(1)).unwrap();
        assert_eq!(applied.expires_at, Some(t(8)));
    }
}
