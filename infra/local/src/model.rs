//! What an import would take and cost on AWS, by the latency model
//! (`loyalty_aws::latency`) over imports run on the local stack, printed as
//! Markdown for BENCHMARKS.md §5 ("On AWS, a model").
//!
//! Each function invocation's time on AWS is its own time here without its
//! requests, times the CPU share Lambda gives it, plus its requests' drawn
//! latencies. An import's time from upload to email is the hand-offs, the
//! split, the longest shard's batches one after the other (a processor per
//! message group, as Lambda's FIFO event source runs them) and the
//! processed file with its email. Larger files are estimated from the
//! largest one run, per row.

use crate::measure::{import, naive_import, new_tenant, points_file, write_units};
use crate::runner::{Function, Invocation};
use crate::Runner;
use loyalty_aws::faults::FaultPlan;
use loyalty_aws::latency::{self, Class, LatencyModel, Parameters, Spread};
use loyalty_aws::Aws;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Lambda gives a function one vCPU at 1,769 MB, and a share in proportion
/// below.
const FULL_VCPU_MB: f64 = 1769.0;
/// Every function's memory (the template's `Globals`).
const FUNCTION_MB: f64 = 256.0;

/// us-east-1 prices, arm64 (BENCHMARKS.md §5 names their pages).
mod price {
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// On-demand.
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// A FIFO queue's request, per 64 KiB of payload.
    pub const SQS_FIFO_REQUEST: f64 = 0.50 / 1e6;
    /// PUT, COPY, POST and LIST requests.
    pub const S3_WRITE: f64 = 0.005 / 1000.0;
    /// GET and all other requests.
    pub const S3_READ: f64 = 0.0004 / 1000.0;
    pub const SES_EMAIL: f64 = 0.10 / 1000.0;
}

/// From the upload to the splitter's start: the S3 event notification and
/// the ingest queue's poller.
const UPLOAD_HANDOFF: Duration = Duration::from_secs(1);
/// From a message sent to its function's start (the event source's long
/// poll), paid twice: the first batch, the finalize message.
const QUEUE_HANDOFF: Duration = Duration::from_millis(100);

/// What the model command runs.
pub struct Plan {
    /// File sizes run through the pipeline and the naive importer.
    pub rows: Vec<u64>,
    /// Shard counts to compare on the largest file.
    pub shards: Vec<u32>,
    /// File sizes estimated from the largest one run.
    pub estimate: Vec<u64>,
    /// Holds each request for its drawn latency, and runs a processor per
    /// message group at once.
    pub hold: bool,
    pub seed: u64,
}

/// One import through the pipeline under the model.
struct Import {
    rows: u64,
    shards: u32,
    /// Upload to email, here.
    wall: Duration,
    invocations: Vec<Invocation>,
    bill: Bill,
}

/// The phases of an import on AWS, by the model.
#[derive(Debug, Clone, Copy)]
struct Phases {
    split: Duration,
    /// The longest shard's processor invocations, one after the other.
    apply: Duration,
    finish: Duration,
}

impl Phases {
    fn upload_to_email(&self) -> Duration {
        UPLOAD_HANDOFF + 2 * QUEUE_HANDOFF + self.split + self.apply + self.finish
    }

    fn scaled(&self, factor: f64) -> Phases {
        Phases {
            split: self.split.mul_f64(factor),
            apply: self.apply.mul_f64(factor),
            finish: self.finish.mul_f64(factor),
        }
    }
}

/// An invocation's time on Lambda: its own time here, slowed to the CPU
/// share of the function's memory, and its requests' modelled latencies.
fn on_lambda(invocation: &Invocation) -> Duration {
    let own = invocation.wall.saturating_sub(invocation.spent.took);
    own.mul_f64(FULL_VCPU_MB / FUNCTION_MB) + invocation.spent.modelled
}

