//! What the functions log while they import files full of personal data:
//! flat JSON lines that name the tenant and the job at their top level,
//! with their level and time, and never a customer's email
//! address, phone number or card code, not even where a file quotes one in a
//! rejected header, a refused row or its own name.
//!
//! One test in this binary: it installs the functions' own JSON subscriber
//! (the one they use on Lambda) over every thread, writing to memory.

use lambda_http::http::Method;
use local_stack::console;
use pipeline_tests::Harness;
use serde_json::Value;
use shared::test_support::SAMPLE_MEMBERSHIPS;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Personal data in the files below, in every form it could be logged in.
const SECRETS: &[&str] = &[
    "alice.secret@example.com",
    "ALICE.Secret@Example.com",
    "bob.secret@@example.com",
    "carol.secret@example.com",
    "dave.secret@example.com",
    "jane.secret@example.com",
    "06 12 34 56 78",
    "0612345678",
    "+33612345678",
    "33612345678",
    "07 00 00",
    "LOYAL-778899",
    "4006381333931",
];

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_json_with_tenant_and_job_and_no_personal_data() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        loyalty_aws::logging::json(tracing_subscriber::EnvFilter::new("info"), move || {
            writer.clone()
        });
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let h = Harness::start().await;
    let t = h.tenant().await;
    console::configure_memberships(&h.aws, t.id(), SAMPLE_MEMBERSHIPS)
        .await
        .expect("membership configuration");

    // Through the API: good rows, a malformed address and a short mobile.
    let points = "email,mobile,amount\n\
        ALICE.Secret@Example.com,,100\n\
        ,06 12 34 56 78,25\n\
        bob.secret@@example.com,,5\n\
        ,07 00 00,5\n";
    h.api_import(&t, "points", "campaign.csv", points, false)
        .await;
    // A file without its header: its first row is read as the header.
    h.drop_file(&t, "no-header.csv", "carol.secret@example.com,100\n", None)
        .await;
    // A file named after a customer.
    h.drop_file(
        &t,
        "dave.secret@example.com.csv",
        "email,amount\ndave.secret@example.com,5\n",
        None,
    )
    .await;
    // Card codes, one of them an EAN-13, and a refused date.
    let cards = "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier\n\
        \"LOYAL-778899\";\"jane.secret@example.com\";\"1\";;;;\"2\"\n\
        \"4006381333931\";\"+33612345678\";\"1\";\"not a date\";;;\"2\"\n";
    h.drop_file(
        &t,
        "memberships/demoshop_cardcode_customers_20260110.csv",
        cards,
        None,
    )
    .await;
    h.settle(&t).await;
    let jobs = h.jobs(&t).await;
    assert_eq!(jobs.len(), 4);
    // The API's status route logs nothing personal either.
    for job in &jobs {
        h.api(&t, Method::GET, &format!("/imports/{}", job.job_id), None)
            .await;
    }

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).expect("UTF-8 logs");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(lines.len() > 10, "{text}");
    for secret in SECRETS {
        let found: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(found.is_empty(), "'{secret}' is logged: {found:#?}");
    }

    // The lines about a job name its tenant and the job.
    let about = |message: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["message"].as_str() == Some(message))
            .collect()
    };
    let job_ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    for message in [
        "file rejected",
        "batch applied",
        "job finalized and admin emailed",
    ] {
        let found = about(message);
        assert!(!found.is_empty(), "no '{message}' line: {text}");
        for line in found {
            assert_eq!(line["tenant"].as_str(), Some(t.id()), "{line}");
            let job = line["job"].as_str().unwrap_or_default();
            assert!(job_ids.contains(&job), "{line}");
            assert_eq!(line["level"], "INFO", "{line}");
            assert!(line["timestamp"].is_string(), "{line}");
        }
    }
    // The rejection is logged with its reason, the header's cell masked.
    let rejected = about("file rejected");
    assert!(
        rejected
            .iter()
            .any(|l| l["why"].as_str().is_some_and(|w| w.contains("chars>"))),
        "{rejected:#?}"
    );
}
