//! A seeded soak: many imports (credits, debits, expiring credits, invalid
//! rows, customers shared by imports running at the same time, files cut
//! into many small batches) through a pipeline whose AWS calls fail at
//! random, whose queue messages are shuffled and delivered again, whose
//! splitter and finalizer are given at most a second now and then (cut
//! off, or stopping at a checkpoint and going on), where every file's
//! second batch always fails (among the others of its group), with two
//! runners competing for the messages; then every promise is checked
//! against the tables, the bucket and the sent emails.
//!
//! `SOAK_SEED=<n>` replays a run (the seed is printed first); `SOAK_IMPORTS`
//! sets how many imports (200 by default, what CI runs).

use local_stack::console;
use local_stack::runner::{Chaos, Function};
use local_stack::Runner;
use loyalty_aws::faults::FaultPlan;
use loyalty_aws::Aws;
use pipeline_tests::{processed_rows, Harness, TestTenant};
use shared::identifier::CustomerRef;
use shared::job::Job;
use shared::points::Operation;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Imports dropped at once; two of its tenants share them.
const WAVE: usize = 10;
/// Customers per tenant, so imports keep meeting on the same wallets.
const CUSTOMERS: usize = 6;
/// Chance that any one AWS call fails (before or after it takes effect).
const FAULT_RATE: f64 = 0.02;
/// Chance that a handled message is delivered again.
const REDELIVERY_RATE: f64 = 0.05;
/// How often the splitter or the finalizer gets a time limit of at most a
/// second: it stops at a checkpoint and goes on in its next run, or is cut
/// off between two.
const HURRY_RATE: f64 = 0.1;

struct Import {
    tenant: usize,
    filename: String,
    rows: Vec<Row>,
}

struct Row {
    customer: usize,
    operation: Operation,
    amount: i64,
    /// `1,000` instead of a number: must fail as `invalid_amount`.
    invalid: bool,
}

fn customer_ref(c: usize) -> CustomerRef {
    if c.is_multiple_of(2) {
        CustomerRef::Email(format!("c{c}@soak.test"))
    } else {
        CustomerRef::CustomerId(format!("C{c}"))
    }
}

fn csv(import: &Import, rng: &mut fastrand::Rng, with_expiry: bool) -> String {
    let mut text = String::from("email,customer_id,amount,operation");
    text.push_str(if with_expiry {
        ",expire_in_days\n"
    } else {
        "\n"
    });
    for row in &import.rows {
        let (email, id) = match customer_ref(row.customer) {
            CustomerRef::Email(e) => (e, String::new()),
            CustomerRef::CustomerId(c) => (String::new(), c),
            CustomerRef::Mobile(_) => unreachable!("the soak uses emails and ids"),
        };
        let amount = if row.invalid {
            "\"1,000\"".to_owned()
        } else {
            row.amount.to_string()
        };
        let op = match row.operation {
            Operation::Credit => "CR",
            Operation::Debit => "DR",
        };
        text.push_str(&format!("{email},{id},{amount},{op}"));
        if with_expiry {
            // Far enough out that nothing expires while the soak runs.
            match row.operation {
                Operation::Credit => text.push_str(&format!(",{}", rng.u32(30..=365))),
                Operation::Debit => text.push(','),
            }
        }
        text.push('\n');
    }
    text
}

