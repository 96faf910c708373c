//! The emails sent to a tenant's registered admin. Recipients come from the
//! tenant record only, never from a file or a request.

use crate::job::{self, keys, Job, JobStatus};
use crate::kind::ImportKind;
use crate::outcome::Tally;
use crate::tenant::Tenant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// The confirmation sent when an import has finished.
pub fn completion_email(
    tenant: &Tenant,
    job: &Job,
    tally: &Tally,
    link: &str,
    link_hours: u64,
) -> Email {
    let dry = if job.dry_run {
        " (dry run: no wallet was changed)"
    } else {
        ""
    };
    let verdict = match JobStatus::finished(tally) {
        JobStatus::Completed => "completed",
        _ => "completed with errors",
    };
    let title = title(job);
    let subject = format!("{title} {verdict}: {}{dry}", job.filename);
    let details = match job.membership_scope() {
        None => format!(
            "Adjustment reason: {reason}\n\
             Rows: {rows}\n\
             Applied: {applied}\n\
             Failed: {failed}\n\
             Skipped: {skipped}\n\
             Points credited: {credited}\n\
             Points debited: {debited}\n",
            reason = job.reason,
            rows = tally.rows(),
            applied = tally.applied,
            failed = tally.failed,
            skipped = tally.skipped,
            credited = tally.credited,
            debited = tally.debited,
        ),
        Some(_) => format!(
            "Rows: {rows}\n\
             Cards created or changed: {applied}\n\
             Failed: {failed}\n\
             Skipped: {skipped}\n",
            rows = tally.rows(),
            applied = tally.applied,
            failed = tally.failed,
            skipped = tally.skipped,
        ),
    };
    let given_up = job
        .split_abandoned
        .as_deref()
        .map(|why| {
            format!(
                "\nNot every row could be applied: {why}.\n\
                 To import the rows marked not_processed, upload a file of just those rows, with \
                 the same header. Uploading this file again would be refused as a duplicate (and \
                 with allow_duplicate it would apply its applied rows a second time).\n"
            )
        })
        .unwrap_or_default();
    let text = format!(
        "Your {lower} of {file} is {verdict}{dry}.\n\
         \n\
         Job: {job_id}\n\
         {details}\
         {given_up}\
         \n\
         The processed file lists every row with its outcome. Download it within {link_hours} hours:\n\
         {link}\n",
        lower = title.to_lowercase(),
        file = job.filename,
        job_id = job.job_id,
    );
    Email {
        to: tenant.admin_email.clone(),
        subject,
        text,
    }
}

/// "Points import", "Card code import"...; until the file says which, a
/// membership import if it was dropped in the memberships folder, else a
/// points import.
fn title(job: &Job) -> &'static str {
    match job.kind {
        Some(kind) => kind.title(),
        None if keys::parse_incoming(&job.source_key).is_some_and(|i| i.membership) => {
            "Membership import"
        }
        None => ImportKind::Points.title(),
    }
}

/// The notice sent when a file is refused as a whole.
pub fn rejection_email(tenant: &Tenant, job: &Job) -> Email {
    let why = job
        .rejection
        .as_deref()
        .unwrap_or("the file could not be read");
    // A duplicate's reason says how to import it again on purpose.
    let next = if why.starts_with(job::DUPLICATE_FILE) {
        "Nothing is wrong with the file: it was imported before."
    } else {
        "Fix the file and upload it again."
    };
    Email {
        to: tenant.admin_email.clone(),
        subject: format!("{} rejected: {}", title(job), job.filename),
        text: format!(
            "Your {} of {} was rejected and nothing was applied.\n\
             \n\
             Job: {}\n\
             Reason: {why}\n\
             \n\
             {next}\n",
            title(job).to_lowercase(),
            job.filename,
            job.job_id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn tenant() -> Tenant {
        Tenant {
            tenant_id: "acme".into(),
            admin_email: "admin@acme.test".into(),
            default_country: "FR".into(),
            api_key_hash: String::new(),
            memberships: None,
        }
    }

    #[test]
    fn the_rejection_email_says_why() {
        let mut job = Job::new("acme", "J1", "incoming/acme/x.csv", "r", Utc::now());
        job.rejection = Some("unknown column 'colour'".into());
        let email = rejection_email(&tenant(), &job);
        assert_eq!(email.to, "admin@acme.test");
        assert!(email.text.contains("unknown column 'colour'"));
    }

    #[test]
    fn a_membership_file_refused_before_its_scope_is_known_is_called_one() {
        let mut job = Job::new(
            "acme",
            "J1",
            "incoming/acme/memberships/cards-january.csv",
            "r",
            Utc::now(),
        );
        job.rejection = Some("'cards-january.csv' is not a membership file name".into());
        let email = rejection_email(&tenant(), &job);
        assert_eq!(
            email.subject,
            "Membership import rejected: cards-january.csv"
        );
        assert!(email.text.contains("Fix the file"), "{}", email.text);
    }

    #[test]
    fn a_duplicates_rejection_does_not_ask_to_fix_the_file() {
        let earlier = Job::new("acme", "J0", "incoming/acme/x.csv", "r", Utc::now());
        let mut job = Job::new("acme", "J1", "incoming/acme/x.csv", "r", Utc::now());
        job.rejection = Some(job::duplicate_reason(&earlier));
        let email = rejection_email(&tenant(), &job);
        assert!(!email.text.contains("Fix the file"), "{}", email.text);
        assert!(email.text.contains("allow_duplicate"), "{}", email.text);
    }

    #[test]
    fn the_completion_email_summarises_and_links() {
        let job = Job::new("acme", "J1", "incoming/acme/x.csv", "spring", Utc::now());
        let tally = Tally {
            applied: 2,
            skipped: 0,
            failed: 1,
            credited: 30,
            debited: 5,
        };
        let email = completion_email(&tenant(), &job, &tally, "https://link", 72);
        assert_eq!(email.subject, "Points import completed with errors: x.csv");
        assert!(email.text.contains("Rows: 3\n") && email.text.contains("https://link"));
    }

    #[test]
    fn a_split_given_up_says_which_rows_were_not_applied_and_how_to_import_them() {
        let mut job = Job::new("acme", "J1", "incoming/acme/x.csv", "spring", Utc::now());
        job.split_abandoned = Some("the file could not be read to its end".into());
        let email = completion_email(&tenant(), &job, &Tally::default(), "https://link", 72);
        assert!(email.text.contains("the file could not be read to its end"));
        assert!(email.text.contains("upload a file of just those rows"));
        let fine = Job::new("acme", "J2", "incoming/acme/x.csv", "spring", Utc::now());
        let email = completion_email(&tenant(), &fine, &Tally::default(), "https://link", 72);
        assert!(!email.text.contains("not_processed"));
    }

    #[test]
    fn a_membership_email_counts_cards_not_points() {
        let mut job = Job::new(
            "acme",
            "J1",
            "incoming/acme/memberships/u_cardcode_s_20261125.csv",
            "r",
            Utc::now(),
        );
        job.kind = Some(ImportKind::CardCode);
        let tally = Tally {
            applied: 2,
            ..Tally::default()
        };
        let email = completion_email(&tenant(), &job, &tally, "https://link", 72);
        assert_eq!(
            email.subject,
            "Card code import completed: u_cardcode_s_20261125.csv"
        );
        assert!(email.text.contains("Cards created or changed: 2\n"));
        assert!(!email.text.contains("Points"));
    }
}
