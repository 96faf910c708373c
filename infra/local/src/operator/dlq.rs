//! `dlq`: what sits in each dead-letter queue of the stack, and `dlq
//! replay-ingest`: an upload's event sent back to the ingest queue.
//!
//! Each dead-letter queue is found from its source queue's redrive policy
//! (the settings name the ingest, batch and finalize queues), so a deployed
//! stack's function variables are enough.
//!
//! The queues are read without being consumed (`super::peek`): a listing
//! hides what it has seen for at most [`PEEK_SECONDS`], then hands it back.

use clap::{Args, Subcommand};
use loyalty_aws::Aws;
use serde::Serialize;
use serde_json::json;

use super::peek::{approximate_count, dead_letter_url, peek, release};
use super::table::{when, Table};
use aws_sdk_sqs::types::Message;
use chrono::{DateTime, Utc};
use shared::batch::Batch;

/// How long a listing hides the messages it has seen, at most.
pub const PEEK_SECONDS: i32 = 30;
/// How long a replay holds the messages while it sends them back.
pub const REPLAY_SECONDS: i32 = 120;
/// The most messages a listing reads of one queue.
pub const MAX_LISTED: usize = 1000;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub replay: Option<DlqCommand>,
    /// How many messages of each queue to read at most.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=MAX_LISTED as i64))]
    pub max: u16,
    /// JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Sends upload events from the ingest dead-letter queue back to the
    /// ingest queue (once the cause of their failure is fixed): each is
    /// deleted from the dead-letter queue only once it was sent.
    ReplayIngest(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub which: Which,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Which messages: all, or those named.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Which {
    /// Every message of the ingest dead-letter queue.
    #[arg(long)]
    pub all: bool,
    /// The message's id, as `dlq` lists it (several, separated by spaces).
    #[arg(value_name = "MESSAGE_ID")]
    pub ids: Vec<String>,
}

/// The stack's queues that have a dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Ingest,
    Batches,
    Finalize,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Ingest, Source::Batches, Source::Finalize];

    pub fn name(self) -> &'static str {
        match self {
            Source::Ingest => "ingest",
            Source::Batches => "batches",
            Source::Finalize => "finalize",
        }
    }

    fn url(self, aws: &Aws) -> &str {
        let settings = &aws.settings;
        match self {
            Source::Ingest => &settings.ingest_queue_url,
            Source::Batches => &settings.batch_queue_url,
            Source::Finalize => &settings.finalize_queue_url,
        }
    }
}

/// One dead-letter queue and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetters {
    /// The queue it takes the failures of.
    pub source: &'static str,
    pub url: String,
    /// Its messages, as SQS counts them (those hidden by a reader too).
    pub approximate_count: u64,
    pub messages: Vec<DeadMessage>,
}

/// A message of a dead-letter queue.
#[derive(Debug, Clone, Serialize)]
pub struct DeadMessage {
    pub message_id: String,
    pub sent_at: Option<DateTime<Utc>>,
    /// Receives since it came to the dead-letter queue (a listing counts).
    pub receives: Option<u64>,
    pub about: About,
}

/// What a message is about, read from its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum About {
    /// An upload's S3 event (ingest).
    Upload {
        tenant: Option<String>,
        /// An API upload's job (a console drop's is named by its version).
        job: Option<String>,
        bucket: String,
        key: String,
        version: Option<String>,
    },
    /// A batch of a job (batches).
    Batch {
        tenant: String,
        job: String,
        number: u64,
        rows: usize,
    },
    /// A finalize request (finalize).
    Finalize { tenant: String, job: String },
    /// A body none of the functions would read.
    Unreadable { bytes: usize, start: String },
}

/// Every dead-letter queue of the stack, with up to `max` messages of each
/// (peeked: see the module's documentation).
pub async fn list(aws: &Aws, max: usize) -> anyhow::Result<Vec<DeadLetters>> {
    let sqs = aws.queues.client();
    let mut queues = Vec::new();
    for source in Source::ALL {
        let url = dead_letter_url(sqs, source.url(aws)).await?;
        let approximate_count = approximate_count(sqs, &url).await?;
        let received = peek(sqs, &url, max, PEEK_SECONDS).await?;
        release(sqs, &url, &received).await;
        queues.push(DeadLetters {
            source: source.name(),
            url,
            approximate_count,
            messages: received.iter().map(|m| dead_message(source, m)).collect(),
        });
    }
    Ok(queues)
}

/// What became of one message asked to be replayed.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub message_id: String,
    /// `replayed`, `not_found`, `not_sent` or `sent_not_deleted`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Replayed {
    pub fn succeeded(&self) -> bool {
        self.outcome == "replayed"
    }
}

