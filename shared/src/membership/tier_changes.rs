//! Scope `tierchange`: moving existing cards to another tier of their
//! program. A file has the columns `card_code;tier_name;value_date`, and
//! `context` and `last_downgrade_check` if it needs them, in any order; the
//! change goes into the card's tier history with its context and value date.

use super::cards::{Card, TierHistoryEntry};
use super::dates::{self, DateError};
use super::programs::Memberships;
use crate::csv_input::{Cells, Header};
use crate::outcome::{ErrorCode, RowError, RowOutcome, RowStatus};
use crate::text_encoding::TextEncoding;
use chrono::{DateTime, Utc};
use csv::ByteRecord;
use serde::{Deserialize, Serialize};

/// The columns of a tier change file.
pub const TIER_CHANGE_COLUMNS: [&str; 5] = [
    "card_code",
    "tier_name",
    "context",
    "value_date",
    "last_downgrade_check",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TierChangeHeaderError {
    #[error(
        "missing column '{0}': a tier change file has the columns card_code, tier_name and \
         value_date (and context and last_downgrade_check if it needs them)"
    )]
    Missing(&'static str),
    #[error(
        "unknown column '{0}': a tier change file has the columns \
         card_code;tier_name;context;value_date;last_downgrade_check"
    )]
    Unknown(String),
    #[error("column '{0}' appears more than once")]
    Duplicate(String),
}

/// The columns a tier change file may leave out.
const OPTIONAL: [&str; 2] = ["context", "last_downgrade_check"];

/// Where each column of a tier change file is, if it has it.
#[derive(Debug, Clone)]
pub struct TierChangeColumns {
    at: [Option<usize>; 5],
    width: usize,
    /// The file's encoding, for a cell it has no character for.
    encoding: TextEncoding,
}

impl TierChangeColumns {
    pub fn from_header(header: &Header) -> Result<Self, TierChangeHeaderError> {
        for (i, name) in header.names.iter().enumerate() {
            if !TIER_CHANGE_COLUMNS.contains(&name.as_str()) {
                return Err(TierChangeHeaderError::Unknown(name.clone()));
            }
            if header.names[..i].contains(name) {
                return Err(TierChangeHeaderError::Duplicate(name.clone()));
            }
        }
        let mut at = [None; 5];
        for (slot, column) in at.iter_mut().zip(TIER_CHANGE_COLUMNS) {
            *slot = header.position(column);
            if slot.is_none() && !OPTIONAL.contains(&column) {
                return Err(TierChangeHeaderError::Missing(column));
            }
        }
        Ok(TierChangeColumns {
            at,
            width: header.names.len(),
            encoding: header.encoding,
        })
    }

    pub fn read(&self, row: u64, record: &ByteRecord) -> Result<TierChangeRow, RowOutcome> {
        let cells = Cells::new(row, record, self.encoding);
        let text = |slot: usize| -> Result<Option<String>, RowOutcome> {
            let Some(at) = self.at[slot] else {
                return Ok(None);
            };
            let value = cells
                .text(Some(at), TIER_CHANGE_COLUMNS[slot])
                .map_err(|e| RowOutcome::from(&e))?;
            Ok((!value.is_empty()).then(|| value.to_owned()))
        };
        let skipped = |column: &str, code: ErrorCode, message: &str| {
            let mut outcome = RowOutcome::from(&RowError::new(row, Some(column), code, message));
            outcome.status = RowStatus::Skipped;
            outcome
        };
        let date = |slot: usize| -> Result<Option<DateTime<Utc>>, RowOutcome> {
            text(slot)?
                .map(|v| {
                    dates::parse_paris(&v).map_err(|e: DateError| {
                        RowOutcome::from(&RowError::new(
                            row,
                            Some(TIER_CHANGE_COLUMNS[slot]),
                            ErrorCode::InvalidDate,
                            e.to_string(),
                        ))
                    })
                })
                .transpose()
        };
        cells.within(self.width).map_err(|e| RowOutcome::from(&e))?;
        let card_code = text(0)?.ok_or_else(|| {
            skipped(
                "card_code",
                ErrorCode::MissingCardCode,
                "the card code is empty",
            )
        })?;
        let tier_name = text(1)?.ok_or_else(|| {
            skipped(
                "tier_name",
                ErrorCode::MissingTierName,
                "the tier name is empty",
            )
        })?;
        let value_date = date(3)?.ok_or_else(|| {
            skipped(
                "value_date",
                ErrorCode::MissingValueDate,
                "the value date is empty",
            )
        })?;
        let limited = |slot: usize, value: String, max: usize| {
            super::within_length(row, TIER_CHANGE_COLUMNS[slot], value, max)
                .map_err(|e| RowOutcome::from(&e))
        };
        let card_code = limited(0, card_code, super::MAX_CARD_CODE_CHARS)?;
        let tier_name = limited(1, tier_name, super::MAX_TIER_NAME_CHARS)?;
        let context = text(2)?
            .map(|v| limited(2, v, super::MAX_CONTEXT_CHARS))
            .transpose()?;
        Ok(TierChangeRow {
            row,
            card_code,
            tier_name,
            context,
            value_date,
            last_downgrade_check: date(4)?,
        })
    }
}

