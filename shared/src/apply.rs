//! Applying a batch to wallets, exactly once.
//!
//! Each row is decided once: either applied (a ledger entry plus the new
//! wallet) or refused (its outcome only). The decision is committed together
//! with a check that the wallet has not changed since it was read, and only if
//! the row has no outcome yet. So a redelivered batch, a retried function or
//! two deliveries racing each other find the rows already decided and reuse
//! those outcomes instead of applying anything twice.

use crate::batch::{Batch, BatchRow};
use crate::identifier::CustomerRef;
use crate::ledger::{LedgerEntry, Movement, Wallet};
use crate::outcome::{ErrorCode, RowError, RowOutcome, RowStatus, Tally};
use crate::points::{Operation, PointsRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;

/// A wallet as one import sees it: the live wallet, or a dry run's copy of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    pub tenant_id: String,
    pub customer: CustomerRef,
    /// Set for dry runs: the job whose private copy of the wallet this is.
    pub dry_run_of: Option<String>,
}

/// One row's decision, to be committed atomically.
#[derive(Debug, Clone)]
pub struct Decision {
    pub account: Account,
    pub job_id: String,
    pub outcome: RowOutcome,
    /// The wallet version the decision was made on (0: not stored yet).
    pub read_version: u64,
    /// For an applied row: the wallet after it, and its ledger entry.
    pub change: Option<(Wallet, LedgerEntry)>,
}

/// What became of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// The wallet changed since it was read: read it again and decide again.
    WalletChanged,
    /// Another delivery decided this row first: its outcome stands.
    AlreadyDecided,
}

/// Where wallets, ledger entries and row outcomes are kept.
pub trait LedgerStore: Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The outcomes already recorded for some rows of a job.
    fn decided(
        &self,
        job_id: &str,
        rows: &[u64],
    ) -> impl Future<Output = Result<Vec<RowOutcome>, Self::Error>> + Send;

    /// The wallet (an empty one at version 0 if it does not exist). A dry run
    /// account that was never written starts as a copy of the live wallet.
    fn wallet(&self, account: &Account)
        -> impl Future<Output = Result<Wallet, Self::Error>> + Send;

    /// Writes the outcome, and for applied rows the ledger entry and wallet,
    /// all or nothing, if the row is undecided and the wallet is still at
    /// `read_version`.
    fn commit(
        &self,
        decision: &Decision,
    ) -> impl Future<Output = Result<Commit, Self::Error>> + Send;

    /// Records a refusal for a row no delivery has decided, so none ever
    /// applies it; returns false if the row was decided already (that
    /// outcome stands).
    fn seal(
        &self,
        job_id: &str,
        outcome: &RowOutcome,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError<E> {
    #[error(
        "row {row}: the wallet kept changing under {attempts} attempts; the batch will be retried"
    )]
    Contention { row: u64, attempts: u32 },
    #[error("row {0} is recorded as decided but its outcome cannot be read")]
    LostOutcome(u64),
    #[error(transparent)]
    Store(E),
}

/// The outcome of every row of a batch, in batch order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub outcomes: Vec<RowOutcome>,
    pub tally: Tally,
}

impl BatchReport {
    pub fn of(outcomes: Vec<RowOutcome>) -> Self {
        let mut tally = Tally::default();
        for outcome in &outcomes {
            tally.add(outcome);
        }
        BatchReport { outcomes, tally }
    }
}

const MAX_ATTEMPTS: u32 = 25;

pub async fn apply_batch<S: LedgerStore>(
    store: &S,
    batch: &Batch,
    now: DateTime<Utc>,
) -> Result<BatchReport, ApplyError<S::Error>> {
    let rows: Vec<u64> = batch.rows.iter().map(|r| r.row).collect();
    let mut decided: HashMap<u64, RowOutcome> = store
        .decided(&batch.job_id, &rows)
        .await
        .map_err(ApplyError::Store)?
        .into_iter()
        .map(|o| (o.row, o))
        .collect();
    let mut wallets: HashMap<CustomerRef, Wallet> = HashMap::new();
    let mut report = BatchReport::default();
    for row in &batch.rows {
        let outcome = match decided.remove(&row.row) {
            Some(outcome) => {
                wallets.remove(&row.customer);
                outcome
            }
            None => decide(store, batch, row, &mut wallets, now).await?,
        };
        report.tally.add(&outcome);
        report.outcomes.push(outcome);
    }
    Ok(report)
}

