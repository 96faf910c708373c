//! Membership dates: `YYYY-MM-DD HH:MM:SS`, or `YYYY-MM-DD` for midnight,
//! read as Europe/Paris local time and stored in UTC. A local time that the
//! spring clock change skips, or that the autumn one repeats, names no single
//! instant: it is refused rather than guessed.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Paris;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("'{0}' is not a date: write YYYY-MM-DD HH:MM:SS, or YYYY-MM-DD for midnight")]
    Format(String),
    #[error("NULL is not a date: leave the cell empty (or write \"\") to erase the value")]
    Null,
    #[error(
        "'{0}' does not exist in Paris time: the clocks go forward an hour over it \
         (summer time starts); write the time before or after the change"
    )]
    Skipped(String),
    #[error(
        "'{0}' happens twice in Paris time: the clocks go back an hour over it (summer \
         time ends), so it is ambiguous; write a time outside the repeated hour"
    )]
    Ambiguous(String),
}

fn local(value: &str) -> Result<NaiveDateTime, DateError> {
    if value == "NULL" {
        return Err(DateError::Null);
    }
    // Exactly 4-2-2 digits (and 2:2:2): chrono alone would take 2018-8-9.
    let shaped = matches!(value.len(), 10 | 19)
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b' ',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(DateError::Format(value.to_owned()));
    }
    NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .map_err(|_| DateError::Format(value.to_owned()))
}

/// A date and time in Paris local time, as the instant it names.
pub fn parse_paris(value: &str) -> Result<DateTime<Utc>, DateError> {
    let naive = local(value)?;
    match Paris.from_local_datetime(&naive) {
        LocalResult::Single(at) => Ok(at.with_timezone(&Utc)),
        LocalResult::None => Err(DateError::Skipped(value.to_owned())),
        LocalResult::Ambiguous(_, _) => Err(DateError::Ambiguous(value.to_owned())),
    }
}

/// A plain date (a birthday): `YYYY-MM-DD`, or a midnight date and time.
pub fn parse_date(value: &str) -> Result<NaiveDate, DateError> {
    let naive = local(value)?;
    if naive.time() != chrono::NaiveTime::MIN {
        return Err(DateError::Format(value.to_owned()));
    }
    Ok(naive.date())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(value: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(value)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn paris_time_is_an_hour_ahead_in_winter_and_two_in_summer() {
        assert_eq!(
            parse_paris("2019-01-01 00:00:01").unwrap(),
            utc("2018-12-31T23:00:01Z")
        );
        assert_eq!(
            parse_paris("2019-07-14 12:00:00").unwrap(),
            utc("2019-07-14T10:00:00Z")
        );
    }

    #[test]
    fn a_date_alone_is_midnight_in_paris() {
        assert_eq!(
            parse_paris("2018-09-09").unwrap(),
            utc("2018-09-08T22:00:00Z")
        );
    }

    #[test]
    fn the_hour_skipped_in_spring_and_the_hour_repeated_in_autumn_are_refused() {
        // 2024-03-31: 02:00 becomes 03:00; 2024-10-27: 03:00 becomes 02:00.
        assert_eq!(
            parse_paris("2024-03-31 02:30:00"),
            Err(DateError::Skipped("2024-03-31 02:30:00".into()))
        );
        assert_eq!(
            parse_paris("2024-10-27 02:30:00"),
            Err(DateError::Ambiguous("2024-10-27 02:30:00".into()))
        );
        assert_eq!(
            parse_paris("2024-03-31 03:00:00").unwrap(),
            utc("2024-03-31T01:00:00Z")
        );
        assert_eq!(
            parse_paris("2024-10-27 03:00:00").unwrap(),
            utc("2024-10-27T02:00:00Z")
        );
    }

    #[test]
    fn null_and_other_spellings_are_not_dates() {
        assert_eq!(parse_paris("NULL"), Err(DateError::Null));
        for bad in [
            "2019-02-30",
            "09/08/2018",
            "2018-08-09T10:00:05",
            "2018-8-9",
            "tomorrow",
        ] {
            assert!(
                matches!(parse_paris(bad), Err(DateError::Format(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_birthday_is_a_plain_date() {
        let day = NaiveDate::from_ymd_opt(1955, 2, 1).unwrap();
        assert_eq!(parse_date("1955-02-01"), Ok(day));
        assert_eq!(parse_date("1955-02-01 00:00:00"), Ok(day));
        assert!(parse_date("1955-02-01 10:30:00").is_err());
    }
}
