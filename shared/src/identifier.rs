//! Customer identifiers: how a row names the wallet it touches.
//!
//! A row may carry an email, a mobile and a customer id; the first one present
//! (in that order) names the wallet, and every one given must be valid. If
//! another of them has a wallet of its own, the row may name two customers:
//! it fails (`conflicting_identifiers`) rather than guess. Each is normalised so the same
//! customer written differently is still one wallet: emails are trimmed and
//! lower-cased, mobiles become E.164 using the tenant's default country.

use crate::outcome::ErrorCode;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A normalised customer identifier, the key of a wallet within a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum CustomerRef {
    Email(String),
    Mobile(String),
    CustomerId(String),
}

/// Why a value is not a usable identifier (the caller adds row and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierError {
    pub code: ErrorCode,
    pub message: String,
}

const MAX_CUSTOMER_ID_LEN: usize = 128;

/// An address mail can reach: a bare `local@domain.tld`. The crate's
/// defaults also take a display name (`Alice <alice@example.com>`), an IP
/// literal (`carl@[127.0.0.1]`) and a domain without a dot
/// (`bob@localhost`); each would become a wallet or an admin nobody reaches.
const EMAIL_RULES: email_address::Options = email_address::Options {
    minimum_sub_domains: 2,
    allow_domain_literal: false,
    allow_display_text: false,
    allow_long_local_parts: false,
};

impl CustomerRef {
    pub fn email(raw: &str) -> Result<Self, IdentifierError> {
        let value = raw.trim();
        match email_address::EmailAddress::parse_with_options(value, EMAIL_RULES) {
            Ok(_) => Ok(CustomerRef::Email(value.to_lowercase())),
            Err(e) => Err(IdentifierError {
                code: ErrorCode::InvalidEmail,
                message: format!("'{value}' is not a valid email address ({e})"),
            }),
        }
    }

    /// Normalises a mobile number to E.164, reading national numbers in
    /// `default_country` (ISO 3166 alpha-2, e.g. `FR`).
    pub fn mobile(raw: &str, default_country: &str) -> Result<Self, IdentifierError> {
        let value = raw.trim();
        let invalid = |why: &str| IdentifierError {
            code: ErrorCode::InvalidMobile,
            message: format!("'{value}' is not a valid mobile number{why}"),
        };
        if value.contains(['e', 'E']) && value.contains('.') {
            return Err(invalid(
                ": it looks like a spreadsheet turned it into scientific notation; format the column as text",
            ));
        }
        let country_code = default_country.to_ascii_uppercase();
        let country = phonenumber::country::Id::from_str(&country_code).ok();
        // A national number written without its trunk prefix (France's
        // leading 0) is what a spreadsheet makes of 06 12 34 56 78 stored
        // as a number: refused, not completed by guess.
        let trunk = phonenumber::metadata::DATABASE
            .by_id(country_code.as_str())
            .and_then(|m| m.national_prefix())
            .filter(|prefix| *prefix == "0");
        let digits = value.trim_start_matches(|c: char| !c.is_ascii_digit() && c != '+');
        if trunk.is_some() && !digits.starts_with(['0', '+']) {
            return Err(invalid(&format!(
                ": a {country_code} number starts with 0, or with + and its country code; a \
                 spreadsheet may have dropped its leading zero: format the column as text"
            )));
        }
        let number = phonenumber::parse(country, value).map_err(|_| invalid(""))?;
        if !phonenumber::is_valid(&number) {
            let hint = if !value.starts_with(['0', '+']) {
                format!(" for {default_country}: if a spreadsheet dropped its leading zero or '+', format the column as text")
            } else {
                format!(" for {default_country}")
            };
            return Err(invalid(&hint));
        }
        Ok(CustomerRef::Mobile(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn customer_id(raw: &str) -> Result<Self, IdentifierError> {
        let value = raw.trim();
        if value.len() > MAX_CUSTOMER_ID_LEN || value.chars().any(char::is_control) {
            return Err(IdentifierError {
                code: ErrorCode::InvalidCustomerId,
                message: format!(
                    "'{value}' is not a valid customer id (at most {MAX_CUSTOMER_ID_LEN} characters, no control characters)"
                ),
            });
        }
        Ok(CustomerRef::CustomerId(value.to_owned()))
    }

    /// The column this identifier came from.
    pub fn kind(&self) -> &'static str {
        match self {
            CustomerRef::Email(_) => "email",
            CustomerRef::Mobile(_) => "mobile",
            CustomerRef::CustomerId(_) => "customer_id",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            CustomerRef::Email(v) | CustomerRef::Mobile(v) | CustomerRef::CustomerId(v) => v,
        }
    }
}

/// `email:alice@example.com`, `mobile:+33612345678`, `customer_id:C-42`.
impl fmt::Display for CustomerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}

impl From<CustomerRef> for String {
    fn from(c: CustomerRef) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for CustomerRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl FromStr for CustomerRef {
    type Err = String;
    /// Parses the `kind:value` form written by `Display` (already normalised).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("email", v)) => Ok(CustomerRef::Email(v.to_owned())),
            Some(("mobile", v)) => Ok(CustomerRef::Mobile(v.to_owned())),
            Some(("customer_id", v)) => Ok(CustomerRef::CustomerId(v.to_owned())),
            _ => Err(format!("'{s}' is not a customer reference")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            CustomerRef::email("  Alice@Example.COM ").unwrap(),
            CustomerRef::Email("alice@example.com".into())
        );
    }

