//! Structured logs: JSON lines on Lambda, readable text on a terminal.
//!
//! A JSON line is one flat object: `timestamp` (RFC 3339) and `level`,
//! which Lambda's log-level filtering reads (AWS, "Log-level filtering":
//! a line without them is taken as INFO); `message` and the event's own
//! fields; then the fields of every span it was logged in, at the top
//! level: the runtime's `requestId` and, with tracing active, `xrayTraceId`
//! (`lambda_runtime`'s invoke span), the `tenant` and `job`, the processor's
//! `batch`. An event's own field wins over a span's of the same name, an
//! inner span's over an outer one's. Texts that may quote a file (reasons,
//! errors, object keys) are logged through [`shared::redact`]: no
//! customer's email address, phone number or card code reaches a log.
//!
//! The level: `RUST_LOG` if set (a developer's), else
//! `AWS_LAMBDA_LOG_LEVEL` (what the template's `LoggingConfig` asks of the
//! function), else `info`.

use serde_json::{Map, Value};
use std::fmt;
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The filter directive from `RUST_LOG` and `AWS_LAMBDA_LOG_LEVEL`'s
/// values: see the module's documentation. Lambda's levels are TRACE,
/// DEBUG, INFO, WARN, ERROR and FATAL; `tracing` has no FATAL (ERROR).
pub fn directive(rust_log: Option<&str>, lambda_level: Option<&str>) -> String {
    if let Some(rust_log) = rust_log.filter(|s| !s.trim().is_empty()) {
        return rust_log.to_owned();
    }
    match lambda_level
        .map(|l| l.trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    }
    .to_owned()
}

/// The filter of this process: see [`directive`].
pub fn filter() -> EnvFilter {
    let rust_log = std::env::var("RUST_LOG").ok();
    let lambda_level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let directive = directive(rust_log.as_deref(), lambda_level.as_deref());
    EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The functions' JSON lines, written to `writer` (CloudWatch reads stdout).
pub fn json<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(JsonFields::new())
        .event_format(FlatJson)
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

/// One flat JSON object a line: see the module's documentation.
struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        line.insert("target".into(), Value::from(event.metadata().target()));
        // Outer spans first, so that inner ones overwrite them.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// An event's fields, into the line.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(captured: &Captured) -> Vec<Value> {
        String::from_utf8(captured.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_line_is_flat_with_the_request_the_trace_and_the_job_at_the_top() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = json(EnvFilter::new("info"), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let invoke = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "req-1",
                xrayTraceId = "Root=1-abc"
            );
            let _invoke = invoke.enter();
            let job = tracing::info_span!("split", tenant = "acme", job = "J1");
            let _job = job.enter();
            tracing::info!(rows = 12u64, tenant = "own", "file split");
            tracing::debug!("not logged at info");
        });
        let lines = lines(&captured);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["message"], "file split");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["requestId"], "req-1");
        assert_eq!(line["xrayTraceId"], "Root=1-abc");
        assert_eq!(line["job"], "J1");
        assert_eq!(line["rows"], 12);
        // The event's own field wins over the span's.
        assert_eq!(line["tenant"], "own");
        let stamp = line["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
    }

    #[test]
    fn rust_log_comes_first_then_the_level_lambda_is_configured_with() {
        assert_eq!(
            directive(Some("processor=debug"), Some("ERROR")),
            "processor=debug"
        );
        assert_eq!(directive(None, Some("WARN")), "warn");
        assert_eq!(directive(Some(" "), Some("debug")), "debug");
        assert_eq!(directive(None, Some("FATAL")), "error");
        assert_eq!(directive(None, Some("TRACE")), "trace");
        assert_eq!(directive(None, None), "info");
        assert_eq!(directive(None, Some("nonsense")), "info");
    }
}
