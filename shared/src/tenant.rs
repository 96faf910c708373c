//! Tenants (one merchant each) and their API keys.
//!
//! An API key reads `<tenant>.<secret>`; only the SHA-256 of the secret is
//! stored, and keys are compared in constant time. A tenant's settings say
//! who its emails go to and in which language.

use crate::identifier::MobileCountry;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most addresses a tenant's emails go to, the admin's included. SES
/// takes up to 50 destinations a message; a merchant's list is a handful,
/// and a shorter bound keeps a mistyped list from mailing a crowd.
pub const MAX_RECIPIENTS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub tenant_id: String,
    /// The registered admin: the first address import emails go to.
    pub admin_email: String,
    /// Other addresses import emails go to, besides the admin's (at most
    /// [`MAX_RECIPIENTS`] in all, the admin's included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_recipients: Vec<String>,
    /// The language of its emails.
    #[serde(default)]
    pub language: Language,
    /// ISO 3166 alpha-2 country used to read national mobile numbers.
    pub default_country: String,
    /// Hex SHA-256 of the API key's secret part.
    pub api_key_hash: String,
    /// Programs, tiers and card settings, for membership imports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memberships: Option<crate::membership::programs::Memberships>,
}

/// What an operator changes of a registered tenant: each `None` stays as it
/// is; `recipients: Some(vec![])` leaves the admin alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    pub admin_email: Option<String>,
    /// The addresses besides the admin's, all of them (they replace the
    /// current ones).
    pub recipients: Option<Vec<String>>,
    pub language: Option<Language>,
    pub default_country: Option<String>,
}

impl SettingsChange {
    pub fn is_empty(&self) -> bool {
        *self == SettingsChange::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("tenant id '{0}' must be 3 to 40 characters of a-z, 0-9 and '-'")]
    InvalidId(String),
    #[error("admin email '{0}' is not a valid email address")]
    InvalidAdminEmail(String),
    #[error("recipient '{0}' is not a valid email address")]
    InvalidRecipient(String),
    #[error("{0} recipients: at most {MAX_RECIPIENTS}, the admin's address included")]
    TooManyRecipients(usize),
    #[error("default country '{0}' is not an ISO 3166 two-letter country code")]
    InvalidCountry(String),
}

pub fn validate_tenant_id(id: &str) -> Result<(), TenantError> {
    let ok = (3..=40).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(TenantError::InvalidId(id.to_owned()))
    }
}

/// A country code as a tenant's default country: ISO 3166 alpha-2, in
/// capitals, of a country whose mobile numbers can be read.
pub fn country_code(value: &str) -> Result<String, TenantError> {
    let country = value.trim().to_ascii_uppercase();
    if country.len() == 2 && MobileCountry::new(&country).is_known() {
        Ok(country)
    } else {
        Err(TenantError::InvalidCountry(value.to_owned()))
    }
}

/// The language of a tenant's emails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Fr,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::Fr];

    /// Its ISO 639-1 code, as stored and as HTML's `lang` reads it.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
        }
    }
}

impl std::str::FromStr for Language {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let code = value.trim().to_ascii_lowercase();
        Language::ALL
            .into_iter()
            .find(|l| l.code() == code)
            .ok_or_else(|| format!("'{value}' is not a language of the emails: use en or fr"))
    }
}

/// An address as a recipient: trimmed, lower-cased, a plain address with a
/// dotted domain (what the importer accepts as a customer's email).
fn email_address(value: &str) -> Option<String> {
    crate::identifier::CustomerRef::email(value)
        .ok()
        .map(|address| address.value().to_owned())
}

impl Tenant {
    /// A new tenant and its API key (shown once, never stored in clear).
    pub fn register(
        tenant_id: &str,
        admin_email: &str,
        default_country: &str,
        secret: [u8; 32],
    ) -> Result<(Tenant, String), TenantError> {
        validate_tenant_id(tenant_id)?;
        let admin = email_address(admin_email)
            .ok_or_else(|| TenantError::InvalidAdminEmail(admin_email.to_owned()))?;
        let country = country_code(default_country)?;
        let mut tenant = Tenant {
            tenant_id: tenant_id.to_owned(),
            admin_email: admin,
            more_recipients: Vec::new(),
            language: Language::default(),
            default_country: country,
            api_key_hash: String::new(),
            memberships: None,
        };
        let key = tenant.new_key(secret);
        Ok((tenant, key))
    }

    /// Gives the tenant a new API key made of `secret` and returns it
    /// (shown once, never stored in clear): once stored, the old key is
    /// refused.
    pub fn new_key(&mut self, secret: [u8; 32]) -> String {
        let secret = hex::encode(secret);
        self.api_key_hash = hash_secret(&secret);
        format!("{}.{secret}", self.tenant_id)
    }

    /// A short, harmless mark of the current key (the first 8 hex digits
    /// of its stored hash): enough to tell two keys apart, nothing to sign
    /// in with.
    pub fn key_fingerprint(&self) -> &str {
        self.api_key_hash
            .get(..8)
            .unwrap_or(self.api_key_hash.as_str())
    }

