//! Membership files through the whole pipeline (README, "Membership files"): card code
//! and tier change files dropped in the bucket or uploaded through the API,
//! split, applied to the `subscriptions` table, reported in a processed file
//! and one email, in their tenant's order.
//!
//! Its length: one test binary per capability (each binary is linked on its
//! own); its tests share the helpers at its top.

use chrono::{DateTime, NaiveDate, Utc};
use lambda_http::http::{Method, StatusCode};
use local_stack::{console, Runner};
use loyalty_aws::Aws;
use pipeline_tests::{processed_rows, Harness, ProcessedRow, TestTenant};
use serde_json::json;
use shared::job::{Job, JobStatus};
use shared::kind::ImportKind;
use shared::membership::apply::CardStore;
use shared::membership::cards::Card;
use shared::membership::ean13;
use shared::test_support::SAMPLE_MEMBERSHIPS;
use std::time::Duration;

const CARD_HEADER: &str =
    "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier";
const TIER_HEADER: &str = "card_code;tier_name;context;value_date;last_downgrade_check";

/// The source document's example, its two misprints straightened: the
/// first line's expiration date and birthday are two cells, the second
/// line's empty card code is written.
const EXAMPLE: &str = "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier\n\
    \"my_card_code\";\"jane@example.com\";\"1\";\"2019-01-01 00:00:01\";\"2020-01-01 00:00:01\";\"1955-02-01\";\"2\"\n\
    \"\";\"john@example.com\";\"3\";;;;\"2\"\n\
    \"my_card_code1\";\"joe@example.com\";\"1\";;;;\"4\"\n";

/// The example exactly as the document prints it.
const EXAMPLE_AS_PRINTED: &str = "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier\n\
    \"my_card_code\";\"jane@example.com\";\"1\";\"2019-01-01 00:00:01\";\"2020-01-01 00:00:01;1955-02-01\";\"2\";\n\
    \"john@example.com\";\"3\";;;;\"2\"\n\
    \"my_card_code1\";\"joe@example.com\";\"1\";;;;\"4\"\n";

/// A tenant of universe `demoshop` with the sample programs (Club: Bronze 1,
/// Silver 2, Gold 4; Kids: Explorer 2, Captain 8) and custom field `store`.
async fn member_tenant(h: &Harness, auto_card_codes: bool) -> TestTenant {
    let t = h.tenant().await;
    let config = SAMPLE_MEMBERSHIPS.replace(
        "\"auto_card_codes\": true",
        &format!("\"auto_card_codes\": {auto_card_codes}"),
    );
    console::configure_memberships(&h.aws, t.id(), &config)
        .await
        .expect("membership configuration");
    t
}

/// An operator drops a membership file in the tenant's memberships folder.
async fn drop_membership(h: &Harness, t: &TestTenant, name: &str, content: &str) {
    h.drop_file(t, &format!("memberships/{name}"), content, None)
        .await;
}

async fn job_named(h: &Harness, t: &TestTenant, name: &str) -> Job {
    h.jobs(t)
        .await
        .into_iter()
        .find(|j| j.filename == name)
        .unwrap_or_else(|| panic!("no job for {name}"))
}

/// A runner whose splitter lets a tier change file with no card code file
/// of its day wait a second, not the template's quarter of an hour.
async fn impatient_runner(h: &Harness) -> Runner {
    let mut settings = h.aws.settings.clone();
    settings.membership_wait_seconds = 1;
    Runner::new(Aws::new(settings).await).expect("queues")
}

/// Drops one file, runs the pipeline, and returns its job and processed rows.
async fn import(
    h: &Harness,
    t: &TestTenant,
    name: &str,
    content: &str,
) -> (Job, Vec<ProcessedRow>) {
    drop_membership(h, t, name, content).await;
    impatient_runner(h)
        .await
        .run_until_idle(Some(t.id()), Duration::from_secs(90))
        .await
        .expect("the pipeline settles");
    let job = job_named(h, t, name).await;
    let rows = match job.processed_key {
        Some(_) => processed_rows(&h.processed_file(&job).await),
        None => Vec::new(),
    };
    (job, rows)
}

async fn card(h: &Harness, t: &TestTenant, code: &str) -> Option<Card> {
    CardStore::card(&h.aws.tables, t.id(), code)
        .await
        .expect("card")
        .map(|stored| stored.card)
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("rfc3339")
        .with_timezone(&Utc)
}

/// (status, error_code) of each processed row.
fn statuses(rows: &[ProcessedRow]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|r| (r.get("status"), r.get("error_code")))
        .collect()
}

/// The one email about a job, its subject and text.
async fn only_email(h: &Harness, t: &TestTenant, job: &Job) -> (String, String) {
    let emails = h.emails_about(&job.job_id).await;
    assert_eq!(emails.len(), 1, "one email per job: {emails:?}");
    assert_eq!(
        emails[0].destinations.to,
        std::slice::from_ref(&t.tenant.admin_email)
    );
    (emails[0].subject.clone(), emails[0].body.clone())
}

