//! The processed file: every input row once, in input order, with its
//! original cells and four more columns saying what happened to it: status,
//! error code, error message, and the wallet's balance after the row (points
//! files) or the card the row created or changed (membership files, so a
//! generated card code can be read there). A dry run's rows that would be
//! applied say `would_apply`, so the file itself says nothing was. A row
//! with more values than the header has columns keeps them all: those past
//! the header come after the four columns.
//!
//! Cells that a spreadsheet would run as a formula (starting with `=`, `+`,
//! `-`, `@`, a tab or a carriage return) are prefixed with `'`, as OWASP's
//! "CSV injection" guidance advises, so opening the file never runs anything.
//!
//! Its length: about 310 lines of code; its tests follow it.

use crate::csv_input::{CsvInput, FileError};
use crate::digest::ErrorDigest;
use crate::outcome::{ErrorCode, RowOutcome, RowStatus, Tally};
use crate::split::Flow;
use std::borrow::Cow;
use std::io::{Read, Write};

pub const OUTCOME_COLUMNS: [&str; 3] = ["status", "error_code", "error_message"];

/// The last column of a processed file, and what its rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    BalanceAfter,
    /// A dry run's points file: the balance a row would leave, and
    /// `would_apply` where a real run would say `applied`.
    DryRunBalance,
    CardCode,
}

impl Detail {
    pub fn of(kind: Option<crate::kind::ImportKind>, dry_run: bool) -> Self {
        match kind.and_then(crate::kind::ImportKind::scope) {
            Some(_) => Detail::CardCode,
            None if dry_run => Detail::DryRunBalance,
            None => Detail::BalanceAfter,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Detail::BalanceAfter | Detail::DryRunBalance => "balance_after",
            Detail::CardCode => "applied_card_code",
        }
    }

