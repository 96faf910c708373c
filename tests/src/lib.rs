//! A harness for tests that drive the whole pipeline against the local
//! emulator (`bash infra/local/dev test` starts it): real S3, SQS, DynamoDB
//! and SES calls over HTTP through the AWS SDK, and the functions' own
//! handlers delivered to by the local runner.

pub mod webdriver;

use lambda_http::http::{Method, StatusCode};
use local_stack::console::{self, ApiResponse, SentEmail};
use local_stack::runner::Function;
use local_stack::{env, Runner};
use loyalty_aws::faults::{FaultPlan, Timing};
use loyalty_aws::objects::Presigned;
use loyalty_aws::Aws;
use serde_json::json;
use shared::identifier::CustomerRef;
use shared::job::Job;
use shared::tenant::{Language, Tenant};
use std::time::Duration;

pub struct Harness {
    pub aws: Aws,
    pub runner: Runner,
}

/// A freshly registered tenant of one test.
pub struct TestTenant {
    pub tenant: Tenant,
    pub api_key: String,
}

impl TestTenant {
    pub fn id(&self) -> &str {
        &self.tenant.tenant_id
    }
}

pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).expect("randomness");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

impl Harness {
    pub async fn start() -> Harness {
        // The functions' logs, when asked for (RUST_LOG=warn, say).
        if std::env::var_os("RUST_LOG").is_some() {
            loyalty_aws::logging::init();
        }
        env::load().expect("the local stack's environment");
        let aws = Aws::from_env().await.expect("settings");
        let runner = Runner::new(aws.clone()).expect("queues");
        Harness { aws, runner }
    }

    /// Clients with a fault plan installed, and a short finalizer lease so a
    /// crashed finalizer's job is taken over within seconds.
    pub async fn faulty_clients(&self, plan: FaultPlan) -> Aws {
        let mut settings = self.aws.settings.clone();
        settings.finalize_lease_seconds = 2;
        Aws::with_faults(settings, plan).await
    }

    /// Clients whose watchdog calls a job stalled after `seconds` without
    /// progress (the template's hour is too long for a test).
    pub async fn impatient_clients(&self, seconds: i64) -> Aws {
        let mut settings = self.aws.settings.clone();
        settings.stall_seconds = seconds;
        Aws::new(settings).await
    }

