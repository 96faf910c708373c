//! Customer identifiers: how a row names the wallet it touches.
//!
//! A row may carry an email, a mobile and a customer id; the first one present
//! (in that order) names the wallet, and every one given must be valid. If
//! another of them has a wallet of its own, the row may name two customers:
//! it fails (`conflicting_identifiers`) rather than guess. Each is normalised so the same
//! customer written differently is still one wallet: emails are trimmed and
//! lower-cased, mobiles become E.164 using the tenant's default country.

use crate::outcome::ErrorCode;
use rlibphonenumber::{PhoneNumberFormat, Region, PHONE_NUMBER_UTIL};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// A normalised customer identifier, the key of a wallet within a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
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

/// How a tenant's mobile numbers are read: the default country of its
/// national numbers (ISO 3166 alpha-2, e.g. `FR`), found once per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileCountry {
    code: String,
    /// `None` for a code that is no region: only international numbers
    /// (`+…`) are then read.
    region: Option<Region>,
    /// Whether the country's national numbers begin with a trunk 0 that
    /// the international form drops (France, Belgium, Germany, the UK…;
    /// not Italy, whose fixed numbers keep their 0, nor Spain).
    trunk_zero: bool,
}

impl MobileCountry {
    /// Cheap: the phone metadata is loaded by the first number read, not
    /// here (a file without mobiles never loads it).
    pub fn new(default_country: &str) -> Self {
        let code = default_country.trim().to_ascii_uppercase();
        let region = Region::from_str(&code).ok();
        let trunk_zero = region.is_some() && TRUNK_ZERO.binary_search(&code.as_str()).is_ok();
        MobileCountry {
            code,
            region,
            trunk_zero,
        }
    }

    /// Whether the metadata knows the country (a tenant's country must be
    /// one it knows).
    pub fn is_known(&self) -> bool {
        self.region
            .is_some_and(|r| PHONE_NUMBER_UTIL.get_country_code_for_region(r).is_some())
    }

    /// Whether its national numbers begin with a trunk 0.
    pub fn trunk_zero(&self) -> bool {
        self.trunk_zero
    }
}

/// The most distinct mobiles a file's reader remembers: about 9 MiB at
/// worst (50,000 take 7 MiB in `loyalty-bench memory`), so a split's
/// memory stays flat however many customers a file names.
/// (`loyalty-bench phones` measures reading each distinct number once.)
pub const MAX_MOBILES_REMEMBERED: usize = 65_536;

/// Reads a file's mobiles: each distinct number once, its result
/// remembered for the rows that name it again (up to
/// [`MAX_MOBILES_REMEMBERED`] numbers; then it starts over).
#[derive(Debug)]
pub struct Mobiles {
    country: MobileCountry,
    seen: RefCell<HashMap<Box<str>, Result<CustomerRef, IdentifierError>>>,
}

impl Mobiles {
    pub fn new(country: MobileCountry) -> Self {
        Mobiles {
            country,
            seen: RefCell::default(),
        }
    }

    /// The same as [`CustomerRef::mobile`] for this file's country.
    pub fn read(&self, raw: &str) -> Result<CustomerRef, IdentifierError> {
        let value = raw.trim();
        if let Some(known) = self.seen.borrow().get(value) {
            return known.clone();
        }
        let read = CustomerRef::mobile(value, &self.country);
        let mut seen = self.seen.borrow_mut();
        if seen.len() >= MAX_MOBILES_REMEMBERED {
            seen.clear();
        }
        seen.insert(value.into(), read.clone());
        read
    }
}

/// The countries whose national numbers begin with a trunk 0 that the
/// international form drops (libphonenumber's national prefix "0"; its
/// metadata keeps that prefix private in `rlibphonenumber`), sorted. A
/// test holds it to `phonenumber`'s metadata, which the importer read it
/// from before.
const TRUNK_ZERO: &[&str] = &[
    "AE", "AF", "AL", "AM", "AR", "AT", "AU", "AX", "AZ", "BA", "BD", "BE", "BG", "BL", "BO", "BR",
    "CC", "CD", "CH", "CN", "CO", "CU", "CX", "DE", "DZ", "EC", "EG", "EH", "ER", "ET", "FI", "FR",
    "GB", "GE", "GF", "GG", "GH", "GP", "HR", "ID", "IE", "IL", "IM", "IN", "IQ", "IR", "JE", "JO",
    "JP", "KE", "KG", "KH", "KI", "KP", "KR", "LA", "LB", "LI", "LK", "LR", "LT", "LY", "MA", "MC",
    "MD", "ME", "MF", "MG", "MK", "MM", "MN", "MQ", "MW", "MY", "NA", "NG", "NL", "NP", "NZ", "PE",
    "PH", "PK", "PM", "PS", "PY", "RE", "RO", "RS", "RW", "SA", "SD", "SE", "SI", "SK", "SL", "SO",
    "SS", "SY", "TH", "TR", "TW", "TZ", "UA", "UG", "UY", "VE", "VN", "XK", "YE", "YT", "ZA", "ZM",
    "ZW",
];

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

