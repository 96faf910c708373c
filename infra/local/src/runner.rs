//! Delivers queue messages to the same handler code the Lambdas run.
//!
//! Like an SQS event source mapping, the runner receives as many messages as
//! the template's `BatchSize` for that event (`LOCAL_BATCH_SIZE_*`, written
//! by `provision.py`), hands them to the function as one SQS event, deletes the ones the function
//! did not report as failed, and makes failed ones visible again for retry
//! after a second (instead of the queue's visibility timeout, so local runs
//! do not wait minutes). After five receives the emulator moves a message to
//! its dead-letter queue, as the queue's redrive policy says.
//!
//! With [`Chaos`], it misbehaves on purpose, as the soak test needs. With
//! [`Runner::with_processor_concurrency`], it runs a processor invocation
//! per message group at once, as Lambda's FIFO event source does; by
//! default it delivers one message at a time.
//!
//! Its length (about 540 lines): delivering each queue as its event source
//! mapping would (batch sizes, visibility, retries, FIFO groups, dead-letter
//! queues) is one piece of behaviour.

use crate::env;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use futures_util::stream::{FuturesUnordered, StreamExt};
use loyalty_aws::latency::{self, Spent};
use loyalty_aws::Aws;
use serde_json::json;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// A function fed by a queue, as the template's SQS events say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Splitter,
    /// The splitter, fed by the ingest queue's dead-letter queue.
    DeadUploads,
    Processor,
    /// The processor, fed by the batch queue's dead-letter queue.
    DeadBatches,
    Finalizer,
}

impl Function {
    /// The suffix of the variables `provision.py` writes for the function's
    /// SQS event: `LOCAL_QUEUE_<suffix>` (the queue's URL) and
    /// `LOCAL_BATCH_SIZE_<suffix>` (messages per invocation).
    fn event_variable(self) -> &'static str {
        match self {
            Function::Splitter => "SPLITTER_UPLOADS",
            Function::DeadUploads => "SPLITTER_DEADUPLOADS",
            Function::Processor => "PROCESSOR_BATCHES",
            Function::DeadBatches => "PROCESSOR_DEADBATCHES",
            Function::Finalizer => "FINALIZER_FINALIZE",
        }
    }
}

/// A queue and the function it feeds, as an event source mapping sees them.
struct Feed {
    function: Function,
    url: String,
    /// Messages handed to one invocation at most (SQS: 1 to 10).
    batch_size: i32,
}

impl Feed {
    fn from_env(function: Function) -> anyhow::Result<Feed> {
        let suffix = function.event_variable();
        let url = env::var(&format!("LOCAL_QUEUE_{suffix}"))?;
        let batch_size = env::var(&format!("LOCAL_BATCH_SIZE_{suffix}"))
            .ok()
            .and_then(|size| size.parse().ok())
            .unwrap_or(10);
        Ok(Feed {
            function,
            url,
            batch_size,
        })
    }
}

pub struct Runner {
    aws: Aws,
    queues: Vec<Feed>,
    /// Clients used for one function instead of `aws` (fault injection).
    overrides: Vec<(Function, Aws)>,
    chaos: Option<Chaos>,
    /// Each function's time limit: an invocation still running then is
    /// cut off and fails, as Lambda's is.
    timeouts: Vec<(Function, Duration)>,
    /// Processor invocations in flight at most, each of its own message
    /// group (1: one message at a time).
    processor_concurrency: usize,
    /// Every invocation so far, if asked to keep them.
    invocations: Option<Mutex<Vec<Invocation>>>,
}

/// One invocation of a function, as it ran here.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: Function,
    /// The message groups of its messages (a job's shard each, for the
    /// processor).
    pub groups: Vec<String>,
    /// From its start to its end.
    pub wall: Duration,
    /// The AWS requests it made through clients with a latency model.
    pub spent: Spent,
}

/// Deliveries that go wrong on purpose, drawn from a seed: functions run on
/// clients that fail at random (until a message's third receive, so faults
/// stay transient and nothing reaches a dead-letter queue for them alone),
/// the messages of one receive are handed over shuffled (a FIFO group's own
/// order kept, as SQS keeps it), handled messages are sometimes delivered
/// again instead of deleted, and the splitter and the finalizer are
/// sometimes given a time limit of at most a second (each stops at a
/// checkpoint and goes on in its next run, or is cut off).
pub struct Chaos {
    faulty: Aws,
    redeliver: f64,
    /// The chance that an invocation gets a time limit of 1 to 1,000 ms.
    hurry: f64,
    rng: Mutex<fastrand::Rng>,
    redelivered: AtomicU64,
    hurried: AtomicU64,
}

