//! Sending the tenant's emails through SES (API v2): one message to all its
//! recipients, with a plain text and an HTML part, under the stack's
//! configuration set when there is one (its bounces and complaints are
//! counted in CloudWatch, and alarmed: infra/template.yaml).

use crate::settings::Settings;
use crate::AwsError;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;
use shared::notification::Email;

#[derive(Clone)]
pub struct Mailer {
    client: Client,
    sender: String,
    configuration_set: Option<String>,
}

impl Mailer {
    pub fn new(client: Client, settings: &Settings) -> Self {
        Mailer {
            client,
            sender: settings.sender.clone(),
            configuration_set: settings.ses_configuration_set.clone(),
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
            .from_email_address(&self.sender)
            .set_configuration_set_name(self.configuration_set.clone())
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(email.to.clone()))
                    .build(),
            )
            .content(
                EmailContent::builder()
                    .simple(
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
        Ok(out.message_id().unwrap_or_default().to_owned())
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
