//! Sending the tenant's emails through SES: one message to all its
//! recipients, with a plain text and an HTML part.

use crate::settings::Settings;
use crate::AwsError;
use aws_sdk_ses::error::SdkError;
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

    /// Sends one email to every one of its recipients (at most
    /// `shared::tenant::MAX_RECIPIENTS`, under SES's 50 destinations);
    /// returns the SES message id.
    pub async fn send(&self, email: &Email) -> Result<String, MailError> {
        let content = |text: &str| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| MailError::NotSent(AwsError::new("ses:SendEmail", e)))
        };
        let out = self
            .client
            .send_email()
            .source(&self.sender)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(email.to.clone()))
                    .build(),
            )
            .message(
                Message::builder()
                    .subject(content(&email.subject)?)
                    .body(
                        Body::builder()
                            .text(content(&email.text)?)
                            .html(content(&email.html)?)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                // Refused by SES, or never sent: safe to send again. Lost on
                // the way back (timeout, dropped connection): SES may have it.
                let sent = !matches!(
                    e,
                    SdkError::ConstructionFailure(_) | SdkError::ServiceError(_)
                );
                let err = AwsError::sdk("ses:SendEmail", e);
                if sent {
                    MailError::Unconfirmed(err)
                } else {
                    MailError::NotSent(err)
                }
            })?;
        Ok(out.message_id().to_owned())
    }
}

/// Why an email may not have gone out.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Certainly not sent: sending again cannot duplicate it.
    #[error("email not sent: {0}")]
    NotSent(AwsError),
    /// The request went out but no answer came back: SES may have sent it.
    #[error("email perhaps sent, unconfirmed: {0}")]
    Unconfirmed(AwsError),
}