// ---------- scope cardcode ----------

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_example_creates_three_cards_when_codes_are_generated() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let name = "demoshop_cardcode_customers_20190214.csv";
    let (job, rows) = import(&h, &t, name, EXAMPLE).await;
    assert_eq!(job.kind, Some(ImportKind::CardCode));
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(statuses(&rows), [("applied", ""); 3]);

    let generated = rows[1].get("applied_card_code");
    assert!(ean13::is_valid(generated), "'{generated}' is not an EAN-13");
    assert_eq!(rows[0].get("applied_card_code"), "my_card_code");

    let jane = card(&h, &t, "my_card_code").await.unwrap();
    assert_eq!(jane.customer_key.as_deref(), Some("jane@example.com"));
    assert_eq!((jane.id_program, jane.id_tier), (1, 2));
    // Paris winter time is UTC+1.
    assert_eq!(jane.join_date, utc("2018-12-31T23:00:01Z"));
    assert_eq!(jane.expiration_date, Some(utc("2019-12-31T23:00:01Z")));
    assert_eq!(jane.birthday, NaiveDate::from_ymd_opt(1955, 2, 1));
    let john = card(&h, &t, generated).await.unwrap();
    assert_eq!((john.id_program, john.id_tier), (3, 2));
    assert_eq!(john.customer_key.as_deref(), Some("john@example.com"));
    // An empty join date is the import's time.
    assert!((Utc::now() - john.join_date).num_minutes().abs() < 5);
    let joe = card(&h, &t, "my_card_code1").await.unwrap();
    assert_eq!(joe.id_tier, 4);

    let (subject, text) = only_email(&h, &t, &job).await;
    assert_eq!(subject, format!("Card code import completed: {name}"));
    assert!(text.contains("Cards created or changed: 3\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_generated_codes_the_example_line_with_no_card_code_fails() {
    let h = Harness::start().await;
    let t = member_tenant(&h, false).await;
    let (job, rows) = import(&h, &t, "demoshop_cardcode_customers_20190214.csv", EXAMPLE).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    assert_eq!(
        statuses(&rows),
        [
            ("applied", ""),
            ("failed", "missing_card_code"),
            ("applied", "")
        ]
    );
    assert!(rows[1]
        .get("error_message")
        .contains("does not generate card codes"));
    assert_eq!(rows[1].get("applied_card_code"), "");
    assert!(card(&h, &t, "my_card_code").await.is_some());
    assert!(card(&h, &t, "my_card_code1").await.is_some());
    let (subject, _) = only_email(&h, &t, &job).await;
    assert!(
        subject.starts_with("Card code import completed with errors"),
        "{subject}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_as_printed_is_refused_line_by_line_saying_why() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let (_, rows) = import(
        &h,
        &t,
        "demoshop_cardcode_customers_20190214.csv",
        EXAMPLE_AS_PRINTED,
    )
    .await;
    assert_eq!(
        statuses(&rows),
        [
            ("failed", "invalid_date"),
            ("failed", "too_few_fields"),
            ("applied", "")
        ]
    );
    let first = rows[0].get("error_message");
    assert!(
        first.contains("expiration_date") && first.contains("'2020-01-01 00:00:01;1955-02-01'"),
        "{first}"
    );
    assert!(rows[1]
        .get("error_message")
        .contains("6 values but the header has 7"));
    // Nothing of a refused line is applied.
    assert!(card(&h, &t, "my_card_code").await.is_none());
    assert!(card(&h, &t, "my_card_code1").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_card_code_is_updated_and_an_empty_value_erases_but_null_does_not() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let header = format!("{CARD_HEADER};store");
    import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        &format!(
            "{header}\nC-1;ann@example.com;1;2026-01-10 09:00:00;2030-01-01;1990-05-06;;Lyon\n"
        ),
    )
    .await;
    let (_, rows) = import(
        &h,
        &t,
        "demoshop_cardcode_s_20260111.csv",
        &format!(
            "{header}\n\
             \"C-1\";\"ann.new@example.com\";;;\"\";;;\"\"\n\
             C-1;ann@example.com;;NULL;;;;\n"
        ),
    )
    .await;
    assert_eq!(
        statuses(&rows),
        [("applied", ""), ("failed", "invalid_date")]
    );
    assert!(rows[1].get("error_message").contains("NULL is not a date"));
    let ann = card(&h, &t, "C-1").await.unwrap();
    assert_eq!(ann.customer_key.as_deref(), Some("ann.new@example.com"));
    // Kept: the program, the tier, and the join date the update left empty.
    assert_eq!((ann.id_program, ann.id_tier), (1, 1));
    assert_eq!(ann.join_date, utc("2026-01-10T08:00:00Z"));
    // Erased: the expiration date, the birthday and the store.
    assert_eq!((ann.expiration_date, ann.birthday), (None, None));
    assert!(ann.custom.is_empty(), "{:?}", ann.custom);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_that_names_a_program_or_a_tier_fails_and_changes_nothing() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        &format!("{CARD_HEADER}\nC-2;bo@example.com;1;;;;2\n"),
    )
    .await;
    let (job, rows) = import(
        &h,
        &t,
        "demoshop_cardcode_s_20260111.csv",
        &format!(
            "{CARD_HEADER}\n\
             C-2;bo.moved@example.com;3;;;;\n\
             C-2;bo.moved@example.com;;;;;4\n"
        ),
    )
    .await;
    assert_eq!(
        statuses(&rows),
        [
            ("failed", "program_on_update"),
            ("failed", "tier_on_update")
        ]
    );
    assert!(rows[0]
        .get("error_message")
        .contains("leave id_program empty"));
    let bo = card(&h, &t, "C-2").await.unwrap();
    assert_eq!(bo.customer_key.as_deref(), Some("bo@example.com"));
    assert_eq!((bo.id_program, bo.id_tier), (1, 2));
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_active_card_for_the_same_contact_in_a_program_fails() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let (_, rows) = import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        &format!(
            "{CARD_HEADER}\n\
             A-1;cy@example.com;1;;;;\n\
             A-2;cy@example.com;1;;;;\n\
             K-1;cy@example.com;3;;;;\n\
             N-1;;1;;;;\n\
             N-2;;1;;;;\n"
        ),
    )
    .await;
    assert_eq!(
        statuses(&rows),
        [
            ("applied", ""),
            ("failed", "second_active_card"),
            ("applied", ""),
            ("applied", ""),
            ("applied", "")
        ]
    );
    assert!(rows[1]
        .get("error_message")
        .contains("already has the active card 'A-1'"));
    assert!(card(&h, &t, "A-2").await.is_none());
    // Another program is another card; no contact, no limit.
    assert_eq!(card(&h, &t, "K-1").await.unwrap().id_program, 3);
    assert_eq!(card(&h, &t, "N-2").await.unwrap().customer_key, None);

    // In a later file too; once the first card has expired, a new one is welcome.
    let (_, later) = import(
        &h,
        &t,
        "demoshop_cardcode_s_20260111.csv",
        &format!(
            "{CARD_HEADER}\n\
             A-3;cy@example.com;1;;;;\n\
             A-1;cy@example.com;;;2026-01-01;;\n\
             A-3;cy@example.com;1;;;;\n"
        ),
    )
    .await;
    assert_eq!(
        statuses(&later),
        [
            ("failed", "second_active_card"),
            ("applied", ""),
            ("applied", "")
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_card_gets_its_programs_lowest_tier_and_a_tier_of_another_program_fails() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let (_, rows) = import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        &format!(
            "{CARD_HEADER}\n\
             T-1;d1@example.com;1;;;;\n\
             T-2;d2@example.com;1;;;;8\n\
             T-3;d3@example.com;9;;;;\n\
             T-4;d4@example.com;3;;;;8\n\
             T-5;d5@example.com;NULL;;;;\n\
             T-6;d6@example.com;1;;;;2.0\n"
        ),
    )
    .await;
    assert_eq!(
        statuses(&rows),
        [
            ("applied", ""),
            ("failed", "unknown_tier"),
            ("failed", "unknown_program"),
            ("applied", ""),
            ("failed", "invalid_number"),
            ("failed", "invalid_number")
        ]
    );
    assert!(rows[4]
        .get("error_message")
        .contains("NULL is not a number"));
    assert!(rows[5]
        .get("error_message")
        .contains("'2.0' is not a positive whole number"));
    assert!(rows[1]
        .get("error_message")
        .contains("not a tier of program 1"));
    assert_eq!(card(&h, &t, "T-1").await.unwrap().id_tier, 1);
    assert_eq!(card(&h, &t, "T-4").await.unwrap().id_tier, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn dates_are_paris_time_and_a_time_the_clock_change_skips_or_repeats_fails() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let (_, rows) = import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        &format!(
            "{CARD_HEADER}\n\
             S-1;e1@example.com;1;2026-07-01 12:00:00;;;\n\
             S-2;e2@example.com;1;2026-01-15;;;\n\
             S-3;e3@example.com;1;2026-03-29 02:30:00;;;\n\
             S-4;e4@example.com;1;2026-10-25 02:30:00;;;\n\
             S-5;e5@example.com;1;2026-03-29 03:00:00;;1990-02-30;\n\
             S-6;e6@example.com;1;01/02/2026;;;\n"
        ),
    )
    .await;
    assert_eq!(
        statuses(&rows),
        [
            ("applied", ""),
            ("applied", ""),
            ("failed", "invalid_date"),
            ("failed", "invalid_date"),
            ("failed", "invalid_date"),
            ("failed", "invalid_date")
        ]
    );
    // Summer time (CEST) is UTC+2, winter time (CET) UTC+1.
    assert_eq!(
        card(&h, &t, "S-1").await.unwrap().join_date,
        utc("2026-07-01T10:00:00Z")
    );
    assert_eq!(
        card(&h, &t, "S-2").await.unwrap().join_date,
        utc("2026-01-14T23:00:00Z")
    );
    assert!(rows[2]
        .get("error_message")
        .contains("does not exist in Paris time"));
    assert!(rows[3]
        .get("error_message")
        .contains("happens twice in Paris time"));
    assert!(rows[4].get("error_message").contains("birthday"));
    assert!(rows[5].get("error_message").contains("'01/02/2026'"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_mandatory_value_skips_the_row_with_its_reason() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let (job, rows) = import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        &format!("{CARD_HEADER}\nM-1;f@example.com;;;;;\nM-2;g@example.com;1;;;;\n"),
    )
    .await;
    assert_eq!(
        statuses(&rows),
        [("skipped", "missing_program"), ("applied", "")]
    );
    assert!(rows[0]
        .get("error_message")
        .contains("needs its id_program"));
    assert!(card(&h, &t, "M-1").await.is_none());
    assert_eq!((job.skipped, job.applied), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_unknown_or_misplaced_column_rejects_the_file() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let cases = [
        (
            "demoshop_cardcode_a_20260110.csv",
            "card_code;id_program;join_date\nX-1;1;\n",
            "missing column 'customer_key'",
        ),
        (
            "demoshop_cardcode_b_20260111.csv",
            "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier;colour\nX-2;a@x.io;1;;;;;red\n",
            "unknown column 'colour'",
        ),
        (
            "demoshop_cardcode_c_20260112.csv",
            "customer_key;card_code;id_program;join_date;expiration_date;birthday;id_tier\na@x.io;X-3;1;;;;\n",
            "column 'card_code' is after 'customer_key'",
        ),
        (
            "demoshop_cardcode_e_20260114.csv",
            "card_code;customer_key;id_program;birthday;expiration_date\nX-4;a@x.io;1;;\n",
            "column 'expiration_date' is after 'birthday'",
        ),
        (
            "demoshop_cardcode_f_20260115.csv",
            "card_code;customer_key;store;id_program\nX-5;a@x.io;Lyon;1\n",
            "column 'id_program' is after the custom field 'store'",
        ),
        (
            "demoshop_cardcode_g_20260116.csv",
            "card_code;customer_key;id_program;id_program\nX-6;a@x.io;1;1\n",
            "column 'id_program' appears more than once",
        ),
        (
            "demoshop_tierchange_d_20260113.csv",
            "card_code;tier_name;context\nX-1;Gold;spring\n",
            "missing column 'value_date'",
        ),
    ];
    for (name, content, why) in cases {
        let (job, _) = import(&h, &t, name, content).await;
        assert_eq!(job.status, JobStatus::Rejected, "{name}");
        assert!(
            job.rejection.as_deref().unwrap_or_default().contains(why),
            "{name}: {job:?}"
        );
        let (subject, text) = only_email(&h, &t, &job).await;
        assert!(subject.contains("rejected"), "{subject}");
        assert!(text.contains(why), "{text}");
    }
    for code in ["X-1", "X-2", "X-3", "X-4", "X-5", "X-6"] {
        assert!(card(&h, &t, code).await.is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_of_the_three_mandatory_columns_creates_cards() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let before = Utc::now();
    let (job, rows) = import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        "card_code;customer_key;id_program\nC-1;ann@example.com;1\n;bob@example.com;3\n",
    )
    .await;
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    assert_eq!(statuses(&rows), [("applied", ""); 2]);
    let ann = card(&h, &t, "C-1").await.unwrap();
    // The program's lowest tier, joining at the import's time, no expiry.
    assert_eq!((ann.id_program, ann.id_tier), (1, 1));
    assert!(ann.join_date >= before - chrono::Duration::seconds(1));
    assert_eq!((ann.expiration_date, ann.birthday), (None, None));
    let generated = rows[1].get("applied_card_code");
    assert!(ean13::is_valid(generated), "{generated}");
    let bob = card(&h, &t, generated).await.unwrap();
    assert_eq!((bob.id_program, bob.id_tier), (3, 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_file_without_id_program_changes_only_its_columns_and_skips_new_cards() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        &format!(
            "{CARD_HEADER};store\nC-1;ann@example.com;1;2026-01-10 09:00:00;2030-01-01;1990-05-06;2;Lyon\n"
        ),
    )
    .await;
    let (job, rows) = import(
        &h,
        &t,
        "demoshop_cardcode_s_20260111.csv",
        "card_code;customer_key;expiration_date;birthday\n\
         \"C-1\";\"ann@example.com\";\"2031-06-30 00:00:00\";\"\"\n\
         \"C-9\";\"zed@example.com\";\"2031-06-30 00:00:00\";\"1990-01-01\"\n",
    )
    .await;
    // A skipped row is no error: the job is completed.
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    assert_eq!((job.applied, job.skipped), (1, 1));
    assert_eq!(
        statuses(&rows),
        [("applied", ""), ("skipped", "missing_program")]
    );
    assert!(
        rows[1]
            .get("error_message")
            .contains("no id_program column"),
        "{}",
        rows[1].get("error_message")
    );
    let ann = card(&h, &t, "C-1").await.unwrap();
    // Changed: the expiry moved, the birthday erased.
    assert_eq!(ann.expiration_date, Some(utc("2031-06-29T22:00:00Z")));
    assert_eq!(ann.birthday, None);
    // Left out, so kept: program, tier, join date, store.
    assert_eq!((ann.id_program, ann.id_tier), (1, 2));
    assert_eq!(ann.join_date, utc("2026-01-10T08:00:00Z"));
    assert_eq!(ann.custom.get("store").map(String::as_str), Some("Lyon"));
    assert!(card(&h, &t, "C-9").await.is_none());

    // A file whose only change is a custom field changes only that.
    let (_, rows) = import(
        &h,
        &t,
        "demoshop_cardcode_s_20260112.csv",
        "card_code;customer_key;store\nC-1;ann@example.com;Nice\n",
    )
    .await;
    assert_eq!(statuses(&rows), [("applied", "")]);
    let after = card(&h, &t, "C-1").await.unwrap();
    assert_eq!(after.custom.get("store").map(String::as_str), Some("Nice"));
    assert_eq!(
        (
            after.expiration_date,
            after.birthday,
            after.join_date,
            after.id_tier
        ),
        (
            ann.expiration_date,
            ann.birthday,
            ann.join_date,
            ann.id_tier
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tier_change_file_may_leave_out_context_and_last_downgrade_check() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        "card_code;customer_key;id_program\nC-1;ann@example.com;1\n",
    )
    .await;
    let (job, rows) = import(
        &h,
        &t,
        "demoshop_tierchange_s_20260110.csv",
        "value_date;card_code;tier_name\n2026-01-10 12:00:00;C-1;gold\n",
    )
    .await;
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    assert_eq!(statuses(&rows), [("applied", "")]);
    let ann = card(&h, &t, "C-1").await.unwrap();
    assert_eq!(ann.id_tier, 4);
    assert_eq!(
        ann.tier_history.last().map(|h| h.context.clone()),
        Some(None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_of_more_than_200000_rows_is_rejected_before_anything_is_applied() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let mut content = String::with_capacity(200_001 * 16 + 80);
    content.push_str(CARD_HEADER);
    content.push('\n');
    for n in 0..200_001 {
        content.push_str(&format!("B-{n};;1;;;;\n"));
    }
    let (job, rows) = import(&h, &t, "demoshop_cardcode_big_20260110.csv", &content).await;
    assert_eq!(job.status, JobStatus::Rejected);
    let why = job.rejection.clone().unwrap_or_default();
    assert!(why.contains("200001 rows, more than the 200000"), "{why}");
    assert!(rows.is_empty());
    assert_eq!(job.batches_total, 0);
    assert!(card(&h, &t, "B-0").await.is_none());
    let (_, text) = only_email(&h, &t, &job).await;
    assert!(text.contains("more than the 200000"), "{text}");
}

// ---------- scope tierchange ----------

#[tokio::test(flavor = "multi_thread")]
async fn a_tier_change_goes_into_the_cards_history_with_its_context_and_dates() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        &format!("{CARD_HEADER}\nG-1;gus@example.com;1;;;;\nG-2;kid@example.com;3;;;;\n"),
    )
    .await;
    let (job, rows) = import(
        &h,
        &t,
        "demoshop_tierchange_s_20260111.csv",
        &format!(
            "{TIER_HEADER}\n\
             G-1;gold;Spring upgrade;2026-04-01 09:00:00;2026-03-31 23:00:00\n\
             G-404;Gold;;2026-04-01;\n\
             G-2;Gold;;2026-04-01;\n\
             G-1;;;2026-04-01;\n\
             G-1;Silver;;;\n"
        ),
    )
    .await;
    assert_eq!(job.kind, Some(ImportKind::TierChange));
    assert_eq!(
        statuses(&rows),
        [
            ("applied", ""),
            ("failed", "unknown_card"),
            ("failed", "unknown_tier"),
            ("skipped", "missing_tier_name"),
            ("skipped", "missing_value_date")
        ]
    );
    assert_eq!(rows[0].get("applied_card_code"), "G-1");
    let gus = card(&h, &t, "G-1").await.unwrap();
    assert_eq!(gus.id_tier, 4);
    let change = gus.tier_history.last().expect("a tier history entry");
    assert_eq!(change.tier_name, "Gold");
    assert_eq!(change.context.as_deref(), Some("Spring upgrade"));
    // April is summer time: 09:00 in Paris is 07:00 UTC.
    assert_eq!(change.value_date, utc("2026-04-01T07:00:00Z"));
    assert_eq!(change.source, format!("{}#1", job.job_id));
    assert_eq!(gus.last_downgrade_check, Some(utc("2026-03-31T21:00:00Z")));
    // Gold is a tier of Club, not of Kids.
    assert_eq!(card(&h, &t, "G-2").await.unwrap().id_tier, 2);
    let (subject, _) = only_email(&h, &t, &job).await;
    assert!(
        subject.starts_with("Tier change import completed with errors"),
        "{subject}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_card_keeps_its_latest_tier_changes_and_every_change_is_kept_as_its_own_item() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        &format!("{CARD_HEADER}\nH-1;hal@example.com;1;;;;\n"),
    )
    .await;
    let total = shared::membership::tier_changes::MAX_TIER_HISTORY + 10;
    let file: String = (0..total)
        .map(|n| format!("H-1;{};change {n};2026-04-01;\n", ["Gold", "Silver"][n % 2]))
        .collect();
    let (job, rows) = import(
        &h,
        &t,
        "demoshop_tierchange_s_20260111.csv",
        &format!("{TIER_HEADER}\n{file}"),
    )
    .await;
    assert!(rows.iter().all(|r| r.get("status") == "applied"));
    let hal = card(&h, &t, "H-1").await.unwrap();
    assert_eq!(
        hal.tier_history.len(),
        shared::membership::tier_changes::MAX_TIER_HISTORY
    );
    assert_eq!(
        hal.tier_history.last().unwrap().source,
        format!("{}#{total}", job.job_id)
    );
    let kept = h
        .aws
        .tables
        .client()
        .query()
        .table_name(&h.aws.settings.subscriptions_table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :tier)")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{}#CARD#H-1", t.id())),
        )
        .expression_attribute_values(
            ":tier",
            aws_sdk_dynamodb::types::AttributeValue::S("TIER#".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(kept.count(), total as i32);
}

// ---------- file names and order ----------

#[tokio::test(flavor = "multi_thread")]
async fn a_tier_change_that_arrives_before_its_card_code_file_waits_for_it() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let tiers = "demoshop_tierchange_s_20260110.csv";
    drop_membership(
        &h,
        &t,
        tiers,
        &format!("{TIER_HEADER}\nW-1;Gold;welcome;2026-01-10 10:00:00;\n"),
    )
    .await;
    // Delivered: the tier change file takes its place and waits.
    for _ in 0..3 {
        h.runner.pump().await.unwrap();
    }
    let waiting = job_named(&h, &t, tiers).await;
    assert_eq!(waiting.status, JobStatus::Waiting);
    let why = waiting.waiting_for.unwrap_or_default();
    assert!(why.contains("card code file of 2026-01-10"), "{why}");

    let cards = "demoshop_cardcode_s_20260110.csv";
    drop_membership(
        &h,
        &t,
        cards,
        &format!("{CARD_HEADER}\nW-1;wes@example.com;1;;;;\n"),
    )
    .await;
    h.settle(&t).await;
    let cards_job = job_named(&h, &t, cards).await;
    let tiers_job = job_named(&h, &t, tiers).await;
    assert_eq!(cards_job.status, JobStatus::Completed);
    assert_eq!(tiers_job.status, JobStatus::Completed, "{tiers_job:?}");
    assert!(cards_job.finished_at < tiers_job.finished_at);
    let wes = card(&h, &t, "W-1").await.unwrap();
    assert_eq!(wes.id_tier, 4);
    assert_eq!(
        wes.tier_history.last().unwrap().context.as_deref(),
        Some("welcome")
    );
    only_email(&h, &t, &tiers_job).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tier_change_waiting_for_a_card_code_file_that_is_rejected_goes_at_once() {
    // The template's wait (a quarter of an hour): only the rejection can
    // let the tier changes go within the test's time.
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    import(
        &h,
        &t,
        "demoshop_cardcode_s_20260109.csv",
        &format!("{CARD_HEADER}\nR-1;rae@example.com;1;;;;\n"),
    )
    .await;
    let tiers = "demoshop_tierchange_s_20260110.csv";
    drop_membership(
        &h,
        &t,
        tiers,
        &format!("{TIER_HEADER}\nR-1;Gold;;2026-01-10;\n"),
    )
    .await;
    for _ in 0..3 {
        h.runner.pump().await.unwrap();
    }
    assert_eq!(job_named(&h, &t, tiers).await.status, JobStatus::Waiting);
    let cards = "demoshop_cardcode_s_20260110.csv";
    drop_membership(&h, &t, cards, "card_code;colour\nR-1;red\n").await;
    h.settle(&t).await;
    assert_eq!(job_named(&h, &t, cards).await.status, JobStatus::Rejected);
    let job = job_named(&h, &t, tiers).await;
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    assert_eq!(card(&h, &t, "R-1").await.unwrap().id_tier, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_applied_by_date_then_card_codes_before_tier_changes() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    // Arrival: the day's tier changes, the next day's cards, the day's cards.
    let names = [
        "demoshop_tierchange_s_20260110.csv",
        "demoshop_cardcode_s_20260111.csv",
        "demoshop_cardcode_s_20260110.csv",
    ];
    let contents = [
        format!("{TIER_HEADER}\nO-1;Silver;;2026-01-10 12:00:00;\n"),
        // Moves the card to another contact: only possible once it exists.
        format!("{CARD_HEADER}\nO-1;olga.new@example.com;;;;;\n"),
        format!("{CARD_HEADER}\nO-1;olga@example.com;1;;;;\n"),
    ];
    for (name, content) in names.iter().zip(&contents) {
        drop_membership(&h, &t, name, content).await;
        h.runner.pump().await.unwrap();
    }
    h.settle(&t).await;
    let finished = |job: Job| {
        assert_eq!(job.status, JobStatus::Completed, "{job:?}");
        job.finished_at.unwrap()
    };
    let tiers = finished(job_named(&h, &t, names[0]).await);
    let next_day = finished(job_named(&h, &t, names[1]).await);
    let cards = finished(job_named(&h, &t, names[2]).await);
    assert!(cards < tiers && tiers < next_day);
    let olga = card(&h, &t, "O-1").await.unwrap();
    assert_eq!(olga.customer_key.as_deref(), Some("olga.new@example.com"));
    assert_eq!(olga.id_tier, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_files_whose_turn_comes_at_once_do_not_import_together() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let waiting = |id: &str, name: &str| {
        let key = format!("incoming/{}/memberships/{name}", t.id());
        let mut job = Job::new(t.id(), id, &key, "cards", Utc::now());
        job.status = JobStatus::Waiting;
        job.kind = Some(ImportKind::CardCode);
        job
    };
    let first = waiting("J-first", "demoshop_cardcode_s_20260110.csv");
    let second = waiting("J-second", "demoshop_cardcode_s_20260111.csv");
    for job in [&first, &second] {
        assert!(h.aws.tables.create_job(job).await.unwrap());
    }
    // Both found their turn (neither saw the other importing): one starts.
    let started = h.aws.tables.start_waiting_job(&first).await.unwrap();
    assert_eq!(started.map(|j| j.status), Some(JobStatus::Splitting));
    assert!(h
        .aws
        .tables
        .start_waiting_job(&second)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        h.aws
            .tables
            .job(t.id(), "J-second")
            .await
            .unwrap()
            .unwrap()
            .status,
        JobStatus::Waiting
    );
    // Started twice (a redelivered event): still one start.
    assert!(h
        .aws
        .tables
        .start_waiting_job(&first)
        .await
        .unwrap()
        .is_none());
    // Once the first is done, the second takes the turn over.
    h.aws
        .tables
        .reject_job(t.id(), "J-first", "test: done")
        .await
        .unwrap();
    let started = h.aws.tables.start_waiting_job(&second).await.unwrap();
    assert_eq!(started.map(|j| j.status), Some(JobStatus::Splitting));
    // These jobs have no file: close them, so no runner waits for them.
    let tables = &h.aws.tables;
    tables
        .reject_job(t.id(), "J-second", "test: done")
        .await
        .unwrap();
    for job in tables.jobs(t.id()).await.unwrap() {
        tables.mark_email_sent(&job).await.unwrap();
    }
    assert!(tables
        .unfinished_jobs()
        .await
        .unwrap()
        .iter()
        .all(|j| j.tenant_id != t.id()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tier_change_file_with_no_card_code_file_goes_after_its_wait() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    import(
        &h,
        &t,
        "demoshop_cardcode_s_20260110.csv",
        &format!("{CARD_HEADER}\nP-1;pia@example.com;1;;;;\n"),
    )
    .await;
    let runner = impatient_runner(&h).await;
    let name = "demoshop_tierchange_s_20260111.csv";
    drop_membership(
        &h,
        &t,
        name,
        &format!("{TIER_HEADER}\nP-1;Gold;;2026-01-11;\n"),
    )
    .await;
    runner
        .run_until_idle(Some(t.id()), Duration::from_secs(60))
        .await
        .unwrap();
    let job = job_named(&h, &t, name).await;
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(card(&h, &t, "P-1").await.unwrap().id_tier, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_named_like_a_membership_file_is_one_wherever_it_is_dropped() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let name = "demoshop_cardcode_s_20260110.csv";
    h.drop_file(
        &t,
        &format!("exports/{name}"),
        &format!("{CARD_HEADER}\nV-1;val@example.com;1;;;;\n"),
        None,
    )
    .await;
    impatient_runner(&h)
        .await
        .run_until_idle(Some(t.id()), Duration::from_secs(90))
        .await
        .unwrap();
    let job = job_named(&h, &t, name).await;
    assert_eq!(
        (job.kind, job.status),
        (Some(ImportKind::CardCode), JobStatus::Completed)
    );
    assert!(card(&h, &t, "V-1").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_name_or_another_universe_is_rejected_with_an_email_saying_why() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let content = format!("{CARD_HEADER}\nR-1;rex@example.com;1;;;;\n");
    let cases = [
        (
            "demoshop_cardcode_20260110.csv",
            "has no subsection followed by a date",
        ),
        (
            "demoshop_cardcode_s_2026-01-10.csv",
            "has no subsection followed by a date",
        ),
        ("demoshop_cards_s_20260110.csv", "names no scope"),
        (
            "othershop_cardcode_s_20260110.csv",
            "universe 'othershop', but this account's universe is 'demoshop'",
        ),
    ];
    for (name, why) in cases {
        let (job, _) = import(&h, &t, name, &content).await;
        assert_eq!(job.status, JobStatus::Rejected, "{name}");
        let (subject, text) = only_email(&h, &t, &job).await;
        assert!(
            subject.contains("rejected") && subject.contains(name),
            "{subject}"
        );
        // A membership file, by its scope if its name gives one.
        assert!(
            subject.starts_with("Card code import") || subject.starts_with("Membership import"),
            "{subject}"
        );
        assert!(text.contains(why), "{name}: {text}");
    }
    assert!(card(&h, &t, "R-1").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_membership_file_dropped_twice_under_one_name_is_imported_once_and_the_second_refused() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let name = "demoshop_cardcode_s_20260110.csv";
    drop_membership(
        &h,
        &t,
        name,
        "card_code;customer_key;id_program\nV-1;v1@x.io;1\n",
    )
    .await;
    drop_membership(
        &h,
        &t,
        name,
        "card_code;customer_key;id_program\nV-2;v2@x.io;1\n",
    )
    .await;
    impatient_runner(&h)
        .await
        .run_until_idle(Some(t.id()), Duration::from_secs(90))
        .await
        .expect("the pipeline settles");
    let mut jobs = h.jobs(&t).await;
    jobs.sort_by_key(|j| j.created_at);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0].status, JobStatus::Completed, "{:?}", jobs[0]);
    assert_eq!(jobs[1].status, JobStatus::Rejected, "{:?}", jobs[1]);
    let why = jobs[1].rejection.clone().unwrap_or_default();
    assert!(why.contains("needs a sequence number"), "{why}");
    // One email each (the rejection names the first job too).
    for (job, subject) in jobs.iter().zip(["completed", "rejected"]) {
        let own: Vec<_> = h
            .emails_about(&job.job_id)
            .await
            .into_iter()
            .filter(|e| e.body.contains(&format!("Job: {}", job.job_id)))
            .collect();
        assert_eq!(own.len(), 1, "{own:?}");
        assert!(own[0].subject.contains(subject), "{}", own[0].subject);
    }
    assert!(card(&h, &t, "V-1").await.is_some());
    assert!(card(&h, &t, "V-2").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_file_of_a_scope_and_day_needs_a_sequence() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let first = "demoshop_cardcode_s_20260110.csv";
    import(
        &h,
        &t,
        first,
        &format!("{CARD_HEADER}\nQ-1;q1@example.com;1;;;;\n"),
    )
    .await;
    let second = "demoshop_cardcode_other_20260110.csv";
    let (job, _) = import(
        &h,
        &t,
        second,
        &format!("{CARD_HEADER}\nQ-2;q2@example.com;1;;;;\n"),
    )
    .await;
    assert_eq!(job.status, JobStatus::Rejected);
    let (_, text) = only_email(&h, &t, &job).await;
    assert!(
        text.contains("needs a sequence number") && text.contains(first),
        "{text}"
    );
    assert!(card(&h, &t, "Q-2").await.is_none());

    let numbered = "demoshop_cardcode_other_20260110_2.csv";
    let (job, _) = import(
        &h,
        &t,
        numbered,
        &format!("{CARD_HEADER}\nQ-2;q2@example.com;1;;;;\n"),
    )
    .await;
    assert_eq!(job.status, JobStatus::Completed);
    assert!(card(&h, &t, "Q-2").await.is_some());
    // The same sequence again is refused.
    let again = "demoshop_cardcode_more_20260110_2.csv";
    let (job, _) = import(
        &h,
        &t,
        again,
        &format!("{CARD_HEADER}\nQ-3;q3@example.com;1;;;;\n"),
    )
    .await;
    assert_eq!(job.status, JobStatus::Rejected);
    assert!(job.rejection.unwrap_or_default().contains("sequence 2"));
}

// ---------- uploads through the API ----------

#[tokio::test(flavor = "multi_thread")]
async fn a_card_code_file_uploaded_through_the_api_is_imported() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let job_id = h
        .api_import(
            &t,
            "cardcode",
            "demoshop_cardcode_portal_20260110.csv",
            &format!("{CARD_HEADER}\nU-1;uma@example.com;1;;;;4\n"),
            false,
        )
        .await;
    h.settle(&t).await;
    let status = h
        .api(&t, Method::GET, &format!("/imports/{job_id}"), None)
        .await;
    let body = status.json().unwrap();
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["kind"], "cardcode", "{body}");
    assert_eq!(card(&h, &t, "U-1").await.unwrap().id_tier, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_shows_why_a_membership_file_waits() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let job_id = h
        .api_import(
            &t,
            "tierchange",
            "demoshop_tierchange_portal_20260110.csv",
            &format!("{TIER_HEADER}\nU-2;Gold;;2026-01-10;\n"),
            false,
        )
        .await;
    for _ in 0..3 {
        h.runner.pump().await.unwrap();
    }
    let body = h
        .api(&t, Method::GET, &format!("/imports/{job_id}"), None)
        .await
        .json()
        .unwrap();
    assert_eq!(body["status"], "waiting", "{body}");
    let why = body["waiting_for"].as_str().unwrap_or_default();
    assert!(
        why.contains("for the card code file of 2026-01-10"),
        "{why}"
    );
    // It goes once its wait is over.
    impatient_runner(&h)
        .await
        .run_until_idle(Some(t.id()), Duration::from_secs(60))
        .await
        .unwrap();
    let done = h
        .api(&t, Method::GET, &format!("/imports/{job_id}"), None)
        .await
        .json()
        .unwrap();
    assert_eq!(done["status"], "completed_with_errors", "{done}");
    assert_eq!(done["waiting_for"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_refuses_a_membership_upload_it_cannot_place() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let create = |kind: &str, filename: &str, dry_run: bool| json!({"kind": kind, "reason": "cards", "filename": filename, "size_bytes": 10, "dry_run": dry_run});
    for (body, why) in [
        (create("cardcode", "cards.csv", false), "cards.csv"),
        (
            create("tierchange", "demoshop_cardcode_s_20260110.csv", false),
            "scope cardcode",
        ),
        (
            create("cardcode", "demoshop_cardcode_s_20260110.csv", true),
            "dry runs are for points imports",
        ),
    ] {
        let response = h.api(&t, Method::POST, "/imports", Some(body)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert!(response.text().contains(why), "{}", response.text());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_templates_carry_the_tenants_own_fields_and_import_as_they_are() {
    let h = Harness::start().await;
    let t = member_tenant(&h, true).await;
    let template = |kind: &'static str| {
        let h = &h;
        let t = &t;
        async move {
            let response = h
                .api(t, Method::GET, &format!("/templates/{kind}"), None)
                .await;
            assert_eq!(response.status, StatusCode::OK);
            response.text()
        }
    };
    let cards = template("cardcode").await;
    assert!(
        cards.starts_with(&format!("{CARD_HEADER};store\n")),
        "{cards}"
    );
    let tiers = template("tierchange").await;
    assert!(tiers.starts_with(&format!("{TIER_HEADER}\n")), "{tiers}");
    assert!(tiers.contains("\"Gold\""), "{tiers}");
    let (job, rows) = import(&h, &t, "demoshop_cardcode_s_20260110.csv", &cards).await;
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    assert_eq!(statuses(&rows), [("applied", ""); 2]);
    let (job, rows) = import(&h, &t, "demoshop_tierchange_s_20260110.csv", &tiers).await;
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    assert_eq!(statuses(&rows), [("applied", "")]);
    assert_eq!(card(&h, &t, "C-0001").await.unwrap().id_tier, 4);
}

// ---------- exactly once under faults ----------

mod faults {
    //! A card code file whose function crashes at each of its AWS calls in
    //! turn, before the call reaches AWS and after it took effect: the
    //! queue's retry must still decide every row once, create each card
    //! once, and produce one processed file and one email.

    use super::*;
    use local_stack::runner::Function;
    use loyalty_aws::faults::FaultPlan;

    const FILE: &str =
        "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier\n\
        F-1;fay@example.com;1;;;;\n\
        ;gil@example.com;1;;;;4\n\
        F-2;fay@example.com;1;;;;\n\
        F-1;fay.new@example.com;;;;;\n";

    const EXPECTED: [(&str, &str); 4] = [
        ("applied", ""),
        ("applied", ""),
        ("failed", "second_active_card"),
        ("applied", ""),
    ];

    async fn import_with(h: &Harness, function: Function, plan: FaultPlan) -> TestTenant {
        let t = member_tenant(h, true).await;
        let runner = impatient_runner(h)
            .await
            .with_clients_for(function, h.faulty_clients(plan).await);
        drop_membership(h, &t, "demoshop_cardcode_s_20260110.csv", FILE).await;
        runner
            .run_until_idle(Some(t.id()), Duration::from_secs(60))
            .await
            .expect("the pipeline settles");
        t
    }

    async fn violations(h: &Harness, t: &TestTenant) -> Vec<String> {
        let mut wrong = Vec::new();
        let jobs = h.jobs(t).await;
        let [job] = jobs.as_slice() else {
            return vec![format!("{} jobs instead of one", jobs.len())];
        };
        if (job.status, job.applied, job.failed) != (JobStatus::CompletedWithErrors, 3, 1) {
            wrong.push(format!(
                "job {} with {} applied, {} failed",
                job.status.as_str(),
                job.applied,
                job.failed
            ));
        }
        let keys = h.processed_keys(t).await;
        if keys.len() != 1 {
            return vec![format!("processed files: {keys:?}")];
        }
        let rows = processed_rows(&h.processed_file(job).await);
        if statuses(&rows) != EXPECTED {
            wrong.push(format!("processed file: {:?}", statuses(&rows)));
        }
        let emails = h.emails_about(&job.job_id).await;
        if emails.len() != 1 {
            wrong.push(format!("{} emails", emails.len()));
        }
        let holder = |code: String| async move {
            card(h, t, &code)
                .await
                .map(|c| c.customer_key.unwrap_or_default())
        };
        let generated = rows.get(1).map(|r| r.get("applied_card_code").to_owned());
        for (code, expected) in [
            (Some("F-1".to_owned()), Some("fay.new@example.com")),
            (generated, Some("gil@example.com")),
            (Some("F-2".to_owned()), None),
        ] {
            let found = match code.clone() {
                Some(code) => holder(code).await,
                None => None,
            };
            if found.as_deref() != expected {
                wrong.push(format!(
                    "card {code:?} held by {found:?}, expected {expected:?}"
                ));
            }
        }
        wrong
    }

    async fn crash_at_every_call(function: Function) {
        let h = &Harness::start().await;
        pipeline_tests::crash_at_every_call(
            function,
            |plan| import_with(h, function, plan),
            |t| async move { violations(h, &t).await },
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_splitter_crash_at_any_call_is_recovered_by_the_retry() {
        crash_at_every_call(Function::Splitter).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_processor_crash_at_any_call_is_recovered_by_the_retry() {
        crash_at_every_call(Function::Processor).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_finalizer_crash_at_any_call_is_recovered_by_the_retry() {
        crash_at_every_call(Function::Finalizer).await;
    }
}