    /// The tenant with `change` applied, each value checked as when it was
    /// registered. The other recipients are kept unless `change` names
    /// them; an address that becomes the admin's is no longer among them.
    pub fn with_settings(mut self, change: &SettingsChange) -> Result<Tenant, TenantError> {
        if let Some(admin) = &change.admin_email {
            self.admin_email = email_address(admin)
                .ok_or_else(|| TenantError::InvalidAdminEmail(admin.clone()))?;
        }
        if let Some(country) = &change.default_country {
            self.default_country = country_code(country)?;
        }
        if let Some(language) = change.language {
            self.language = language;
        }
        let others = change
            .recipients
            .clone()
            .unwrap_or_else(|| self.more_recipients.clone());
        self.with_recipients(&others)
    }

    /// The tenant with these addresses receiving its emails besides the
    /// admin's; each checked as the admin's is, and kept once.
    pub fn with_recipients<S: AsRef<str>>(
        mut self,
        addresses: &[S],
    ) -> Result<Tenant, TenantError> {
        let mut more: Vec<String> = Vec::new();
        for address in addresses {
            let address = address.as_ref();
            let valid = email_address(address)
                .ok_or_else(|| TenantError::InvalidRecipient(address.to_owned()))?;
            if valid != self.admin_email && !more.contains(&valid) {
                more.push(valid);
            }
        }
        if more.len() + 1 > MAX_RECIPIENTS {
            return Err(TenantError::TooManyRecipients(more.len() + 1));
        }
        self.more_recipients = more;
        Ok(self)
    }

    /// Every address its emails go to: the admin's first, then the others,
    /// at most [`MAX_RECIPIENTS`] (an item written by hand may list more).
    pub fn recipients(&self) -> Vec<String> {
        let mut all = vec![self.admin_email.clone()];
        for address in &self.more_recipients {
            if all.len() == MAX_RECIPIENTS {
                break;
            }
            if !all.contains(address) {
                all.push(address.clone());
            }
        }
        all
    }

    /// Whether `secret` (the part after the dot) is this tenant's key.
    pub fn accepts_secret(&self, secret: &str) -> bool {
        constant_time_eq(hash_secret(secret).as_bytes(), self.api_key_hash.as_bytes())
    }
}

