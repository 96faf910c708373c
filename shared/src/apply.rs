//! Applying a batch to wallets, exactly once.
//!
//! Each row is decided once: either applied (a ledger entry plus the new
//! wallet) or refused (its outcome only). A batch's outcomes are kept in
//! pages of [`PAGE_ROWS`] rows, and a page's undecided rows are committed
//! together: their outcomes, entries and wallets, only if none of the rows
//! has an outcome yet, every wallet is still at the version it was read at,
//! and the import has not been closed without the batch. So a redelivered
//! batch, a retried function or two deliveries racing each other find the
//! rows already decided and reuse those outcomes instead of applying
//! anything twice.
//!
//! Its length (about 770 lines of code, then its tests): applying a batch is one
//! algorithm, from reading the wallets to committing pages and retrying a
//! refused commit, and it reads best in one place.

use crate::batch::{Batch, BatchRow};
use crate::identifier::CustomerRef;
use crate::ledger::{Applied, LedgerEntry, Movement, Wallet};
use crate::outcome::{ErrorCode, RowError, RowOutcome, RowStatus, Tally};
use crate::points::{Operation, PointsRow};
use crate::reversal;
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

/// A wallet's part in a commit: its state after the group's applied rows,
/// or, when none of them applied, only a check that it is still at the
/// version the rows were decided on.
#[derive(Debug, Clone)]
pub struct WalletWrite {
    pub account: Account,
    /// The version the decisions were made on (0: not stored yet).
    pub read_version: u64,
    /// The wallet after the applied rows, and its balance after the last.
    pub after: Option<(Wallet, i64)>,
}

/// One row's decision: its outcome, and for an applied row its ledger entry.
#[derive(Debug, Clone)]
pub struct RowDecision {
    pub outcome: RowOutcome,
    pub entry: Option<LedgerEntry>,
}

/// Rows per page. A commit of a page whose rows are all applied to
/// different customers takes 49 wallets, 49 ledger entries, the page and the
/// check that the batch is still open: 100 items, DynamoDB's limit for one
/// transaction.
pub const PAGE_ROWS: usize = 49;

/// The most a commit may hold: DynamoDB's limit for one transaction.
pub const MAX_COMMIT_ITEMS: usize = 100;

/// The most expiring lots the wallets of one commit may carry. A stored lot
/// takes at most 10 bytes (`loyalty_aws::tables::lots`), so the wallets stay
/// under 3 MB and the commit, with its entries (each under 10 KB: a debit
/// names at most `MAX_CONSUMED_DETAIL` lots) and its page, under DynamoDB's
/// 4 MB per transaction. A wallet alone holds at most `ledger::MAX_LOTS`:
/// it always fits.
pub const MAX_COMMIT_LOTS: usize = 300_000;

/// Where the outcomes of up to [`PAGE_ROWS`] consecutive rows of a batch are
/// kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Page {
    pub tenant_id: String,
    pub job_id: String,
    pub shard: u32,
    pub batch: u64,
    /// Its place among the batch's pages, from 0.
    pub index: u32,
}

impl Page {
    /// The batch's pages, each with its rows.
    pub fn of<R>(batch: &Batch<R>) -> impl Iterator<Item = (Page, &[R])> {
        batch
            .rows
            .chunks(PAGE_ROWS)
            .enumerate()
            .map(|(index, rows)| {
                let page = Page {
                    tenant_id: batch.tenant_id.clone(),
                    job_id: batch.job_id.clone(),
                    shard: batch.shard,
                    batch: batch.number,
                    index: index as u32,
                };
                (page, rows)
            })
    }
}

/// Decisions on undecided rows of one page, committed all or nothing: only
/// if no delivery has decided any of them yet, every wallet is still at the
/// version read, and the batch has not been closed. A wallet appears once,
/// however many of the rows touch it.
#[derive(Debug, Clone)]
pub struct Commit {
    pub page: Page,
    pub wallets: Vec<WalletWrite>,
    pub rows: Vec<RowDecision>,
    /// A reversal's entries for rows of its later batches, given back ahead
    /// of this page's rows (`crate::reversal::LaterDebits`): each new, like
    /// the rows' entries; the rows' own batches record their outcomes.
    pub ahead: Vec<LedgerEntry>,
}

impl Commit {
    pub fn new(page: Page) -> Self {
        Commit {
            page,
            wallets: Vec::new(),
            rows: Vec::new(),
            ahead: Vec::new(),
        }
    }

    /// The transaction items it takes: the page (when it has rows), the
    /// batch check, one per wallet and one per ledger entry.
    pub fn items(&self) -> usize {
        1 + usize::from(!self.rows.is_empty())
            + self.wallets.len()
            + self.rows.iter().filter(|r| r.entry.is_some()).count()
            + self.ahead.len()
    }

    /// Every ledger entry it writes: its rows', then those given ahead.
    pub fn entries(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.rows
            .iter()
            .filter_map(|r| r.entry.as_ref())
            .chain(&self.ahead)
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.ahead.is_empty()
    }
}

/// What became of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    Done,
    /// Nothing was written. Another delivery decided some of the rows first
    /// (their outcomes stand: read them); these wallets changed since they
    /// were read (read them again and decide their rows again); or the
    /// import was closed without the batch (its undecided rows were
    /// recorded as never processed, one by one).
    Refused {
        decided_elsewhere: bool,
        stale: Vec<Account>,
        closed: bool,
    },
}

