//! Benchmarks that need the local stack, printed as Markdown for
//! `BENCHMARKS.md`: the processor's DynamoDB writes per applied row, and
//! the pipeline's speed from upload to email next to a naive importer.

use crate::runner::Function;
use crate::{console, Runner};
use aws_sdk_dynamodb::types::AttributeValue;
use loyalty_aws::capacity;
use loyalty_aws::faults::FaultPlan;
use loyalty_aws::Aws;
use shared::job::Job;
use std::time::{Duration, Instant};

/// A points file of `rows` credits of 10 points, `per_customer` rows each.
pub(crate) fn points_file(rows: u64, per_customer: u64) -> String {
    let mut file = String::from("customer_id,amount\n");
    for n in 0..rows {
        file.push_str(&format!("C-{},10\n", n / per_customer));
    }
    file
}

pub(crate) async fn new_tenant(aws: &Aws, what: &str) -> anyhow::Result<String> {
    let tenant_id = format!(
        "{what}-{}-{:04x}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        fastrand::u16(..)
    );
    console::create_tenant(aws, &tenant_id, &format!("admin@{what}.example"), "FR").await?;
    Ok(tenant_id)
}

/// Drops the file under the tenant's prefix, runs the pipeline until the
/// tenant's jobs are done, and returns the file's job.
pub(crate) async fn import(
    runner: &Runner,
    tenant_id: &str,
    name: &str,
    file: String,
) -> anyhow::Result<Job> {
    let aws = runner.aws();
    let key = format!("incoming/{tenant_id}/{name}");
    console::drop_object(aws, &key, file.into_bytes(), &[]).await?;
    runner
        .run_until_idle(Some(tenant_id), Duration::from_secs(3600))
        .await?;
    aws.tables
        .jobs(tenant_id)
        .await?
        .into_iter()
        .find(|j| j.source_key == key)
        .ok_or_else(|| anyhow::anyhow!("no job for {key}"))
}

/// DynamoDB write requests and write units the processor spends per applied
/// row, counted by an interceptor on its clients (`loyalty_aws::capacity`),
/// for a file of distinct customers and one with ten rows per customer.
/// Updates are counted from what the request names, except the job's
/// counters, counted at the job item's size as read at the end (an update
/// costs the larger of the item before and after).
pub async fn costs(aws: &Aws, rows: u64) -> anyhow::Result<()> {
    let tenant_id = new_tenant(aws, "costs").await?;
    println!(
        "| file | rows applied | write requests | rows per write request | write units | of which the job's counters | write units per applied row |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, per_customer) in [("distinct customers", 1), ("ten rows per customer", 10)] {
        let plan = FaultPlan::counting();
        let processor = Aws::with_faults(aws.settings.clone(), plan.clone()).await;
        let runner = Runner::new(aws.clone())?.with_clients_for(Function::Processor, processor);
        let file = points_file(rows, per_customer);
        let job = import(
            &runner,
            &tenant_id,
            &format!("costs-{per_customer}.csv"),
            file,
        )
        .await?;
        let writes = plan
            .calls()
            .iter()
            .filter(|c| {
                [
                    "TransactWriteItems",
                    "PutItem",
                    "UpdateItem",
                    "DeleteItem",
                    "BatchWriteItem",
                ]
                .iter()
                .any(|w| c.as_str() == format!("DynamoDB:{w}"))
            })
            .count();
        let cost = write_units(aws, &plan, &job).await?;
        let counters = cost
            .update_units
            .get(&aws.settings.jobs_table)
            .copied()
            .unwrap_or(0.0);
        let applied = job.applied.max(1) as f64;
        println!(
            "| {name} | {} | {writes} | {:.2} | {:.0} | {counters:.0} | {:.2} |",
            job.applied,
            applied / writes.max(1) as f64,
            cost.total(),
            cost.total() / applied
        );
    }
    Ok(())
}

