//! Scope `cardcode`: creating and updating loyalty cards (subscriptions).
//!
//! A file's standard columns are `card_code;customer_key;id_program;
//! join_date;expiration_date;birthday;id_tier`: `card_code` and
//! `customer_key` in every file, `id_program` in a file that creates cards,
//! the others as the file needs them, those present in that order, then any
//! of the tenant's custom fields. A row whose card code exists updates that
//! card; otherwise it creates one. What a row may say depends on which: an
//! update may not name a program or a tier (both are set once, at creation),
//! a creation must name its program. A column left out changes nothing on
//! an existing card; an empty value (or `""`) erases.
//!
//! Its length (about 520 lines of code, then its tests): a card code file's
//! header, its rows' seven standard columns and custom fields, and how a row
//! creates or changes a card are one format's rules.

use super::dates::{self, DateError};
use super::programs::{Memberships, CARD_COLUMNS};
use crate::csv_input::{Cells, Header};
use crate::outcome::{ErrorCode, RowError, RowOutcome};
use crate::text_encoding::TextEncoding;
use chrono::{DateTime, NaiveDate, Utc};
use csv::ByteRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A loyalty card: one membership of one program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub card_code: String,
    /// The cardholder; `None` for a card linked to no contact.
    pub customer_key: Option<String>,
    pub id_program: u64,
    pub id_tier: u64,
    pub join_date: DateTime<Utc>,
    pub expiration_date: Option<DateTime<Utc>>,
    pub birthday: Option<NaiveDate>,
    #[serde(default)]
    pub custom: BTreeMap<String, String>,
    #[serde(default)]
    pub tier_history: Vec<TierHistoryEntry>,
    #[serde(default)]
    pub last_downgrade_check: Option<DateTime<Utc>>,
}

/// One tier the card has been put in, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierHistoryEntry {
    pub id_tier: u64,
    pub tier_name: String,
    pub context: Option<String>,
    pub value_date: DateTime<Utc>,
    /// The file row that made the change: `<job>#<row>`.
    pub source: String,
}

impl Card {
    /// Active until its expiration date.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expiration_date.is_none_or(|at| at > now)
    }
}

/// The standard columns every card code file has.
const MANDATORY: [&str; 2] = ["card_code", "customer_key"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardHeaderError {
    #[error(
        "missing column '{0}': every card code file has the columns card_code and customer_key, \
         first (and id_program after them, to create cards)"
    )]
    Missing(&'static str),
    #[error(
        "column '{found}' is after '{after}': the standard columns a file has keep the order \
         card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier"
    )]
    OutOfOrder { found: String, after: &'static str },
    #[error(
        "column '{found}' is after the custom field '{field}': the standard columns come first"
    )]
    AfterCustom { found: String, field: String },
    #[error("unknown column '{column}': after the standard columns, a card code file may have only this tenant's custom fields ({known})")]
    Unknown { column: String, known: String },
    #[error("column '{0}' appears more than once")]
    Duplicate(String),
}

/// Where a card code file's columns are: each standard one the file has,
/// then the custom fields.
#[derive(Debug, Clone)]
pub struct CardColumns {
    /// The position of each of `CARD_COLUMNS`, if the file has it.
    standard: [Option<usize>; CARD_COLUMNS.len()],
    custom: Vec<(usize, String)>,
    width: usize,
    /// The file's encoding, for a cell it has no character for.
    encoding: TextEncoding,
}

