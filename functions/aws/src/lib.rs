//! The AWS side of loyalty-import, shared by every function.
//!
//! [`Aws::from_env`] is the one place clients are built (every client honours
//! `AWS_ENDPOINT_URL`; S3 switches to path-style addressing against an
//! emulator). The adapters translate between the domain's types and S3, SQS,
//! DynamoDB and SES; no function talks to an SDK client directly (the raw
//! clients, the fault plan, the latency model and the access and capacity records are behind
//! the `testing` feature, which only the local runner and the tests turn on).

#[cfg(any(test, feature = "testing"))]
pub mod access;
#[cfg(any(test, feature = "testing"))]
pub mod capacity;
pub mod clients;
#[cfg(any(test, feature = "testing"))]
pub mod faults;
#[cfg(any(test, feature = "testing"))]
pub mod latency;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod objects;
pub mod queues;
pub mod s3_event;
pub mod settings;
pub mod sqs;
pub mod tables;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;

pub use clients::Aws;
pub use settings::Settings;

/// The instant an invocation's work is to be over by: three quarters of
/// the time left before the Lambda context's deadline (milliseconds since
/// the Unix epoch). A long split or processed file hands the rest to the
/// next invocation by then, so that an invocation past 80 % of its time
/// limit (the template's duration alarm) is one that went wrong, not a
/// long file.
pub fn deadline_of(epoch_millis: u64) -> std::time::Instant {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let left = std::time::Duration::from_millis(epoch_millis).saturating_sub(now);
    std::time::Instant::now() + left * WORK_SHARE_PERCENT / 100
}

/// The share of an invocation's time that [`deadline_of`] gives its work.
pub const WORK_SHARE_PERCENT: u32 = 75;

/// An error talking to AWS, with the call that failed.
#[derive(Debug, thiserror::Error)]
#[error("{call}: {message}")]
pub struct AwsError {
    pub call: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(call: &'static str, err: impl std::fmt::Display) -> Self {
        AwsError {
            call,
            message: err.to_string(),
        }
    }

    /// Maps an SDK error of any service (they share smithy's type), keeping
    /// the service's own code and message.
    pub fn sdk<E, R>(call: &'static str, err: SdkError<E, R>) -> Self
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        AwsError {
            call,
            message: DisplayErrorContext(err).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    #[test]
    fn an_invocations_work_ends_at_three_quarters_of_its_time() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let deadline = now + Duration::from_secs(60);
        let work = deadline_of(deadline.as_millis() as u64);
        let left = work.saturating_duration_since(Instant::now());
        assert!(left <= Duration::from_secs(45), "{left:?}");
        assert!(left >= Duration::from_secs(44), "{left:?}");
        // A deadline past gives no time at all.
        let past = deadline_of((now - Duration::from_secs(1)).as_millis() as u64);
        assert!(past <= Instant::now());
    }
}
