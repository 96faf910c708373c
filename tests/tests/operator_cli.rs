//! The operator's commands (`loyalty-local jobs`, `job`, `tenant set`,
//! `tenant rotate-key`, `dlq`, `watchdog`), through the library functions
//! they call and print, on the emulator. `infra/local/tests/stack_env.rs`
//! runs the binary itself with `--stack-env`.

use lambda_http::http::{Method, StatusCode};
use local_stack::console;
use local_stack::operator::dlq::{self, About};
use local_stack::operator::{jobs, tenants, watchdog};
use local_stack::runner::Function;
use pipeline_tests::Harness;
use shared::job::JobStatus;
use shared::tenant::{Language, SettingsChange};
use std::time::Duration;

/// Three valid rows and one with an email that is none.
const FILE: &str =
    "email,amount\na@example.com,10\nb@example.com,20\nnot-an-email,5\nc@example.com,30\n";

#[tokio::test]
async fn jobs_are_listed_newest_first_a_page_at_a_time_and_one_is_shown_in_full() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "first.csv", FILE, Some("First")).await;
    h.settle(&t).await;
    h.drop_file(&t, "second.csv", "email,amount\nd@example.com,1\n", None)
        .await;
    h.settle(&t).await;

    let page = jobs::list(&h.aws, t.id(), 1, None).await.unwrap();
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.jobs[0].filename, "second.csv");
    let table = jobs::list_table(&page);
    assert!(table.starts_with("JOB "), "{table}");
    let line = table.lines().nth(1).unwrap();
    for cell in [
        page.jobs[0].job_id.as_str(),
        "points",
        "second.csv",
        "completed",
        "1/1",
    ] {
        assert!(line.contains(cell), "{cell} in {table}");
    }
    let next = page.next.clone().expect("another page");
    assert!(table.contains(&format!("--cursor {next}")), "{table}");

    let rest = jobs::list(&h.aws, t.id(), 20, Some(&next)).await.unwrap();
    assert_eq!(rest.next, None);
    let json = jobs::list_json(&rest);
    let first = &json["jobs"][0];
    assert_eq!(first["filename"], "first.csv");
    assert_eq!(first["status"], "completed_with_errors");
    assert_eq!(first["rows_decided"], 4);
    assert_eq!(
        (first["applied"].as_u64(), first["failed"].as_u64()),
        (Some(3), Some(1))
    );
    assert!(jobs::list(&h.aws, t.id(), 20, Some("not-a-cursor"))
        .await
        .is_err());

    let job_id = first["job_id"].as_str().unwrap();
    let job = jobs::show(&h.aws, t.id(), job_id).await.unwrap();
    let text = jobs::job_text(&job);
    for expected in [
        "status:          completed_with_errors",
        "4/4 rows decided (100%)",
        "applied 3, failed 1",
        "reason:          First",
        "errors by code (1 rows):",
        "invalid_email",
        "row 3: column email: 'not-an-email'",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
    let json = jobs::job_json(&job);
    assert_eq!(json["errors"]["codes"][0]["code"], "invalid_email");
    assert_eq!(json["errors"]["codes"][0]["examples"][0]["row"], 3);
    assert_eq!(json["progress"]["percent"], 100);
    assert_eq!(json["can_revert"], true);
    // No download token, no customer's rows.
    assert!(json.get("download_token").is_none() && json.get("preview").is_none());

    let unknown = jobs::show(&h.aws, t.id(), "no-such-job").await.unwrap_err();
    assert!(
        unknown.to_string().contains("no job 'no-such-job'"),
        "{unknown}"
    );
}

#[tokio::test]
async fn a_rotated_key_is_taken_by_the_api_and_the_old_one_is_refused() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let before = tenants::existing(&h.aws, t.id()).await.unwrap();
    let (tenant, key) = tenants::rotate_key(&h.aws, t.id()).await.unwrap();
    assert_ne!(tenant.key_fingerprint(), before.key_fingerprint());
    assert!(tenants::key_output(&tenant, &key, false).contains(&key));

    let old = console::api(&h.aws, Method::GET, "/imports", Some(&t.api_key), None)
        .await
        .unwrap();
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{}", old.text());
    let new = console::api(&h.aws, Method::GET, "/imports", Some(&key), None)
        .await
        .unwrap();
    assert_eq!(new.status, StatusCode::OK, "{}", new.text());
    assert!(tenants::rotate_key(&h.aws, "no-such-tenant").await.is_err());
}

#[tokio::test]
async fn settings_change_only_what_is_named_and_keep_the_key() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let change = SettingsChange {
        recipients: Some(vec!["Ops@Shop.Example".into()]),
        language: Some(Language::Fr),
        default_country: Some("be".into()),
        ..SettingsChange::default()
    };
    tenants::set(&h.aws, t.id(), &change).await.unwrap();
    let stored = tenants::existing(&h.aws, t.id()).await.unwrap();
    assert_eq!(
        stored.recipients(),
        [format!("admin@{}.test", t.id()), "ops@shop.example".into()]
    );
    assert_eq!(
        (stored.language, stored.default_country.as_str()),
        (Language::Fr, "BE")
    );
    assert_eq!(stored.api_key_hash, t.tenant.api_key_hash);
    let text = tenants::tenant_text(&stored);
    assert!(text.contains("emails in:        fr"), "{text}");

    // A new admin, the others left as they are; a bad country changes nothing.
    let admin = SettingsChange {
        admin_email: Some("boss@shop.example".into()),
        ..SettingsChange::default()
    };
    let moved = tenants::set(&h.aws, t.id(), &admin).await.unwrap();
    assert_eq!(
        moved.recipients(),
        ["boss@shop.example", "ops@shop.example"]
    );
    let bad = SettingsChange {
        default_country: Some("XX".into()),
        ..SettingsChange::default()
    };
    assert!(tenants::set(&h.aws, t.id(), &bad).await.is_err());
    assert!(tenants::set(&h.aws, t.id(), &SettingsChange::default())
        .await
        .is_err());
    let json = tenants::tenant_json(&tenants::existing(&h.aws, t.id()).await.unwrap());
    assert_eq!(json["default_country"], "BE");
    assert_eq!(json["recipients"][0], "boss@shop.example");
    assert!(json.get("api_key_hash").is_none());
}

