//! Memberships: loyalty card codes (subscriptions to a program) and tier
//! changes, imported from semicolon-separated files whose names say their
//! universe, scope and date.
//!
//! This holds the rules, in plain Rust: the tenant's programs and tiers
//! ([`programs`]), card code files and how a row creates or updates a card
//! ([`cards`]), tier change files ([`tier_changes`]), Paris-time dates
//! ([`dates`]), generated EAN-13 codes ([`ean13`]), file names and their
//! order ([`file_name`]), whether a file is admitted ([`admission`]),
//! applying rows to cards exactly once through a [`apply::CardStore`]
//! (`test_support::MemoryCards` is the reference), and the order a tenant's
//! files are applied in ([`order`]). The pipeline
//! runs them as two more import kinds (`crate::kind::ImportKind`).

pub mod admission;
pub mod apply;
pub mod cards;
pub mod dates;
pub mod ean13;
pub mod file_name;
pub mod order;
pub mod programs;
pub mod tier_changes;

/// Rows a membership file may have; a longer file is refused before any of
/// it is applied.
pub const MAX_ROWS: u64 = 200_000;

/// The longest card code, in characters: it is part of the card's key and
/// of the contact's claim key (DynamoDB: 2,048 bytes a partition key).
pub const MAX_CARD_CODE_CHARS: usize = 128;
/// The longest customer key: part of the claim key, like the card code.
pub const MAX_CUSTOMER_KEY_CHARS: usize = 256;
/// The longest tier name a tier change row may give.
pub const MAX_TIER_NAME_CHARS: usize = 128;
/// The longest tier change context, kept in the card's tier history.
pub const MAX_CONTEXT_CHARS: usize = 500;
/// The longest custom field value, kept on the card. A cell this long or
/// longer is usually an unbalanced quote that swallowed the rows after it.
pub const MAX_CUSTOM_FIELD_CHARS: usize = 1_000;

/// The value, or a `value_too_long` row error naming the column, the
/// value's start and the limit if it has more than `max` characters.
pub fn within_length(
    row: u64,
    column: &str,
    value: String,
    max: usize,
) -> Result<String, crate::outcome::RowError> {
    let chars = value.chars().count();
    if chars <= max {
        return Ok(value);
    }
    let start: String = value.chars().take(40).collect();
    Err(crate::outcome::RowError::new(
        row,
        Some(column),
        crate::outcome::ErrorCode::ValueTooLong,
        format!(
            "'{start}…' is {chars} characters long, more than the {max} a {column} may have \
             (a quote left open in the file swallows the rows after it into one cell)"
        ),
    ))
}