impl Import {
    fn phases(&self) -> Phases {
        let total = |f: fn(Function) -> bool| {
            self.invocations
                .iter()
                .filter(|i| f(i.function))
                .map(on_lambda)
                .sum::<Duration>()
        };
        let mut by_group: BTreeMap<&str, Duration> = BTreeMap::new();
        for i in self
            .invocations
            .iter()
            .filter(|i| i.function == Function::Processor)
        {
            for group in &i.groups {
                *by_group.entry(group).or_default() += on_lambda(i) / i.groups.len() as u32;
            }
        }
        Phases {
            split: total(|f| matches!(f, Function::Splitter | Function::DeadUploads)),
            apply: by_group.values().max().copied().unwrap_or_default(),
            finish: total(|f| f == Function::Finalizer),
        }
    }
}

/// What an import is billed for.
#[derive(Debug, Clone, Copy, Default)]
struct Bill {
    gb_seconds: f64,
    invocations: f64,
    write_units: f64,
    sqs_requests: f64,
    s3_writes: f64,
    s3_reads: f64,
    emails: f64,
}

impl Bill {
    fn dollars(&self) -> f64 {
        self.gb_seconds * price::LAMBDA_GB_SECOND
            + self.invocations * price::LAMBDA_REQUEST
            + self.write_units * price::DYNAMODB_WRITE_UNIT
            + self.sqs_requests * price::SQS_FIFO_REQUEST
            + self.s3_writes * price::S3_WRITE
            + self.s3_reads * price::S3_READ
            + self.emails * price::SES_EMAIL
    }

    /// The bill of a file `factor` times as long (one email still).
    fn scaled(&self, factor: f64) -> Bill {
        Bill {
            gb_seconds: self.gb_seconds * factor,
            invocations: self.invocations * factor,
            write_units: self.write_units * factor,
            sqs_requests: self.sqs_requests * factor,
            s3_writes: self.s3_writes * factor,
            s3_reads: self.s3_reads * factor,
            emails: self.emails,
        }
    }
}

/// Clients with a counting fault plan and the model, for the functions.
async fn modelled_clients(aws: &Aws, shards: u32, model: &LatencyModel) -> (Aws, FaultPlan) {
    let plan = FaultPlan::counting();
    let mut settings = aws.settings.clone();
    settings.shards = shards;
    (
        Aws::with_model(settings, plan.clone(), model.clone()).await,
        plan,
    )
}

fn new_model(plan: &Plan) -> LatencyModel {
    let model = LatencyModel::new(Parameters::in_region(), plan.seed);
    if plan.hold {
        model.holding()
    } else {
        model
    }
}

/// Imports a file of `rows` distinct customers under the model, with
/// `shards` shards.
async fn run_pipeline(aws: &Aws, plan: &Plan, rows: u64, shards: u32) -> anyhow::Result<Import> {
    let model = new_model(plan);
    let (clients, faults) = modelled_clients(aws, shards, &model).await;
    let mut runner = Runner::new(aws.clone())?
        .recording_invocations()
        .with_clients_for_an_import(clients);
    if plan.hold {
        runner = runner.with_processor_concurrency(shards as usize);
    }
    // What an earlier run left in the queues is delivered first, and not
    // counted: the invocations recorded are this import's alone.
    runner
        .run_until_idle(None, Duration::from_secs(3600))
        .await?;
    runner.take_invocations();
    let tenant_id = new_tenant(aws, "model").await?;
    let started = Instant::now();
    let job = import(&runner, &tenant_id, "model.csv", points_file(rows, 1)).await?;
    let wall = started.elapsed();
    if job.email_sent_at.is_none() || job.applied != rows {
        anyhow::bail!(
            "the import ended {} with {} of {rows} rows applied",
            job.status.as_str(),
            job.applied
        );
    }
    let invocations = runner.take_invocations();
    let mut import = Import {
        rows,
        shards,
        wall,
        bill: Bill::default(),
        invocations,
    };
    let gb = FUNCTION_MB / 1024.0;
    let calls = faults.calls();
    let s3 = |ops: &[&str]| {
        calls
            .iter()
            .filter(|c| ops.iter().any(|op| c.as_str() == format!("S3:{op}")))
            .count() as f64
    };
    let tallies = model.by_class();
    let sqs_chunks: u64 = [Class::SqsSend, Class::SqsReceive, Class::SqsOther]
        .iter()
        .filter_map(|c| tallies.get(c))
        .map(|t| t.chunks)
        .sum();
    // Each message delivered: the event source's receive and its delete.
    let delivered: usize = import.invocations.len();
    import.bill = Bill {
        gb_seconds: import
            .invocations
            .iter()
            .map(|i| on_lambda(i).as_secs_f64() * gb)
            .sum(),
        invocations: import.invocations.len() as f64,
        write_units: write_units(aws, &faults, &job).await?.total(),
        sqs_requests: (sqs_chunks + 2 * delivered as u64) as f64,
        // The merchant's upload, and the functions' writes.
        s3_writes: 1.0
            + s3(&[
                "PutObject",
                "UploadPart",
                "CreateMultipartUpload",
                "CompleteMultipartUpload",
                "CopyObject",
                "ListObjectsV2",
            ]),
        s3_reads: s3(&["GetObject", "HeadObject"]),
        emails: 1.0,
    };
    Ok(import)
}