/// The write units of the requests `plan` counted, the job's counters at
/// the job item's size as read now (in a transaction: two units a
/// kilobyte), since an update costs the larger of the item before and after.
pub(crate) async fn write_units(
    aws: &Aws,
    plan: &FaultPlan,
    job: &Job,
) -> anyhow::Result<capacity::WriteCost> {
    let mut cost = plan.write_cost();
    let jobs = &aws.settings.jobs_table;
    let counters = cost.updates.get(jobs).copied().unwrap_or(0) as f64
        * 2.0
        * capacity::units(job_item_size(aws, job).await?);
    cost.update_units.insert(jobs.clone(), counters);
    Ok(cost)
}

/// The stored size of the job's item, by DynamoDB's rules.
async fn job_item_size(aws: &Aws, job: &Job) -> anyhow::Result<usize> {
    let item = aws
        .tables
        .client()
        .get_item()
        .table_name(&aws.settings.jobs_table)
        .key("tenant_id", AttributeValue::S(job.tenant_id.clone()))
        .key("sk", AttributeValue::S(format!("JOB#{}", job.job_id)))
        .send()
        .await?
        .item
        .ok_or_else(|| anyhow::anyhow!("job {} is gone", job.job_id))?;
    Ok(capacity::stored_item_size(&item))
}

/// Rows per second from the upload to the email, for files of distinct
/// customers of each size, next to a naive importer on the same emulator:
/// one conditional `UpdateItem` per row, one after the other.
pub async fn throughput(aws: &Aws, sizes: &[u64]) -> anyhow::Result<()> {
    println!(
        "| rows | pipeline, upload to email | pipeline rows/s | its functions' AWS requests | naive importer | naive rows/s | naive requests | pipeline / naive speed |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &rows in sizes {
        let tenant_id = new_tenant(aws, "throughput").await?;
        // Every request the functions make is counted (not the runner's own
        // receives and deletes, which stand for Lambda's queue polling).
        let plan = FaultPlan::counting();
        let counted = Aws::with_faults(aws.settings.clone(), plan.clone()).await;
        let runner = Runner::new(aws.clone())?.with_clients_for_an_import(counted);
        let file = points_file(rows, 1);
        let started = Instant::now();
        let job = import(&runner, &tenant_id, "throughput.csv", file.clone()).await?;
        let pipeline = started.elapsed().as_secs_f64();
        if job.email_sent_at.is_none() || job.applied != rows {
            anyhow::bail!(
                "the import ended {} with {} of {rows} rows applied",
                job.status.as_str(),
                job.applied
            );
        }
        let started = Instant::now();
        naive_import(aws, &tenant_id, &file).await?;
        let naive = started.elapsed().as_secs_f64();
        let (p, n) = (rows as f64 / pipeline, rows as f64 / naive);
        println!(
            "| {rows} | {pipeline:.1} s | {p:.0} | {} | {naive:.1} s | {n:.0} | {rows} | {:.2} |",
            plan.calls().len(),
            p / n
        );
    }
    emulator_costs(aws, 1000).await
}

