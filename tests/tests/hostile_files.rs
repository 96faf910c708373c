//! Hostile files dropped into the pipeline: the rows around a bad one are
//! imported, the bad one is reported, and nothing it carries is stored
//! whole where it cannot fit (a DynamoDB item holds 400 KB at most).

use pipeline_tests::{processed_rows, Harness};
use shared::job::JobStatus;

#[tokio::test(flavor = "multi_thread")]
async fn a_ten_megabyte_cell_fails_its_row_and_the_file_completes() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let mut file = b"email,amount\na@x.io,5\n".to_vec();
    file.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    file.extend(b"@x.io,7\nb@x.io,9\n");
    h.drop_file(&t, "huge-cell.csv", &file, None).await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    assert_eq!((job.applied, job.failed), (2, 1));
    // The preview on the job shows the start of the cell.
    assert!(job.preview[1].identifier.chars().count() <= 101);
    let processed = h.processed_file(&job).await;
    let rows = processed_rows(&processed);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].get("error_code"), "invalid_email");
    assert!(rows[1].get("error_message").len() < 2_000);
    // The processed file keeps the row as it was written.
    assert!(rows[1].get("email").len() > 10 * 1024 * 1024);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_of_a_million_columns_is_rejected_with_a_short_email() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let mut file = b"email,amount".to_vec();
    for n in 0..1_000_000 {
        file.extend(format!(",c{n}").as_bytes());
    }
    file.extend(b"\na@x.io,5\n");
    h.drop_file(&t, "wide.csv", &file, None).await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(job.status, JobStatus::Rejected);
    let why = job.rejection.as_deref().unwrap_or_default();
    assert!(why.contains("'c0'") && why.len() < 2_000, "{why}");
    let emails = h.emails_about(&job.job_id).await;
    assert_eq!(emails.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_larger_than_any_file_may_be_is_rejected_before_anything_is_applied() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    // The limit (1 GiB in the template) lowered to 100 bytes for the test.
    let mut settings = h.aws.settings.clone();
    settings.max_file_bytes = 100;
    let runner = local_stack::Runner::new(loyalty_aws::Aws::new(settings).await).unwrap();
    let mut file = String::from("email,amount\n");
    for n in 0..10 {
        file.push_str(&format!("big{n}@x.io,5\n"));
    }
    h.drop_file(&t, "big.csv", &file, None).await;
    runner
        .run_until_idle(Some(t.id()), std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let job = h.only_job(&t).await;
    assert_eq!(job.status, JobStatus::Rejected);
    let why = job.rejection.clone().unwrap_or_default();
    assert!(
        why.contains(&format!(
            "the file is {} bytes, more than the 100 bytes",
            file.len()
        )),
        "{why}"
    );
    assert_eq!(h.balance(&t, "email:big0@x.io").await, 0);
    let emails = h.emails_about(&job.job_id).await;
    assert_eq!(emails.len(), 1);
    assert!(
        emails[0].body.contains("split it into several files"),
        "{}",
        emails[0].body
    );
}
