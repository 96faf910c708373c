//! What happened to each row: the vocabulary of the processed file.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The `status` column of the processed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    Applied,
    Skipped,
    Failed,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Applied => "applied",
            RowStatus::Skipped => "skipped",
            RowStatus::Failed => "failed",
        }
    }
}

/// The stable `error_code` of a row that was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MissingIdentifier,
    InvalidEmail,
    InvalidMobile,
    InvalidCustomerId,
    MissingAmount,
    InvalidAmount,
    AmountTooLarge,
    InvalidOperation,
    MissingExpiry,
    InvalidExpiry,
    InvalidEncoding,
    TooManyFields,
    TooFewFields,
    InsufficientBalance,
    NothingToChange,
    ConflictingIdentifiers,
    MissingCardCode,
    MissingProgram,
    UnknownProgram,
    UnknownTier,
    ProgramOnUpdate,
    TierOnUpdate,
    SecondActiveCard,
    UnknownCard,
    MissingTierName,
    MissingValueDate,
    InvalidDate,
    InvalidNumber,
    ValueTooLong,
    ProcessingFailed,
    NotProcessed,
    /// A reversal's row whose original row applied nothing.
    NotApplied,
    /// A reversal's row whose original points were spent or expired since.
    CannotReverse,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 33] = [
        ErrorCode::MissingIdentifier,
        ErrorCode::InvalidEmail,
        ErrorCode::InvalidMobile,
        ErrorCode::InvalidCustomerId,
        ErrorCode::MissingAmount,
        ErrorCode::InvalidAmount,
        ErrorCode::AmountTooLarge,
        ErrorCode::InvalidOperation,
        ErrorCode::MissingExpiry,
        ErrorCode::InvalidExpiry,
        ErrorCode::InvalidEncoding,
        ErrorCode::TooManyFields,
        ErrorCode::TooFewFields,
        ErrorCode::InsufficientBalance,
        ErrorCode::NothingToChange,
        ErrorCode::ConflictingIdentifiers,
        ErrorCode::MissingCardCode,
        ErrorCode::MissingProgram,
        ErrorCode::UnknownProgram,
        ErrorCode::UnknownTier,
        ErrorCode::ProgramOnUpdate,
        ErrorCode::TierOnUpdate,
        ErrorCode::SecondActiveCard,
        ErrorCode::UnknownCard,
        ErrorCode::MissingTierName,
        ErrorCode::MissingValueDate,
        ErrorCode::InvalidDate,
        ErrorCode::InvalidNumber,
        ErrorCode::ValueTooLong,
        ErrorCode::ProcessingFailed,
        ErrorCode::NotProcessed,
        ErrorCode::NotApplied,
        ErrorCode::CannotReverse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingIdentifier => "missing_identifier",
            ErrorCode::InvalidEmail => "invalid_email",
            ErrorCode::InvalidMobile => "invalid_mobile",
            ErrorCode::InvalidCustomerId => "invalid_customer_id",
            ErrorCode::MissingAmount => "missing_amount",
            ErrorCode::InvalidAmount => "invalid_amount",
            ErrorCode::AmountTooLarge => "amount_too_large",
            ErrorCode::InvalidOperation => "invalid_operation",
            ErrorCode::MissingExpiry => "missing_expiry",
            ErrorCode::InvalidExpiry => "invalid_expiry",
            ErrorCode::InvalidEncoding => "invalid_encoding",
            ErrorCode::TooManyFields => "too_many_fields",
            ErrorCode::TooFewFields => "too_few_fields",
            ErrorCode::InsufficientBalance => "insufficient_balance",
            ErrorCode::NothingToChange => "nothing_to_change",
            ErrorCode::ConflictingIdentifiers => "conflicting_identifiers",
            ErrorCode::MissingCardCode => "missing_card_code",
            ErrorCode::MissingProgram => "missing_program",
            ErrorCode::UnknownProgram => "unknown_program",
            ErrorCode::UnknownTier => "unknown_tier",
            ErrorCode::ProgramOnUpdate => "program_on_update",
            ErrorCode::TierOnUpdate => "tier_on_update",
            ErrorCode::SecondActiveCard => "second_active_card",
            ErrorCode::UnknownCard => "unknown_card",
            ErrorCode::MissingTierName => "missing_tier_name",
            ErrorCode::MissingValueDate => "missing_value_date",
            ErrorCode::InvalidDate => "invalid_date",
            ErrorCode::InvalidNumber => "invalid_number",
            ErrorCode::ValueTooLong => "value_too_long",
            ErrorCode::ProcessingFailed => "processing_failed",
            ErrorCode::NotProcessed => "not_processed",
            ErrorCode::NotApplied => "not_applied",
            ErrorCode::CannotReverse => "cannot_reverse",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one row was refused, naming the row, the column and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}{}: {message}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
pub struct RowError {
    pub row: u64,
    pub column: Option<String>,
    pub code: ErrorCode,
    pub message: String,
}

