//! Migrating from Smile.io (README, "The Smile.io migration format"): Smile's points template and its
//! customer export, adding points or setting balances, through the API and
//! dropped in the bucket.

use lambda_http::http::{Method, StatusCode};
use pipeline_tests::{expected, outcomes, processed_rows, Harness};
use serde_json::json;
use shared::kind::ImportKind;

/// A Smile customer export: many columns, of which email and points
/// balance are read.
const EXPORT: &str =
    "First name,Last name,Email,Points balance,Points earned,Referral URL,VIP tier,Date joined\n\
                      Ann,Lee,ann@example.com,250,400,https://r.example/ann,Gold,2024-02-01\n\
                      Bo,Ek,BO@example.com,0,10,,,2024-03-09\n\
                      Cy,Ng,cy@example.com,75,75,,Silver,2025-01-15\n\
                      Di,Wu,not-an-email,10,10,,,2025-05-05\n";

#[tokio::test(flavor = "multi_thread")]
async fn the_smile_template_credits_positive_points_and_debits_negative_ones() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let file = "email,points\nann@example.com,100\nann@example.com,-30\nbo@example.com,-5\nbo@example.com,0\n";
    h.api_import(&t, "smile", "smile-points.csv", file, false)
        .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.kind, Some(ImportKind::Smile));
    assert_eq!(
        outcomes(&h.processed_file(&job).await),
        expected(&[
            ("applied", "", "100"),
            ("applied", "", "70"),
            ("failed", "insufficient_balance", "0"),
            ("skipped", "nothing_to_change", ""),
        ])
    );
    assert_eq!((job.credited, job.debited), (100, 30));
    assert_eq!(h.balance(&t, "email:ann@example.com").await, 70);
    // The refusal names the file's own column.
    let processed = h.processed_file(&job).await;
    let message = processed_rows(&processed)[2]
        .get("error_message")
        .to_owned();
    assert!(message.contains("column points"), "{message}");
    assert!(!message.contains("amount"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_smile_template_is_recognised_by_its_header() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(
        &t,
        "smile.csv",
        "Email,Points\nann@example.com,40\nann@example.com,-15\n",
        None,
    )
    .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.kind, Some(ImportKind::Smile));
    assert_eq!(h.balance(&t, "email:ann@example.com").await, 25);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_file_with_an_amount_and_a_points_column_is_rejected_not_read_as_smiles() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(
        &t,
        "syn.csv",
        "email,amount,points\nsyn@example.com,5,7\n",
        None,
    )
    .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.status, shared::job::JobStatus::Rejected, "{job:?}");
    let why = job.rejection.unwrap_or_default();
    assert!(why.contains("'amount' and 'points'"), "{why}");
    assert_eq!(h.balance(&t, "email:syn@example.com").await, 0);
    assert_eq!(h.emails_about(&job.job_id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_export_in_set_balance_mode_sets_each_balance_and_a_rerun_changes_nothing() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    // Cy has points already: the migration brings him to 75, not 75 more.
    h.drop_file(
        &t,
        "earlier.csv",
        "email,amount\ncy@example.com,100\n",
        None,
    )
    .await;
    h.settle(&t).await;
    h.drop_file_with(&t, "smile-export.csv", EXPORT, &[("mode", "set_balance")])
        .await;
    h.settle(&t).await;
    let jobs = h.jobs(&t).await;
    let migration = jobs
        .iter()
        .find(|j| j.filename == "smile-export.csv")
        .unwrap();
    assert_eq!(migration.kind, Some(ImportKind::Smile));
    let processed = h.processed_file(migration).await;
    assert_eq!(
        outcomes(&processed),
        expected(&[
            ("applied", "", "250"),
            ("skipped", "nothing_to_change", "0"),
            ("applied", "", "75"),
            ("failed", "invalid_email", ""),
        ])
    );
    // The export's other columns come back untouched in the processed file.
    assert_eq!(processed_rows(&processed)[0].get("vip tier"), "Gold");
    assert_eq!(h.balance(&t, "email:ann@example.com").await, 250);
    assert_eq!(h.balance(&t, "email:cy@example.com").await, 75);
    assert_eq!(h.ledger_len(&t, "email:cy@example.com").await, 2);
    assert_eq!((migration.credited, migration.debited), (250, 25));

    // The same migration again (asked for on purpose): nothing moves.
    h.drop_file_with(
        &t,
        "smile-export-again.csv",
        EXPORT,
        &[("mode", "set-balance"), ("allow-duplicate", "true")],
    )
    .await;
    h.settle(&t).await;
    let jobs = h.jobs(&t).await;
    let again = jobs
        .iter()
        .find(|j| j.filename == "smile-export-again.csv")
        .unwrap();
    assert_eq!(
        outcomes(&h.processed_file(again).await),
        expected(&[
            ("skipped", "nothing_to_change", "250"),
            ("skipped", "nothing_to_change", "0"),
            ("skipped", "nothing_to_change", "75"),
            ("failed", "invalid_email", ""),
        ])
    );
    assert_eq!((again.applied, again.credited, again.debited), (0, 0, 0));
    assert_eq!(h.ledger_len(&t, "email:ann@example.com").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_smile_upload_states_its_mode_and_a_bad_mode_is_refused() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let create = |kind: &str, mode: &str| json!({"kind": kind, "reason": "migration", "filename": "smile.csv", "size_bytes": 10, "mode": mode});
    for (body, why) in [
        (create("smile", "replace"), "'replace' is not a mode"),
        (
            create("points", "set_balance"),
            "mode is for Smile.io files",
        ),
    ] {
        let response = h.api(&t, Method::POST, "/imports", Some(body)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert!(response.text().contains(why), "{}", response.text());
    }
    let created = h
        .api(
            &t,
            Method::POST,
            "/imports",
            Some(create("smile", "set_balance")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let template = h.api(&t, Method::GET, "/templates/smile", None).await;
    assert_eq!(template.status, StatusCode::OK);
    assert!(template.text().starts_with("email,points\n"));
}
