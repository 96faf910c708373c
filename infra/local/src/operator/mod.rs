//! The operator's commands, on the local stack or a deployed one
//! (`loyalty-local --stack-env`): a tenant's jobs, its settings and key,
//! the dead-letter queues, the watchdog's last sweep. Each command's
//! module reads or changes what it shows and renders it twice: a table a
//! person reads, and JSON (`--json`).

pub mod dlq;
pub mod jobs;
mod peek;
pub mod table;
pub mod tenants;
pub mod watchdog;

use shared::tenant::Language;

/// An ISO 3166 two-letter country code, in capitals.
pub fn country(value: &str) -> Result<String, String> {
    shared::tenant::country_code(value).map_err(|e| e.to_string())
}

/// The language of a tenant's emails.
pub fn language(value: &str) -> Result<Language, String> {
    value.parse()
}
