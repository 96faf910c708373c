//! `loyalty-local`: the developer's commands against the local stack, and
//! the operator's against a deployed one (`--stack-env`). `loyalty-local
//! --help` lists them; `loyalty-local <command> --help` describes one.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use local_stack::console;
use local_stack::operator::{self, country, dlq, jobs, language, tenants};
use local_stack::{env, Runner};
use loyalty_aws::Aws;
use shared::kind::ImportKind;
use shared::smile::Mode;
use shared::split::{self, SplitError, SplitRequest};
use shared::tenant::Language;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What works on a deployed stack: what reads or writes the tenants, the
/// jobs, the wallets, the cards and the bucket, what reads the dead-letter
/// queues (and sends an upload's event back from the ingest one), and the
/// watchdog's last sweep. The rest would consume its queues, or needs the
/// emulator (a preview needs no stack at all).
const DEPLOYED_COMMANDS: [&str; 8] = [
    "tenant", "jobs", "job", "wallet", "card", "drop", "dlq", "watchdog",
];

/// The developer's commands against the local stack (.local/stack.env, from
/// `bash infra/local/dev up`), and the operator's against a deployed one
/// (--stack-env).
#[derive(Parser)]
#[command(name = "loyalty-local", arg_required_else_help = true)]
struct Cli {
    /// A deployed stack's settings, for tenant, jobs, job, wallet, card,
    /// drop, dlq and watchdog.
    ///
    /// A function's variables as `aws lambda get-function-configuration
    /// --query Environment.Variables` prints them (a JSON object), or
    /// NAME=value lines. The commands that would consume the stack's queues
    /// or need the emulator are refused; a preview reads no stack.
    #[arg(long, global = true, value_name = "FILE", display_order = 100)]
    stack_env: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Registers a tenant, shows or changes its settings, rotates its API
    /// key, or loads its membership programs.
    #[command(subcommand)]
    Tenant(Tenant),
    /// A tenant's imports, newest first: status, rows decided, counts.
    Jobs(jobs::JobsArgs),
    /// One import: status, progress, counts, dates, errors by code.
    Job(jobs::JobArgs),
    /// What sits in each dead-letter queue (ingest, batches, finalize),
    /// peeked at without being consumed; `dlq replay-ingest` sends upload
    /// events back to the ingest queue.
    ///
    /// SQS has no read that leaves a message alone: a receive hides what it
    /// returns. With a visibility timeout of 0 every receive could return
    /// the same ten messages, so the listing receives with a short one (30
    /// s: each receive then brings messages not seen yet), deletes nothing,
    /// and makes every message it saw visible again at once when it is done
    /// (stopped half way, they come back by themselves after 30 s). Each
    /// receive counts in a message's receive count, which moves nothing
    /// from a dead-letter queue. A FIFO queue (batches) shows the first
    /// message of each group only.
    Dlq(dlq::DlqArgs),
    /// The watchdog's last sweep: when, the jobs it looked at, what it did.
    Watchdog {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A customer's wallet: balance, unexpired points, ledger.
    Wallet {
        /// The tenant's id.
        tenant: String,
        #[command(flatten)]
        customer: Customer,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A card: its customer, tier and tier history.
    Card {
        /// The tenant's id.
        tenant: String,
        card_code: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Puts a file in the tenant's incoming folder, as an operator would with
    /// the S3 console: that starts an import.
    Drop {
        /// The tenant's id.
        tenant: String,
        /// The file to import.
        file: PathBuf,
        /// The import's reason (the object's `reason` metadata).
        #[arg(long)]
        reason: Option<String>,
        /// The object's name under incoming/<tenant>/ (the file's name by
        /// default); under memberships/ it is a membership file.
        #[arg(long = "as", value_name = "NAME")]
        name: Option<String>,
    },
    /// The first rows of a points file on disk as the import's preview would
    /// show them; needs no stack.
    Preview {
        /// The file, as a tenant would upload it.
        file: PathBuf,
        /// The file's kind: points, points_with_expiry or smile (read from
        /// its header by default).
        #[arg(long, value_parser = points_kind)]
        kind: Option<ImportKind>,
        /// How a Smile.io file's points apply: add or set_balance.
        #[arg(long, default_value = "add")]
        mode: Mode,
        /// The country of mobile numbers without a prefix (ISO code).
        #[arg(long, value_name = "CODE", default_value = "FR", value_parser = country)]
        country: String,
    },
    /// Delivers queue messages to the functions, as Lambda would.
    Run {
        /// Stops when every queue is drained and no job is in flight.
        #[arg(long)]
        until_idle: bool,
        /// How long --until-idle waits at most.
        #[arg(
            long,
            value_name = "SECONDS",
            requires = "until_idle",
            default_value = "300",
            value_parser = whole_seconds
        )]
        timeout: u64,
        /// Each invocation's time limit (the template's by default); a short
        /// one makes a long split go on over many invocations.
        #[arg(long, value_name = "SECONDS", value_parser = seconds)]
        function_timeout: Option<Duration>,
    },
    /// The emails sent, or those sent to one tenant's admin.
    Emails {
        /// A tenant's id: only the emails sent to its admin.
        tenant: Option<String>,
    },
    /// What an import costs on AWS, measured on the local stack.
    Costs {
        /// The rows of the measured import.
        #[arg(long, default_value_t = 1000)]
        rows: u64,
    },
    /// Rows per second through the pipeline, for files of several sizes.
    Throughput {
        /// The files' sizes in rows, separated by commas.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        rows: Vec<u64>,
    },
    /// What an import would take and cost on AWS, by a latency model of
    /// its requests: the pipeline against the naive importer, larger files
    /// estimated, shard counts compared.
    Model {
        /// The files' sizes in rows, separated by commas.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        rows: Vec<u64>,
        /// Shard counts to compare on the largest file (none: no comparison).
        #[arg(long, value_delimiter = ',', default_value = "8,16,32")]
        shards: Vec<u32>,
        /// File sizes estimated from the largest one run.
        #[arg(long, value_delimiter = ',', default_value = "200000,5000000")]
        estimate: Vec<u64>,
        /// Hold each request for its modelled latency, a processor per
        /// message group at once (the wall clock then follows the model
        /// wherever the emulator is faster).
        #[arg(long)]
        hold: bool,
        /// The seed of the latencies drawn.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Many tenants importing at once: each one's upload-to-email time
    /// against one tenant importing alone.
    Tenants {
        /// How many tenants import at once.
        #[arg(long, default_value_t = 20)]
        tenants: usize,
        /// The rows of each tenant's file.
        #[arg(long, default_value_t = 2000)]
        rows: u64,
    },
    /// A sample import end to end: tenant, upload, pipeline, results.
    Demo,
    /// Serves the API and its import page on 127.0.0.1 while delivering
    /// the queues: open the page in a browser and import a file end to end.
    Serve {
        /// The port to listen on.
        #[arg(long, default_value_t = local_stack::serve::DEFAULT_PORT)]
        port: u16,
    },
}

#[derive(Subcommand)]
enum Tenant {
    /// Registers a tenant and prints its API key, once.
    Create {
        /// The tenant's id: 3 to 40 characters of a-z, 0-9 and '-'.
        id: String,
        /// Where the import reports are sent.
        #[arg(long, value_name = "EMAIL")]
        admin_email: String,
        /// Another address the import reports are sent to (repeat it for
        /// several; at most 10 addresses with the admin's).
        #[arg(long = "recipient", value_name = "EMAIL")]
        recipients: Vec<String>,
        /// The language of the import reports: en or fr.
        #[arg(long, value_name = "CODE", default_value = "en", value_parser = language)]
        language: Language,
        /// The country of mobile numbers without a prefix (ISO code).
        #[arg(long, value_name = "CODE", default_value = "FR", value_parser = country)]
        country: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A tenant's settings: who its emails go to, in which language, its
    /// country, its key's fingerprint, its programs.
    Show {
        /// The tenant's id.
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Changes a tenant's admin, other recipients, language or country
    /// (each checked as at registration); what is not named stays.
    Set(tenants::SetArgs),
    /// Gives the tenant a new API key and prints it, once: the old key is
    /// refused from then on (within a second: the API reads the tenant
    /// with each request).
    RotateKey {
        /// The tenant's id.
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Loads a tenant's membership programs and tiers from a JSON file
    /// (shaped like infra/local/sample/memberships.json).
    Memberships {
        /// The tenant's id.
        id: String,
        /// The programs and their tiers, as JSON.
        config: PathBuf,
    },
}

/// Whose wallet: one of the customer's identifiers.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct Customer {
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    mobile: Option<String>,
    #[arg(long, value_name = "ID")]
    customer_id: Option<String>,
}

impl Customer {
    /// The identifier's kind, as `console::customer_ref` takes it, and value.
    fn kind_and_value(&self) -> (&'static str, &str) {
        match (&self.email, &self.mobile, &self.customer_id) {
            (Some(email), _, _) => ("email", email),
            (_, Some(mobile), _) => ("mobile", mobile),
            (_, _, Some(id)) => ("customer_id", id),
            // The group is required: clap has refused the command already.
            (None, None, None) => unreachable!("no customer identifier"),
        }
    }
}

/// A kind of points file: the preview does not read membership files.
fn points_kind(value: &str) -> Result<ImportKind, String> {
    let kind: ImportKind = value.parse()?;
    if kind.scope().is_some() {
        return Err("previews are for points files (points, points_with_expiry, smile)".into());
    }
    Ok(kind)
}

fn whole_seconds(value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("'{value}' is not a whole number of seconds"))
}

fn seconds(value: &str) -> Result<Duration, String> {
    value
        .parse()
        .ok()
        .filter(|s: &f64| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("'{value}' is not a number of seconds"))
}

/// The command line, or the help, or a usage error (exit 2). The help ends
/// with every command's usage, from their definitions above.
fn parse() -> (Cli, String) {
    let mut built = Cli::command();
    built.build();
    let matches = Cli::command()
        .after_help(format!("Usage of each command:\n{}", usages(&built)))
        .get_matches();
    let name = matches.subcommand_name().unwrap_or_default().to_owned();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    (cli, name)
}

/// One line per command under `command`, subcommands in place of theirs.
fn usages(command: &clap::Command) -> String {
    let mut lines = Vec::new();
    for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
        if sub.has_subcommands() {
            // A command of its own too (`dlq`, beside `dlq replay-ingest`).
            if sub
                .get_arguments()
                .any(|a| !a.is_global_set() && a.get_id() != "help")
            {
                let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
                lines.push(format!("  {name}{}", synopsis(sub)));
            }
            lines.push(usages(sub));
        } else {
            let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
            lines.push(format!("  {name}{}", synopsis(sub)));
        }
    }
    lines.join("\n")
}

/// A command's arguments, then its options: `<ID> --admin-email <EMAIL>
/// [--country <CODE>]`; one of a group as `(--email <EMAIL> | ...)`.
fn synopsis(command: &clap::Command) -> String {
    let own = |a: &&clap::Arg| !a.is_global_set() && a.get_id() != "help";
    let word = |arg: &clap::Arg| {
        let value = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string);
        match arg.get_long() {
            None => format!("<{value}>"),
            Some(long) if arg.get_action().takes_values() => format!("--{long} <{value}>"),
            Some(long) => format!("--{long}"),
        }
    };
    // The groups that ask for one of their arguments (not the ones clap makes
    // of each command's arguments).
    let groups: Vec<_> = command
        .get_groups()
        .filter(|g| g.is_required_set())
        .collect();
    let grouped: Vec<_> = groups.iter().flat_map(|g| g.get_args()).collect();
    let mut words = Vec::new();
    let (arguments, options): (Vec<_>, Vec<_>) = command
        .get_arguments()
        .filter(own)
        .filter(|a| !grouped.contains(&a.get_id()))
        .partition(|a| a.is_positional());
    for arg in arguments.into_iter().chain(options) {
        if arg.is_required_set() {
            words.push(word(arg));
        } else {
            words.push(format!("[{}]", word(arg)));
        }
    }
    for group in groups {
        let one_of: Vec<String> = group
            .get_args()
            .filter_map(|id| command.get_arguments().find(|a| a.get_id() == id))
            .map(word)
            .collect();
        words.push(format!("({})", one_of.join(" | ")));
    }
    words.iter().map(|w| format!(" {w}")).collect()
}

fn main() -> anyhow::Result<()> {
    let (cli, name) = parse();
    // A preview reads a file on disk as the splitter would: no stack, so a
    // stack named before it is not needed.
    if let Command::Preview {
        file,
        kind,
        mode,
        country,
    } = &cli.command
    {
        return preview(file, *kind, *mode, country);
    }
    if let Some(file) = &cli.stack_env {
        if !DEPLOYED_COMMANDS.contains(&name.as_str()) {
            anyhow::bail!(
                "with --stack-env only {} work; `{name}` is for the local stack",
                DEPLOYED_COMMANDS.join(", ")
            );
        }
        env::load_from(file)?;
    } else {
        env::load()?;
    }
    loyalty_aws::logging::init();
    tokio::runtime::Runtime::new()?.block_on(run(cli.command))
}

/// `loyalty-local preview <file>`: the first rows as the import's preview
/// would show them.
fn preview(file: &Path, kind: Option<ImportKind>, mode: Mode, country: &str) -> anyhow::Result<()> {
    match print_preview(file, kind, mode, country) {
        // `preview ... | head`: the reader has what it wanted.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn print_preview(
    file: &Path,
    kind: Option<ImportKind>,
    smile_mode: Mode,
    country: &str,
) -> anyhow::Result<()> {
    let request = SplitRequest {
        tenant_id: "preview".into(),
        job_id: "preview".into(),
        kind,
        reason: "preview".into(),
        dry_run: true,
        smile_mode,
        default_country: country.to_owned(),
        rows_per_batch: 100,
        shards: 1,
        checkpoint_rows: shared::split::CHECKPOINT_ROWS,
        reverts: None,
    };
    let input =
        std::fs::File::open(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let file = file.display();
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

/// JSON (pretty, one document), or the text `text` makes.
fn print_either(
    json: bool,
    value: serde_json::Value,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    emit(&if json { format!("{value:#}\n") } else { text() })
}

/// Writes `out`; a reader gone before the end (`jobs --json | head`) had
/// what it wanted.
fn emit(out: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let aws = Aws::from_env().await?;
    match command {
        Command::Tenant(Tenant::Create {
            id,
            admin_email,
            recipients,
            language,
            country,
            json,
        }) => {
            let mailing = console::Mailing {
                recipients,
                language,
            };
            let (tenant, key) =
                console::create_tenant_mailing(&aws, &id, &admin_email, &country, &mailing).await?;
            emit(&tenants::key_output(&tenant, &key, json))?;
        }
        Command::Tenant(Tenant::Show { id, json }) => {
            let tenant = tenants::existing(&aws, &id).await?;
            print_either(json, tenants::tenant_json(&tenant), || {
                tenants::tenant_text(&tenant)
            })?;
        }
        Command::Tenant(Tenant::Set(args)) => {
            let tenant = tenants::set(&aws, &args.id, &args.change()).await?;
            print_either(args.json, tenants::tenant_json(&tenant), || {
                tenants::tenant_text(&tenant)
            })?;
        }
        Command::Tenant(Tenant::RotateKey { id, json }) => {
            let (tenant, key) = tenants::rotate_key(&aws, &id).await?;
            emit(&tenants::key_output(&tenant, &key, json))?;
        }
        Command::Jobs(args) => {
            let cursor = args.cursor.as_deref();
            let page = jobs::list(&aws, &args.tenant, args.limit.into(), cursor).await?;
            print_either(args.json, jobs::list_json(&page), || {
                jobs::list_table(&page)
            })?;
        }
        Command::Job(args) => {
            let job = jobs::show(&aws, &args.tenant, &args.job_id).await?;
            print_either(args.json, jobs::job_json(&job), || jobs::job_text(&job))?;
        }
        Command::Dlq(dlq::DlqArgs {
            replay: Some(dlq::DlqCommand::ReplayIngest(args)),
            ..
        }) => {
            let done = dlq::replay_ingest(&aws, &args.which.ids).await?;
            print_either(args.json, dlq::replay_json(&done), || {
                dlq::replay_text(&done)
            })?;
            if !done.iter().all(dlq::Replayed::succeeded) {
                anyhow::bail!("not every message asked for was replayed");
            }
        }
        Command::Dlq(args) => {
            let queues = dlq::list(&aws, args.max.into()).await?;
            print_either(args.json, dlq::list_json(&queues), || {
                dlq::list_text(&queues)
            })?;
        }
        Command::Watchdog { json } => {
            let sweep = operator::watchdog::last_sweep(&aws).await?;
            let now = chrono::Utc::now();
            print_either(
                json,
                operator::watchdog::sweep_json(sweep.as_ref(), now),
                || operator::watchdog::sweep_text(sweep.as_ref(), now),
            )?;
        }
        Command::Tenant(Tenant::Memberships { id, config }) => {
            let json = std::fs::read_to_string(&config)
                .map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
            let config = console::configure_memberships(&aws, &id, &json).await?;
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
        Command::Wallet {
            tenant,
            customer,
            json,
        } => {
            let tenant = tenants::existing(&aws, &tenant).await?;
            let (kind, value) = customer.kind_and_value();
            let customer = console::customer_ref(&tenant, kind, value)?;
            if json {
                let value = console::wallet_json(&aws, &tenant, &customer).await?;
                emit(&format!("{value:#}\n"))?;
            } else {
                emit(&console::wallet_report(&aws, &tenant, &customer).await?)?;
            }
        }
        Command::Card {
            tenant,
            card_code,
            json,
        } => {
            let tenant = tenants::existing(&aws, &tenant).await?;
            if json {
                let value = console::card_json(&aws, &tenant, &card_code).await?;
                emit(&format!("{value:#}\n"))?;
            } else {
                emit(&console::card_report(&aws, &tenant, &card_code).await?)?;
            }
        }
        Command::Costs { rows } => local_stack::measure::costs(&aws, rows).await?,
        Command::Throughput { rows } => local_stack::measure::throughput(&aws, &rows).await?,
        Command::Model {
            rows,
            shards,
            estimate,
            hold,
            seed,
        } => {
            let plan = local_stack::model::Plan {
                rows,
                shards,
                estimate,
                hold,
                seed,
            };
            local_stack::model::model(&aws, &plan).await?
        }
        Command::Tenants { tenants, rows } => {
            local_stack::measure::tenants(&aws, tenants, rows).await?
        }
        Command::Drop {
            tenant,
            file,
            reason,
            name,
        } => {
            // What an operator does with the S3 console or `aws s3 cp`; a
            // file for a tenant that does not exist would be ignored.
            if aws.tables.tenant(&tenant).await?.is_none() {
                anyhow::bail!(
                    "no tenant '{tenant}': create it first (loyalty-local tenant create {tenant} --admin-email <email>)"
                );
            }
            if !file.is_file() {
                anyhow::bail!("no file {}", file.display());
            }
            let name = name.unwrap_or_else(|| {
                file.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let key = format!("incoming/{tenant}/{name}");
            let metadata: Vec<(&str, &str)> =
                reason.iter().map(|r| ("reason", r.as_str())).collect();
            let content = aws_sdk_s3::primitives::ByteStream::from_path(&file).await?;
            console::drop_object(&aws, &key, content, &metadata).await?;
            println!(
                "dropped {} at s3://{}/{key}",
                file.display(),
                aws.objects.bucket()
            );
        }
        Command::Run {
            until_idle,
            timeout,
            function_timeout,
        } => {
            let runner = Runner::new(aws)?.with_function_timeout(
                function_timeout.unwrap_or(local_stack::runner::FUNCTION_TIMEOUT),
            );
            if until_idle {
                runner
                    .run_until_idle(None, Duration::from_secs(timeout))
                    .await?;
                println!("all queues drained; no job in flight");
            } else {
                println!("delivering queue messages to the functions; Ctrl-C to stop");
                runner.run_forever().await?;
            }
        }
        Command::Emails { tenant } => {
            // One tenant's: those sent to its admin.
            let admin = match tenant {
                Some(id) => Some(
                    aws.tables
                        .tenant(&id)
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
                if let Some(html) = &email.html {
                    println!("(and an HTML part of {} bytes)", html.len());
                }
            }
        }
        Command::Preview {
            file,
            kind,
            mode,
            country,
        } => preview(&file, kind, mode, &country)?,
        Command::Demo => local_stack::demo::run(aws).await?,
        Command::Serve { port } => {
            let listener = local_stack::serve::bind(port).await?;
            let address = listener.local_addr()?;
            println!("the import page: http://{address}/");
            println!("create a tenant for its API key: loyalty-local tenant create <id> --admin-email <email>");
            println!("serving the API and delivering queue messages; Ctrl-C to stop");
            local_stack::serve::serve_with_runner(aws, listener).await?;
        }
    }
    Ok(())
}
