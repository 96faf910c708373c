//! The Smile.io migration format (README, "The Smile.io migration format"): Smile's points import
//! template (`email,points`) and Smile's customer export (an email column
//! and a points balance column among many others, which are ignored).
//!
//! ```text
//! email,points
//! alice@example.com,100
//! bob@example.com,-20
//! ```
//!
//! In the default mode a row's points are added to the wallet: positive
//! points are a credit, negative a debit. In "set balance" mode each wallet
//! is brought to the row's points by one adjustment, so running the same
//! migration again changes nothing.

use crate::csv_input::{Cells, Header};
use crate::identifier::CustomerRef;
use crate::outcome::{ErrorCode, RowError, RowOutcome, RowStatus};
use crate::points::{Operation, PointsRow, PreviewRow, MAX_AMOUNT};
use crate::text_encoding::TextEncoding;
use csv::ByteRecord;

/// How a Smile file's points are applied, chosen at upload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Points added to the balance (negative ones taken away).
    #[default]
    Add,
    /// The balance set to the row's points.
    SetBalance,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "add" => Ok(Mode::Add),
            "set_balance" => Ok(Mode::SetBalance),
            other => Err(format!("'{other}' is not a mode: use add or set_balance")),
        }
    }
}

pub const TEMPLATE: &str = "email,points\nalice@example.com,100\nbob@example.com,-20\n";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmileHeaderError {
    #[error("missing column 'email': a Smile.io file has an email column and a points column")]
    MissingEmail,
    #[error(
        "missing points column: a Smile.io file has 'points' (the import template) or \
         'points balance' (the customer export)"
    )]
    MissingPoints,
    #[error("columns '{0}' and '{1}' both hold points: keep one")]
    TwoPointsColumns(String, String),
    #[error("column '{0}' appears more than once")]
    DuplicateColumn(String),
}

/// Header names that hold the points: the template's `points`, the
/// export's `Points balance` (spaces, underscores and dashes alike).
fn is_points(name: &str) -> bool {
    let squeezed: String = name
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .collect();
    matches!(squeezed.as_str(), "points" | "pointsbalance")
}

/// Where a Smile file's two columns are.
#[derive(Debug, Clone)]
pub struct SmileColumns {
    email: usize,
    points: usize,
    points_column: String,
    width: usize,
    /// The file's encoding, for a cell it has no character for.
    encoding: TextEncoding,
}

impl SmileColumns {
    pub fn from_header(header: &Header) -> Result<Self, SmileHeaderError> {
        let mut email = None;
        let mut points: Option<usize> = None;
        for (i, name) in header.names.iter().enumerate() {
            if name == "email" {
                if email.replace(i).is_some() {
                    return Err(SmileHeaderError::DuplicateColumn(name.clone()));
                }
            } else if is_points(name) {
                if let Some(first) = points.replace(i) {
                    return Err(SmileHeaderError::TwoPointsColumns(
                        header.names[first].clone(),
                        name.clone(),
                    ));
                }
            }
        }
        let email = email.ok_or(SmileHeaderError::MissingEmail)?;
        let points = points.ok_or(SmileHeaderError::MissingPoints)?;
        Ok(SmileColumns {
            email,
            points,
            points_column: header.names[points].clone(),
            width: header.names.len(),
            encoding: header.encoding,
        })
    }

    /// The file's name for its points column.
    pub fn points_column(&self) -> &str {
        &self.points_column
    }

    /// Whether a header is exactly Smile's import template, which the
    /// native format would also read (`points` is an amount there) but
    /// without negative points.
    pub fn is_template(header: &Header) -> bool {
        let mut names: Vec<&str> = header.names.iter().map(String::as_str).collect();
        names.sort_unstable();
        names == ["email", "points"]
    }