/// Where wallets, ledger entries and row outcomes are kept.
pub trait LedgerStore: Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The outcomes recorded one by one for some rows of a job (rows that
    /// failed validation, membership rows, rows sealed on their own).
    fn decided(
        &self,
        job_id: &str,
        rows: &[u64],
    ) -> impl Future<Output = Result<Vec<RowOutcome>, Self::Error>> + Send;

    /// The outcomes recorded in these pages.
    fn page_outcomes(
        &self,
        pages: &[Page],
    ) -> impl Future<Output = Result<Vec<RowOutcome>, Self::Error>> + Send;

    /// The wallet (an empty one at version 0 if it does not exist). A dry run
    /// account that was never written starts as a copy of the live wallet.
    fn wallet(&self, account: &Account)
        -> impl Future<Output = Result<Wallet, Self::Error>> + Send;

    /// Several wallets at once, in the order asked, as [`Self::wallet`] reads one.
    fn wallets(
        &self,
        accounts: &[Account],
    ) -> impl Future<Output = Result<Vec<Wallet>, Self::Error>> + Send;

    /// The ledger entries of import `job_id` for these rows, each in its
    /// wallet's history, those that exist (a reversal's original rows).
    fn entries(
        &self,
        job_id: &str,
        rows: &[(Account, u64)],
    ) -> impl Future<Output = Result<Vec<LedgerEntry>, Self::Error>> + Send;

    /// Every ledger entry of import `job_id` in one wallet's history, in
    /// row order.
    fn job_entries(
        &self,
        account: &Account,
        job_id: &str,
    ) -> impl Future<Output = Result<Vec<LedgerEntry>, Self::Error>> + Send;

    /// Writes the outcomes, ledger entries and wallets, all or nothing, if
    /// every row is undecided, every wallet still at its read version and
    /// the batch still open.
    fn commit(
        &self,
        commit: &Commit,
    ) -> impl Future<Output = Result<Committed, Self::Error>> + Send;

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

/// Times a row's write may be refused because another writer changed what
/// it read (a wallet's or card's version) before the batch gives up and is
/// retried by its queue: far more than contention between a job's shards
/// needs, few enough to end well within the function's time limit.
pub(crate) const MAX_ATTEMPTS: u32 = 25;

/// Applies a batch's rows a page at a time: the rows of a page share one
/// commit, and a customer's rows within it are decided one after the other
/// on the wallet as the previous left it. A refused commit is formed again
/// from what is left: rows another delivery decided drop out with their
/// outcomes, and the rows of a wallet that changed are decided again on the
/// wallet as it is now.
pub async fn apply_batch<S: LedgerStore>(
    store: &S,
    batch: &Batch,
    now: DateTime<Utc>,
) -> Result<BatchReport, ApplyError<S::Error>> {
    let pages: Vec<(Page, &[PointsRow])> = Page::of(batch).collect();
    let mut outcomes = recorded(store, &pages).await?;
    let originals = originals(store, batch, &outcomes).await?;
    let mut later = reversal::LaterDebits::default();
    let mut conflicts = HashMap::new();
    for row in batch.rows.iter() {
        // A reversal undoes what its original's row did to its wallet.
        if row.also.is_empty() || outcomes.contains_key(&row.row) || batch.reverts.is_some() {
            continue;
        }
        let account = account_of(batch, &row.customer);
        if let Some(refused) = conflicting(store, &account, &batch.job_id, row).await? {
            conflicts.insert(row.row, refused);
        }
    }
    let mut known: HashMap<CustomerRef, Wallet> = HashMap::new();
    let mut refusals = 0;
    // A reversal undoes the batch's rows last first, so that a customer's
    // debit is given back before the credit it spent is taken back.
    let mut order: Vec<&(Page, &[PointsRow])> = pages.iter().collect();
    if batch.reverts.is_some() {
        order.reverse();
    }
    for (page, rows) in order {
        loop {
            let mut pending: Vec<&PointsRow> = rows
                .iter()
                .filter(|r| !outcomes.contains_key(&r.row))
                .collect();
            if batch.reverts.is_some() {
                pending.reverse();
            }
            if pending.is_empty() {
                break;
            }
            let mut unread: Vec<Account> = Vec::new();
            for row in &pending {
                let account = account_of(batch, &row.customer);
                if !known.contains_key(&row.customer) && !unread.contains(&account) {
                    unread.push(account);
                }
            }
            let read = store.wallets(&unread).await.map_err(ApplyError::Store)?;
            known.extend(unread.into_iter().map(|a| a.customer).zip(read));
            let read = Read {
                wallets: &known,
                conflicts: &conflicts,
                originals: &originals,
                later: &later,
            };
            let grouped = group(batch, page, &pending, &read, now);
            if let Some(customer) = grouped.look_up {
                look_up(store, batch, customer, &mut later).await?;
                continue;
            }
            let commit = grouped.commit;
            match store.commit(&commit).await.map_err(ApplyError::Store)? {
                Committed::Done => {
                    outcomes.extend(commit.rows.into_iter().map(|d| (d.outcome.row, d.outcome)));
                    known.extend(grouped.after);
                    for (customer, count) in grouped.settled {
                        later.settled(&customer, count);
                    }
                }
                Committed::Refused {
                    decided_elsewhere,
                    stale,
                    closed,
                } => {
                    refusals += 1;
                    if refusals >= MAX_ATTEMPTS {
                        return Err(ApplyError::Contention {
                            row: pending[0].row,
                            attempts: refusals,
                        });
                    }
                    for account in stale {
                        known.remove(&account.customer);
                    }
                    if decided_elsewhere || closed {
                        let rows: Vec<u64> = pending.iter().map(|r| r.row).collect();
                        reread(store, page, &rows, closed, &mut outcomes).await?;
                        // Another delivery moved wallets too: read them all
                        // again, and what it gave back ahead.
                        known.clear();
                        later.forget();
                    }
                }
            }
        }
    }
    report(&batch.rows, outcomes)
}

/// What a reversal's batch reads of the original once (entries never
/// change): the original's entry of each undecided row that has one, and
/// the reversal's entry of a debit's row an earlier batch gave back ahead.
#[derive(Default)]
struct Originals {
    entries: HashMap<u64, LedgerEntry>,
    given_ahead: HashMap<u64, LedgerEntry>,
}

async fn originals<S: LedgerStore>(
    store: &S,
    batch: &Batch,
    outcomes: &HashMap<u64, RowOutcome>,
) -> Result<Originals, ApplyError<S::Error>> {
    let Some(original) = &batch.reverts else {
        return Ok(Originals::default());
    };
    let rows: Vec<(Account, u64)> = batch
        .rows
        .iter()
        .filter(|r| !outcomes.contains_key(&r.row))
        .map(|r| (account_of(batch, &r.customer), r.row))
        .collect();
    if rows.is_empty() {
        return Ok(Originals::default());
    }
    let entries: HashMap<u64, LedgerEntry> = store
        .entries(original, &rows)
        .await
        .map_err(ApplyError::Store)?
        .into_iter()
        .map(|e| (e.row, e))
        .collect();
    let debits: Vec<(Account, u64)> = rows
        .into_iter()
        .filter(|(_, row)| {
            entries
                .get(row)
                .is_some_and(|e| e.operation == Operation::Debit)
        })
        .collect();
    let given_ahead = if debits.is_empty() {
        HashMap::new()
    } else {
        store
            .entries(&batch.job_id, &debits)
            .await
            .map_err(ApplyError::Store)?
            .into_iter()
            .map(|e| (e.row, e))
            .collect()
    };
    Ok(Originals {
        entries,
        given_ahead,
    })
}

/// Reads a reversal's customer's entries of the original and of the
/// reversal: its debits of later batches to give back ahead.
async fn look_up<S: LedgerStore>(
    store: &S,
    batch: &Batch,
    customer: CustomerRef,
    later: &mut reversal::LaterDebits,
) -> Result<(), ApplyError<S::Error>> {
    let Some(original) = &batch.reverts else {
        return Ok(());
    };
    let account = account_of(batch, &customer);
    let entries = store
        .job_entries(&account, original)
        .await
        .map_err(ApplyError::Store)?;
    let reversed = store
        .job_entries(&account, &batch.job_id)
        .await
        .map_err(ApplyError::Store)?;
    let last_row = batch.rows.iter().map(|r| r.row).max().unwrap_or(0);
    later.found(customer, entries, &reversed, last_row);
    Ok(())
}

/// What a page's rows are decided on: their wallets as known, the rows
/// naming two customers, and a reversal's original entries.
struct Read<'a> {
    wallets: &'a HashMap<CustomerRef, Wallet>,
    conflicts: &'a HashMap<u64, RowOutcome>,
    originals: &'a Originals,
    later: &'a reversal::LaterDebits,
}