impl Chaos {
    pub fn new(seed: u64, faulty: Aws, redeliver: f64) -> Self {
        Chaos {
            faulty,
            redeliver,
            hurry: 0.0,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            redelivered: AtomicU64::new(0),
            hurried: AtomicU64::new(0),
        }
    }

    /// Gives the splitter and the finalizer a time limit of 1 to 1,000 ms
    /// (cut off at once, or in time to stop at a checkpoint) with
    /// this chance, at each invocation.
    pub fn with_hurry(mut self, chance: f64) -> Self {
        self.hurry = chance;
        self
    }

    /// Handled messages delivered again so far.
    pub fn redelivered(&self) -> u64 {
        self.redelivered.load(Ordering::Relaxed)
    }

    /// Invocations given a time limit of at most a second so far.
    pub fn hurried(&self) -> u64 {
        self.hurried.load(Ordering::Relaxed)
    }

    fn time_limit(&self, function: Function) -> Option<Duration> {
        if !matches!(function, Function::Splitter | Function::Finalizer) {
            return None;
        }
        let mut rng = self.rng();
        if rng.f64() >= self.hurry {
            return None;
        }
        self.hurried.fetch_add(1, Ordering::Relaxed);
        Some(Duration::from_millis(rng.u64(1..=1000)))
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, fastrand::Rng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A random interleaving of the messages' groups, each group in order.
    fn shuffle(&self, messages: Vec<Message>) -> Vec<Message> {
        let mut groups: Vec<VecDeque<Message>> =
            by_group(messages).into_iter().map(VecDeque::from).collect();
        let mut rng = self.rng();
        let mut shuffled = Vec::new();
        while !groups.is_empty() {
            let i = rng.usize(..groups.len());
            shuffled.extend(groups[i].pop_front());
            if groups[i].is_empty() {
                groups.swap_remove(i);
            }
        }
        shuffled
    }

    fn redeliver_now(&self) -> bool {
        let again = self.rng().f64() < self.redeliver;
        if again {
            self.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        again
    }
}

fn receive_count(message: &Message) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// How long a received message stays hidden from other receivers: the
/// template's six times the functions' time limit.
const LOCAL_VISIBILITY_SECONDS: i32 = 360;
/// The functions' time limit (the template's `Timeout`), unless set
/// otherwise ([`Runner::with_function_timeout`]). An invocation cut off
/// fails, as Lambda's does: no handler outlives its messages' visibility
/// and keeps applying a batch that was handed out again.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a failed message waits before it is delivered again locally.
const LOCAL_RETRY_SECONDS: i32 = 1;
/// The watchdog's schedule (the template's is longer; locally a stalled job
/// shows sooner).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often the watchdog runs while the runner waits for jobs with nothing
/// queued.
const SWEEP_EVERY_WHILE_WAITING: Duration = Duration::from_secs(1);

impl Runner {
    /// Reads the queue of each function (`LOCAL_QUEUE_*`) and its batch
    /// size (`LOCAL_BATCH_SIZE_*`) from the environment.
    pub fn new(aws: Aws) -> anyhow::Result<Self> {
        Ok(Runner {
            queues: vec![
                Feed::from_env(Function::Splitter)?,
                Feed::from_env(Function::DeadUploads)?,
                Feed::from_env(Function::Processor)?,
                Feed::from_env(Function::DeadBatches)?,
                Feed::from_env(Function::Finalizer)?,
            ],
            aws,
            overrides: Vec::new(),
            chaos: None,
            timeouts: Vec::new(),
            processor_concurrency: 1,
            invocations: None,
        })
    }

    /// Runs up to `limit` processor invocations at once, one per message
    /// group in flight, as Lambda's FIFO event source does: the batches of
    /// a job's shards are applied side by side, each shard's in order.
    pub fn with_processor_concurrency(mut self, limit: usize) -> Self {
        self.processor_concurrency = limit.max(1);
        self
    }

    /// Keeps a record of every invocation ([`Runner::take_invocations`]).
    pub fn recording_invocations(mut self) -> Self {
        self.invocations = Some(Mutex::new(Vec::new()));
        self
    }

    /// The invocations recorded since the last call.
    pub fn take_invocations(&self) -> Vec<Invocation> {
        self.invocations
            .as_ref()
            .map(|all| std::mem::take(&mut *all.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default()
    }

    /// Every function's time limit is `timeout` (the splitter stops at a
    /// checkpoint before it and goes on in the next invocation).
    pub fn with_function_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts = [
            Function::Splitter,
            Function::DeadUploads,
            Function::Processor,
            Function::DeadBatches,
            Function::Finalizer,
        ]
        .into_iter()
        .map(|f| (f, timeout))
        .collect();
        self
    }

    /// One function's time limit is `timeout`.
    pub fn with_timeout_for(mut self, function: Function, timeout: Duration) -> Self {
        self.timeouts.retain(|(f, _)| *f != function);
        self.timeouts.push((function, timeout));
        self
    }

    fn timeout_for(&self, function: Function) -> Duration {
        self.timeouts
            .iter()
            .find(|(f, _)| *f == function)
            .map_or(FUNCTION_TIMEOUT, |(_, t)| *t)
    }

    /// Delivers with `chaos` from now on.
    pub fn with_chaos(mut self, chaos: Chaos) -> Self {
        self.chaos = Some(chaos);
        self
    }

    pub fn chaos(&self) -> Option<&Chaos> {
        self.chaos.as_ref()
    }

    /// Delivers `function`'s messages with these clients instead (a fault
    /// plan installed in them makes that function crash on cue).
    pub fn with_clients_for(mut self, function: Function, aws: Aws) -> Self {
        self.overrides.retain(|(f, _)| *f != function);
        self.overrides.push((function, aws));
        self
    }

    /// Delivers with these clients to every function an import runs (the
    /// splitter, the processor, its dead batches, the finalizer), so that a
    /// plan or a model installed in them sees every request the import's
    /// functions make, and none of the runner's own.
    pub fn with_clients_for_an_import(self, aws: Aws) -> Self {
        [
            Function::Splitter,
            Function::Processor,
            Function::DeadBatches,
            Function::Finalizer,
        ]
        .into_iter()
        .fold(self, |runner, function| {
            runner.with_clients_for(function, aws.clone())
        })
    }

    fn clients_for(&self, function: Function) -> &Aws {
        self.overrides
            .iter()
            .find(|(f, _)| *f == function)
            .map(|(_, aws)| aws)
            .unwrap_or(&self.aws)
    }

    pub fn aws(&self) -> &Aws {
        &self.aws
    }

    /// One receive from every queue, delivered; returns how many messages were handled.
    pub async fn pump(&self) -> anyhow::Result<usize> {
        let mut handled = 0;
        for feed in &self.queues {
            handled += match feed.function {
                Function::Processor if self.processor_concurrency > 1 => {
                    self.deliver_concurrently(feed, self.processor_concurrency)
                        .await?
                }
                _ => self.deliver(feed).await?,
            };
        }
        Ok(handled)
    }

    /// Runs until every queue is drained and no job is in flight (of
    /// `tenant`, or of any tenant), or fails after `timeout`. A review
    /// ready for its admin is not in flight: it waits for a person.
    pub async fn run_until_idle(
        &self,
        tenant: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last_sweep = Instant::now();
        loop {
            if self.pump().await? > 0 && Instant::now() <= deadline {
                continue;
            }
            if self.queues_empty().await? {
                let unfinished = self.aws.tables.unfinished_jobs().await?;
                let waiting: Vec<_> = unfinished
                    .iter()
                    .filter(|j| tenant.is_none_or(|t| t == j.tenant_id))
                    .filter(|j| j.status != shared::job::JobStatus::ReadyForReview)
                    .collect();
                if waiting.is_empty() {
                    return Ok(());
                }
                // Jobs in flight with nothing queued: what the scheduled
                // watchdog would look at.
                if last_sweep.elapsed() >= SWEEP_EVERY_WHILE_WAITING {
                    finalizer::watchdog::sweep(&self.aws).await?;
                    last_sweep = Instant::now();
                }
                if Instant::now() > deadline {
                    let list: Vec<String> = waiting
                        .iter()
                        .map(|j| format!("{}/{} ({})", j.tenant_id, j.job_id, j.status.as_str()))
                        .collect();
                    anyhow::bail!(
                        "queues are empty but jobs are still unfinished: {}",
                        list.join(", ")
                    );
                }
            }
            // Nothing to deliver now (failed messages wait out their retry
            // delay): poll again shortly instead of hammering the emulator.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if Instant::now() > deadline {
                anyhow::bail!("the pipeline did not settle within {timeout:?}");
            }
        }
    }

    /// Delivers messages as they come, and runs the watchdog as its schedule
    /// would, until the process is stopped.
    pub async fn run_forever(&self) -> anyhow::Result<()> {
        let mut last_sweep = Instant::now();
        loop {
            if self.pump().await? == 0 {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                let sweep = finalizer::watchdog::sweep(&self.aws).await?;
                debug!(?sweep, "watchdog");
                last_sweep = Instant::now();
            }
        }
    }

    async fn queues_empty(&self) -> anyhow::Result<bool> {
        for Feed { url, .. } in &self.queues {
            let out = self
                .aws
                .queues
                .client()
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await?;
            let count = |name: QueueAttributeName| {
                out.attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if count(QueueAttributeName::ApproximateNumberOfMessages) > 0
                || count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible) > 0
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One receive from one function's queue, delivered.
    pub async fn pump_function(&self, function: Function) -> anyhow::Result<usize> {
        match self.feed(function) {
            Some(feed) => self.deliver(feed).await,
            None => Ok(0),
        }
    }

    fn feed(&self, function: Function) -> Option<&Feed> {
        self.queues.iter().find(|feed| feed.function == function)
    }

    /// The queue that feeds a function.
    pub fn queue_url(&self, function: Function) -> &str {
        self.feed(function)
            .map(|feed| feed.url.as_str())
            .unwrap_or_default()
    }

    async fn deliver(&self, feed: &Feed) -> anyhow::Result<usize> {
        let messages = self.receive(feed, feed.batch_size).await?;
        if messages.is_empty() {
            return Ok(0);
        }
        self.invoke(feed, messages).await
    }

    /// Receives from `feed`'s queue until `limit` invocations are in
    /// flight or nothing more is handed out (SQS hands out no message of a
    /// group with one in flight), runs them at once, each group's messages
    /// in order, and receives again as they end.
    async fn deliver_concurrently(&self, feed: &Feed, limit: usize) -> anyhow::Result<usize> {
        let mut in_flight = FuturesUnordered::new();
        let mut handled = 0;
        let mut drained = false;
        loop {
            while !drained && in_flight.len() < limit {
                let room = (limit - in_flight.len()).min(10) as i32;
                // The invocations in flight go on while the receive waits.
                let receive = self.receive(feed, room);
                tokio::pin!(receive);
                let messages = loop {
                    tokio::select! {
                        messages = &mut receive => break messages?,
                        Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                            handled += result?;
                        }
                    }
                };
                drained = messages.is_empty();
                for group in by_group(messages) {
                    in_flight.push(self.invoke_in_order(feed, group));
                }
            }
            match in_flight.next().await {
                Some(result) => handled += result?,
                None => return Ok(handled),
            }
            drained = false;
        }
    }

    /// One group's messages, `BatchSize` at a time, one invocation after
    /// the other.
    async fn invoke_in_order(&self, feed: &Feed, messages: Vec<Message>) -> anyhow::Result<usize> {
        let mut handled = 0;
        for batch in messages.chunks(feed.batch_size.max(1) as usize) {
            handled += self.invoke(feed, batch.to_vec()).await?;
        }
        Ok(handled)
    }

    async fn receive(&self, feed: &Feed, max: i32) -> anyhow::Result<Vec<Message>> {
        let out = self
            .aws
            .queues
            .client()
            .receive_message()
            .queue_url(&feed.url)
            .max_number_of_messages(max)
            .visibility_timeout(LOCAL_VISIBILITY_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Hands `messages` to the function as one SQS event, then deletes
    /// them or makes them visible again as its answer says.
    async fn invoke(&self, feed: &Feed, mut messages: Vec<Message>) -> anyhow::Result<usize> {
        let (function, url) = (feed.function, feed.url.as_str());
        let sqs = self.aws.queues.client();
        let mut aws = self.clients_for(function);
        if let Some(chaos) = &self.chaos {
            messages = chaos.shuffle(messages);
            if messages.iter().all(|m| receive_count(m) <= 2) {
                aws = &chaos.faulty;
            }
        }
        let event = sqs_event(url, &messages);
        debug!(?function, count = messages.len(), "delivering");
        let timeout = self
            .chaos
            .as_ref()
            .and_then(|chaos| chaos.time_limit(function))
            .unwrap_or_else(|| self.timeout_for(function));
        let deadline = Instant::now() + timeout;
        // On the heap: a function's invocation is a large future (the
        // splitter's most of all), and a test that holds a runner's on its
        // stack, beside its own, overflowed a test thread's 2 MiB.
        let invocation = Box::pin(async {
            match function {
                Function::Splitter | Function::DeadUploads => {
                    splitter::handle_until(aws, event, deadline).await
                }
                Function::Processor | Function::DeadBatches => {
                    processor::handle(aws, serde_json::from_value::<SqsEvent>(event)?).await
                }
                Function::Finalizer => {
                    let event = serde_json::from_value::<SqsEvent>(event)?;
                    finalizer::handle_until(aws, event, deadline).await
                }
            }
        });
        let started = Instant::now();
        let (result, spent) = latency::metered(tokio::time::timeout(timeout, invocation)).await;
        if let Some(all) = &self.invocations {
            all.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Invocation {
                    function,
                    groups: messages.iter().filter_map(group_of).collect(),
                    wall: started.elapsed(),
                    spent,
                });
        }
        let result = result
            .unwrap_or_else(|_| Err(format!("the invocation timed out after {timeout:?}").into()));
        let failed: HashSet<String> = match result {
            Ok(SqsBatchResponse {
                batch_item_failures,
                ..
            }) => batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(err) => {
                warn!(?function, error = %shared::redact::Redacted(&err), "the function failed; every message will be retried");
                messages
                    .iter()
                    .filter_map(|m| m.message_id.clone())
                    .collect()
            }
        };
        for message in &messages {
            let (Some(id), Some(receipt)) = (&message.message_id, &message.receipt_handle) else {
                continue;
            };
            let failed = failed.contains(id);
            let again = !failed && self.chaos.as_ref().is_some_and(Chaos::redeliver_now);
            if failed || again {
                let delay = match (failed, function) {
                    (false, _) => 0,
                    // As on AWS, where the queue's visibility timeout (six
                    // times the function's) outlasts the finalize lease: a
                    // retry does not find the lease of the run that failed
                    // still held, and spend a receive on it. (Up to 10 s:
                    // the tests that crash finalizers shorten the lease.)
                    (true, Function::Finalizer) => (aws.settings.finalize_lease_seconds as i32 + 1)
                        .clamp(LOCAL_RETRY_SECONDS, 10),
                    (true, _) => LOCAL_RETRY_SECONDS,
                };
                sqs.change_message_visibility()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .visibility_timeout(delay)
                    .send()
                    .await?;
            } else {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .send()
                    .await?;
            }
        }
        Ok(messages.len())
    }
}

fn group_of(message: &Message) -> Option<String> {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
        .cloned()
}

/// The messages of one receive, by message group, each group's in order
/// (a message without a group is a group of its own).
fn by_group(messages: Vec<Message>) -> Vec<Vec<Message>> {
    let mut groups: Vec<(Option<String>, Vec<Message>)> = Vec::new();
    for m in messages {
        let group = group_of(&m);
        match groups
            .iter_mut()
            .find(|(g, _)| group.is_some() && *g == group)
        {
            Some((_, queue)) => queue.push(m),
            None => groups.push((group, vec![m])),
        }
    }
    groups.into_iter().map(|(_, queue)| queue).collect()
}

/// The SQS event Lambda would build for these messages.
pub fn sqs_event(queue_url: &str, messages: &[Message]) -> serde_json::Value {
    let arn = queue_arn(queue_url);
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

/// `http://host/123456789012/name` → `arn:aws:sqs:us-east-1:123456789012:name`.
fn queue_arn(url: &str) -> String {
    let mut parts = url.rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    format!("arn:aws:sqs:us-east-1:{account}:{name}")
}
