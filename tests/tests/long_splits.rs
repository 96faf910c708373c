//! Splits and finalizations longer than one invocation: the splitter (or
//! the finalizer) stops at a checkpoint before its deadline and hands
//! itself the rest, again and again, and every row is still applied exactly
//! once, batched as one uninterrupted split would batch it, with one
//! processed file and one email.
//!
//! The functions run here with time limits of a second or two and
//! checkpoints every few hundred or thousand rows, so a file of some
//! thousands of rows goes through many invocations, as a file of millions
//! does at the template's settings.

use local_stack::runner::Function;
use local_stack::{console, Runner};
use loyalty_aws::faults::FaultPlan;
use loyalty_aws::Aws;
use pipeline_tests::{check_roles, processed_rows, Harness, TestTenant};
use shared::job::{Job, JobStatus};
use shared::kind::ImportKind;
use shared::membership::apply::CardStore;
use shared::points::{PointsRow, PreviewRow};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const TIME_LIMIT: Duration = Duration::from_secs(1);

/// A runner whose splitter checkpoints every `rows` rows within `limit`,
/// and a count of the splitter's calls.
async fn hurried_runner(h: &Harness, rows: u64, limit: Duration) -> (Runner, FaultPlan) {
    let mut settings = h.aws.settings.clone();
    settings.split_checkpoint_rows = rows;
    let plan = FaultPlan::counting();
    let splitter = Aws::with_faults(settings.clone(), plan.clone()).await;
    let runner = Runner::new(Aws::new(settings).await)
        .expect("runner")
        .with_clients_for(Function::Splitter, splitter)
        .with_timeout_for(Function::Splitter, limit);
    (runner, plan)
}

/// As [`hurried_runner`], the finalizer too: it looks at its deadline
/// every `finalize_rows` rows, within `finalize_limit` (its lease a little
/// longer, so that a run cut off is soon taken over). Returns a count of
/// its calls too.
async fn all_hurried_runner(
    h: &Harness,
    (rows, limit): (u64, Duration),
    (finalize_rows, finalize_limit): (u64, Duration),
) -> (Runner, FaultPlan, FaultPlan) {
    let mut settings = h.aws.settings.clone();
    settings.finalize_boundary_rows = finalize_rows;
    settings.finalize_lease_seconds = finalize_limit.as_secs() as i64 + 2;
    let plan = FaultPlan::counting();
    let finalizer = Aws::with_faults(settings, plan.clone()).await;
    let (runner, splitter) = hurried_runner(h, rows, limit).await;
    let runner = runner
        .with_clients_for(Function::Finalizer, finalizer)
        .with_timeout_for(Function::Finalizer, finalize_limit);
    (runner, splitter, plan)
}

/// Runs of the finalizer: each run that stops hands itself the rest (its
/// one SendMessage), and the last does not.
fn finalizer_runs(plan: &FaultPlan) -> usize {
    1 + plan
        .calls()
        .iter()
        .filter(|c| *c == "SQS:SendMessage")
        .count()
}

/// How many times the splitter took the file up: each invocation opens it
/// (the first three times: its preview, its hash, its split; a later one
/// twice: its header, and the rest from the checkpoint). An invocation cut
/// off by its time limit counts too: its retry goes on from the checkpoint.
fn invocations(plan: &FaultPlan) -> usize {
    plan.calls().iter().filter(|c| *c == "S3:GetObject").count() / 2
}

/// Counts the batches of a split.
struct Batches(u64);

impl shared::split::SplitSink<PointsRow> for Batches {
    type Error = std::convert::Infallible;
    fn preview(&mut self, _: ImportKind, _: &[PreviewRow]) -> Result<(), Self::Error> {
        Ok(())
    }
    fn failed(&mut self, _: &[shared::outcome::RowOutcome]) -> Result<(), Self::Error> {
        Ok(())
    }
    fn batch(&mut self, _: shared::batch::Batch<PointsRow>) -> Result<(), Self::Error> {
        self.0 += 1;
        Ok(())
    }
}

async fn only_job_settled(h: &Harness, runner: &Runner, t: &TestTenant) -> Job {
    runner
        .run_until_idle(Some(t.id()), Duration::from_secs(900))
        .await
        .expect("the pipeline settles");
    let job = h.only_job(t).await;
    assert_eq!(h.processed_keys(t).await.len(), 1);
    assert_eq!(h.emails_about(&job.job_id).await.len(), 1);
    job
}

