//! The native points format (README, "The points format"): its columns, its row type and its
//! validation.
//!
//! ```text
//! email,mobile,customer_id,amount,operation,expire_in_days
//! alice@example.com,,,100,CR,30
//! ,+33612345678,,40,DR,
//! ```
//!
//! Its length: under 500 lines of code; its tests follow it.

use crate::csv_input::{Cells, Header};
use crate::identifier::{CustomerRef, Mobiles};
use crate::outcome::{ErrorCode, RowError, RowOutcome};
use crate::text_encoding::TextEncoding;
use csv::ByteRecord;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Points credited or debited by one row may not exceed this.
pub const MAX_AMOUNT: i64 = 10_000_000;
/// Points may be valid for at most this many days (about 100 years).
pub const MAX_EXPIRY_DAYS: u32 = 36_500;

/// Which points import a file is: with or without an expiry column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointsKind {
    Points,
    PointsWithExpiry,
}

impl PointsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PointsKind::Points => "points",
            PointsKind::PointsWithExpiry => "points_with_expiry",
        }
    }

    /// The sample file merchants download to fill in.
    pub fn template(self) -> &'static str {
        match self {
            PointsKind::Points => {
                "email,mobile,customer_id,amount,operation\n\
                 alice@example.com,,,100,CR\n\
                 ,+33612345678,,25,DR\n\
                 ,,C-1042,50,\n"
            }
            PointsKind::PointsWithExpiry => {
                "email,mobile,customer_id,amount,operation,expire_in_days\n\
                 alice@example.com,,,100,CR,30\n\
                 ,+33612345678,,25,DR,\n\
                 ,,C-1042,50,,7\n"
            }
        }
    }
}

impl std::str::FromStr for PointsKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "points" => Ok(PointsKind::Points),
            "points_with_expiry" => Ok(PointsKind::PointsWithExpiry),
            other => Err(format!(
                "'{other}' is not an import kind: use points or points_with_expiry"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    #[serde(rename = "CR")]
    Credit,
    #[serde(rename = "DR")]
    Debit,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Credit => "CR",
            Operation::Debit => "DR",
        })
    }
}

/// A header that cannot be imported: the whole file is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("unknown column '{0}': a points file has the columns email, mobile, customer_id (or lead_id), amount (or points, coins), operation{1}")]
    UnknownColumn(String, &'static str),
    #[error("missing column '{0}'")]
    MissingColumn(&'static str),
    #[error("missing identifier column: a points file needs at least one of email, mobile or customer_id")]
    MissingIdentifierColumn,
    #[error("column '{0}' appears more than once")]
    DuplicateColumn(String),
    #[error("columns '{0}' and '{1}' are the same column (both give the {column}): keep one", column = canonical(.0))]
    SameColumnTwice(String, String),
    #[error("column {0} has no name")]
    UnnamedColumn(usize),
}

/// Where each known column sits in a file's header.
#[derive(Debug, Clone)]
pub struct PointsColumns {
    pub kind: PointsKind,
    email: Option<usize>,
    mobile: Option<usize>,
    customer_id: Option<usize>,
    amount: usize,
    operation: Option<usize>,
    expire_in_days: Option<usize>,
    /// The names the file gives the amount and customer id columns, for
    /// row errors (`points`, `lead_id`...).
    amount_column: String,
    customer_id_column: String,
    width: usize,
    /// The file's encoding, for a cell it has no character for.
    encoding: TextEncoding,
}

/// A row that passed validation, ready to be batched and applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsRow {
    pub row: u64,
    pub customer: CustomerRef,
    pub operation: Operation,
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_in_days: Option<u32>,
    /// The row sets the balance to `amount` (a Smile.io migration in set
    /// balance mode) instead of moving `amount` points.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub set_balance: bool,
    /// The row's other identifiers (after `customer`, which names the
    /// wallet): if one of them has a wallet of its own, the row names two
    /// customers and fails rather than guess which is meant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<(String, CustomerRef)>,
}