/// Sends the chosen messages of the ingest dead-letter queue (every one if
/// `ids` is empty) back to the ingest queue, each deleted from the
/// dead-letter queue only after its send succeeded. A message sent but not
/// deleted stays, and may be replayed again: the splitter takes an upload's
/// event twice as once.
pub async fn replay_ingest(aws: &Aws, ids: &[String]) -> anyhow::Result<Vec<Replayed>> {
    let sqs = aws.queues.client();
    let ingest = Source::Ingest.url(aws);
    let dead = dead_letter_url(sqs, ingest).await?;
    let held = peek(sqs, &dead, MAX_LISTED, REPLAY_SECONDS).await?;
    let chosen =
        |m: &&Message| ids.is_empty() || ids.iter().any(|id| Some(id.as_str()) == m.message_id());
    let (replay, others): (Vec<&Message>, Vec<&Message>) = held.iter().partition(chosen);
    release(sqs, &dead, &others.into_iter().cloned().collect::<Vec<_>>()).await;
    let mut done = Vec::new();
    for message in replay {
        let message_id = message.message_id().unwrap_or_default().to_owned();
        let sent = sqs
            .send_message()
            .queue_url(ingest)
            .message_body(message.body().unwrap_or_default())
            .send()
            .await;
        let (outcome, error) = match sent {
            Err(e) => {
                release(sqs, &dead, std::slice::from_ref(message)).await;
                (
                    "not_sent",
                    Some(loyalty_aws::AwsError::sdk("sqs:SendMessage", e).to_string()),
                )
            }
            Ok(_) => match sqs
                .delete_message()
                .queue_url(&dead)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
            {
                Ok(_) => ("replayed", None),
                Err(e) => (
                    "sent_not_deleted",
                    Some(loyalty_aws::AwsError::sdk("sqs:DeleteMessage", e).to_string()),
                ),
            },
        };
        done.push(Replayed {
            message_id,
            outcome,
            error,
        });
    }
    for id in ids {
        if !done.iter().any(|r| &r.message_id == id) {
            done.push(Replayed {
                message_id: id.clone(),
                outcome: "not_found",
                error: Some(format!(
                    "not in the ingest dead-letter queue, or held by another reader (try again in {REPLAY_SECONDS} s)"
                )),
            });
        }
    }
    Ok(done)
}

fn dead_message(source: Source, message: &Message) -> DeadMessage {
    use aws_sdk_sqs::types::MessageSystemAttributeName as Attribute;
    let attribute = |name: Attribute| {
        message
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<i64>().ok())
    };
    DeadMessage {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        sent_at: attribute(Attribute::SentTimestamp).and_then(DateTime::from_timestamp_millis),
        receives: attribute(Attribute::ApproximateReceiveCount).map(|n| n.max(0) as u64),
        about: about(source, message.body().unwrap_or_default()),
    }
}

/// What a body says, as the queue's consumer would read it.
pub fn about(source: Source, body: &str) -> About {
    let read = || -> Option<About> {
        match source {
            Source::Ingest => {
                let event: serde_json::Value = serde_json::from_str(body).ok()?;
                let delivery = loyalty_aws::s3_event::deliveries(&event).ok()?.pop()?;
                let object = delivery.objects.into_iter().next()?;
                let incoming = shared::job::keys::parse_incoming(&object.key);
                Some(About::Upload {
                    tenant: incoming.map(|i| i.tenant.to_owned()),
                    job: incoming.and_then(|i| i.upload_job).map(str::to_owned),
                    bucket: object.bucket,
                    key: object.key,
                    version: object.version_id,
                })
            }
            Source::Batches => {
                let batch: Batch<serde_json::Value> = serde_json::from_str(body).ok()?;
                Some(About::Batch {
                    tenant: batch.tenant_id,
                    job: batch.job_id,
                    number: batch.number,
                    rows: batch.rows.len(),
                })
            }
            Source::Finalize => {
                let request: loyalty_aws::queues::FinalizeRequest =
                    serde_json::from_str(body).ok()?;
                Some(About::Finalize {
                    tenant: request.tenant_id,
                    job: request.job_id,
                })
            }
        }
    };
    read().unwrap_or_else(|| About::Unreadable {
        bytes: body.len(),
        start: body.chars().take(80).collect(),
    })
}

pub fn list_json(queues: &[DeadLetters]) -> serde_json::Value {
    json!({ "dead_letter_queues": queues })
}

/// Each queue: its count, then a table of its messages.
pub fn list_text(queues: &[DeadLetters]) -> String {
    let mut out = String::new();
    for queue in queues {
        out.push_str(&format!(
            "{} dead-letter queue: {} messages ({})\n",
            queue.source, queue.approximate_count, queue.url
        ));
        if queue.messages.is_empty() {
            continue;
        }
        let mut table = Table::new(&["MESSAGE", "SENT", "RECEIVES", "TENANT", "JOB", "WHAT"]);
        for m in &queue.messages {
            let (tenant, job, what) = match &m.about {
                About::Upload {
                    tenant,
                    job,
                    bucket,
                    key,
                    version,
                } => (
                    tenant.clone().unwrap_or_default(),
                    job.clone().unwrap_or_default(),
                    format!(
                        "s3://{bucket}/{key}{}",
                        version
                            .as_ref()
                            .map_or(String::new(), |v| format!(" version {v}"))
                    ),
                ),
                About::Batch {
                    tenant,
                    job,
                    number,
                    rows,
                } => (
                    tenant.clone(),
                    job.clone(),
                    format!("batch {number}, {rows} rows"),
                ),
                About::Finalize { tenant, job } => {
                    (tenant.clone(), job.clone(), "finalize request".to_owned())
                }
                About::Unreadable { bytes, start } => (
                    String::new(),
                    String::new(),
                    format!("unreadable, {bytes} bytes: {start}"),
                ),
            };
            table.row(vec![
                m.message_id.clone(),
                when(m.sent_at),
                m.receives.map_or("?".to_owned(), |n| n.to_string()),
                tenant,
                job,
                what,
            ]);
        }
        out.push_str(&table.render());
        if (queue.messages.len() as u64) < queue.approximate_count {
            out.push_str(&format!(
                "  ({} shown: the others are held by a reader, wait behind their FIFO group, or are past --max)\n",
                queue.messages.len()
            ));
        }
    }
    out
}

pub fn replay_json(done: &[Replayed]) -> serde_json::Value {
    json!({ "replayed": done })
}

pub fn replay_text(done: &[Replayed]) -> String {
    if done.is_empty() {
        return "the ingest dead-letter queue is empty: nothing replayed\n".to_owned();
    }
    done.iter()
        .map(|r| match &r.error {
            None => format!("{}: {}\n", r.message_id, r.outcome),
            Some(e) => format!("{}: {} ({e})\n", r.message_id, r.outcome),
        })
        .collect()
}
