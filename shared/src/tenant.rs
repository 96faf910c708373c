//! Tenants (one merchant each) and their API keys.
//!
//! An API key reads `<tenant>.<secret>`; only the SHA-256 of the secret is
//! stored, and keys are compared in constant time.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub tenant_id: String,
    /// The registered admin: the only address that import emails go to.
    pub admin_email: String,
    /// ISO 3166 alpha-2 country used to read national mobile numbers.
    pub default_country: String,
    /// Hex SHA-256 of the API key's secret part.
    pub api_key_hash: String,
    /// Programs, tiers and card settings, for membership imports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memberships: Option<crate::membership::programs::Memberships>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("tenant id '{0}' must be 3 to 40 characters of a-z, 0-9 and '-'")]
    InvalidId(String),
    #[error("admin email '{0}' is not a valid email address")]
    InvalidAdminEmail(String),
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
    match country.parse::<phonenumber::country::Id>() {
        Ok(_) => Ok(country),
        Err(_) => Err(TenantError::InvalidCountry(value.to_owned())),
    }
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
        let admin = crate::identifier::CustomerRef::email(admin_email)
            .map_err(|_| TenantError::InvalidAdminEmail(admin_email.to_owned()))?;
        let country = country_code(default_country)?;
        let secret = hex::encode(secret);
        let tenant = Tenant {
            tenant_id: tenant_id.to_owned(),
            admin_email: admin.value().to_owned(),
            default_country: country,
            api_key_hash: hash_secret(&secret),
            memberships: None,
        };
        Ok((tenant, format!("{tenant_id}.{secret}")))
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
    fn tenant_ids_are_restricted() {
        assert!(validate_tenant_id("acme-shop-2").is_ok());
        assert!(validate_tenant_id("Acme").is_err());
        assert!(validate_tenant_id("a/b").is_err());
    }
}