/// One line of the preview: the row as read, and whether it is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRow {
    pub row: u64,
    pub identifier: String,
    pub amount: String,
    pub operation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    /// `valid`, or the row's error message.
    pub result: String,
    /// For a file whose rows are not points (a membership file): its first
    /// [`PREVIEW_CELLS`] cells as read, the fields above left empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<String>,
}

/// The column a header name stands for: `points` and `coins` are other
/// platforms' names for `amount`, `lead_id` for `customer_id`.
fn canonical(name: &str) -> &str {
    match name {
        "points" | "coins" => "amount",
        "lead_id" => "customer_id",
        other => other,
    }
}

/// The first column of a header that the native format reads and a
/// Smile.io file does not have (it has its email and points, and columns
/// of its own that no import reads): read as Smile.io, that column would be
/// dropped although the merchant filled it.
pub fn native_column_besides_smiles(header: &Header) -> Option<&str> {
    const NATIVE: [&str; 5] = [
        "mobile",
        "customer_id",
        "amount",
        "operation",
        "expire_in_days",
    ];
    header
        .names
        .iter()
        .map(String::as_str)
        .find(|name| *name != "points" && NATIVE.contains(&canonical(name)))
}

impl PointsColumns {
    /// Maps a header to the format. `kind` is the kind asked for at upload;
    /// `None` infers it (an `expire_in_days` column means with expiry).
    pub fn from_header(header: &Header, kind: Option<PointsKind>) -> Result<Self, HeaderError> {
        // The first name given to each column (a header may have any number).
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (i, name) in header.names.iter().enumerate() {
            if name.is_empty() {
                return Err(HeaderError::UnnamedColumn(i + 1));
            }
            let column = canonical(name);
            if let Some(first) = seen.get(column) {
                return Err(if first == name {
                    HeaderError::DuplicateColumn(name.clone())
                } else {
                    HeaderError::SameColumnTwice(first.to_string(), name.clone())
                });
            }
            seen.insert(column, name);
        }
        // Where a column is, by its canonical name.
        let position = |column: &str| header.names.iter().position(|n| canonical(n) == column);
        let kind = kind.unwrap_or(if position("expire_in_days").is_some() {
            PointsKind::PointsWithExpiry
        } else {
            PointsKind::Points
        });
        let known: &[&str] = match kind {
            PointsKind::Points => &["email", "mobile", "customer_id", "amount", "operation"],
            PointsKind::PointsWithExpiry => &[
                "email",
                "mobile",
                "customer_id",
                "amount",
                "operation",
                "expire_in_days",
            ],
        };
        if let Some(unknown) = header.names.iter().find(|n| !known.contains(&canonical(n))) {
            let hint = match kind {
                PointsKind::Points if unknown == "expire_in_days" => {
                    " (expire_in_days belongs to imports with expiry)"
                }
                PointsKind::Points => "",
                PointsKind::PointsWithExpiry => ", expire_in_days",
            };
            return Err(HeaderError::UnknownColumn(unknown.clone(), hint));
        }
        let email = position("email");
        let mobile = position("mobile");
        let customer_id = position("customer_id");
        if email.is_none() && mobile.is_none() && customer_id.is_none() {
            return Err(HeaderError::MissingIdentifierColumn);
        }
        let amount = position("amount").ok_or(HeaderError::MissingColumn("amount"))?;
        let expire_in_days = position("expire_in_days");
        if kind == PointsKind::PointsWithExpiry && expire_in_days.is_none() {
            return Err(HeaderError::MissingColumn("expire_in_days"));
        }
        Ok(PointsColumns {
            kind,
            email,
            mobile,
            customer_id,
            amount,
            operation: position("operation"),
            expire_in_days,
            amount_column: header.names[amount].clone(),
            customer_id_column: customer_id
                .map_or_else(|| "customer_id".to_owned(), |i| header.names[i].clone()),
            width: header.names.len(),
            encoding: header.encoding,
        })
    }

    /// The file's name for its amount column (`amount`, `points`, `coins`).
    pub fn amount_column(&self) -> &str {
        &self.amount_column
    }

