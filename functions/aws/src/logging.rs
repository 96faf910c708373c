//! Structured logs: JSON lines on Lambda, readable text on a terminal.
//!
//! A JSON line carries the fields of the spans it was logged in: the tenant
//! and the job (`"span": {"tenant": …, "job": …}`), the batch in the
//! processor. Texts that may quote a file (reasons, errors, object keys) are
//! logged through [`shared::redact`]: no customer's email address, phone
//! number or card code reaches a log.

use std::io::IsTerminal;
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// `RUST_LOG`, or `info` when it is not set.
pub fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The functions' JSON lines, written to `writer` (CloudWatch reads stdout).
pub fn json<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .with_current_span(true)
        .flatten_event(true)
        .without_time()
        .with_writer(writer)
        .finish()
}

pub fn init() {
    let result = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        tracing::subscriber::set_global_default(json(filter(), std::io::stdout))
            .map_err(|e| e.to_string())
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init()
            .map_err(|e| e.to_string())
    };
    // A second init (tests, the local runner) keeps the first subscriber.
    drop(result);
}