/// The outcomes recorded in the batch's pages, by row.
async fn recorded<S: LedgerStore, R>(
    store: &S,
    pages: &[(Page, &[R])],
) -> Result<HashMap<u64, RowOutcome>, ApplyError<S::Error>> {
    let pages: Vec<Page> = pages.iter().map(|(p, _)| p.clone()).collect();
    Ok(store
        .page_outcomes(&pages)
        .await
        .map_err(ApplyError::Store)?
        .into_iter()
        .map(|o| (o.row, o))
        .collect())
}

/// After a refused commit: what another delivery decided in the page, and
/// for a closed batch the outcomes its rows were closed with (a row closed
/// but not recorded yet is an error: the batch is retried later).
async fn reread<S: LedgerStore>(
    store: &S,
    page: &Page,
    pending: &[u64],
    closed: bool,
    outcomes: &mut HashMap<u64, RowOutcome>,
) -> Result<(), ApplyError<S::Error>> {
    let found = store
        .page_outcomes(std::slice::from_ref(page))
        .await
        .map_err(ApplyError::Store)?;
    outcomes.extend(found.into_iter().map(|o| (o.row, o)));
    if closed {
        let undecided: Vec<u64> = pending
            .iter()
            .copied()
            .filter(|r| !outcomes.contains_key(r))
            .collect();
        let found = store
            .decided(&page.job_id, &undecided)
            .await
            .map_err(ApplyError::Store)?;
        outcomes.extend(found.into_iter().map(|o| (o.row, o)));
        if let Some(row) = undecided.iter().find(|r| !outcomes.contains_key(r)) {
            return Err(ApplyError::LostOutcome(*row));
        }
    }
    Ok(())
}

/// Every row's outcome, in batch order.
fn report<R: BatchRow, E>(
    rows: &[R],
    mut outcomes: HashMap<u64, RowOutcome>,
) -> Result<BatchReport, ApplyError<E>> {
    let mut report = BatchReport::default();
    for row in rows.iter().map(BatchRow::row) {
        let outcome = outcomes.remove(&row).ok_or(ApplyError::LostOutcome(row))?;
        report.tally.add(&outcome);
        report.outcomes.push(outcome);
    }
    Ok(report)
}

fn account_of(batch: &Batch, customer: &CustomerRef) -> Account {
    Account {
        tenant_id: batch.tenant_id.clone(),
        customer: customer.clone(),
        dry_run_of: batch.dry_run.then(|| batch.job_id.clone()),
    }
}

/// A page's commit as [`group`] formed it.
struct Grouped {
    commit: Commit,
    /// The wallets after it.
    after: HashMap<CustomerRef, Wallet>,
    /// For each customer whose later debits it gave back ahead: how many of
    /// the pending ones it settled.
    settled: Vec<(CustomerRef, usize)>,
    /// A reversal's customer whose credit cannot be taken back in full and
    /// whose later debits are not looked up yet: look them up, then group
    /// again (the commit is not to be sent).
    look_up: Option<CustomerRef>,
}

