//! Wallets (`wallets` table, `pk = <tenant>#<customer>`): a customer's
//! points, as one `WALLET` item (its lots packed: `lots`) and one
//! `ENTRY#<job>#<row>` ledger entry per applied row. This is the ledger
//! store of `shared::apply`: a batch's decisions are committed in one
//! transaction (the batch still open, the rows' page, each wallet at the
//! version it was read at, each entry new), and a refused commit says why.

use super::request::{check_item, put_item, Cancellation, CONDITION_FAILED, CONFLICT};
use super::{from_item, item, n, s, to_item, Item, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::apply::{Account, Commit, Committed, LedgerStore, Page, WalletWrite};
use shared::identifier::CustomerRef;
use shared::ledger::{LedgerEntry, Lot, Wallet};
use shared::outcome::RowOutcome;
use std::collections::HashMap;
use std::future::Future;

/// A dry run's wallets and ledger entries are kept this long.
const SCRATCH_TTL_DAYS: i64 = 30;

const CALL: &str = "dynamodb:TransactWriteItems";

#[derive(Serialize, Deserialize)]
pub(super) struct WalletItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) tenant_id: String,
    pub(super) customer: CustomerRef,
    pub(super) permanent: i64,
    /// One binary attribute: the item's size stays bounded (`lots`).
    #[serde(with = "super::lots")]
    pub(super) lots: Vec<Lot>,
    pub(super) version: u64,
    /// The balance when last written (expiry may have lowered it since).
    pub(super) balance: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) created_by: Option<String>,
    pub(super) updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) ttl: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct EntryItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    entry: LedgerEntry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
}

/// A customer's wallet with its history, for display.
#[derive(Debug, Clone, Serialize)]
pub struct WalletView {
    pub wallet: Option<Wallet>,
    pub entries: Vec<LedgerEntry>,
}

/// What each item of a commit's transaction stands for, to read its
/// cancellation reason.
enum Part {
    Batch,
    Page,
    Wallet(usize),
    Entry,
}

/// A ledger entry's key in its wallet's partition.
fn entry_sk(job_id: &str, row: u64) -> String {
    format!("ENTRY#{job_id}#{row:010}")
}

fn wallet_pk(account: &Account) -> String {
    match &account.dry_run_of {
        None => format!("{}#{}", account.tenant_id, account.customer),
        Some(job) => format!("{}#dryrun:{job}#{}", account.tenant_id, account.customer),
    }
}

/// A dry run's wallets and entries expire; live ones are kept.
fn scratch_ttl(account: &Account) -> Option<i64> {
    account
        .dry_run_of
        .as_ref()
        .map(|_| super::epoch_in_days(SCRATCH_TTL_DAYS))
}

fn wallet_of(call: &'static str, item: Item) -> Result<Wallet, AwsError> {
    let w: WalletItem = from_item(call, item)?;
    Ok(Wallet {
        customer: w.customer,
        permanent: w.permanent,
        lots: w.lots,
        version: w.version,
        created_by: w.created_by,
    })
}