#[tokio::test(flavor = "multi_thread")]
async fn a_points_file_split_over_many_invocations_applies_every_row_once() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let rows = 12_000u64;
    let mut file = String::from("email,amount\n");
    let mut expected: HashMap<String, i64> = HashMap::new();
    for n in 1..=rows {
        let who = format!("c{}@x.test", n % 700);
        if n.is_multiple_of(50) {
            file.push_str(&format!("{who},1.5\n"));
        } else {
            let amount = (n % 9 + 1) as i64;
            *expected.entry(who.clone()).or_default() += amount;
            file.push_str(&format!("{who},{amount}\n"));
        }
    }
    let (runner, plan) = hurried_runner(&h, 200, TIME_LIMIT).await;
    h.drop_file(&t, "long.csv", &file, None).await;
    let job = only_job_settled(&h, &runner, &t).await;

    let invoked = invocations(&plan);
    assert!(invoked >= 10, "{invoked} invocations");
    println!("{rows} rows split in about {invoked} invocations");
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    assert_eq!((job.total_rows, job.invalid_rows), (rows, rows / 50));
    assert_eq!((job.applied, job.failed), (rows - rows / 50, rows / 50));
    assert_eq!(job.credited as i64, expected.values().sum::<i64>());

    // The batches are those of one uninterrupted split.
    let mut whole = Batches(0);
    let request = shared::split::SplitRequest {
        tenant_id: t.id().to_owned(),
        job_id: job.job_id.clone(),
        kind: None,
        reason: job.reason.clone(),
        dry_run: false,
        smile_mode: shared::smile::Mode::Add,
        default_country: "FR".into(),
        rows_per_batch: h.aws.settings.rows_per_batch,
        shards: h.aws.settings.shards,
        checkpoint_rows: 200,
        reverts: None,
    };
    let summary = shared::split::split(file.as_bytes(), &request, &mut whole).unwrap();
    assert_eq!(
        (job.batches_total, whole.0),
        (summary.batches, summary.batches)
    );

    // Each row once, in file order per customer: its balance after is the
    // running sum of that customer's credits.
    let mut running: HashMap<String, i64> = HashMap::new();
    let processed = h.processed_file(&job).await;
    let rows_read = processed_rows(&processed);
    assert_eq!(rows_read.len() as u64, rows);
    for (n, row) in rows_read.iter().enumerate() {
        let n = n as u64 + 1;
        if n.is_multiple_of(50) {
            assert_eq!(row.get("error_code"), "invalid_amount", "row {n}");
            continue;
        }
        let balance = running.entry(row.get("email").to_owned()).or_default();
        *balance += (n % 9 + 1) as i64;
        assert_eq!(row.get("balance_after"), balance.to_string(), "row {n}");
    }
    for who in ["c1@x.test", "c2@x.test", "c699@x.test"] {
        let customer = format!("email:{who}");
        assert_eq!(h.balance(&t, &customer).await, expected[who], "{who}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_card_code_file_of_200000_rows_split_and_finalized_within_two_seconds_a_run() {
    // One row in a hundred makes a card and one in a thousand updates one
    // made earlier (the emulator writes a few dozen cards a second); the
    // others are refused as they are split, each for one bad cell.
    let h = Harness::start().await;
    let t = h.tenant().await;
    let config = shared::test_support::SAMPLE_MEMBERSHIPS;
    console::configure_memberships(&h.aws, t.id(), config)
        .await
        .expect("membership configuration");
    let rows = 200_000u64;
    let long_code = "L".repeat(shared::membership::MAX_CARD_CODE_CHARS + 1);
    let mut file = String::from(
        "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier\n",
    );
    // (status, error code, card code) of each row, as the processed file must say.
    let mut expected: Vec<(&str, &str, String)> = Vec::with_capacity(rows as usize);
    for n in 1..=rows {
        if n.is_multiple_of(100) {
            file.push_str(&format!("L-{n};l{n}@x.test;1;;;;\n"));
            expected.push(("applied", "", format!("L-{n}")));
        } else if n % 1000 == 550 {
            let m = n - 50;
            file.push_str(&format!("L-{m};l{m}@x.test;;;;1990-01-01;\n"));
            expected.push(("applied", "", format!("L-{m}")));
        } else {
            let (line, code) = match n % 3 {
                0 => (format!("C-{n};l{n}@x.test;1;2026-02-31;;;"), "invalid_date"),
                1 => (format!("C-{n};l{n}@x.test;one;;;;"), "invalid_number"),
                _ => (format!("{long_code};l{n}@x.test;1;;;;"), "value_too_long"),
            };
            file.push_str(&line);
            file.push('\n');
            expected.push(("failed", code, String::new()));
        }
    }
    let limit = Duration::from_secs(2);
    let (runner, _, plan) = all_hurried_runner(
        &h,
        (2_000, limit),
        (shared::processed::BOUNDARY_ROWS, limit),
    )
    .await;
    h.drop_file(
        &t,
        "memberships/demoshop_cardcode_long_20260110.csv",
        &file,
        None,
    )
    .await;
    let job = only_job_settled(&h, &runner, &t).await;
    let runs = finalizer_runs(&plan);
    println!("{rows} card rows finalized in {runs} runs");
    assert!(runs >= 5, "{runs} runs of the finalizer");
    let made = rows / 100 + rows / 1000;
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "{job:?}");
    assert_eq!((job.total_rows, job.applied), (rows, made));
    assert!(job.finalize_checkpoint.is_none());

    // Every row once, in file order, with its outcome.
    let processed = h.processed_file(&job).await;
    let read = processed_rows(&processed);
    assert_eq!(read.len() as u64, rows);
    for (n, (row, (status, code, card))) in read.iter().zip(&expected).enumerate() {
        let got = (
            row.get("status"),
            row.get("error_code"),
            row.get("applied_card_code"),
        );
        assert_eq!(got, (*status, *code, card.as_str()), "row {}", n + 1);
    }
    // The errors by code, gathered over every run of the finalizer: each
    // code's count and first three rows, in the order the codes came.
    let mut by_code: Vec<(&str, u64, Vec<u64>)> = Vec::new();
    for (row, (_, code, _)) in (1..).zip(&expected) {
        if code.is_empty() {
            continue;
        }
        match by_code.iter_mut().find(|c| c.0 == *code) {
            Some((_, count, examples)) => {
                *count += 1;
                if examples.len() < 3 {
                    examples.push(row);
                }
            }
            None => by_code.push((code, 1, vec![row])),
        }
    }
    let digest: Vec<(&str, u64, Vec<u64>)> = job
        .errors
        .codes
        .iter()
        .map(|c| {
            let rows = c.examples.iter().map(|e| e.row).collect();
            (c.code.as_str(), c.count, rows)
        })
        .collect();
    assert_eq!(digest, by_code);

    // A card made once and updated once is at its second version.
    for (code, version) in [("L-100", 1), ("L-500", 2), ("L-199500", 2), ("L-200000", 1)] {
        let stored = CardStore::card(&h.aws.tables, t.id(), code)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{code}"));
        assert_eq!(stored.version, version, "{code}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_files_content_read_over_several_invocations_is_known_as_the_same_file() {
    // 24 MiB in 300 rows (each a 80 KB cell that is no email): reading it
    // for its identity takes the hurried splitter several invocations.
    let h = Harness::start().await;
    let t = h.tenant().await;
    let mut file = String::from("email,amount\n");
    for n in 0..300 {
        file.push_str(&"x".repeat(80 * 1024));
        file.push_str(&format!("{n}@x.test,5\n"));
    }
    let (runner, plan) = hurried_runner(&h, 200, TIME_LIMIT).await;
    h.drop_file(&t, "wide-cells.csv", &file, None).await;
    let job = only_job_settled(&h, &runner, &t).await;
    assert_eq!((job.total_rows, job.failed), (300, 300));
    let stops = plan
        .calls()
        .iter()
        .filter(|c| *c == "SQS:SendMessage")
        .count()
        - 1;
    assert!(stops >= 1, "the read never stopped");
    // The same bytes read at once, under another name: a duplicate.
    h.drop_file(&t, "wide-cells-again.csv", &file, None).await;
    h.settle(&t).await;
    let again = h
        .jobs(&t)
        .await
        .into_iter()
        .find(|j| j.job_id != job.job_id)
        .unwrap();
    assert_eq!(again.status, JobStatus::Rejected);
    assert!(
        again
            .rejection
            .as_deref()
            .unwrap_or_default()
            .contains("duplicate"),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_of_200000_rows_split_and_finalized_within_two_seconds_a_run() {
    // One row in ten is valid (the emulator applies a few hundred rows a
    // second; the others are refused as they are split). The processed file
    // is over 16 MiB: two parts of its upload and a rest, written over many
    // runs of the finalizer.
    let h = Harness::start().await;
    let t = h.tenant().await;
    let rows = 200_000u64;
    let mut file = String::from("email,amount\n");
    let mut expected: HashMap<String, i64> = HashMap::new();
    for n in 1..=rows {
        let who = format!("c{}@x.test", n % 997);
        if n.is_multiple_of(10) {
            let amount = (n % 7 + 1) as i64;
            *expected.entry(who.clone()).or_default() += amount;
            file.push_str(&format!("{who},{amount}\n"));
        } else {
            file.push_str(&format!("{who},{n}.5\n"));
        }
    }
    let limit = Duration::from_secs(2);
    let (runner, _, plan) = all_hurried_runner(
        &h,
        (2_000, limit),
        (shared::processed::BOUNDARY_ROWS, limit),
    )
    .await;
    h.drop_file(&t, "very-long.csv", &file, None).await;
    let job = only_job_settled(&h, &runner, &t).await;
    // A file this size is spread over more shards than the setting's.
    let least = h.aws.settings.shards;
    assert_eq!(
        job.shards,
        shared::split::shards_for(file.len() as u64, least)
    );
    assert!(job.shards > least, "{} shards", job.shards);

    // Each run that stops hands itself the rest (its one SendMessage).
    let calls = plan.calls();
    let runs = finalizer_runs(&plan);
    let parts = calls.iter().filter(|c| *c == "S3:UploadPart").count();
    println!("{rows} rows finalized in {runs} runs, {parts} parts uploaded");
    assert!(runs >= 5, "{runs} runs");
    assert!(parts >= 2, "{parts} parts");
    assert!(
        calls.iter().any(|c| c == "S3:ListParts"),
        "an upload taken up again"
    );
    // Its role allows what a resumed finalizer does (its carry objects,
    // the upload's parts listed).
    let accesses = BTreeMap::from([("FinalizerFunction", plan.accesses().into_iter().collect())]);
    check_roles(t.id(), &accesses);
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    assert_eq!((job.applied, job.failed), (rows / 10, rows - rows / 10));
    assert_eq!(job.credited as i64, expected.values().sum::<i64>());
    assert!(job.finalize_checkpoint.is_none());

    // Every row once, in order, its balance the running sum of its customer's.
    let processed = h.processed_file(&job).await;
    assert!(processed.len() > 16 << 20, "{} bytes", processed.len());
    let read = processed_rows(&processed);
    assert_eq!(read.len() as u64, rows);
    let mut running: HashMap<String, i64> = HashMap::new();
    for (n, row) in read.iter().enumerate() {
        let n = n as u64 + 1;
        assert_eq!(row.get("email"), format!("c{}@x.test", n % 997), "row {n}");
        if !n.is_multiple_of(10) {
            assert_eq!(row.get("error_code"), "invalid_amount", "row {n}");
            continue;
        }
        let balance = running.entry(row.get("email").to_owned()).or_default();
        *balance += (n % 7 + 1) as i64;
        assert_eq!(row.get("balance_after"), balance.to_string(), "row {n}");
    }
    for who in ["c1@x.test", "c996@x.test"] {
        let customer = format!("email:{who}");
        assert_eq!(h.balance(&t, &customer).await, expected[who], "{who}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_split_going_on_after_a_deploy_changed_the_shards_keeps_its_own() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let rows = 3_000u64;
    let mut file = String::from("email,amount\n");
    for n in 1..=rows {
        file.push_str(&format!("s{}@x.test,1\n", n % 40));
    }
    // Before the deploy: 2 shards, a checkpoint every 50 rows, and too
    // little time for the whole file: the split stops at a checkpoint.
    let mut before = h.aws.settings.clone();
    before.shards = 2;
    before.split_checkpoint_rows = 50;
    let hurried = Runner::new(Aws::new(before).await)
        .expect("runner")
        .with_timeout_for(Function::Splitter, TIME_LIMIT);
    h.drop_file(&t, "deploy.csv", &file, None).await;
    let mut checkpointed = None;
    for _ in 0..50 {
        hurried
            .pump_function(Function::Splitter)
            .await
            .expect("pump");
        let jobs = h.jobs(&t).await;
        if let Some(at) = jobs.first().and_then(|j| j.split_checkpoint.clone()) {
            checkpointed = Some(at);
            break;
        }
    }
    let jobs = h.jobs(&t).await;
    let at = checkpointed.unwrap_or_else(|| panic!("no checkpoint: {jobs:#?}"));
    assert_eq!(at.shards, Some(2));
    assert!(at.row < rows);

    // After it: 5 shards. The split goes on over its own 2.
    let mut after = h.aws.settings.clone();
    after.shards = 5;
    let runner = Runner::new(Aws::new(after).await).expect("runner");
    let job = only_job_settled(&h, &runner, &t).await;
    assert_eq!(job.shards, 2);
    assert_eq!((job.total_rows, job.applied), (rows, rows));
    // Each customer's rows in file order: its balance after each is its count.
    let mut running: HashMap<String, i64> = HashMap::new();
    for (n, row) in processed_rows(&h.processed_file(&job).await)
        .iter()
        .enumerate()
    {
        let balance = running.entry(row.get("email").to_owned()).or_default();
        *balance += 1;
        assert_eq!(
            row.get("balance_after"),
            balance.to_string(),
            "row {}",
            n + 1
        );
    }
}