impl CardColumns {
    pub fn from_header(header: &Header, config: &Memberships) -> Result<Self, CardHeaderError> {
        let mut standard = [None; CARD_COLUMNS.len()];
        let mut last: Option<usize> = None;
        let mut custom: Vec<(usize, String)> = Vec::new();
        for (i, name) in header.names.iter().enumerate() {
            if let Some(slot) = CARD_COLUMNS.iter().position(|c| c == name) {
                if standard[slot].is_some() {
                    return Err(CardHeaderError::Duplicate(name.clone()));
                }
                if let Some((_, field)) = custom.first() {
                    return Err(CardHeaderError::AfterCustom {
                        found: name.clone(),
                        field: field.clone(),
                    });
                }
                if let Some(before) = last.filter(|&before| before > slot) {
                    return Err(CardHeaderError::OutOfOrder {
                        found: name.clone(),
                        after: CARD_COLUMNS[before],
                    });
                }
                standard[slot] = Some(i);
                last = Some(slot);
                continue;
            }
            if custom.iter().any(|(_, n)| n == name) {
                return Err(CardHeaderError::Duplicate(name.clone()));
            }
            if !config.custom_fields.contains(name) {
                let known = if config.custom_fields.is_empty() {
                    "it has none".to_owned()
                } else {
                    config.custom_fields.join(", ")
                };
                return Err(CardHeaderError::Unknown {
                    column: name.clone(),
                    known,
                });
            }
            custom.push((i, name.clone()));
        }
        for (slot, column) in CARD_COLUMNS.iter().enumerate() {
            if MANDATORY.contains(column) && standard[slot].is_none() {
                return Err(CardHeaderError::Missing(column));
            }
        }
        Ok(CardColumns {
            standard,
            custom,
            width: header.names.len(),
            encoding: header.encoding,
        })
    }

    /// What a standard column's cell, read as `value`, does to a card.
    fn edit<T>(&self, slot: usize, value: Option<T>) -> Edit<T> {
        match (self.standard[slot], value) {
            (None, _) => Edit::Keep,
            (Some(_), None) => Edit::Clear,
            (Some(_), Some(value)) => Edit::Set(value),
        }
    }

    /// Reads one row's cells. An empty cell (or `""`) is `None`.
    pub fn read(&self, row: u64, record: &ByteRecord) -> Result<CardRow, RowError> {
        let cells = Cells::new(row, record, self.encoding);
        cells.within(self.width)?;
        // A value left out shifts every later one into the wrong column:
        // such a row is refused, not guessed at.
        if record.len() < self.width {
            return Err(RowError::new(
                row,
                None,
                ErrorCode::TooFewFields,
                format!(
                    "the row has {} values but the header has {} columns: write every separator, \
                     with nothing between two of them for an empty value",
                    record.len(),
                    self.width
                ),
            ));
        }
        // A standard column the file leaves out reads as `None` here; the
        // two that an update can erase say which it is (`Edit`).
        let text = |slot: usize| -> Result<Option<String>, RowError> {
            let Some(at) = self.standard[slot] else {
                return Ok(None);
            };
            let value = cells.text(Some(at), CARD_COLUMNS[slot])?;
            Ok((!value.is_empty()).then(|| value.to_owned()))
        };

        let number = |i: usize| -> Result<Option<u64>, RowError> {
            let column = CARD_COLUMNS[i];
            match text(i)? {
                None => Ok(None),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 && v.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
                    _ => Err(RowError::new(
                        row,
                        Some(column),
                        ErrorCode::InvalidNumber,
                        if v == "NULL" {
                            "NULL is not a number: leave the cell empty".to_owned()
                        } else {
                            format!("'{v}' is not a positive whole number")
                        },
                    )),
                },
            }
        };
        let date = |i: usize| -> Result<Option<DateTime<Utc>>, RowError> {
            text(i)?
                .map(|v| dates::parse_paris(&v).map_err(|e| date_error(row, CARD_COLUMNS[i], e)))
                .transpose()
        };
        // Cells are read in file order, so a row's first bad cell is the
        // one reported.
        let limited = |i: usize, max: usize| -> Result<Option<String>, RowError> {
            text(i)?
                .map(|v| super::within_length(row, CARD_COLUMNS[i], v, max))
                .transpose()
        };
        let card_code = limited(0, super::MAX_CARD_CODE_CHARS)?;
        let customer_key = limited(1, super::MAX_CUSTOMER_KEY_CHARS)?;
        let id_program = self.edit(2, number(2)?);
        let join_date = date(3)?;
        let expiration_date = self.edit(4, date(4)?);
        let birthday = text(5)?
            .map(|v| dates::parse_date(&v).map_err(|e| date_error(row, "birthday", e)))
            .transpose()?;
        let birthday = self.edit(5, birthday);
        let id_tier = number(6)?;
        let mut custom = Vec::with_capacity(self.custom.len());
        for (i, name) in &self.custom {
            let value = cells.text(Some(*i), name)?;
            let value =
                super::within_length(row, name, value.to_owned(), super::MAX_CUSTOM_FIELD_CHARS)?;
            custom.push((name.clone(), (!value.is_empty()).then_some(value)));
        }
        Ok(CardRow {
            row,
            card_code,
            customer_key,
            id_program,
            join_date,
            expiration_date,
            birthday,
            id_tier,
            custom,
        })
    }
}

