//! Building the SDK clients, once per process.

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

/// Each service's client configuration, before it is built.
struct Builders {
    s3: aws_sdk_s3::config::Builder,
    dynamodb: aws_sdk_dynamodb::config::Builder,
    sqs: aws_sdk_sqs::config::Builder,
    ses: aws_sdk_sesv2::config::Builder,
}

impl Builders {
    /// With `AWS_ENDPOINT_URL` set (an emulator), S3 uses path-style
    /// addresses; DynamoDB retries longer than the SDK's default.
    fn new(config: &aws_config::SdkConfig) -> Self {
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        Builders {
            s3: aws_sdk_s3::config::Builder::from(config).force_path_style(path_style),
            dynamodb: aws_sdk_dynamodb::config::Builder::from(config)
                .retry_config(RetryConfig::standard().with_max_attempts(DYNAMODB_ATTEMPTS)),
            sqs: aws_sdk_sqs::config::Builder::from(config),
            ses: aws_sdk_sesv2::config::Builder::from(config),
        }
    }
}

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
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::build(settings, Builders::new(&config))
    }

    /// The same clients with a fault plan installed in every one of them
    /// (feature `testing`: tests and the local runner only).
    #[cfg(any(test, feature = "testing"))]
    pub async fn with_faults(settings: Settings, plan: crate::faults::FaultPlan) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let b = Builders::new(&config);
        let builders = Builders {
            s3: b.s3.interceptor(plan.clone()),
            dynamodb: b.dynamodb.interceptor(plan.clone()),
            sqs: b.sqs.interceptor(plan.clone()),
            ses: b.ses.interceptor(plan),
        };
        Self::build(settings, builders)
    }

    /// The same clients with a fault plan (counting, say) and a latency
    /// model installed in every one of them (feature `testing`: the local
    /// runner only).
    #[cfg(any(test, feature = "testing"))]
    pub async fn with_model(
        settings: Settings,
        plan: crate::faults::FaultPlan,
        model: crate::latency::LatencyModel,
    ) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let b = Builders::new(&config);
        let builders = Builders {
            s3: b.s3.interceptor(plan.clone()).interceptor(model.clone()),
            dynamodb: b
                .dynamodb
                .interceptor(plan.clone())
                .interceptor(model.clone()),
            sqs: b.sqs.interceptor(plan.clone()).interceptor(model.clone()),
            ses: b.ses.interceptor(plan).interceptor(model),
        };
        Self::build(settings, builders)
    }

    fn build(settings: Settings, b: Builders) -> Self {
        let (s3, dynamodb, sqs, ses) = (b.s3, b.dynamodb, b.sqs, b.ses);
        Aws {
            objects: Objects::new(aws_sdk_s3::Client::from_conf(s3.build()), &settings),
            tables: Tables::new(
                aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
                &settings,
            ),
            queues: Queues::new(aws_sdk_sqs::Client::from_conf(sqs.build()), &settings),
            mailer: Mailer::new(aws_sdk_sesv2::Client::from_conf(ses.build()), &settings),
            metrics: Metrics::new(settings.metrics_namespace.clone()),
            settings,
        }
    }
}