/// The page's pending rows in one commit, each decided on its wallet as
/// known (every pending row's wallet is), and the wallets after them. The
/// commit takes the rows in order until it would hold more than
/// [`MAX_COMMIT_ITEMS`] items or its wallets more than [`MAX_COMMIT_LOTS`]
/// lots; the rest wait for the next commit. A reversal's customer joining
/// the commit first has its later debits given back ahead
/// ([`reversal::LaterDebits`]); more of them than a commit holds make
/// commits of their own, before the customer's rows.
fn group(
    batch: &Batch,
    page: &Page,
    pending: &[&PointsRow],
    read: &Read,
    now: DateTime<Utc>,
) -> Grouped {
    let known = read.wallets;
    let mut commit = Commit::new(page.clone());
    let mut settled = Vec::new();
    // Per wallet in the commit: its place in `commit.wallets`, and its state
    // after the rows decided so far.
    let mut touched: HashMap<&CustomerRef, (usize, Wallet)> = HashMap::new();
    // The lots the commit's wallets may carry: as read, plus one a row or
    // a lot a debit given back ahead names.
    let mut lots = 0;
    for row in pending {
        let customer = &row.customer;
        let joining = !touched.contains_key(customer);
        let mut ahead = if joining {
            read.later.pending(customer)
        } else {
            &[]
        };
        // Its wallet, its page (if the commit has no row yet), the row's
        // entry and the debits given back ahead.
        let items = usize::from(joining) + usize::from(commit.rows.is_empty()) + 1 + ahead.len();
        if commit.is_empty() && 1 + items > MAX_COMMIT_ITEMS {
            // Only some of the debits, in a commit of their own.
            ahead = &ahead[..MAX_COMMIT_ITEMS - 2];
        }
        let more = 1 + if joining {
            known[customer].lots.len() + ahead.iter().map(|d| d.consumed.len()).sum::<usize>()
        } else {
            0
        };
        if !commit.is_empty()
            && (lots + more > MAX_COMMIT_LOTS || commit.items() + items > MAX_COMMIT_ITEMS)
        {
            break;
        }
        lots += more;
        let (place, wallet) = match touched.get(customer) {
            Some((place, wallet)) => (*place, wallet.clone()),
            None => {
                let read_wallet = &known[customer];
                let (wallet, given) = reversal::give_back_ahead(read_wallet, ahead, now);
                if !ahead.is_empty() {
                    settled.push((customer.clone(), ahead.len()));
                }
                let after = given.last().map(|(_, a)| (wallet.clone(), a.balance_after));
                commit.ahead.extend(
                    given
                        .into_iter()
                        .map(|(debit, applied)| reversal_entry(batch, debit, &applied, now)),
                );
                commit.wallets.push(WalletWrite {
                    account: account_of(batch, customer),
                    read_version: read_wallet.version,
                    after,
                });
                (commit.wallets.len() - 1, wallet)
            }
        };
        if ahead.len() < read.later.pending(customer).len() && joining {
            // The rest of the debits go first in the next commit.
            touched.insert(customer, (place, wallet));
            break;
        }
        let (outcome, change) = match &batch.reverts {
            Some(original) => {
                let entry = read.originals.entries.get(&row.row);
                if !read.later.looked_up(customer)
                    && entry.is_some_and(|e| reversal::short_of_points(&wallet, e, now))
                {
                    return Grouped {
                        commit,
                        after: HashMap::new(),
                        settled,
                        look_up: Some(customer.clone()),
                    };
                }
                let given = read.originals.given_ahead.get(&row.row);
                undo(batch, row, &wallet, original, entry, given, now)
            }
            None => decide(batch, row, &wallet, read.conflicts.get(&row.row), now),
        };
        let after = match change {
            Some((next, entry)) => {
                commit.wallets[place].after = Some((next.clone(), entry.balance_after));
                commit.rows.push(RowDecision {
                    outcome,
                    entry: Some(entry),
                });
                next
            }
            None => {
                commit.rows.push(RowDecision {
                    outcome,
                    entry: None,
                });
                wallet
            }
        };
        touched.insert(customer, (place, after));
    }
    debug_assert!(commit.items() <= MAX_COMMIT_ITEMS);
    let after = touched
        .into_iter()
        .map(|(customer, (_, wallet))| (customer.clone(), wallet))
        .collect();
    Grouped {
        commit,
        after,
        settled,
        look_up: None,
    }
}

/// Gives up on a points batch that failed on every delivery: its undecided
/// rows are recorded in their pages as set aside (never to be applied), its
/// decided rows keep their outcomes, and the report covers them all, so the
/// job can still finish.
pub async fn give_up_batch<S: LedgerStore>(
    store: &S,
    batch: &Batch,
) -> Result<BatchReport, ApplyError<S::Error>> {
    let pages: Vec<(Page, &[PointsRow])> = Page::of(batch).collect();
    let mut outcomes = recorded(store, &pages).await?;
    for (page, rows) in &pages {
        let mut refusals = 0;
        loop {
            let pending: Vec<u64> = rows
                .iter()
                .map(|r| r.row)
                .filter(|r| !outcomes.contains_key(r))
                .collect();
            let Some(&first) = pending.first() else {
                break;
            };
            let mut commit = Commit::new(page.clone());
            commit.rows = pending
                .iter()
                .map(|&row| RowDecision {
                    outcome: RowOutcome::set_aside(row),
                    entry: None,
                })
                .collect();
            match store.commit(&commit).await.map_err(ApplyError::Store)? {
                Committed::Done => {
                    outcomes.extend(commit.rows.into_iter().map(|d| (d.outcome.row, d.outcome)))
                }
                Committed::Refused { closed, .. } => {
                    refusals += 1;
                    if refusals >= MAX_ATTEMPTS {
                        return Err(ApplyError::Contention {
                            row: first,
                            attempts: refusals,
                        });
                    }
                    reread(store, page, &pending, closed, &mut outcomes).await?;
                }
            }
        }
    }
    report(&batch.rows, outcomes)
}

/// Gives up on a batch whose rows' outcomes are recorded one by one
/// (membership rows): its undecided rows are sealed as set aside, its
/// decided rows keep their outcomes.
pub async fn give_up_rows<S: LedgerStore, R: BatchRow>(
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
    let decided = store
        .decided(&batch.job_id, &rows)
        .await
        .map_err(ApplyError::Store)?
        .into_iter()
        .map(|o| (o.row, o))
        .collect();
    report(&batch.rows, decided)
}

