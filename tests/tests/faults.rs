//! Exactly once under faults: each function is made to fail at every AWS
//! call it makes, once before the call reaches AWS and once after it took
//! effect, and the queue's retry must still apply every row once, produce one
//! processed file and send one email. Then the faults that do not go away:
//! a throttled table, a batch that always fails, a message that is lost.
//!
//! Its length: one test binary per capability (each binary is linked on its
//! own); its tests share the helpers at its top.

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::runner::sqs_event;
use local_stack::runner::Function;
use local_stack::Runner;
use loyalty_aws::faults::FaultPlan;
use pipeline_tests::{outcomes, Harness, TestTenant};
use shared::batch::Batch;
use shared::job::JobStatus;
use std::time::Duration;

/// Two customers over several batches, a refused debit and an invalid row.
const FILE: &str = "email,amount,operation\n\
                    ann@x.test,50,CR\n\
                    bob@x.test,20,CR\n\
                    ann@x.test,30,DR\n\
                    bob@x.test,40,DR\n\
                    cat@x.test,10.5,CR\n\
                    ann@x.test,5,CR\n\
                    dan@x.test,7,\n";

fn expected_outcomes() -> Vec<(String, String, String)> {
    [
        ("applied", "", "50"),
        ("applied", "", "20"),
        ("applied", "", "20"),
        ("failed", "insufficient_balance", "20"),
        ("failed", "invalid_amount", ""),
        ("applied", "", "25"),
        ("applied", "", "7"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect()
}

/// Every promise of the pipeline, checked against the tables, the bucket
/// and the emails. Returns a description of what is wrong, if anything.
async fn violations(h: &Harness, t: &TestTenant) -> Vec<String> {
    violations_with(h, t, &[], None).await
}

/// As `violations`, where the rows `lost` were never applied and are
/// reported with `lost_code`.
async fn violations_with(
    h: &Harness,
    t: &TestTenant,
    lost: &[u64],
    lost_code: Option<&str>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let jobs = h.jobs(t).await;
    if jobs.len() != 1 {
        return vec![format!("{} jobs instead of one", jobs.len())];
    }
    let job = &jobs[0];
    if job.status != JobStatus::CompletedWithErrors {
        wrong.push(format!("job ended {}", job.status.as_str()));
    }
    let mut expected = expected_outcomes();
    for &row in lost {
        expected[row as usize - 1] = (
            "failed".into(),
            lost_code.unwrap_or_default().into(),
            "".into(),
        );
    }
    let applied = expected
        .iter()
        .filter(|(status, _, _)| status == "applied")
        .count() as u64;
    if (job.applied, job.failed) != (applied, 7 - applied) {
        wrong.push(format!(
            "job counts applied {} failed {}",
            job.applied, job.failed
        ));
    }
    let keys = h.processed_keys(t).await;
    if keys.len() != 1 {
        wrong.push(format!("processed files: {keys:?}"));
    } else if outcomes(&h.processed_file(job).await) != expected {
        wrong.push(format!(
            "processed file: {:?}",
            outcomes(&h.processed_file(job).await)
        ));
    }
    let emails = h.emails_about(&job.job_id).await;
    if emails.len() != 1 || emails[0].destinations.to != [t.tenant.admin_email.clone()] {
        wrong.push(format!("{} emails", emails.len()));
    }
    // Customers keep to one batch, so a lost row takes its customer's others along.
    let rows_of = |who: &str| -> Vec<u64> {
        FILE.lines()
            .skip(1)
            .enumerate()
            .filter(|(_, l)| l.starts_with(who))
            .map(|(i, _)| i as u64 + 1)
            .collect()
    };
    for (customer, balance, entries) in
        [("ann", 25, 3), ("bob", 20, 1), ("cat", 0, 0), ("dan", 7, 1)]
    {
        let (balance, entries) = if rows_of(customer).iter().any(|r| lost.contains(r)) {
            (0, 0)
        } else {
            (balance, entries)
        };
        let id = format!("email:{customer}@x.test");
        let (b, e) = (h.balance(t, &id).await, h.ledger_len(t, &id).await);
        if (b, e) != (balance, entries) {
            wrong.push(format!(
                "{customer}: balance {b} with {e} entries, expected {balance} with {entries}"
            ));
        }
    }
    wrong
}

/// Imports FILE with `function` running on clients that carry `plan`.
async fn import_with(h: &Harness, function: Function, plan: FaultPlan) -> TestTenant {
    let t = h.tenant().await;
    // Two shards: the file's three customers still make several batches,
    // and the finalizer reads two shards' pages, not eight identical queries.
    let mut faulty = h.faulty_clients(plan).await;
    faulty.settings.shards = 2;
    let mut settings = h.aws.settings.clone();
    settings.shards = 2;
    let runner = Runner::new(loyalty_aws::Aws::new(settings).await)
        .expect("runner")
        .with_clients_for(function, faulty);
    h.drop_file(&t, "faults.csv", FILE, None).await;
    runner
        .run_until_idle(Some(t.id()), Duration::from_secs(60))
        .await
        .expect("the pipeline settles");
    t
}

/// Fails each call of `function` in turn, in both timings; returns the
/// number of crash scenarios run.
async fn crash_at_every_call(function: Function) -> usize {
    let h = &Harness::start().await;
    pipeline_tests::crash_at_every_call(
        function,
        |plan| import_with(h, function, plan),
        |t| async move { violations(h, &t).await },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_splitter_crash_at_any_call_is_recovered_by_the_retry() {
    assert!(crash_at_every_call(Function::Splitter).await > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_processor_crash_at_any_call_is_recovered_by_the_retry() {
    assert!(crash_at_every_call(Function::Processor).await > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finalizer_crash_at_any_call_is_recovered_by_the_retry() {
    assert!(crash_at_every_call(Function::Finalizer).await > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finalizer_asked_twice_sends_one_email() {
    let h = Harness::start().await;
    let t = import_with(&h, Function::Finalizer, FaultPlan::counting()).await;
    let job = h.only_job(&t).await;
    let request = loyalty_aws::queues::FinalizeRequest {
        tenant_id: job.tenant_id.clone(),
        job_id: job.job_id.clone(),
    };
    let (a, b) = tokio::join!(
        finalizer::handler::finalize(&h.aws, &request),
        finalizer::handler::finalize(&h.aws, &request)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(violations(&h, &t).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_credit_file_and_a_debit_file_racing_on_the_same_wallets_apply_each_row_once() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let customers = 12;
    let mut credits = String::from("customer_id,amount,operation\n");
    let mut debits = String::from("customer_id,amount,operation\n");
    for round in 0..5 {
        for c in 0..customers {
            credits.push_str(&format!("C{c},{},CR\n", 10 + round));
            debits.push_str(&format!("C{c},{},DR\n", 7 + round));
        }
    }
    h.drop_file(&t, "credits.csv", &credits, None).await;
    h.drop_file(&t, "debits.csv", &debits, None).await;
    // Two runners deliver at once, as two concurrent Lambda pollers would.
    let second = Runner::new(h.aws.clone()).unwrap();
    let (a, b) = tokio::join!(
        h.runner
            .run_until_idle(Some(t.id()), Duration::from_secs(90)),
        second.run_until_idle(Some(t.id()), Duration::from_secs(90))
    );
    a.unwrap();
    b.unwrap();
    let jobs = h.jobs(&t).await;
    assert_eq!(jobs.len(), 2);
    let mut expected_total = 0i64;
    for job in &jobs {
        assert!(job.status.is_final());
        let processed = h.processed_file(job).await;
        let rows = pipeline_tests::processed_rows(&processed);
        assert_eq!(rows.len(), 5 * customers);
        for row in &rows {
            let amount: i64 = row.get("amount").parse().unwrap();
            match (row.get("status"), row.get("operation")) {
                ("applied", "CR") => expected_total += amount,
                ("applied", "DR") => expected_total -= amount,
                ("failed", "DR") => assert_eq!(row.get("error_code"), "insufficient_balance"),
                other => panic!(
                    "unexpected outcome {other:?}: {} {}",
                    row.get("error_code"),
                    row.get("error_message")
                ),
            }
        }
        assert_eq!(h.emails_about(&job.job_id).await.len(), 1);
    }
    let mut total = 0;
    let mut entries = 0;
    for c in 0..customers {
        let id = format!("customer_id:C{c}");
        let balance = h.balance(&t, &id).await;
        assert!(balance >= 0);
        total += balance;
        entries += h.ledger_len(&t, &id).await as u64;
    }
    assert_eq!(
        total, expected_total,
        "balances equal the applied rows' effect"
    );
    assert_eq!(
        entries,
        jobs.iter().map(|j| j.applied).sum::<u64>(),
        "one ledger entry per applied row"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_table_is_retried_with_backoff_and_no_row_fails() {
    let h = Harness::start().await;
    let counting = FaultPlan::counting();
    let t = import_with(&h, Function::Processor, counting.clone()).await;
    assert_eq!(
        violations(&h, &t).await,
        Vec::<String>::new(),
        "without faults"
    );
    let calls = counting.calls();
    let first_write = calls
        .iter()
        .position(|c| c == "DynamoDB:TransactWriteItems")
        .unwrap_or_else(|| panic!("the processor writes: {calls:?}"))
        + 1;
    // Throttled three times in a row: the SDK's fourth attempt goes through.
    let plan = FaultPlan::throttle_call(first_write, 3);
    let t = import_with(&h, Function::Processor, plan.clone()).await;
    assert_eq!(plan.fired().len(), 1, "{:?}", plan.fired());
    assert_eq!(violations(&h, &t).await, Vec::<String>::new());
    // Retried inside the call, not by handing the batch back to the queue.
    assert_eq!(plan.calls(), calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_that_always_fails_goes_to_the_dead_letter_queue_and_its_rows_are_reported() {
    let h = Harness::start().await;
    let plan = FaultPlan::fail_always("DynamoDB:TransactWriteItems");
    let t = import_with(&h, Function::Processor, plan.clone()).await;
    let valid_rows = [1, 2, 3, 4, 6, 7];
    assert_eq!(
        violations_with(&h, &t, &valid_rows, Some("processing_failed")).await,
        Vec::<String>::new()
    );
    // Each batch was tried as often as the queue's redrive policy allows.
    let tries = plan.fired().len();
    assert!(tries >= 5, "{tries} tries");
    let job = h.only_job(&t).await;
    let processed = h.processed_file(&job).await;
    assert!(processed.contains("set aside"), "{processed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_batch_that_always_fails_takes_no_other_batch_of_its_group_with_it() {
    // 30 batches of 4 rows in one message group (one shard): ten customers,
    // each row a credit of one point, so a customer's k-th applied row
    // leaves a balance of k exactly when the rows were applied in file order.
    let h = Harness::start().await;
    let t = h.tenant().await;
    let mut file = String::from("email,amount\n");
    for row in 0..120 {
        file.push_str(&format!("c{}@x.test,1\n", row % 10));
    }
    // Every commit of batch 1 fails: its pages' transactions carry the
    // condition on its marker, `JOB#<job>#BATCH#1`.
    let plan = FaultPlan::fail_always_containing("DynamoDB:TransactWriteItems", "#BATCH#1\"");
    let mut faulty = h.faulty_clients(plan.clone()).await;
    let mut settings = h.aws.settings.clone();
    for settings in [&mut faulty.settings, &mut settings] {
        settings.shards = 1;
        settings.rows_per_batch = 4;
    }
    let runner = Runner::new(loyalty_aws::Aws::new(settings).await)
        .expect("runner")
        .with_clients_for(Function::Processor, faulty);
    h.drop_file(&t, "one-bad-batch.csv", &file, None).await;
    runner
        .run_until_idle(Some(t.id()), Duration::from_secs(120))
        .await
        .expect("the pipeline settles");

    let job = h.only_job(&t).await;
    assert_eq!(job.batches_total, 30);
    assert_eq!((job.applied, job.failed), (116, 4));
    let mut applied = [0i64; 10];
    for (i, (status, code, balance)) in outcomes(&h.processed_file(&job).await)
        .into_iter()
        .enumerate()
    {
        let customer = i % 10;
        if i < 4 {
            assert_eq!(
                (status.as_str(), code.as_str()),
                ("failed", "processing_failed"),
                "row {}",
                i + 1
            );
        } else {
            applied[customer] += 1;
            assert_eq!(
                (status.as_str(), balance),
                ("applied", applied[customer].to_string()),
                "row {}",
                i + 1
            );
        }
    }
    for customer in 0..10 {
        let id = format!("email:c{customer}@x.test");
        let expected = if customer < 4 { 11 } else { 12 };
        assert_eq!(h.balance(&t, &id).await, expected, "{id}");
    }
    assert!(plan.fired().len() >= 5, "{:?}", plan.fired());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_batch_was_lost_is_closed_by_the_watchdog_and_the_lost_rows_stay_unapplied() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "lost.csv", FILE, None).await;
    split_only(&h, &h.runner, &t, 1).await;
    let job = h.only_job(&t).await;
    let url = h.runner.queue_url(Function::Processor).to_owned();
    let lost = lose_one_batch(&h, &job).await;
    let batch: Batch = serde_json::from_str(lost.body().unwrap()).unwrap();
    let lost_rows: Vec<u64> = batch.rows.iter().map(|r| r.row).collect();
    let watched = local_stack::Runner::new(h.impatient_clients(1).await).unwrap();
    watched
        .run_until_idle(Some(t.id()), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        violations_with(&h, &t, &lost_rows, Some("not_processed")).await,
        Vec::<String>::new()
    );
    assert!(h.only_job(&t).await.stalled_at.is_some());
    // The lost message turns up after all: it changes nothing.
    let event: SqsEvent = serde_json::from_value(sqs_event(&url, &[lost])).unwrap();
    let response = processor::handle(&h.aws, event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        violations_with(&h, &t, &lost_rows, Some("not_processed")).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_is_not_a_batch_is_dead_lettered_then_dropped_not_retried_for_ever() {
    let h = Harness::start().await;
    let bodies = [
        "not a batch".to_owned(),
        // Reads as a batch's head, not as a batch.
        r#"{"rows_kind":"points","tenant_id":"t"}"#.to_owned(),
    ];
    let messages: Vec<aws_sdk_sqs::types::Message> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            aws_sdk_sqs::types::Message::builder()
                .message_id(format!("junk-{i}"))
                .body(body)
                .build()
        })
        .collect();
    // From the batch queue it is refused, so that it is retried and then
    // dead-lettered; from the dead-letter queue it is let go.
    for (function, refused) in [(Function::Processor, 2), (Function::DeadBatches, 0)] {
        let url = h.runner.queue_url(function);
        let event: SqsEvent = serde_json::from_value(sqs_event(url, &messages)).unwrap();
        let response = processor::handle(&h.aws, event).await.unwrap();
        assert_eq!(response.batch_item_failures.len(), refused, "{function:?}");
    }
    // Through the queues: five refusals, the dead-letter queue, and the
    // queues drain instead of handing the message round until its retention
    // ends.
    let sqs = h.aws.queues.client();
    let group = pipeline_tests::unique("junk");
    for (i, body) in bodies.iter().enumerate() {
        sqs.send_message()
            .queue_url(h.runner.queue_url(Function::Processor))
            .message_group_id(&group)
            .message_deduplication_id(format!("{group}-{i}"))
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    h.runner
        .run_until_idle(Some(&group), Duration::from_secs(60))
        .await
        .unwrap();
}

/// Runs the splitter alone until the tenant has `jobs` jobs split (its
/// upload's event may take a moment to reach the queue).
async fn split_only(h: &Harness, runner: &Runner, t: &TestTenant, jobs: usize) {
    for _ in 0..50 {
        runner.pump_function(Function::Splitter).await.unwrap();
        let split = h.jobs(t).await;
        if split.len() == jobs && split.iter().all(|j| j.splitting_done) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the splitter did not split the tenant's files");
}

/// Takes one batch of the job off the batch queue, never to be processed.
async fn lose_one_batch(h: &Harness, job: &shared::job::Job) -> aws_sdk_sqs::types::Message {
    let url = h.runner.queue_url(Function::Processor).to_owned();
    let sqs = h.aws.queues.client();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let message = out
            .messages
            .unwrap_or_default()
            .pop()
            .expect("a batch of the job");
        let handle = message.receipt_handle().unwrap().to_owned();
        if message.body().unwrap_or_default().contains(&job.job_id) {
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(&handle)
                .send()
                .await
                .unwrap();
            return message;
        }
        sqs.change_message_visibility()
            .queue_url(&url)
            .receipt_handle(&handle)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watchdog_reads_only_unfinished_jobs_and_one_unreadable_job_stops_no_other() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "done.csv", FILE, None).await;
    h.settle(&t).await;
    let done = h.only_job(&t).await;
    h.drop_file(&t, "lost.csv", FILE.replace("ann", "amy"), None)
        .await;
    split_only(&h, &h.runner, &t, 2).await;
    let stuck = h
        .jobs(&t)
        .await
        .into_iter()
        .find(|j| j.job_id != done.job_id)
        .unwrap();
    lose_one_batch(&h, &stuck).await;
    // A job item no version of the code can read, unfinished.
    h.aws
        .tables
        .client()
        .put_item()
        .table_name(&h.aws.settings.jobs_table)
        .item("tenant_id", AttributeValue::S(t.id().to_owned()))
        .item("sk", AttributeValue::S("JOB#unreadable".into()))
        .item("unfinished", AttributeValue::S("open".into()))
        .item("status", AttributeValue::S("no-such-status".into()))
        .send()
        .await
        .unwrap();

    let unfinished: Vec<String> = h
        .aws
        .tables
        .unfinished_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    assert!(unfinished.contains(&stuck.job_id));
    assert!(!unfinished.contains(&done.job_id));

    // The rest of the stuck job's batches are applied, then it stops moving.
    while h.runner.pump_function(Function::Processor).await.unwrap() > 0 {}
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let plan = FaultPlan::counting();
    let mut settings = h.aws.settings.clone();
    settings.stall_seconds = 1;
    let watchdog = loyalty_aws::Aws::with_faults(settings, plan.clone()).await;
    let sweep = finalizer::watchdog::sweep(&watchdog).await.unwrap();
    let name = format!("{}/{}", t.id(), stuck.job_id);
    assert!(sweep.stalled.contains(&name), "{sweep:?}");
    let calls = plan.calls();
    assert!(calls.contains(&"DynamoDB:Query".to_owned()), "{calls:?}");
    assert!(!calls.iter().any(|c| c == "DynamoDB:Scan"), "{calls:?}");
    h.settle(&t).await;
    let closed = h
        .aws
        .tables
        .job(t.id(), &stuck.job_id)
        .await
        .unwrap()
        .unwrap();
    assert!(closed.email_sent_at.is_some());
    h.aws
        .tables
        .client()
        .delete_item()
        .table_name(&h.aws.settings.jobs_table)
        .key("tenant_id", AttributeValue::S(t.id().to_owned()))
        .key("sk", AttributeValue::S("JOB#unreadable".into()))
        .send()
        .await
        .unwrap();
}

/// A runner whose splitter's send of the batches around batch 15 always
/// fails, so a split that gets there is given up before its first
/// checkpoint: one shard by the setting, `rows_per_batch` when given, and
/// jobs stalled after two seconds.
async fn split_failing_at_batch_15(
    h: &Harness,
    rows_per_batch: Option<usize>,
) -> (Runner, FaultPlan) {
    let plan = FaultPlan::fail_always_containing("SQS:SendMessageBatch", "-b15\"");
    let mut faulty = h.faulty_clients(plan.clone()).await;
    let mut settings = h.aws.settings.clone();
    settings.stall_seconds = 2;
    for settings in [&mut faulty.settings, &mut settings] {
        settings.shards = 1;
        if let Some(rows) = rows_per_batch {
            settings.rows_per_batch = rows;
        }
    }
    let runner = Runner::new(loyalty_aws::Aws::new(settings).await)
        .expect("runner")
        .with_clients_for(Function::Splitter, faulty);
    (runner, plan)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_split_that_fails_on_every_delivery_is_given_up_and_its_job_still_reports_every_row() {
    // The split's second send of batches (11 to 20) always fails: the
    // upload's event goes to the ingest dead-letter queue, and the split is
    // given up there. Batches 1 to 10 (rows 1 to 40) are applied; the rest
    // is reported not applied, with how to import it.
    let h = Harness::start().await;
    let t = h.tenant().await;
    let (runner, plan) = split_failing_at_batch_15(&h, Some(4)).await;
    let mut file = String::from("email,amount\n");
    for n in 1..=200 {
        file.push_str(&format!("c{}@x.test,1\n", n % 10));
    }
    h.drop_file(&t, "unsplittable.csv", &file, None).await;
    runner
        .run_until_idle(Some(t.id()), Duration::from_secs(120))
        .await
        .expect("the pipeline settles");
    assert!(plan.fired().len() >= 5, "{:?}", plan.fired());

    let job = h.only_job(&t).await;
    assert!(job.split_abandoned.is_some(), "{job:?}");
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    assert_eq!((job.applied, job.failed), (40, 160));
    let processed = outcomes(&h.processed_file(&job).await);
    assert_eq!(processed.len(), 200);
    for (i, (status, code, _)) in processed.iter().enumerate() {
        let expected = if i < 40 {
            ("applied", "")
        } else {
            ("failed", "not_processed")
        };
        assert_eq!((status.as_str(), code.as_str()), expected, "row {}", i + 1);
    }
    assert_eq!(h.balance(&t, "email:c1@x.test").await, 4);
    let emails = h.emails_about(&job.job_id).await;
    assert_eq!(emails.len(), 1);
    assert!(
        emails[0].body.contains("upload a file of just those rows"),
        "{}",
        emails[0].body
    );

    // The same file again is a duplicate: nothing of it is applied twice.
    h.drop_file(&t, "unsplittable-again.csv", &file, None).await;
    h.settle(&t).await;
    let again = h
        .jobs(&t)
        .await
        .into_iter()
        .find(|j| j.job_id != job.job_id)
        .unwrap();
    assert_eq!(again.status, JobStatus::Rejected);
    assert_eq!(h.balance(&t, "email:c1@x.test").await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_split_given_up_over_more_shards_than_the_setting_reports_every_shards_rows() {
    // A file large enough for two shards where the setting says one; its
    // split always fails at its second send of batches, before any
    // checkpoint, and is given up: the job must keep both shards, or the
    // finalizer would not read the second one's outcomes.
    let h = Harness::start().await;
    let t = h.tenant().await;
    let (runner, plan) = split_failing_at_batch_15(&h, None).await;
    let rows = 16_000u64;
    let mut file = String::from("email,amount\n");
    for n in 1..=rows {
        file.push_str(&format!("customer-number-{n:06}@example.test,1\n"));
    }
    let shards = shared::split::shards_for(file.len() as u64, 1);
    assert_eq!(shards, 2, "{} bytes", file.len());
    h.drop_file(&t, "two-shards.csv", &file, None).await;
    runner
        .run_until_idle(Some(t.id()), Duration::from_secs(300))
        .await
        .expect("the pipeline settles");
    assert!(!plan.fired().is_empty());

    let job = h.only_job(&t).await;
    assert!(job.split_abandoned.is_some(), "{job:?}");
    assert_eq!(job.shards, shards);
    assert!(job.applied > 0, "{job:?}");
    let processed = outcomes(&h.processed_file(&job).await);
    assert_eq!(processed.len() as u64, rows);
    let applied = processed
        .iter()
        .filter(|(status, _, _)| status == "applied")
        .count();
    assert_eq!(applied as u64, job.applied);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finalizer_too_near_its_deadline_does_not_start_the_email_and_its_retry_sends_one() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let mut settings = h.aws.settings.clone();
    settings.finalize_lease_seconds = 1;
    let aws = loyalty_aws::Aws::new(settings).await;
    // Half a second per invocation: less than the email's margin.
    let hurried = Runner::new(aws.clone())
        .expect("runner")
        .with_timeout_for(Function::Finalizer, Duration::from_millis(500));
    h.drop_file(&t, "near-deadline.csv", FILE, None).await;
    let mut finished = false;
    for _ in 0..200 {
        hurried.pump().await.unwrap();
        let jobs = h.jobs(&t).await;
        if jobs.first().is_some_and(|j| j.processed_key.is_some()) {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(finished, "the job never reached its email");
    let job = h.only_job(&t).await;
    assert!(job.email_sent_at.is_none());
    assert!(h.emails_about(&job.job_id).await.is_empty());
    Runner::new(aws)
        .expect("runner")
        .run_until_idle(Some(t.id()), Duration::from_secs(60))
        .await
        .expect("the pipeline settles");
    assert_eq!(violations(&h, &t).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_jobs_unprocessed_rows_are_sealed_a_hundred_at_a_time() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    // 250 rows in one shard's one batch, lost.
    let mut settings = h.aws.settings.clone();
    settings.shards = 1;
    settings.rows_per_batch = 250;
    settings.stall_seconds = 1;
    let mut file = String::from("email,amount\n");
    for n in 1..=250 {
        file.push_str(&format!("s{n}@x.test,1\n"));
    }
    h.drop_file(&t, "sealed.csv", &file, None).await;
    let splitter = Runner::new(loyalty_aws::Aws::new(settings.clone()).await).unwrap();
    split_only(&h, &splitter, &t, 1).await;
    let job = h.only_job(&t).await;
    lose_one_batch(&h, &job).await;
    let plan = FaultPlan::counting();
    let finalizer = loyalty_aws::Aws::with_faults(settings.clone(), plan.clone()).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    Runner::new(loyalty_aws::Aws::new(settings).await)
        .unwrap()
        .with_clients_for(Function::Finalizer, finalizer)
        .run_until_idle(Some(t.id()), Duration::from_secs(60))
        .await
        .unwrap();
    let job = h.only_job(&t).await;
    assert_eq!((job.applied, job.failed), (0, 250));
    let processed = outcomes(&h.processed_file(&job).await);
    assert!(processed.iter().all(|(_, code, _)| code == "not_processed"));
    let calls = plan.calls();
    let count = |call: &str| calls.iter().filter(|c| *c == call).count();
    assert_eq!(count("DynamoDB:TransactWriteItems"), 3, "{calls:?}");
    assert_eq!(count("DynamoDB:PutItem"), 0, "{calls:?}");
}