/// RFC 5322's `atext`, the characters of an unquoted local part and (with
/// dots between) of a domain's labels, as `email_address` reads them for
/// ASCII.
const ATEXT: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"!#$%&'*+-/=?^_`{|}~";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// The number of dot-separated atoms of `part`, each of 1 to `longest`
/// bytes of [`ATEXT`] that begin and end with a byte `edge` takes; `None`
/// when one is not such.
fn dot_atoms(part: &[u8], longest: usize, edge: fn(&u8) -> bool) -> Option<usize> {
    let mut atoms = 0;
    for atom in part.split(|&b| b == b'.') {
        let (first, last) = (atom.first()?, atom.last()?);
        if atom.len() > longest || !edge(first) || !edge(last) {
            return None;
        }
        // Without a branch a byte.
        if !atom.iter().fold(true, |ok, &b| ok & ATEXT[usize::from(b)]) {
            return None;
        }
        atoms += 1;
    }
    Some(atoms)
}

/// Whether `email_address` takes `value` under [`EMAIL_RULES`], decided
/// without it for the usual address: ASCII, its local part dot-atoms
/// (at most 64 bytes), its domain at least two labels of letters, digits
/// and `atext` that begin and end with a letter or digit (at most 63
/// bytes each, 254 in all). `false` for anything else, a quoted local
/// part or a non-ASCII address among them: the crate then decides, and
/// says why not. (A test holds the two to the same answers; the crate
/// took a tenth of a split's time.)
fn plain_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    local.len() <= 64
        && domain.len() <= 254
        && dot_atoms(local.as_bytes(), 64, |b| ATEXT[usize::from(*b)]).is_some()
        && dot_atoms(domain.as_bytes(), 63, u8::is_ascii_alphanumeric).is_some_and(|n| n >= 2)
}

impl CustomerRef {
    pub fn email(raw: &str) -> Result<Self, IdentifierError> {
        let value = raw.trim();
        if plain_email(value) {
            return Ok(CustomerRef::Email(value.to_ascii_lowercase()));
        }
        match email_address::EmailAddress::parse_with_options(value, EMAIL_RULES) {
            // ASCII: lower-cased without Unicode's tables (the same
            // result).
            Ok(_) if value.is_ascii() => Ok(CustomerRef::Email(value.to_ascii_lowercase())),
            Ok(_) => Ok(CustomerRef::Email(value.to_lowercase())),
            Err(e) => Err(IdentifierError {
                code: ErrorCode::InvalidEmail,
                message: format!("'{value}' is not a valid email address ({e})"),
            }),
        }
    }

