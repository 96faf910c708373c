//! EAN-13 card codes: twelve digits and a check digit (GS1 General
//! Specifications, section 7.9: weights 1 and 3 from the left, the check
//! digit brings the sum to a multiple of ten).
//!
//! Generated codes start with `2`, the GS1 prefix range reserved for
//! numbers a company assigns for its own use, so they never collide with a
//! product's barcode. They are derived from the job, the row and an attempt
//! number, so a redelivered row generates the same code, and a code already
//! taken is replaced by the next attempt's.

use sha2::{Digest, Sha256};

/// The check digit of twelve digits.
pub fn check_digit(digits: &[u8; 12]) -> u8 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Whether `code` is thirteen digits with a correct check digit.
pub fn is_valid(code: &str) -> bool {
    let digits: Vec<u8> = code.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    if digits.len() != 13 || digits.iter().any(|d| *d > 9) {
        return false;
    }
    let mut body = [0u8; 12];
    body.copy_from_slice(&digits[..12]);
    check_digit(&body) == digits[12]
}

/// The code generated for a row of a job, at the `attempt`th try (0 first).
pub fn generate(tenant_id: &str, job_id: &str, row: u64, attempt: u32) -> String {
    let hash = Sha256::digest(format!("{tenant_id}\n{job_id}\n{row}\n{attempt}").as_bytes());
    let mut body = [0u8; 12];
    body[0] = 2;
    let number = u64::from_be_bytes(hash[..8].try_into().unwrap_or_default()) % 100_000_000_000;
    for (i, digit) in format!("{number:011}").bytes().enumerate() {
        body[i + 1] = digit - b'0';
    }
    let mut code: String = body.iter().map(|d| char::from(b'0' + d)).collect();
    code.push(char::from(b'0' + check_digit(&body)));
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_have_the_right_check_digit() {
        assert!(is_valid("4006381333931"));
        assert!(is_valid("5901234123457"));
        assert!(!is_valid("5901234123458"));
        assert!(!is_valid("590123412345"));
        assert!(!is_valid("590123412345a"));
    }

    #[test]
    fn generated_codes_are_valid_stable_and_in_the_internal_range() {
        let code = generate("acme", "J1", 2, 0);
        assert!(is_valid(&code), "{code}");
        assert!(code.starts_with('2'));
        assert_eq!(code, generate("acme", "J1", 2, 0));
        assert_ne!(code, generate("acme", "J1", 2, 1));
        assert_ne!(code, generate("acme", "J1", 3, 0));
    }
}
