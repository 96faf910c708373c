//! The order a tenant's membership files are applied in (date, sequence,
//! then `cardcode` before `tierchange`), whatever order they arrive in.
//!
//! Each file takes its place in the order when it arrives, then waits for its
//! turn: no other file of the tenant is being imported, no file placed before
//! it is unfinished, and, for a tier change file, the card code file of the
//! same day and sequence has arrived and finished, or has not come within a
//! grace period. So a tier change for a card created by the same day's card
//! code file works whichever file arrived first. A file that arrives after a
//! later one has started is applied after it: what is applied is not undone.

use super::file_name::{FileName, Position, Scope};
use crate::job::{Job, JobStatus};
use chrono::{DateTime, Utc};

/// A membership file of a tenant, as the order sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub job_id: String,
    pub filename: String,
    pub position: Position,
    pub status: JobStatus,
    pub arrived_at: DateTime<Utc>,
}

impl Placed {
    /// The file of `job`, named `name`, as the order sees it.
    pub fn of(job: &Job, name: &FileName) -> Placed {
        Placed {
            job_id: job.job_id.clone(),
            filename: job.filename.clone(),
            position: name.position(),
            status: job.status,
            arrived_at: job.in_order_since(),
        }
    }

    fn unfinished(&self) -> bool {
        !self.status.is_final()
    }

    fn running(&self) -> bool {
        self.status.is_importing()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    Go,
    /// Not yet, and why (shown on the job).
    Wait(String),
}

/// Whether `me` may be imported now, given the tenant's other membership
/// files, `now`, and how long a tier change file waits for its card code
/// file (`grace_seconds`).
pub fn turn(me: &Placed, others: &[Placed], now: DateTime<Utc>, grace_seconds: i64) -> Turn {
    let others = || others.iter().filter(|o| o.job_id != me.job_id);
    if let Some(running) = others().find(|o| o.running()) {
        return Turn::Wait(format!(
            "waiting for {} (job {}), being imported, to finish: a tenant's membership files are imported one at a time",
            running.filename, running.job_id
        ));
    }
    if let Some(earlier) = others()
        .filter(|o| o.unfinished() && o.position < me.position)
        .min_by_key(|o| o.position)
    {
        return Turn::Wait(format!(
            "waiting for {} (job {}), which comes first in the order of membership files",
            earlier.filename, earlier.job_id
        ));
    }
    if me.position.scope == Scope::TierChange {
        let partner = Position {
            scope: Scope::CardCode,
            ..me.position
        };
        // A card code file rejected has arrived and finished too: it
        // changed no card, so there is nothing more to wait for.
        let arrived = others().any(|o| o.position == partner);
        let until = me.arrived_at + chrono::Duration::seconds(grace_seconds);
        if !arrived && now < until {
            return Turn::Wait(format!(
                "waiting until {} for the card code file of {}{}, which comes first: tier changes \
                 are applied after the cards of the same day",
                until.format("%Y-%m-%d %H:%M UTC"),
                me.position.date.format("%Y-%m-%d"),
                match me.position.sequence {
                    0 => String::new(),
                    n => format!(" (sequence {n})"),
                }
            ));
        }
    }
    Turn::Go
}

/// Why `name` may not be imported beside the tenant's other membership
/// files, if so: a second file of the same scope and day needs a sequence,
/// and a sequence is used once. Only files that arrived before `me` count:
/// a later file never turns an accepted one away.
pub fn clash(me: &Placed, name: &FileName, others: &[Placed]) -> Option<String> {
    let same_day = |o: &&Placed| {
        o.job_id != me.job_id
            && (o.arrived_at, &o.job_id) < (me.arrived_at, &me.job_id)
            && o.status != JobStatus::Rejected
            && o.position.scope == me.position.scope
            && o.position.date == me.position.date
    };
    let other = others
        .iter()
        .filter(same_day)
        .find(|o| name.sequence.is_none() || o.position.sequence == me.position.sequence)?;
    let day = name.date.format("%Y-%m-%d");
    let scope = name.scope.as_str();
    Some(match name.sequence {
        None => format!(
            "a second {scope} file for {day} needs a sequence number: {} (job {}) was received \
             for that day already; name this one like {}",
            other.filename,
            other.job_id,
            FileName {
                sequence: Some(other.position.sequence.max(1) + 1),
                ..name.clone()
            }
        ),
        Some(n) => format!(
            "sequence {n} of the {scope} files for {day} was used already by {} (job {}): give \
             this file the next sequence number",
            other.filename, other.job_id
        ),
    })
}

/// Why a file is refused whose place (its scope, day and sequence) job
/// `holder` holds already.
pub fn held(holder: &str, name: &FileName) -> String {
    format!(
        "job {holder} holds the place of the {} file of {} already",
        name.scope.as_str(),
        name.date.format("%Y-%m-%d")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 9, minute, 0).unwrap()
    }

    fn placed(job: &str, name: &str, status: JobStatus, minute: u32) -> Placed {
        Placed {
            job_id: job.into(),
            filename: name.into(),
            position: FileName::parse(name).unwrap().position(),
            status,
            arrived_at: at(minute),
        }
    }