/// Gives up on a batch that failed on every delivery: its undecided rows are
/// sealed as set aside (never to be applied), its decided rows keep their
/// outcomes, and the report covers them all, so the job can still finish.
pub async fn give_up_batch<S: LedgerStore, R: BatchRow>(
    store: &S,
    batch: &Batch<R>,
) -> Result<BatchReport, ApplyError<S::Error>> {
    let rows: Vec<u64> = batch.rows.iter().map(BatchRow::row).collect();
    for &row in &rows {
        store
            .seal(&batch.job_id, &RowOutcome::set_aside(row))
            .await
            .map_err(ApplyError::Store)?;
    }
    let mut decided: HashMap<u64, RowOutcome> = store
        .decided(&batch.job_id, &rows)
        .await
        .map_err(ApplyError::Store)?
        .into_iter()
        .map(|o| (o.row, o))
        .collect();
    let mut report = BatchReport::default();
    for row in rows {
        let outcome = decided.remove(&row).ok_or(ApplyError::LostOutcome(row))?;
        report.tally.add(&outcome);
        report.outcomes.push(outcome);
    }
    Ok(report)
}

/// Why the row names two customers, if it does: another of its identifiers
/// has a wallet of its own.
async fn conflicting<S: LedgerStore>(
    store: &S,
    account: &Account,
    row: &PointsRow,
    now: DateTime<Utc>,
) -> Result<Option<RowOutcome>, ApplyError<S::Error>> {
    for (column, other) in &row.also {
        let other_account = Account {
            customer: other.clone(),
            ..account.clone()
        };
        let wallet = store
            .wallet(&other_account)
            .await
            .map_err(ApplyError::Store)?;
        if wallet.version > 0 {
            let err = RowError::new(
                row.row,
                Some(column),
                ErrorCode::ConflictingIdentifiers,
                format!(
                    "'{}' has a wallet of its own ({} points), apart from the wallet of '{}': \
                     the row may name two customers, so nothing is applied; give one identifier, \
                     the one whose wallet should change",
                    other.value(),
                    wallet.balance_at(now),
                    row.customer.value()
                ),
            );
            return Ok(Some(RowOutcome::from(&err)));
        }
    }
    Ok(None)
}

/// The movement a row asks of the wallet as read: its own, or for a row
/// that sets the balance, the difference (`None` if there is none).
fn movement_of(row: &PointsRow, wallet: &Wallet, now: DateTime<Utc>) -> Option<Movement> {
    if !row.set_balance {
        return Some(Movement {
            operation: row.operation,
            amount: row.amount,
            expire_in_days: row.expire_in_days,
        });
    }
    let difference = row.amount - wallet.balance_at(now);
    let operation = match difference.signum() {
        0 => return None,
        1 => Operation::Credit,
        _ => Operation::Debit,
    };
    Some(Movement {
        operation,
        amount: difference.abs(),
        expire_in_days: None,
    })
}