    /// Normalises a mobile number to E.164, reading national numbers in
    /// the tenant's default country.
    pub fn mobile(raw: &str, country: &MobileCountry) -> Result<Self, IdentifierError> {
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
        let code = &country.code;
        // A national number written without its trunk prefix (France's
        // leading 0) is what a spreadsheet makes of 06 12 34 56 78 stored
        // as a number: refused, not completed by guess.
        let digits = value.trim_start_matches(|c: char| !c.is_ascii_digit() && c != '+');
        if country.trunk_zero && !digits.starts_with(['0', '+']) {
            return Err(invalid(&format!(
                ": a {code} number starts with 0, or with + and its country code; a \
                 spreadsheet may have dropped its leading zero: format the column as text"
            )));
        }
        let number = PHONE_NUMBER_UTIL
            .parse(value, country.region)
            .map_err(|_| invalid(""))?;
        if !number.is_valid() {
            let hint = if !value.starts_with(['0', '+']) {
                format!(" for {code}: if a spreadsheet dropped its leading zero or '+', format the column as text")
            } else {
                format!(" for {code}")
            };
            return Err(invalid(&hint));
        }
        Ok(CustomerRef::Mobile(
            number.format_as(PhoneNumberFormat::E164).into_owned(),
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

/// As its `kind:value` string, written straight into the output (a batch
/// serialises one or more a row).
impl Serialize for CustomerRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
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
        assert_eq!(
            CustomerRef::email("Zoë.ÉLODIE@Exemple.FR").unwrap(),
            CustomerRef::Email("zoë.élodie@exemple.fr".into())
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
    fn the_usual_addresses_are_decided_as_the_email_crate_decides_them() {
        // Generated addresses, with the characters and lengths where the
        // rules bite: dots at the ends or doubled, a second `@`, quotes,
        // spaces, brackets, a backslash, non-ASCII letters, labels that
        // begin or end with `-`, parts either side of 63, 64 and 254 bytes.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let common = ['a', 'Z', '0', '9'];
        let rare = [
            '.', '-', '_', '!', '+', '~', '@', '"', ' ', '<', '>', '[', ']', '\\', 'é', '\t', '(',
        ];
        let lengths = [0, 1, 2, 3, 5, 8, 8, 8, 62, 63, 64, 65];
        let part = |next: &mut dyn FnMut(usize) -> usize| -> String {
            (0..lengths[next(lengths.len())])
                .map(|_| match next(40) {
                    0 => rare[next(rare.len())],
                    _ => common[next(common.len())],
                })
                .collect()
        };
        // And the bounds themselves: a local part of 64 and 65 bytes, a
        // label of 63 and 64, a domain of 254 and 255.
        let label = |n: usize| "d".repeat(n);
        let bounds = [
            format!("{}@example.com", "l".repeat(64)),
            format!("{}@example.com", "l".repeat(65)),
            format!("a@{}.com", label(63)),
            format!("a@{}.com", label(64)),
            format!("a@{}.{}.{}.{}", label(63), label(63), label(63), label(62)),
            format!("a@{}.{}.{}.{}", label(63), label(63), label(63), label(63)),
        ];
        let (mut plain, mut valid) = (0, 0);
        for n in 0..100_000 {
            let address = match bounds.get(n) {
                Some(address) => address.clone(),
                None => {
                    let local = part(&mut next);
                    let labels: Vec<String> = (0..=next(4)).map(|_| part(&mut next)).collect();
                    format!("{local}@{}", labels.join("."))
                }
            };
            let by_crate =
                email_address::EmailAddress::parse_with_options(&address, EMAIL_RULES).is_ok();
            let decided = plain_email(&address);
            assert!(
                !decided || by_crate,
                "{address:?} is not an email to the crate"
            );
            if address.is_ascii() && !address.contains('"') {
                assert_eq!(decided, by_crate, "{address:?}");
            }
            plain += usize::from(decided);
            valid += usize::from(by_crate);
        }
        // Both answers, often.
        assert!(
            plain > 10_000 && valid < 90_000,
            "{plain} plain, {valid} valid"
        );
    }

    #[test]
    fn an_invalid_email_names_the_value() {
        let err = CustomerRef::email("alice.example.com").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidEmail);
        assert!(err.message.contains("'alice.example.com'"));
    }

    /// Every country `phonenumber` had metadata for.
    fn countries_known_before() -> Vec<String> {
        (b'A'..=b'Z')
            .flat_map(|a| (b'A'..=b'Z').map(move |b| String::from_utf8(vec![a, b]).unwrap()))
            .filter(|code| phonenumber::metadata::DATABASE.by_id(code).is_some())
            .collect()
    }

    #[test]
    fn every_country_known_before_is_known_with_the_same_trunk_zero() {
        let before = countries_known_before();
        assert!(before.len() > 200, "{}", before.len());
        for code in &before {
            let country = MobileCountry::new(code);
            assert!(country.is_known(), "{code}");
            let zero = phonenumber::metadata::DATABASE
                .by_id(code.as_str())
                .and_then(|m| m.national_prefix())
                == Some("0");
            assert_eq!(country.trunk_zero, zero, "{code}");
        }
        assert!(TRUNK_ZERO.windows(2).all(|w| w[0] < w[1]), "sorted");
        for code in ["FR", "BE", "DE", "GB", "NL"] {
            assert!(MobileCountry::new(code).trunk_zero, "{code}");
        }
        for code in ["IT", "ES", "US", "PT"] {
            assert!(!MobileCountry::new(code).trunk_zero, "{code}");
        }
    }

    #[test]
    fn an_unknown_country_reads_only_international_numbers() {
        let nowhere = MobileCountry::new("XX");
        assert!(!nowhere.is_known());
        assert_eq!(
            CustomerRef::mobile("+33 6 12 34 56 78", &nowhere).map(|c| c.to_string()),
            Ok("mobile:+33612345678".to_owned())
        );
        assert!(CustomerRef::mobile("06 12 34 56 78", &nowhere).is_err());
    }

    fn e164(raw: &str, country: &str) -> Option<String> {
        CustomerRef::mobile(raw, &MobileCountry::new(country))
            .ok()
            .map(|c| c.value().to_owned())
    }

    // Where the importer's reading differs from `phonenumber`'s (the
    // library it used before), it follows Google's libphonenumber:
    // `loyalty-bench phones` counts each kind on its corpus.

    #[test]
    fn another_countrys_number_keeps_its_own_trunk_rules() {
        // Refused before: Spain's (absent) trunk prefix was applied.
        assert_eq!(
            e164("+33 (0)6 12 34 56 78", "ES").as_deref(),
            Some("+33612345678")
        );
        // Read before as +49 70 …, another customer: the US trunk 1 was
        // stripped from a German mobile.
        assert_eq!(
            e164("+49 170 5580772", "US").as_deref(),
            Some("+491705580772")
        );
        // Refused before: France's trunk 0 was stripped from an Italian
        // number, whose 0 belongs to it.
        assert_eq!(
            e164("+39 0556 30777", "FR").as_deref(),
            Some("+39055630777")
        );
    }

    #[test]
    fn a_letter_in_a_number_is_not_read_as_a_keypad_digit() {
        // Read before as 0622 9 19687658.
        assert_eq!(e164("0622x19687658", "DE"), None);
    }

    #[test]
    fn a_national_number_beginning_with_the_calling_code_keeps_its_valid_reading() {
        // An Italian mobile of the 39x range: before, its 39 was taken for
        // the calling code and the rest refused (or read as a fixed line).
        assert_eq!(e164("391 455 6137", "IT").as_deref(), Some("+393914556137"));
        assert_eq!(e164("3906705614", "IT").as_deref(), Some("+393906705614"));
    }

    #[test]
    fn a_number_in_no_range_of_its_country_is_refused() {
        // Twelve digits: only Italy's general pattern allows it, none of
        // its fixed-line or mobile ranges.
        assert_eq!(e164("010 148 327 974", "IT"), None);
    }

    #[test]
    fn a_files_mobiles_read_once_each_are_read_as_every_time_and_stay_bounded() {
        let mobiles = Mobiles::new(MobileCountry::new("FR"));
        for raw in [
            "06 12 34 56 78",
            " 06 12 34 56 78 ",
            "612345678",
            "3.3612E+10",
            "+44 7911 123456",
        ] {
            for _ in 0..3 {
                assert_eq!(
                    mobiles.read(raw),
                    CustomerRef::mobile(raw, &MobileCountry::new("FR")),
                    "{raw}"
                );
            }
        }
        assert_eq!(mobiles.seen.borrow().len(), 4);
        for n in 0..MAX_MOBILES_REMEMBERED + 10 {
            let _ = mobiles.read(&format!("06{n:08}"));
            assert!(mobiles.seen.borrow().len() <= MAX_MOBILES_REMEMBERED);
        }
    }

    #[test]
    fn national_mobiles_use_the_default_country() {
        assert_eq!(
            CustomerRef::mobile("06 12 34 56 78", &MobileCountry::new("FR"))
                .unwrap()
                .to_string(),
            "mobile:+33612345678"
        );
        assert_eq!(
            CustomerRef::mobile("+44 7911 123456", &MobileCountry::new("FR"))
                .unwrap()
                .to_string(),
            "mobile:+447911123456"
        );
    }

    #[test]
    fn a_mobile_in_scientific_notation_is_refused_with_a_hint() {
        let err = CustomerRef::mobile("3.3612E+10", &MobileCountry::new("FR")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMobile);
        assert!(err.message.contains("scientific notation"));
    }

    #[test]
    fn a_mobile_that_lost_its_leading_zero_is_refused_with_a_hint() {
        for mangled in ["612345678", "33612345678"] {
            let err = CustomerRef::mobile(mangled, &MobileCountry::new("FR")).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidMobile);
            assert!(
                err.message.contains("dropped its leading zero"),
                "{}",
                err.message
            );
        }
        // Where numbers are written without a trunk 0, they are read as usual.
        assert_eq!(
            CustomerRef::mobile("(415) 555-0132", &MobileCountry::new("US")).map(|c| c.to_string()),
            Ok("mobile:+14155550132".to_owned())
        );
        assert!(CustomerRef::mobile("0033 6 12 34 56 78", &MobileCountry::new("FR")).is_ok());
    }

    #[test]
    fn display_and_parse_round_trip() {
        let c = CustomerRef::CustomerId("C:42".into());
        assert_eq!(c.to_string().parse::<CustomerRef>().unwrap(), c);
    }
}
