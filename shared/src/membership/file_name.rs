//! Membership file names: `<universe>_<scope>_<subsection>_<YYYYMMDD>[_<seq>].csv`,
//! and the order files of one tenant are applied in: date, then sequence,
//! then `cardcode` before `tierchange`.

use chrono::NaiveDate;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    CardCode,
    TierChange,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CardCode => "cardcode",
            Scope::TierChange => "tierchange",
        }
    }
}

/// A well-formed membership file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub universe: String,
    pub scope: Scope,
    pub subsection: String,
    pub date: NaiveDate,
    pub sequence: Option<u32>,
}

/// Where a file stands in its tenant's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub date: NaiveDate,
    pub sequence: u32,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the file name '{name}' {problem}: name it <universe>_<scope>_<subsection>_<YYYYMMDD>.csv, \
     with _<sequence> before .csv for a second file of the same scope and day, e.g. \
     myuniverse_cardcode_customers_20190214.csv"
)]
pub struct FileNameError {
    pub name: String,
    pub problem: String,
}

impl FileName {
    pub fn parse(name: &str) -> Result<FileName, FileNameError> {
        let wrong = |problem: &str| FileNameError {
            name: name.to_owned(),
            problem: problem.to_owned(),
        };
        let stem = name
            .strip_suffix(".csv")
            .ok_or_else(|| wrong("does not end in .csv"))?;
        let parts: Vec<&str> = stem.split('_').collect();
        let (scope_at, scope) = parts
            .iter()
            .enumerate()
            .skip(1)
            .find_map(|(i, p)| match *p {
                "cardcode" => Some((i, Scope::CardCode)),
                "tierchange" => Some((i, Scope::TierChange)),
                _ => None,
            })
            .ok_or_else(|| wrong("names no scope (cardcode or tierchange) after the universe"))?;
        let rest = &parts[scope_at + 1..];
        let is_date = |p: &str| p.len() == 8 && NaiveDate::parse_from_str(p, "%Y%m%d").is_ok();
        let (subsection, date, sequence) = match rest {
            [sub @ .., date, seq] if !sub.is_empty() && is_date(date) && !is_date(seq) => {
                let sequence = seq
                    .parse::<u32>()
                    .ok()
                    .filter(|_| seq.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| wrong(&format!("has '{seq}' where a sequence number goes")))?;
                (sub.join("_"), *date, Some(sequence))
            }
            [sub @ .., date] if !sub.is_empty() && is_date(date) => (sub.join("_"), *date, None),
            _ => return Err(wrong("has no subsection followed by a date YYYYMMDD")),
        };
        Ok(FileName {
            universe: parts[..scope_at].join("_"),
            scope,
            subsection,
            date: NaiveDate::parse_from_str(date, "%Y%m%d")
                .map_err(|_| wrong("has an impossible date"))?,
            sequence,
        })
    }

    /// Files without a sequence come first in their day.
    pub fn position(&self) -> Position {
        Position {
            date: self.date,
            sequence: self.sequence.unwrap_or(0),
            scope: self.scope,
        }
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}_{}_{}",
            self.universe,
            self.scope.as_str(),
            self.subsection,
            self.date.format("%Y%m%d")
        )?;
        if let Some(seq) = self.sequence {
            write!(f, "_{seq}")?;
        }
        f.write_str(".csv")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let name = FileName::parse("myuniverse_cardcode_customers_20190214.csv").unwrap();
        assert_eq!(name.universe, "myuniverse");
        assert_eq!(name.scope, Scope::CardCode);
        assert_eq!(name.subsection, "customers");
        assert_eq!(name.date, NaiveDate::from_ymd_opt(2019, 2, 14).unwrap());
        assert_eq!(name.sequence, None);
        assert_eq!(
            name.to_string(),
            "myuniverse_cardcode_customers_20190214.csv"
        );
    }

    #[test]
    fn a_sequence_and_underscores_in_the_universe_or_subsection_are_read() {
        let name = FileName::parse("my_shop_tierchange_vip_members_20190214_2.csv").unwrap();
        assert_eq!(
            (
                name.universe.as_str(),
                name.scope,
                name.subsection.as_str(),
                name.sequence
            ),
            ("my_shop", Scope::TierChange, "vip_members", Some(2))
        );
    }

    #[test]
    fn malformed_names_say_what_is_wrong() {
        for (name, problem) in [
            (
                "myuniverse_cardcode_customers_20190214.txt",
                "does not end in .csv",
            ),
            ("myuniverse_cards_customers_20190214.csv", "names no scope"),
            ("myuniverse_cardcode_20190214.csv", "no subsection"),
            (
                "myuniverse_cardcode_customers_20190231.csv",
                "no subsection followed by a date",
            ),
            (
                "myuniverse_cardcode_customers_20190214_b.csv",
                "'b' where a sequence",
            ),
        ] {
            let err = FileName::parse(name).unwrap_err();
            assert!(err.problem.contains(problem), "{name}: {err}");
        }
    }

    #[test]
    fn files_are_ordered_by_date_then_sequence_then_cardcode_first() {
        let position = |n: &str| FileName::parse(n).unwrap().position();
        let mut names = vec![
            "u_tierchange_s_20190215.csv",
            "u_cardcode_s_20190215_2.csv",
            "u_tierchange_s_20190214.csv",
            "u_cardcode_s_20190215.csv",
            "u_cardcode_s_20190214.csv",
        ];
        names.sort_by_key(|n| position(n));
        assert_eq!(
            names,
            [
                "u_cardcode_s_20190214.csv",
                "u_tierchange_s_20190214.csv",
                "u_cardcode_s_20190215.csv",
                "u_tierchange_s_20190215.csv",
                "u_cardcode_s_20190215_2.csv",
            ]
        );
    }
}
