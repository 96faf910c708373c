//! The same file twice: the same S3 event delivered twice makes one job
//! (`points_import.rs`); the same content uploaded twice, under any name, is
//! reported as a duplicate and applied once, unless the upload asks for it;
//! two contents uploaded to one name are two imports.

use loyalty_aws::faults::FaultPlan;
use loyalty_aws::s3_event::{object_created_event, ObjectCreated};
use loyalty_aws::Aws;
use pipeline_tests::{check_roles, Harness, TestTenant};
use shared::job::JobStatus;
use std::collections::BTreeMap;

const FILE: &str = "email,amount\nrae@example.com,30\nsol@example.com,12\n";

#[tokio::test(flavor = "multi_thread")]
async fn the_same_content_uploaded_twice_is_reported_as_a_duplicate_and_applied_once() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "march/bonus.csv", FILE, None).await;
    h.settle(&t).await;
    h.drop_file(&t, "march/bonus (copy).csv", FILE, None).await;
    h.settle(&t).await;
    let jobs = h.jobs(&t).await;
    assert_eq!(jobs.len(), 2);
    let (first, second) = if jobs[0].filename == "bonus.csv" {
        (&jobs[0], &jobs[1])
    } else {
        (&jobs[1], &jobs[0])
    };
    assert_eq!(first.status, JobStatus::Completed);
    assert_eq!(second.status, JobStatus::Rejected);
    let why = second.rejection.as_deref().unwrap_or_default();
    assert!(
        why.starts_with("duplicate file") && why.contains(&first.job_id),
        "{why}"
    );
    assert_eq!(h.balance(&t, "email:rae@example.com").await, 30);
    assert_eq!(h.ledger_len(&t, "email:rae@example.com").await, 1);
    // Its preview was written before the whole file was read to check it.
    assert_eq!(second.preview.len(), FILE.lines().count() - 1);
    let emails = h.emails_about(&second.job_id).await;
    assert_eq!(emails.len(), 1);
    assert_eq!(
        emails[0].destinations.to,
        std::slice::from_ref(&t.tenant.admin_email)
    );
    assert!(
        emails[0].body.contains("duplicate file"),
        "{}",
        emails[0].body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_is_applied_again_when_the_upload_asks_for_it() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "bonus.csv", FILE, None).await;
    h.settle(&t).await;
    // From the console, with the object's metadata...
    h.drop_file_with(&t, "bonus-again.csv", FILE, &[("allow-duplicate", "true")])
        .await;
    h.settle(&t).await;
    // ... and through the API.
    let request = serde_json::json!({
        "kind": "points", "reason": "again", "filename": "bonus.csv",
        "size_bytes": FILE.len(), "allow_duplicate": true,
    });
    h.api_import_with(&t, request, FILE).await;
    h.settle(&t).await;
    let jobs = h.jobs(&t).await;
    assert_eq!(jobs.len(), 3);
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Completed),
        "{jobs:?}"
    );
    assert_eq!(h.balance(&t, "email:rae@example.com").await, 90);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_file_or_a_dry_run_does_not_make_the_next_upload_a_duplicate() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    // Rejected for its header twice, for the header both times: nothing was
    // applied the first time, so the second is no duplicate.
    let bad = "emial,amount\nrae@example.com,30\n";
    h.drop_file(&t, "bad.csv", bad, None).await;
    h.settle(&t).await;
    h.drop_file(&t, "bad-again.csv", bad, None).await;
    h.settle(&t).await;
    // A dry run changes nothing, so the real import after it is no duplicate.
    h.api_import(&t, "points", "bonus.csv", FILE, true).await;
    h.settle(&t).await;
    h.drop_file(&t, "bonus.csv", FILE, None).await;
    h.settle(&t).await;
    let jobs = h.jobs(&t).await;
    let rejections: Vec<&str> = jobs.iter().filter_map(|j| j.rejection.as_deref()).collect();
    assert_eq!(rejections.len(), 2, "{jobs:?}");
    assert!(
        rejections.iter().all(|r| r.contains("emial")),
        "{rejections:?}"
    );
    assert_eq!(h.balance(&t, "email:rae@example.com").await, 30);
}

// ---------- one key, two uploads ----------

const V1: &str = "email,amount\nv1@example.com,10\n";
const V2: &str = "email,amount\nv2@example.com,20\n";

/// Each version's rows applied once, each job completed with its email.
async fn both_versions_imported(h: &Harness, t: &TestTenant) {
    let jobs = h.jobs(t).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Completed, "{job:?}");
        assert_eq!(h.emails_about(&job.job_id).await.len(), 1);
    }
    assert_eq!(h.balance(t, "email:v1@example.com").await, 10);
    assert_eq!(h.balance(t, "email:v2@example.com").await, 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_drops_to_one_key_before_the_splitter_runs_are_both_imported() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "same-key.csv", V1, None).await;
    h.drop_file(&t, "same-key.csv", V2, None).await;
    h.settle(&t).await;
    both_versions_imported(&h, &t).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_naming_no_version_imports_each_version_of_its_key_once() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let key = h.drop_file(&t, "same-key.csv", V1, None).await;
    h.drop_file(&t, "same-key.csv", V2, None).await;
    // An event as `cargo lambda invoke` with a sample sends it: no version.
    let event = object_created_event(&ObjectCreated {
        bucket: h.aws.objects.bucket().to_owned(),
        key,
        version_id: None,
        size: None,
        sequencer: None,
    });
    let plan = FaultPlan::counting();
    let splitter = Aws::with_faults(h.aws.settings.clone(), plan.clone()).await;
    splitter::handle(&splitter, event.clone()).await.unwrap();
    assert_eq!(h.jobs(&t).await.len(), 2, "a job for each version");
    // Its role lets it list the key's versions.
    let accesses = plan.accesses().into_iter().collect();
    check_roles(t.id(), &BTreeMap::from([("SplitterFunction", accesses)]));
    // Again, and then the emulator's own events naming each version.
    splitter::handle(&h.aws, event).await.unwrap();
    h.settle(&t).await;
    both_versions_imported(&h, &t).await;
}
