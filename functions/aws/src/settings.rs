//! Configuration, read once at start-up from the environment the template sets.

use std::env;

#[derive(Debug, Clone)]
pub struct Settings {
    pub bucket: String,
    pub tenants_table: String,
    pub jobs_table: String,
    pub wallets_table: String,
    pub outcomes_table: String,
    pub subscriptions_table: String,
    pub ingest_queue_url: String,
    pub batch_queue_url: String,
    pub finalize_queue_url: String,
    /// The verified address import emails are sent from.
    pub sender: String,
    /// The SES configuration set every email is sent under
    /// (`LOYALTY_SES_CONFIGURATION_SET`): its event destination counts
    /// deliveries, bounces and complaints in CloudWatch. None: sent without.
    pub ses_configuration_set: Option<String>,
    /// Rows per batch message: 196 = four pages of 49 rows, each page one
    /// transaction (`shared::apply::PAGE_ROWS`).
    pub rows_per_batch: usize,
    /// The fewest shards a split spreads a file's rows over; a larger
    /// points file gets more (`shared::split::shards_for`).
    pub shards: u32,
    /// Rows between a split's checkpoints (`shared::split::CHECKPOINT_ROWS`).
    pub split_checkpoint_rows: u64,
    /// Rows between the times the finalizer looks at its deadline (and
    /// checkpoints, if a part was uploaded or it stops): see
    /// `shared::processed::BOUNDARY_ROWS`.
    pub finalize_boundary_rows: u64,
    /// Largest file an API upload may declare.
    pub max_upload_bytes: u64,
    /// Largest file imported at all (a console drop has no declared size):
    /// a larger one is rejected before anything of it is read.
    pub max_file_bytes: u64,
    pub upload_url_seconds: u64,
    /// How long the processed-file link in the email stays valid.
    pub link_hours: u64,
    /// The HTTP API's base URL (ending in `/`): the emailed link is the
    /// API's `downloads/…` route, which signs a fresh S3 link at each click.
    /// Without it (the local emulator has no API Gateway) the email carries
    /// a presigned S3 link, which lasts only as long as the credentials that
    /// signed it.
    pub api_url: Option<String>,
    /// How long a finalizer run holds a job before another may take over;
    /// longer than a run may take (the function's timeout).
    pub finalize_lease_seconds: i64,
    /// The batch queue's dead-letter queue: batches that arrive from it have
    /// failed on every delivery and are given up.
    pub dead_batch_queue_arn: String,
    /// The ingest queue's dead-letter queue: an upload event from it is one
    /// whose split failed on every delivery, and is given up.
    pub dead_upload_queue_arn: Option<String>,
    /// A job with no progress for this long is closed by the watchdog, its
    /// unprocessed rows reported. Longer than a batch can take to reach the
    /// dead-letter queue (visibility timeout times receives).
    pub stall_seconds: i64,
    /// How long a tier change file waits for the card code file of the same
    /// day and sequence before it is applied without it.
    pub membership_wait_seconds: i64,
    /// The CloudWatch namespace of the functions' metrics (`crate::metrics`).
    pub metrics_namespace: String,
    /// The web origins (`https://portal.example`) whose pages may call the
    /// API from a browser (`LOYALTY_ALLOWED_ORIGINS`, separated by commas);
    /// none by default.
    pub allowed_origins: Vec<String>,
    /// A tenant's share of the API: its requests with a key in one minute
    /// (`LOYALTY_TENANT_REQUESTS_PER_MINUTE`; 0, no limit). Past it, 429
    /// until the next minute (`tables::quota`).
    pub tenant_requests_per_minute: u32,
}

/// A tenant's requests per minute by default: a quarter of the API's own
/// throttle (20 a second in the template), so that one tenant's burst
/// leaves the others three quarters of it.
pub const TENANT_REQUESTS_PER_MINUTE: u32 = 300;

