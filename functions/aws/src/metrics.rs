//! Metrics as CloudWatch Embedded Metric Format (EMF) lines.
//!
//! On Lambda a JSON line written to stdout with an `_aws` member becomes a
//! metric, extracted from the log stream by CloudWatch: no API call, no
//! agent, no cost per call (AWS, "Specification: Embedded metric format").
//! Off Lambda (the local runner, the command line, tests) the same line is
//! a debug log of target `metrics` (`RUST_LOG=metrics=debug` shows them);
//! tests keep the lines in memory and read them back.
//!
//! Dimensions stay low-cardinality (the function, a kind, a reason): every
//! distinct value is a metric of its own. Tenant ids, job ids and object
//! keys are properties, searchable in the logs and never billed as metrics.
//! Every value is published twice: with its record's dimensions, and with
//! none (the total the alarms and the dashboard read).
//!
//! What the functions emit ([`names`]):
//!
//! | function | when | values | dimensions |
//! |---|---|---|---|
//! | splitter | a split's run ends (done or at a checkpoint) | `SplitRows`, `SplitSeconds`, `SplitRowsPerSecond` | `Function`, `Kind` |
//! | splitter | an upload no tenant owns | `UploadsIgnored` | `Function` |
//! | processor | a batch is settled | `BatchRows`, `BatchSeconds`, `BatchRetries`, `DeadBatches` (given up from the dead-letter queue) | `Function`, `Kind` |
//! | finalizer | a job's email is sent | `RowsApplied`, `RowsFailed`, `RowsSkipped`, `RowsNotProcessed`, `PointsCredited`, `PointsDebited`, `UploadToEmailSeconds` (a dry run: `DryRunRows` instead of the rows and points) | `Function`, `Kind` |
//! | finalizer | an email is sent or not | `EmailsSent`, `EmailsFailed` (retried), `EmailsUnconfirmed` (SES may have it: not sent again) | `Function` |
//! | watchdog | each sweep | `UnfinishedJobs`, `JobsStalled`, `FinalizeAskedAgain`, `SplitsAskedAgain`, `ReviewsExpired`, `WatchdogFailures` | `Function` |

use serde_json::{json, Map, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Most dimensions one record may have (EMF allows 30 per dimension set).
pub const MAX_DIMENSIONS: usize = 30;
/// Most values one record may carry (EMF allows 100 metrics per document).
pub const MAX_VALUES: usize = 100;

/// The metrics' names (see the module's table).
pub mod names {
    pub const SPLIT_ROWS: &str = "SplitRows";
    pub const SPLIT_SECONDS: &str = "SplitSeconds";
    pub const SPLIT_ROWS_PER_SECOND: &str = "SplitRowsPerSecond";
    pub const BATCH_ROWS: &str = "BatchRows";
    pub const BATCH_SECONDS: &str = "BatchSeconds";
    pub const BATCH_RETRIES: &str = "BatchRetries";
    pub const DEAD_BATCHES: &str = "DeadBatches";
    pub const ROWS_APPLIED: &str = "RowsApplied";
    pub const ROWS_FAILED: &str = "RowsFailed";
    pub const ROWS_SKIPPED: &str = "RowsSkipped";
    pub const ROWS_NOT_PROCESSED: &str = "RowsNotProcessed";
    pub const POINTS_CREDITED: &str = "PointsCredited";
    pub const POINTS_DEBITED: &str = "PointsDebited";
    pub const UPLOAD_TO_EMAIL_SECONDS: &str = "UploadToEmailSeconds";
    pub const DRY_RUN_ROWS: &str = "DryRunRows";
    pub const EMAILS_SENT: &str = "EmailsSent";
    pub const EMAILS_FAILED: &str = "EmailsFailed";
    pub const EMAILS_UNCONFIRMED: &str = "EmailsUnconfirmed";
    pub const UNFINISHED_JOBS: &str = "UnfinishedJobs";
    pub const JOBS_STALLED: &str = "JobsStalled";
    pub const FINALIZE_ASKED_AGAIN: &str = "FinalizeAskedAgain";
    pub const SPLITS_ASKED_AGAIN: &str = "SplitsAskedAgain";
    pub const REVIEWS_EXPIRED: &str = "ReviewsExpired";
    pub const WATCHDOG_FAILURES: &str = "WatchdogFailures";
}

/// The `Kind` dimension of a job's kind (`unknown` before its file says).
pub fn kind_dimension(kind: Option<shared::kind::ImportKind>) -> &'static str {
    kind.map_or("unknown", shared::kind::ImportKind::as_str)
}

/// The unit of a value, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    CountPerSecond,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::CountPerSecond => "Count/Second",
        }
    }
}

