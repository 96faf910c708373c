//! `loyalty-local`: the developer's commands against the local stack, and
//! the operator's against a deployed one (`--stack-env`, first).
//!
//! ```text
//! loyalty-local --stack-env <file> (tenant | wallet | card | drop) ...
//! loyalty-local tenant create <id> --admin-email <email> [--country FR]
//! loyalty-local tenant memberships <id> <config.json>
//! loyalty-local wallet <tenant> (--email <e> | --mobile <m> | --customer-id <id>)
//! loyalty-local card <tenant> <card_code>
//! loyalty-local drop <tenant> <file> [--reason <text>] [--as <name>]
//! loyalty-local preview <file> [--kind <kind>] [--mode add|set_balance] [--country <ISO code>]
//! loyalty-local run [--until-idle] [--timeout <seconds>] [--function-timeout <seconds>]
//! loyalty-local emails [<tenant>]
//! loyalty-local costs [--rows <n>]
//! loyalty-local throughput [--rows <n>,<n>...]
//! loyalty-local demo
//! ```

use lambda_http::http::{Method, StatusCode};
use local_stack::console::{self, api, upload};
use local_stack::{env, Runner};
use loyalty_aws::objects::Presigned;
use loyalty_aws::Aws;
use serde_json::json;
use shared::kind::ImportKind;
use shared::split::{self, SplitError, SplitRequest};
use std::time::Duration;

const USAGE: &str = "usage:
  loyalty-local --stack-env <file> (tenant | wallet | card | drop | preview) ...
  loyalty-local tenant create <id> --admin-email <email> [--country <ISO code>]
  loyalty-local tenant memberships <id> <config.json>
  loyalty-local wallet <tenant> (--email <e> | --mobile <m> | --customer-id <id>)
  loyalty-local card <tenant> <card_code>
  loyalty-local drop <tenant> <file> [--reason <text>] [--as <name>]
  loyalty-local preview <file> [--kind <kind>] [--mode add|set_balance] [--country <ISO code>]
  loyalty-local run [--until-idle] [--timeout <seconds>] [--function-timeout <seconds>]
  loyalty-local emails [<tenant>]
  loyalty-local costs [--rows <n>]
  loyalty-local throughput [--rows <n>,<n>...]
  loyalty-local demo";

/// What works on a deployed stack: what reads or writes the tenants, the
/// wallets, the cards and the bucket. The rest would consume its queues, or
/// needs the emulator.
const DEPLOYED_COMMANDS: [&str; 4] = ["tenant", "wallet", "card", "drop"];

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        anyhow::bail!("{USAGE}");
    }
    if matches!(args[0].as_str(), "--help" | "-h" | "help") {
        println!("{USAGE}");
        return Ok(());
    }
    // A preview reads a file on disk as the splitter would: no stack, so a
    // stack named before it is not needed.
    let preview_at = usize::from(args[0] == "--stack-env") * 2;
    if args.get(preview_at).map(String::as_str) == Some("preview") {
        let args = &args[preview_at..];
        let file = args.get(1).ok_or_else(|| anyhow::anyhow!("{USAGE}"))?;
        return match print_preview(file, args) {
            // `preview ... | head`: the reader has what it wanted.
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
            {
                Ok(())
            }
            other => other,
        };
    }
    if args.first().map(String::as_str) == Some("--stack-env") {
        let file = args
            .get(1)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("--stack-env needs a file\n{USAGE}"))?;
        args.drain(..2);
        let command = args.first().map(String::as_str).unwrap_or_default();
        if !DEPLOYED_COMMANDS.contains(&command) {
            anyhow::bail!(
                "with --stack-env only {} work; `{command}` is for the local stack",
                DEPLOYED_COMMANDS.join(", ")
            );
        }
        env::load_from(std::path::Path::new(&file))?;
    } else {
        env::load()?;
    }
    loyalty_aws::logging::init();
    tokio::runtime::Runtime::new()?.block_on(run(args))
}

