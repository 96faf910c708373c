//! Wallets in plain memory: the reference behaviour the DynamoDB store
//! (`loyalty_aws::tables`) must match.

use super::lock;
use crate::apply::{Account, Commit, Committed, LedgerStore, Page, MAX_COMMIT_ITEMS};
use crate::ledger::{LedgerEntry, Wallet};
use crate::outcome::RowOutcome;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryLedger {
    pub wallets: Mutex<HashMap<Account, Wallet>>,
    pub entries: Mutex<Vec<LedgerEntry>>,
    /// Outcomes recorded one by one.
    pub outcomes: Mutex<HashMap<(String, u64), RowOutcome>>,
    pub pages: Mutex<HashMap<Page, Vec<RowOutcome>>>,
    /// Batches closed without being applied: `(job, batch)`.
    pub closed: Mutex<Vec<(String, u64)>>,
    /// The rows of each commit done, in order.
    pub commits: Mutex<Vec<usize>>,
}

impl LedgerStore for MemoryLedger {
    type Error = Infallible;

    async fn decided(&self, job_id: &str, rows: &[u64]) -> Result<Vec<RowOutcome>, Infallible> {
        Ok(super::decided(&self.outcomes, job_id, rows))
    }

    async fn wallet(&self, account: &Account) -> Result<Wallet, Infallible> {
        let wallets = lock(&self.wallets);
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
        let mut outcomes = lock(&self.outcomes);
        let key = (job_id.to_owned(), outcome.row);
        if outcomes.contains_key(&key) {
            return Ok(false);
        }
        outcomes.insert(key, outcome.clone());
        Ok(true)
    }

    async fn wallets(&self, accounts: &[Account]) -> Result<Vec<Wallet>, Infallible> {
        let mut found = Vec::with_capacity(accounts.len());
        for account in accounts {
            found.push(self.wallet(account).await?);
        }
        Ok(found)
    }

    async fn page_outcomes(&self, pages: &[Page]) -> Result<Vec<RowOutcome>, Infallible> {
        let stored = lock(&self.pages);
        Ok(pages
            .iter()
            .flat_map(|p| stored.get(p).cloned().unwrap_or_default())
            .collect())
    }

    async fn entries(
        &self,
        job_id: &str,
        rows: &[(Account, u64)],
    ) -> Result<Vec<LedgerEntry>, Infallible> {
        let entries = lock(&self.entries);
        Ok(rows
            .iter()
            .filter_map(|(account, row)| {
                entries
                    .iter()
                    .find(|e| e.job_id == job_id && e.row == *row && e.customer == account.customer)
            })
            .cloned()
            .collect())
    }

    async fn job_entries(
        &self,
        account: &Account,
        job_id: &str,
    ) -> Result<Vec<LedgerEntry>, Infallible> {
        let mut found: Vec<LedgerEntry> = lock(&self.entries)
            .iter()
            .filter(|e| e.job_id == job_id && e.customer == account.customer)
            .cloned()
            .collect();
        found.sort_by_key(|e| e.row);
        Ok(found)
    }

    async fn commit(&self, c: &Commit) -> Result<Committed, Infallible> {
        assert!(
            c.items() <= MAX_COMMIT_ITEMS,
            "{} items in one transaction",
            c.items()
        );
        let mut pages = lock(&self.pages);
        let mut wallets = lock(&self.wallets);
        let closed = lock(&self.closed).contains(&(c.page.job_id.clone(), c.page.batch));
        let page = pages.entry(c.page.clone()).or_default();
        let mut entries = lock(&self.entries);
        let decided_elsewhere = c
            .rows
            .iter()
            .any(|r| page.iter().any(|o| o.row == r.outcome.row))
            || c.entries().any(|new| {
                entries.iter().any(|e| {
                    (&e.job_id, e.row, &e.customer) == (&new.job_id, new.row, &new.customer)
                })
            });
        let stale: Vec<Account> = c
            .wallets
            .iter()
            .filter(|w| wallets.get(&w.account).map_or(0, |s| s.version) != w.read_version)
            .map(|w| w.account.clone())
            .collect();
        if closed || decided_elsewhere || !stale.is_empty() {
            return Ok(Committed::Refused {
                decided_elsewhere,
                stale,
                closed,
            });
        }
        for w in &c.wallets {
            if let Some((wallet, _)) = &w.after {
                wallets.insert(w.account.clone(), wallet.clone());
            }
        }
        entries.extend(c.entries().cloned());
        for row in &c.rows {
            page.push(row.outcome.clone());
        }
        lock(&self.commits).push(c.rows.len());
        Ok(Committed::Done)
    }
}
