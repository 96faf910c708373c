//! Imports reviewed before they are applied, end to end against the local
//! emulator: the whole file read and counted with nothing changed, then
//! started (the same upload applied), discarded, or left to expire; a
//! review read over many hurried, redelivered invocations counting each
//! row and customer once; and membership files (card codes, tier changes)
//! reviewed, their cards counted, then started in their tenant's order or
//! discarded.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::{Method, StatusCode};
use local_stack::console::{self, ApiResponse};
use local_stack::runner::Chaos;
use local_stack::Runner;
use loyalty_aws::faults::FaultPlan;
use loyalty_aws::Aws;
use pipeline_tests::{processed_rows, Harness, TestTenant};
use serde_json::{json, Value};
use shared::job::{Job, JobStatus};
use shared::membership::apply::CardStore;
use shared::membership::cards::Card;
use shared::test_support::SAMPLE_MEMBERSHIPS;
use std::collections::BTreeSet;
use std::time::Duration;

/// 300 rows over 100 customers: a credit of 10, a credit of 5, then a debit
/// of 3 each; every 17th row's email is not one.
fn campaign() -> String {
    let mut file = String::from("email,amount,operation\n");
    for i in 0..300 {
        let email = if i % 17 == 0 {
            format!("not-an-email-{i}")
        } else {
            format!("c{}@review.test", i % 100)
        };
        let (amount, op) = [(10, "CR"), (5, "CR"), (3, "DR")][i / 100];
        file.push_str(&format!("{email},{amount},{op}\n"));
    }
    file
}

/// What the review of [`campaign`] must find, customers c0..c9 having
/// wallets before it.
fn expected_review() -> Value {
    let (mut credits, mut debits) = ((0, 0), (0, 0));
    let mut customers = BTreeSet::new();
    let mut invalid = 0;
    for i in 0..300 {
        if i % 17 == 0 {
            invalid += 1;
            continue;
        }
        customers.insert(i % 100);
        match i / 100 {
            0 => credits = (credits.0 + 1, credits.1 + 10),
            1 => credits = (credits.0 + 1, credits.1 + 5),
            _ => debits = (debits.0 + 1, debits.1 + 3),
        }
    }
    let new = customers.iter().filter(|c| **c >= 10).count();
    json!({
        "rows": 300, "valid": 300 - invalid, "invalid": invalid, "skipped": 0,
        "credits": {"rows": credits.0, "points": credits.1},
        "debits": {"rows": debits.0, "points": debits.1},
        "set_balance_rows": 0,
        "customers": customers.len(), "new_customers": new,
    })
}

/// The tenant, with wallets for c0..c9 (100 points each).
async fn tenant_with_ten_customers(h: &Harness) -> TestTenant {
    let tenant = h.tenant().await;
    let mut file = String::from("email,amount\n");
    for c in 0..10 {
        file.push_str(&format!("c{c}@review.test,100\n"));
    }
    h.api_import(&tenant, "points", "known.csv", file, false)
        .await;
    h.settle(&tenant).await;
    tenant
}

async fn review_import(h: &Harness, tenant: &TestTenant, content: &str) -> String {
    let request = json!({
        "kind": "points", "reason": "Winter campaign", "filename": "winter.csv",
        "size_bytes": content.len(), "review": true,
    });
    h.api_import_with(tenant, request, content).await
}

/// `POST /imports/{job_id}/<action>`: `start` or `discard`.
async fn answer(h: &Harness, tenant: &TestTenant, job_id: &str, action: &str) -> ApiResponse {
    h.api(
        tenant,
        Method::POST,
        &format!("/imports/{job_id}/{action}"),
        None,
    )
    .await
}

/// Starts a ready review: accepted, with the job as it now stands.
async fn start(h: &Harness, tenant: &TestTenant, job_id: &str) -> Value {
    let started = answer(h, tenant, job_id, "start").await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text());
    started.json().expect("json")
}

async fn stored_job(h: &Harness, tenant: &TestTenant, job_id: &str) -> Job {
    h.aws
        .tables
        .job(tenant.id(), job_id)
        .await
        .expect("job")
        .expect("the job")
}

