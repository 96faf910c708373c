//! The emails, end to end against the local emulator: who receives them
//! (the tenant's admin and the addresses it registered), in which language
//! (the tenant's), and what their HTML part says (the totals, the rows not
//! applied by error code with a few examples, the link).

use pipeline_tests::Harness;
use shared::job::JobStatus;
use shared::outcome::ErrorCode;
use shared::tenant::Language;

#[tokio::test(flavor = "multi_thread")]
async fn a_french_tenant_with_two_recipients_gets_one_french_email_listing_the_errors_by_code() {
    let h = Harness::start().await;
    let t = h.tenant_mailed(Language::Fr, &["compta"]).await;
    let file = "email,amount\n\
                alice@example.com,100\n\
                bob@,5\n\
                <script>@x,5\n\
                dan@,5\n\
                erin@,5\n\
                eve@example.com,1.000\n";
    h.drop_file(&t, "printemps.csv", file, Some("Printemps & fidélité"))
        .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors);

    // The job keeps the errors by code, the first three rows of each.
    let codes: Vec<(ErrorCode, u64, Vec<u64>)> = job
        .errors
        .codes
        .iter()
        .map(|c| (c.code, c.count, c.examples.iter().map(|e| e.row).collect()))
        .collect();
    assert_eq!(
        codes,
        [
            (ErrorCode::InvalidEmail, 4, vec![2, 3, 4]),
            (ErrorCode::InvalidAmount, 1, vec![6]),
        ]
    );

    // One email, to both addresses.
    let emails = h.emails_about(&job.job_id).await;
    assert_eq!(emails.len(), 1, "one email per job: {emails:?}");
    let email = &emails[0];
    let id = t.id();
    assert_eq!(
        email.destinations.to,
        [format!("admin@{id}.test"), format!("compta@{id}.test")]
    );
    assert!(email.destinations.cc.is_empty() && email.destinations.bcc.is_empty());
    assert_eq!(
        email.subject,
        "Import de points terminé avec des erreurs : printemps.csv"
    );
    assert!(email.body.contains("Lignes : 6\n"), "{}", email.body);
    assert!(
        email
            .body
            .contains("- invalid_email (adresse e-mail invalide) : 4 lignes\n"),
        "{}",
        email.body
    );

    // The HTML part: the counts, the errors by code with their examples
    // (a cell quoted in a message escaped), the link.
    let html = email.html.as_deref().expect("an HTML part");
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"fr\">"));
    for part in [
        ">Appliquées</th>",
        "Printemps &amp; fidélité",
        ">Lignes non appliquées, par code d&#39;erreur</h2>",
        ">invalid_email</span>",
        ">adresse e-mail invalide</span>",
        ">invalid_amount</span>",
        "ligne 3 : column email: &#39;&lt;script&gt;@x&#39;",
        "ligne 6 : column amount: &#39;1.000&#39;",
        ">Télécharger le fichier traité</a>",
        "printemps.processed.csv",
    ] {
        assert!(html.contains(part), "{part:?} in {html}");
    }
    assert!(!html.contains("ligne 5 "), "three examples a code: {html}");
    assert!(!html.contains("<script>"), "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_french_tenants_rejection_goes_to_every_recipient_in_french() {
    let h = Harness::start().await;
    let t = h
        .tenant_mailed(Language::Fr, &["compta", "marketing"])
        .await;
    h.drop_file(&t, "colour.csv", "email,colour\na@example.com,red\n", None)
        .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.status, JobStatus::Rejected);
    let emails = h.emails_about(&job.job_id).await;
    assert_eq!(emails.len(), 1, "one email per job: {emails:?}");
    let email = &emails[0];
    assert_eq!(email.destinations.to, t.tenant.recipients());
    assert_eq!(email.destinations.to.len(), 3);
    assert_eq!(email.subject, "Import de points refusé : colour.csv");
    assert!(
        email
            .body
            .contains("Corrigez le fichier, puis déposez-le de nouveau."),
        "{}",
        email.body
    );
    let html = email.html.as_deref().expect("an HTML part");
    assert!(html.contains(">Motif du refus</th>"), "{html}");
    assert!(html.contains("&#39;colour&#39;"), "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_registered_without_settings_is_emailed_in_english_to_its_admin() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "one.csv", "email,amount\nbob@,5\n", None)
        .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    let emails = h.emails_about(&job.job_id).await;
    assert_eq!(emails.len(), 1, "one email per job: {emails:?}");
    assert_eq!(
        emails[0].destinations.to,
        std::slice::from_ref(&t.tenant.admin_email)
    );
    assert_eq!(
        emails[0].subject,
        "Points import completed with errors: one.csv"
    );
    let html = emails[0].html.as_deref().expect("an HTML part");
    assert!(
        html.contains(">Rows not applied, by error code</h2>"),
        "{html}"
    );
    assert!(html.contains(">Download the processed file</a>"), "{html}");
}
