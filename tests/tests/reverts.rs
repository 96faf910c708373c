//! Imports undone (`POST /imports/{job}/revert`), end to end against the
//! local emulator: each applied row's opposite applied once, from the lot
//! it went to; what was spent since reported per row, never forced; a job
//! reverted at most once; and a reversal in small batches, redelivered
//! under faults, undoing each row once (a credit spent by a debit of a later
//! batch taken back once that debit is given back).

use lambda_http::http::{Method, StatusCode};
use local_stack::runner::Chaos;
use local_stack::Runner;
use loyalty_aws::faults::FaultPlan;
use loyalty_aws::Aws;
use pipeline_tests::{processed_rows, Harness, TestTenant};
use serde_json::Value;
use shared::job::{Job, JobStatus};
use shared::reversal::reversal_id;
use std::time::Duration;

async fn revert(h: &Harness, tenant: &TestTenant, job_id: &str) -> (StatusCode, Value) {
    let reply = h
        .api(
            tenant,
            Method::POST,
            &format!("/imports/{job_id}/revert"),
            None,
        )
        .await;
    (reply.status, reply.json().expect("json"))
}

/// Reverts `original` and runs the pipeline on `runner` until the reversal
/// completes with every row undone.
async fn revert_completely(
    h: &Harness,
    tenant: &TestTenant,
    original: &str,
    runner: &Runner,
) -> Job {
    let (status, body) = revert(h, tenant, original).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    runner
        .run_until_idle(Some(tenant.id()), Duration::from_secs(240))
        .await
        .expect("the reversal settles");
    let reversal = h.job(tenant, &reversal_id(original)).await;
    assert_eq!(
        reversal.status,
        JobStatus::Completed,
        "{:?}",
        reversal.errors
    );
    reversal
}

/// An import crediting `who` 12 points, and a revert request that made the
/// reversal and marked the original, then failed before handing the upload
/// to the splitter: the original's id and the reversal.
async fn revert_request_lost(h: &Harness, tenant: &TestTenant, who: &str) -> (String, Job) {
    let file = format!("email,amount\n{who},12\n");
    let original = h
        .api_import(tenant, "points", "once.csv", &file, false)
        .await;
    h.settle(tenant).await;
    let done = h.job(tenant, &original).await;
    let reversal = shared::reversal::reversal_job(&done, chrono::Utc::now());
    let made = h
        .aws
        .tables
        .revert_job(&done, &reversal)
        .await
        .expect("revert");
    assert_eq!(made, loyalty_aws::tables::Reverting::Created);
    (original, reversal)
}

/// Credits with expiry to a, b and c, a debit of a's, an invalid row and a
/// debit d cannot afford.
const CAMPAIGN: &str = "email,amount,operation,expire_in_days\n\
                        a@rev.test,100,CR,30\n\
                        b@rev.test,50,CR,60\n\
                        a@rev.test,20,DR,\n\
                        c@rev.test,40,CR,90\n\
                        not-an-email,5,CR,10\n\
                        d@rev.test,10,DR,\n";