/// One EMF document: values that share their dimensions, with properties
/// that say which tenant, job or object they are about.
#[derive(Debug, Clone, Default)]
pub struct Record {
    dimensions: Vec<(&'static str, String)>,
    values: Vec<(&'static str, Unit, f64)>,
    properties: Vec<(&'static str, Value)>,
}

impl Record {
    pub fn new() -> Self {
        Self::default()
    }

    /// A dimension: part of the metric's identity, so a value from a short
    /// fixed list, never an id.
    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        assert!(
            self.dimensions.len() < MAX_DIMENSIONS,
            "an EMF record has at most {MAX_DIMENSIONS} dimensions"
        );
        self.dimensions.push((name, value.into()));
        self
    }

    pub fn count(self, name: &'static str, value: u64) -> Self {
        self.value(name, Unit::Count, value as f64)
    }

    pub fn value(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        assert!(
            self.values.len() < MAX_VALUES,
            "an EMF record has at most {MAX_VALUES} values"
        );
        self.values.push((name, unit, value));
        self
    }

    /// A property: in the log line, searchable, not a metric.
    pub fn property(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.properties.push((name, value.into()));
        self
    }

    /// The EMF document, stamped with `epoch_millis`.
    pub fn document(&self, namespace: &str, epoch_millis: u64) -> Value {
        let mut root = Map::new();
        for (name, value) in &self.properties {
            root.insert((*name).to_owned(), value.clone());
        }
        for (name, value) in &self.dimensions {
            root.insert((*name).to_owned(), Value::from(value.as_str()));
        }
        for (name, _, value) in &self.values {
            root.insert((*name).to_owned(), json!(value));
        }
        let dimension_set: Vec<&str> = self.dimensions.iter().map(|(name, _)| *name).collect();
        // Each value also as one metric over every dimension value (an empty
        // set): what alarms and the dashboard's totals read.
        let dimension_sets = if dimension_set.is_empty() {
            json!([[]])
        } else {
            json!([dimension_set, []])
        };
        let metrics: Vec<Value> = self
            .values
            .iter()
            .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit.as_str() }))
            .collect();
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": epoch_millis,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": dimension_sets,
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(root)
    }
}

#[derive(Clone)]
enum Sink {
    Stdout,
    Log,
    Memory(Arc<Mutex<Vec<Value>>>),
}

/// Where a function's metrics go: see the module's documentation.
#[derive(Clone)]
pub struct Metrics {
    namespace: String,
    sink: Sink,
}

impl Metrics {
    /// Stdout on Lambda (where CloudWatch reads it), a debug log elsewhere.
    pub fn new(namespace: impl Into<String>) -> Self {
        let sink = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            Sink::Stdout
        } else {
            Sink::Log
        };
        Metrics {
            namespace: namespace.into(),
            sink,
        }
    }

    /// Metrics kept in memory, for [`Metrics::recorded`].
    pub fn in_memory(namespace: impl Into<String>) -> Self {
        Metrics {
            namespace: namespace.into(),
            sink: Sink::Memory(Arc::default()),
        }
    }

    /// The documents emitted so far (in memory only; none otherwise).
    pub fn recorded(&self) -> Vec<Value> {
        match &self.sink {
            Sink::Memory(kept) => kept.lock().expect("metrics").clone(),
            Sink::Stdout | Sink::Log => Vec::new(),
        }
    }

    pub fn emit(&self, record: Record) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let document = record.document(&self.namespace, now.as_millis() as u64);
        // One write per line, so that a log line cannot split it.
        let line = format!("{document}\n");
        let written = match &self.sink {
            Sink::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
            Sink::Log => {
                tracing::debug!(target: "metrics", "{document}");
                Ok(())
            }
            Sink::Memory(kept) => {
                kept.lock().expect("metrics").push(document);
                Ok(())
            }
        };
        if let Err(err) = written {
            tracing::warn!(error = %err, "a metric could not be written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_an_emf_document_with_its_dimensions_values_and_properties() {
        let record = Record::new()
            .dimension("Reason", "unknown_tenant")
            .count("UploadsIgnored", 1)
            .value("Waited", Unit::Seconds, 2.5)
            .property("tenant", "acme");
        let document = record.document("loyalty-import", 1_700_000_000_123);
        assert_eq!(
            document,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_123u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "loyalty-import",
                        "Dimensions": [["Reason"], []],
                        "Metrics": [
                            {"Name": "UploadsIgnored", "Unit": "Count"},
                            {"Name": "Waited", "Unit": "Seconds"},
                        ],
                    }],
                },
                "Reason": "unknown_tenant",
                "UploadsIgnored": 1.0,
                "Waited": 2.5,
                "tenant": "acme",
            })
        );
    }

    #[test]
    fn a_dimension_or_value_cannot_be_overwritten_by_a_property_of_its_name() {
        let document = Record::new()
            .property("Reason", "from a property")
            .dimension("Reason", "unknown_tenant")
            .count("UploadsIgnored", 1)
            .document("n", 0);
        assert_eq!(document["Reason"], "unknown_tenant");
    }

    #[test]
    fn the_largest_record_fits_the_emf_limits() {
        let name = |prefix: &str, i: usize| -> &'static str {
            Box::leak(format!("{prefix}{i}").into_boxed_str())
        };
        let mut record = Record::new();
        for i in 0..MAX_DIMENSIONS {
            record = record.dimension(name("dimension", i), "x");
        }
        for i in 0..MAX_VALUES {
            record = record.count(name("value", i), 1);
        }
        let document = record.document("n", 0);
        let set = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(set["Dimensions"][0].as_array().map(Vec::len), Some(30));
        assert_eq!(set["Dimensions"][1], json!([]));
        assert_eq!(set["Metrics"].as_array().map(Vec::len), Some(100));
    }

    #[test]
    #[should_panic(expected = "at most 100 values")]
    fn a_record_past_the_emf_limits_is_refused() {
        let mut record = Record::new();
        for _ in 0..=MAX_VALUES {
            record = record.count("a", 1);
        }
    }

    #[test]
    fn metrics_in_memory_are_read_back() {
        let metrics = Metrics::in_memory("n");
        metrics.emit(Record::new().count("UploadsIgnored", 1));
        let recorded = metrics.recorded();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0]["UploadsIgnored"], 1.0);
    }
}
