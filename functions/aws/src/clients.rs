//! Building the SDK clients, once per process.

use crate::faults::FaultPlan;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::objects::Objects;
use crate::queues::Queues;
use crate::settings::Settings;
use crate::tables::Tables;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;

/// Attempts per DynamoDB call: a throttled or briefly unavailable table is
/// retried with jittered exponential backoff before a batch is given back to
/// its queue (never recorded as a row's failure).
const DYNAMODB_ATTEMPTS: u32 = 8;

/// Every adapter a function may need, built from one shared SDK config.
#[derive(Clone)]
pub struct Aws {
    pub settings: Settings,
    pub objects: Objects,
    pub tables: Tables,
    pub queues: Queues,
    pub mailer: Mailer,
    /// Not a client: EMF lines in the function's log (tests may swap in
    /// `Metrics::in_memory`).
    pub metrics: Metrics,
}

impl Aws {
    /// Reads the settings and credentials from the environment. With
    /// `AWS_ENDPOINT_URL` set (an emulator), S3 uses path-style addresses.
    pub async fn from_env() -> anyhow::Result<Self> {
        let settings = Settings::from_env()?;
        Ok(Self::new(settings).await)
    }

    pub async fn new(settings: Settings) -> Self {
        Self::build(settings, None).await
    }

    /// The same clients with a fault plan installed in every one of them
    /// (tests and the local runner only).
    pub async fn with_faults(settings: Settings, plan: FaultPlan) -> Self {
        Self::build(settings, Some(plan)).await
    }

    async fn build(settings: Settings, faults: Option<FaultPlan>) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let mut s3 = aws_sdk_s3::config::Builder::from(&config).force_path_style(path_style);
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_config(RetryConfig::standard().with_max_attempts(DYNAMODB_ATTEMPTS));
        let mut sqs = aws_sdk_sqs::config::Builder::from(&config);
        let mut ses = aws_sdk_ses::config::Builder::from(&config);
        if let Some(plan) = faults {
            s3 = s3.interceptor(plan.clone());
            dynamodb = dynamodb.interceptor(plan.clone());
            sqs = sqs.interceptor(plan.clone());
            ses = ses.interceptor(plan);
        }
        Aws {
            objects: Objects::new(aws_sdk_s3::Client::from_conf(s3.build()), &settings),
            tables: Tables::new(
                aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
                &settings,
            ),
            queues: Queues::new(aws_sdk_sqs::Client::from_conf(sqs.build()), &settings),
            mailer: Mailer::new(aws_sdk_ses::Client::from_conf(ses.build()), &settings),
            metrics: Metrics::new(settings.metrics_namespace.clone()),
            settings,
        }
    }
}
