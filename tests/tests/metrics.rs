//! The functions' metrics (CloudWatch Embedded Metric Format lines, kept in
//! memory instead of stdout) against the jobs' own counts: an import split,
//! applied in batches and emailed; one whose batch failed on every
//! delivery and was given up from the dead-letter queue; the watchdog's
//! sweep. Dimensions stay the function and the kind, never an id.

use local_stack::runner::{Function, Runner};
use loyalty_aws::faults::FaultPlan;
use loyalty_aws::metrics::Metrics;
use loyalty_aws::Aws;
use pipeline_tests::{Harness, TestTenant};
use serde_json::Value;
use shared::job::Job;
use std::time::Duration;

/// 30 credits, 5 debits (one of which cannot be afforded), 2 invalid rows.
fn campaign() -> String {
    let mut file = String::from("email,amount,operation\n");
    for c in 0..30 {
        file.push_str(&format!("m{c}@metrics.test,10,CR\n"));
    }
    for c in 0..4 {
        file.push_str(&format!("m{c}@metrics.test,3,DR\n"));
    }
    file.push_str("nobody@metrics.test,5,DR\nnot-an-email,5,CR\n,5,CR\n");
    file
}

/// The same clients, their metrics kept in memory.
async fn recording(aws: &Aws, plan: Option<FaultPlan>) -> (Aws, Metrics) {
    let mut aws = match plan {
        Some(plan) => Aws::with_faults(aws.settings.clone(), plan).await,
        None => aws.clone(),
    };
    let metrics = Metrics::in_memory(aws.settings.metrics_namespace.clone());
    aws.metrics = metrics.clone();
    (aws, metrics)
}

/// The documents about `job` that carry `value`.
fn about<'a>(documents: &'a [Value], job: &str, value: &str) -> Vec<&'a Value> {
    documents
        .iter()
        .filter(|d| d["job"] == job && d.get(value).is_some())
        .collect()
}

fn sum(documents: &[&Value], value: &str) -> f64 {
    documents.iter().filter_map(|d| d[value].as_f64()).sum()
}

/// Runs the pipeline until the tenant's imports settle: the job then, and
/// every metric recorded so far.
async fn settle(
    h: &Harness,
    runner: &Runner,
    tenant: &TestTenant,
    job_id: &str,
    metrics: &Metrics,
) -> (Job, Vec<Value>) {
    runner
        .run_until_idle(Some(tenant.id()), Duration::from_secs(120))
        .await
        .expect("the import settles");
    (h.job(tenant, job_id).await, metrics.recorded())
}

#[tokio::test]
async fn the_functions_metrics_add_up_to_the_jobs_own_counts() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let (aws, metrics) = recording(&h.aws, None).await;
    let mut small = aws.clone();
    small.settings.rows_per_batch = 8;
    let runner = Runner::new(small).expect("runner");

    let job_id = h
        .api_import(&tenant, "points", "campaign.csv", campaign(), false)
        .await;
    let (done, documents) = settle(&h, &runner, &tenant, &job_id, &metrics).await;

    let split = about(&documents, &job_id, "SplitRows");
    assert_eq!(sum(&split, "SplitRows"), done.total_rows as f64);
    assert!(split
        .iter()
        .all(|d| d["Kind"] == "points" && d["Function"] == "splitter"));
    assert!(sum(&split, "SplitRowsPerSecond") > 0.0);

    let batches = about(&documents, &job_id, "BatchRows");
    assert_eq!(batches.len() as u64, done.batches_total);
    assert_eq!(
        sum(&batches, "BatchRows"),
        (done.total_rows - done.invalid_rows) as f64
    );
    assert!(batches
        .iter()
        .all(|d| d["BatchSeconds"].as_f64() >= Some(0.0)));
    assert_eq!(sum(&batches, "BatchRetries"), 0.0);
    assert!(about(&documents, &job_id, "DeadBatches").is_empty());

    let finished = about(&documents, &job_id, "RowsApplied");
    assert_eq!(finished.len(), 1, "{finished:#?}");
    let finished = finished[0];
    assert_eq!(finished["RowsApplied"].as_f64(), Some(done.applied as f64));
    assert_eq!(finished["RowsFailed"].as_f64(), Some(done.failed as f64));
    assert_eq!(finished["RowsSkipped"].as_f64(), Some(done.skipped as f64));
    assert_eq!(finished["RowsNotProcessed"].as_f64(), Some(0.0));
    assert_eq!(finished["PointsCredited"].as_f64(), Some(300.0));
    assert_eq!(finished["PointsDebited"].as_f64(), Some(12.0));
    assert_eq!(done.credited, 300);
    assert_eq!((done.applied, done.failed), (34, 3));
    assert!(finished["UploadToEmailSeconds"].as_f64() > Some(0.0));
    assert_eq!(finished["tenant"], tenant.id());
    assert_eq!(about(&documents, &job_id, "EmailsSent").len(), 1);

    // Every value is published with its dimensions and as a total; no id is
    // a dimension.
    for document in &documents {
        let sets = &document["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        let sets = sets.as_array().expect("dimension sets");
        assert_eq!(sets.last(), Some(&Value::Array(Vec::new())), "{document}");
        for name in sets[0].as_array().expect("a set") {
            assert!(
                ["Function", "Kind", "Reason"].contains(&name.as_str().unwrap_or_default()),
                "{document}"
            );
        }
    }
}

#[tokio::test]
async fn a_batch_given_up_and_a_watchdog_sweep_are_counted() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let (aws, metrics) = recording(&h.aws, None).await;
    let (failing, _) = recording(
        &h.aws,
        Some(FaultPlan::fail_always("DynamoDB:TransactWriteItems")),
    )
    .await;
    let failing = Aws {
        metrics: metrics.clone(),
        ..failing
    };
    let runner = Runner::new(aws.clone())
        .expect("runner")
        .with_clients_for(Function::Processor, failing);
    let job_id = h
        .api_import(
            &tenant,
            "points",
            "fails.csv",
            "email,amount\nf1@metrics.test,3\nf2@metrics.test,4\n",
            false,
        )
        .await;
    let (done, documents) = settle(&h, &runner, &tenant, &job_id, &metrics).await;

    let dead = about(&documents, &job_id, "DeadBatches");
    assert_eq!(dead.len() as u64, done.batches_total, "{documents:#?}");
    assert!(dead.iter().all(|d| d["BatchRetries"].as_f64() >= Some(1.0)));
    let finished = about(&documents, &job_id, "RowsApplied");
    assert_eq!(finished[0]["RowsApplied"].as_f64(), Some(0.0));
    assert_eq!(finished[0]["RowsFailed"].as_f64(), Some(done.failed as f64));
    assert_eq!(done.failed, 2);

    let sweep = finalizer::watchdog::sweep(&aws).await.expect("sweep");
    let recorded = metrics.recorded();
    let swept = recorded
        .iter()
        .rev()
        .find(|d| d.get("JobsStalled").is_some())
        .expect("the sweep's metrics");
    assert_eq!(swept["Function"], "watchdog");
    assert_eq!(swept["UnfinishedJobs"].as_f64(), Some(sweep.jobs as f64));
    assert_eq!(
        swept["JobsStalled"].as_f64(),
        Some(sweep.stalled.len() as f64)
    );
}