impl Tables {
    /// A wallet and its ledger entries (live wallets only).
    pub async fn wallet_view(
        &self,
        tenant_id: &str,
        customer: &CustomerRef,
    ) -> Result<WalletView, AwsError> {
        let call = "dynamodb:Query";
        let pk = wallet_pk(&Account {
            tenant_id: tenant_id.to_owned(),
            customer: customer.clone(),
            dry_run_of: None,
        });
        let mut view = WalletView {
            wallet: None,
            entries: Vec::new(),
        };
        let mut items = self
            .client
            .query()
            .table_name(&self.wallets)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&pk))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.try_next().await.map_err(|e| AwsError::sdk(call, e))? {
            let is_wallet = matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk == "WALLET");
            if is_wallet {
                view.wallet = Some(wallet_of(call, item)?);
            } else {
                view.entries.push(from_item::<EntryItem>(call, item)?.entry);
            }
        }
        view.entries.sort_by(|a, b| {
            (a.applied_at, &a.job_id, a.row).cmp(&(b.applied_at, &b.job_id, b.row))
        });
        Ok(view)
    }

    /// The stored wallets among `pks`, by `pk`.
    async fn stored_wallets(&self, pks: Vec<String>) -> Result<HashMap<String, Wallet>, AwsError> {
        let call = "dynamodb:BatchGetItem";
        let keys = pks
            .into_iter()
            .map(|pk| item([("pk", s(pk)), ("sk", s("WALLET"))]))
            .collect();
        let mut found = HashMap::new();
        for item in self.batch_get(&self.wallets, keys).await? {
            let pk = match item.get("pk") {
                Some(AttributeValue::S(pk)) => pk.clone(),
                _ => return Err(AwsError::new(call, "a wallet item without its pk")),
            };
            found.insert(pk, wallet_of(call, item)?);
        }
        Ok(found)
    }

    /// The condition that an item is still at the version read (0: that it
    /// does not exist yet), and the value it names.
    pub(super) fn version_condition(read_version: u64) -> (&'static str, Option<AttributeValue>) {
        if read_version == 0 {
            ("attribute_not_exists(pk)", None)
        } else {
            ("version = :v", Some(n(read_version)))
        }
    }

    /// A commit's transaction, and what each of its items stands for.
    fn commit_items(&self, c: &Commit) -> Result<(Vec<Part>, Vec<TransactWriteItem>), AwsError> {
        let now = Utc::now();
        let mut parts = vec![Part::Batch];
        let mut items = vec![self.batch_open(&c.page.tenant_id, &c.page.job_id, c.page.batch)?];
        // A commit of debits given back ahead only has no outcome to record.
        if !c.rows.is_empty() {
            parts.push(Part::Page);
            items.push(self.page_update(c)?);
        }
        for (i, w) in c.wallets.iter().enumerate() {
            items.push(self.wallet_write(w, now)?);
            parts.push(Part::Wallet(i));
        }
        let accounts: HashMap<&CustomerRef, &Account> = c
            .wallets
            .iter()
            .map(|w| (&w.account.customer, &w.account))
            .collect();
        for entry in c.entries() {
            let account = accounts.get(&entry.customer).ok_or_else(|| {
                AwsError::new(
                    CALL,
                    format!("row {}: its wallet is not in the commit", entry.row),
                )
            })?;
            let item = EntryItem {
                pk: wallet_pk(account),
                sk: entry_sk(&entry.job_id, entry.row),
                entry: entry.clone(),
                ttl: scratch_ttl(account),
            };
            let condition = Some("attribute_not_exists(pk)");
            items.push(put_item(
                &self.wallets,
                to_item(CALL, &item)?,
                condition,
                None,
            )?);
            parts.push(Part::Entry);
        }
        Ok((parts, items))
    }

    /// The transaction item writing a wallet (or, if its rows changed
    /// nothing, only checking it) if it is still at the version read.
    fn wallet_write(
        &self,
        w: &WalletWrite,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem, AwsError> {
        let pk = wallet_pk(&w.account);
        let (condition, version) = Self::version_condition(w.read_version);
        let values = version.map(|v| item([(":v", v)]));
        match &w.after {
            Some((wallet, balance)) => {
                let item = WalletItem {
                    pk,
                    sk: "WALLET".to_owned(),
                    tenant_id: w.account.tenant_id.clone(),
                    customer: wallet.customer.clone(),
                    permanent: wallet.permanent,
                    lots: wallet.lots.clone(),
                    version: wallet.version,
                    balance: *balance,
                    created_by: wallet.created_by.clone(),
                    updated_at: now,
                    ttl: scratch_ttl(&w.account),
                };
                put_item(
                    &self.wallets,
                    to_item(CALL, &item)?,
                    Some(condition),
                    values,
                )
            }
            None => {
                let key = item([("pk", s(&pk)), ("sk", s("WALLET"))]);
                check_item(&self.wallets, key, condition, values)
            }
        }
    }
}

/// What a refused commit means, item by item; `None` for a reason it does
/// not expect.
fn refusal(c: &Commit, parts: &[Part], refused: &Cancellation) -> Option<Committed> {
    let mut decided_elsewhere = false;
    let mut closed = false;
    let mut stale = Vec::new();
    for (part, code) in parts.iter().zip(refused.codes()) {
        match (part, code) {
            (_, "None") => {}
            (Part::Batch, CONDITION_FAILED) => closed = true,
            (Part::Page | Part::Entry, CONDITION_FAILED) => decided_elsewhere = true,
            (Part::Wallet(i), CONDITION_FAILED) => stale.push(c.wallets[*i].account.clone()),
            // Another request was writing the same item: read everything
            // again before deciding again.
            (_, CONFLICT) => {
                decided_elsewhere = true;
                stale.extend(c.wallets.iter().map(|w| w.account.clone()));
            }
            _ => return None,
        }
    }
    Some(Committed::Refused {
        decided_elsewhere,
        stale,
        closed,
    })
}

