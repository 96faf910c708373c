//! The processed file: every input row once, in input order, with its
//! original cells and four more columns saying what happened to it: status,
//! error code, error message, and the wallet's balance after the row (points
//! files) or the card the row created or changed (membership files, so a
//! generated card code can be read there).
//!
//! Cells that a spreadsheet would run as a formula (starting with `=`, `+`,
//! `-`, `@`, a tab or a carriage return) are prefixed with `'`, as OWASP's
//! "CSV injection" guidance advises, so opening the file never runs anything.

use crate::csv_input::{CsvInput, FileError};
use crate::outcome::{ErrorCode, RowOutcome, Tally};
use std::borrow::Cow;
use std::io::{Read, Write};
use std::iter::Peekable;

pub const OUTCOME_COLUMNS: [&str; 3] = ["status", "error_code", "error_message"];

/// The last column of a processed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    BalanceAfter,
    CardCode,
}

impl Detail {
    pub fn of(kind: Option<crate::kind::ImportKind>) -> Self {
        match kind.and_then(crate::kind::ImportKind::scope) {
            Some(_) => Detail::CardCode,
            None => Detail::BalanceAfter,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Detail::BalanceAfter => "balance_after",
            Detail::CardCode => "applied_card_code",
        }
    }

    fn value(self, outcome: &RowOutcome) -> Vec<u8> {
        match self {
            Detail::BalanceAfter => outcome
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
}

/// Merges the original file with its outcomes (sorted by row) into `out`,
/// returning the totals. A row without an outcome is reported as not processed.
pub fn write_processed<R, W, E, I>(
    input: R,
    outcomes: I,
    out: W,
    detail: Detail,
) -> Result<Tally, ProcessedError<E>>
where
    R: Read,
    W: Write,
    I: Iterator<Item = Result<RowOutcome, E>>,
{
    let mut input = CsvInput::open(input)?;
    let header = input.header().clone();
    let width = header.names.len();
    let mut writer = csv::WriterBuilder::new()
        .delimiter(header.delimiter)
        .flexible(true)
        .from_writer(out);
    let mut names: Vec<Cow<[u8]>> = header.raw.iter().take(width).map(neutralise).collect();
    names.extend(OUTCOME_COLUMNS.iter().map(|c| Cow::Borrowed(c.as_bytes())));
    names.push(Cow::Borrowed(detail.name().as_bytes()));
    writer.write_record(&names)?;

    let mut outcomes: Peekable<I> = outcomes.peekable();
    let mut tally = Tally::default();
    while let Some(row) = input.next_row()? {
        let outcome = next_outcome(&mut outcomes, row)?;
        tally.add(&outcome);
        let record = input.record();
        let mut cells: Vec<Cow<[u8]>> = Vec::with_capacity(width + OUTCOME_COLUMNS.len() + 1);
        cells.extend((0..width).map(|i| neutralise(record.get(i).unwrap_or_default())));
        cells.push(Cow::Borrowed(outcome.status.as_str().as_bytes()));
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
        cells.push(Cow::Owned(detail.value(&outcome)));
        writer.write_record(&cells)?;
    }
    writer.flush().map_err(csv::Error::from)?;
    Ok(tally)
}

fn next_outcome<E, I: Iterator<Item = Result<RowOutcome, E>>>(
    outcomes: &mut Peekable<I>,
    row: u64,
) -> Result<RowOutcome, ProcessedError<E>> {
    // Outcomes for rows the file no longer has are skipped, not shifted.
    while let Some(Ok(o)) = outcomes.peek() {
        if o.row >= row {
            break;
        }
        outcomes.next();
    }
    match outcomes.peek() {
        Some(Ok(o)) if o.row == row => {}
        Some(Err(_)) => {
            return match outcomes.next() {
                Some(Err(e)) => Err(ProcessedError::Outcomes(e)),
                _ => unreachable!("peeked an error"),
            }
        }
        _ => {
            return Ok(RowOutcome::failed(
                row,
                ErrorCode::NotProcessed,
                format!("row {row}: no outcome was recorded for this row; it was not applied"),
            ))
        }
    }
    match outcomes.next() {
        Some(Ok(o)) => Ok(o),
        _ => unreachable!("peeked an outcome"),
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
