//! Cold start: a function's release binary started against a local Lambda
//! runtime API (this module: the two calls a function makes, served over
//! loopback), timed from process start to its response to the first event.
//! The events need no AWS call (an S3 test event, empty SQS batches, an API
//! request without a key), so the time is the function's own start-up:
//! settings, AWS clients, the runtime's first poll, one handled event.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Each function and the event its first invocation gets.
pub const FUNCTIONS: [(&str, &str); 4] = [
    (
        "splitter",
        include_str!("../../../functions/splitter/events/sqs-s3-test-event.json"),
    ),
    ("processor", r#"{"Records": []}"#),
    ("finalizer", r#"{"Records": []}"#),
    ("api", API_EVENT),
];

const API_EVENT: &str = r#"{"version": "2.0", "routeKey": "$default", "rawPath": "/templates/points",
  "rawQueryString": "", "headers": {"host": "localhost"},
  "requestContext": {"accountId": "123456789012", "apiId": "local", "domainName": "localhost",
    "domainPrefix": "local", "http": {"method": "GET", "path": "/templates/points",
    "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
    "requestId": "bench", "routeKey": "$default", "stage": "$default",
    "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1795600000000},
  "isBase64Encoded": false}"#;

/// The settings every function reads; no call is made with them.
const SETTINGS: [(&str, &str); 14] = [
    ("LOYALTY_BUCKET", "bench-imports"),
    ("LOYALTY_TENANTS_TABLE", "bench-tenants"),
    ("LOYALTY_JOBS_TABLE", "bench-jobs"),
    ("LOYALTY_WALLETS_TABLE", "bench-wallets"),
    ("LOYALTY_OUTCOMES_TABLE", "bench-outcomes"),
    ("LOYALTY_SUBSCRIPTIONS_TABLE", "bench-subscriptions"),
    ("LOYALTY_INGEST_QUEUE_URL", "http://127.0.0.1:9/ingest"),
    ("LOYALTY_BATCH_QUEUE_URL", "http://127.0.0.1:9/batches.fifo"),
    ("LOYALTY_FINALIZE_QUEUE_URL", "http://127.0.0.1:9/finalize"),
    (
        "LOYALTY_DEAD_BATCH_QUEUE_ARN",
        "arn:aws:sqs:us-east-1:123456789012:batches-dlq.fifo",
    ),
    ("LOYALTY_SENDER", "imports@bench.example"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "bench"),
    ("AWS_SECRET_ACCESS_KEY", "bench"),
];

/// Time from starting `binary` to its answer to `event`.
pub fn measure(binary: &Path, event: &str) -> anyhow::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(SETTINGS)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let answered = serve_one(&listener, event);
    let elapsed = started.elapsed();
    child.kill().ok();
    child.wait().ok();
    answered?;
    Ok(elapsed)
}

/// How long a function may take to answer its first event.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// Serves `/next` once with `event` and returns when the function answers.
/// The runtime's HTTP client may send its answer on a new connection (its
/// pool takes a connection back only once the previous answer is read, and
/// a fast handler can be quicker), so every connection it opens is served.
fn serve_one(listener: &TcpListener, event: &str) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let (answered, answer) = mpsc::channel::<anyhow::Result<()>>();
    let until = Instant::now() + ANSWER_WITHIN;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let (answered, event) = (answered.clone(), event.to_owned());
                std::thread::spawn(move || {
                    if let Some(result) = serve_connection(stream, &event).transpose() {
                        answered.send(result).ok();
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        match answer.recv_timeout(Duration::from_millis(1)) {
            Ok(result) => return result,
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < until => {}
            Err(_) => anyhow::bail!("no answer within {ANSWER_WITHIN:?}"),
        }
    }
}

/// Serves one connection's requests: `Some(())` once the function posts its
/// answer, `None` if the connection closes first.
fn serve_connection(stream: TcpStream, event: &str) -> anyhow::Result<Option<()>> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(ANSWER_WITHIN))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some((method, path, body)) = read_request(&mut reader)? {
        match (method.as_str(), path.as_str()) {
            ("GET", "/2018-06-01/runtime/invocation/next") => {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_millis()
                    + ANSWER_WITHIN.as_millis();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Lambda-Runtime-Aws-Request-Id: bench-1\r\n\
                     Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                     Content-Length: {}\r\n\r\n",
                    event.len()
                );
                writer.write_all(head.as_bytes())?;
                writer.write_all(event.as_bytes())?;
            }
            ("POST", "/2018-06-01/runtime/invocation/bench-1/response") => return Ok(Some(())),
            ("POST", p) if p.ends_with("/error") => {
                anyhow::bail!("the function failed: {}", String::from_utf8_lossy(&body))
            }
            (m, p) => anyhow::bail!("unexpected request {m} {p}"),
        }
    }
    Ok(None)
}

/// The next request on a connection, or `None` once it is closed.
fn read_request(
    reader: &mut BufReader<TcpStream>,
) -> anyhow::Result<Option<(String, String, Vec<u8>)>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some((method, path, body)))
}