    /// Validates one record; every error names the row, the column and the value.
    pub fn validate(
        &self,
        row: u64,
        record: &ByteRecord,
        mobiles: &Mobiles,
    ) -> Result<PointsRow, RowError> {
        let cells = Cells::new(row, record, self.encoding);
        cells.within(self.width)?;
        let mut identifiers = self.identifiers(&cells, mobiles)?.into_iter().flatten();
        let (_, customer) = identifiers.next().ok_or_else(|| {
            RowError::new(
                row,
                None,
                ErrorCode::MissingIdentifier,
                "the row has no email, mobile or customer_id",
            )
        })?;
        let operation = match cells.text(self.operation, "operation")? {
            "" => Operation::Credit,
            op if op.eq_ignore_ascii_case("CR") => Operation::Credit,
            op if op.eq_ignore_ascii_case("DR") => Operation::Debit,
            other => {
                return Err(RowError::new(
                    row,
                    Some("operation"),
                    ErrorCode::InvalidOperation,
                    format!("'{other}' is not an operation: use CR (credit), DR (debit) or leave it blank for a credit"),
                ))
            }
        };
        let column = self.amount_column.as_str();
        let amount = parse_amount(row, column, cells.text(Some(self.amount), column)?)?;
        let expire_in_days = match self.expire_in_days {
            None => None,
            Some(i) => parse_expiry(row, cells.text(Some(i), "expire_in_days")?, operation)?,
        };
        Ok(PointsRow {
            row,
            customer,
            operation,
            amount,
            expire_in_days,
            set_balance: false,
            also: identifiers
                .map(|(name, other)| (name.to_owned(), other))
                .collect(),
        })
    }

    /// The row's identifiers, in the order email, mobile, customer id, each
    /// with its column's name; every one given must be valid. (An array,
    /// not a `Vec`: one allocation fewer a row.)
    fn identifiers(
        &self,
        cells: &Cells,
        mobiles: &Mobiles,
    ) -> Result<[Option<(&str, CustomerRef)>; 3], RowError> {
        let columns = [
            ("email", self.email),
            ("mobile", self.mobile),
            (self.customer_id_column.as_str(), self.customer_id),
        ];
        let mut found = [None, None, None];
        for (i, (name, index)) in columns.into_iter().enumerate() {
            let value = cells.text(index, name)?;
            if value.is_empty() {
                continue;
            }
            let parsed = match i {
                0 => CustomerRef::email(value),
                1 => mobiles.read(value),
                _ => CustomerRef::customer_id(value),
            };
            let customer =
                parsed.map_err(|e| RowError::new(cells.row, Some(name), e.code, e.message))?;
            found[i] = Some((name, customer));
        }
        Ok(found)
    }

    /// What the preview shows of a row, valid or not.
    pub fn preview(
        &self,
        row: u64,
        record: &ByteRecord,
        result: &Result<PointsRow, RowOutcome>,
    ) -> PreviewRow {
        let cells = Cells::new(row, record, self.encoding);
        let lossy = |i: Option<usize>| {
            i.map(|i| cells.raw(i).trim().to_owned())
                .unwrap_or_default()
        };
        let identifier = match result {
            Ok(valid) => valid.customer.value().to_owned(),
            Err(_) => [self.email, self.mobile, self.customer_id]
                .into_iter()
                .map(lossy)
                .find(|v| !v.is_empty())
                .unwrap_or_default(),
        };
        PreviewRow {
            row,
            identifier,
            amount: lossy(Some(self.amount)),
            operation: match result {
                Ok(valid) => valid.operation.to_string(),
                Err(_) => lossy(self.operation),
            },
            expiry: self.expire_in_days.map(|i| lossy(Some(i))),
            result: PreviewRow::result_of(result),
            cells: Vec::new(),
        }
    }
}

/// The most characters of a cell the preview shows: it is kept on the job
/// (a DynamoDB item, 400 KB at most) for fifty rows.
const PREVIEW_CELL_CHARS: usize = 100;

/// The cells a membership file's preview shows of a row, its first ones:
/// fifty rows of them take at most 50 × 6 × 101 characters (about 136 KB
/// serialised in four-byte characters, with the rows' results), well within
/// the job's 400 KB item.
pub const PREVIEW_CELLS: usize = 6;

