//! `loyalty-local --stack-env <file>`: the operator's commands against a
//! stack named by a file instead of `.local/stack.env`. Here the stack is the
//! emulator, described the way a deployed one is: a function's variables as
//! the AWS CLI prints them (a JSON object), plus the emulator's endpoint and
//! credentials. The command runs with nothing else in its environment.

use loyalty_aws::Aws;
use std::path::PathBuf;
use std::process::{Command, Output};

const CLI: &str = env!("CARGO_BIN_EXE_loyalty-local");

/// The stack's variables (`dev test` and `dev up` export them), as JSON.
fn stack_env_json() -> PathBuf {
    let vars: serde_json::Map<String, serde_json::Value> = std::env::vars()
        .filter(|(name, _)| name.starts_with("LOYALTY_") || name.starts_with("AWS_"))
        .map(|(name, value)| (name, value.into()))
        .collect();
    assert!(
        vars.contains_key("LOYALTY_TENANTS_TABLE"),
        "run with the stack's environment: bash infra/local/dev up; set -a; . .local/stack.env"
    );
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let path = std::env::temp_dir().join(format!("stack-env-{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&vars).unwrap()).unwrap();
    path
}

/// A tenant id no other run has used: `<prefix>-<random number>`.
fn tenant_id(prefix: &str) -> String {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).unwrap();
    format!("{prefix}-{}", u32::from_le_bytes(bytes))
}

/// Runs the CLI with only the stack file (and PATH) to go by.
fn cli(stack: &PathBuf, args: &[&str]) -> Output {
    Command::new(CLI)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "error")
        .arg("--stack-env")
        .arg(stack)
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn an_operator_registers_a_tenant_and_its_programs_on_a_stack_named_by_a_file() {
    let stack = stack_env_json();
    let id = tenant_id("ops");
    let created = cli(
        &stack,
        &[
            "tenant",
            "create",
            &id,
            "--admin-email",
            "Admin@Shop.Example",
            "--country",
            "BE",
        ],
    );
    assert!(created.status.success(), "{}", text(&created));
    let out = text(&created);
    assert!(
        out.contains(&format!("API key (shown once, keep it safe): {id}.")),
        "{out}"
    );

    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sample/memberships.json");
    let configured = cli(&stack, &["tenant", "memberships", &id, sample]);
    assert!(configured.status.success(), "{}", text(&configured));

    let aws = Aws::from_env().await.unwrap();
    let tenant = aws.tables.tenant(&id).await.unwrap().expect("the tenant");
    assert_eq!(tenant.admin_email, "admin@shop.example");
    assert_eq!(tenant.default_country, "BE");
    assert!(tenant.memberships.is_some());

    // The same tenant twice is refused, and says so.
    let again = cli(
        &stack,
        &["tenant", "create", &id, "--admin-email", "a@b.example"],
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("exists already"), "{}", text(&again));
    std::fs::remove_file(&stack).unwrap();
}

/// A command's JSON output.
fn json_of(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", text(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)))
}

#[tokio::test]
async fn an_operator_follows_a_tenants_imports_and_keeps_the_stack_on_a_stack_named_by_a_file() {
    let stack = stack_env_json();
    let id = tenant_id("day");
    let created = json_of(&cli(
        &stack,
        &[
            "tenant",
            "create",
            &id,
            "--admin-email",
            "a@shop.example",
            "--json",
        ],
    ));
    let first_key = created["api_key"].as_str().unwrap().to_owned();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sample/welcome-campaign.csv");
    let dropped = cli(&stack, &["drop", &id, sample, "--reason", "Welcome"]);
    assert!(dropped.status.success(), "{}", text(&dropped));
    let aws = Aws::from_env().await.unwrap();
    local_stack::Runner::new(aws.clone())
        .unwrap()
        .run_until_idle(Some(&id), std::time::Duration::from_secs(90))
        .await
        .unwrap();
    finalizer::watchdog::sweep(&aws).await.unwrap();

    // The tenant's jobs, as a table and as JSON, and the one job.
    let listed = cli(&stack, &["jobs", &id]);
    assert!(listed.status.success(), "{}", text(&listed));
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(table.starts_with("JOB "), "{table}");
    assert!(table.contains("welcome-campaign.csv") && table.contains("completed_with_errors"));
    let jobs = json_of(&cli(&stack, &["jobs", &id, "--limit", "5", "--json"]));
    let job_id = jobs["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    assert!(table.contains(&job_id), "{table}");
    let job = json_of(&cli(&stack, &["job", &id, &job_id, "--json"]));
    assert_eq!(job["status"], "completed_with_errors");
    assert!(!job["errors"]["codes"].as_array().unwrap().is_empty());
    let shown = cli(&stack, &["job", &id, &job_id]);
    assert!(text(&shown).contains("errors by code"), "{}", text(&shown));
    let wallet = json_of(&cli(
        &stack,
        &["wallet", &id, "--email", "alice@example.com", "--json"],
    ));
    assert!(wallet["balance"].as_i64().unwrap() > 0, "{wallet}");
    let card = json_of(&cli(&stack, &["card", &id, "no-such-card", "--json"]));
    assert!(card["card"].is_null(), "{card}");
    let refused = cli(&stack, &["jobs", &id, "--limit", "500"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));

    // Its settings changed, its key rotated.
    let set = json_of(&cli(
        &stack,
        &[
            "tenant",
            "set",
            &id,
            "--language",
            "fr",
            "--recipient",
            "ops@shop.example",
            "--json",
        ],
    ));
    assert_eq!(set["language"], "fr");
    assert_eq!(set["recipients"][1], "ops@shop.example");
    let bad = cli(&stack, &["tenant", "set", &id, "--country", "XX"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let rotated = json_of(&cli(&stack, &["tenant", "rotate-key", &id, "--json"]));
    let new_key = rotated["api_key"].as_str().unwrap();
    assert_ne!(new_key, first_key);
    let tenant = aws.tables.tenant(&id).await.unwrap().unwrap();
    let secret = |key: &str| shared::tenant::parse_api_key(key).unwrap().1.to_owned();
    assert!(tenant.accepts_secret(&secret(new_key)));
    assert!(!tenant.accepts_secret(&secret(&first_key)));
    let show = cli(&stack, &["tenant", "show", &id]);
    assert!(
        text(&show).contains(tenant.key_fingerprint()),
        "{}",
        text(&show)
    );

    // The dead-letter queues and the watchdog's last sweep.
    let queues = json_of(&cli(&stack, &["dlq", "--json"]));
    let sources: Vec<&str> = queues["dead_letter_queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["ingest", "batches", "finalize"]);
    let sweep = json_of(&cli(&stack, &["watchdog", "--json"]));
    assert!(sweep["last_sweep"]["started_at"].is_string(), "{sweep}");
    let sweep = cli(&stack, &["watchdog"]);
    assert!(text(&sweep).starts_with("last sweep: "), "{}", text(&sweep));
    std::fs::remove_file(&stack).unwrap();
}

#[test]
fn commands_that_would_consume_a_stacks_queues_are_refused() {
    let stack = stack_env_json();
    for command in ["run", "demo", "emails", "costs", "throughput"] {
        let out = cli(&stack, &[command]);
        assert!(!out.status.success(), "{command}");
        assert!(
            text(&out).contains(&format!("`{command}` is for the local stack")),
            "{command}: {}",
            text(&out)
        );
    }
    let missing = Command::new(CLI)
        .env_clear()
        .args([
            "--stack-env",
            "/nonexistent/stack.json",
            "tenant",
            "create",
            "x",
            "--admin-email",
            "a@b.example",
        ])
        .output()
        .unwrap();
    assert!(
        text(&missing).contains("/nonexistent/stack.json"),
        "{}",
        text(&missing)
    );
    std::fs::remove_file(&stack).unwrap();
}

#[tokio::test]
async fn a_misspelled_option_is_refused_and_registers_nothing() {
    let stack = stack_env_json();
    let id = tenant_id("typo");
    let out = cli(
        &stack,
        &[
            "tenant",
            "create",
            &id,
            "--admin-email",
            "a@b.example",
            "--contry",
            "DE",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("'--contry'"), "{}", text(&out));
    // The option it resembles, suggested.
    assert!(text(&out).contains("--country"), "{}", text(&out));
    let aws = Aws::from_env().await.unwrap();
    assert!(aws.tables.tenant(&id).await.unwrap().is_none());
    std::fs::remove_file(&stack).unwrap();
}

#[tokio::test]
async fn a_drop_for_a_tenant_that_does_not_exist_or_a_file_that_does_not_is_refused() {
    let stack = stack_env_json();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sample/welcome-campaign.csv");
    let refused = cli(&stack, &["drop", "no-such-tenant", sample]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("no tenant 'no-such-tenant'"),
        "{}",
        text(&refused)
    );
    let invalid = cli(&stack, &["drop", "no/such#tenant", sample]);
    assert!(!invalid.status.success(), "{}", text(&invalid));
}

/// Runs the CLI with no stack at all.
fn bare(args: &[&str]) -> Output {
    Command::new(CLI)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_succeeds_and_a_preview_needs_no_stack_but_a_real_country() {
    let help = bare(&["--help"]);
    assert!(help.status.success(), "{}", text(&help));
    assert!(
        text(&help).contains("loyalty-local preview"),
        "{}",
        text(&help)
    );
    assert!(!bare(&[]).status.success());
    // A command's own help, with no stack either.
    let drop = bare(&["drop", "--help"]);
    assert!(drop.status.success(), "{}", text(&drop));
    assert!(text(&drop).contains("--reason"), "{}", text(&drop));
    let create = bare(&["tenant", "create", "--help"]);
    assert!(create.status.success(), "{}", text(&create));
    assert!(text(&create).contains("--admin-email"), "{}", text(&create));

    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sample/welcome-campaign.csv");
    let preview = bare(&["preview", sample]);
    assert!(preview.status.success(), "{}", text(&preview));
    // Named after a stack, which it does not read.
    let stack = stack_env_json();
    let named = cli(&stack, &["preview", sample]);
    assert!(named.status.success(), "{}", text(&named));
    assert_eq!(named.stdout, preview.stdout);

    let country = bare(&["preview", sample, "--country", "XX"]);
    assert!(!country.status.success());
    assert!(text(&country).contains("'XX'"), "{}", text(&country));
    let missing = bare(&["preview", "/no/such/file.csv"]);
    assert!(
        text(&missing).contains("/no/such/file.csv"),
        "{}",
        text(&missing)
    );
}

#[test]
fn a_preview_read_in_part_ends_quietly() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sample/welcome-campaign.csv");
    ends_quietly_unread(Command::new(CLI).args(["preview", sample]));
}

#[test]
fn an_operators_listing_read_in_part_ends_quietly() {
    let stack = stack_env_json();
    let mut command = Command::new(CLI);
    command
        .env("RUST_LOG", "error")
        .arg("--stack-env")
        .arg(&stack);
    ends_quietly_unread(command.args(["dlq", "--json"]));
    std::fs::remove_file(&stack).unwrap();
}

/// The reader is gone before the command writes (as `| head` is after its
/// lines): the write fails, and the command ends quietly.
fn ends_quietly_unread(command: &mut Command) {
    use std::io::Read;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{stderr}");
}

#[test]
fn run_refuses_a_timeout_that_is_no_number_or_that_bounds_nothing() {
    let stack = stack_env_json();
    for args in [
        &["run", "--until-idle", "--timeout", "abc"][..],
        &["run", "--timeout", "5"][..],
        &["run", "--function-timeout", "soon"][..],
    ] {
        let out = local(&stack, args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("timeout"), "{args:?}: {}", text(&out));
    }
}

#[tokio::test]
async fn emails_can_be_one_tenants() {
    let stack = stack_env_json();
    let id = tenant_id("mail");
    let admin = format!("admin@{id}.example");
    let created = cli(&stack, &["tenant", "create", &id, "--admin-email", &admin]);
    assert!(created.status.success(), "{}", text(&created));
    let theirs = local(&stack, &["emails", &id]);
    assert!(theirs.status.success(), "{}", text(&theirs));
    let out = String::from_utf8_lossy(&theirs.stdout).into_owned();
    assert!(
        out.lines()
            .filter(|l| l.starts_with("--- to "))
            .all(|l| l.contains(&admin)),
        "{out}"
    );
    let unknown = local(&stack, &["emails", "no-such-tenant"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("no tenant 'no-such-tenant'"),
        "{}",
        text(&unknown)
    );
}

/// Runs a local command with the stack's variables in its environment, as
/// `set -a; . .local/stack.env` leaves them.
fn local(stack: &PathBuf, args: &[&str]) -> Output {
    Command::new(CLI)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(stack_vars(stack))
        .args(args)
        .output()
        .unwrap()
}

/// The stack's variables, as the local commands read them from their
/// environment.
fn stack_vars(stack: &PathBuf) -> Vec<(String, String)> {
    let vars: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(stack).unwrap()).unwrap();
    vars.into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
        .collect()
}