async fn status(h: &Harness, tenant: &TestTenant, job_id: &str) -> Value {
    let got = h
        .api(tenant, Method::GET, &format!("/imports/{job_id}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    got.json().expect("json")
}

/// The review's counts, without its errors and dates.
fn counts(review: &Value) -> Value {
    let mut counts = review.clone();
    let fields = counts.as_object_mut().expect("an object");
    for field in ["errors", "ready_at", "expires_at"] {
        fields.remove(field);
    }
    counts
}

#[tokio::test]
async fn a_reviewed_import_changes_nothing_until_started_then_applies_the_same_upload() {
    let h = Harness::start().await;
    let tenant = tenant_with_ten_customers(&h).await;
    let job_id = review_import(&h, &tenant, &campaign()).await;
    h.settle(&tenant).await;

    let job = status(&h, &tenant, &job_id).await;
    assert_eq!(job["status"], "ready_for_review", "{job}");
    assert_eq!(counts(&job["review"]), expected_review());
    let errors = &job["review"]["errors"]["codes"];
    assert_eq!(errors[0]["code"], "invalid_email");
    assert_eq!(errors[0]["count"], 18);
    assert_eq!(errors[0]["examples"].as_array().map(Vec::len), Some(3));
    assert_eq!(errors[0]["examples"][0]["row"], 1, "the first row of data");
    assert!(job["review"]["expires_at"].is_string());
    assert_eq!(job["preview"].as_array().map(Vec::len), Some(50));
    // Nothing changed: the known customers keep their 100 points and no
    // wallet was made.
    assert_eq!(h.balance(&tenant, "email:c1@review.test").await, 100);
    assert_eq!(h.balance(&tenant, "email:c50@review.test").await, 0);
    assert!(h.emails_about(&job_id).await.is_empty());

    assert_eq!(start(&h, &tenant, &job_id).await["status"], "splitting");
    let again = answer(&h, &tenant, &job_id, "start").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json().expect("json")["error"]["code"], "not_ready");
    h.settle(&tenant).await;

    let job = stored_job(&h, &tenant, &job_id).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    let review = &expected_review();
    assert_eq!(job.applied, review["valid"].as_u64().unwrap());
    assert_eq!(job.failed, review["invalid"].as_u64().unwrap());
    let rows = processed_rows(&h.processed_file(&job).await);
    assert_eq!(rows.len(), 300);
    // c1: 100 before, then rows 1 (+10), 101 (+5), 201 (-3).
    assert_eq!(h.balance(&tenant, "email:c1@review.test").await, 112);
    // c17: its credit of 10 (row 17) was not an email.
    assert_eq!(h.balance(&tenant, "email:c17@review.test").await, 2);
    assert_eq!(h.emails_about(&job_id).await.len(), 1);
}

#[tokio::test]
async fn a_discarded_review_applies_nothing_and_its_file_can_be_imported_again() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let file = "email,amount\nd1@review.test,40\n";
    let job_id = review_import(&h, &tenant, file).await;
    h.settle(&tenant).await;
    let discarded = answer(&h, &tenant, &job_id, "discard").await;
    assert_eq!(discarded.status, StatusCode::OK, "{}", discarded.text());
    assert_eq!(discarded.json().expect("json")["status"], "discarded");
    let start = answer(&h, &tenant, &job_id, "start").await;
    assert_eq!(start.status, StatusCode::CONFLICT);
    assert!(start.text().contains("it is discarded"), "{}", start.text());
    h.settle(&tenant).await;
    assert_eq!(h.balance(&tenant, "email:d1@review.test").await, 0);

    // The same content is no duplicate of a review that applied nothing.
    let again = h
        .api_import(&tenant, "points", "again.csv", file, false)
        .await;
    h.settle(&tenant).await;
    let job = h
        .aws
        .tables
        .job(tenant.id(), &again)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.rejection);
    assert_eq!(h.balance(&tenant, "email:d1@review.test").await, 40);
}

#[tokio::test]
async fn a_review_never_started_expires_and_can_no_longer_start() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let job_id = review_import(&h, &tenant, "email,amount\ne1@review.test,7\n").await;
    h.settle(&tenant).await;
    // Its days have passed.
    h.aws
        .tables
        .client()
        .update_item()
        .table_name(&h.aws.settings.jobs_table)
        .key("tenant_id", AttributeValue::S(tenant.id().to_owned()))
        .key("sk", AttributeValue::S(format!("JOB#{job_id}")))
        .update_expression("SET review.expires_at = :past")
        .expression_attribute_values(":past", AttributeValue::S("2026-01-01T00:00:00Z".into()))
        .send()
        .await
        .expect("update");
    let start = answer(&h, &tenant, &job_id, "start").await;
    assert_eq!(start.status, StatusCode::CONFLICT);
    assert_eq!(
        start.json().expect("json")["error"]["code"],
        "review_expired"
    );

    let sweep = finalizer::watchdog::sweep(&h.aws).await.expect("sweep");
    assert!(
        sweep
            .expired_reviews
            .contains(&format!("{}/{job_id}", tenant.id())),
        "{sweep:?}"
    );
    let job = status(&h, &tenant, &job_id).await;
    assert_eq!(job["status"], "expired");
    assert!(job["finished_at"].is_string());
    let unfinished = h.aws.tables.unfinished_jobs().await.expect("unfinished");
    assert!(unfinished.iter().all(|j| j.job_id != job_id));
    assert_eq!(h.balance(&tenant, "email:e1@review.test").await, 0);
}