#[tokio::test]
async fn an_upload_event_in_the_ingest_dead_letter_queue_is_listed_then_replayed_and_imported() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let key = h.drop_file(&t, "late.csv", FILE, None).await;
    // The upload's event, moved by hand to the dead-letter queue as five
    // failed splits would have.
    let sqs = h.aws.queues.client();
    let ingest = h.runner.queue_url(Function::Splitter);
    let dead = h.runner.queue_url(Function::DeadUploads);
    let received = sqs
        .receive_message()
        .queue_url(ingest)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let mut moved = 0;
    // The event names the key URL-encoded.
    let (ours, others): (Vec<_>, Vec<_>) = received
        .messages()
        .iter()
        .partition(|m| m.body().unwrap_or_default().contains(t.id()));
    for other in others {
        sqs.change_message_visibility()
            .queue_url(ingest)
            .receipt_handle(other.receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    for message in ours {
        sqs.send_message()
            .queue_url(dead)
            .message_body(message.body().unwrap())
            .send()
            .await
            .unwrap();
        moved += 1;
        sqs.delete_message()
            .queue_url(ingest)
            .receipt_handle(message.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    assert_eq!(moved, 1, "{key} in {:?}", received.messages());

    let queues = dlq::list(&h.aws, 100).await.unwrap();
    let names: Vec<&str> = queues.iter().map(|q| q.source).collect();
    assert_eq!(names, ["ingest", "batches", "finalize"]);
    let ingest_dlq = &queues[0];
    assert_eq!(ingest_dlq.approximate_count, 1);
    let message = &ingest_dlq.messages[0];
    match &message.about {
        About::Upload {
            tenant,
            key: k,
            version,
            ..
        } => {
            assert_eq!(tenant.as_deref(), Some(t.id()));
            assert_eq!(k, &key);
            assert!(version.is_some());
        }
        other => panic!("{other:?}"),
    }
    let text = dlq::list_text(&queues);
    assert!(
        text.contains("ingest dead-letter queue: 1 messages"),
        "{text}"
    );
    assert!(
        text.contains(&message.message_id) && text.contains(t.id()),
        "{text}"
    );
    // Peeked, not consumed: it is there, and visible, for the next reader.
    let again = dlq::list(&h.aws, 100).await.unwrap();
    assert_eq!(again[0].messages.len(), 1, "{again:?}");

    let unknown = dlq::replay_ingest(&h.aws, &["no-such-message".into()])
        .await
        .unwrap();
    assert_eq!(unknown[0].outcome, "not_found");
    let replayed = dlq::replay_ingest(&h.aws, std::slice::from_ref(&message.message_id))
        .await
        .unwrap();
    assert_eq!(replayed.len(), 1);
    assert!(replayed[0].succeeded(), "{replayed:?}");
    assert!(dlq::replay_text(&replayed).contains("replayed"));
    assert!(dlq::list(&h.aws, 100).await.unwrap()[0].messages.is_empty());

    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    assert_eq!(job.applied, 3);
}

#[tokio::test]
async fn the_watchdogs_last_sweep_is_shown_with_what_it_did() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    // A job whose batch was lost: the next sweep of an impatient watchdog
    // closes it as stalled.
    h.drop_file(&t, "lost.csv", "email,amount\nlost@example.com,4\n", None)
        .await;
    h.runner.pump_function(Function::Splitter).await.unwrap();
    pipeline_tests::lose_batches(&h.runner).await;
    let job = h.only_job(&t).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let impatient = h.impatient_clients(1).await;
    let before = chrono::Utc::now();
    let sweep = finalizer::watchdog::sweep(&impatient).await.unwrap();
    let name = format!("{}/{}", t.id(), job.job_id);
    assert!(sweep.stalled.contains(&name), "{sweep:?}");

    let last = watchdog::last_sweep(&h.aws)
        .await
        .unwrap()
        .expect("a sweep recorded");
    assert!(last.started_at >= before);
    assert_eq!(last.jobs, sweep.jobs as u64);
    assert!(last.stalled.first.contains(&name), "{last:?}");
    let now = chrono::Utc::now();
    let text = watchdog::sweep_text(Some(&last), now);
    assert!(text.starts_with("last sweep: "), "{text}");
    let stalled = text.lines().find(|l| l.starts_with("stalled ")).unwrap();
    assert!(stalled.contains(&name), "{text}");
    assert!(!text.contains("late:"), "{text}");
    let json = watchdog::sweep_json(Some(&last), now);
    assert!(json["last_sweep"]["stalled"]["first"]
        .as_array()
        .unwrap()
        .contains(&name.clone().into()));
    assert!(json["age_seconds"].as_i64().unwrap() < 60);
    h.settle(&t).await;
}
