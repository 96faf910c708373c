//! Sending the admin's emails through SES.

use crate::settings::Settings;
use crate::AwsError;
use aws_sdk_ses::types::{Body, Content, Destination, Message};
use aws_sdk_ses::Client;
use shared::notification::Email;

#[derive(Clone)]
pub struct Mailer {
    client: Client,
    sender: String,
}

impl Mailer {
    pub fn new(client: Client, settings: &Settings) -> Self {
        Mailer {
            client,
            sender: settings.sender.clone(),
        }
    }

    /// Sends one email; returns the SES message id.
    pub async fn send(&self, email: &Email) -> Result<String, AwsError> {
        let content = |text: &str| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| AwsError::new("ses:SendEmail", e))
        };
        let out = self
            .client
            .send_email()
            .source(&self.sender)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .message(
                Message::builder()
                    .subject(content(&email.subject)?)
                    .body(Body::builder().text(content(&email.text)?).build())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::sdk("ses:SendEmail", e))?;
        Ok(out.message_id().to_owned())
    }
}
