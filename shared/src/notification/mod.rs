//! The emails sent to a tenant's recipients (its admin, and the addresses
//! it registered besides), in the tenant's language, each with a plain text
//! and an HTML part. Recipients come from the tenant record only, never
//! from a file or a request.

mod html;
mod letter;
pub mod texts;

pub use html::escape;

use crate::digest::ErrorDigest;
use crate::job::{self, keys, Job, JobStatus};
use crate::outcome::Tally;
use crate::tenant::Tenant;
use letter::Letter;
use texts::{Texts, Title};

/// One message to all the tenant's recipients. Bounded whatever the file:
/// the digest keeps three examples of at most 200 bytes a code, a reason or
/// message 500 characters, so both parts together stay under
/// [`MAX_EMAIL_BYTES`], far inside SES's 10 MB a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// Every recipient, the admin's address first.
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The most bytes an email's subject and parts add up to.
pub const MAX_EMAIL_BYTES: usize = 256 * 1024;

impl Email {
    fn of(tenant: &Tenant, letter: &Letter) -> Email {
        Email {
            to: tenant.recipients(),
            subject: letter.subject.clone(),
            text: letter.text(),
            html: letter.html(),
        }
    }
}

/// The confirmation sent when an import has finished: its totals, its rows
/// not applied by error code, and the processed file's link.
pub fn completion_email(
    tenant: &Tenant,
    job: &Job,
    tally: &Tally,
    errors: &ErrorDigest,
    link: &str,
    link_hours: u64,
) -> Email {
    let t = Texts::of(tenant.language);
    let dry = if job.dry_run { t.dry_run } else { "" };
    let verdict = match JobStatus::finished(tally) {
        JobStatus::Completed => t.completed,
        _ => t.completed_with_errors,
    };
    let title = title(t, job);
    let mut facts = vec![(t.job, job.job_id.clone())];
    match job.membership_scope() {
        None => facts.extend([
            (t.adjustment_reason, job.reason.clone()),
            (t.rows, tally.rows().to_string()),
            (t.applied, tally.applied.to_string()),
            (t.failed, tally.failed.to_string()),
            (t.skipped, tally.skipped.to_string()),
            (t.points_credited, tally.credited.to_string()),
            (t.points_debited, tally.debited.to_string()),
        ]),
        Some(_) => facts.extend([
            (t.rows, tally.rows().to_string()),
            (t.cards_changed, tally.applied.to_string()),
            (t.failed, tally.failed.to_string()),
            (t.skipped, tally.skipped.to_string()),
        ]),
    }
    let notes = match job.split_abandoned.as_deref() {
        Some(why) => vec![(t.given_up)(why), t.given_up_next.to_owned()],
        None => Vec::new(),
    };
    let letter = Letter {
        texts: t,
        subject: format!("{} {verdict}{}{}{dry}", title.name, t.colon, job.filename),
        intro: (t.finished)(
            &title.in_sentence,
            &job.filename,
            &format!("{verdict}{dry}"),
        ),
        facts,
        notes,
        errors,
        link: Some((link, link_hours)),
    };
    Email::of(tenant, &letter)
}

/// The import's name, alone and within a sentence: a reversal's names the
/// import it reverts; else its kind's, until the file says which a
/// membership import if it was dropped in the memberships folder, else a
/// points import.
fn title(t: &'static Texts, job: &Job) -> Name {
    if let Some(original) = &job.reverts {
        return Name {
            name: (t.reversal.name)(original),
            in_sentence: (t.reversal.in_sentence)(original),
        };
    }
    let membership = keys::parse_incoming(&job.source_key).is_some_and(|i| i.membership);
    let Title { name, in_sentence } = t.title(job.kind, membership);
    Name {
        name: (*name).to_owned(),
        in_sentence: (*in_sentence).to_owned(),
    }
}

/// An import's name, as [`Title`] gives it.
struct Name {
    name: String,
    in_sentence: String,
}