    /// The keys under `processed/<tenant>/`.
    pub async fn processed_keys(&self, tenant: &TestTenant) -> Vec<String> {
        let out = self
            .aws
            .objects
            .client()
            .list_objects_v2()
            .bucket(self.aws.objects.bucket())
            .prefix(format!("processed/{}/", tenant.id()))
            .send()
            .await
            .expect("list");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    /// A new tenant whose admin is `admin@<id>.test`, mobiles read in France.
    pub async fn tenant(&self) -> TestTenant {
        let id = unique("t");
        let (tenant, api_key) =
            console::create_tenant(&self.aws, &id, &format!("admin@{id}.test"), "FR")
                .await
                .expect("tenant");
        TestTenant { tenant, api_key }
    }

    /// A new tenant as [`Harness::tenant`], emailed in `language` to its
    /// admin and to `<name>@<id>.test` for each of `others`.
    pub async fn tenant_mailed(&self, language: Language, others: &[&str]) -> TestTenant {
        let id = unique("t");
        let mailing = console::Mailing {
            recipients: others
                .iter()
                .map(|name| format!("{name}@{id}.test"))
                .collect(),
            language,
        };
        let (tenant, api_key) = console::create_tenant_mailing(
            &self.aws,
            &id,
            &format!("admin@{id}.test"),
            "FR",
            &mailing,
        )
        .await
        .expect("tenant");
        TestTenant { tenant, api_key }
    }

    /// An operator's console drop: `incoming/<tenant>/<path>`, any bytes.
    pub async fn drop_file(
        &self,
        tenant: &TestTenant,
        path: &str,
        content: impl AsRef<[u8]>,
        reason: Option<&str>,
    ) -> String {
        let metadata: Vec<(&str, &str)> = reason.map(|r| ("reason", r)).into_iter().collect();
        self.drop_file_with(tenant, path, content, &metadata).await
    }

    /// Drops a file with these `x-amz-meta-*` metadata.
    pub async fn drop_file_with(
        &self,
        tenant: &TestTenant,
        path: &str,
        content: impl AsRef<[u8]>,
        metadata: &[(&str, &str)],
    ) -> String {
        let key = format!("incoming/{}/{path}", tenant.id());
        console::drop_object(&self.aws, &key, content.as_ref().to_vec(), metadata)
            .await
            .expect("put object");
        key
    }

    pub async fn api(
        &self,
        tenant: &TestTenant,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> ApiResponse {
        console::api(&self.aws, method, path, Some(&tenant.api_key), body)
            .await
            .expect("api call")
    }

    /// Creates a points import through the API without uploading its file:
    /// the ticket (job id, presigned upload).
    pub async fn create_import(
        &self,
        tenant: &TestTenant,
        filename: &str,
        size_bytes: u64,
    ) -> serde_json::Value {
        let body = json!({
            "kind": "points", "reason": "r", "filename": filename, "size_bytes": size_bytes,
        });
        let created = self.api(tenant, Method::POST, "/imports", Some(body)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        created.json().expect("json")
    }

    /// Creates an import through the API and uploads `content` to its presigned URL.
    pub async fn api_import(
        &self,
        tenant: &TestTenant,
        kind: &str,
        filename: &str,
        content: impl AsRef<[u8]>,
        dry_run: bool,
    ) -> String {
        let content = content.as_ref();
        let request = json!({
            "kind": kind, "reason": "test campaign", "filename": filename,
            "size_bytes": content.len(), "dry_run": dry_run,
        });
        self.api_import_with(tenant, request, content).await
    }

    /// Creates an import with this `POST /imports` body and uploads `content`.
    pub async fn api_import_with(
        &self,
        tenant: &TestTenant,
        request: serde_json::Value,
        content: impl AsRef<[u8]>,
    ) -> String {
        let created = self
            .api(tenant, Method::POST, "/imports", Some(request))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let ticket = created.json().expect("json");
        let presigned: Presigned =
            serde_json::from_value(ticket["upload"].clone()).expect("upload");
        let status = console::upload(&presigned, content.as_ref().to_vec())
            .await
            .expect("upload");
        assert!(status.is_success(), "upload refused: {status}");
        ticket["job_id"].as_str().expect("job id").to_owned()
    }

    /// Runs the pipeline until the tenant has nothing left in flight.
    pub async fn settle(&self, tenant: &TestTenant) {
        self.runner
            .run_until_idle(Some(tenant.id()), Duration::from_secs(90))
            .await
            .expect("the pipeline settles");
    }

    /// The tenant's jobs, oldest first.
    pub async fn jobs(&self, tenant: &TestTenant) -> Vec<Job> {
        self.aws.tables.jobs(tenant.id()).await.expect("jobs")
    }

    /// One of the tenant's jobs, which must exist.
    pub async fn job(&self, tenant: &TestTenant, job_id: &str) -> Job {
        self.aws
            .tables
            .job(tenant.id(), job_id)
            .await
            .expect("job")
            .unwrap_or_else(|| panic!("job {job_id} exists"))
    }

    /// The tenant's only job.
    pub async fn only_job(&self, tenant: &TestTenant) -> Job {
        let mut jobs = self.jobs(tenant).await;
        assert_eq!(jobs.len(), 1, "expected one job, found {jobs:?}");
        jobs.remove(0)
    }

    pub async fn processed_file(&self, job: &Job) -> String {
        let key = job.processed_key.as_deref().expect("a processed file");
        String::from_utf8(
            self.aws
                .objects
                .get_bytes(key)
                .await
                .expect("processed file"),
        )
        .expect("utf-8")
    }

    /// Every email whose text mentions the job, whoever it went to.
    pub async fn emails_about(&self, job_id: &str) -> Vec<SentEmail> {
        console::sent_emails()
            .await
            .expect("emails")
            .into_iter()
            .filter(|e| e.body.contains(job_id))
            .collect()
    }

    pub async fn balance(&self, tenant: &TestTenant, customer: &str) -> i64 {
        let customer: CustomerRef = customer.parse().expect("kind:value");
        let view = self
            .aws
            .tables
            .wallet_view(tenant.id(), &customer)
            .await
            .expect("wallet");
        view.wallet
            .map(|w| w.balance_at(chrono::Utc::now()))
            .unwrap_or(0)
    }

    pub async fn ledger_len(&self, tenant: &TestTenant, customer: &str) -> usize {
        let customer: CustomerRef = customer.parse().expect("kind:value");
        self.aws
            .tables
            .wallet_view(tenant.id(), &customer)
            .await
            .expect("wallet")
            .entries
            .len()
    }
}

/// Takes away the batches waiting in the batch queue `runner` delivers
/// from, as if their messages were lost: their job stalls, for the
/// watchdog to close.
pub async fn lose_batches(runner: &Runner) {
    let sqs = runner.aws().queues.client();
    let batches = runner.queue_url(Function::Processor);
    let received = sqs
        .receive_message()
        .queue_url(batches)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    for message in received.messages() {
        sqs.delete_message()
            .queue_url(batches)
            .receipt_handle(message.receipt_handle().expect("a receipt"))
            .send()
            .await
            .expect("delete");
    }
}

/// One row of a processed file: its cells by column name.
pub struct ProcessedRow(pub std::collections::HashMap<String, String>);

impl ProcessedRow {
    pub fn get(&self, column: &str) -> &str {
        self.0.get(column).map(String::as_str).unwrap_or_default()
    }
}

/// Reads a processed file back (any delimiter), row by row.
pub fn processed_rows(processed: &str) -> Vec<ProcessedRow> {
    let mut input = shared::csv_input::CsvInput::open(processed.as_bytes()).expect("a CSV file");
    let names = input.header().names.clone();
    let mut rows = Vec::new();
    while input.next_row().expect("readable").is_some() {
        let cells = input
            .record()
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned());
        rows.push(ProcessedRow(names.iter().cloned().zip(cells).collect()));
    }
    rows
}

/// Expected `outcomes`, written as string slices.
pub fn expected(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

/// (status, error_code, balance_after) of each row of a processed file.
pub fn outcomes(processed: &str) -> Vec<(String, String, String)> {
    processed_rows(processed)
        .iter()
        .map(|r| {
            (
                r.get("status").to_owned(),
                r.get("error_code").to_owned(),
                r.get("balance_after").to_owned(),
            )
        })
        .collect()
}

/// Checks each function's recorded accesses (`FaultPlan::accesses`, by the
/// function's logical id in the template) against its role in
/// `infra/template.yaml`, with `infra/local/check_access.py`; returns its
/// report, or panics naming a call a role does not allow.
pub fn check_roles(name: &str, accesses: &std::collections::BTreeMap<&str, Vec<String>>) -> String {
    for (function, list) in accesses {
        assert!(!list.is_empty(), "{function} made no call");
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = std::env::temp_dir().join(format!("accesses-{name}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(accesses).unwrap()).unwrap();
    let checked = std::process::Command::new(root.join(".local/venv/bin/python"))
        .arg(root.join("infra/local/check_access.py"))
        .arg(root.join("infra/template.yaml"))
        .arg(&file)
        .output()
        .expect("check_access.py runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.status.success(),
        "a call its role does not allow:\n{report}"
    );
    report
}

/// Runs an import once with `function`'s calls counted, then once for each
/// of those calls failing, before it is sent and after its answer came (a
/// crash at that point: the message is delivered again). `import` runs one
/// import on clients carrying the plan; `violations` lists what is wrong
/// with the tenant it imported into, and must list nothing every time.
/// Returns the number of crash scenarios run.
pub async fn crash_at_every_call<I, IF, V, VF>(
    function: Function,
    import: I,
    violations: V,
) -> usize
where
    I: Fn(FaultPlan) -> IF,
    IF: std::future::Future<Output = TestTenant>,
    V: Fn(TestTenant) -> VF,
    VF: std::future::Future<Output = Vec<String>>,
{
    let counting = FaultPlan::counting();
    let t = import(counting.clone()).await;
    assert_eq!(violations(t).await, Vec::<String>::new(), "without faults");
    let calls = counting.calls();
    assert!(!calls.is_empty());
    let mut scenarios = 0;
    for n in 1..=calls.len() {
        for timing in [Timing::BeforeSend, Timing::AfterResponse] {
            let plan = FaultPlan::fail_call(n, timing);
            let t = import(plan.clone()).await;
            let fired = plan.fired().first().cloned();
            let fired = fired.unwrap_or_else(|| format!("call {n} never came"));
            assert_eq!(
                violations(t).await,
                Vec::<String>::new(),
                "{function:?} failing {fired}"
            );
            scenarios += 1;
        }
    }
    println!(
        "{function:?}: {} calls {calls:?}; {scenarios} crash scenarios, no violation",
        calls.len()
    );
    scenarios
}