    #[test]
    fn a_tier_change_waits_for_the_same_days_card_codes_then_goes() {
        let tiers = placed("T", "u_tierchange_s_20261125.csv", JobStatus::Waiting, 0);
        let early = turn(&tiers, &[], at(1), 3600);
        assert!(
            matches!(&early, Turn::Wait(why) if why.contains("card code file of 2026-11-25")),
            "{early:?}"
        );
        // The card code file arrives: it goes first (nothing before it) ...
        let cards = placed("C", "u_cardcode_s_20261125.csv", JobStatus::Waiting, 2);
        assert_eq!(
            turn(&cards, std::slice::from_ref(&tiers), at(2), 3600),
            Turn::Go
        );
        // ... and while it runs or waits, the tier changes wait for it.
        for status in [JobStatus::Waiting, JobStatus::Processing] {
            let cards = Placed {
                status,
                ..cards.clone()
            };
            assert!(matches!(turn(&tiers, &[cards], at(3), 3600), Turn::Wait(_)));
        }
        let done = Placed {
            status: JobStatus::Completed,
            ..cards
        };
        assert_eq!(turn(&tiers, &[done], at(3), 3600), Turn::Go);
    }

    #[test]
    fn a_tier_change_without_card_codes_goes_after_the_grace_period() {
        let tiers = placed("T", "u_tierchange_s_20261125.csv", JobStatus::Waiting, 0);
        assert!(matches!(turn(&tiers, &[], at(59), 3600), Turn::Wait(_)));
        assert_eq!(
            turn(&tiers, &[], at(0) + chrono::Duration::hours(1), 3600),
            Turn::Go
        );
    }

    #[test]
    fn a_tier_change_goes_at_once_after_its_card_code_file_was_rejected() {
        let tiers = placed("T", "u_tierchange_s_20261125.csv", JobStatus::Waiting, 0);
        let rejected = placed("C", "u_cardcode_s_20261125.csv", JobStatus::Rejected, 1);
        assert_eq!(turn(&tiers, &[rejected], at(5), 3600), Turn::Go);
    }

    #[test]
    fn earlier_files_go_first_and_one_file_runs_at_a_time() {
        let later = placed("B", "u_cardcode_s_20261126.csv", JobStatus::Waiting, 0);
        let earlier = placed("A", "u_cardcode_s_20261125.csv", JobStatus::Waiting, 1);
        assert!(
            matches!(turn(&later, std::slice::from_ref(&earlier), at(2), 0), Turn::Wait(why) if why.contains("comes first"))
        );
        assert_eq!(
            turn(&earlier, std::slice::from_ref(&later), at(2), 0),
            Turn::Go
        );
        // A later file already running holds back an earlier one that came late.
        let running = Placed {
            status: JobStatus::Processing,
            ..later
        };
        assert!(
            matches!(turn(&earlier, &[running], at(2), 0), Turn::Wait(why) if why.contains("one at a time"))
        );
    }

    #[test]
    fn a_job_is_placed_by_its_name_and_a_held_place_names_its_holder() {
        let mut job = Job::new(
            "acme",
            "J2",
            "incoming/acme/u_tierchange_s_20261125_2.csv",
            "r",
            at(7),
        );
        job.status = JobStatus::Waiting;
        let name = FileName::parse(&job.filename).unwrap();
        assert_eq!(
            Placed::of(&job, &name),
            placed("J2", "u_tierchange_s_20261125_2.csv", JobStatus::Waiting, 7)
        );
        // Reviewed first, it joins the order when its admin starts it.
        job.started_at = Some(at(40));
        assert_eq!(Placed::of(&job, &name).arrived_at, at(40));
        assert_eq!(
            held("J1", &name),
            "job J1 holds the place of the tierchange file of 2026-11-25 already"
        );
    }

    #[test]
    fn a_second_file_of_a_day_needs_a_sequence_and_a_sequence_is_used_once() {
        let first = placed("A", "u_cardcode_s_20261125.csv", JobStatus::Completed, 0);
        let name = FileName::parse("u_cardcode_other_20261125.csv").unwrap();
        let second = placed("B", "u_cardcode_other_20261125.csv", JobStatus::Waiting, 1);
        let why = clash(&second, &name, std::slice::from_ref(&first)).unwrap();
        assert!(
            why.contains("needs a sequence number")
                && why.contains("u_cardcode_other_20261125_2.csv"),
            "{why}"
        );
        // The first file is not turned away by the second.
        assert_eq!(
            clash(
                &first,
                &FileName::parse("u_cardcode_s_20261125.csv").unwrap(),
                std::slice::from_ref(&second)
            ),
            None
        );
        // With a sequence it is welcome; the same sequence twice is not.
        let seq = FileName::parse("u_cardcode_s_20261125_2.csv").unwrap();
        let with_seq = placed("C", "u_cardcode_s_20261125_2.csv", JobStatus::Waiting, 2);
        assert_eq!(clash(&with_seq, &seq, std::slice::from_ref(&first)), None);
        let again = placed("D", "u_cardcode_x_20261125_2.csv", JobStatus::Waiting, 3);
        assert!(clash(&again, &seq, &[first.clone(), with_seq])
            .unwrap()
            .contains("sequence 2"));
        // Another scope, another day, or a rejected file do not count.
        let tiers = FileName::parse("u_tierchange_s_20261125.csv").unwrap();
        let t = placed("E", "u_tierchange_s_20261125.csv", JobStatus::Waiting, 4);
        assert_eq!(clash(&t, &tiers, std::slice::from_ref(&first)), None);
        let rejected = Placed {
            status: JobStatus::Rejected,
            ..first
        };
        assert_eq!(clash(&second, &name, &[rejected]), None);
    }
}