/// The most characters a message about a row or a file keeps: it is stored
/// (a DynamoDB item holds 400 KB at most), emailed and written into the
/// processed file, and it may quote a cell of any length.
pub const MESSAGE_MAX_CHARS: usize = 500;

/// The message, cut to [`MESSAGE_MAX_CHARS`] characters if it is longer,
/// saying so.
pub fn bounded(message: String) -> String {
    match message.char_indices().nth(MESSAGE_MAX_CHARS) {
        None => message,
        Some((cut, _)) => format!(
            "{}… (cut: the message was {} bytes)",
            &message[..cut],
            message.len()
        ),
    }
}

impl RowError {
    pub fn new(
        row: u64,
        column: Option<&str>,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Self {
        RowError {
            row,
            column: column.map(str::to_owned),
            code,
            message: bounded(message.into()),
        }
    }
}

/// The decided fate of one input row. Once written it never changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowOutcome {
    /// 1-based number of the data row in the file (the header is not counted).
    pub row: u64,
    pub status: RowStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Points added (positive) or removed (negative) by this row, when applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<i64>,
    /// The wallet balance right after this row (applied rows, and refused debits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_after: Option<i64>,
    /// The card a membership row created or changed (generated codes too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_code: Option<String>,
}

impl RowOutcome {
    pub fn applied(row: u64, points: i64, balance_after: i64) -> Self {
        RowOutcome {
            row,
            status: RowStatus::Applied,
            error_code: None,
            error_message: None,
            points: Some(points),
            balance_after: Some(balance_after),
            card_code: None,
        }
    }

    /// A membership row applied to the card `card_code`.
    pub fn applied_to_card(row: u64, card_code: &str) -> Self {
        RowOutcome {
            row,
            status: RowStatus::Applied,
            error_code: None,
            error_message: None,
            points: None,
            balance_after: None,
            card_code: Some(card_code.to_owned()),
        }
    }

    pub fn failed(row: u64, code: ErrorCode, message: impl Into<String>) -> Self {
        RowOutcome {
            row,
            status: RowStatus::Failed,
            error_code: Some(code),
            error_message: Some(bounded(message.into())),
            points: None,
            balance_after: None,
            card_code: None,
        }
    }

    pub fn with_balance(mut self, balance: i64) -> Self {
        self.balance_after = Some(balance);
        self
    }
}

impl RowOutcome {
    /// A row whose batch failed on every delivery and was set aside.
    pub fn set_aside(row: u64) -> Self {
        RowOutcome::failed(
            row,
            ErrorCode::ProcessingFailed,
            format!(
                "row {row}: applying this row's batch failed on every attempt, so the batch was \
                 set aside and this row was not applied; import it again in a new file"
            ),
        )
    }

    /// A row the import never reached before it was closed as stalled.
    /// A row the processed file found no outcome for.
    pub fn not_recorded(row: u64) -> Self {
        RowOutcome::failed(
            row,
            ErrorCode::NotProcessed,
            format!("row {row}: no outcome was recorded for this row; it was not applied"),
        )
    }

    pub fn never_processed(row: u64) -> Self {
        RowOutcome::failed(
            row,
            ErrorCode::NotProcessed,
            format!(
                "row {row}: the import stalled before this row was processed, so it was not \
                 applied; import it again in a new file"
            ),
        )
    }
}

impl From<&RowError> for RowOutcome {
    fn from(err: &RowError) -> Self {
        RowOutcome::failed(err.row, err.code, err.to_string())
    }
}

/// Running totals over outcomes, as the job record and the email show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub applied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub credited: u64,
    pub debited: u64,
}

impl Tally {
    pub fn add(&mut self, outcome: &RowOutcome) {
        match outcome.status {
            RowStatus::Applied => self.applied += 1,
            RowStatus::Skipped => self.skipped += 1,
            RowStatus::Failed => self.failed += 1,
        }
        match outcome.points {
            Some(p) if p > 0 => self.credited += p as u64,
            Some(p) if p < 0 => self.debited += p.unsigned_abs(),
            _ => {}
        }
    }

    pub fn rows(&self) -> u64 {
        self.applied + self.skipped + self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_error_names_row_and_column() {
        let err = RowError::new(
            3,
            Some("amount"),
            ErrorCode::InvalidAmount,
            "'1,000' is not a whole number",
        );
        assert_eq!(
            err.to_string(),
            "row 3, column amount: '1,000' is not a whole number"
        );
    }

    #[test]
    fn tally_counts_credits_and_debits_separately() {
        let mut t = Tally::default();
        t.add(&RowOutcome::applied(1, 100, 100));
        t.add(&RowOutcome::applied(2, -30, 70));
        t.add(&RowOutcome::failed(3, ErrorCode::InvalidAmount, "x"));
        assert_eq!(
            t,
            Tally {
                applied: 2,
                skipped: 0,
                failed: 1,
                credited: 100,
                debited: 30
            }
        );
    }
}