#[tokio::test]
async fn a_reverted_import_gives_every_wallet_back_but_what_was_spent_since() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    // e's points without expiry, credited before: the reversal leaves them.
    h.api_import(
        &tenant,
        "points",
        "before.csv",
        "email,amount\ne@rev.test,7\n",
        false,
    )
    .await;
    let original = h
        .api_import(
            &tenant,
            "points_with_expiry",
            "campaign.csv",
            CAMPAIGN,
            false,
        )
        .await;
    h.settle(&tenant).await;
    assert_eq!(h.balance(&tenant, "email:a@rev.test").await, 80);
    // b spends 45 of its 50 points.
    h.api_import(
        &tenant,
        "points",
        "spend.csv",
        "email,amount,operation\nb@rev.test,45,DR\n",
        false,
    )
    .await;
    h.settle(&tenant).await;

    let (status, body) = revert(&h, &tenant, &original).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let reversal_job = reversal_id(&original);
    assert_eq!(body["job_id"], reversal_job.as_str());
    assert_eq!(body["status"], "splitting");
    assert_eq!(body["reverts"], original.as_str());
    h.settle(&tenant).await;

    assert_eq!(h.balance(&tenant, "email:a@rev.test").await, 0);
    assert_eq!(h.balance(&tenant, "email:b@rev.test").await, 5);
    assert_eq!(h.balance(&tenant, "email:c@rev.test").await, 0);
    assert_eq!(h.balance(&tenant, "email:d@rev.test").await, 0);
    // Each applied row undone once: a's two rows, c's one.
    assert_eq!(h.ledger_len(&tenant, "email:a@rev.test").await, 4);
    assert_eq!(h.ledger_len(&tenant, "email:b@rev.test").await, 2);
    assert_eq!(h.ledger_len(&tenant, "email:c@rev.test").await, 2);

    let reversal = h.job(&tenant, &reversal_job).await;
    assert_eq!(reversal.status, JobStatus::CompletedWithErrors);
    assert_eq!(reversal.reverts.as_deref(), Some(original.as_str()));
    assert!(reversal.reason.starts_with(&format!(
        "Reversal of import {original} (campaign.csv): test campaign"
    )));
    assert_eq!(
        (reversal.applied, reversal.failed, reversal.skipped),
        (3, 2, 1)
    );
    let rows = processed_rows(&h.processed_file(&reversal).await);
    let outcomes: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.get("status"), r.get("error_code")))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("applied", ""),
            ("failed", "cannot_reverse"),
            ("applied", ""),
            ("applied", ""),
            ("failed", "invalid_email"),
            ("skipped", "not_applied"),
        ]
    );
    let spent = rows[1].get("error_message");
    assert!(spent.contains("only 5 are left"), "{spent}");
    assert_eq!(rows[1].get("balance_after"), "5");
    let emails = h.emails_about(&reversal_job).await;
    assert_eq!(emails.len(), 1);
    assert!(
        emails[0]
            .body
            .contains(&format!("Reversal of import {original}")),
        "{}",
        emails[0].body
    );

    let shown = h
        .api(&tenant, Method::GET, &format!("/imports/{original}"), None)
        .await
        .json()
        .expect("json");
    assert_eq!(shown["reverted_by"], reversal_job.as_str());
    let (status, again) = revert(&h, &tenant, &original).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(again["error"]["code"], "already_reverted");
    assert!(again["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains(&reversal_job)));
    let (status, of_reversal) = revert(&h, &tenant, &reversal_job).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(of_reversal["error"]["code"], "not_revertible");
    assert_eq!(h.balance(&tenant, "email:e@rev.test").await, 7);
}

#[tokio::test]
async fn a_rejected_running_or_dry_run_import_is_not_revertible() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let rejected = h
        .api_import(&tenant, "points", "bad.csv", "nothing,here\n1,2\n", false)
        .await;
    let dry = h
        .api_import(
            &tenant,
            "points",
            "dry.csv",
            "email,amount\nf@rev.test,3\n",
            true,
        )
        .await;
    h.settle(&tenant).await;
    assert_eq!(h.job(&tenant, &rejected).await.status, JobStatus::Rejected);
    let running = h.create_import(&tenant, "later.csv", 10).await;
    let running = running["job_id"].as_str().expect("job id");
    for (job_id, why) in [
        (rejected.as_str(), "it is rejected"),
        (dry.as_str(), "dry run"),
        (running, "it is awaiting_upload"),
    ] {
        let (status, body) = revert(&h, &tenant, job_id).await;
        assert_eq!(status, StatusCode::CONFLICT, "{job_id}: {body}");
        assert_eq!(body["error"]["code"], "not_revertible");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{message}");
        assert!(h.job(&tenant, job_id).await.reverted_by.is_none());
    }
    let (status, _) = revert(&h, &tenant, "20260101000000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_reversal_in_small_batches_delivered_again_and_again_under_faults_undoes_each_row_once() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    // 40 customers: a credit of 10 without expiry, then a debit of 3.
    let mut file = String::from("email,amount,operation\n");
    for op in [("10", "CR"), ("3", "DR")] {
        for c in 0..40 {
            file.push_str(&format!("c{c}@chaos.test,{},{}\n", op.0, op.1));
        }
    }
    let original = h
        .api_import(&tenant, "points", "chaos.csv", &file, false)
        .await;
    h.settle(&tenant).await;
    assert_eq!(h.balance(&tenant, "email:c7@chaos.test").await, 7);

    // Each customer's credit and debit are in different batches of the
    // reversal: the debit, of a later batch, is given back ahead of the
    // credit it spent.
    let mut settings = h.aws.settings.clone();
    settings.rows_per_batch = 4;
    let faulty = Aws::with_faults(settings.clone(), FaultPlan::random(0x2e7e, 0.05)).await;
    let runner = Runner::new(Aws::new(settings).await)
        .expect("runner")
        .with_chaos(Chaos::new(0x2e7e, faulty, 0.3));
    let reversal = revert_completely(&h, &tenant, &original, &runner).await;
    assert_eq!(reversal.applied, 80);
    for c in 0..40 {
        let customer = format!("email:c{c}@chaos.test");
        assert_eq!(h.balance(&tenant, &customer).await, 0, "{customer}");
        assert_eq!(h.ledger_len(&tenant, &customer).await, 4, "{customer}");
    }
    assert_eq!(h.emails_about(&reversal.job_id).await.len(), 1);
}

#[tokio::test]
async fn a_credit_spent_by_more_later_debits_than_one_transaction_holds_is_taken_back() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    // One customer: 1,000 points, then 150 debits of one point.
    let mut file = String::from("email,amount,operation\nbig@rev.test,1000,CR\n");
    for _ in 0..150 {
        file.push_str("big@rev.test,1,DR\n");
    }
    let original = h
        .api_import(&tenant, "points", "many.csv", &file, false)
        .await;
    h.settle(&tenant).await;
    assert_eq!(h.balance(&tenant, "email:big@rev.test").await, 850);

    // The reversal's first batch holds the credit and 49 debits; the 101
    // debits of later batches are given back ahead of the credit, 98 in a
    // transaction of DynamoDB's 100 items, then the rest with the credit.
    let mut settings = h.aws.settings.clone();
    settings.rows_per_batch = 50;
    let runner = Runner::new(Aws::new(settings).await).expect("runner");
    let reversal = revert_completely(&h, &tenant, &original, &runner).await;
    assert_eq!(reversal.applied, 151);
    assert_eq!(h.balance(&tenant, "email:big@rev.test").await, 0);
    assert_eq!(h.ledger_len(&tenant, "email:big@rev.test").await, 302);
    let rows = processed_rows(&h.processed_file(&reversal).await);
    assert_eq!(rows[0].get("balance_after"), "0");
    assert!(rows.iter().all(|r| r.get("status") == "applied"));
}

