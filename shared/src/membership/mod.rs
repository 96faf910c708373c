//! Memberships: loyalty card codes (subscriptions to a program) and tier
//! changes, imported from semicolon-separated files whose names say their
//! universe, scope and date.
//!
//! So far this holds the rules, in plain Rust: the tenant's programs and
//! tiers ([`programs`]), card code files and how a row creates or updates a
//! card ([`cards`]), tier change files ([`tier_changes`]), Paris-time dates
//! ([`dates`]), generated EAN-13 codes ([`ean13`]), file names and their
//! order ([`file_name`]), and applying rows to cards exactly once through a
//! [`apply::CardStore`] ([`apply::memory::MemoryCards`] is the reference).
//! The pipeline does not run them yet: there is no stored card store, and
//! the splitter and processor know points files only.

pub mod apply;
pub mod cards;
pub mod dates;
pub mod ean13;
pub mod file_name;
pub mod programs;
pub mod tier_changes;