    #[test]
    fn only_a_bare_address_with_a_dotted_domain_is_an_email() {
        for value in [
            "Alice <alice@example.com>",
            "bob@localhost",
            "carl@[127.0.0.1]",
            "dan@[IPv6:::1]",
        ] {
            let err = CustomerRef::email(value).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidEmail, "{value}");
            assert!(
                err.message.contains(&format!("'{value}'")),
                "{}",
                err.message
            );
        }
        assert!(CustomerRef::email("eve@mail.example.co.uk").is_ok());
    }

    #[test]
    fn an_invalid_email_names_the_value() {
        let err = CustomerRef::email("alice.example.com").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidEmail);
        assert!(err.message.contains("'alice.example.com'"));
    }

    #[test]
    fn national_mobiles_use_the_default_country() {
        assert_eq!(
            CustomerRef::mobile("06 12 34 56 78", "FR")
                .unwrap()
                .to_string(),
            "mobile:+33612345678"
        );
        assert_eq!(
            CustomerRef::mobile("+44 7911 123456", "FR")
                .unwrap()
                .to_string(),
            "mobile:+447911123456"
        );
    }

    #[test]
    fn a_mobile_in_scientific_notation_is_refused_with_a_hint() {
        let err = CustomerRef::mobile("3.3612E+10", "FR").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMobile);
        assert!(err.message.contains("scientific notation"));
    }

    #[test]
    fn a_mobile_that_lost_its_leading_zero_is_refused_with_a_hint() {
        for mangled in ["612345678", "33612345678"] {
            let err = CustomerRef::mobile(mangled, "FR").unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidMobile);
            assert!(
                err.message.contains("dropped its leading zero"),
                "{}",
                err.message
            );
        }
        // Where numbers are written without a trunk 0, they are read as usual.
        assert_eq!(
            CustomerRef::mobile("(415) 555-0132", "US").map(|c| c.to_string()),
            Ok("mobile:+14155550132".to_owned())
        );
        assert!(CustomerRef::mobile("0033 6 12 34 56 78", "FR").is_ok());
    }

    #[test]
    fn display_and_parse_round_trip() {
        let c = CustomerRef::CustomerId("C:42".into());
        assert_eq!(c.to_string().parse::<CustomerRef>().unwrap(), c);
    }
}
