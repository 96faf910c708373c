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
    write_processed(file.as_bytes(), outcomes, &mut out, Detail::of(None)).unwrap();
    let text = String::from_utf8(out).unwrap();
    for line in text.lines().skip(1) {
        let first = line.trim_start_matches('"');
        assert!(
            first.starts_with('\''),
            "a cell a spreadsheet would run: {line:?}"
        );
    }
}