/// The notice sent when a file is refused as a whole.
pub fn rejection_email(tenant: &Tenant, job: &Job) -> Email {
    let t = Texts::of(tenant.language);
    let why = job.rejection.as_deref().unwrap_or(t.unreadable);
    // A duplicate's reason says how to import it again on purpose.
    let next = if why.starts_with(job::DUPLICATE_FILE) {
        t.duplicate_next
    } else {
        t.fix_next
    };
    let title = title(t, job);
    let letter = Letter {
        texts: t,
        subject: format!("{} {}{}{}", title.name, t.rejected, t.colon, job.filename),
        intro: (t.refused)(&title.in_sentence, &job.filename),
        facts: vec![
            (t.job, job.job_id.clone()),
            (t.rejection_reason, why.to_owned()),
        ],
        notes: vec![next.to_owned()],
        errors: &ErrorDigest::default(),
        link: None,
    };
    Email::of(tenant, &letter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::ImportKind;
    use crate::outcome::{ErrorCode, RowOutcome};
    use crate::tenant::Language;
    use chrono::Utc;

    fn tenant() -> Tenant {
        Tenant::register("acme", "admin@acme.test", "FR", [7; 32])
            .unwrap()
            .0
    }

    fn french() -> Tenant {
        let mut tenant = tenant()
            .with_recipients(&["compta@acme.test", "marketing@acme.test"])
            .unwrap();
        tenant.language = Language::Fr;
        tenant
    }

    fn job() -> Job {
        Job::new("acme", "J1", "incoming/acme/x.csv", "spring", Utc::now())
    }

    /// The completion email of an import without errors.
    fn clean(tenant: &Tenant, job: &Job, tally: &Tally) -> Email {
        completion_email(
            tenant,
            job,
            tally,
            &ErrorDigest::default(),
            "https://link",
            72,
        )
    }

    fn card_job() -> Job {
        let mut job = Job::new(
            "acme",
            "J1",
            "incoming/acme/memberships/u_cardcode_s_20261125.csv",
            "r",
            Utc::now(),
        );
        job.kind = Some(ImportKind::CardCode);
        job
    }

    fn tally() -> Tally {
        Tally {
            applied: 2,
            skipped: 0,
            failed: 5,
            credited: 30,
            debited: 5,
        }
    }

    /// Four rows of one code and one of another.
    fn errors() -> ErrorDigest {
        let mut digest = ErrorDigest::default();
        for row in [2, 4, 6, 8] {
            digest.add(&RowOutcome::failed(
                row,
                ErrorCode::InvalidEmail,
                format!("row {row}, column email: 'bob@' is not a valid email address"),
            ));
        }
        digest.add(&RowOutcome::failed(
            9,
            ErrorCode::InsufficientBalance,
            "row 9, column amount: a debit of 50 points, but only 20 can be spent",
        ));
        digest
    }

    #[test]
    fn the_rejection_email_says_why() {
        let mut job = job();
        job.rejection = Some("unknown column 'colour'".into());
        let email = rejection_email(&tenant(), &job);
        assert_eq!(email.to, ["admin@acme.test"]);
        assert_eq!(email.subject, "Points import rejected: x.csv");
        assert!(email.text.contains("Reason: unknown column 'colour'\n"));
        assert!(email.html.contains("unknown column &#39;colour&#39;"));
        assert!(email.html.contains("Fix the file"), "{}", email.html);
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
        let mut job = job();
        job.rejection = Some(job::duplicate_reason(&earlier));
        let email = rejection_email(&tenant(), &job);
        assert!(!email.text.contains("Fix the file"), "{}", email.text);
        assert!(email.text.contains("allow_duplicate"), "{}", email.text);
    }

    #[test]
    fn the_completion_email_summarises_and_links() {
        let email = clean(&tenant(), &job(), &tally());
        assert_eq!(email.subject, "Points import completed with errors: x.csv");
        assert_eq!(
            email.text,
            "Your points import of x.csv is completed with errors.\n\
             \n\
             Job: J1\n\
             Adjustment reason: spring\n\
             Rows: 7\n\
             Applied: 2\n\
             Failed: 5\n\
             Skipped: 0\n\
             Points credited: 30\n\
             Points debited: 5\n\
             \n\
             The processed file lists every row with its outcome. Download it within 72 hours:\n\
             https://link\n"
        );
        assert!(email.html.contains("<a href=\"https://link\""));
        assert!(email.html.contains(">Download the processed file</a>"));
        assert!(email
            .html
            .starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    }

    #[test]
    fn both_parts_list_the_errors_by_code_with_their_first_three_rows() {
        let email = completion_email(&tenant(), &job(), &tally(), &errors(), "https://link", 72);
        assert!(
            email.text.contains(
                "Rows not applied, by error code:\n\
                 - invalid_email (invalid email address): 4 rows\n    \
                 row 2: column email: 'bob@' is not a valid email address\n    \
                 row 4: column email: 'bob@' is not a valid email address\n    \
                 row 6: column email: 'bob@' is not a valid email address\n\
                 - insufficient_balance (insufficient balance): 1 row\n    \
                 row 9: column amount: a debit of 50 points, but only 20 can be spent\n"
            ),
            "{}",
            email.text
        );
        assert!(!email.text.contains("row 8"));
        let html = &email.html;
        assert!(
            html.contains(">Rows not applied, by error code</h2>"),
            "{html}"
        );
        assert!(html.contains(">invalid_email</span>"), "{html}");
        assert!(html.contains(">4</td>"), "{html}");
        assert!(
            html.contains("row 6: column email: &#39;bob@&#39; is not a valid email address</p>"),
            "{html}"
        );
        assert!(!html.contains("row 8"));
        assert!(html.contains(">insufficient_balance</span>"), "{html}");
    }

    #[test]
    fn an_import_without_errors_lists_none() {
        let email = clean(&tenant(), &job(), &Tally::default());
        assert!(!email.text.contains("error code"));
        assert!(!email.html.contains("error code"));
    }

    #[test]
    fn every_recipient_of_the_tenant_receives_the_email_admin_first() {
        let email = completion_email(&french(), &job(), &tally(), &errors(), "https://link", 72);
        assert_eq!(
            email.to,
            ["admin@acme.test", "compta@acme.test", "marketing@acme.test"]
        );
        let mut job = job();
        job.rejection = Some("unknown column 'colour'".into());
        assert_eq!(rejection_email(&french(), &job).to, email.to);
    }

    #[test]
    fn a_reversals_email_says_which_import_it_reverts_in_each_language() {
        let mut reversal = job();
        reversal.job_id = "J0-revert".into();
        reversal.reverts = Some("J0".into());
        let email = clean(&tenant(), &reversal, &tally());
        assert_eq!(
            email.subject,
            "Reversal of import J0 completed with errors: x.csv"
        );
        assert!(email
            .text
            .starts_with("Your reversal of import J0 of x.csv is completed with errors.\n"));
        let email = clean(&french(), &reversal, &tally());
        assert_eq!(
            email.subject,
            "Import d'annulation de l'import J0 terminé avec des erreurs : x.csv"
        );
        assert!(email.text.starts_with(
            "Votre import d'annulation de l'import J0 du fichier x.csv est terminé avec des erreurs.\n"
        ));
    }

    #[test]
    fn a_french_tenant_gets_its_completion_email_in_french() {
        let email = completion_email(&french(), &job(), &tally(), &errors(), "https://link", 72);
        assert_eq!(
            email.subject,
            "Import de points terminé avec des erreurs : x.csv"
        );
        let text = &email.text;
        for line in [
            "Votre import de points du fichier x.csv est terminé avec des erreurs.\n",
            "Référence de l'import : J1\n",
            "Motif de l'ajustement : spring\n",
            "Lignes : 7\n",
            "Appliquées : 2\n",
            "En erreur : 5\n",
            "Ignorées : 0\n",
            "Points crédités : 30\n",
            "Points débités : 5\n",
            "Lignes non appliquées, par code d'erreur :\n",
            "- invalid_email (adresse e-mail invalide) : 4 lignes\n",
            "    ligne 2 : column email: 'bob@' is not a valid email address\n",
            "- insufficient_balance (solde insuffisant) : 1 ligne\n",
            "Téléchargez-le dans les 72 heures :\nhttps://link\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        for english in ["Rows", "Applied", "Download", "row 2"] {
            assert!(!text.contains(english), "{english:?} in {text}");
        }
        let html = &email.html;
        assert!(html.contains("<html lang=\"fr\">"));
        assert!(
            html.contains(">Télécharger le fichier traité</a>"),
            "{html}"
        );
        assert!(
            html.contains(">Lignes non appliquées, par code d&#39;erreur</h2>"),
            "{html}"
        );
        assert!(html.contains(">Code d&#39;erreur</th>"), "{html}");
        assert!(html.contains("ligne 9 : column amount"), "{html}");
    }

    #[test]
    fn a_french_dry_run_and_a_french_card_import_say_so_in_french() {
        let mut dry = job();
        dry.dry_run = true;
        let email = clean(&french(), &dry, &Tally::default());
        assert_eq!(
            email.subject,
            "Import de points terminé : x.csv (simulation : aucun compte de points n'a été modifié)"
        );
        let cards = card_job();
        let email = clean(&french(), &cards, &tally());
        assert_eq!(
            email.subject,
            "Import de cartes terminé avec des erreurs : u_cardcode_s_20261125.csv"
        );
        assert!(email.text.contains("Cartes créées ou modifiées : 2\n"));
        assert!(!email.text.contains("Points"));
    }

    #[test]
    fn a_french_tenant_gets_its_rejections_in_french() {
        let mut job = job();
        job.rejection = Some("unknown column 'colour'".into());
        let email = rejection_email(&french(), &job);
        assert_eq!(email.subject, "Import de points refusé : x.csv");
        assert!(email.text.starts_with(
            "Votre import de points du fichier x.csv a été refusé : rien n'a été appliqué.\n"
        ));
        // The reason is written where the file is read, in English.
        assert!(email
            .text
            .contains("Motif du refus : unknown column 'colour'\n"));
        assert!(email
            .text
            .contains("Corrigez le fichier, puis déposez-le de nouveau.\n"));
        assert!(email
            .html
            .contains("Corrigez le fichier, puis déposez-le de nouveau.</p>"));
        let earlier = Job::new("acme", "J0", "incoming/acme/x.csv", "r", Utc::now());
        job.rejection = Some(job::duplicate_reason(&earlier));
        let email = rejection_email(&french(), &job);
        assert!(
            email.text.contains("il a déjà été importé"),
            "{}",
            email.text
        );
    }

    #[test]
    fn values_from_the_file_or_the_tenant_are_escaped_in_the_html_part() {
        let hostile = "<script>alert(\"x\")</script> & 'co'";
        let mut job = Job::new("acme", "J1", "incoming/acme/<b>.csv", hostile, Utc::now());
        job.filename = format!("{hostile}.csv");
        let mut errors = ErrorDigest::default();
        errors.add(&RowOutcome::failed(
            3,
            ErrorCode::InvalidEmail,
            format!("row 3, column email: '{hostile}' is not a valid email address"),
        ));
        let link = "https://bucket.example/k?a=1&b=\"><script>";
        let email = completion_email(&tenant(), &job, &tally(), &errors, link, 72);
        let html = &email.html;
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("'co'"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;")
        );
        assert!(
            html.contains("href=\"https://bucket.example/k?a=1&amp;b=&quot;&gt;&lt;script&gt;\"")
        );
        // Every tag the part holds is the layout's own.
        let tags: std::collections::BTreeSet<&str> = html
            .split('<')
            .skip(1)
            .map(|t| t.split([' ', '>']).next().unwrap_or_default())
            .collect();
        let ours = [
            "!DOCTYPE", "/a", "/body", "/div", "/h1", "/h2", "/head", "/html", "/p", "/span",
            "/table", "/td", "/th", "/title", "/tr", "a", "body", "br", "div", "h1", "h2", "head",
            "html", "meta", "p", "span", "table", "td", "th", "title", "tr",
        ];
        assert!(tags.iter().all(|t| ours.contains(t)), "{tags:?}");
        // The text part keeps the values as they are.
        assert!(email.text.contains(hostile));
    }

    #[test]
    fn a_split_given_up_says_which_rows_were_not_applied_and_how_to_import_them() {
        let mut job = job();
        job.split_abandoned = Some("the file could not be read to its end".into());
        let email = clean(&tenant(), &job, &Tally::default());
        assert!(email.text.contains("the file could not be read to its end"));
        assert!(email.text.contains("upload a file of just those rows"));
        assert!(email.html.contains("upload a file of just those rows"));
        let email = clean(&french(), &job, &Tally::default());
        assert!(email
            .text
            .contains("déposez un fichier ne contenant que ces lignes"));
        let fine = Job::new("acme", "J2", "incoming/acme/x.csv", "spring", Utc::now());
        let email = clean(&tenant(), &fine, &Tally::default());
        assert!(!email.text.contains("not_processed"));
    }

    #[test]
    fn a_membership_email_counts_cards_not_points() {
        let job = card_job();
        let tally = Tally {
            applied: 2,
            ..Tally::default()
        };
        let email = clean(&tenant(), &job, &tally);
        assert_eq!(
            email.subject,
            "Card code import completed: u_cardcode_s_20261125.csv"
        );
        assert!(email.text.contains("Cards created or changed: 2\n"));
        assert!(!email.text.contains("Points"));
    }

    #[test]
    fn the_largest_email_stays_small_whatever_the_file_holds() {
        // Every code, each example a message of markup (escaping makes it
        // five times longer), a name and a reason as long as they may be.
        let markup = "<".repeat(crate::outcome::MESSAGE_MAX_CHARS);
        let mut errors = ErrorDigest::default();
        for code in ErrorCode::ALL {
            for row in 0..10 {
                errors.add(&RowOutcome::failed(u64::MAX - row, code, markup.as_str()));
            }
        }
        let mut job = Job::new("acme", "J1", "incoming/acme/x.csv", &markup, Utc::now());
        job.filename = format!("{}.csv", "'".repeat(1024));
        job.split_abandoned = Some(markup.clone());
        for tenant in [tenant(), french()] {
            let email = completion_email(&tenant, &job, &tally(), &errors, &markup, 72);
            let size = email.subject.len() + email.text.len() + email.html.len();
            assert!(size < MAX_EMAIL_BYTES, "{size} bytes");
        }
    }

    #[test]
    fn every_language_names_every_error_code() {
        for language in Language::ALL {
            let t = Texts::of(language);
            assert_eq!(t.language, language);
            for code in ErrorCode::ALL {
                assert!(!(t.code)(code).is_empty(), "{code} in {language:?}");
            }
        }
    }
}
