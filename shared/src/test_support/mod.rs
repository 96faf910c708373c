//! What the domain's unit tests and the pipeline tests share: the stores in
//! plain memory that the DynamoDB adapters must behave like, the sample
//! membership programs, and readers that turn a few CSV lines into rows.
//!
//! Compiled for this crate's tests, and for other crates' tests through
//! the `test-support` feature: never into a function.

mod cards;
mod ledger;

pub use cards::MemoryCards;
pub use ledger::MemoryLedger;

use crate::csv_input::CsvInput;
use crate::membership::cards::{CardColumns, CardRow};
use crate::membership::programs::{Memberships, Program, Tier};
use crate::membership::tier_changes::{TierChangeColumns, TierChangeRow};
use crate::outcome::RowOutcome;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

/// The sample tenant's membership programs, as `loyalty-local tenant
/// memberships` registers them (universe `demoshop`).
pub const SAMPLE_MEMBERSHIPS: &str = include_str!("../../../infra/local/sample/memberships.json");

/// [`SAMPLE_MEMBERSHIPS`], read.
pub fn sample_memberships() -> Memberships {
    serde_json::from_str(SAMPLE_MEMBERSHIPS).expect("the sample membership programs")
}

/// One program (1, "Club") in universe `u` with tiers Bronze (1, rank 1)
/// and Gold (4, rank 3), and no custom fields.
pub fn club(auto_card_codes: bool) -> Memberships {
    Memberships {
        universe: "u".into(),
        auto_card_codes,
        programs: vec![Program {
            id_program: 1,
            name: "Club".into(),
            tiers: vec![
                Tier {
                    id_tier: 1,
                    name: "Bronze".into(),
                    rank: 1,
                },
                Tier {
                    id_tier: 4,
                    name: "Gold".into(),
                    rank: 3,
                },
            ],
        }],
        custom_fields: Vec::new(),
    }
}

/// The card rows of a card code file with this header line and body.
pub fn card_rows(header: &str, body: &str, config: &Memberships) -> Vec<CardRow> {
    let file = format!("{header}\n{body}");
    let mut input = CsvInput::open(file.as_bytes()).expect("a card code file");
    let columns = CardColumns::from_header(input.header(), config).expect("its header");
    let mut rows = Vec::new();
    while let Some(row) = input.next_row().expect("a row") {
        rows.push(columns.read(row, input.record()).expect("a valid row"));
    }
    rows
}

/// The rows of a tier change file with every column and this body.
pub fn tier_rows(body: &str) -> Vec<TierChangeRow> {
    let file = format!("card_code;tier_name;context;value_date;last_downgrade_check\n{body}");
    let mut input = CsvInput::open(file.as_bytes()).expect("a tier change file");
    let columns = TierChangeColumns::from_header(input.header()).expect("its header");
    let mut rows = Vec::new();
    while let Some(row) = input.next_row().expect("a row") {
        rows.push(columns.read(row, input.record()).expect("a valid row"));
    }
    rows
}

/// The outcomes recorded for these rows of a job.
fn decided(
    outcomes: &Mutex<HashMap<(String, u64), RowOutcome>>,
    job_id: &str,
    rows: &[u64],
) -> Vec<RowOutcome> {
    let outcomes = lock(outcomes);
    rows.iter()
        .filter_map(|r| outcomes.get(&(job_id.to_owned(), *r)).cloned())
        .collect()
}

/// A lock of a store's map, whatever a panicking test left in it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a future of the in-memory stores, which never wait: polling once
/// completes it.
pub fn block_on<F: Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the memory stores never wait"),
    }
}