async fn decide<S: LedgerStore>(
    store: &S,
    batch: &Batch,
    row: &PointsRow,
    wallets: &mut HashMap<CustomerRef, Wallet>,
    now: DateTime<Utc>,
) -> Result<RowOutcome, ApplyError<S::Error>> {
    let account = Account {
        tenant_id: batch.tenant_id.clone(),
        customer: row.customer.clone(),
        dry_run_of: batch.dry_run.then(|| batch.job_id.clone()),
    };
    let entry_id = format!("{}#{}", batch.job_id, row.row);
    let conflict = conflicting(store, &account, row, now).await?;
    for _ in 0..MAX_ATTEMPTS {
        let wallet = match wallets.remove(&row.customer) {
            Some(w) => w,
            None => store.wallet(&account).await.map_err(ApplyError::Store)?,
        };
        let movement = movement_of(row, &wallet, now);
        let decided = movement.map(|m| (wallet.apply(&m, &entry_id, now), m));
        let (outcome, change) = match (&conflict, decided) {
            (Some(refused), _) => (refused.clone().with_balance(wallet.balance_at(now)), None),
            // Set balance: the wallet holds the balance already.
            (None, None) => {
                let balance = wallet.balance_at(now);
                let mut unchanged = RowOutcome::from(&RowError::new(
                    row.row,
                    None,
                    ErrorCode::NothingToChange,
                    format!("the wallet holds {balance} points already"),
                ))
                .with_balance(balance);
                unchanged.status = RowStatus::Skipped;
                (unchanged, None)
            }
            (None, Some((Ok(applied), movement))) => {
                let points = match movement.operation {
                    Operation::Credit => movement.amount,
                    Operation::Debit => -movement.amount,
                };
                let entry = LedgerEntry {
                    entry_id: entry_id.clone(),
                    tenant: batch.tenant_id.clone(),
                    customer: row.customer.clone(),
                    job_id: batch.job_id.clone(),
                    row: row.row,
                    operation: movement.operation,
                    amount: movement.amount,
                    reason: batch.reason.clone(),
                    expires_at: applied.expires_at,
                    balance_after: applied.balance_after,
                    sequence: applied.wallet.version,
                    applied_at: now,
                    consumed: applied.consumed,
                };
                (
                    RowOutcome::applied(row.row, points, applied.balance_after),
                    Some((applied.wallet, entry)),
                )
            }
            (None, Some((Err(refused), _))) => {
                let err = RowError::new(
                    row.row,
                    Some("amount"),
                    ErrorCode::InsufficientBalance,
                    refused.to_string(),
                );
                (RowOutcome::from(&err).with_balance(refused.available), None)
            }
        };
        let decision = Decision {
            account: account.clone(),
            job_id: batch.job_id.clone(),
            outcome,
            read_version: wallet.version,
            change,
        };
        match store.commit(&decision).await.map_err(ApplyError::Store)? {
            Commit::Done => {
                let after = match decision.change {
                    Some((next, _)) => next,
                    None => wallet,
                };
                wallets.insert(row.customer.clone(), after);
                return Ok(decision.outcome);
            }
            Commit::WalletChanged => continue,
            Commit::AlreadyDecided => {
                return store
                    .decided(&batch.job_id, &[row.row])
                    .await
                    .map_err(ApplyError::Store)?
                    .pop()
                    .ok_or(ApplyError::LostOutcome(row.row));
            }
        }
    }
    Err(ApplyError::Contention {
        row: row.row,
        attempts: MAX_ATTEMPTS,
    })
}

/// A store in plain memory: the reference behaviour the DynamoDB store must
/// match, used by the domain's tests.
pub mod memory {
    use super::*;
    use std::convert::Infallible;
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct MemoryLedger {
        pub wallets: Mutex<HashMap<Account, Wallet>>,
        pub entries: Mutex<Vec<LedgerEntry>>,
        pub outcomes: Mutex<HashMap<(String, u64), RowOutcome>>,
    }

    impl LedgerStore for MemoryLedger {
        type Error = Infallible;

        async fn decided(&self, job_id: &str, rows: &[u64]) -> Result<Vec<RowOutcome>, Infallible> {
            let outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            Ok(rows
                .iter()
                .filter_map(|r| outcomes.get(&(job_id.to_owned(), *r)).cloned())
                .collect())
        }

        async fn wallet(&self, account: &Account) -> Result<Wallet, Infallible> {
            let wallets = self.wallets.lock().unwrap_or_else(|e| e.into_inner());
            let live = Account {
                dry_run_of: None,
                ..account.clone()
            };
            Ok(match (wallets.get(account), wallets.get(&live)) {
                (Some(w), _) => w.clone(),
                (None, Some(w)) => Wallet {
                    version: 0,
                    ..w.clone()
                },
                (None, None) => Wallet::empty(account.customer.clone()),
            })
        }

        async fn seal(&self, job_id: &str, outcome: &RowOutcome) -> Result<bool, Infallible> {
            let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            let key = (job_id.to_owned(), outcome.row);
            if outcomes.contains_key(&key) {
                return Ok(false);
            }
            outcomes.insert(key, outcome.clone());
            Ok(true)
        }