    /// The row as a points movement (or, in set balance mode, a target
    /// balance), or why it is not imported.
    pub fn read(&self, row: u64, record: &ByteRecord, mode: Mode) -> Result<PointsRow, RowOutcome> {
        let cells = Cells::new(row, record, self.encoding);
        let fail = |e: RowError| RowOutcome::from(&e);
        cells.within(self.width).map_err(fail)?;
        let email = cells.text(Some(self.email), "email").map_err(fail)?;
        if email.is_empty() {
            return Err(fail(RowError::new(
                row,
                Some("email"),
                ErrorCode::MissingIdentifier,
                "the email is empty",
            )));
        }
        let customer = CustomerRef::email(email)
            .map_err(|e| fail(RowError::new(row, Some("email"), e.code, e.message)))?;
        let column = self.points_column.as_str();
        let value = cells.text(Some(self.points), column).map_err(fail)?;
        let points = parse_points(row, column, value).map_err(fail)?;
        let (operation, amount) = match mode {
            Mode::SetBalance if points < 0 => {
                return Err(fail(RowError::new(
                    row,
                    Some(column),
                    ErrorCode::InvalidAmount,
                    format!("'{value}' is below zero: a balance cannot be negative"),
                )))
            }
            Mode::SetBalance => (Operation::Credit, points),
            Mode::Add if points == 0 => {
                let mut nothing = fail(RowError::new(
                    row,
                    Some(column),
                    ErrorCode::NothingToChange,
                    "0 points: nothing to add",
                ));
                nothing.status = RowStatus::Skipped;
                return Err(nothing);
            }
            Mode::Add if points < 0 => (Operation::Debit, -points),
            Mode::Add => (Operation::Credit, points),
        };
        Ok(PointsRow {
            row,
            customer,
            operation,
            amount,
            expire_in_days: None,
            set_balance: mode == Mode::SetBalance,
            also: Vec::new(),
        })
    }
}

impl SmileColumns {
    /// What the preview shows of a row, valid or not.
    pub fn preview(
        &self,
        row: u64,
        record: &ByteRecord,
        result: &Result<PointsRow, RowOutcome>,
    ) -> PreviewRow {
        let cells = Cells::new(row, record, self.encoding);
        let raw = |i: usize| cells.raw(i).trim().to_owned();
        PreviewRow {
            row,
            identifier: match result {
                Ok(valid) => valid.customer.value().to_owned(),
                Err(_) => raw(self.email),
            },
            amount: raw(self.points),
            operation: match result {
                Ok(valid) if valid.set_balance => "set balance".to_owned(),
                Ok(valid) => valid.operation.to_string(),
                Err(_) => String::new(),
            },
            expiry: None,
            result: PreviewRow::result_of(result),
            cells: Vec::new(),
        }
    }
}