fn date_error(row: u64, column: &str, err: DateError) -> RowError {
    RowError::new(row, Some(column), ErrorCode::InvalidDate, err.to_string())
}

/// A sample card code file for a tenant: a card created with every
/// standard column (in the tenant's first program, at its highest tier) and
/// the tenant's custom fields, and one created with the least a creation
/// needs (its code left to be generated, if the tenant generates codes).
pub fn template(config: &Memberships) -> String {
    let program = config.programs.first();
    let id_program = program.map_or(1, |p| p.id_program);
    let id_tier = program
        .and_then(|p| p.tiers.iter().max_by_key(|t| t.rank))
        .map_or(String::new(), |t| format!("\"{}\"", t.id_tier));
    let mut header = CARD_COLUMNS.join(";");
    for field in &config.custom_fields {
        header.push(';');
        header.push_str(field);
    }
    let customs = ";".repeat(config.custom_fields.len());
    let second_code = if config.auto_card_codes { "" } else { "C-0002" };
    format!(
        "{header}\n\
         \"C-0001\";\"jane@example.com\";\"{id_program}\";\"2026-03-01 10:30:00\";\"2027-03-01 00:00:00\";\"1985-02-01\";{id_tier}{customs}\n\
         \"{second_code}\";\"john@example.com\";\"{id_program}\";;;;{customs}\n"
    )
}

/// One row of a card code file, read and checked cell by cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRow {
    pub row: u64,
    pub card_code: Option<String>,
    pub customer_key: Option<String>,
    /// `Keep`: the file has no `id_program` column, so it only updates.
    #[serde(default, skip_serializing_if = "Edit::is_keep")]
    pub id_program: Edit<u64>,
    pub join_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Edit::is_keep")]
    pub expiration_date: Edit<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Edit::is_keep")]
    pub birthday: Edit<NaiveDate>,
    pub id_tier: Option<u64>,
    /// The custom fields the file has, in file order; `None` erases on update.
    pub custom: Vec<(String, Option<String>)>,
}

/// What a row does to one of a card's optional values.
///
/// In a batch message, `Clear` is `null` and `Set` the value, as the value's
/// `Option` would be, and `Keep` is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Edit<T> {
    /// The file has no such column: an existing card keeps its value.
    #[default]
    Keep,
    /// The cell is empty (or `""`): the value is erased.
    Clear,
    Set(T),
}

impl<T> Edit<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Edit::Keep)
    }

    /// The value a new card gets.
    pub fn value(self) -> Option<T> {
        match self {
            Edit::Set(value) => Some(value),
            Edit::Keep | Edit::Clear => None,
        }
    }

    /// The value after the edit of an existing card's `before`.
    pub fn applied_to(self, before: Option<T>) -> Option<T> {
        match self {
            Edit::Keep => before,
            Edit::Clear => None,
            Edit::Set(value) => Some(value),
        }
    }
}

impl<T: Serialize> Serialize for Edit<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Edit::Set(value) => serializer.serialize_some(value),
            Edit::Keep | Edit::Clear => serializer.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Edit<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Edit::Clear, Edit::Set))
    }
}

/// What a row does to the cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardChange {
    Create(Card),
    Update(Card),
}

impl CardChange {
    pub fn card(&self) -> &Card {
        match self {
            CardChange::Create(card) | CardChange::Update(card) => card,
        }
    }
}

/// What the row's decision needs to know of the stored cards.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// The card the row's card code names, if it exists.
    pub existing: Option<&'a Card>,
    /// The active card of the row's contact in the row's program, if any.
    pub active_for_contact: Option<&'a Card>,
    /// For an empty card code: the code to create the card under.
    pub generated_code: Option<&'a str>,
}

