//! Building the SDK clients, once per process.

use crate::mail::Mailer;
use crate::objects::Objects;
use crate::queues::Queues;
use crate::settings::Settings;
use crate::tables::Tables;
use aws_config::BehaviorVersion;

/// Every adapter a function may need, built from one shared SDK config.
#[derive(Clone)]
pub struct Aws {
    pub settings: Settings,
    pub objects: Objects,
    pub tables: Tables,
    pub queues: Queues,
    pub mailer: Mailer,
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
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(path_style)
                .build(),
        );
        Aws {
            objects: Objects::new(s3, &settings),
            tables: Tables::new(aws_sdk_dynamodb::Client::new(&config), &settings),
            queues: Queues::new(aws_sdk_sqs::Client::new(&config), &settings),
            mailer: Mailer::new(aws_sdk_ses::Client::new(&config), &settings),
            settings,
        }
    }
}