/// Splits an API key into the tenant it names and its secret.
pub fn parse_api_key(key: &str) -> Option<(&str, &str)> {
    let (tenant, secret) = key.trim().split_once('.')?;
    validate_tenant_id(tenant).ok()?;
    (!secret.is_empty()).then_some((tenant, secret))
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether two byte strings are equal, in a time that depends on their
/// lengths only (secrets are compared with it).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_countries_a_tenant_may_have_are_those_it_could_have_before() {
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                let code = String::from_utf8(vec![a, b]).unwrap();
                let before = code.parse::<phonenumber::country::Id>().is_ok();
                assert_eq!(country_code(&code).is_ok(), before, "{code}");
            }
        }
    }

    use super::*;

    #[test]
    fn a_registered_key_is_accepted_and_others_are_not() {
        let (tenant, key) = Tenant::register("acme", "Admin@Acme.test", "fr", [7; 32]).unwrap();
        assert_eq!(tenant.admin_email, "admin@acme.test");
        assert_eq!(tenant.default_country, "FR");
        let (id, secret) = parse_api_key(&key).unwrap();
        assert_eq!(id, "acme");
        assert!(tenant.accepts_secret(secret));
        assert!(!tenant.accepts_secret("wrong"));
        assert!(!key.contains(&tenant.api_key_hash));
    }

    #[test]
    fn an_admin_email_mail_cannot_reach_is_refused() {
        for admin in [
            "Admin <admin@acme.test>",
            "admin@localhost",
            "admin@[10.0.0.1]",
        ] {
            assert!(
                matches!(
                    Tenant::register("acme", admin, "FR", [7; 32]),
                    Err(TenantError::InvalidAdminEmail(a)) if a == admin
                ),
                "{admin}"
            );
        }
    }

    #[test]
    fn a_tenant_item_without_recipients_or_language_reads_as_english_to_the_admin() {
        let item = serde_json::json!({
            "tenant_id": "acme",
            "admin_email": "admin@acme.test",
            "default_country": "FR",
            "api_key_hash": "00",
        });
        let tenant: Tenant = serde_json::from_value(item).unwrap();
        assert_eq!(tenant.language, Language::En);
        assert_eq!(tenant.recipients(), ["admin@acme.test"]);
    }

    #[test]
    fn recipients_are_checked_normalised_and_kept_once_after_the_admin() {
        let (tenant, _) = Tenant::register("acme", "admin@acme.test", "FR", [7; 32]).unwrap();
        let tenant = tenant
            .with_recipients(&[
                " Ops@Acme.test",
                "ops@acme.test",
                "ADMIN@acme.test",
                "cfo@acme.test",
            ])
            .unwrap();
        assert_eq!(
            tenant.recipients(),
            ["admin@acme.test", "ops@acme.test", "cfo@acme.test"]
        );
        let stored = serde_json::to_value(&tenant).unwrap();
        let read: Tenant = serde_json::from_value(stored).unwrap();
        assert_eq!(read, tenant);
    }

    #[test]
    fn a_recipient_mail_cannot_reach_is_refused() {
        let (tenant, _) = Tenant::register("acme", "admin@acme.test", "FR", [7; 32]).unwrap();
        assert_eq!(
            tenant.with_recipients(&["ops@acme.test", "Ops <ops@acme.test>"]),
            Err(TenantError::InvalidRecipient("Ops <ops@acme.test>".into()))
        );
    }

    #[test]
    fn at_most_ten_addresses_receive_the_emails() {
        let (tenant, _) = Tenant::register("acme", "admin@acme.test", "FR", [7; 32]).unwrap();
        let nine: Vec<String> = (1..=9).map(|i| format!("ops{i}@acme.test")).collect();
        let ten = tenant.clone().with_recipients(&nine).unwrap();
        assert_eq!(ten.recipients().len(), MAX_RECIPIENTS);
        let mut eleven = nine.clone();
        eleven.push("ops10@acme.test".into());
        assert_eq!(
            tenant.clone().with_recipients(&eleven),
            Err(TenantError::TooManyRecipients(11))
        );
        // An item written by hand with more is read, and mails ten.
        let mut by_hand = ten;
        by_hand.more_recipients = eleven;
        assert_eq!(by_hand.recipients().len(), MAX_RECIPIENTS);
    }

    #[test]
    fn a_new_key_replaces_the_old_one() {
        let (mut tenant, old) = Tenant::register("acme", "admin@acme.test", "FR", [7; 32]).unwrap();
        let before = tenant.key_fingerprint().to_owned();
        let new = tenant.new_key([9; 32]);
        let secret = |key: &str| parse_api_key(key).unwrap().1.to_owned();
        assert!(tenant.accepts_secret(&secret(&new)));
        assert!(!tenant.accepts_secret(&secret(&old)));
        assert!(new.starts_with("acme."));
        assert_ne!(tenant.key_fingerprint(), before);
        assert_eq!(tenant.key_fingerprint().len(), 8);
    }

    #[test]
    fn settings_change_only_what_is_named_and_are_checked_as_at_registration() {
        let (tenant, _) = Tenant::register("acme", "admin@acme.test", "FR", [7; 32]).unwrap();
        let tenant = tenant.with_recipients(&["ops@acme.test"]).unwrap();
        let language = SettingsChange {
            language: Some(Language::Fr),
            ..SettingsChange::default()
        };
        let french = tenant.clone().with_settings(&language).unwrap();
        assert_eq!(french.language, Language::Fr);
        assert_eq!(french.recipients(), ["admin@acme.test", "ops@acme.test"]);
        assert_eq!(french.default_country, "FR");

        // The other recipient becomes the admin: it is listed once.
        let admin = SettingsChange {
            admin_email: Some("OPS@acme.test".into()),
            default_country: Some("be".into()),
            ..SettingsChange::default()
        };
        let moved = tenant.clone().with_settings(&admin).unwrap();
        assert_eq!(moved.recipients(), ["ops@acme.test"]);
        assert_eq!(moved.default_country, "BE");

        let none = SettingsChange {
            recipients: Some(Vec::new()),
            ..SettingsChange::default()
        };
        assert_eq!(
            tenant.clone().with_settings(&none).unwrap().recipients(),
            ["admin@acme.test"]
        );
        for (change, error) in [
            (
                SettingsChange {
                    admin_email: Some("admin@localhost".into()),
                    ..SettingsChange::default()
                },
                TenantError::InvalidAdminEmail("admin@localhost".into()),
            ),
            (
                SettingsChange {
                    default_country: Some("XX".into()),
                    ..SettingsChange::default()
                },
                TenantError::InvalidCountry("XX".into()),
            ),
            (
                SettingsChange {
                    recipients: Some(vec!["not an address".into()]),
                    ..SettingsChange::default()
                },
                TenantError::InvalidRecipient("not an address".into()),
            ),
        ] {
            assert_eq!(tenant.clone().with_settings(&change), Err(error));
        }
        assert!(SettingsChange::default().is_empty());
        assert!(!language.is_empty());
    }

    #[test]
    fn languages_read_from_their_codes() {
        assert_eq!("fr".parse::<Language>(), Ok(Language::Fr));
        assert_eq!(" EN ".parse::<Language>(), Ok(Language::En));
        assert!("de".parse::<Language>().is_err());
        let stored = serde_json::to_value(Language::Fr).unwrap();
        assert_eq!(stored, "fr");
    }

    #[test]
    fn tenant_ids_are_restricted() {
        assert!(validate_tenant_id("acme-shop-2").is_ok());
        assert!(validate_tenant_id("Acme").is_err());
        assert!(validate_tenant_id("a/b").is_err());
    }
}