/// The naive importer under the same model: its time here, and on AWS
/// (its own time as it is here, its requests' latencies as modelled).
async fn run_naive(aws: &Aws, plan: &Plan, rows: u64) -> anyhow::Result<(Duration, Duration)> {
    let model = new_model(plan);
    let (clients, _) = modelled_clients(aws, aws.settings.shards, &model).await;
    let tenant_id = new_tenant(aws, "naive").await?;
    let started = Instant::now();
    let (done, spent) =
        latency::metered(naive_import(&clients, &tenant_id, &points_file(rows, 1))).await;
    done?;
    let wall = started.elapsed();
    Ok((wall, spent.modelled_time(wall)))
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn spread(s: Spread) -> String {
    format!("{} ms | {} ms", s.median_ms, s.p99_ms)
}

fn print_parameters(p: &Parameters) {
    println!("| request | median | 99th percentile | on top |");
    println!("|---|---:|---:|---|");
    let per_item = format!("{} ms an item", p.dynamodb_per_item_ms);
    let per_byte = format!("{:.0} MiB/s of object", p.s3_bytes_per_second / 1048576.0);
    for (name, s, extra) in [
        ("DynamoDB, one item", p.dynamodb_item, ""),
        (
            "DynamoDB, transaction or batch",
            p.dynamodb_item,
            per_item.as_str(),
        ),
        ("DynamoDB, query", p.dynamodb_query, ""),
        ("SQS, any", p.sqs, ""),
        ("S3, first byte", p.s3_first_byte, per_byte.as_str()),
        ("SES, an email", p.ses, ""),
    ] {
        println!("| {name} | {} | {extra} |", spread(s));
    }
    println!(
        "\nHand-offs: {} from the upload to the split, {} per queue before the first batch and the finalizer; \
         each function's own time × {:.1} (Lambda's CPU share at {FUNCTION_MB} MB).\n",
        seconds(UPLOAD_HANDOFF),
        seconds(QUEUE_HANDOFF),
        FULL_VCPU_MB / FUNCTION_MB
    );
}

/// Where an invocation's time goes, per function, for a reader to check.
fn print_invocations(import: &Import) {
    println!(
        "\n| {} rows: function | invocations | own time here, mean | × CPU share | requests, mean | their latency modelled, mean | on Lambda, mean |",
        import.rows
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, function) in [
        ("splitter", Function::Splitter),
        ("processor", Function::Processor),
        ("finalizer", Function::Finalizer),
    ] {
        let all: Vec<&Invocation> = import
            .invocations
            .iter()
            .filter(|i| i.function == function)
            .collect();
        let n = all.len().max(1) as f64;
        let mean = |f: &dyn Fn(&Invocation) -> f64| all.iter().map(|i| f(i)).sum::<f64>() / n;
        let own = mean(&|i| i.wall.saturating_sub(i.spent.took).as_secs_f64() * 1000.0);
        println!(
            "| {name} | {} | {own:.1} ms | {:.1} ms | {:.1} | {:.1} ms | {:.1} ms |",
            all.len(),
            own * FULL_VCPU_MB / FUNCTION_MB,
            mean(&|i| i.spent.requests as f64),
            mean(&|i| i.spent.modelled.as_secs_f64() * 1000.0),
            mean(&|i| on_lambda(i).as_secs_f64() * 1000.0),
        );
    }
}

fn print_bill_row(label: &str, rows: u64, phases: Phases, bill: &Bill) {
    let t = phases.upload_to_email();
    println!(
        "| {label} | {rows} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} | ${:.4} | ${:.2} |",
        seconds(t),
        seconds(phases.split),
        seconds(phases.apply),
        seconds(phases.finish),
        bill.gb_seconds,
        bill.invocations,
        bill.write_units,
        bill.sqs_requests,
        bill.s3_writes,
        bill.s3_reads,
        bill.dollars(),
        bill.dollars() * 1e6 / rows as f64,
    );
}

/// `loyalty-local model`: the pipeline against the naive importer under the
/// model, the time and bill of each file (and of larger ones, estimated),
/// and the shard counts compared.
pub async fn model(aws: &Aws, plan: &Plan) -> anyhow::Result<()> {
    let default_shards = aws.settings.shards;
    print_parameters(&Parameters::in_region());
    let mut imports = Vec::new();
    println!(
        "| rows | pipeline here | pipeline on AWS, modelled | rows/s | naive importer here | naive on AWS, modelled | rows/s | pipeline / naive |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &rows in &plan.rows {
        let import = run_pipeline(aws, plan, rows, default_shards).await?;
        let (naive_here, naive) = run_naive(aws, plan, rows).await?;
        let pipeline = import.phases().upload_to_email();
        let (p, n) = (
            rows as f64 / pipeline.as_secs_f64(),
            rows as f64 / naive.as_secs_f64(),
        );
        println!(
            "| {rows} | {} | {} | {p:.0} | {} | {} | {n:.0} | {:.1} |",
            seconds(import.wall),
            seconds(pipeline),
            seconds(naive_here),
            seconds(naive),
            p / n
        );
        imports.push(import);
    }
    let Some(largest) = imports.iter().max_by_key(|i| i.rows) else {
        return Ok(());
    };
    print_invocations(largest);
    println!(
        "\n| file | rows | upload to email | split | apply (longest shard) | processed file and email | Lambda GB-s | invocations | DynamoDB write units | SQS requests | S3 writes / reads | cost | per million rows |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for import in &imports {
        print_bill_row("run", import.rows, import.phases(), &import.bill);
    }
    for &rows in &plan.estimate {
        let factor = rows as f64 / largest.rows as f64;
        print_bill_row(
            &format!("estimated from {}", largest.rows),
            rows,
            largest.phases().scaled(factor),
            &largest.bill.scaled(factor),
        );
    }
    if plan.shards.is_empty() {
        return Ok(());
    }
    println!(
        "\n| shards | rows | upload to email | apply (longest shard) | rows/s | processor invocations | Lambda GB-s | cost |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &shards in &plan.shards {
        let run;
        let import = if shards == largest.shards {
            largest
        } else {
            run = run_pipeline(aws, plan, largest.rows, shards).await?;
            &run
        };
        let phases = import.phases();
        let t = phases.upload_to_email();
        let processors = import
            .invocations
            .iter()
            .filter(|i| i.function == Function::Processor)
            .count();
        println!(
            "| {shards} | {} | {} | {} | {:.0} | {processors} | {:.0} | ${:.4} |",
            import.rows,
            seconds(t),
            seconds(phases.apply),
            import.rows as f64 / t.as_secs_f64(),
            import.bill.gb_seconds,
            import.bill.dollars()
        );
    }
    Ok(())
}