/// Why the row names two customers, if it does: another of its identifiers
/// had a wallet of its own before this import.
///
/// Only wallets from before the import count, read live (a dry run leaves
/// the live wallets as they were): which of this import's rows another
/// shard, or another batch, has applied by now must not change the
/// decision, so the same file decides the same way however it is batched
/// and a dry run decides as the real run will.
async fn conflicting<S: LedgerStore>(
    store: &S,
    account: &Account,
    job_id: &str,
    row: &PointsRow,
) -> Result<Option<RowOutcome>, ApplyError<S::Error>> {
    for (column, other) in &row.also {
        let live = Account {
            customer: other.clone(),
            dry_run_of: None,
            ..account.clone()
        };
        let wallet = store.wallet(&live).await.map_err(ApplyError::Store)?;
        if !wallet.existed_before(job_id) {
            continue;
        }
        let err = RowError::new(
            row.row,
            Some(column),
            ErrorCode::ConflictingIdentifiers,
            format!(
                "'{}' has a wallet of its own, apart from the wallet of '{}': the row may name \
                 two customers, so nothing is applied; give one identifier, the one whose \
                 wallet should change",
                other.value(),
                row.customer.value()
            ),
        );
        return Ok(Some(RowOutcome::from(&err)));
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

/// One row decided on its wallet: its outcome, and for an applied row the
/// wallet after it and its ledger entry.
fn decide(
    batch: &Batch,
    row: &PointsRow,
    wallet: &Wallet,
    conflict: Option<&RowOutcome>,
    now: DateTime<Utc>,
) -> (RowOutcome, Option<(Wallet, LedgerEntry)>) {
    if let Some(refused) = conflict {
        return (refused.clone().with_balance(wallet.balance_at(now)), None);
    }
    let Some(movement) = movement_of(row, wallet, now) else {
        // Set balance: the wallet holds the balance already.
        let balance = wallet.balance_at(now);
        let message = format!("the wallet holds {balance} points already");
        return (
            skipped(row.row, ErrorCode::NothingToChange, message, balance),
            None,
        );
    };
    match wallet.apply(&movement, now) {
        Ok(applied) => applied_row(batch, row, wallet, &movement, applied, now),
        Err(refused) => {
            let err = RowError::new(
                row.row,
                Some(batch.amount_column.as_deref().unwrap_or("amount")),
                ErrorCode::InsufficientBalance,
                refused.to_string(),
            );
            (RowOutcome::from(&err).with_balance(refused.available), None)
        }
    }
}

/// A row with nothing to do: skipped, saying why, with the wallet's balance.
fn skipped(row: u64, code: ErrorCode, message: String, balance: i64) -> RowOutcome {
    let mut outcome =
        RowOutcome::from(&RowError::new(row, None, code, message)).with_balance(balance);
    outcome.status = RowStatus::Skipped;
    outcome
}

/// An applied row's outcome, wallet after it and ledger entry.
fn applied_row(
    batch: &Batch,
    row: &PointsRow,
    wallet: &Wallet,
    movement: &Movement,
    mut applied: Applied,
    now: DateTime<Utc>,
) -> (RowOutcome, Option<(Wallet, LedgerEntry)>) {
    // A live wallet this row stores first is this import's.
    if wallet.version == 0 && !batch.dry_run {
        applied.wallet.created_by = Some(batch.job_id.clone());
    }
    let points = match movement.operation {
        Operation::Credit => movement.amount,
        Operation::Debit => -movement.amount,
    };
    let entry = LedgerEntry {
        entry_id: format!("{}#{}", batch.job_id, row.row),
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
        reverses: None,
    };
    (
        RowOutcome::applied(row.row, points, applied.balance_after),
        Some((applied.wallet, entry)),
    )
}

/// A reversal's row decided on its wallet and the entry of the original's
/// row (`None`: the original applied nothing there, so there is nothing to
/// undo): the opposite of that entry, or why it cannot be undone. A debit
/// an earlier batch gave back ahead (`given`) is applied already: its
/// outcome is that entry's.
fn undo(
    batch: &Batch,
    row: &PointsRow,
    wallet: &Wallet,
    original_job: &str,
    original: Option<&LedgerEntry>,
    given: Option<&LedgerEntry>,
    now: DateTime<Utc>,
) -> (RowOutcome, Option<(Wallet, LedgerEntry)>) {
    let balance = wallet.balance_at(now);
    let Some(original) = original else {
        let message =
            format!("import {original_job} did not apply this row: there is nothing to reverse");
        return (
            skipped(row.row, ErrorCode::NotApplied, message, balance),
            None,
        );
    };
    if let Some(given) = given {
        let outcome = RowOutcome::applied(row.row, signed(given), given.balance_after);
        return (outcome, None);
    }
    match reversal::reverse(wallet, original, now) {
        Ok(applied) => {
            let entry = reversal_entry(batch, original, &applied, now);
            let outcome = RowOutcome::applied(row.row, signed(&entry), applied.balance_after);
            (outcome, Some((applied.wallet, entry)))
        }
        Err(cannot) => {
            let err = RowError::new(
                row.row,
                None,
                ErrorCode::CannotReverse,
                format!("import {original_job} applied it, but {cannot}"),
            );
            (RowOutcome::from(&err).with_balance(balance), None)
        }
    }
}

/// An entry's points, negative for a debit.
fn signed(entry: &LedgerEntry) -> i64 {
    match entry.operation {
        Operation::Credit => entry.amount,
        Operation::Debit => -entry.amount,
    }
}

/// The reversal's ledger entry undoing `original` (the same row, the
/// opposite operation, where the points went or came from).
fn reversal_entry(
    batch: &Batch,
    original: &LedgerEntry,
    applied: &Applied,
    now: DateTime<Utc>,
) -> LedgerEntry {
    LedgerEntry {
        entry_id: format!("{}#{}", batch.job_id, original.row),
        tenant: batch.tenant_id.clone(),
        customer: original.customer.clone(),
        job_id: batch.job_id.clone(),
        row: original.row,
        operation: match original.operation {
            Operation::Credit => Operation::Debit,
            Operation::Debit => Operation::Credit,
        },
        amount: original.amount,
        reason: batch.reason.clone(),
        expires_at: None,
        balance_after: applied.balance_after,
        sequence: applied.wallet.version,
        applied_at: now,
        consumed: applied.consumed.clone(),
        reverses: Some(original.entry_id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::RowKind;
    use crate::outcome::RowStatus;
    use crate::test_support::block_on;
    use crate::test_support::MemoryLedger;
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
            amount_column: None,
            reverts: None,
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
            message.contains("column mobile: '+33612345678' has a wallet of its own, apart"),
            "{message}"
        );
        // The row names its own wallet only: it applies.
        assert_eq!(report.outcomes[1].status, RowStatus::Applied);
        assert_eq!(live_balance(&store, "a@x.io"), 5);
    }

    #[test]
    fn a_wallet_the_same_import_made_is_no_conflict_whichever_row_comes_first() {
        let mobile = CustomerRef::Mobile("+33612345678".into());
        for mobile_first in [true, false] {
            let store = MemoryLedger::default();
            let mut alone = batch("J1", false, &[(1, "x", Operation::Credit, 3)]);
            alone.rows[0].customer = mobile.clone();
            let mut both = batch("J1", false, &[(2, "a@x.io", Operation::Credit, 10)]);
            both.number = 2;
            both.shard = 1;
            both.rows[0].also = vec![("mobile".into(), mobile.clone())];
            let order = if mobile_first {
                [&alone, &both]
            } else {
                [&both, &alone]
            };
            let mut decided = Vec::new();
            for b in order {
                let report = block_on(apply_batch(&store, b, now())).unwrap();
                decided.extend(report.outcomes.into_iter().map(|o| (o.row, o.status)));
            }
            decided.sort_by_key(|(row, _)| *row);
            assert_eq!(
                decided,
                [(1, RowStatus::Applied), (2, RowStatus::Applied)],
                "the mobile's own row first: {mobile_first}"
            );
        }
    }

    #[test]
    fn rows_of_different_customers_share_commits_up_to_the_item_limit() {
        let store = MemoryLedger::default();
        let rows: Vec<(u64, String)> = (1..=120).map(|n| (n, format!("c{n}@x.io"))).collect();
        let rows: Vec<_> = rows
            .iter()
            .map(|(n, who)| (*n, who.as_str(), Operation::Credit, 10))
            .collect();
        let report = block_on(apply_batch(&store, &batch("J1", false, &rows), now())).unwrap();
        assert_eq!(report.tally.applied, 120);
        // A page of 49 rows a commit.
        assert_eq!(*store.commits.lock().unwrap(), [49, 49, 22]);
    }

    #[test]
    fn a_customers_rows_in_one_commit_follow_each_other() {
        let store = MemoryLedger::default();
        let rows: Vec<_> = (1..=10)
            .map(|n| (n, "a@x.io", Operation::Credit, 10 * n as i64))
            .chain([(11, "a@x.io", Operation::Debit, 1000)])
            .collect();
        let report = block_on(apply_batch(&store, &batch("J1", false, &rows), now())).unwrap();
        assert_eq!(*store.commits.lock().unwrap(), [11]);
        assert_eq!(report.outcomes[9].balance_after, Some(550));
        assert_eq!(
            report.outcomes[10].error_code,
            Some(ErrorCode::InsufficientBalance)
        );
        let entries = store.entries.lock().unwrap();
        let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, (1..=10).collect::<Vec<_>>());
        drop(entries);
        assert_eq!(live_balance(&store, "a@x.io"), 550);
    }

    /// Another import credits `who` once, just before the first commit.
    struct Interfering {
        inner: MemoryLedger,
        who: &'static str,
        done: std::sync::atomic::AtomicBool,
    }

    impl LedgerStore for Interfering {
        type Error = std::convert::Infallible;

        async fn decided(
            &self,
            job_id: &str,
            rows: &[u64],
        ) -> Result<Vec<RowOutcome>, Self::Error> {
            self.inner.decided(job_id, rows).await
        }
        async fn wallet(&self, account: &Account) -> Result<Wallet, Self::Error> {
            self.inner.wallet(account).await
        }
        async fn wallets(&self, accounts: &[Account]) -> Result<Vec<Wallet>, Self::Error> {
            self.inner.wallets(accounts).await
        }
        async fn page_outcomes(&self, pages: &[Page]) -> Result<Vec<RowOutcome>, Self::Error> {
            self.inner.page_outcomes(pages).await
        }
        async fn seal(&self, job_id: &str, outcome: &RowOutcome) -> Result<bool, Self::Error> {
            self.inner.seal(job_id, outcome).await
        }
        async fn entries(
            &self,
            job_id: &str,
            rows: &[(Account, u64)],
        ) -> Result<Vec<LedgerEntry>, Self::Error> {
            self.inner.entries(job_id, rows).await
        }
        async fn job_entries(
            &self,
            account: &Account,
            job_id: &str,
        ) -> Result<Vec<LedgerEntry>, Self::Error> {
            self.inner.job_entries(account, job_id).await
        }
        async fn commit(&self, c: &Commit) -> Result<Committed, Self::Error> {
            if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let other = batch("OTHER", false, &[(1, self.who, Operation::Credit, 7)]);
                apply_batch(&self.inner, &other, now()).await.unwrap();
            }
            self.inner.commit(c).await
        }
    }

    #[test]
    fn a_wallet_changed_meanwhile_is_read_again_and_its_rows_decided_again() {
        let store = Interfering {
            inner: MemoryLedger::default(),
            who: "b@x.io",
            done: Default::default(),
        };
        let b = batch(
            "J1",
            false,
            &[
                (1, "a@x.io", Operation::Credit, 5),
                (2, "b@x.io", Operation::Debit, 7),
                (3, "c@x.io", Operation::Credit, 5),
            ],
        );
        let report = block_on(apply_batch(&store, &b, now())).unwrap();
        // Decided on the empty wallet, b's debit would have been refused; on
        // the wallet as the other import left it, it applies.
        assert_eq!(report.tally.applied, 3);
        assert_eq!(report.outcomes[1].balance_after, Some(0));
        assert_eq!(*store.inner.commits.lock().unwrap(), [1, 3]);
        assert_eq!(live_balance(&store.inner, "b@x.io"), 0);
    }

    #[test]
    fn a_batch_closed_without_being_applied_applies_nothing_and_reports_how_it_was_closed() {
        let store = MemoryLedger::default();
        let b = batch(
            "J1",
            false,
            &[
                (1, "a@x.io", Operation::Credit, 50),
                (2, "b@x.io", Operation::Credit, 5),
            ],
        );
        store.closed.lock().unwrap().push(("J1".into(), 1));
        block_on(store.seal("J1", &RowOutcome::never_processed(1))).unwrap();
        // The second row's outcome is not recorded yet: the batch waits.
        assert!(matches!(
            block_on(apply_batch(&store, &b, now())),
            Err(ApplyError::LostOutcome(2))
        ));
        block_on(store.seal("J1", &RowOutcome::never_processed(2))).unwrap();
        let report = block_on(apply_batch(&store, &b, now())).unwrap();
        assert_eq!(report.tally.failed, 2);
        assert_eq!(report.tally.applied, 0);
        assert_eq!(live_balance(&store, "a@x.io"), 0);
        assert!(store.entries.lock().unwrap().is_empty());
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
    fn a_commit_takes_no_more_lots_than_a_transaction_can_carry() {
        // 49 customers whose wallets hold 10,000 lots each: their rows are
        // committed 29 at a time (29 × 10,001 lots, under the bound).
        let who: Vec<String> = (0..49).map(|n| format!("c{n}@x.io")).collect();
        let rows: Vec<(u64, &str, Operation, i64)> = who
            .iter()
            .enumerate()
            .map(|(n, w)| (n as u64 + 1, w.as_str(), Operation::Credit, 1))
            .collect();
        let b = batch("J1", false, &rows);
        let page = Page::of(&b).next().unwrap().0;
        let lots: Vec<crate::ledger::Lot> = (1..=10_000)
            .map(|d| crate::ledger::Lot {
                expires_on: now().date_naive() + chrono::Duration::days(d),
                remaining: 1,
            })
            .collect();
        let known: HashMap<CustomerRef, Wallet> = b
            .rows
            .iter()
            .map(|r| {
                let mut wallet = Wallet::empty(r.customer.clone());
                wallet.lots = lots.clone();
                wallet.version = 1;
                (r.customer.clone(), wallet)
            })
            .collect();
        let pending: Vec<&PointsRow> = b.rows.iter().collect();
        let read = Read {
            wallets: &known,
            conflicts: &HashMap::new(),
            originals: &Originals::default(),
            later: &reversal::LaterDebits::default(),
        };
        let commit = group(&b, &page, &pending, &read, now()).commit;
        assert_eq!(commit.rows.len(), 29);
        let carried: usize = commit
            .wallets
            .iter()
            .filter_map(|w| w.after.as_ref())
            .map(|(w, _)| w.lots.len())
            .sum();
        assert!(carried <= MAX_COMMIT_LOTS, "{carried}");
        // The rest, committed after, all apply.
        let store = MemoryLedger::default();
        for wallet in known.values() {
            let account = account_of(&b, &wallet.customer);
            store
                .wallets
                .lock()
                .unwrap()
                .insert(account, wallet.clone());
        }
        let report = block_on(apply_batch(&store, &b, now())).unwrap();
        assert_eq!(report.tally.applied, 49);
    }

    #[test]
    fn a_dry_run_finds_a_conflict_as_the_real_run_does() {
        let store = MemoryLedger::default();
        let mobile = CustomerRef::Mobile("+33612345678".into());
        let mut first = batch("J0", false, &[(1, "x", Operation::Credit, 30)]);
        first.rows[0].customer = mobile.clone();
        block_on(apply_batch(&store, &first, now())).unwrap();
        let rows = [
            (1, "a@x.io", Operation::Credit, 10),
            (2, "a@x.io", Operation::Credit, 5),
        ];
        let outcomes = |dry_run| {
            let mut b = batch(if dry_run { "DRY" } else { "REAL" }, dry_run, &rows);
            b.rows[0].also = vec![("mobile".into(), mobile.clone())];
            block_on(apply_batch(&store, &b, now())).unwrap().outcomes
        };
        let dry = outcomes(true);
        assert_eq!(dry[0].error_code, Some(ErrorCode::ConflictingIdentifiers));
        assert_eq!(dry, outcomes(false));
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
    fn a_reversal_undoes_each_applied_row_once_and_reports_the_others() {
        let store = MemoryLedger::default();
        let rows = [
            (1, "a@x.io", Operation::Credit, 50),
            (2, "b@x.io", Operation::Credit, 30),
            (3, "a@x.io", Operation::Debit, 20),
            (4, "c@x.io", Operation::Debit, 5),
        ];
        let original = block_on(apply_batch(&store, &batch("J1", false, &rows), now())).unwrap();
        assert_eq!(original.tally.applied, 3, "c has nothing to debit");
        // b spends 10 of its 30 points.
        block_on(apply_batch(
            &store,
            &batch("SPEND", false, &[(1, "b@x.io", Operation::Debit, 10)]),
            now(),
        ))
        .unwrap();
        let mut reversal = batch("J1-revert", false, &rows);
        reversal.reverts = Some("J1".into());
        let report = block_on(apply_batch(&store, &reversal, now())).unwrap();
        let codes: Vec<Option<ErrorCode>> = report.outcomes.iter().map(|o| o.error_code).collect();
        assert_eq!(
            codes,
            [
                None,
                Some(ErrorCode::CannotReverse),
                None,
                Some(ErrorCode::NotApplied)
            ]
        );
        assert_eq!(report.outcomes[0].points, Some(-50));
        assert_eq!(report.outcomes[2].points, Some(20));
        assert_eq!(report.outcomes[3].status, RowStatus::Skipped);
        let message = report.outcomes[1]
            .error_message
            .as_deref()
            .unwrap_or_default();
        assert!(message.contains("only 20 are left"), "{message}");
        assert_eq!(live_balance(&store, "a@x.io"), 0);
        assert_eq!(live_balance(&store, "b@x.io"), 20);
        // Delivered again, it undoes nothing more.
        let again = block_on(apply_batch(&store, &reversal, now())).unwrap();
        assert_eq!(again, report);
        let entries = store.entries.lock().unwrap();
        let undone: Vec<&str> = entries
            .iter()
            .filter(|e| e.job_id == "J1-revert")
            .filter_map(|e| e.reverses.as_deref())
            .collect();
        // Last first: a's debit was given back before its credit was taken.
        assert_eq!(undone, ["J1#3", "J1#1"]);
    }

    /// The batches of `job` numbered from 1, and their reversal's.
    fn batches(job: &str, each: &[&[(u64, &str, Operation, i64)]]) -> (Vec<Batch>, Vec<Batch>) {
        let numbered = |job: &str, reverts: Option<&str>| -> Vec<Batch> {
            each.iter()
                .zip(1..)
                .map(|(rows, number)| Batch {
                    number,
                    reverts: reverts.map(str::to_owned),
                    ..batch(job, false, rows)
                })
                .collect()
        };
        let reversal = format!("{job}-revert");
        (numbered(job, None), numbered(&reversal, Some(job)))
    }

    fn reversal_entries(store: &MemoryLedger) -> Vec<(String, u64)> {
        let entries = store.entries.lock().unwrap();
        entries
            .iter()
            .filter(|e| e.job_id.ends_with("-revert"))
            .map(|e| (e.reverses.clone().unwrap_or_default(), e.sequence))
            .sorted_by_sequence()
    }

    trait SortedBySequence {
        fn sorted_by_sequence(self) -> Vec<(String, u64)>;
    }

    impl<I: Iterator<Item = (String, u64)>> SortedBySequence for I {
        fn sorted_by_sequence(self) -> Vec<(String, u64)> {
            let mut all: Vec<(String, u64)> = self.collect();
            all.sort_by_key(|(_, sequence)| *sequence);
            all
        }
    }

    #[test]
    fn a_credit_spent_by_a_later_batch_of_the_same_import_is_taken_back_once_that_debit_is_given_back(
    ) {
        let store = MemoryLedger::default();
        let (original, reversal) = batches(
            "J1",
            &[
                &[(1, "a@x.io", Operation::Credit, 50)],
                &[
                    (2, "b@x.io", Operation::Credit, 5),
                    (3, "a@x.io", Operation::Debit, 30),
                ],
            ],
        );
        for b in &original {
            block_on(apply_batch(&store, b, now())).unwrap();
        }
        assert_eq!(live_balance(&store, "a@x.io"), 20);

        let first = block_on(apply_batch(&store, &reversal[0], now())).unwrap();
        assert_eq!(first.outcomes[0].error_code, None, "{first:?}");
        assert_eq!(first.outcomes[0].points, Some(-50));
        assert_eq!(first.outcomes[0].balance_after, Some(0));
        // The debit of the later batch was given back first, in the same
        // commit; its own batch records it as applied.
        assert_eq!(
            reversal_entries(&store),
            [("J1#3".into(), 3), ("J1#1".into(), 4)]
        );
        let second = block_on(apply_batch(&store, &reversal[1], now())).unwrap();
        assert_eq!(second.tally.applied, 2);
        assert_eq!(second.outcomes[1].points, Some(30));
        assert_eq!(second.outcomes[1].balance_after, Some(50));
        assert_eq!(live_balance(&store, "a@x.io"), 0);
        assert_eq!(live_balance(&store, "b@x.io"), 0);
        // Each batch delivered again undoes nothing more.
        assert_eq!(
            block_on(apply_batch(&store, &reversal[0], now())).unwrap(),
            first
        );
        assert_eq!(
            block_on(apply_batch(&store, &reversal[1], now())).unwrap(),
            second
        );
        assert_eq!(reversal_entries(&store).len(), 3);
    }

    #[test]
    fn more_later_debits_than_one_transaction_holds_are_given_back_in_commits_of_their_own() {
        let store = MemoryLedger::default();
        let debits: Vec<(u64, &str, Operation, i64)> = (2..=151)
            .map(|row| (row, "a@x.io", Operation::Debit, 1))
            .collect();
        let (original, reversal) =
            batches("J1", &[&[(1, "a@x.io", Operation::Credit, 1000)], &debits]);
        for b in &original {
            block_on(apply_batch(&store, b, now())).unwrap();
        }
        assert_eq!(live_balance(&store, "a@x.io"), 850);
        store.commits.lock().unwrap().clear();

        // MemoryLedger refuses a commit of more than 100 items.
        let first = block_on(apply_batch(&store, &reversal[0], now())).unwrap();
        assert_eq!(first.tally.applied, 1);
        // 98 debits alone, then the other 52 with the credit.
        assert_eq!(*store.commits.lock().unwrap(), [0, 1]);
        let second = block_on(apply_batch(&store, &reversal[1], now())).unwrap();
        assert_eq!(second.tally.applied, 150);
        assert_eq!(live_balance(&store, "a@x.io"), 0);
        let undone = reversal_entries(&store);
        assert_eq!(undone.len(), 151);
        // Last first, one wallet version after the other.
        assert_eq!(undone[0], ("J1#151".into(), 152));
        assert_eq!(undone[150], ("J1#1".into(), 302));
    }

    #[test]
    fn a_credit_spent_elsewhere_is_still_refused_after_looking_for_later_debits() {
        let store = MemoryLedger::default();
        let (original, reversal) = batches(
            "J1",
            &[
                &[(1, "a@x.io", Operation::Credit, 50)],
                &[(2, "a@x.io", Operation::Credit, 5)],
            ],
        );
        for b in &original {
            block_on(apply_batch(&store, b, now())).unwrap();
        }
        block_on(apply_batch(
            &store,
            &batch("SPEND", false, &[(1, "a@x.io", Operation::Debit, 40)]),
            now(),
        ))
        .unwrap();
        let first = block_on(apply_batch(&store, &reversal[0], now())).unwrap();
        assert_eq!(first.outcomes[0].error_code, Some(ErrorCode::CannotReverse));
        let second = block_on(apply_batch(&store, &reversal[1], now())).unwrap();
        assert_eq!(second.tally.applied, 1);
        assert_eq!(live_balance(&store, "a@x.io"), 10);
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
