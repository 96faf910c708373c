//! Memberships: loyalty card codes (subscriptions to a program) and tier
//! changes, imported from semicolon-separated files whose names say their
//! universe, scope and date.
//!
//! So far this holds the rules, in plain Rust: the tenant's programs and
//! tiers ([`programs`]), card code files and how a row creates or updates a
//! card ([`cards`]), tier change files ([`tier_changes`]), Paris-time dates
//! ([`dates`]), generated EAN-13 codes ([`ean13`]), file names and their
//! order ([`file_name`]), and applying rows to cards exactly once through a
//! [`apply::CardStore`] ([`apply::memory::MemoryCards`] is the reference),
//! and the order a tenant's files are applied in ([`order`]). The pipeline
//! runs them as two more import kinds (`crate::kind::ImportKind`).

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
