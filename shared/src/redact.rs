//! Text fit for logs. A log line must never carry a customer's email
//! address, phone number or card code, yet the texts worth logging (why a file
//! was rejected, why a call failed, an object's key) can quote a file's
//! cells or a merchant's file name. So before such a text is logged:
//!
//! - a quoted value (`'…'` or `"…"`, as messages quote cells) becomes its
//!   length: `'<12 chars>'`, unless it names a column (`column 'amount'`,
//!   a name of letters, digits, `_`, `-` and spaces);
//! - an email address becomes `<email>`;
//! - a run of eight digits or more, with the spaces, dots, dashes and
//!   brackets phone numbers are written with, becomes `<number>` (phone
//!   numbers, EAN-13 card codes); dates (`2026-01-10`, `20260110`) and job
//!   ids (`20261203180101-0b94be8a0d63`) stay.
//!
//! So a rejected file can be diagnosed from its logs (its job, its dates,
//! its columns, the error codes) and no customer can be read in them.

use std::fmt;

/// `text` with its quoted values, email addresses and long numbers masked.
pub fn for_log(text: &str) -> String {
    let quoted = mask_quoted(text);
    let emails = mask_emails(&quoted);
    mask_numbers(&emails)
}

/// An object's key (or a piece of one) fit for logs: its folders and ids
/// (`incoming/<tenant>/uploads/<job>/`) as they are, its file name, and any
/// piece that is not an id (lower-case letters, digits and dashes, a letter
/// at least), through [`for_log`].
pub fn object_key(key: &str) -> String {
    key.split('/')
        .map(|segment| {
            let id = segment.len() <= 64
                && segment.bytes().any(|b| b.is_ascii_lowercase())
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if id {
                segment.to_owned()
            } else {
                for_log(segment)
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Displays a value (an error, say) through [`for_log`]:
/// `error = %Redacted(&err)`.
pub struct Redacted<'a, T: fmt::Display + ?Sized>(pub &'a T);

impl<T: fmt::Display + ?Sized> fmt::Display for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&for_log(&self.0.to_string()))
    }
}

/// A quote opens a value when it does not follow a letter or a digit (so
/// "file's" is not a quote) and closes it when no letter or digit follows.
fn mask_quoted(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let opens = (c == '\'' || c == '"') && (i == 0 || !chars[i - 1].is_alphanumeric());
        let close = opens
            .then(|| {
                (i + 1..chars.len()).find(|&j| {
                    chars[j] == c && chars.get(j + 1).is_none_or(|n| !n.is_alphanumeric())
                })
            })
            .flatten();
        let column = close.is_some_and(|j| names_a_column(&chars[..i], &chars[i + 1..j]));
        match close {
            Some(j) if column => {
                out.extend(&chars[i..=j]);
                i = j + 1;
            }
            Some(j) => {
                let len = j - i - 1;
                out.push(c);
                out.push_str(&format!("<{len} chars>"));
                out.push(c);
                i = j + 1;
            }
            None => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Whether a quoted value is a column's name: it follows `column ` or
/// `columns ` (or `' and ` after one), and is short and plain enough to be
/// one (no email, no long number).
fn names_a_column(before: &[char], value: &[char]) -> bool {
    let before: String = before
        .iter()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let follows = ["column ", "columns ", "' and "]
        .iter()
        .any(|word| before.ends_with(word));
    let plain = value.len() <= 64
        && value
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '));
    let digits = value.iter().filter(|c| c.is_ascii_digit()).count();
    follows && plain && digits < NUMBER_DIGITS
}

fn in_address(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '(' | ')' | ',' | ';' | '/'))
}

