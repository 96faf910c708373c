//! The loyalty-import domain.
//!
//! Everything here is plain Rust: file formats, row validation, the points
//! ledger rules, batching, job state and the processed file. AWS lives in the
//! adapters of `loyalty-aws`; the functions wire the two together.
//!
//! One file's journey through this crate:
//! [`split::split`] reads the upload, validates each row against its
//! [`points`] format and hands [`batch::Batch`]es to a sink; [`apply::apply_batch`]
//! applies a batch to wallets ([`ledger`]) through a [`apply::LedgerStore`];
//! [`processed::write_processed`] merges the original rows with their
//! [`outcome::RowOutcome`]s; [`notification`] words the admin's email.

pub mod admission;
pub mod apply;
pub mod batch;
pub mod csv_input;
pub mod digest;
pub mod history;
pub mod identifier;
pub mod job;
pub mod kind;
pub mod ledger;
pub mod membership;
pub mod notification;
pub mod outcome;
pub mod points;
pub mod processed;
pub mod redact;
pub mod reversal;
pub mod review;
pub mod smile;
pub mod split;
pub mod sweep;
pub mod tenant;
pub mod text_encoding;
pub mod upload;

/// In-memory stores and fixtures for the tests of this crate and of the
/// pipeline (feature `test-support`); never in a function's build.
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