/// A whole number of points, with a sign for a debit.
fn parse_points(row: u64, column: &str, value: &str) -> Result<i64, RowError> {
    let err = |code, message: String| Err(RowError::new(row, Some(column), code, message));
    let digits = value.strip_prefix('-').unwrap_or(value);
    if value.is_empty() {
        return err(ErrorCode::MissingAmount, "the points are empty".into());
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return err(
            ErrorCode::InvalidAmount,
            format!(
                "'{value}' is not a whole number of points: use digits only, with a minus sign \
                 for points taken away, and no separators, decimals or exponent"
            ),
        );
    }
    match value.parse::<i64>() {
        Ok(n) if n.abs() <= MAX_AMOUNT => Ok(n),
        _ => err(
            ErrorCode::AmountTooLarge,
            format!("'{value}' is more than the {MAX_AMOUNT} points one row may move"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_input::CsvInput;

    fn read_all(text: &str, mode: Mode) -> Vec<Result<PointsRow, RowOutcome>> {
        let mut input = CsvInput::open(text.as_bytes()).unwrap();
        let columns = SmileColumns::from_header(input.header()).unwrap();
        let mut out = Vec::new();
        while let Some(row) = input.next_row().unwrap() {
            out.push(columns.read(row, input.record(), mode));
        }
        out
    }

    #[test]
    fn the_template_credits_positive_points_and_debits_negative_ones() {
        let rows = read_all(TEMPLATE, Mode::Add);
        let alice = rows[0].as_ref().unwrap();
        assert_eq!((alice.operation, alice.amount), (Operation::Credit, 100));
        let bob = rows[1].as_ref().unwrap();
        assert_eq!((bob.operation, bob.amount), (Operation::Debit, 20));
        assert!(!bob.set_balance);
    }

    #[test]
    fn the_customer_export_is_read_by_its_email_and_points_balance_columns() {
        let export = "First name,Last name,Email,Points Balance,Referral URL,VIP Tier\n\
                      Ann,Lee,ANN@example.com,250,https://r.example/ann,Gold\n\
                      Bo,Ek,bo@example.com,0,,\n";
        let rows = read_all(export, Mode::SetBalance);
        let ann = rows[0].as_ref().unwrap();
        assert_eq!(ann.customer, CustomerRef::Email("ann@example.com".into()));
        assert_eq!((ann.amount, ann.set_balance), (250, true));
        assert_eq!(rows[1].as_ref().unwrap().amount, 0);
    }

    #[test]
    fn points_are_never_guessed_and_name_their_column() {
        let file = "email,points_balance\na@x.io,\"1,000\"\na@x.io,10.5\na@x.io,+5\na@x.io,--3\na@x.io,99999999999\na@x.io,\n";
        let codes: Vec<_> = read_all(file, Mode::Add)
            .into_iter()
            .map(|r| r.unwrap_err().error_code.unwrap())
            .collect();
        assert_eq!(
            codes,
            [
                ErrorCode::InvalidAmount,
                ErrorCode::InvalidAmount,
                ErrorCode::InvalidAmount,
                ErrorCode::InvalidAmount,
                ErrorCode::AmountTooLarge,
                ErrorCode::MissingAmount
            ]
        );
        let rows = read_all(file, Mode::Add);
        let message = rows[0].as_ref().unwrap_err().error_message.clone().unwrap();
        assert!(
            message.contains("column points_balance: '1,000'"),
            "{message}"
        );
    }

    #[test]
    fn zero_adds_nothing_and_a_balance_cannot_be_negative() {
        let zero = read_all("email,points\na@x.io,0\n", Mode::Add)
            .remove(0)
            .unwrap_err();
        assert_eq!(
            (zero.status, zero.error_code),
            (RowStatus::Skipped, Some(ErrorCode::NothingToChange))
        );
        let below = read_all("email,points\na@x.io,-4\n", Mode::SetBalance)
            .remove(0)
            .unwrap_err();
        assert_eq!(below.error_code, Some(ErrorCode::InvalidAmount));
    }

    #[test]
    fn a_header_without_email_or_points_or_with_two_points_columns_is_refused() {
        let header = |text: &str| {
            let input = CsvInput::open(text.as_bytes()).unwrap();
            SmileColumns::from_header(input.header()).err()
        };
        assert_eq!(
            header("mail,points\n"),
            Some(SmileHeaderError::MissingEmail)
        );
        assert_eq!(
            header("email,balance\n"),
            Some(SmileHeaderError::MissingPoints)
        );
        assert!(matches!(
            header("email,points,points balance\n"),
            Some(SmileHeaderError::TwoPointsColumns(..))
        ));
        assert_eq!(header("Email,Points,Notes\n"), None);
    }

    #[test]
    fn only_the_two_column_template_counts_as_the_template() {
        let is_template = |text: &str| {
            SmileColumns::is_template(CsvInput::open(text.as_bytes()).unwrap().header())
        };
        assert!(is_template("Points,Email\n"));
        assert!(!is_template("email,points,operation\n"));
        assert!(!is_template("email,amount\n"));
    }
}
