//! The DynamoDB tables: where tenants, jobs, wallets, row outcomes and
//! membership cards are kept, behind one [`Tables`] whose methods are spread
//! over one module per concern.
//!
//! Every item kind, by table. The key attributes: `tenant_id` (tenants);
//! `tenant_id` and `sk` (jobs); `pk` and `sk` (wallets, subscriptions);
//! `job_id` and `row` (outcomes).
//!
//! | table         | partition key                         | sort key                          | item                                              | module     |
//! |---------------|---------------------------------------|-----------------------------------|---------------------------------------------------|------------|
//! | tenants       | `tenant_id`                           | —                                 | a tenant, with its membership programs            | `tenants`  |
//! | jobs          | `tenant_id`                           | `JOB#<job>`                       | a job (its place in the `History` index: `listed`) | `jobs`, `history` |
//! | jobs          | `tenant_id`                           | `JOB#<job>#BATCH#<n>`             | a batch done with: applied, or closed without it  | `batches`  |
//! | jobs          | `tenant_id`                           | `CONTENT#<sha256>`                | which job imports a file's content                | `claims`   |
//! | jobs          | `tenant_id`                           | `MEMBERSHIP#<date>#<seq>#<scope>` | a membership file's place in its tenant's order   | `order`    |
//! | jobs          | `tenant_id`                           | `MEMBERSHIP_TURN`                 | the membership file that last took its turn       | `order`    |
//! | jobs          | `tenant_id`                           | `IDEMPOTENCY#<sha256>`            | an API request made with an Idempotency-Key, and its response (24 h TTL) | `idempotency` |
//! | jobs          | `tenant_id`                           | `QUOTA#<minute>`                  | a tenant's API requests in one minute (2 min TTL) | `quota` |
//! | jobs          | `#watchdog`                           | `LAST_SWEEP`                      | what the watchdog's last sweep found and did      | `sweeps`   |
//! | wallets       | `<tenant>#<customer>`                 | `WALLET`                          | a wallet (its lots packed: `lots`)                | `wallets`  |
//! | wallets       | `<tenant>#<customer>`                 | `ENTRY#<job>#<row>`               | a ledger entry                                    | `wallets`  |
//! | wallets       | `<tenant>#review:<job>#<customer>`    | `SEEN`                            | a customer (or `card:<code>`) a review counted, 7-day TTL | `reviews` |
//! | outcomes      | `job_id`                              | `row`, a row number               | a row's outcome, recorded alone                   | `outcomes` |
//! | outcomes      | `job_id`                              | `row`, from `PAGE_BASE` up        | a page of a points batch's outcomes               | `pages`    |
//! | subscriptions | `<tenant>#CARD#<code>`                | `CARD`                            | a membership card                                 | `cards`    |
//! | subscriptions | `<tenant>#CARD#<code>`                | `TIER#<job>#<row>`                | one tier change of a card                         | `cards`    |
//! | subscriptions | `<tenant>#ACTIVE#<program>#<contact>` | `CLAIM`                           | which card is a contact's active one in a program | `cards`    |
//!
//! A dry run keeps its own copies of wallets and their entries under `pk` =
//! `<tenant>#dryrun:<job>#<customer>`, with a TTL.
//!
//! Conditional writes, batch reads and writes, queries and transactions go
//! through `request`.

use crate::settings::Settings;
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

mod batches;
mod cards;
mod claims;
mod history;
mod idempotency;
mod jobs;
mod lots;
mod order;
mod outcomes;
mod pages;
mod quota;
mod request;
mod reversals;
mod reviews;
mod sweeps;
mod tenants;
mod wallets;

pub use idempotency::{
    Claim, StoredResponse, Ticket, IDEMPOTENCY_TTL_HOURS, MAX_STORED_BODY_BYTES,
};
pub use pages::JobOutcomes;
pub use quota::Counted;
pub use reversals::Reverting;
pub use wallets::WalletView;

type Item = HashMap<String, AttributeValue>;

/// Row outcomes, and the markers of a job's batches, are kept this long
/// after the import (the processed file stays).
const OUTCOME_TTL_DAYS: i64 = 90;

#[derive(Clone)]
pub struct Tables {
    client: Client,
    tenants: String,
    jobs: String,
    wallets: String,
    outcomes: String,
    subscriptions: String,
}

impl Tables {
    pub fn new(client: Client, settings: &Settings) -> Self {
        Tables {
            client,
            tenants: settings.tenants_table.clone(),
            jobs: settings.jobs_table.clone(),
            wallets: settings.wallets_table.clone(),
            outcomes: settings.outcomes_table.clone(),
            subscriptions: settings.subscriptions_table.clone(),
        }
    }

    /// The raw DynamoDB client (feature `testing`: the local runner and the
    /// tests only; a function goes through the methods of these modules).
    #[cfg(any(test, feature = "testing"))]
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn to_item<T: Serialize>(call: &'static str, value: &T) -> Result<Item, AwsError> {
    serde_dynamo::to_item(value).map_err(|e| AwsError::new(call, e))
}

fn from_item<T: for<'de> Deserialize<'de>>(call: &'static str, item: Item) -> Result<T, AwsError> {
    serde_dynamo::from_item(item).map_err(|e| AwsError::new(call, e))
}

/// A key (or an item) from its attributes.
fn item<const N: usize>(attributes: [(&str, AttributeValue); N]) -> Item {
    attributes
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

fn epoch_in_days(days: i64) -> i64 {
    (Utc::now() + chrono::Duration::days(days)).timestamp()
}