#[tokio::test]
async fn a_review_read_over_many_hurried_invocations_counts_each_row_and_customer_once() {
    let h = Harness::start().await;
    let tenant = tenant_with_ten_customers(&h).await;
    let mut settings = h.aws.settings.clone();
    settings.split_checkpoint_rows = 20;
    settings.rows_per_batch = 7;
    let faulty = Aws::with_faults(settings.clone(), FaultPlan::random(0x5eed, 0.05)).await;
    let runner = Runner::new(Aws::new(settings).await)
        .expect("runner")
        .with_chaos(Chaos::new(0x5eed, faulty, 0.3).with_hurry(0.5));
    let job_id = review_import(&h, &tenant, &campaign()).await;
    runner
        .run_until_idle(Some(tenant.id()), Duration::from_secs(240))
        .await
        .expect("the review is read");
    let hurried = runner.chaos().map_or(0, Chaos::hurried);
    assert!(hurried > 0, "no invocation was hurried");

    let job = status(&h, &tenant, &job_id).await;
    assert_eq!(job["status"], "ready_for_review", "{job}");
    assert_eq!(counts(&job["review"]), expected_review());
    assert_eq!(job["review"]["errors"]["codes"][0]["count"], 18);
}

// ---------- membership files ----------

const CARD_HEADER: &str =
    "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier";

/// A tenant of universe `demoshop` with the sample programs (Club: Bronze 1,
/// Silver 2, Gold 4), generating card codes, and the card K-1 of
/// kim@example.com (Club, Bronze), made by an earlier file.
async fn member_tenant_with_a_card(h: &Harness) -> TestTenant {
    let tenant = h.tenant().await;
    console::configure_memberships(&h.aws, tenant.id(), SAMPLE_MEMBERSHIPS)
        .await
        .expect("membership configuration");
    h.api_import(
        &tenant,
        "cardcode",
        "demoshop_cardcode_portal_20260109.csv",
        format!("{CARD_HEADER}\nK-1;kim@example.com;1;;;;\n"),
        false,
    )
    .await;
    h.settle(&tenant).await;
    assert!(card(h, &tenant, "K-1").await.is_some());
    tenant
}

async fn review_membership(
    h: &Harness,
    tenant: &TestTenant,
    kind: &str,
    filename: &str,
    content: &str,
) -> String {
    let request = json!({
        "kind": kind, "reason": "Winter cards", "filename": filename,
        "size_bytes": content.len(), "review": true,
    });
    h.api_import_with(tenant, request, content).await
}

async fn card(h: &Harness, tenant: &TestTenant, code: &str) -> Option<Card> {
    CardStore::card(&h.aws.tables, tenant.id(), code)
        .await
        .expect("card")
        .map(|stored| stored.card)
}

/// Six rows: K-1 updated, R-1 new, a date that is not one, a card whose
/// code is to be generated, R-1 again, and a tier that is not a number.
const CARDS_TO_REVIEW: &str =
    "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier
K-1;kim@example.com;;;;1990-05-01;
R-1;rae@example.com;1;;;;4
R-2;roy@example.com;1;2026-13-01;;;
;gen@example.com;1;;;;
R-1;rae@example.com;;;;1991-06-02;
R-3;ray@example.com;1;;;;x
";