fn mask_emails(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let start = (0..i)
                .rev()
                .take_while(|&k| in_address(chars[k]))
                .last()
                .unwrap_or(i);
            let end = (i + 1..chars.len())
                .take_while(|&k| in_address(chars[k]))
                .last()
                .map_or(i + 1, |k| k + 1);
            let domain: String = chars[i + 1..end].iter().collect();
            if start < i && domain.trim_end_matches('.').contains('.') {
                // Drop what was already copied of the local part.
                for _ in start..i {
                    out.pop();
                }
                out.push_str("<email>");
                i = end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

const NUMBER_DIGITS: usize = 8;

fn separator(c: char) -> bool {
    matches!(c, ' ' | '.' | '-' | '(' | ')')
}

fn mask_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            || (chars[i] == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        let after_word = i > 0 && chars[i - 1].is_ascii_alphanumeric();
        if let Some(len) = starts
            .then(|| job_id_or_date(&chars[i..]))
            .flatten()
            .filter(|_| !after_word)
        {
            out.extend(&chars[i..i + len]);
            i += len;
            continue;
        }
        if starts {
            // The run: digits, each separator followed by a digit.
            let mut end = i + 1;
            let mut digits = usize::from(chars[i].is_ascii_digit());
            while end < chars.len() {
                let c = chars[end];
                if c.is_ascii_digit() {
                    digits += 1;
                    end += 1;
                } else if separator(c) {
                    // At most two separators in a row (`) `, ` (`), then a digit.
                    let gap = if chars.get(end + 1).is_some_and(|&n| separator(n)) {
                        2
                    } else {
                        1
                    };
                    if !chars.get(end + gap).is_some_and(char::is_ascii_digit) {
                        break;
                    }
                    end += gap;
                } else {
                    break;
                }
            }
            let run = &chars[i..end];
            // Dates (and the times after them) are not anybody's number.
            let date = run.len() > 4 && run[..4].iter().all(char::is_ascii_digit) && run[4] == '-';
            if digits >= NUMBER_DIGITS && !date {
                out.push_str("<number>");
            } else {
                out.extend(run);
            }
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The length of a job id (`<yyyymmddhhmmss>-<12 hex>`) or a plain date
/// (`yyyymmdd`) at the start of `chars`, standing alone.
fn job_id_or_date(chars: &[char]) -> Option<usize> {
    let digits = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    let alone = |len: usize| chars.get(len).is_none_or(|c| !c.is_ascii_alphanumeric());
    let hex = |c: &char| c.is_ascii_digit() || ('a'..='f').contains(c);
    if digits == 14
        && chars.get(14) == Some(&'-')
        && chars.len() >= 27
        && chars[15..27].iter().all(hex)
        && alone(27)
    {
        return Some(27);
    }
    let number = |range: std::ops::Range<usize>| {
        chars[range]
            .iter()
            .fold(0u32, |n, c| n * 10 + c.to_digit(10).unwrap_or(0))
    };
    let date = digits == 8
        && alone(8)
        && (1900..2200).contains(&number(0..4))
        && (1..=12).contains(&number(4..6))
        && (1..=31).contains(&number(6..8));
    date.then_some(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_dates_and_column_names_stay_readable() {
        assert_eq!(
            for_log("taken over by job 20261203180101-0b94be8a0d63"),
            "taken over by job 20261203180101-0b94be8a0d63"
        );
        assert_eq!(
            for_log("demoshop_cardcode_customers_20260110.csv waits"),
            "demoshop_cardcode_customers_20260110.csv waits"
        );
        assert_eq!(
            for_log("missing column 'customer_key'; columns 'amount' and 'points' clash"),
            "missing column 'customer_key'; columns 'amount' and 'points' clash"
        );
        // A value in a column's place that is nobody's column name.
        assert_eq!(
            for_log("unknown column '0612345678'"),
            "unknown column '<10 chars>'"
        );
        // A phone number or card code is still masked, even beside a date.
        assert_eq!(
            for_log("2026-01-10: 0612345678 and 2001234567890"),
            "2026-01-10: <number> and <number>"
        );
    }

    #[test]
    fn quoted_values_keep_only_their_length() {
        assert_eq!(
            for_log("unknown column 'alice@example.com' in the header"),
            "unknown column '<17 chars>' in the header"
        );
        assert_eq!(
            for_log(r#"invalid type: string "LOYAL-7788", expected u64"#),
            r#"invalid type: string "<10 chars>", expected u64"#
        );
        assert_eq!(for_log("''"), "'<0 chars>'");
    }

    #[test]
    fn apostrophes_in_words_are_not_quotes() {
        assert_eq!(
            for_log("the file's header isn't valid"),
            "the file's header isn't valid"
        );
        assert_eq!(for_log("an unclosed 'quote"), "an unclosed 'quote");
    }

    #[test]
    fn email_addresses_are_masked_wherever_they_are() {
        assert_eq!(
            for_log("incoming/t-1/Bob.Smith+vip@Example.co.uk.csv"),
            "incoming/t-1/<email>"
        );
        assert_eq!(
            for_log("mail to x@y.io failed, retrying"),
            "mail to <email> failed, retrying"
        );
        assert_eq!(for_log("at @ noon, a@b"), "at @ noon, a@b");
    }

    #[test]
    fn phone_numbers_and_long_codes_are_masked() {
        assert_eq!(
            for_log("mobile 06 12 34 56 78 refused"),
            "mobile <number> refused"
        );
        assert_eq!(for_log("+33612345678"), "<number>");
        assert_eq!(for_log("call +1 (415) 555-0100."), "call <number>.");
        assert_eq!(for_log("card 4006381333931"), "card <number>");
    }

    #[test]
    fn short_numbers_stay() {
        assert_eq!(
            for_log("batch 3 of 12: 196 rows, 2026-11-26 02:30:00"),
            "batch 3 of 12: 196 rows, 2026-11-26 02:30:00"
        );
    }

    #[test]
    fn an_object_key_keeps_its_folders_and_ids() {
        assert_eq!(
            object_key("incoming/t-8606244911/uploads/20261126004212-0a1b2c3d4e5f/0612345678.csv"),
            "incoming/t-8606244911/uploads/20261126004212-0a1b2c3d4e5f/<number>.csv"
        );
        assert_eq!(
            object_key("incoming/shop/a@b.io/x.csv"),
            "incoming/shop/<email>/x.csv"
        );
        assert_eq!(object_key("t-1"), "t-1");
        assert_eq!(object_key("0612345678"), "<number>");
    }

    #[test]
    fn a_displayed_error_is_redacted() {
        let err = std::io::Error::other("row 4: 'c@d.io' refused");
        assert_eq!(Redacted(&err).to_string(), "row 4: '<6 chars>' refused");
    }
}
