//! Each function's role in `infra/template.yaml` allows every call the
//! function makes, and no function needs another's grants: the functions
//! run every kind of import on the emulator, each through clients that
//! record the IAM action and resource of every request they sign
//! (presigned URLs included, `loyalty_aws::access`), and
//! `infra/local/check_access.py` checks each access against the function's
//! own role, resolved against the provisioned stack.

use lambda_http::http::{Method, StatusCode};
use local_stack::console;
use local_stack::runner::{Function, Runner};
use loyalty_aws::faults::FaultPlan;
use loyalty_aws::objects::Presigned;
use loyalty_aws::Aws;
use pipeline_tests::Harness;
use serde_json::json;
use shared::test_support::SAMPLE_MEMBERSHIPS;
use std::collections::BTreeMap;
use std::time::Duration;

const CARDS: &str =
    include_str!("../../infra/local/sample/demoshop_cardcode_customers_20260110.csv");
const TIERS: &str =
    include_str!("../../infra/local/sample/demoshop_tierchange_customers_20260110.csv");

struct Recorded {
    plan: FaultPlan,
    aws: Aws,
}

async fn recorded(h: &Harness) -> Recorded {
    let plan = FaultPlan::counting();
    let aws = Aws::with_faults(h.aws.settings.clone(), plan.clone()).await;
    Recorded { plan, aws }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_functions_role_allows_every_call_it_makes() {
    let h = Harness::start().await;
    let (splitter, processor, finalizer, api) = (
        recorded(&h).await,
        recorded(&h).await,
        recorded(&h).await,
        recorded(&h).await,
    );
    let runner = Runner::new(h.aws.clone())
        .expect("runner")
        .with_clients_for(Function::Splitter, splitter.aws.clone())
        .with_clients_for(Function::Processor, processor.aws.clone())
        .with_clients_for(Function::DeadBatches, processor.aws.clone())
        .with_clients_for(Function::Finalizer, finalizer.aws.clone());
    let t = h.tenant().await;
    console::configure_memberships(&h.aws, t.id(), SAMPLE_MEMBERSHIPS)
        .await
        .expect("membership configuration");

    // Through the API: an import, and a dry run, each with an
    // Idempotency-Key and retried (its record claimed, answered, read).
    let authorization = format!("Bearer {}", t.api_key);
    for (filename, dry_run) in [("api.csv", false), ("dry.csv", true)] {
        let content = format!("email,amount\napi-{filename}@example.com,10\n");
        let body = json!({"kind": "points", "reason": "r", "filename": filename,
                          "size_bytes": content.len(), "dry_run": dry_run});
        let headers = [
            ("authorization", authorization.as_str()),
            ("idempotency-key", filename),
        ];
        let mut created = None;
        for _ in 0..2 {
            let response = console::api_request(
                &api.aws,
                Method::POST,
                "/imports",
                &headers,
                Some(body.to_string()),
            )
            .await
            .unwrap();
            assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
            created = Some(response);
        }
        let created = created.unwrap();
        let upload: Presigned =
            serde_json::from_value(created.json().unwrap()["upload"].clone()).unwrap();
        console::upload(&upload, content.into_bytes())
            .await
            .unwrap();
    }
    // Console drops: points with expiry, a debit, a rejected header, the
    // same content again, a Smile.io export, a card code file and its tier
    // changes.
    let drops: [(&str, &str); 7] = [
        ("expiry.csv", "email,amount,operation,expire_in_days\nx@example.com,50,CR,30\nx@example.com,20,DR,\nnot-an-email,5,CR,30\n"),
        ("rejected.csv", "email,amount,colour\nx@example.com,1,red\n"),
        ("again.csv", "email,amount\napi-api.csv@example.com,10\n"),
        ("again-2.csv", "email,amount\napi-api.csv@example.com,10\n"),
        ("smile.csv", "email,points\nann@example.com,5\n"),
        ("memberships/demoshop_cardcode_customers_20260110.csv", CARDS),
        ("memberships/demoshop_tierchange_customers_20260110.csv", TIERS),
    ];
    for (path, content) in drops {
        h.drop_file(&t, path, content, None).await;
    }
    runner
        .run_until_idle(Some(t.id()), Duration::from_secs(90))
        .await
        .expect("the pipeline settles");
    // The finished jobs through the API (a presigned download each), and the
    // finalizer's watchdog.
    let jobs = h.jobs(&t).await;
    assert_eq!(jobs.len(), 9);
    for job in &jobs {
        let status = console::api(
            &api.aws,
            Method::GET,
            &format!("/imports/{}", job.job_id),
            Some(&t.api_key),
            None,
        )
        .await
        .unwrap();
        assert_eq!(status.status, StatusCode::OK);
    }
    let history = console::api(&api.aws, Method::GET, "/imports", Some(&t.api_key), None)
        .await
        .unwrap();
    assert_eq!(history.status, StatusCode::OK, "{}", history.text());
    finalizer::watchdog::sweep(&finalizer.aws).await.unwrap();

    // Reviewed first: two points files, one started, one discarded; a card
    // code file started (its review reads whether each card exists).
    let card = "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier\n\
                \"REVIEW-1\";\"rev@example.com\";\"1\";;;;\"2\"\n";
    let reviews = [
        (
            "points",
            "started.csv",
            "email,amount\nreview-started@example.com,3\n",
            "start",
        ),
        (
            "points",
            "discarded.csv",
            "email,amount\nreview-discarded@example.com,3\n",
            "discard",
        ),
        (
            "cardcode",
            "demoshop_cardcode_customers_20260111.csv",
            card,
            "start",
        ),
    ];
    for (kind, filename, content, answer) in reviews {
        let body = json!({"kind": kind, "reason": "r", "filename": filename,
                          "size_bytes": content.len(), "review": true});
        let created = console::api(
            &api.aws,
            Method::POST,
            "/imports",
            Some(&t.api_key),
            Some(body),
        )
        .await
        .unwrap();
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let created = created.json().unwrap();
        let upload: Presigned = serde_json::from_value(created["upload"].clone()).unwrap();
        console::upload(&upload, content.as_bytes().to_vec())
            .await
            .unwrap();
        runner
            .run_until_idle(Some(t.id()), Duration::from_secs(90))
            .await
            .expect("the review is read");
        let path = format!("/imports/{}/{answer}", created["job_id"].as_str().unwrap());
        let answered = console::api(&api.aws, Method::POST, &path, Some(&t.api_key), None)
            .await
            .unwrap();
        assert!(answered.status.is_success(), "{}", answered.text());
    }
    // Reverted, after x spent some of the points: its credit cannot be taken
    // back in full, so the processor looks for later debits of x's.
    h.drop_file(
        &t,
        "spend.csv",
        "email,amount,operation\nx@example.com,25,DR\n",
        None,
    )
    .await;
    runner
        .run_until_idle(Some(t.id()), Duration::from_secs(90))
        .await
        .expect("the pipeline settles");
    let expiry = h
        .jobs(&t)
        .await
        .into_iter()
        .find(|j| j.filename == "expiry.csv");
    let path = format!(
        "/imports/{}/revert",
        expiry.expect("the expiry import").job_id
    );
    let reverted = console::api(&api.aws, Method::POST, &path, Some(&t.api_key), None)
        .await
        .unwrap();
    assert_eq!(reverted.status, StatusCode::ACCEPTED, "{}", reverted.text());
    runner
        .run_until_idle(Some(t.id()), Duration::from_secs(90))
        .await
        .expect("the reversal settles");

    // A batch whose writes always fail: set aside from its dead-letter queue.
    let failing_plan = FaultPlan::fail_always("DynamoDB:TransactWriteItems");
    let failing = Recorded {
        aws: Aws::with_faults(h.aws.settings.clone(), failing_plan.clone()).await,
        plan: failing_plan,
    };
    h.drop_file(&t, "fails.csv", "email,amount\nfail@example.com,3\n", None)
        .await;
    Runner::new(h.aws.clone())
        .expect("runner")
        .with_clients_for(Function::Splitter, splitter.aws.clone())
        .with_clients_for(Function::Processor, failing.aws.clone())
        .with_clients_for(Function::DeadBatches, processor.aws.clone())
        .with_clients_for(Function::Finalizer, finalizer.aws.clone())
        .run_until_idle(Some(t.id()), Duration::from_secs(90))
        .await
        .expect("the pipeline settles");

    // A job whose batch was lost: closed by the watchdog.
    h.drop_file(&t, "lost.csv", "email,amount\nlost@example.com,4\n", None)
        .await;
    runner.pump_function(Function::Splitter).await.unwrap();
    pipeline_tests::lose_batches(&runner).await;
    let mut impatient = finalizer.aws.settings.clone();
    impatient.stall_seconds = 1;
    let watchdog = Recorded {
        aws: Aws::with_faults(impatient, finalizer.plan.clone()).await,
        plan: finalizer.plan.clone(),
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    finalizer::watchdog::sweep(&watchdog.aws).await.unwrap();
    runner
        .run_until_idle(Some(t.id()), Duration::from_secs(90))
        .await
        .expect("the pipeline settles");
    let jobs = h.jobs(&t).await;
    assert_eq!(jobs.len(), 16);
    let discarded = |j: &&shared::job::Job| j.status == shared::job::JobStatus::Discarded;
    assert_eq!(jobs.iter().filter(discarded).count(), 1);
    assert!(
        jobs.iter()
            .filter(|j| !discarded(j))
            .all(|j| j.email_sent_at.is_some()),
        "{jobs:#?}"
    );

    let mut accesses: BTreeMap<&str, Vec<String>> = [
        ("SplitterFunction", &splitter),
        ("ProcessorFunction", &processor),
        ("FinalizerFunction", &finalizer),
        ("ApiFunction", &api),
    ]
    .into_iter()
    .map(|(function, r)| (function, r.plan.accesses().into_iter().collect()))
    .collect();
    accesses
        .get_mut("ProcessorFunction")
        .unwrap()
        .extend(failing.plan.accesses());
    println!("{}", pipeline_tests::check_roles(t.id(), &accesses));
}