impl CardRow {
    /// Decides the row against the stored cards at `now`; a refusal is the
    /// row's outcome (failed, or skipped for an empty mandatory value).
    pub fn decide(
        &self,
        config: &Memberships,
        known: Known<'_>,
        now: DateTime<Utc>,
    ) -> Result<CardChange, RowOutcome> {
        let fail = |column: &str, code: ErrorCode, message: String| {
            RowOutcome::from(&RowError::new(self.row, Some(column), code, message))
        };
        if let Some(card) = known.existing {
            if let Edit::Set(p) = self.id_program {
                return Err(fail("id_program", ErrorCode::ProgramOnUpdate, format!(
                    "card '{}' exists, and its program cannot change: leave id_program empty to update it (it is {p} here)",
                    card.card_code
                )));
            }
            if let Some(t) = self.id_tier {
                return Err(fail("id_tier", ErrorCode::TierOnUpdate, format!(
                    "card '{}' exists: id_tier is only for new cards (it is {t} here); change tiers with a tierchange file",
                    card.card_code
                )));
            }
            let mut next = card.clone();
            next.customer_key = self.customer_key.clone();
            next.join_date = self.join_date.unwrap_or(card.join_date);
            next.expiration_date = self.expiration_date.applied_to(card.expiration_date);
            next.birthday = self.birthday.applied_to(card.birthday);
            self.set_custom(&mut next);
            if let (Some(contact), Some(active)) = (&next.customer_key, known.active_for_contact) {
                if next.is_active(now) && active.card_code != next.card_code {
                    return Err(fail("customer_key", ErrorCode::SecondActiveCard, format!(
                        "'{contact}' already has the active card '{}' in program {}: one active card per contact and program",
                        active.card_code, next.id_program
                    )));
                }
            }
            return Ok(CardChange::Update(next));
        }
        let card_code = match (&self.card_code, known.generated_code) {
            (Some(code), _) => code.clone(),
            (None, Some(code)) if config.auto_card_codes => code.to_owned(),
            (None, _) => {
                return Err(fail(
                    "card_code",
                    ErrorCode::MissingCardCode,
                    "the card code is empty, and this tenant does not generate card codes".into(),
                ));
            }
        };
        let Edit::Set(id_program) = self.id_program else {
            let message = if self.id_program.is_keep() {
                format!(
                    "there is no card '{card_code}', and this file has no id_program column: \
                     it updates cards only (add the column to create cards)"
                )
            } else {
                format!("card '{card_code}' is new, so it needs its id_program")
            };
            let err = RowError::new(
                self.row,
                Some("id_program"),
                ErrorCode::MissingProgram,
                message,
            );
            let mut outcome = RowOutcome::from(&err);
            outcome.status = crate::outcome::RowStatus::Skipped;
            return Err(outcome);
        };
        let Some(program) = config.program(id_program) else {
            return Err(fail(
                "id_program",
                ErrorCode::UnknownProgram,
                format!("there is no program {id_program}"),
            ));
        };
        let tier = match self.id_tier {
            None => program.lowest_tier(),
            Some(id) => match program.tier(id) {
                Some(tier) => Some(tier),
                None => {
                    return Err(fail(
                        "id_tier",
                        ErrorCode::UnknownTier,
                        format!(
                            "tier {id} is not a tier of program {id_program} ({})",
                            program
                                .tiers
                                .iter()
                                .map(|t| format!("{} {}", t.id_tier, t.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            },
        };
        let Some(tier) = tier else {
            return Err(fail(
                "id_tier",
                ErrorCode::UnknownTier,
                format!("program {id_program} has no tier"),
            ));
        };
        if let (Some(contact), Some(active)) = (&self.customer_key, known.active_for_contact) {
            return Err(fail("customer_key", ErrorCode::SecondActiveCard, format!(
                "'{contact}' already has the active card '{}' in program {id_program}: one active card per contact and program",
                active.card_code
            )));
        }
        let mut card = Card {
            card_code,
            customer_key: self.customer_key.clone(),
            id_program,
            id_tier: tier.id_tier,
            join_date: self.join_date.unwrap_or(now),
            expiration_date: self.expiration_date.value(),
            birthday: self.birthday.value(),
            custom: BTreeMap::new(),
            tier_history: Vec::new(),
            last_downgrade_check: None,
        };
        self.set_custom(&mut card);
        Ok(CardChange::Create(card))
    }

    fn set_custom(&self, card: &mut Card) {
        for (name, value) in &self.custom {
            match value {
                Some(v) => card.custom.insert(name.clone(), v.clone()),
                None => card.custom.remove(name),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_input::CsvInput;
    use crate::membership::programs::{Program, Tier};

    fn config(auto_card_codes: bool) -> Memberships {
        let tier = |id_tier, name: &str, rank| Tier {
            id_tier,
            name: name.into(),
            rank,
        };
        Memberships {
            universe: "myuniverse".into(),
            auto_card_codes,
            programs: vec![
                Program {
                    id_program: 1,
                    name: "Club".into(),
                    tiers: vec![
                        tier(2, "Silver", 2),
                        tier(1, "Bronze", 1),
                        tier(4, "Gold", 4),
                    ],
                },
                Program {
                    id_program: 3,
                    name: "Kids".into(),
                    tiers: vec![tier(7, "Explorer", 1)],
                },
            ],
            custom_fields: vec!["store".into()],
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The rows of a file, read with its header.
    fn rows(file: &str, config: &Memberships) -> Vec<Result<CardRow, RowError>> {
        let mut input = CsvInput::open(file.as_bytes()).unwrap();
        let columns = CardColumns::from_header(input.header(), config).unwrap();
        let mut rows = Vec::new();
        while let Some(row) = input.next_row().unwrap() {
            rows.push(columns.read(row, input.record()));
        }
        rows
    }

    /// The card the first row of a file creates.
    fn card_in(config: &Memberships, file: &str) -> Card {
        let known = Known {
            existing: None,
            active_for_contact: None,
            generated_code: None,
        };
        match rows(file, config)[0]
            .as_ref()
            .unwrap()
            .decide(config, known, now())
        {
            Ok(CardChange::Create(card)) => card,
            other => panic!("{other:?}"),
        }
    }

    fn header_error(file: &str) -> CardHeaderError {
        let input = CsvInput::open(file.as_bytes()).unwrap();
        CardColumns::from_header(input.header(), &config(true)).unwrap_err()
    }

    const HEADER: &str =
        "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier";

    /// The example file of the source document, with its stray quote
    /// straightened: a full row, a row with no card code, a row with few values.
    const EXAMPLE: &str = "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier\n\
        \"my_card_code\";\"jane@example.com\";\"1\";\"2019-01-01 00:00:01\";\"2020-01-01 00:00:01\";\"1955-02-01\";\"2\"\n\
        ;\"john@example.com\";\"3\";;;;\"7\"\n\
        \"my_card_code1\";\"joe@example.com\";\"1\";;;;\"4\"\n";

    #[test]
    fn the_documented_example_creates_three_cards_when_codes_are_generated() {
        let config = config(true);
        let rows = rows(EXAMPLE, &config);
        let decide = |r: &CardRow, code| {
            r.decide(
                &config,
                Known {
                    existing: None,
                    active_for_contact: None,
                    generated_code: code,
                },
                now(),
            )
        };
        let first = decide(rows[0].as_ref().unwrap(), None).unwrap();
        let card = first.card();
        assert_eq!(
            (card.card_code.as_str(), card.id_program, card.id_tier),
            ("my_card_code", 1, 2)
        );
        // Paris winter time: one hour ahead of UTC.
        assert_eq!(card.join_date.to_rfc3339(), "2018-12-31T23:00:01+00:00");
        assert_eq!(card.birthday, NaiveDate::from_ymd_opt(1955, 2, 1));
        let second = decide(rows[1].as_ref().unwrap(), Some("2001234567890")).unwrap();
        assert_eq!(second.card().card_code, "2001234567890");
        assert_eq!(
            second.card().join_date,
            now(),
            "an empty join date is the import time"
        );
        let third = decide(rows[2].as_ref().unwrap(), None).unwrap();
        assert_eq!(third.card().id_tier, 4);
    }

    /// The example as the source document prints it: the first line's
    /// fifth value holds a separator inside its quotes, the second line
    /// leaves out its empty card code.
    const EXAMPLE_VERBATIM: &str = "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier\n\
        \"my_card_code\";\"jane@example.com\";\"1\";\"2019-01-01 00:00:01\";\"2020-01-01 00:00:01;1955-02-01\";\"2\";\n\
        \"john@example.com\";\"3\";;;;\"2\"\n\
        \"my_card_code1\";\"joe@example.com\";\"1\";;;;\"4\"\n";

    #[test]
    fn the_example_as_printed_is_refused_row_by_row_saying_why() {
        let rows = rows(EXAMPLE_VERBATIM, &config(true));
        let first = rows[0].as_ref().unwrap_err();
        assert_eq!(
            (first.code, first.column.as_deref()),
            (ErrorCode::InvalidDate, Some("expiration_date"))
        );
        assert!(
            first.message.contains("'2020-01-01 00:00:01;1955-02-01'"),
            "{first}"
        );
        let second = rows[1].as_ref().unwrap_err();
        assert_eq!(second.code, ErrorCode::TooFewFields);
        assert!(
            second.to_string().contains("6 values but the header has 7"),
            "{second}"
        );
        assert_eq!(
            rows[2].as_ref().unwrap().card_code.as_deref(),
            Some("my_card_code1")
        );
    }

    #[test]
    fn without_generated_codes_an_empty_card_code_fails_the_row() {
        let config = config(false);
        let rows = rows(EXAMPLE, &config);
        let refused = rows[1]
            .as_ref()
            .unwrap()
            .decide(
                &config,
                Known {
                    existing: None,
                    active_for_contact: None,
                    generated_code: None,
                },
                now(),
            )
            .unwrap_err();
        assert_eq!(refused.error_code, Some(ErrorCode::MissingCardCode));
    }

    #[test]
    fn an_empty_tier_is_the_lowest_and_a_tier_of_another_program_fails() {
        let config = config(true);
        let file = format!("{HEADER}\nA1;a@x.io;1;;;;\nA2;b@x.io;1;;;;7\n");
        let rows = rows(&file, &config);
        let none = Known {
            existing: None,
            active_for_contact: None,
            generated_code: None,
        };
        assert_eq!(
            rows[0]
                .as_ref()
                .unwrap()
                .decide(&config, none, now())
                .unwrap()
                .card()
                .id_tier,
            1
        );
        let refused = rows[1]
            .as_ref()
            .unwrap()
            .decide(&config, none, now())
            .unwrap_err();
        assert_eq!(refused.error_code, Some(ErrorCode::UnknownTier));
        assert!(refused
            .error_message
            .unwrap()
            .contains("tier 7 is not a tier of program 1"));
    }

    #[test]
    fn an_update_may_not_change_the_program_or_tier_and_empty_values_erase() {
        let config = config(true);
        let none = Known {
            existing: None,
            active_for_contact: None,
            generated_code: None,
        };
        let file = format!("{HEADER};store\nA1;a@x.io;1;2020-05-01;2030-01-01;1980-04-02;;Lyon\n");
        let created = rows(&file, &config)[0]
            .as_ref()
            .unwrap()
            .decide(&config, none, now())
            .unwrap();
        let card = created.card().clone();
        let update = format!(
            "{HEADER};store\nA1;a@x.io;1;;;;;\nA1;a@x.io;;;;;2;\nA1;a@x.io;;;\"\";;;\"\"\n"
        );
        let rows = rows(&update, &config);
        let known = Known {
            existing: Some(&card),
            ..none
        };
        let program = rows[0]
            .as_ref()
            .unwrap()
            .decide(&config, known, now())
            .unwrap_err();
        assert_eq!(program.error_code, Some(ErrorCode::ProgramOnUpdate));
        let tier = rows[1]
            .as_ref()
            .unwrap()
            .decide(&config, known, now())
            .unwrap_err();
        assert_eq!(tier.error_code, Some(ErrorCode::TierOnUpdate));
        let CardChange::Update(updated) = rows[2]
            .as_ref()
            .unwrap()
            .decide(&config, known, now())
            .unwrap()
        else {
            panic!("an update");
        };
        assert_eq!(
            updated.join_date, card.join_date,
            "an empty join date keeps the card's"
        );
        assert_eq!((updated.expiration_date, updated.birthday), (None, None));
        assert!(updated.custom.is_empty());
        assert_eq!(updated.id_program, 1);
    }

    #[test]
    fn null_is_not_an_erase_where_a_date_or_number_is_expected() {
        let config = config(true);
        let file = format!("{HEADER}\nA1;a@x.io;1;NULL;;;\nA2;a@x.io;NULL;;;;\n");
        let rows = rows(&file, &config);
        let date = rows[0].as_ref().unwrap_err();
        assert_eq!(
            (date.code, date.column.as_deref()),
            (ErrorCode::InvalidDate, Some("join_date"))
        );
        assert_eq!(rows[1].as_ref().unwrap_err().code, ErrorCode::InvalidNumber);
    }

    #[test]
    fn a_dst_gap_date_is_a_row_error() {
        let config = config(true);
        let file = format!("{HEADER}\nA1;a@x.io;1;2024-03-31 02:30:00;;;\n");
        let err = rows(&file, &config).remove(0).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidDate);
        assert!(
            err.message.contains("does not exist in Paris time"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_second_active_card_for_a_contact_in_a_program_fails() {
        let config = config(true);
        let none = Known {
            existing: None,
            active_for_contact: None,
            generated_code: None,
        };
        let file = format!("{HEADER}\nA1;a@x.io;1;;;;\nA2;a@x.io;1;;;;\nA3;;1;;;;\n");
        let rows = rows(&file, &config);
        let first = rows[0]
            .as_ref()
            .unwrap()
            .decide(&config, none, now())
            .unwrap();
        let known = Known {
            active_for_contact: Some(first.card()),
            ..none
        };
        let second = rows[1]
            .as_ref()
            .unwrap()
            .decide(&config, known, now())
            .unwrap_err();
        assert_eq!(second.error_code, Some(ErrorCode::SecondActiveCard));
        // A card linked to no contact is no contact's second card.
        let unlinked = rows[2]
            .as_ref()
            .unwrap()
            .decide(&config, known, now())
            .unwrap();
        assert_eq!(unlinked.card().customer_key, None);
    }

    #[test]
    fn a_new_card_without_a_program_is_skipped_saying_whether_the_file_has_the_column() {
        let config = config(true);
        let none = Known {
            existing: None,
            active_for_contact: None,
            generated_code: None,
        };
        for (file, why) in [
            (
                format!("{HEADER}\nA1;a@x.io;;;;;\n"),
                "needs its id_program",
            ),
            (
                "card_code;customer_key;expiration_date\nB2;b@x.io;2028-01-01\n".to_owned(),
                "no id_program column",
            ),
        ] {
            let skipped = rows(&file, &config)[0]
                .as_ref()
                .unwrap()
                .decide(&config, none, now())
                .unwrap_err();
            assert_eq!(skipped.status, crate::outcome::RowStatus::Skipped);
            assert_eq!(skipped.error_code, Some(ErrorCode::MissingProgram));
            let message = skipped.error_message.unwrap_or_default();
            assert!(message.contains(why), "{message}");
        }
    }

    #[test]
    fn a_header_needs_the_card_code_and_the_contact_and_keeps_the_standard_order() {
        assert_eq!(
            header_error("card_code;id_program\n"),
            CardHeaderError::Missing("customer_key")
        );
        assert_eq!(
            header_error("customer_key;card_code;id_program\n"),
            CardHeaderError::OutOfOrder {
                found: "card_code".into(),
                after: "customer_key"
            }
        );
        assert_eq!(
            header_error("card_code;customer_key;birthday;expiration_date\n"),
            CardHeaderError::OutOfOrder {
                found: "expiration_date".into(),
                after: "birthday"
            }
        );
        assert_eq!(
            header_error("card_code;customer_key;store;id_tier\n"),
            CardHeaderError::AfterCustom {
                found: "id_tier".into(),
                field: "store".into()
            }
        );
        assert_eq!(
            header_error("card_code;customer_key;birthday;birthday\n"),
            CardHeaderError::Duplicate("birthday".into())
        );
        assert!(matches!(
            header_error(&format!("{HEADER};colour\n")),
            CardHeaderError::Unknown { column, .. } if column == "colour"
        ));
        for fine in [
            format!("{HEADER};store\n"),
            "card_code;customer_key;id_program\n".to_owned(),
            "card_code;customer_key;expiration_date\n".to_owned(),
            "card_code;customer_key;store\n".to_owned(),
        ] {
            let input = CsvInput::open(fine.as_bytes()).unwrap();
            assert!(
                CardColumns::from_header(input.header(), &config(true)).is_ok(),
                "{fine}"
            );
        }
    }

    #[test]
    fn a_column_left_out_keeps_the_cards_value_and_an_empty_one_erases_it() {
        let config = config(true);
        let mut card = card_in(
            &config,
            &format!("{HEADER};store\nA1;a@x.io;1;;2027-01-01;1990-05-04;;Lyon\n"),
        );
        assert_eq!(card.custom.get("store").map(String::as_str), Some("Lyon"));
        let update = |card: &Card, file: &str| {
            let known = Known {
                existing: Some(card),
                active_for_contact: None,
                generated_code: None,
            };
            match rows(file, &config)[0]
                .as_ref()
                .unwrap()
                .decide(&config, known, now())
            {
                Ok(CardChange::Update(next)) => next,
                other => panic!("{other:?}"),
            }
        };
        // No id_program column: an update; birthday erased, expiry moved.
        let next = update(
            &card,
            "card_code;customer_key;expiration_date;birthday\nA1;a@x.io;2028-01-01;\n",
        );
        assert_eq!(next.birthday, None);
        assert_eq!(
            next.expiration_date.map(|at| at.date_naive()),
            NaiveDate::from_ymd_opt(2027, 12, 31)
        );
        assert_eq!(next.custom.get("store").map(String::as_str), Some("Lyon"));
        // Only a custom field: every standard value the card had stays.
        card = next;
        let next = update(&card, "card_code;customer_key;store\nA1;a@x.io;Nice\n");
        assert_eq!(next.custom.get("store").map(String::as_str), Some("Nice"));
        assert_eq!(
            (next.expiration_date, next.birthday, next.join_date),
            (card.expiration_date, card.birthday, card.join_date)
        );
    }

    #[test]
    fn a_tenants_template_is_a_file_it_can_import() {
        for auto in [true, false] {
            let config = config(auto);
            let file = template(&config);
            assert!(file.starts_with(&format!("{HEADER};store\n")), "{file}");
            for (i, row) in rows(&file, &config).iter().enumerate() {
                let known = Known {
                    existing: None,
                    active_for_contact: None,
                    generated_code: (auto && i == 1).then_some("2001234567890"),
                };
                let decided = row.as_ref().unwrap().decide(&config, known, now());
                assert!(matches!(decided, Ok(CardChange::Create(_))), "{decided:?}");
            }
        }
    }

    #[test]
    fn a_batch_message_reads_a_left_out_column_as_kept_and_null_as_erased() {
        let config = config(true);
        let read = |file: &str| rows(file, &config).remove(0).unwrap();
        let kept = read("card_code;customer_key\nA1;a@x.io\n");
        let erased = read("card_code;customer_key;expiration_date;birthday\nA1;a@x.io;;\n");
        let set = read("card_code;customer_key;birthday\nA1;a@x.io;1990-05-04\n");
        for row in [&kept, &erased, &set] {
            let json = serde_json::to_string(row).unwrap();
            assert_eq!(
                &serde_json::from_str::<CardRow>(&json).unwrap(),
                row,
                "{json}"
            );
        }
        let json = serde_json::to_string(&kept).unwrap();
        assert!(!json.contains("birthday"), "{json}");
        assert_eq!(erased.birthday, Edit::Clear);
        assert_eq!(
            set.birthday,
            Edit::Set(NaiveDate::from_ymd_opt(1990, 5, 4).unwrap())
        );
    }
}