/// The metrics' namespace when the environment names none.
pub const METRICS_NAMESPACE: &str = "loyalty-import";

/// The largest file imported, by default: 1 GiB (README, "Limits").
pub const MAX_FILE_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {0}='{1}' is not a valid number")]
    NotANumber(&'static str, String),
}

fn required(name: &'static str) -> Result<String, SettingsError> {
    env::var(name).map_err(|_| SettingsError::Missing(name))
}

fn number<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, SettingsError> {
    match env::var(name) {
        Ok(v) => v.parse().map_err(|_| SettingsError::NotANumber(name, v)),
        Err(_) => Ok(default),
    }
}

/// A comma-separated list of origins, each as a browser sends it in an
/// `Origin` header (no trailing slash).
fn origins(list: &str) -> Vec<String> {
    list.split(',')
        .map(|o| o.trim().trim_end_matches('/'))
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Settings {
            bucket: required("LOYALTY_BUCKET")?,
            tenants_table: required("LOYALTY_TENANTS_TABLE")?,
            jobs_table: required("LOYALTY_JOBS_TABLE")?,
            wallets_table: required("LOYALTY_WALLETS_TABLE")?,
            outcomes_table: required("LOYALTY_OUTCOMES_TABLE")?,
            subscriptions_table: required("LOYALTY_SUBSCRIPTIONS_TABLE")?,
            ingest_queue_url: required("LOYALTY_INGEST_QUEUE_URL")?,
            batch_queue_url: required("LOYALTY_BATCH_QUEUE_URL")?,
            finalize_queue_url: required("LOYALTY_FINALIZE_QUEUE_URL")?,
            sender: required("LOYALTY_SENDER")?,
            ses_configuration_set: env::var("LOYALTY_SES_CONFIGURATION_SET")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            rows_per_batch: number("LOYALTY_ROWS_PER_BATCH", 196)?,
            shards: number("LOYALTY_SHARDS", 8)?,
            split_checkpoint_rows: number(
                "LOYALTY_SPLIT_CHECKPOINT_ROWS",
                shared::split::CHECKPOINT_ROWS,
            )?,
            finalize_boundary_rows: number(
                "LOYALTY_FINALIZE_BOUNDARY_ROWS",
                shared::processed::BOUNDARY_ROWS,
            )?,
            max_upload_bytes: number("LOYALTY_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)?,
            max_file_bytes: number("LOYALTY_MAX_FILE_BYTES", MAX_FILE_BYTES)?,
            upload_url_seconds: number("LOYALTY_UPLOAD_URL_SECONDS", 900)?,
            link_hours: number("LOYALTY_LINK_HOURS", 72)?,
            api_url: env::var("LOYALTY_API_URL")
                .ok()
                .filter(|u| !u.trim().is_empty())
                .map(|u| format!("{}/", u.trim().trim_end_matches('/'))),
            finalize_lease_seconds: number("LOYALTY_FINALIZE_LEASE_SECONDS", 120)?,
            dead_batch_queue_arn: required("LOYALTY_DEAD_BATCH_QUEUE_ARN")?,
            dead_upload_queue_arn: env::var("LOYALTY_DEAD_UPLOAD_QUEUE_ARN").ok(),
            stall_seconds: number("LOYALTY_STALL_SECONDS", 3600)?,
            membership_wait_seconds: number("LOYALTY_MEMBERSHIP_WAIT_SECONDS", 900)?,
            metrics_namespace: env::var("LOYALTY_METRICS_NAMESPACE")
                .ok()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| METRICS_NAMESPACE.to_owned()),
            allowed_origins: origins(&env::var("LOYALTY_ALLOWED_ORIGINS").unwrap_or_default()),
            tenant_requests_per_minute: number(
                "LOYALTY_TENANT_REQUESTS_PER_MINUTE",
                TENANT_REQUESTS_PER_MINUTE,
            )?,
        })
    }
}