#[tokio::test]
async fn a_reviewed_card_code_import_changes_no_card_until_started_then_applies() {
    let h = Harness::start().await;
    let tenant = member_tenant_with_a_card(&h).await;
    let name = "demoshop_cardcode_portal_20260110.csv";
    let job_id = review_membership(&h, &tenant, "cardcode", name, CARDS_TO_REVIEW).await;
    h.settle(&tenant).await;

    let job = status(&h, &tenant, &job_id).await;
    assert_eq!(job["status"], "ready_for_review", "{job}");
    assert_eq!(
        counts(&job["review"]),
        json!({
            "rows": 6, "valid": 4, "invalid": 2, "skipped": 0,
            "credits": {"rows": 0, "points": 0}, "debits": {"rows": 0, "points": 0},
            "set_balance_rows": 0,
            // K-1 and R-1, of which R-1 has no card yet.
            "customers": 2, "new_customers": 1,
            "codes_to_generate": 1,
        })
    );
    let codes: Vec<(&str, u64)> = job["review"]["errors"]["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| {
            (
                c["code"].as_str().unwrap_or(""),
                c["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(codes, [("invalid_date", 1), ("invalid_number", 1)]);
    assert!(job["review"]["expires_at"].is_string());
    // The preview: each row's first cells and its result.
    let preview = job["preview"].as_array().expect("preview");
    assert_eq!(preview.len(), 6);
    assert_eq!(preview[0]["cells"][0], "K-1");
    assert_eq!(preview[0]["result"], "valid");
    let refused = preview.iter().filter(|r| r["result"] != "valid").count();
    assert_eq!(refused, 2);
    // Nothing changed: no card made, K-1 as it was, no email.
    assert!(card(&h, &tenant, "R-1").await.is_none());
    assert_eq!(card(&h, &tenant, "K-1").await.unwrap().birthday, None);
    assert!(h.emails_about(&job_id).await.is_empty());

    // It takes its place among the tenant's membership files.
    assert_eq!(start(&h, &tenant, &job_id).await["status"], "waiting");
    h.settle(&tenant).await;

    let job = stored_job(&h, &tenant, &job_id).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "{job:?}");
    assert_eq!((job.applied, job.failed), (4, 2));
    let r1 = card(&h, &tenant, "R-1").await.expect("R-1 created");
    assert_eq!(r1.id_tier, 4);
    assert_eq!(
        r1.birthday.map(|d| d.to_string()).as_deref(),
        Some("1991-06-02")
    );
    let k1 = card(&h, &tenant, "K-1").await.unwrap();
    assert_eq!(
        k1.birthday.map(|d| d.to_string()).as_deref(),
        Some("1990-05-01")
    );
    let rows = processed_rows(&h.processed_file(&job).await);
    assert!(
        !rows[3].get("applied_card_code").is_empty(),
        "a code generated"
    );
    assert_eq!(h.emails_about(&job_id).await.len(), 1);
}

#[tokio::test]
async fn a_discarded_card_review_applies_nothing_and_holds_no_place_in_the_order() {
    let h = Harness::start().await;
    let tenant = member_tenant_with_a_card(&h).await;
    let name = "demoshop_cardcode_portal_20260110.csv";
    let file = format!("{CARD_HEADER}\nD-1;dee@example.com;1;;;;\n");
    let job_id = review_membership(&h, &tenant, "cardcode", name, &file).await;
    h.settle(&tenant).await;
    assert_eq!(
        status(&h, &tenant, &job_id).await["review"]["new_customers"],
        1
    );
    let discarded = answer(&h, &tenant, &job_id, "discard").await;
    assert_eq!(discarded.status, StatusCode::OK, "{}", discarded.text());
    assert_eq!(discarded.json().expect("json")["status"], "discarded");
    h.settle(&tenant).await;
    assert!(card(&h, &tenant, "D-1").await.is_none());

    // The same file, under the same name, is imported at once: the review
    // took no place in the tenant's order and its content claim is free.
    let again = h.api_import(&tenant, "cardcode", name, &file, false).await;
    h.settle(&tenant).await;
    let job = status(&h, &tenant, &again).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert!(card(&h, &tenant, "D-1").await.is_some());
}

#[tokio::test]
async fn a_reviewed_tier_change_counts_rows_by_tier_and_cards_not_found_then_waits_its_turn() {
    let h = Harness::start().await;
    let tenant = member_tenant_with_a_card(&h).await;
    let file = "card_code;tier_name;value_date
K-1;Gold;2026-01-10
Z-9;gold;2026-01-10
K-1;Silver;2026-01-11
K-1;;2026-01-11
";
    let name = "demoshop_tierchange_portal_20260110.csv";
    let job_id = review_membership(&h, &tenant, "tierchange", name, file).await;
    h.settle(&tenant).await;
    let job = status(&h, &tenant, &job_id).await;
    assert_eq!(job["status"], "ready_for_review", "{job}");
    let review = &job["review"];
    assert_eq!(
        (&review["valid"], &review["skipped"]),
        (&json!(3), &json!(1))
    );
    assert_eq!(
        review["tiers"],
        json!([{"tier_name": "Gold", "rows": 2}, {"tier_name": "Silver", "rows": 1}])
    );
    // K-1 and Z-9, of which Z-9 is no card (yet).
    assert_eq!(
        (&review["customers"], &review["new_customers"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(review["errors"]["codes"][0]["code"], "missing_tier_name");
    assert_eq!(card(&h, &tenant, "K-1").await.unwrap().id_tier, 1);

    assert_eq!(start(&h, &tenant, &job_id).await["status"], "waiting");
    // A tier change file waits for its day's card code file a while, from
    // when it is started: a runner that lets it wait a second.
    let mut settings = h.aws.settings.clone();
    settings.membership_wait_seconds = 1;
    Runner::new(Aws::new(settings).await)
        .expect("runner")
        .run_until_idle(Some(tenant.id()), Duration::from_secs(90))
        .await
        .expect("the pipeline settles");
    let job = status(&h, &tenant, &job_id).await;
    assert_eq!(job["status"], "completed_with_errors", "{job}");
    let k1 = card(&h, &tenant, "K-1").await.unwrap();
    assert_eq!((k1.id_tier, k1.tier_history.len()), (2, 2));
}
