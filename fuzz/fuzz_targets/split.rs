//! Any bytes, read as a file of each import kind: the reader and the row
//! validation never panic, every row comes out once (in a batch or with its
//! outcome), every message stays bounded, and the processed file written from
//! the outcomes has every row once with no cell a spreadsheet would run as a
//! formula.
//!
//! The first byte picks the import kind; the rest is the file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::batch::{Batch, BatchRow};
use shared::csv_input::CsvInput;
use shared::kind::ImportKind;
use shared::membership::programs::{Memberships, Program, Tier};
use shared::outcome::RowOutcome;
use shared::points::PreviewRow;
use shared::processed::{write_processed, Detail};
use shared::smile::Mode;
use shared::split::{self, SplitError, SplitRequest, SplitSink, SplitSummary};
use std::collections::BTreeMap;
use std::convert::Infallible;

/// The most a row's or a file's message may take (outcomes and jobs are
/// DynamoDB items; messages are cut to 500 characters).
const MESSAGE_LIMIT: usize = 2_000;

#[derive(Default)]
struct Rows {
    /// Each row's outcome: applied for batched rows, as given for the rest.
    outcomes: BTreeMap<u64, RowOutcome>,
    previews: usize,
}

impl Rows {
    fn record(&mut self, outcome: RowOutcome) {
        if let Some(message) = &outcome.error_message {
            assert!(
                message.len() <= MESSAGE_LIMIT,
                "a {}-byte message",
                message.len()
            );
        }
        let row = outcome.row;
        assert!(
            self.outcomes.insert(row, outcome).is_none(),
            "row {row} came out twice"
        );
    }
}

impl<R: BatchRow> SplitSink<R> for Rows {
    type Error = Infallible;
    fn preview(&mut self, _kind: ImportKind, rows: &[PreviewRow]) -> Result<(), Infallible> {
        self.previews += 1;
        assert_eq!(self.previews, 1, "the preview is sent once");
        assert!(rows.len() <= 100, "a preview of {} rows", rows.len());
        Ok(())
    }
    fn failed(&mut self, outcomes: &[RowOutcome]) -> Result<(), Infallible> {
        outcomes.iter().cloned().for_each(|o| self.record(o));
        Ok(())
    }
    fn batch(&mut self, batch: Batch<R>) -> Result<(), Infallible> {
        assert!(!batch.rows.is_empty() && batch.rows.len() <= 7);
        for row in &batch.rows {
            self.record(RowOutcome::applied(row.row(), 1, 1));
        }
        Ok(())
    }
}

fn memberships() -> Memberships {
    let tier = |id_tier, name: &str, rank| Tier {
        id_tier,
        name: name.into(),
        rank,
    };
    Memberships {
        universe: "fuzz".into(),
        auto_card_codes: true,
        programs: vec![Program {
            id_program: 1,
            name: "Club".into(),
            tiers: vec![tier(1, "Bronze", 1), tier(2, "Silver", 2)],
        }],
        custom_fields: vec!["shoe_size".into()],
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let kind = match selector % 6 {
        0 => None,
        1 => Some(ImportKind::Points),
        2 => Some(ImportKind::PointsWithExpiry),
        3 => Some(ImportKind::Smile),
        4 => Some(ImportKind::CardCode),
        _ => Some(ImportKind::TierChange),
    };
    let request = SplitRequest {
        tenant_id: "fuzz".into(),
        job_id: "J".into(),
        kind,
        reason: "fuzz".into(),
        dry_run: false,
        smile_mode: if selector & 0x80 == 0 {
            Mode::Add
        } else {
            Mode::SetBalance
        },
        default_country: "FR".into(),
        rows_per_batch: 7,
        shards: 3,
        // Checkpoints often: their flushes must lose no row either.
        checkpoint_rows: 5,
        reverts: None,
    };
    let mut rows = Rows::default();
    let result: Result<SplitSummary, SplitError<Infallible>> = match kind {
        Some(ImportKind::CardCode) => split::split_cards(file, &memberships(), &request, &mut rows),
        Some(ImportKind::TierChange) => split::split_tier_changes(file, &request, &mut rows),
        _ => split::split(file, &request, &mut rows),
    };
    let summary = match result {
        Ok(summary) => summary,
        Err(SplitError::Rejected(why)) => {
            assert!(why.len() <= MESSAGE_LIMIT, "a {}-byte rejection", why.len());
            assert!(rows.outcomes.is_empty(), "a rejected file let rows through");
            return;
        }
        Err(SplitError::Read(why)) => {
            assert!(
                why.len() <= MESSAGE_LIMIT,
                "a {}-byte read error",
                why.len()
            );
            return;
        }
        Err(SplitError::Sink(never)) => match never {},
    };
    // Every row once, numbered 1 to the total.
    let numbers: Vec<u64> = rows.outcomes.keys().copied().collect();
    assert_eq!(numbers, (1..=summary.total_rows).collect::<Vec<_>>());

    let detail = Detail::of(kind.or(Some(summary.kind)), false);
    let mut out = Vec::new();
    let outcomes = rows.outcomes.into_values().map(Ok::<_, Infallible>);
    let tally = write_processed(file, outcomes, &mut out, detail).expect("the processed file");
    assert_eq!(
        tally.applied + tally.failed + tally.skipped,
        summary.total_rows
    );

    let delimiter = CsvInput::open(file)
        .expect("read once already")
        .header()
        .delimiter;
    let mut processed = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(&out[..]);
    let mut lines = 0u64;
    for record in processed.byte_records() {
        let record = record.expect("the processed file is CSV");
        for cell in record.iter() {
            assert!(
                !matches!(
                    cell.first(),
                    Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
                ),
                "a formula cell: {:?}",
                String::from_utf8_lossy(cell)
            );
        }
        lines += 1;
    }
    assert_eq!(lines, summary.total_rows + 1, "the header and every row");
});
