//! Hostile files through the splitter's reading and validation and the
//! processed file's writer: none may panic, grow without bound, or lose the
//! rows around the bad one; what is refused says so in a bounded message.

use super::tests::{request, Collect};
use super::{split, SplitError};
use crate::outcome::{ErrorCode, RowOutcome};
use crate::points::PointsRow;
use crate::processed::{write_processed, Detail};
use std::convert::Infallible;

/// The most a message about one row or one file may take: a row's outcome
/// and a rejected job are DynamoDB items (400 KB at most) and email lines.
const MESSAGE_LIMIT: usize = 2_000;

fn batched(sink: &Collect<PointsRow>) -> Vec<u64> {
    sink.batches
        .iter()
        .flat_map(|b| b.rows.iter().map(|r| r.row))
        .collect()
}

fn run(file: &[u8]) -> (Result<u64, String>, Collect<PointsRow>) {
    let mut sink = Collect::default();
    let result = match split(file, &request(), &mut sink) {
        Ok(summary) => Ok(summary.total_rows),
        Err(SplitError::Rejected(why)) => Err(why),
        Err(other) => Err(format!("{other:?}")),
    };
    (result, sink)
}

fn rejected(file: &[u8]) -> String {
    let (result, sink) = run(file);
    assert!(sink.batches.is_empty() && sink.failed.is_empty());
    let why = result.expect_err("the file is rejected");
    assert!(why.len() <= MESSAGE_LIMIT, "a {}-byte message", why.len());
    why
}

#[test]
fn a_ten_megabyte_field_fails_its_row_only() {
    let mut file = b"email,amount\na@x.io,5\n".to_vec();
    file.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    file.extend(b"@x.io,7\nb@x.io,9\n");
    let (result, sink) = run(&file);
    assert_eq!(result, Ok(3));
    assert_eq!(batched(&sink), [1, 3]);
    assert_eq!(sink.failed.len(), 1);
    let failed = &sink.failed[0];
    assert_eq!(
        (failed.row, failed.error_code),
        (2, Some(ErrorCode::InvalidEmail))
    );
    let message = failed.error_message.as_deref().unwrap_or_default();
    assert!(
        message.len() <= MESSAGE_LIMIT,
        "a {}-byte message",
        message.len()
    );
    // The preview, kept on the job, shows the start of the cell.
    let shown = &sink.preview[1];
    assert!(shown.identifier.len() <= 200 && shown.result.len() <= MESSAGE_LIMIT);
    assert!(shown.identifier.starts_with("xxxx"));
}

#[test]
fn a_million_columns_reject_the_file_with_a_short_message() {
    let mut file = b"email,amount".to_vec();
    for n in 0..1_000_000 {
        file.extend(format!(",c{n}").as_bytes());
    }
    file.extend(b"\na@x.io,5\n");
    let why = rejected(&file);
    assert!(why.contains("c0"), "{why}");
}

#[test]
fn nul_bytes_fail_their_rows_and_the_rest_apply() {
    let file = b"email,amount\na@x.io,5\nb\0@x.io,5\nc@x.io,5\0\nd@x.io,6\n";
    let (result, sink) = run(file);
    assert_eq!(result, Ok(4));
    assert_eq!(batched(&sink), [1, 4]);
    let codes: Vec<_> = sink.failed.iter().map(|o| (o.row, o.error_code)).collect();
    assert_eq!(
        codes,
        [
            (2, Some(ErrorCode::InvalidEmail)),
            (3, Some(ErrorCode::InvalidAmount))
        ]
    );
}

#[test]
fn invalid_utf8_in_the_header_rejects_the_file_naming_the_column() {
    let why = rejected(b"em\xffail,amount\na@x.io,5\n");
    assert!(why.to_lowercase().contains("column"), "{why}");
}

#[test]
fn a_zip_file_renamed_csv_is_rejected() {
    // A zip archive's start: local file header, then compressed bytes.
    let mut file = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    file.extend((0..=255u8).cycle().take(70_000));
    rejected(&file);
}

#[test]
fn an_empty_file_is_rejected_and_a_header_alone_has_no_rows() {
    rejected(b"");
    let (result, sink) = run(b"email,amount\n");
    assert_eq!(result, Ok(0));
    assert!(sink.batches.is_empty() && sink.failed.is_empty());
}

#[test]
fn formula_payloads_come_out_neutralised_in_the_processed_file() {
    let cells = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"];
    let mut file = String::from("customer_id,amount\n");
    for cell in cells {
        file.push_str(&format!("\"{cell}\",5\n"));
    }
    let outcomes = (1..=cells.len() as u64).map(|row| {
        Ok::<_, Infallible>(RowOutcome::failed(
            row,
            ErrorCode::InvalidCustomerId,
            "refused".to_owned(),
        ))
    });
    let mut out = Vec::new();
    write_processed(file.as_bytes(), outcomes, &mut out, Detail::of(None, false)).unwrap();
    let text = String::from_utf8(out).unwrap();
    for line in text.lines().skip(1) {
        let first = line.trim_start_matches('"');
        assert!(
            first.starts_with('\''),
            "a cell a spreadsheet would run: {line:?}"
        );
    }
}