fn random_import(rng: &mut fastrand::Rng, tenant: usize, n: usize) -> Import {
    let rows = (0..rng.usize(3..=24))
        .map(|_| Row {
            customer: rng.usize(..CUSTOMERS),
            operation: if rng.f64() < 0.6 {
                Operation::Credit
            } else {
                Operation::Debit
            },
            amount: rng.i64(1..=60),
            invalid: rng.f64() < 0.04,
        })
        .collect();
    Import {
        tenant,
        filename: format!("soak-{n:04}.csv"),
        rows,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_under_random_faults_redeliveries_and_reorderings_keep_every_promise() {
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).expect("randomness");
            u64::from_le_bytes(bytes) % 1_000_000
        });
    let imports: usize = std::env::var("SOAK_IMPORTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    println!("soak seed {seed} ({imports} imports): replay with SOAK_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);

    let h = Harness::start().await;
    // Small batches, so every file is many messages; a short finalizer lease,
    // so a finalizer that crashed holding it is replaced within seconds.
    let mut settings = h.aws.settings.clone();
    settings.rows_per_batch = 3;
    settings.shards = 4;
    settings.finalize_lease_seconds = 2;
    // Checkpoints every few rows, so a hurried split or finalizer stops at
    // one and goes on.
    settings.split_checkpoint_rows = 4;
    settings.finalize_boundary_rows = 4;
    // Every commit of a file's second batch carries the condition on its
    // marker, `JOB#<job>#BATCH#2`: it fails on every delivery (random
    // faults or not), goes to the dead-letter queue, and its rows are
    // reported `processing_failed`.
    // (The dead-letter consumer, sealing those rows under the same marker,
    // runs on clients without that fault.)
    let (op, batch_2) = ("DynamoDB:TransactWriteItems", "#BATCH#2\"");
    let sealing = Aws::new(settings.clone()).await;
    let clean = Aws::with_faults(
        settings.clone(),
        FaultPlan::counting().also_failing_always_containing(op, batch_2),
    )
    .await;
    let plan = FaultPlan::random(seed, FAULT_RATE).also_failing_always_containing(op, batch_2);
    let faulty = Aws::with_faults(settings, plan.clone()).await;
    let runners = [
        Runner::new(clean.clone())
            .unwrap()
            .with_clients_for(Function::DeadBatches, sealing.clone())
            .with_chaos(
                Chaos::new(seed ^ 0xa, faulty.clone(), REDELIVERY_RATE).with_hurry(HURRY_RATE),
            ),
        Runner::new(clean.clone())
            .unwrap()
            .with_clients_for(Function::DeadBatches, sealing)
            .with_chaos(Chaos::new(seed ^ 0xb, faulty, REDELIVERY_RATE).with_hurry(HURRY_RATE)),
    ];

    let mut tenants: Vec<TestTenant> = Vec::new();
    let mut all: Vec<Import> = Vec::new();
    let mut rows_total = 0;
    for wave in 0..imports.div_ceil(WAVE) {
        let first_tenant = tenants.len();
        tenants.push(h.tenant().await);
        tenants.push(h.tenant().await);
        let count = WAVE.min(imports - wave * WAVE);
        for i in 0..count {
            let import = random_import(&mut rng, first_tenant + i % 2, all.len());
            let with_expiry = rng.bool();
            let body = csv(&import, &mut rng, with_expiry);
            rows_total += import.rows.len();
            put(&h, &tenants[import.tenant], &import.filename, body).await;
            all.push(import);
        }
        let (a, b) = tokio::join!(
            runners[0].run_until_idle(None, Duration::from_secs(300)),
            runners[1].run_until_idle(None, Duration::from_secs(300))
        );
        a.unwrap_or_else(|e| panic!("seed {seed}, wave {wave}: {e}"));
        b.unwrap_or_else(|e| panic!("seed {seed}, wave {wave}: {e}"));
    }

    let emails = console::sent_emails().await.expect("emails");
    let mut violations = Vec::new();
    let mut applied_rows = 0;
    for (index, tenant) in tenants.iter().enumerate() {
        let imports: Vec<&Import> = all.iter().filter(|i| i.tenant == index).collect();
        applied_rows += check_tenant(&h, tenant, &imports, &emails, &mut violations).await;
    }
    let redelivered: u64 = runners
        .iter()
        .filter_map(|r| r.chaos().map(Chaos::redelivered))
        .sum();
    let hurried: u64 = runners
        .iter()
        .filter_map(|r| r.chaos().map(Chaos::hurried))
        .sum();
    println!(
        "soak seed {seed}: {} imports, {rows_total} rows ({applied_rows} applied), {} injected faults, \
         {redelivered} redeliveries, {hurried} hurried invocations, {} violations",
        all.len(),
        plan.fired().len(),
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "seed {seed} (replay with SOAK_SEED={seed}):\n{}",
        violations.join("\n")
    );
}

async fn put(h: &Harness, tenant: &TestTenant, filename: &str, body: String) {
    h.drop_file(tenant, filename, body, None).await;
}

