//! The emails sent to a tenant's registered admin. Recipients come from the
//! tenant record only, never from a file or a request.

use crate::job::{Job, JobStatus};
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
    let subject = format!("Points import {verdict}: {}{dry}", job.filename);
    let text = format!(
        "Your points import of {file} is {verdict}{dry}.\n\
         \n\
         Job: {job_id}\n\
         Adjustment reason: {reason}\n\
         Rows: {rows}\n\
         Applied: {applied}\n\
         Failed: {failed}\n\
         Skipped: {skipped}\n\
         Points credited: {credited}\n\
         Points debited: {debited}\n\
         \n\
         The processed file lists every row with its outcome. Download it within {link_hours} hours:\n\
         {link}\n",
        file = job.filename,
        job_id = job.job_id,
        reason = job.reason,
        rows = tally.rows(),
        applied = tally.applied,
        failed = tally.failed,
        skipped = tally.skipped,
        credited = tally.credited,
        debited = tally.debited,
    );
    Email {
        to: tenant.admin_email.clone(),
        subject,
        text,
    }
}

/// The notice sent when a file is refused as a whole.
pub fn rejection_email(tenant: &Tenant, job: &Job) -> Email {
    let why = job
        .rejection
        .as_deref()
        .unwrap_or("the file could not be read");
    Email {
        to: tenant.admin_email.clone(),
        subject: format!("Points import rejected: {}", job.filename),
        text: format!(
            "Your points import of {} was rejected and nothing was applied.\n\
             \n\
             Job: {}\n\
             Reason: {why}\n\
             \n\
             Fix the file and upload it again.\n",
            job.filename, job.job_id
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
}