/// A card code or tier change file split as the splitter does, with the
/// sample programs (custom field `store`).
fn run_membership(file: &[u8], cards: bool) -> (u64, Vec<RowOutcome>, Vec<Vec<u64>>, Vec<usize>) {
    use crate::batch::Batch;
    use crate::membership::programs::tests::sample;
    fn out<R: crate::batch::BatchRow>(
        summary: Result<super::SplitSummary, SplitError<Infallible>>,
        sink: Collect<R>,
    ) -> (u64, Vec<RowOutcome>, Vec<Vec<u64>>, Vec<usize>) {
        let summary = summary.expect("the file is split");
        let bytes = |b: &Batch<R>| serde_json::to_vec(b).unwrap().len();
        (
            summary.total_rows,
            sink.failed.clone(),
            sink.batches
                .iter()
                .map(|b| b.rows.iter().map(|r| r.row()).collect())
                .collect(),
            sink.batches.iter().map(bytes).collect(),
        )
    }
    if cards {
        let mut sink = Collect::default();
        let summary = super::split_cards(file, &sample(), &request(), &mut sink);
        out(summary, sink)
    } else {
        let mut sink = Collect::default();
        let summary = super::split_tier_changes(file, &request(), &mut sink);
        out(summary, sink)
    }
}

const CARD_HEADER: &str =
    "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier;store\n";

#[test]
fn a_card_code_or_customer_key_too_long_for_a_key_fails_its_row_only() {
    let file = format!(
        "{CARD_HEADER}A-1;ann@x.io;1;;;;;\n{};bob@x.io;1;;;;;\nC-3;{};1;;;;;\nD-4;dan@x.io;1;;;;;\n",
        "C".repeat(2_100),
        "k".repeat(2_100)
    );
    let (rows, failed, batches, _) = run_membership(file.as_bytes(), true);
    assert_eq!(rows, 4);
    let failed: Vec<(u64, Option<ErrorCode>)> =
        failed.iter().map(|o| (o.row, o.error_code)).collect();
    assert_eq!(
        failed,
        [
            (2, Some(ErrorCode::ValueTooLong)),
            (3, Some(ErrorCode::ValueTooLong))
        ]
    );
    assert_eq!(batches.concat(), [1, 4]);
}

#[test]
fn an_open_quote_swallowing_the_file_into_a_custom_field_fails_one_row_and_no_message_outgrows_the_queue(
) {
    // The quote opened in row 2's store is never closed: the rest of the
    // file, 300 KB of it, is that one cell.
    let mut file = format!("{CARD_HEADER}A-1;ann@x.io;1;;;;;Lyon\nB-2;bob@x.io;1;;;;;\"Paris\n");
    for n in 3..=6_000 {
        file.push_str(&format!("C-{n};c{n}@x.io;1;;;;;Nice\n"));
    }
    let (rows, failed, batches, bytes) = run_membership(file.as_bytes(), true);
    assert_eq!(rows, 2);
    assert_eq!(batches.concat(), [1]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error_code, Some(ErrorCode::ValueTooLong));
    let message = failed[0].error_message.as_deref().unwrap_or_default();
    assert!(
        message.contains("column store") || message.contains("store"),
        "{message}"
    );
    assert!(message.len() <= MESSAGE_LIMIT);
    assert!(bytes.iter().all(|&b| b < 256 * 1024), "{bytes:?}");
}

#[test]
fn a_tier_change_context_or_name_too_long_fails_its_row_only() {
    let file = format!(
        "card_code;tier_name;context;value_date;last_downgrade_check\n\
         A-1;Gold;{};2026-01-10;\n\
         B-2;{};;2026-01-10;\n\
         {};Gold;;2026-01-10;\n\
         D-4;Gold;fine;2026-01-10;\n",
        "c".repeat(501),
        "T".repeat(129),
        "C".repeat(129)
    );
    let (rows, failed, batches, _) = run_membership(file.as_bytes(), false);
    assert_eq!(rows, 4);
    let codes: Vec<(u64, Option<ErrorCode>)> =
        failed.iter().map(|o| (o.row, o.error_code)).collect();
    assert_eq!(
        codes,
        [
            (1, Some(ErrorCode::ValueTooLong)),
            (2, Some(ErrorCode::ValueTooLong)),
            (3, Some(ErrorCode::ValueTooLong))
        ]
    );
    assert_eq!(batches.concat(), [4]);
}