impl PreviewRow {
    /// The row with every cell cut to what the preview shows.
    pub fn shortened(self) -> Self {
        let cut = |cell: String| match cell.char_indices().nth(PREVIEW_CELL_CHARS) {
            None => cell,
            Some((at, _)) => format!("{}…", &cell[..at]),
        };
        PreviewRow {
            identifier: cut(self.identifier),
            amount: cut(self.amount),
            operation: cut(self.operation),
            expiry: self.expiry.map(cut),
            cells: self.cells.into_iter().map(cut).collect(),
            ..self
        }
    }

    /// A row of a file whose rows are not points (a membership file): its
    /// first cells as read, and its result.
    pub fn of_cells<R>(row: u64, record: &ByteRecord, result: &Result<R, RowOutcome>) -> Self {
        let cells = record
            .iter()
            .take(PREVIEW_CELLS)
            .map(|cell| String::from_utf8_lossy(cell).trim().to_owned())
            .collect();
        PreviewRow {
            row,
            identifier: String::new(),
            amount: String::new(),
            operation: String::new(),
            expiry: None,
            result: PreviewRow::result_of(result),
            cells,
        }
    }

    /// `valid`, or why the row is not imported.
    pub fn result_of<R>(result: &Result<R, RowOutcome>) -> String {
        match result {
            Ok(_) => "valid".to_owned(),
            Err(e) => e.error_message.clone().unwrap_or_default(),
        }
    }
}

fn parse_amount(row: u64, column: &str, value: &str) -> Result<i64, RowError> {
    let err = |code, message: String| Err(RowError::new(row, Some(column), code, message));
    if value.is_empty() {
        return err(ErrorCode::MissingAmount, "the amount is empty".into());
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return err(
            ErrorCode::InvalidAmount,
            format!("'{value}' is not a whole number of points: use digits only, with no sign, separators, decimals or exponent"),
        );
    }
    match value.parse::<i64>() {
        Ok(0) => err(
            ErrorCode::InvalidAmount,
            format!("'{value}' is zero: the amount must be at least 1"),
        ),
        Ok(n) if n <= MAX_AMOUNT => Ok(n),
        _ => err(
            ErrorCode::AmountTooLarge,
            format!("'{value}' is more than the {MAX_AMOUNT} points one row may move"),
        ),
    }
}