        async fn commit(&self, d: &Decision) -> Result<Commit, Infallible> {
            let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            let mut wallets = self.wallets.lock().unwrap_or_else(|e| e.into_inner());
            let key = (d.job_id.clone(), d.outcome.row);
            if outcomes.contains_key(&key) {
                return Ok(Commit::AlreadyDecided);
            }
            let stored = wallets.get(&d.account).map(|w| w.version).unwrap_or(0);
            if stored != d.read_version {
                return Ok(Commit::WalletChanged);
            }
            if let Some((wallet, entry)) = &d.change {
                wallets.insert(d.account.clone(), wallet.clone());
                self.entries
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(entry.clone());
            }
            outcomes.insert(key, d.outcome.clone());
            Ok(Commit::Done)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryLedger;
    use super::*;
    use crate::batch::RowKind;
    use crate::outcome::RowStatus;
    use crate::test_support::block_on;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
    }

    fn batch(job: &str, dry_run: bool, rows: &[(u64, &str, Operation, i64)]) -> Batch {
        Batch {
            tenant_id: "acme".into(),
            job_id: job.into(),
            number: 1,
            shard: 0,
            reason: "spring campaign".into(),
            dry_run,
            rows_kind: RowKind::Points,
            rows: rows
                .iter()
                .map(|&(row, who, operation, amount)| PointsRow {
                    row,
                    customer: CustomerRef::Email(who.into()),
                    operation,
                    amount,
                    expire_in_days: None,
                    set_balance: false,
                    also: Vec::new(),
                })
                .collect(),
        }
    }

    fn live_balance(store: &MemoryLedger, who: &str) -> i64 {
        let account = Account {
            tenant_id: "acme".into(),
            customer: CustomerRef::Email(who.into()),
            dry_run_of: None,
        };
        store
            .wallets
            .lock()
            .unwrap()
            .get(&account)
            .map(|w| w.balance_at(now()))
            .unwrap_or(0)
    }

    #[test]
    fn a_batch_applies_credits_and_refuses_an_overdraft() {
        let store = MemoryLedger::default();
        let b = batch(
            "J1",
            false,
            &[
                (1, "a@x.io", Operation::Credit, 50),
                (2, "a@x.io", Operation::Debit, 80),
                (3, "a@x.io", Operation::Debit, 20),
            ],
        );
        let report = block_on(apply_batch(&store, &b, now())).unwrap();
        let statuses: Vec<RowStatus> = report.outcomes.iter().map(|o| o.status).collect();
        assert_eq!(
            statuses,
            [RowStatus::Applied, RowStatus::Failed, RowStatus::Applied]
        );
        assert_eq!(
            report.outcomes[1].error_code,
            Some(ErrorCode::InsufficientBalance)
        );
        assert_eq!(report.outcomes[1].balance_after, Some(50));
        assert_eq!(live_balance(&store, "a@x.io"), 30);
        assert_eq!(store.entries.lock().unwrap().len(), 2);
    }