/// `tenants` tenants dropping a file of `rows` rows at the same moment, the
/// pipeline run until every one is emailed: each tenant's time from upload
/// to email against one tenant's alone, and the order they finished in.
/// The local runner delivers one message at a time, where Lambda runs a
/// processor per message group: the figures show how fairly the queues
/// share the pipeline among tenants, not how much faster AWS would be.
pub async fn tenants(aws: &Aws, tenants: usize, rows: u64) -> anyhow::Result<()> {
    let runner = Runner::new(aws.clone())?;
    let alone = new_tenant(aws, "alone").await?;
    let started = Instant::now();
    let job = import(&runner, &alone, "alone.csv", points_file(rows, 1)).await?;
    let alone_seconds = started.elapsed().as_secs_f64();
    if job.applied != rows {
        anyhow::bail!("alone: {} of {rows} rows applied", job.applied);
    }
    let mut ids = Vec::with_capacity(tenants);
    for n in 0..tenants {
        ids.push(new_tenant(aws, &format!("many{n}")).await?);
    }
    let started = Instant::now();
    for id in &ids {
        let key = format!("incoming/{id}/together.csv");
        console::drop_object(aws, &key, points_file(rows, 1).into_bytes(), &[]).await?;
    }
    runner
        .run_until_idle(None, Duration::from_secs(3600))
        .await?;
    let all_seconds = started.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(tenants);
    for id in &ids {
        let jobs = aws.tables.jobs(id).await?;
        let job = jobs
            .first()
            .ok_or_else(|| anyhow::anyhow!("no job for tenant {id}"))?;
        let (Some(emailed), true) = (job.email_sent_at, job.applied == rows) else {
            anyhow::bail!(
                "tenant {id}: {} with {} rows applied",
                job.status.as_str(),
                job.applied
            );
        };
        times.push((emailed - job.created_at).num_milliseconds() as f64 / 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "| tenants at once | rows each | one tenant alone | first emailed | median | last emailed | last / alone | all {tenants} files, upload to last email | rows/s together |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {tenants} | {rows} | {alone_seconds:.1} s | {:.1} s | {:.1} s | {:.1} s | {:.1} | {all_seconds:.1} s | {:.0} |",
        at(0.0),
        at(0.5),
        at(1.0),
        at(1.0) / alone_seconds,
        (tenants as u64 * rows) as f64 / all_seconds,
    );
    Ok(())
}

/// What the emulator charges: the time of a one-item request, and per item
/// of 100-item transactions, each the mean of `n` items.
pub async fn emulator_costs(aws: &Aws, n: usize) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
    let client = aws.tables.client();
    let table = &aws.settings.wallets_table;
    let run = format!("emulator-{:08x}", fastrand::u32(..));
    let item = |i: usize| {
        [
            ("pk", AttributeValue::S(format!("{run}#{i}"))),
            ("sk", AttributeValue::S("WALLET".into())),
            ("balance", AttributeValue::N("10".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect::<std::collections::HashMap<_, _>>()
    };
    let started = Instant::now();
    for i in 0..n {
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item(i)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await?;
    }
    let single = started.elapsed().as_secs_f64() * 1000.0 / n as f64;
    let started = Instant::now();
    let items: Vec<TransactWriteItem> = (n..2 * n)
        .map(|i| {
            Ok(TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(item(i)))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()?,
                )
                .build())
        })
        .collect::<Result<_, aws_sdk_dynamodb::error::BuildError>>()?;
    for chunk in items.chunks(100) {
        client
            .transact_write_items()
            .set_transact_items(Some(chunk.to_vec()))
            .send()
            .await?;
    }
    let batched = started.elapsed().as_secs_f64() * 1000.0 / n as f64;
    println!(
        "\nThe emulator, {n} conditional puts each way: {single:.2} ms per one-item request; \
         {batched:.2} ms per item in 100-item transactions."
    );
    Ok(())
}

/// What an importer without batching does: each row one conditional write
/// to the customer's balance (no ledger, no outcomes, no processed file).
pub(crate) async fn naive_import(aws: &Aws, tenant_id: &str, file: &str) -> anyhow::Result<()> {
    let client = aws.tables.client();
    let table = &aws.settings.wallets_table;
    for line in file.lines().skip(1) {
        let (customer, amount) = line
            .split_once(',')
            .ok_or_else(|| anyhow::anyhow!("not a row: {line}"))?;
        client
            .update_item()
            .table_name(table)
            .key(
                "pk",
                AttributeValue::S(format!("naive:{tenant_id}#{customer}")),
            )
            .key("sk", AttributeValue::S("WALLET".into()))
            .update_expression("SET balance = if_not_exists(balance, :zero) + :amount")
            .condition_expression("attribute_not_exists(balance) OR balance >= :floor")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":amount", AttributeValue::N(amount.into()))
            .expression_attribute_values(":floor", AttributeValue::N(format!("-{amount}")))
            .send()
            .await?;
    }
    Ok(())
}
