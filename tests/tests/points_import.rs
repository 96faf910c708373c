//! The points import, end to end against the local emulator: files go in
//! through S3 (console drops and presigned uploads), the functions run on
//! the local runner, and the assertions read wallets, processed files and
//! emails back through the AWS SDK.
//!
//! Its length: one test binary per capability (each binary is linked on its
//! own); its tests share the helpers at its top.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use lambda_http::http::{Method, StatusCode};
use local_stack::Runner;
use loyalty_aws::Aws;
use pipeline_tests::{outcomes, processed_rows, Harness};
use shared::job::JobStatus;

fn row(status: &str, code: &str, balance: &str) -> (String, String, String) {
    (status.to_owned(), code.to_owned(), balance.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_credit_adds_points_to_the_wallet() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(
        &t,
        "credit.csv",
        "email,amount,operation\nalice@example.com,100,CR\n",
        None,
    )
    .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(h.balance(&t, "email:alice@example.com").await, 100);
    assert_eq!(
        outcomes(&h.processed_file(&job).await),
        [row("applied", "", "100")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_debit_removes_points_and_a_blank_operation_is_a_credit() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(
        &t,
        "mixed.csv",
        "email,amount,operation\nbob@example.com,80,\nbob@example.com,30,dr\n",
        None,
    )
    .await;
    h.settle(&t).await;
    assert_eq!(h.balance(&t, "email:bob@example.com").await, 50);
    let job = h.only_job(&t).await;
    assert_eq!((job.credited, job.debited), (80, 30));
    assert_eq!(
        outcomes(&h.processed_file(&job).await),
        [row("applied", "", "80"), row("applied", "", "50")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_debit_over_the_balance_fails_and_leaves_the_balance() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let file = "email,amount,operation\ncarol@example.com,50,CR\ncarol@example.com,80,DR\ncarol@example.com,20,DR\n";
    h.drop_file(&t, "overdraft.csv", file, None).await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    assert_eq!(
        outcomes(&h.processed_file(&job).await),
        [
            row("applied", "", "50"),
            row("failed", "insufficient_balance", "50"),
            row("applied", "", "30")
        ]
    );
    assert_eq!(h.balance(&t, "email:carol@example.com").await, 30);
    assert_eq!(h.ledger_len(&t, "email:carol@example.com").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn debits_consume_expiring_points_before_permanent_ones() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "base.csv", "email,amount\ndan@example.com,100\n", None)
        .await;
    h.settle(&t).await;
    let file = "email,amount,operation,expire_in_days\ndan@example.com,40,CR,30\ndan@example.com,10,CR,7\ndan@example.com,30,DR,\n";
    h.drop_file(&t, "expiring.csv", file, None).await;
    h.settle(&t).await;
    let customer: shared::identifier::CustomerRef = "email:dan@example.com".parse().unwrap();
    let view = h.aws.tables.wallet_view(t.id(), &customer).await.unwrap();
    let wallet = view.wallet.unwrap();
    // The 7-day lot went first (10), then the 30-day lot (20 of 40); the permanent 100 is untouched.
    assert_eq!(wallet.permanent, 100);
    let lots: Vec<i64> = wallet.lots.iter().map(|l| l.remaining).collect();
    assert_eq!(lots, [20]);
    let debit = view.entries.iter().find(|e| e.row == 3).unwrap();
    assert_eq!(
        debit.consumed.iter().map(|c| c.points).collect::<Vec<_>>(),
        [10, 20]
    );
    assert_eq!(h.balance(&t, "email:dan@example.com").await, 120);
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_expiring_credits_to_one_customer_keep_a_small_wallet() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    // 10,000 credits of one point, expiring on ten different days.
    let mut file = String::from("email,amount,operation,expire_in_days\n");
    for n in 0..10_000 {
        file.push_str(&format!("big@x.test,1,CR,{}\n", 30 + n % 10));
    }
    h.drop_file(&t, "credits.csv", &file, None).await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!((job.applied, job.failed), (10_000, 0));
    h.drop_file(
        &t,
        "debits.csv",
        "email,amount,operation\nbig@x.test,5000,DR\nbig@x.test,4000,DR\n",
        None,
    )
    .await;
    h.settle(&t).await;
    assert_eq!(h.balance(&t, "email:big@x.test").await, 1_000);

    let customer: shared::identifier::CustomerRef = "email:big@x.test".parse().unwrap();
    let view = h.aws.tables.wallet_view(t.id(), &customer).await.unwrap();
    // The soonest-expiring nine days went first: the last day's lot is left.
    let wallet = view.wallet.unwrap();
    let last_day = (Utc::now() + Duration::days(39)).date_naive();
    let lots: Vec<_> = wallet
        .lots
        .iter()
        .map(|l| (l.expires_on, l.remaining))
        .collect();
    assert_eq!(lots, [(last_day, 1_000)]);
    let debit = view.entries.iter().find(|e| e.amount == 4000).unwrap();
    assert_eq!(debit.consumed.len(), 4, "{:?}", debit.consumed);

    // The wallet item as stored, by DynamoDB's size rules.
    let item = h
        .aws
        .tables
        .client()
        .get_item()
        .table_name(&h.aws.settings.wallets_table)
        .key("pk", AttributeValue::S(format!("{}#{customer}", t.id())))
        .key("sk", AttributeValue::S("WALLET".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let size = loyalty_aws::capacity::stored_item_size(&item);
    println!("wallet item after 10,000 expiring credits: {size} bytes");
    assert!(size < 1_024, "{size} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_points_are_not_spendable() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    // An earlier import, applied ten days ago through the same ledger store,
    // credited points valid for seven days: they have expired.
    let earlier = shared::batch::Batch {
        tenant_id: t.id().to_owned(),
        job_id: "earlier-import".into(),
        number: 1,
        shard: 0,
        reason: "last month's campaign".into(),
        dry_run: false,
        rows_kind: shared::batch::RowKind::Points,
        amount_column: None,
        reverts: None,
        rows: vec![shared::points::PointsRow {
            row: 1,
            customer: "email:erin@example.com".parse().unwrap(),
            operation: shared::points::Operation::Credit,
            amount: 70,
            expire_in_days: Some(7),
            set_balance: false,
            also: Vec::new(),
        }],
    };
    shared::apply::apply_batch(&h.aws.tables, &earlier, Utc::now() - Duration::days(10))
        .await
        .unwrap();
    assert_eq!(h.balance(&t, "email:erin@example.com").await, 0);

    let file =
        "email,amount,operation,expire_in_days\nerin@example.com,20,DR,\nerin@example.com,5,CR,3\n";
    h.drop_file(&t, "spend.csv", file, None).await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(
        outcomes(&h.processed_file(&job).await),
        [
            row("failed", "insufficient_balance", "0"),
            row("applied", "", "5")
        ]
    );
    assert_eq!(h.balance(&t, "email:erin@example.com").await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_rows_fail_with_their_code_and_the_rest_apply() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let file = "email,mobile,amount,operation\n\
                a@example.com,,\"1,000\",CR\n\
                a@example.com,,10.5,CR\n\
                ,,10,CR\n\
                a@example.com,,10,credit\n\
                a@example.com,,7,CR\n\
                ,3.3612E+10,5,CR\n";
    h.drop_file(&t, "invalid.csv", file, None).await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    let processed = h.processed_file(&job).await;
    assert_eq!(
        outcomes(&processed),
        [
            row("failed", "invalid_amount", ""),
            row("failed", "invalid_amount", ""),
            row("failed", "missing_identifier", ""),
            row("failed", "invalid_operation", ""),
            row("applied", "", "7"),
            row("failed", "invalid_mobile", ""),
        ]
    );
    let rows = processed_rows(&processed);
    assert_eq!(rows[0].get("error_message"), "row 1, column amount: '1,000' is not a whole number of points: use digits only, with no sign, separators, decimals or exponent");
    assert!(rows[3]
        .get("error_message")
        .contains("column operation: 'credit'"));
    assert_eq!((job.applied, job.failed, job.invalid_rows), (1, 5, 5));
    assert_eq!(h.balance(&t, "email:a@example.com").await, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_column_rejects_the_file_and_the_admin_is_told_which() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(
        &t,
        "colour.csv",
        "email,amount,colour\na@example.com,5,red\n",
        None,
    )
    .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.status, JobStatus::Rejected);
    assert!(job
        .rejection
        .as_deref()
        .unwrap()
        .contains("unknown column 'colour'"));
    assert_eq!(h.balance(&t, "email:a@example.com").await, 0);
    let emails = h.emails_about(&job.job_id).await;
    assert_eq!(emails.len(), 1);
    assert_eq!(
        emails[0].destinations.to,
        std::slice::from_ref(&t.tenant.admin_email)
    );
    assert!(emails[0].subject.contains("rejected"));
    assert!(
        emails[0].body.contains("unknown column 'colour'"),
        "{}",
        emails[0].body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_mandatory_column_rejects_the_file_and_the_admin_is_told_which() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(
        &t,
        "no-amount.csv",
        "email,operation\na@example.com,CR\n",
        None,
    )
    .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.status, JobStatus::Rejected);
    let emails = h.emails_about(&job.job_id).await;
    assert_eq!(emails.len(), 1);
    assert!(
        emails[0].body.contains("missing column 'amount'"),
        "{}",
        emails[0].body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_processed_file_has_every_row_once_in_input_order() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    // 250 rows over many customers and batches, some invalid, some debits.
    let mut file = String::from("customer_id;amount;operation\n");
    for n in 1..=250 {
        let amount = if n % 17 == 0 {
            "x".to_string()
        } else {
            (n % 9 + 1).to_string()
        };
        let op = if n % 5 == 0 { "DR" } else { "CR" };
        file.push_str(&format!("C{};{amount};{op}\n", n % 23));
    }
    h.drop_file(&t, "many.csv", &file, None).await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert!(job.batches_total > 1);
    let processed = h.processed_file(&job).await;
    let rows = processed_rows(&processed);
    assert_eq!(rows.len(), 250);
    let input: Vec<&str> = file.lines().skip(1).collect();
    for (n, (line, out)) in input.iter().zip(&rows).enumerate() {
        let expected: Vec<&str> = line.split(';').collect();
        assert_eq!(
            [
                out.get("customer_id"),
                out.get("amount"),
                out.get("operation")
            ],
            [expected[0], expected[1], expected[2]],
            "row {}",
            n + 1
        );
        assert!(["applied", "failed"].contains(&out.get("status")));
    }
    assert!(processed.starts_with(
        "customer_id;amount;operation;status;error_code;error_message;balance_after\n"
    ));
    assert_eq!(job.applied + job.failed, 250);
}

/// Outcomes are kept in pages of 49 rows; the processed file merges the
/// pages of every shard with the rows recorded one by one.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_of_many_pages_and_batches_per_shard_comes_back_whole_and_in_order() {
    many_pages_and_batches_per_shard(1).await;
}

/// The same with a processor per shard at once, as Lambda runs them: each
/// shard's batches still apply in order (a debit after the credits before
/// it), and no row is lost or doubled.
#[tokio::test(flavor = "multi_thread")]
async fn a_processor_per_shard_at_once_applies_each_shard_in_order() {
    many_pages_and_batches_per_shard(3).await;
}

async fn many_pages_and_batches_per_shard(processors: usize) {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let mut settings = h.aws.settings.clone();
    settings.rows_per_batch = 60;
    settings.shards = 3;
    let runner = local_stack::Runner::new(loyalty_aws::Aws::new(settings).await)
        .unwrap()
        .with_processor_concurrency(processors);
    let mut file = String::from("customer_id,amount,operation\n");
    for n in 1..=700 {
        let (amount, op) = match n % 13 {
            0 => ("oops".to_string(), "CR"),
            7 => ("1000000".to_string(), "DR"),
            _ => ((n % 9 + 1).to_string(), "CR"),
        };
        file.push_str(&format!("C{},{amount},{op}\n", n % 101));
    }
    h.drop_file(&t, "pages.csv", &file, None).await;
    runner
        .run_until_idle(Some(t.id()), std::time::Duration::from_secs(180))
        .await
        .unwrap();
    let job = h.only_job(&t).await;
    // 3 shards of about 215 valid rows: 4 batches each, of 2 pages.
    assert!(job.batches_total >= 12, "{} batches", job.batches_total);
    let rows = processed_rows(&h.processed_file(&job).await);
    assert_eq!(rows.len(), 700);
    for (n, (line, out)) in file.lines().skip(1).zip(&rows).enumerate() {
        let row = n + 1;
        assert_eq!(
            out.get("customer_id"),
            line.split(',').next().unwrap(),
            "row {row}"
        );
        let expected = match row % 13 {
            0 => "invalid_amount",
            7 => "insufficient_balance",
            _ => "",
        };
        assert_eq!(out.get("error_code"), expected, "row {row}");
    }
    assert_eq!((job.applied, job.failed), (700 - 53 - 54, 53 + 54));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_email_goes_to_the_tenant_admin_only_with_a_link_to_the_processed_file() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let file = "email,amount\nintruder@evil.example,5\n";
    h.drop_file(&t, "emails.csv", file, Some("Loyalty week"))
        .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.reason, "Loyalty week");
    let emails = h.emails_about(&job.job_id).await;
    assert_eq!(emails.len(), 1, "exactly one email per job");
    let email = &emails[0];
    assert_eq!(
        email.destinations.to,
        std::slice::from_ref(&t.tenant.admin_email)
    );
    assert!(email.destinations.cc.is_empty() && email.destinations.bcc.is_empty());
    assert!(email.body.contains("Applied: 1"));
    let key = job.processed_key.unwrap();
    assert!(key.starts_with(&format!("processed/{}/{}/", t.id(), job.job_id)));
    assert!(
        email.body.contains("X-Amz-Expires="),
        "the link is time-limited"
    );
    assert!(email.body.contains("emails.processed.csv"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_presigned_upload_imports_the_file_and_the_api_reports_the_job() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let file =
        "email,amount,operation,expire_in_days\nfay@example.com,60,CR,30\nfay@example.com,10,DR,\n";
    let job_id = h
        .api_import(&t, "points_with_expiry", "spring.csv", file, false)
        .await;
    h.settle(&t).await;
    let status = h
        .api(&t, Method::GET, &format!("/imports/{job_id}"), None)
        .await;
    assert_eq!(status.status, StatusCode::OK);
    let body = status.json().unwrap();
    assert_eq!(body["status"], "completed");
    assert_eq!(body["kind"], "points_with_expiry");
    assert_eq!(body["counts"]["applied"], 2);
    assert_eq!(body["progress"]["percent"], 100);
    assert_eq!(body["preview"][0]["identifier"], "fay@example.com");
    assert_eq!(body["preview"][0]["expiry"], "30");
    assert_eq!(body["preview"][1]["operation"], "DR");
    assert_eq!(body["preview"][1]["result"], "valid");
    assert!(body["processed_file"]
        .as_str()
        .unwrap()
        .contains("X-Amz-Signature="));
    assert_eq!(h.balance(&t, "email:fay@example.com").await, 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_larger_than_declared_is_rejected_without_applying_anything() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let created = h.create_import(&t, "small.csv", 10).await;
    let job_id = created["job_id"].as_str().unwrap();
    // Written straight to the upload key, bypassing the signed size.
    let key = format!("uploads/{job_id}/small.csv");
    h.drop_file(&t, &key, "email,amount\ng@example.com,5\n", None)
        .await;
    h.settle(&t).await;
    let job = h.aws.tables.job(t.id(), job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Rejected);
    assert!(job
        .rejection
        .unwrap()
        .contains("more than the 10 bytes declared"));
    assert_eq!(h.balance(&t, "email:g@example.com").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_batch_changes_nothing() {
    use aws_lambda_events::event::sqs::SqsEvent;
    use local_stack::runner::{sqs_event, Function};
    let h = Harness::start().await;
    let t = h.tenant().await;
    let file = "email,amount,operation\nhal@example.com,40,CR\nhal@example.com,15,DR\nivy@example.com,9,CR\n";
    h.drop_file(&t, "redelivery.csv", file, None).await;
    // Split only, then take the batch messages off the queue ourselves.
    h.runner.pump_function(Function::Splitter).await.unwrap();
    let url = h.runner.queue_url(Function::Processor).to_owned();
    let sqs = h.aws.queues.client();
    let mut messages = Vec::new();
    for _ in 0..5 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        messages.extend(out.messages.unwrap_or_default());
        if messages
            .iter()
            .map(|m| m.body().unwrap_or_default().matches("\"row\"").count())
            .sum::<usize>()
            >= 3
        {
            break;
        }
    }
    let event: SqsEvent = serde_json::from_value(sqs_event(&url, &messages)).unwrap();
    // Delivered twice one after the other, then twice at once.
    for _ in 0..2 {
        let response = processor::handle(&h.aws, event.clone()).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    let (a, b) = tokio::join!(
        processor::handle(&h.aws, event.clone()),
        processor::handle(&h.aws, event.clone())
    );
    assert!(a.unwrap().batch_item_failures.is_empty() && b.unwrap().batch_item_failures.is_empty());
    for m in &messages {
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    h.settle(&t).await;
    assert_eq!(h.balance(&t, "email:hal@example.com").await, 25);
    assert_eq!(h.balance(&t, "email:ivy@example.com").await, 9);
    assert_eq!(h.ledger_len(&t, "email:hal@example.com").await, 2);
    let job = h.only_job(&t).await;
    assert_eq!(
        (job.applied, job.failed, job.credited, job.debited),
        (3, 0, 49, 15)
    );
    assert_eq!(h.emails_about(&job.job_id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_s3_event_twice_makes_one_job() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let key = h
        .drop_file(&t, "twice.csv", "email,amount\njo@example.com,5\n", None)
        .await;
    // Take the notification off the queue and deliver it twice.
    let url = h
        .runner
        .queue_url(local_stack::runner::Function::Splitter)
        .to_owned();
    let sqs = h.aws.queues.client();
    let out = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let messages = out.messages.unwrap_or_default();
    assert!(
        messages
            .iter()
            .any(|m| m.body().unwrap_or_default().contains(t.id())),
        "notification for {key}"
    );
    let event = local_stack::runner::sqs_event(&url, &messages);
    splitter::handle(&h.aws, event.clone()).await.unwrap();
    splitter::handle(&h.aws, event).await.unwrap();
    for m in &messages {
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    h.settle(&t).await;
    assert_eq!(h.jobs(&t).await.len(), 1);
    assert_eq!(h.balance(&t, "email:jo@example.com").await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_with_spaces_and_non_ascii_characters_works() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(
        &t,
        "Été 2026/prime fidélité + bonus.csv",
        "email,amount\nkim@example.com,12\n",
        None,
    )
    .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(
        job.source_key,
        format!("incoming/{}/Été 2026/prime fidélité + bonus.csv", t.id())
    );
    assert_eq!(job.reason, "Bulk import from prime fidélité + bonus.csv");
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(h.balance(&t, "email:kim@example.com").await, 12);
    assert!(h
        .processed_file(&job)
        .await
        .contains("kim@example.com,12,applied"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_drop_with_an_expiry_column_is_an_import_with_expiry() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(
        &t,
        "exp.csv",
        "Email;Amount;Expire_In_Days\nlea@example.com;5;10\n",
        None,
    )
    .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.kind, Some(shared::kind::ImportKind::PointsWithExpiry));
    let customer: shared::identifier::CustomerRef = "email:lea@example.com".parse().unwrap();
    let wallet = h
        .aws
        .tables
        .wallet_view(t.id(), &customer)
        .await
        .unwrap()
        .wallet
        .unwrap();
    assert_eq!(wallet.lots.len(), 1);
    // At the end of the day ten days from now (UTC).
    let hours = (wallet.lots[0].expires_at() - Utc::now()).num_hours();
    assert!(
        (239..=264).contains(&hours),
        "expires at the end of the tenth day from now, not in {hours} hours"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mobiles_in_national_and_international_form_are_one_wallet() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(
        &t,
        "mobiles.csv",
        "mobile,amount,operation\n06 12 34 56 78,30,CR\n+33612345678,10,DR\n",
        None,
    )
    .await;
    h.settle(&t).await;
    assert_eq!(h.balance(&t, "mobile:+33612345678").await, 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_whose_identifiers_have_two_wallets_fails_rather_than_guess() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(
        &t,
        "by-mobile.csv",
        "mobile,amount\n06 12 34 56 78,30\n",
        None,
    )
    .await;
    h.settle(&t).await;
    h.drop_file(
        &t,
        "both.csv",
        "email,mobile,amount\nzed@example.com,+33612345678,10\nzed@example.com,,4\nyan@example.com,3.3612E+10,1\n",
        None,
    )
    .await;
    h.settle(&t).await;
    let jobs = h.jobs(&t).await;
    let both = jobs.iter().find(|j| j.filename == "both.csv").unwrap();
    let processed = h.processed_file(both).await;
    assert_eq!(
        outcomes(&processed),
        [
            row("failed", "conflicting_identifiers", "0"),
            row("applied", "", "4"),
            row("failed", "invalid_mobile", ""),
        ]
    );
    let rows = processed_rows(&processed);
    assert!(rows[0]
        .get("error_message")
        .contains("'+33612345678' has a wallet of its own, apart"));
    assert_eq!(h.balance(&t, "mobile:+33612345678").await, 30);
    assert_eq!(h.balance(&t, "email:zed@example.com").await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_file_decides_every_row_the_same_whatever_its_batches_and_shards() {
    let h = Harness::start().await;
    // Rows naming two identifiers beside rows naming one of them, in
    // either order; against two wallets from before (06 22 22 22 22, C-9).
    let mut file = String::from(
        "email,mobile,customer_id,amount\n\
         ,0611111111,,5\n\
         a1@x.test,0611111111,,5\n\
         a2@x.test,0622222222,,5\n\
         ,0622222222,,3\n\
         a3@x.test,,C-3,5\n\
         ,,C-3,7\n\
         a4@x.test,,C-9,5\n",
    );
    for n in 0..40 {
        file.push_str(&format!("c{}@x.test,,,{}\n", n % 13, n % 5 + 1));
        if n % 10 == 0 {
            file.push_str("a1@x.test,,,1\n,0611111111,,2\n,,C-3,1\n");
        }
    }
    let mut processed = Vec::new();
    for (rows_per_batch, shards) in [
        (1, 16),
        (2, 8),
        (3, 5),
        (5, 3),
        (7, 2),
        (11, 1),
        (50, 8),
        (196, 8),
        (1, 1),
        (4, 7),
    ] {
        let t = h.tenant().await;
        h.drop_file(
            &t,
            "before.csv",
            "mobile,customer_id,amount\n0622222222,,5\n,C-9,5\n",
            None,
        )
        .await;
        h.settle(&t).await;
        let mut settings = h.aws.settings.clone();
        settings.rows_per_batch = rows_per_batch;
        settings.shards = shards;
        let runner = Runner::new(Aws::new(settings).await).expect("runner");
        let key = h.drop_file(&t, "mixed.csv", &file, None).await;
        runner
            .run_until_idle(Some(t.id()), std::time::Duration::from_secs(120))
            .await
            .expect("the pipeline settles");
        let job = h
            .jobs(&t)
            .await
            .into_iter()
            .find(|j| j.source_key == key)
            .expect("the job");
        processed.push(((rows_per_batch, shards), h.processed_file(&job).await));
    }
    let (first_plan, first) = &processed[0];
    for (plan, file) in &processed[1..] {
        assert_eq!(file, first, "{plan:?} against {first_plan:?}");
    }
    // Only the rows naming a wallet from before conflict.
    let conflicts: Vec<usize> = outcomes(first)
        .iter()
        .enumerate()
        .filter(|(_, (_, code, _))| code == "conflicting_identifiers")
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(conflicts, [3, 7]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_reports_outcomes_and_changes_no_wallet() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "real.csv", "email,amount\nmo@example.com,50\n", None)
        .await;
    h.settle(&t).await;
    let file = "email,amount,operation\nmo@example.com,30,DR\nmo@example.com,30,DR\nnew@example.com,5,CR\n";
    let job_id = h.api_import(&t, "points", "try.csv", file, true).await;
    h.settle(&t).await;
    let job = h.aws.tables.job(t.id(), &job_id).await.unwrap().unwrap();
    assert!(job.dry_run);
    assert_eq!(
        outcomes(&h.processed_file(&job).await),
        [
            row("would_apply", "", "20"),
            row("failed", "insufficient_balance", "20"),
            row("would_apply", "", "5")
        ]
    );
    assert_eq!(h.balance(&t, "email:mo@example.com").await, 50);
    assert_eq!(h.balance(&t, "email:new@example.com").await, 0);
    assert!(h.emails_about(&job_id).await[0].subject.contains("dry run"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_decides_every_row_as_the_real_run_then_does() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    // Before: ann has 10 points, and the mobile 06 12 34 56 78 a wallet of its own.
    h.drop_file(
        &t,
        "before.csv",
        "email,mobile,amount\nann@x.test,,10\n,0612345678,30\n",
        None,
    )
    .await;
    h.settle(&t).await;
    let long_id = "C".repeat(200);
    let mut file = format!(
        "email,mobile,customer_id,amount,operation,expire_in_days\n\
         ,,,5,CR,10\n\
         ann.x.test,,,5,CR,10\n\
         ,123,,5,CR,10\n\
         ,,{long_id},5,CR,10\n\
         ann@x.test,,,,CR,10\n\
         ann@x.test,,,1.5,CR,10\n\
         ann@x.test,,,20000000,CR,10\n\
         ann@x.test,,,5,XX,10\n\
         ann@x.test,,,5,CR,\n\
         ann@x.test,,,5,CR,0\n\
         ann@x.test,,,5,CR,10,extra\n\
         ann@x.test,,,50,DR,\n\
         new@x.test,0612345678,,5,CR,10\n\
         ann@x.test,,,4,DR,\n\
         new@x.test,,,5,CR,10\n"
    )
    .into_bytes();
    // A byte Windows-1252 has no character for (the file is not UTF-8).
    file.extend_from_slice(b"n\x81@x.test,,,5,CR,10\n");

    let dry = h
        .api_import(&t, "points_with_expiry", "all-errors.csv", &file, true)
        .await;
    h.settle(&t).await;
    let real = h
        .api_import(&t, "points_with_expiry", "all-errors.csv", &file, false)
        .await;
    h.settle(&t).await;
    let processed = |job_id: String| {
        let h = &h;
        let t = &t;
        async move {
            let job = h.aws.tables.job(t.id(), &job_id).await.unwrap().unwrap();
            h.processed_file(&job).await
        }
    };
    let (dry, real) = (processed(dry).await, processed(real).await);
    let codes: Vec<String> = outcomes(&dry)
        .into_iter()
        .map(|(_, code, _)| code)
        .collect();
    assert_eq!(
        codes,
        [
            "missing_identifier",
            "invalid_email",
            "invalid_mobile",
            "invalid_customer_id",
            "missing_amount",
            "invalid_amount",
            "amount_too_large",
            "invalid_operation",
            "missing_expiry",
            "invalid_expiry",
            "too_many_fields",
            "insufficient_balance",
            "conflicting_identifiers",
            "",
            "",
            "invalid_encoding",
        ]
    );
    // Row for row the same, but for what the dry run calls its rows.
    assert_eq!(dry.replace("would_apply", "applied"), real);
    assert!(!dry.contains(",applied,"), "{dry}");
    // The extra value of the too_many_fields row is kept, after the outcome.
    assert!(
        real.lines().any(
            |l| l.starts_with("ann@x.test,,,5,CR,10,failed,too_many_fields,")
                && l.ends_with(",extra")
        ),
        "{real}"
    );
    assert_eq!(h.balance(&t, "email:ann@x.test").await, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_serves_a_template_for_each_kind() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let plain = h.api(&t, Method::GET, "/templates/points", None).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain
        .text()
        .starts_with("email,mobile,customer_id,amount,operation\n"));
    let expiry = h
        .api(&t, Method::GET, "/templates/points_with_expiry.csv", None)
        .await;
    assert!(expiry
        .text()
        .starts_with("email,mobile,customer_id,amount,operation,expire_in_days\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sample_events_for_cargo_lambda_are_handled() {
    let h = Harness::start().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    for function in ["splitter", "processor", "finalizer"] {
        for entry in std::fs::read_dir(dir.join(function).join("events")).unwrap() {
            let path = entry.unwrap().path();
            let event: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let result = match function {
                "splitter" => splitter::handle(&h.aws, event).await.map(|_| ()),
                "processor" => processor::handle(&h.aws, serde_json::from_value(event).unwrap())
                    .await
                    .map(|_| ()),
                _ => finalizer::handle_event(&h.aws, serde_json::from_value(event).unwrap())
                    .await
                    .map(|_| ()),
            };
            assert!(result.is_ok(), "{}: {:?}", path.display(), result.err());
        }
    }
}