#[tokio::test]
async fn a_revert_whose_request_failed_before_the_split_was_asked_is_taken_up_by_the_next() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let (original, reversal) = revert_request_lost(&h, &tenant, "g@rev.test").await;
    // Nothing moves it: no event names it.
    let stuck = h
        .runner
        .run_until_idle(Some(tenant.id()), Duration::from_secs(5))
        .await;
    assert!(stuck.is_err());
    assert_eq!(
        h.job(&tenant, &reversal.job_id).await.status,
        JobStatus::Splitting
    );

    let (status, body) = revert(&h, &tenant, &original).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_reverted");
    h.settle(&tenant).await;
    let reversal = h.job(&tenant, &reversal.job_id).await;
    assert_eq!(reversal.status, JobStatus::Completed);
    assert_eq!(h.balance(&tenant, "email:g@rev.test").await, 0);
    assert_eq!(h.ledger_len(&tenant, "email:g@rev.test").await, 2);
}

#[tokio::test]
async fn a_reversal_whose_split_was_never_asked_for_is_asked_again_by_the_watchdog() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    // Nobody asks again.
    let (_, reversal) = revert_request_lost(&h, &tenant, "w@rev.test").await;

    let mut impatient = h.aws.settings.clone();
    impatient.stall_seconds = 1;
    let watchdog = Aws::new(impatient).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sweep = finalizer::watchdog::sweep(&watchdog).await.expect("sweep");
    let name = format!("{}/{}", tenant.id(), reversal.job_id);
    assert!(sweep.splits_asked_again.contains(&name), "{sweep:?}");
    // Its stall period starts over: asked again once per period, not at
    // every sweep.
    let asked = h.job(&tenant, &reversal.job_id).await;
    assert!(asked.progress_at > Some(reversal.created_at), "{asked:?}");

    h.settle(&tenant).await;
    let reversal = h.job(&tenant, &reversal.job_id).await;
    assert_eq!(reversal.status, JobStatus::Completed);
    assert_eq!(h.balance(&tenant, "email:w@rev.test").await, 0);
    assert_eq!(h.ledger_len(&tenant, "email:w@rev.test").await, 2);
}