    fn status(self, status: RowStatus) -> &'static str {
        match (self, status) {
            (Detail::DryRunBalance, RowStatus::Applied) => "would_apply",
            (_, status) => status.as_str(),
        }
    }

    fn value(self, outcome: &RowOutcome) -> Vec<u8> {
        match self {
            Detail::BalanceAfter | Detail::DryRunBalance => outcome
                .balance_after
                .map(|b| b.to_string())
                .unwrap_or_default()
                .into_bytes(),
            Detail::CardCode => {
                neutralise(outcome.card_code.as_deref().unwrap_or("").as_bytes()).into_owned()
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessedError<E> {
    #[error("reading the original file failed: {0}")]
    Input(#[from] FileError),
    #[error("writing the processed file failed: {0}")]
    Output(#[from] csv::Error),
    #[error("reading row outcomes failed: {0}")]
    Outcomes(E),
    #[error("keeping the processed file's progress failed: {0}")]
    Progress(String),
}

/// Merges the original file with its outcomes (sorted by row) into `out`,
/// returning the totals. A row without an outcome is reported as not processed.
pub fn write_processed<R, W, E, I>(
    input: R,
    mut outcomes: I,
    out: W,
    detail: Detail,
) -> Result<Tally, ProcessedError<E>>
where
    R: Read,
    W: Write,
    I: Iterator<Item = Result<RowOutcome, E>>,
{
    let input = CsvInput::open(input)?;
    let mut out = Whole(out);
    match write_processed_from(input, None, &mut outcomes, &mut out, detail, BOUNDARY_ROWS)? {
        Written::Done(tally, _) => Ok(tally),
        Written::Stopped(_) => unreachable!("a whole file is written in one go"),
    }
}

/// Rows written between two [`ProcessedOut::boundary`] calls, unless the
/// caller asks for another number.
pub const BOUNDARY_ROWS: u64 = 1000;

/// Where the writing of a processed file can go on from: every row before
/// `row + 1` is written, and the next starts at `offset` of the original
/// file (as uploaded).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resume {
    pub offset: u64,
    /// Rows written so far.
    pub row: u64,
    /// Their totals.
    pub tally: Tally,
    /// Those not applied, by error code with the first few of each (none
    /// in a checkpoint saved before the digest was kept).
    #[serde(default, skip_serializing_if = "ErrorDigest::is_empty")]
    pub errors: ErrorDigest,
}

/// Where a processed file goes: bytes, and now and then (every so many
/// rows, [`BOUNDARY_ROWS`] by default, each time after a whole row) where the writing
/// stands, with the outcomes being read. The output may keep that as a
/// checkpoint, and says whether to go on.
pub trait ProcessedOut<I>: Write {
    type Error: std::fmt::Display;

    fn boundary(&mut self, at: &Resume, outcomes: &I) -> Result<Flow, Self::Error>;

    /// How a row no outcome was recorded for is reported (the output may
    /// record it too, before the boundary that follows it).
    fn not_processed(&mut self, row: u64) -> Result<RowOutcome, Self::Error> {
        Ok(RowOutcome::not_recorded(row))
    }
}

/// What a call of [`write_processed_from`] got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Every row is written: the file's totals, and its rows not applied
    /// by error code.
    Done(Tally, ErrorDigest),
    /// The output asked to stop: the writing goes on from here.
    Stopped(Resume),
}

/// Any writer, written to in one go.
struct Whole<W>(W);

impl<W: Write> Write for Whole<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write, I> ProcessedOut<I> for Whole<W> {
    type Error = std::convert::Infallible;

    fn boundary(&mut self, _: &Resume, _: &I) -> Result<Flow, Self::Error> {
        Ok(Flow::Go)
    }
}

/// Writes the processed file from its start (`from` is `None`: the header
/// first), or goes on from where an earlier call stopped (`input` then
/// resumed at `from.offset`, `outcomes` reading from at most `from.row`
/// on), until the file is written or `out` asks to stop at a boundary (one
/// every `every` rows).
pub fn write_processed_from<R, O, E, I>(
    mut input: CsvInput<R>,
    from: Option<&Resume>,
    outcomes: &mut I,
    out: &mut O,
    detail: Detail,
    every: u64,
) -> Result<Written, ProcessedError<E>>
where
    R: Read,
    O: ProcessedOut<I>,
    I: Iterator<Item = Result<RowOutcome, E>>,
{
    let header = input.header().clone();
    let width = header.names.len();
    let builder = {
        let mut builder = csv::WriterBuilder::new();
        builder.delimiter(header.delimiter).flexible(true);
        builder
    };
    let mut at = from.cloned().unwrap_or_default();
    let progress = |e: O::Error| ProcessedError::Progress(e.to_string());
    // Rows are formatted into `chunk`, then handed to `out` whole, a
    // boundary's worth at a time.
    let mut chunk = Vec::new();
    if from.is_none() {
        let mut names: Vec<Cow<[u8]>> = header.raw.iter().take(width).map(neutralise).collect();
        names.extend(OUTCOME_COLUMNS.iter().map(|c| Cow::Borrowed(c.as_bytes())));
        names.push(Cow::Borrowed(detail.name().as_bytes()));
        let mut writer = builder.from_writer(chunk);
        writer.write_record(&names)?;
        chunk = writer
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
    }
    let mut peeked = None;
    loop {
        let mut writer = builder.from_writer(chunk);
        let mut ended = true;
        while let Some(row) = input.next_row()? {
            let outcome = match next_outcome(outcomes, &mut peeked, row)? {
                Some(outcome) => outcome,
                None => out.not_processed(row).map_err(progress)?,
            };
            at.tally.add(&outcome);
            at.errors.add(&outcome);
            write_row(&mut writer, input.record(), width, &outcome, detail)?;
            if row % every.max(1) == 0 {
                ended = false;
                break;
            }
        }
        chunk = writer
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        out.write_all(&chunk).map_err(csv::Error::from)?;
        chunk.clear();
        if ended {
            out.flush().map_err(csv::Error::from)?;
            return Ok(Written::Done(at.tally, at.errors));
        }
        at.row = input.row();
        at.offset = input.resume_offset();
        if out.boundary(&at, outcomes).map_err(progress)? == Flow::Stop {
            return Ok(Written::Stopped(at));
        }
    }
}

fn write_row<W: Write>(
    writer: &mut csv::Writer<W>,
    record: &csv::ByteRecord,
    width: usize,
    outcome: &RowOutcome,
    detail: Detail,
) -> Result<(), csv::Error> {
    let mut cells: Vec<Cow<[u8]>> = Vec::with_capacity(width + OUTCOME_COLUMNS.len() + 1);
    cells.extend((0..width).map(|i| neutralise(record.get(i).unwrap_or_default())));
    cells.push(Cow::Borrowed(detail.status(outcome.status).as_bytes()));
    cells.push(Cow::Borrowed(
        outcome
            .error_code
            .map(ErrorCode::as_str)
            .unwrap_or("")
            .as_bytes(),
    ));
    cells.push(
        neutralise(outcome.error_message.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .into(),
    );
    cells.push(Cow::Owned(detail.value(outcome)));
    // Values past the header's last column (a `too_many_fields` row).
    cells.extend((width..record.len()).map(|i| neutralise(record.get(i).unwrap_or_default())));
    writer.write_record(&cells)
}

/// The outcome recorded for `row`, if any. Outcomes come in row order;
/// those of rows the file no longer has are skipped, not shifted, and the
/// first one past `row` is kept in `peeked` for the rows after.
fn next_outcome<E, I: Iterator<Item = Result<RowOutcome, E>>>(
    outcomes: &mut I,
    peeked: &mut Option<RowOutcome>,
    row: u64,
) -> Result<Option<RowOutcome>, ProcessedError<E>> {
    loop {
        let next = match peeked.take() {
            Some(outcome) => outcome,
            None => match outcomes.next() {
                None => return Ok(None),
                Some(Err(e)) => return Err(ProcessedError::Outcomes(e)),
                Some(Ok(outcome)) => outcome,
            },
        };
        if next.row == row {
            return Ok(Some(next));
        }
        if next.row > row {
            *peeked = Some(next);
            return Ok(None);
        }
    }
}

/// Prefixes cells a spreadsheet would treat as a formula with `'`.
///
/// The file is UTF-8: a byte no encoding could read (its row failed with
/// `invalid_encoding`) shows as U+FFFD, the replacement character.
pub fn neutralise(cell: &[u8]) -> Cow<'_, [u8]> {
    let cell = match String::from_utf8_lossy(cell) {
        Cow::Borrowed(_) => cell,
        Cow::Owned(text) => return neutralise(text.as_bytes()).into_owned().into(),
    };
    match cell.first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => {
            let mut safe = Vec::with_capacity(cell.len() + 1);
            safe.push(b'\'');
            safe.extend_from_slice(cell);
            Cow::Owned(safe)
        }
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn processed(file: &str, outcomes: Vec<RowOutcome>) -> (String, Tally) {
        processed_with(file, outcomes, Detail::BalanceAfter)
    }

    fn processed_with(file: &str, outcomes: Vec<RowOutcome>, detail: Detail) -> (String, Tally) {
        let mut out = Vec::new();
        let tally = write_processed(
            file.as_bytes(),
            outcomes.into_iter().map(Ok::<_, Infallible>),
            &mut out,
            detail,
        )
        .unwrap();
        (String::from_utf8(out).unwrap(), tally)
    }

    /// Stops at every boundary and keeps the bytes it was given.
    struct Stopping(Vec<u8>);

    impl Write for Stopping {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<I> ProcessedOut<I> for Stopping {
        type Error = Infallible;

        fn boundary(&mut self, _: &Resume, _: &I) -> Result<Flow, Infallible> {
            Ok(Flow::Stop)
        }
    }

    #[test]
    fn a_file_written_in_many_calls_is_the_file_written_in_one() {
        let mut file = String::from("email;amount\n");
        let mut outcomes = Vec::new();
        for row in 1..=3_500u64 {
            file.push_str(&format!("c{row}@x.io;{row}\n"));
            if row % 7 != 0 {
                outcomes.push(RowOutcome::applied(row, row as i64, row as i64));
            }
        }
        let (whole, tally) = processed(&file, outcomes.clone());
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(file.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        for bytes in [file.as_bytes().to_vec(), utf16] {
            let mut out = Stopping(Vec::new());
            let mut from: Option<Resume> = None;
            let mut calls = 0;
            let done = loop {
                calls += 1;
                let input = CsvInput::open(&bytes[..]).unwrap();
                let input = match &from {
                    Some(at) => CsvInput::resume(
                        &bytes[at.offset as usize..],
                        input.header().clone(),
                        at.offset,
                        at.row,
                    ),
                    None => input,
                };
                let mut rest = outcomes.clone().into_iter().map(Ok::<_, Infallible>);
                match write_processed_from(
                    input,
                    from.as_ref(),
                    &mut rest,
                    &mut out,
                    Detail::BalanceAfter,
                    BOUNDARY_ROWS,
                )
                .unwrap()
                {
                    Written::Done(tally, errors) => break (tally, errors),
                    Written::Stopped(at) => from = Some(at),
                }
            };
            assert_eq!(calls, 4);
            assert_eq!(done.0, tally);
            // The errors found in every call, carried from one to the next.
            let codes = &done.1.codes;
            assert_eq!((codes.len(), codes[0].count), (1, 500));
            let rows: Vec<u64> = codes[0].examples.iter().map(|e| e.row).collect();
            assert_eq!(rows, [7, 14, 21]);
            assert_eq!(String::from_utf8(out.0).unwrap(), whole);
        }
        assert_eq!((tally.applied, tally.failed), (3_000, 500));
    }

    #[test]
    fn a_byte_no_encoding_reads_comes_out_as_the_replacement_character() {
        let mut out = Vec::new();
        write_processed(
            &b"customer_id,amount\nBad\x81Byte,4\n"[..],
            [Ok::<_, Infallible>(RowOutcome::failed(
                1,
                ErrorCode::InvalidEncoding,
                "bad byte",
            ))]
            .into_iter(),
            &mut out,
            Detail::BalanceAfter,
        )
        .unwrap();
        let text = String::from_utf8(out).expect("the processed file is UTF-8");
        assert!(text.contains("Bad\u{FFFD}Byte,4,failed"), "{text}");
    }

    #[test]
    fn a_membership_file_shows_the_card_each_row_created_or_changed() {
        let (text, _) = processed_with(
            "card_code;customer_key\n;a@x.io\nB1;b@x.io\n",
            vec![
                RowOutcome::applied_to_card(1, "2123456789012"),
                RowOutcome::failed(2, ErrorCode::ProgramOnUpdate, "no"),
            ],
            Detail::CardCode,
        );
        assert_eq!(
            text,
            "card_code;customer_key;status;error_code;error_message;applied_card_code\n\
             ;a@x.io;applied;;;2123456789012\n\
             B1;b@x.io;failed;program_on_update;no;\n"
        );
    }

    #[test]
    fn every_row_appears_once_in_order_with_its_outcome() {
        let (text, tally) = processed(
            "email;amount\na@x.io;10\nb@x.io;x\n\nc@x.io;5\n",
            vec![
                RowOutcome::applied(1, 10, 10),
                RowOutcome::failed(
                    2,
                    ErrorCode::InvalidAmount,
                    "row 2, column amount: 'x' is not a whole number",
                ),
                RowOutcome::applied(3, 5, 15),
            ],
        );
        assert_eq!(
            text,
            "email;amount;status;error_code;error_message;balance_after\n\
             a@x.io;10;applied;;;10\n\
             b@x.io;x;failed;invalid_amount;row 2, column amount: 'x' is not a whole number;\n\
             c@x.io;5;applied;;;15\n"
        );
        assert_eq!((tally.applied, tally.failed, tally.credited), (2, 1, 15));
    }

    #[test]
    fn a_dry_run_says_would_apply_and_a_row_keeps_values_past_the_header() {
        let (text, _) = processed_with(
            "email;amount\na@x.io;10\nb@x.io;5;extra;more\n",
            vec![
                RowOutcome::applied(1, 10, 10),
                RowOutcome::failed(2, ErrorCode::TooManyFields, "two values too many"),
            ],
            Detail::DryRunBalance,
        );
        assert_eq!(
            text,
            "email;amount;status;error_code;error_message;balance_after\n\
             a@x.io;10;would_apply;;;10\n\
             b@x.io;5;failed;too_many_fields;two values too many;;extra;more\n"
        );
    }

    #[test]
    fn a_row_without_outcome_is_reported_not_processed() {
        let (text, tally) = processed(
            "email,amount\na@x.io,1\nb@x.io,2\n",
            vec![RowOutcome::applied(2, 2, 2)],
        );
        assert!(text.contains("a@x.io,1,failed,not_processed,"), "{text}");
        assert_eq!(tally.failed, 1);
    }

    #[test]
    fn formula_cells_are_neutralised() {
        let (text, _) = processed(
            "email,amount\n\"=HYPERLINK(\"\"http://x\"\")\",+1\n@SUM(A1),-2\n",
            vec![],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].starts_with("\"'=HYPERLINK(\"\"http://x\"\")\",'+1,"),
            "{text}"
        );
        assert!(lines[2].starts_with("'@SUM(A1),'-2,"), "{text}");
    }

    #[test]
    fn short_rows_are_padded_so_outcomes_stay_in_their_columns() {
        let (text, _) = processed(
            "email,mobile,amount\na@x.io\n",
            vec![RowOutcome::applied(1, 1, 1)],
        );
        assert_eq!(text.lines().nth(1), Some("a@x.io,,,applied,,,1"));
    }
}