/// A sample tier change file for a tenant: a card moved to the highest
/// tier of the tenant's first program.
pub fn template(config: &Memberships) -> String {
    let tier = config
        .programs
        .first()
        .and_then(|p| p.tiers.iter().max_by_key(|t| t.rank))
        .map_or("Gold".to_owned(), |t| t.name.replace('"', "\"\""));
    format!(
        "{}\n\"C-0001\";\"{tier}\";\"Spring upgrade\";\"2026-04-01 09:00:00\";\n",
        TIER_CHANGE_COLUMNS.join(";")
    )
}

/// The tier changes a card item keeps, latest last: with a context of at
/// most `MAX_CONTEXT_CHARS`, under 120 KB of the card's 400 KB.
pub const MAX_TIER_HISTORY: usize = 50;

/// One row of a tier change file, read and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierChangeRow {
    pub row: u64,
    pub card_code: String,
    pub tier_name: String,
    pub context: Option<String>,
    pub value_date: DateTime<Utc>,
    pub last_downgrade_check: Option<DateTime<Utc>>,
}

impl TierChangeRow {
    /// The card after the change, or why the row is refused. `source` names
    /// the row (`<job>#<row>`) in the card's tier history.
    pub fn decide(
        &self,
        config: &Memberships,
        card: Option<&Card>,
        source: &str,
    ) -> Result<Card, RowOutcome> {
        let fail = |column: &str, code: ErrorCode, message: String| {
            RowOutcome::from(&RowError::new(self.row, Some(column), code, message))
        };
        let Some(card) = card else {
            return Err(fail(
                "card_code",
                ErrorCode::UnknownCard,
                format!("there is no card '{}'", self.card_code),
            ));
        };
        let Some(program) = config.program(card.id_program) else {
            return Err(fail(
                "card_code",
                ErrorCode::UnknownProgram,
                format!(
                    "card '{}' belongs to program {}, which this tenant no longer has",
                    card.card_code, card.id_program
                ),
            ));
        };
        let Some(tier) = program.tier_named(&self.tier_name) else {
            let names: Vec<&str> = program.tiers.iter().map(|t| t.name.as_str()).collect();
            return Err(fail(
                "tier_name",
                ErrorCode::UnknownTier,
                format!(
                    "'{}' is not a tier of program {} ({})",
                    self.tier_name,
                    program.id_program,
                    names.join(", ")
                ),
            ));
        };
        let mut next = card.clone();
        if next.tier_history.iter().any(|h| h.source == source) {
            return Ok(next);
        }
        next.id_tier = tier.id_tier;
        next.tier_history.push(TierHistoryEntry {
            id_tier: tier.id_tier,
            tier_name: tier.name.clone(),
            context: self.context.clone(),
            value_date: self.value_date,
            source: source.to_owned(),
        });
        // The card keeps its latest changes; every change is also kept as
        // an item of its own (`CardDecision::history`).
        let over = next.tier_history.len().saturating_sub(MAX_TIER_HISTORY);
        next.tier_history.drain(..over);
        if self.last_downgrade_check.is_some() {
            next.last_downgrade_check = self.last_downgrade_check;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_input::CsvInput;
    use crate::test_support::club;
    use std::collections::BTreeMap;

    fn card() -> Card {
        Card {
            card_code: "A1".into(),
            customer_key: Some("a@x.io".into()),
            id_program: 1,
            id_tier: 1,
            join_date: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            expiration_date: None,
            birthday: None,
            custom: BTreeMap::new(),
            tier_history: Vec::new(),
            last_downgrade_check: None,
        }
    }

    fn rows(file: &str) -> Vec<Result<TierChangeRow, RowOutcome>> {
        let mut input = CsvInput::open(file.as_bytes()).unwrap();
        let columns = TierChangeColumns::from_header(input.header()).unwrap();
        let mut rows = Vec::new();
        while let Some(row) = input.next_row().unwrap() {
            rows.push(columns.read(row, input.record()));
        }
        rows
    }

    const HEADER: &str = "card_code;tier_name;context;value_date;last_downgrade_check";

    #[test]
    fn a_tier_change_goes_into_the_history_with_its_context_and_date() {
        let file = format!("{HEADER}\nA1;gold;Spring upgrade;2026-04-01 09:00:00;2026-03-31\n");
        let row = rows(&file).remove(0).unwrap();
        let changed = row.decide(&club(false), Some(&card()), "J1#1").unwrap();
        assert_eq!(changed.id_tier, 4);
        let entry = &changed.tier_history[0];
        assert_eq!(
            (entry.tier_name.as_str(), entry.context.as_deref()),
            ("Gold", Some("Spring upgrade"))
        );
        assert_eq!(entry.value_date.to_rfc3339(), "2026-04-01T07:00:00+00:00");
        assert_eq!(
            changed.last_downgrade_check.unwrap().to_rfc3339(),
            "2026-03-30T22:00:00+00:00"
        );
        // The same row again changes nothing more.
        let again = row.decide(&club(false), Some(&changed), "J1#1").unwrap();
        assert_eq!(again.tier_history.len(), 1);
    }

    #[test]
    fn an_unknown_card_or_a_tier_of_no_program_of_the_card_fails() {
        let file = format!("{HEADER}\nZZ;Gold;;2026-04-01;\nA1;Platinum;;2026-04-01;\n");
        let rows = rows(&file);
        let unknown = rows[0]
            .as_ref()
            .unwrap()
            .decide(&club(false), None, "J1#1")
            .unwrap_err();
        assert_eq!(unknown.error_code, Some(ErrorCode::UnknownCard));
        let tier = rows[1]
            .as_ref()
            .unwrap()
            .decide(&club(false), Some(&card()), "J1#2")
            .unwrap_err();
        assert_eq!(tier.error_code, Some(ErrorCode::UnknownTier));
        assert!(tier.error_message.unwrap().contains("Bronze, Gold"));
    }

    #[test]
    fn empty_mandatory_values_skip_the_row_and_bad_dates_fail_it() {
        let file = format!("{HEADER}\nA1;;;2026-04-01;\nA1;Gold;;;\nA1;Gold;;NULL;\n");
        let rows = rows(&file);
        let skipped = rows[0].as_ref().unwrap_err();
        assert_eq!(
            (skipped.status, skipped.error_code),
            (RowStatus::Skipped, Some(ErrorCode::MissingTierName))
        );
        assert_eq!(
            rows[1].as_ref().unwrap_err().error_code,
            Some(ErrorCode::MissingValueDate)
        );
        let null = rows[2].as_ref().unwrap_err();
        assert_eq!(
            (null.status, null.error_code),
            (RowStatus::Failed, Some(ErrorCode::InvalidDate))
        );
    }

    #[test]
    fn the_header_names_a_missing_or_unknown_column() {
        let header = |h: &str| {
            TierChangeColumns::from_header(CsvInput::open(h.as_bytes()).unwrap().header())
                .map(|_| ())
        };
        assert_eq!(
            header("card_code;tier_name;context\n"),
            Err(TierChangeHeaderError::Missing("value_date"))
        );
        assert_eq!(
            header(&format!("{HEADER};tier\n")),
            Err(TierChangeHeaderError::Unknown("tier".into()))
        );
        assert_eq!(
            header("card_code;tier_name;value_date;tier_name\n"),
            Err(TierChangeHeaderError::Duplicate("tier_name".into()))
        );
    }

    #[test]
    fn a_tenants_template_is_a_file_it_can_import() {
        let file = template(&club(false));
        let read = rows(&file);
        let next = read[0]
            .as_ref()
            .unwrap()
            .decide(&club(false), Some(&card()), "j#1")
            .unwrap();
        assert_eq!(next.id_tier, 4, "{file}");
    }

    #[test]
    fn context_and_last_downgrade_check_may_be_left_out_and_columns_come_in_any_order() {
        let read = rows("value_date;tier_name;card_code\n2026-04-01;Gold;A1\n");
        let row = read[0].as_ref().unwrap();
        assert_eq!(
            (row.card_code.as_str(), row.tier_name.as_str()),
            ("A1", "Gold")
        );
        assert_eq!((&row.context, row.last_downgrade_check), (&None, None));
        // A check the card had is kept.
        let mut card = card();
        card.last_downgrade_check = Some(card.join_date);
        let next = row.decide(&club(false), Some(&card), "j#2").unwrap();
        assert_eq!(next.id_tier, 4);
        assert_eq!(next.last_downgrade_check, card.last_downgrade_check);
    }
}