impl LedgerStore for Tables {
    type Error = AwsError;

    // Handed on as they are (no `async` wrapper): the processor's futures
    // stay as shallow as they were.
    fn decided(
        &self,
        job_id: &str,
        rows: &[u64],
    ) -> impl Future<Output = Result<Vec<RowOutcome>, AwsError>> + Send {
        self.row_outcomes(job_id, rows)
    }

    async fn wallet(&self, account: &Account) -> Result<Wallet, AwsError> {
        let mut found = self.wallets(std::slice::from_ref(account)).await?;
        found
            .pop()
            .ok_or_else(|| AwsError::new("dynamodb:BatchGetItem", "no wallet read"))
    }

    fn seal(
        &self,
        job_id: &str,
        outcome: &RowOutcome,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send {
        self.seal_outcome(job_id, outcome)
    }

    async fn wallets(&self, accounts: &[Account]) -> Result<Vec<Wallet>, AwsError> {
        let live_pk = |a: &Account| {
            wallet_pk(&Account {
                dry_run_of: None,
                ..a.clone()
            })
        };
        let mut stored = self
            .stored_wallets(accounts.iter().map(wallet_pk).collect())
            .await?;
        // A dry run's copy never written starts from the live wallet.
        let unwritten: Vec<String> = accounts
            .iter()
            .filter(|a| a.dry_run_of.is_some() && !stored.contains_key(&wallet_pk(a)))
            .map(live_pk)
            .collect();
        let mut live = self.stored_wallets(unwritten).await?;
        Ok(accounts
            .iter()
            .map(|a| match stored.remove(&wallet_pk(a)) {
                Some(wallet) => wallet,
                None => match a.dry_run_of.as_ref().and_then(|_| live.remove(&live_pk(a))) {
                    Some(wallet) => Wallet {
                        version: 0,
                        ..wallet
                    },
                    None => Wallet::empty(a.customer.clone()),
                },
            })
            .collect())
    }

    async fn entries(
        &self,
        job_id: &str,
        rows: &[(Account, u64)],
    ) -> Result<Vec<LedgerEntry>, AwsError> {
        let keys = rows
            .iter()
            .map(|(account, row)| {
                item([
                    ("pk", s(wallet_pk(account))),
                    ("sk", s(entry_sk(job_id, *row))),
                ])
            })
            .collect();
        self.batch_get(&self.wallets, keys)
            .await?
            .into_iter()
            .map(|found| Ok(from_item::<EntryItem>("dynamodb:BatchGetItem", found)?.entry))
            .collect()
    }

    async fn job_entries(
        &self,
        account: &Account,
        job_id: &str,
    ) -> Result<Vec<LedgerEntry>, AwsError> {
        let call = "dynamodb:Query";
        let mut items = self
            .client
            .query()
            .table_name(&self.wallets)
            .key_condition_expression("pk = :pk AND begins_with(sk, :entries)")
            .expression_attribute_values(":pk", s(wallet_pk(account)))
            .expression_attribute_values(":entries", s(format!("ENTRY#{job_id}#")))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        // Keys sort by row: `entry_sk` pads it.
        let mut found = Vec::new();
        while let Some(item) = items.try_next().await.map_err(|e| AwsError::sdk(call, e))? {
            found.push(from_item::<EntryItem>(call, item)?.entry);
        }
        Ok(found)
    }

    fn page_outcomes(
        &self,
        pages: &[Page],
    ) -> impl Future<Output = Result<Vec<RowOutcome>, AwsError>> + Send {
        self.pages_outcomes(pages)
    }

    async fn commit(&self, c: &Commit) -> Result<Committed, AwsError> {
        let (parts, items) = self.commit_items(c)?;
        match self.transact(items).await? {
            Ok(()) => Ok(Committed::Done),
            Err(refused) => match refusal(c, &parts, &refused) {
                Some(committed) => Ok(committed),
                None => Err(refused.into_error()),
            },
        }
    }
}