/// `loyalty-local preview <file>`: the first rows as the import's preview
/// would show them.
fn print_preview(file: &str, args: &[String]) -> anyhow::Result<()> {
    let kind = option(args, "--kind")
        .map(str::parse::<ImportKind>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if kind.is_some_and(|k| k.scope().is_some()) {
        anyhow::bail!("previews are for points files (points, points_with_expiry, smile)");
    }
    let request = SplitRequest {
        tenant_id: "preview".into(),
        job_id: "preview".into(),
        kind,
        reason: "preview".into(),
        dry_run: true,
        smile_mode: option(args, "--mode")
            .map(str::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?
            .unwrap_or_default(),
        default_country: shared::tenant::country_code(option(args, "--country").unwrap_or("FR"))?,
        rows_per_batch: 100,
        shards: 1,
        checkpoint_rows: shared::split::CHECKPOINT_ROWS,
    };
    let input = std::fs::File::open(file).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let (kind, rows) = match split::preview(input, &request) {
        Ok(preview) => preview,
        Err(SplitError::Rejected(why)) => anyhow::bail!("the file would be rejected: {why}"),
        Err(e) => anyhow::bail!("{file}: {e:?}"),
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{file}: a {kind} file; its first {} rows:", rows.len())?;
    writeln!(
        out,
        "{:>5}  {:<32} {:>10} {:<11} {:>6}  result",
        "row", "identifier", "amount", "operation", "expiry"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:>5}  {:<32} {:>10} {:<11} {:>6}  {}",
            r.row,
            // A cell's line break would break the table.
            r.identifier.replace(['\n', '\r'], " "),
            r.amount,
            r.operation,
            r.expiry.unwrap_or_default(),
            r.result
        )?;
    }
    Ok(())
}

/// The value after `--name`, if given.
fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

async fn run(args: Vec<String>) -> anyhow::Result<()> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let aws = Aws::from_env().await?;
    match words.as_slice() {
        ["tenant", "create", id, ..] => {
            let admin = option(&args, "--admin-email")
                .ok_or_else(|| anyhow::anyhow!("--admin-email is required\n{USAGE}"))?;
            let country = option(&args, "--country").unwrap_or("FR");
            let (tenant, key) = console::create_tenant(&aws, id, admin, country).await?;
            println!("tenant:          {}", tenant.tenant_id);
            println!("admin email:     {}", tenant.admin_email);
            println!("default country: {}", tenant.default_country);
            println!("API key (shown once, keep it safe): {key}");
        }
        ["tenant", "memberships", id, file] => {
            let json = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
            let config = console::configure_memberships(&aws, id, &json).await?;
            println!(
                "tenant {id}: universe {}, card codes {}",
                config.universe,
                if config.auto_card_codes {
                    "generated when empty"
                } else {
                    "required"
                }
            );
            for program in &config.programs {
                let mut tiers = program.tiers.clone();
                tiers.sort_by_key(|t| t.rank);
                let names: Vec<String> = tiers
                    .iter()
                    .map(|t| format!("{} {}", t.id_tier, t.name))
                    .collect();
                println!(
                    "  program {} {}: tiers {}",
                    program.id_program,
                    program.name,
                    names.join(" < ")
                );
            }
            if !config.custom_fields.is_empty() {
                println!("  custom fields: {}", config.custom_fields.join(", "));
            }
        }
        ["wallet", tenant_id, ..] => {
            let tenant = aws
                .tables
                .tenant(tenant_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no tenant '{tenant_id}'"))?;
            let (kind, value) = ["email", "mobile", "customer-id"]
                .iter()
                .find_map(|k| option(&args, &format!("--{k}")).map(|v| (*k, v)))
                .ok_or_else(|| {
                    anyhow::anyhow!("give --email, --mobile or --customer-id\n{USAGE}")
                })?;
            let customer = console::customer_ref(&tenant, kind, value)?;
            print!(
                "{}",
                console::wallet_report(&aws, &tenant, &customer).await?
            );
        }
        ["card", tenant_id, card_code] => {
            let tenant = aws
                .tables
                .tenant(tenant_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no tenant {tenant_id}"))?;
            print!("{}", console::card_report(&aws, &tenant, card_code).await?);
        }
        ["costs", ..] => {
            let rows = option(&args, "--rows")
                .map(str::parse)
                .transpose()?
                .unwrap_or(1000);
            local_stack::measure::costs(&aws, rows).await?;
        }
        ["throughput", ..] => {
            let sizes = option(&args, "--rows")
                .unwrap_or("10000,100000")
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<u64>, _>>()?;
            local_stack::measure::throughput(&aws, &sizes).await?;
        }
        ["drop", tenant_id, file, ..] => {
            // What an operator does with the S3 console or `aws s3 cp`; a
            // file for a tenant that does not exist would be ignored.
            if aws.tables.tenant(tenant_id).await?.is_none() {
                anyhow::bail!(
                    "no tenant '{tenant_id}': create it first (loyalty-local tenant create {tenant_id} --admin-email <email>)"
                );
            }
            if !std::path::Path::new(file).is_file() {
                anyhow::bail!("no file {file}");
            }
            let name = option(&args, "--as").map(str::to_owned).unwrap_or_else(|| {
                std::path::Path::new(file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let key = format!("incoming/{tenant_id}/{name}");
            aws.objects
                .client()
                .put_object()
                .bucket(aws.objects.bucket())
                .key(&key)
                .set_metadata(
                    option(&args, "--reason").map(|r| [("reason".to_owned(), r.to_owned())].into()),
                )
                .body(aws_sdk_s3::primitives::ByteStream::from_path(file).await?)
                .send()
                .await?;
            println!("dropped {file} at s3://{}/{key}", aws.objects.bucket());
        }
        ["run", ..] => {
            // Each invocation's time limit: the template's by default; a
            // short one makes a long split go on over many invocations.
            let function_timeout = option(&args, "--function-timeout")
                .map(|t| {
                    t.parse::<f64>().map_err(|_| {
                        anyhow::anyhow!("--function-timeout '{t}' is not a number of seconds")
                    })
                })
                .transpose()?
                .map_or(
                    local_stack::runner::FUNCTION_TIMEOUT,
                    Duration::from_secs_f64,
                );
            let timeout = option(&args, "--timeout")
                .map(|t| {
                    t.parse::<u64>()
                        .map_err(|_| anyhow::anyhow!("--timeout '{t}' is not a number of seconds"))
                })
                .transpose()?;
            let until_idle = args.iter().any(|a| a == "--until-idle");
            if timeout.is_some() && !until_idle {
                anyhow::bail!("--timeout bounds --until-idle: give both, or neither");
            }
            let runner = Runner::new(aws)?.with_function_timeout(function_timeout);
            if until_idle {
                let secs = timeout.unwrap_or(300);
                runner
                    .run_until_idle(None, Duration::from_secs(secs))
                    .await?;
                println!("all queues drained; no job in flight");
            } else {
                println!("delivering queue messages to the functions; Ctrl-C to stop");
                runner.run_forever().await?;
            }
        }
        ["emails", rest @ ..] if rest.len() <= 1 => {
            // One tenant's: those sent to its admin.
            let admin = match rest.first() {
                Some(id) => Some(
                    aws.tables
                        .tenant(id)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no tenant '{id}'"))?
                        .admin_email,
                ),
                None => None,
            };
            for email in console::sent_emails()
                .await?
                .into_iter()
                .filter(|e| admin.as_ref().is_none_or(|a| e.destinations.to.contains(a)))
            {
                println!(
                    "--- to {} from {}\nSubject: {}\n\n{}",
                    email.destinations.to.join(", "),
                    email.source,
                    email.subject,
                    email.body
                );
            }
        }
        ["demo"] => demo(aws).await?,
        _ => anyhow::bail!("{USAGE}"),
    }
    Ok(())
}

/// A sample import end to end: tenant, presigned upload, pipeline, results.
async fn demo(aws: Aws) -> anyhow::Result<()> {
    let sample = include_bytes!("../sample/welcome-campaign.csv").to_vec();
    let tenant_id = format!("demo-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    let (tenant, key) =
        console::create_tenant(&aws, &tenant_id, "admin@demo-shop.example", "FR").await?;
    println!(
        "== 1. tenant {} created (admin {}), API key {key}",
        tenant.tenant_id, tenant.admin_email
    );

    let created = api(
        &aws,
        Method::POST,
        "/imports",
        Some(&key),
        Some(json!({
            "kind": "points_with_expiry",
            "reason": "Welcome campaign",
            "filename": "welcome campaign.csv",
            "size_bytes": sample.len(),
        })),
    )
    .await?;
    anyhow::ensure!(
        created.status == StatusCode::CREATED,
        "POST /imports: {} {}",
        created.status,
        created.text()
    );
    let ticket = created.json()?;
    let job_id = ticket["job_id"].as_str().unwrap_or_default().to_owned();
    let presigned: Presigned = serde_json::from_value(ticket["upload"].clone())?;
    println!(
        "== 2. import {job_id} created; uploading {} bytes to the presigned URL",
        sample.len()
    );
    let status = upload(&presigned, sample).await?;
    anyhow::ensure!(status.is_success(), "upload refused: {status}");

    println!("== 3. running the pipeline (splitter -> processor -> finalizer)");
    let runner = Runner::new(aws.clone())?;
    runner
        .run_until_idle(Some(&tenant.tenant_id), Duration::from_secs(120))
        .await?;

    let job = api(
        &aws,
        Method::GET,
        &format!("/imports/{job_id}"),
        Some(&key),
        None,
    )
    .await?
    .json()?;
    println!("== 4. job summary (GET /imports/{job_id})");
    let summary = json!({
        "status": job["status"], "counts": job["counts"], "progress": job["progress"],
        "reason": job["reason"], "email_sent_at": job["email_sent_at"],
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);

    let record = aws
        .tables
        .job(&tenant.tenant_id, &job_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job vanished"))?;
    let processed_key = record
        .processed_key
        .ok_or_else(|| anyhow::anyhow!("no processed file"))?;
    println!(
        "== 5. processed file s3://{}/{processed_key}",
        aws.settings.bucket
    );
    print!(
        "{}",
        String::from_utf8_lossy(&aws.objects.get_bytes(&processed_key).await?)
    );

    println!("== 6. email sent to the tenant's admin");
    let emails = console::sent_emails().await?;
    for email in emails
        .iter()
        .filter(|e| e.destinations.to.contains(&tenant.admin_email))
    {
        println!(
            "To: {}\nFrom: {}\nSubject: {}\n\n{}",
            email.destinations.to.join(", "),
            email.source,
            email.subject,
            email.body
        );
    }

    println!(
        "== 7. a wallet: loyalty-local wallet {} --email alice@example.com",
        tenant.tenant_id
    );
    let alice = console::customer_ref(&tenant, "email", "alice@example.com")?;
    print!("{}", console::wallet_report(&aws, &tenant, &alice).await?);
    memberships_demo(&aws, &tenant.tenant_id, &runner).await
}

/// The membership half of the demo: the tenant's programs, then a tier
/// change file and the card code file of the same day, dropped in that
/// order; the tier changes wait for the cards.
async fn memberships_demo(aws: &Aws, tenant_id: &str, runner: &Runner) -> anyhow::Result<()> {
    let config = include_str!("../sample/memberships.json");
    let memberships = console::configure_memberships(aws, tenant_id, config).await?;
    println!(
        "== 8. membership programs loaded (universe {}): {}",
        memberships.universe,
        memberships
            .programs
            .iter()
            .map(|p| format!("{} {}", p.id_program, p.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let files = [
        (
            "demoshop_tierchange_customers_20260110.csv",
            &include_bytes!("../sample/demoshop_tierchange_customers_20260110.csv")[..],
        ),
        (
            "demoshop_cardcode_customers_20260110.csv",
            &include_bytes!("../sample/demoshop_cardcode_customers_20260110.csv")[..],
        ),
    ];
    for (name, content) in files {
        let key = format!("incoming/{tenant_id}/memberships/{name}");
        console::drop_object(aws, &key, content.to_vec()).await?;
        println!("   dropped {key}");
        runner.pump().await?;
    }
    if let Some(job) = aws
        .tables
        .jobs(tenant_id)
        .await?
        .into_iter()
        .find(|j| j.filename == files[0].0)
    {
        println!(
            "== 9. {} is {}: {}",
            job.filename,
            job.status.as_str(),
            job.waiting_for.as_deref().unwrap_or("its turn came")
        );
    }
    runner
        .run_until_idle(Some(tenant_id), Duration::from_secs(120))
        .await?;
    let jobs = aws.tables.jobs(tenant_id).await?;
    for (step, (name, _)) in [(10, files[1]), (11, files[0])] {
        let job = jobs
            .iter()
            .find(|j| j.filename == name)
            .ok_or_else(|| anyhow::anyhow!("no job for {name}"))?;
        let key = job
            .processed_key
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("no processed file for {name}"))?;
        println!(
            "== {step}. {name}: job {} {} ({} applied, {} failed); processed file:",
            job.job_id,
            job.status.as_str(),
            job.applied,
            job.failed
        );
        print!(
            "{}",
            String::from_utf8_lossy(&aws.objects.get_bytes(key).await?)
        );
    }
    let tenant = aws
        .tables
        .tenant(tenant_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant vanished"))?;
    println!("== 12. a card: loyalty-local card {tenant_id} my_card_code");
    print!(
        "{}",
        console::card_report(aws, &tenant, "my_card_code").await?
    );
    Ok(())
}