fn parse_expiry(row: u64, value: &str, operation: Operation) -> Result<Option<u32>, RowError> {
    let err =
        |code, message: String| Err(RowError::new(row, Some("expire_in_days"), code, message));
    if value.is_empty() {
        return match operation {
            // A debit takes points away; it has nothing to expire.
            Operation::Debit => Ok(None),
            Operation::Credit => err(
                ErrorCode::MissingExpiry,
                "a credit in an import with expiry needs the number of days its points stay valid"
                    .into(),
            ),
        };
    }
    match value.parse::<u32>() {
        Ok(days)
            if value.bytes().all(|b| b.is_ascii_digit())
                && (1..=MAX_EXPIRY_DAYS).contains(&days) =>
        {
            Ok(match operation {
                Operation::Credit => Some(days),
                Operation::Debit => None,
            })
        }
        _ => err(
            ErrorCode::InvalidExpiry,
            format!("'{value}' is not a number of days between 1 and {MAX_EXPIRY_DAYS}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_input::CsvInput;

    fn validate_all(text: &str) -> Result<Vec<Result<PointsRow, RowError>>, HeaderError> {
        let mut input = CsvInput::open(text.as_bytes()).unwrap();
        let columns = PointsColumns::from_header(input.header(), None)?;
        let mut out = Vec::new();
        while let Some(row) = input.next_row().unwrap() {
            out.push(columns.validate(
                row,
                input.record(),
                &Mobiles::new(crate::identifier::MobileCountry::new("FR")),
            ));
        }
        Ok(out)
    }

    fn codes(text: &str) -> Vec<Option<ErrorCode>> {
        validate_all(text)
            .unwrap()
            .into_iter()
            .map(|r| r.err().map(|e| e.code))
            .collect()
    }

    /// The message of each row's error, reading the file's bytes.
    fn messages(bytes: &[u8]) -> Vec<String> {
        let mut input = CsvInput::open(bytes).unwrap();
        let columns = PointsColumns::from_header(input.header(), None).unwrap();
        let mut out = Vec::new();
        while let Some(row) = input.next_row().unwrap() {
            if let Err(e) = columns.validate(
                row,
                input.record(),
                &Mobiles::new(crate::identifier::MobileCountry::new("FR")),
            ) {
                out.push(e.message);
            }
        }
        out
    }

    #[test]
    fn a_byte_with_no_character_is_named_with_the_encoding_the_file_was_read_as() {
        // Windows-1252 (an é as 0xE9 early on), with 0x81, which it lacks.
        let file = b"customer_id,amount
Caf\xE9,4
n\x81x,5\n";
        let got = messages(file);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("byte 0x81 (character 2 of the cell, after 'n')"),
            "{}",
            got[0]
        );
        assert!(got[0].contains("Windows-1252"), "{}", got[0]);
        // UTF-8 from its start, then past its first 64 KiB a stray byte,
        // and two bytes of one character split across two cells (the
        // row's text is UTF-8, neither cell's is).
        for (last_row, named) in [
            (
                &b"Caf\xE9,4\n"[..],
                "byte 0xE9 (character 4 of the cell, after 'Caf')",
            ),
            (
                b"Caf\xC3,\xA94\n",
                "byte 0xC3 (character 4 of the cell, after 'Caf')",
            ),
        ] {
            let mut file = b"customer_id,amount\n".to_vec();
            for n in 0..10_000 {
                file.extend_from_slice(format!("C-{n:05},1\n").as_bytes());
            }
            file.extend_from_slice(last_row);
            let got = messages(&file);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].contains(named), "{}", got[0]);
            assert!(got[0].contains("not UTF-8"), "{}", got[0]);
        }
    }

    #[test]
    fn points_and_coins_are_amounts_and_lead_id_is_a_customer_id() {
        for amount in ["points", "Coins", "AMOUNT"] {
            let file = format!("lead_id,{amount}\nL-7,12\n");
            let rows = validate_all(&file).unwrap();
            let row = rows[0].as_ref().unwrap();
            assert_eq!(row.customer, CustomerRef::CustomerId("L-7".into()));
            assert_eq!(row.amount, 12);
        }
        // Errors name the column as the file does.
        let rows = validate_all("lead_id,coins\nL-7,1.5\n\"L\n8\",2\n").unwrap();
        let amount = rows[0].as_ref().unwrap_err();
        assert_eq!(amount.column.as_deref(), Some("coins"));
        assert!(
            amount.to_string().contains("column coins: '1.5'"),
            "{amount}"
        );
        let id = rows[1].as_ref().unwrap_err();
        assert_eq!(id.column.as_deref(), Some("lead_id"));
    }

    #[test]
    fn a_column_and_its_synonym_together_reject_the_file() {
        let err = validate_all("email,amount,points\na@x.io,1,2\n").unwrap_err();
        assert_eq!(
            err,
            HeaderError::SameColumnTwice("amount".into(), "points".into())
        );
        assert!(err.to_string().contains("both give the amount"));
        let err = validate_all("customer_id,lead_id,amount\n").unwrap_err();
        assert_eq!(
            err,
            HeaderError::SameColumnTwice("customer_id".into(), "lead_id".into())
        );
    }

    #[test]
    fn every_identifier_given_must_be_valid_and_the_others_travel_with_the_row() {
        let rows = validate_all(
            "email,mobile,customer_id,amount\na@x.io,06 12 34 56 78,C-1,5\na@x.io,3.3612E+10,,5\n",
        )
        .unwrap();
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.customer, CustomerRef::Email("a@x.io".into()));
        assert_eq!(
            first.also,
            [
                (
                    "mobile".to_owned(),
                    CustomerRef::Mobile("+33612345678".into())
                ),
                (
                    "customer_id".to_owned(),
                    CustomerRef::CustomerId("C-1".into())
                )
            ]
        );
        assert_eq!(rows[1].as_ref().unwrap_err().code, ErrorCode::InvalidMobile);
    }

    #[test]
    fn a_blank_operation_is_a_credit() {
        let rows = validate_all("email,amount,operation\nA@x.io,10,\nb@x.io,5,dr\n").unwrap();
        let rows: Vec<PointsRow> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(rows[0].operation, Operation::Credit);
        assert_eq!(rows[0].customer, CustomerRef::Email("a@x.io".into()));
        assert_eq!(rows[1].operation, Operation::Debit);
    }

    #[test]
    fn amounts_are_never_guessed() {
        let file = "email,amount\na@x.io,\"1,000\"\na@x.io,10.5\na@x.io,1e3\na@x.io,-5\na@x.io,0\na@x.io,99999999999\na@x.io,\na@x.io, 42 \n";
        assert_eq!(
            codes(file),
            [
                Some(ErrorCode::InvalidAmount),
                Some(ErrorCode::InvalidAmount),
                Some(ErrorCode::InvalidAmount),
                Some(ErrorCode::InvalidAmount),
                Some(ErrorCode::InvalidAmount),
                Some(ErrorCode::AmountTooLarge),
                Some(ErrorCode::MissingAmount),
                None,
            ]
        );
    }

    #[test]
    fn an_amount_error_names_row_column_and_value() {
        let rows = validate_all("email,amount\na@x.io,\"1,000\"\n").unwrap();
        let message = rows[0].as_ref().unwrap_err().to_string();
        assert!(
            message.starts_with("row 1, column amount: '1,000' is not a whole number"),
            "{message}"
        );
    }

    #[test]
    fn the_first_present_identifier_wins() {
        let rows =
            validate_all("email,mobile,customer_id,amount\n,0612345678,C1,1\n,,C1,1\n").unwrap();
        assert_eq!(
            rows[0].as_ref().unwrap().customer.to_string(),
            "mobile:+33612345678"
        );
        assert_eq!(
            rows[1].as_ref().unwrap().customer.to_string(),
            "customer_id:C1"
        );
    }

    #[test]
    fn a_row_without_identifier_fails() {
        assert_eq!(
            codes("email,mobile,amount\n,,10\n"),
            [Some(ErrorCode::MissingIdentifier)]
        );
    }

    #[test]
    fn a_bad_operation_fails() {
        assert_eq!(
            codes("email,amount,operation\na@x.io,10,credit\n"),
            [Some(ErrorCode::InvalidOperation)]
        );
    }

    #[test]
    fn the_expiry_column_selects_the_kind_and_is_required_on_credits() {
        let text = "email,amount,operation,expire_in_days\na@x.io,10,CR,7\na@x.io,10,CR,\na@x.io,3,DR,\na@x.io,3,CR,0\n";
        let rows = validate_all(text).unwrap();
        assert_eq!(rows[0].as_ref().unwrap().expire_in_days, Some(7));
        assert_eq!(rows[1].as_ref().unwrap_err().code, ErrorCode::MissingExpiry);
        assert_eq!(rows[2].as_ref().unwrap().expire_in_days, None);
        assert_eq!(rows[3].as_ref().unwrap_err().code, ErrorCode::InvalidExpiry);
    }

    #[test]
    fn unknown_and_missing_columns_reject_the_header() {
        assert_eq!(
            validate_all("email,amount,colour\n").unwrap_err(),
            HeaderError::UnknownColumn("colour".into(), "")
        );
        assert_eq!(
            validate_all("email,operation\n").unwrap_err(),
            HeaderError::MissingColumn("amount")
        );
        assert_eq!(
            validate_all("amount\n").unwrap_err(),
            HeaderError::MissingIdentifierColumn
        );
    }

    #[test]
    fn an_expiry_column_in_a_points_import_is_unknown() {
        let input = CsvInput::open(&b"email,amount,expire_in_days\n"[..]).unwrap();
        let err = PointsColumns::from_header(input.header(), Some(PointsKind::Points)).unwrap_err();
        assert!(err.to_string().contains("'expire_in_days'"), "{err}");
    }

    #[test]
    fn trailing_empty_fields_are_ignored_but_extra_values_are_not() {
        assert_eq!(
            codes("email,amount\na@x.io,1,,\na@x.io,1,7\n"),
            [None, Some(ErrorCode::TooManyFields)]
        );
    }
}
