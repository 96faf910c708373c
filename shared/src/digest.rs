//! The rows not applied, counted by error code with the first few of each:
//! what a review shows before an import starts and what the email
//! summarises after it ends.
//!
//! Bounded whatever the file: one entry per code (`ErrorCode::ALL`), each with
//! at most [`EXAMPLES_PER_CODE`] examples of at most [`EXAMPLE_MAX_BYTES`]
//! bytes of message — under 30 KB, so it fits on the job item beside its
//! other fields (DynamoDB's 400 KB).

use crate::outcome::{ErrorCode, RowOutcome};
use serde::{Deserialize, Serialize};

/// How many rows of each code are kept as examples.
pub const EXAMPLES_PER_CODE: usize = 3;
/// The most bytes of UTF-8 an example's message keeps (then `…`).
pub const EXAMPLE_MAX_BYTES: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDigest {
    /// In order of each code's first row.
    pub codes: Vec<CodeCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeCount {
    pub code: ErrorCode,
    pub count: u64,
    /// The first rows of this code, in the order they were added.
    pub examples: Vec<Example>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub row: u64,
    pub message: String,
}

impl Example {
    /// The message without the row it names first (`row 7, column amount:
    /// ...` reads `column amount: ...`), for a list that shows the row
    /// already.
    pub fn detail(&self) -> &str {
        let named = format!("row {}", self.row);
        match self.message.strip_prefix(&named) {
            Some(rest) if rest.starts_with(": ") || rest.starts_with(", ") => &rest[2..],
            _ => &self.message,
        }
    }
}

impl ErrorDigest {
    /// Counts a row not applied; an applied row, or one skipped without a
    /// code, is not an error.
    pub fn add(&mut self, outcome: &RowOutcome) {
        if let (Some(code), Some(message)) = (outcome.error_code, &outcome.error_message) {
            self.add_error(outcome.row, code, message);
        }
    }

    pub fn add_error(&mut self, row: u64, code: ErrorCode, message: &str) {
        let entry = match self.codes.iter_mut().position(|c| c.code == code) {
            Some(i) => &mut self.codes[i],
            None => {
                self.codes.push(CodeCount {
                    code,
                    count: 0,
                    examples: Vec::new(),
                });
                self.codes.last_mut().expect("just pushed")
            }
        };
        entry.count += 1;
        if entry.examples.len() < EXAMPLES_PER_CODE {
            entry.examples.push(Example {
                row,
                message: shorten(message),
            });
        }
    }

    /// Every row counted, of every code.
    pub fn rows(&self) -> u64 {
        self.codes.iter().map(|c| c.count).sum()
    }

    /// The rows of one code.
    pub fn count_of(&self, code: ErrorCode) -> u64 {
        self.codes
            .iter()
            .find(|c| c.code == code)
            .map_or(0, |c| c.count)
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

fn shorten(message: &str) -> String {
    if message.len() <= EXAMPLE_MAX_BYTES {
        return message.to_owned();
    }
    let mut end = EXAMPLE_MAX_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::RowOutcome;

    #[test]
    fn rows_are_counted_by_code_with_the_first_three_as_examples() {
        let mut digest = ErrorDigest::default();
        for row in 2..12 {
            digest.add(&RowOutcome::failed(
                row,
                ErrorCode::InvalidEmail,
                "bad email",
            ));
        }
        digest.add(&RowOutcome::failed(
            5,
            ErrorCode::InsufficientBalance,
            "only 3 points",
        ));
        digest.add(&RowOutcome::applied(6, 10, 10));
        assert_eq!(digest.rows(), 11);
        assert_eq!(digest.codes[0].code, ErrorCode::InvalidEmail);
        assert_eq!(digest.codes[0].count, 10);
        let rows: Vec<u64> = digest.codes[0].examples.iter().map(|e| e.row).collect();
        assert_eq!(rows, [2, 3, 4]);
        assert_eq!(digest.codes[1].code, ErrorCode::InsufficientBalance);
    }

    #[test]
    fn an_example_shows_its_message_without_the_row_it_names_first() {
        let example = |row, message: &str| Example {
            row,
            message: message.into(),
        };
        assert_eq!(
            example(7, "row 7, column amount: '1,000' is not a whole number").detail(),
            "column amount: '1,000' is not a whole number"
        );
        assert_eq!(
            example(9, "row 9: no outcome was recorded").detail(),
            "no outcome was recorded"
        );
        assert_eq!(example(1, "row 12: other").detail(), "row 12: other");
        assert_eq!(example(3, "the wallet").detail(), "the wallet");
    }

    #[test]
    fn the_fullest_digest_stays_small_whatever_the_messages() {
        let mut digest = ErrorDigest::default();
        let long = "𝄞".repeat(10_000);
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            for row in 0..1_000 {
                digest.add_error(u64::MAX - (i as u64) * 1_000 - row, code, &long);
            }
        }
        let size = serde_json::to_string(&digest).unwrap().len();
        assert!(size < 30_000, "{size} bytes");
        assert_eq!(digest.rows(), ErrorCode::ALL.len() as u64 * 1_000);
        assert!(digest.codes.iter().all(|c| c.examples.len() == 3));
        assert_eq!(
            digest.codes[0].examples[0].message,
            format!("{}…", "𝄞".repeat(50))
        );
    }
}