/// Checks one tenant's jobs, files, emails and wallets; returns the number
/// of applied rows.
async fn check_tenant(
    h: &Harness,
    tenant: &TestTenant,
    imports: &[&Import],
    emails: &[console::SentEmail],
    wrong: &mut Vec<String>,
) -> usize {
    let t = tenant.id();
    let jobs = h.jobs(tenant).await;
    let keys = h.processed_keys(tenant).await;
    if jobs.len() != imports.len() {
        wrong.push(format!(
            "{t}: {} jobs for {} imports",
            jobs.len(),
            imports.len()
        ));
    }
    // (job, row) → (points moved, balance after), for every applied row.
    let mut applied: HashMap<(String, u64), (i64, i64)> = HashMap::new();
    for import in imports {
        let Some(job) = jobs.iter().find(|j| j.filename == import.filename) else {
            wrong.push(format!("{t}: no job for {}", import.filename));
            continue;
        };
        check_job(h, t, job, import, &keys, emails, &mut applied, wrong).await;
    }
    // Every wallet: entries numbered 1..n with no gap or repeat, the balance
    // replayed from them, never below zero, each entry an applied row, and a
    // job's rows of one customer in file order.
    let mut entries_seen = 0;
    for c in 0..CUSTOMERS {
        let who = customer_ref(c);
        let view = h.aws.tables.wallet_view(t, &who).await.expect("wallet");
        let mut entries = view.entries.clone();
        entries.sort_by_key(|e| e.sequence);
        let mut balance = 0;
        let mut last_row: BTreeMap<&str, u64> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            let place = format!("{t} {who:?} entry {}#{}", e.job_id, e.row);
            if e.sequence != i as u64 + 1 {
                wrong.push(format!(
                    "{place}: sequence {} at position {}",
                    e.sequence,
                    i + 1
                ));
            }
            let effect = match e.operation {
                Operation::Credit => e.amount,
                Operation::Debit => -e.amount,
            };
            balance += effect;
            if e.balance_after != balance || balance < 0 {
                wrong.push(format!(
                    "{place}: balance_after {} but replayed {balance}",
                    e.balance_after
                ));
            }
            match applied.get(&(e.job_id.clone(), e.row)) {
                Some(&(points, after)) if points == effect && after == e.balance_after => {}
                other => wrong.push(format!("{place}: processed file says {other:?}")),
            }
            if let Some(previous) = last_row.insert(&e.job_id, e.row) {
                if previous > e.row {
                    wrong.push(format!(
                        "{place}: applied after row {previous} of the same file"
                    ));
                }
            }
        }
        entries_seen += entries.len();
        let stored = view
            .wallet
            .map(|w| w.balance_at(chrono::Utc::now()))
            .unwrap_or(0);
        if stored != balance {
            wrong.push(format!(
                "{t} {who:?}: wallet balance {stored}, entries add up to {balance}"
            ));
        }
    }
    if entries_seen != applied.len() {
        wrong.push(format!(
            "{t}: {entries_seen} ledger entries for {} applied rows",
            applied.len()
        ));
    }
    applied.len()
}

#[allow(clippy::too_many_arguments)]
async fn check_job(
    h: &Harness,
    t: &str,
    job: &Job,
    import: &Import,
    keys: &[String],
    emails: &[console::SentEmail],
    applied: &mut HashMap<(String, u64), (i64, i64)>,
    wrong: &mut Vec<String>,
) {
    let name = format!("{t}/{} ({})", job.job_id, import.filename);
    if !job.status.is_final() || job.email_sent_at.is_none() {
        wrong.push(format!(
            "{name}: ended {} with email {:?}",
            job.status.as_str(),
            job.email_sent_at
        ));
        return;
    }
    let files = keys
        .iter()
        .filter(|k| k.contains(&format!("/{}/", job.job_id)))
        .count();
    if files != 1 {
        wrong.push(format!("{name}: {files} processed files"));
    }
    let about: Vec<_> = emails
        .iter()
        .filter(|e| e.body.contains(&job.job_id))
        .collect();
    if about.len() != 1
        || about
            .iter()
            .any(|e| e.destinations.to != [format!("admin@{t}.test")])
    {
        wrong.push(format!("{name}: {} emails", about.len()));
    }
    let rows = processed_rows(&h.processed_file(job).await);
    if rows.len() != import.rows.len() {
        wrong.push(format!(
            "{name}: {} processed rows for {} input rows",
            rows.len(),
            import.rows.len()
        ));
        return;
    }
    for (i, (row, input)) in rows.iter().zip(&import.rows).enumerate() {
        let number = i as u64 + 1;
        let place = format!("{name} row {number}");
        let (status, code) = (row.get("status"), row.get("error_code"));
        let expected_amount = if input.invalid {
            "1,000".to_owned()
        } else {
            input.amount.to_string()
        };
        if row.get("amount") != expected_amount {
            wrong.push(format!(
                "{place}: amount cell {:?}, input {expected_amount}",
                row.get("amount")
            ));
        }
        match (status, code, input.invalid, input.operation) {
            ("failed", "invalid_amount", true, _) => {}
            ("failed", "insufficient_balance", false, Operation::Debit) => {}
            ("failed", "processing_failed", false, _) => {}
            ("applied", "", false, op) => {
                let points = match op {
                    Operation::Credit => input.amount,
                    Operation::Debit => -input.amount,
                };
                let after = row.get("balance_after").parse().unwrap_or(i64::MIN);
                applied.insert((job.job_id.clone(), number), (points, after));
            }
            other => wrong.push(format!("{place}: outcome {other:?}")),
        }
    }
}