    #[test]
    fn setting_a_balance_moves_the_difference_once_and_a_rerun_changes_nothing() {
        let store = MemoryLedger::default();
        block_on(apply_batch(
            &store,
            &batch("J0", false, &[(1, "a@x.io", Operation::Credit, 100)]),
            now(),
        ))
        .unwrap();
        let set = |job: &str, targets: &[(u64, i64)]| {
            let mut b = batch(
                job,
                false,
                &targets
                    .iter()
                    .map(|&(row, target)| (row, "a@x.io", Operation::Credit, target))
                    .collect::<Vec<_>>(),
            );
            b.rows.iter_mut().for_each(|r| r.set_balance = true);
            block_on(apply_batch(&store, &b, now())).unwrap()
        };
        let first = set("J1", &[(1, 250), (2, 40)]);
        assert_eq!(first.outcomes[0].points, Some(150));
        assert_eq!(first.outcomes[1].points, Some(-210));
        assert_eq!(first.outcomes[1].balance_after, Some(40));
        assert_eq!((first.tally.credited, first.tally.debited), (150, 210));
        let again = set("J2", &[(1, 40)]);
        assert_eq!(again.outcomes[0].status, RowStatus::Skipped);
        assert_eq!(
            again.outcomes[0].error_code,
            Some(ErrorCode::NothingToChange)
        );
        assert_eq!(again.outcomes[0].balance_after, Some(40));
        assert_eq!(live_balance(&store, "a@x.io"), 40);
        // One entry for the credit, one per applied adjustment.
        assert_eq!(store.entries.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_row_whose_other_identifier_has_its_own_wallet_fails_and_moves_nothing() {
        let store = MemoryLedger::default();
        let mobile = CustomerRef::Mobile("+33612345678".into());
        let mut first = batch("J0", false, &[(1, "x", Operation::Credit, 30)]);
        first.rows[0].customer = mobile.clone();
        block_on(apply_batch(&store, &first, now())).unwrap();
        let mut b = batch(
            "J1",
            false,
            &[
                (1, "a@x.io", Operation::Credit, 10),
                (2, "a@x.io", Operation::Credit, 5),
            ],
        );
        b.rows[0].also = vec![("mobile".into(), mobile)];
        let report = block_on(apply_batch(&store, &b, now())).unwrap();
        let refused = &report.outcomes[0];
        assert_eq!(refused.error_code, Some(ErrorCode::ConflictingIdentifiers));
        let message = refused.error_message.as_deref().unwrap_or_default();
        assert!(
            message.contains("column mobile: '+33612345678' has a wallet of its own (30 points)"),
            "{message}"
        );
        // The row names its own wallet only: it applies.
        assert_eq!(report.outcomes[1].status, RowStatus::Applied);
        assert_eq!(live_balance(&store, "a@x.io"), 5);
    }

    #[test]
    fn a_redelivered_batch_changes_nothing_and_reports_the_same_outcomes() {
        let store = MemoryLedger::default();
        let b = batch(
            "J1",
            false,
            &[
                (1, "a@x.io", Operation::Credit, 50),
                (2, "b@x.io", Operation::Debit, 5),
            ],
        );
        let first = block_on(apply_batch(&store, &b, now())).unwrap();
        let again = block_on(apply_batch(&store, &b, now())).unwrap();
        assert_eq!(first, again);
        assert_eq!(live_balance(&store, "a@x.io"), 50);
        assert_eq!(store.entries.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_dry_run_starts_from_the_live_wallet_and_leaves_it_alone() {
        let store = MemoryLedger::default();
        block_on(apply_batch(
            &store,
            &batch("J1", false, &[(1, "a@x.io", Operation::Credit, 50)]),
            now(),
        ))
        .unwrap();
        let dry = batch(
            "J2",
            true,
            &[
                (1, "a@x.io", Operation::Debit, 30),
                (2, "a@x.io", Operation::Debit, 30),
            ],
        );
        let report = block_on(apply_batch(&store, &dry, now())).unwrap();
        assert_eq!(report.outcomes[0].balance_after, Some(20));
        assert_eq!(
            report.outcomes[1].error_code,
            Some(ErrorCode::InsufficientBalance)
        );
        assert_eq!(live_balance(&store, "a@x.io"), 50);
    }

    #[test]
    fn a_batch_given_up_keeps_its_decided_rows_and_seals_the_rest_for_good() {
        let store = MemoryLedger::default();
        let b = batch(
            "J1",
            false,
            &[
                (1, "a@x.io", Operation::Credit, 50),
                (2, "a@x.io", Operation::Credit, 5),
            ],
        );
        let first_row_only = Batch {
            rows: b.rows[..1].to_vec(),
            ..b.clone()
        };
        block_on(apply_batch(&store, &first_row_only, now())).unwrap();
        let report = block_on(give_up_batch(&store, &b)).unwrap();
        assert_eq!(report.outcomes[0].status, RowStatus::Applied);
        assert_eq!(
            report.outcomes[1].error_code,
            Some(ErrorCode::ProcessingFailed)
        );
        assert_eq!((report.tally.applied, report.tally.failed), (1, 1));
        // A late delivery of the same batch applies nothing more.
        let late = block_on(apply_batch(&store, &b, now())).unwrap();
        assert_eq!(late, report);
        assert_eq!(live_balance(&store, "a@x.io"), 50);
    }
}
