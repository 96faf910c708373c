//! A latency model of AWS, for the local runner: what an import would take
//! on AWS, where the emulator answers in its own time.
//!
//! Every request gets a latency drawn, from a seeded generator, from the
//! distribution of its operation ([`Parameters`]: log-normal by median and
//! 99th percentile, plus a cost per item for transactions and batch reads,
//! and per byte for S3 objects). The model keeps two accounts of each
//! request: the time it took here (the emulator's, plus any hold) and the
//! time drawn. With [`LatencyModel::holding`] it also holds the request
//! until it has taken the drawn time in all, so that a run's wall clock is
//! the model's wherever the emulator is faster than AWS; the emulator still
//! serves one DynamoDB request at a time, so a run with many invocations at
//! once can be bound by it instead, and [`metered`] gives each invocation's
//! time with the emulator's taken out and the model's put in.
//!
//! Off in production: only [`Aws::with_model`](crate::Aws::with_model)
//! installs it, and no function calls that.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The 99th percentile of the standard normal distribution.
const Z99: f64 = 2.326_347_874;

/// A log-normal distribution of milliseconds, given by its median and its
/// 99th percentile (the figures latency is published and alarmed by).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median_ms: f64,
    pub p99_ms: f64,
}

impl Spread {
    pub const fn new(median_ms: f64, p99_ms: f64) -> Self {
        Spread { median_ms, p99_ms }
    }

    /// The underlying normal's standard deviation.
    fn sigma(&self) -> f64 {
        (self.p99_ms / self.median_ms).ln().max(0.0) / Z99
    }

    /// The distribution's mean (above the median: the tail is long).
    pub fn mean_ms(&self) -> f64 {
        self.median_ms * (self.sigma().powi(2) / 2.0).exp()
    }

    /// One latency, in milliseconds.
    pub fn draw(&self, rng: &mut fastrand::Rng) -> f64 {
        self.median_ms * (self.sigma() * standard_normal(rng)).exp()
    }
}

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    let u = 1.0 - rng.f64(); // in (0, 1]: the logarithm is finite
    let v = rng.f64();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The kinds of request the model tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// `GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`: one item.
    DynamoDbItem,
    /// `TransactWriteItems`, `TransactGetItems`: per item on top.
    DynamoDbTransaction,
    /// `BatchGetItem`, `BatchWriteItem`: per item on top.
    DynamoDbBatch,
    /// `Query`, `Scan`.
    DynamoDbQuery,
    /// Any other DynamoDB call (tables, descriptions).
    DynamoDbOther,
    SqsSend,
    SqsReceive,
    /// Deletes, visibility changes, attributes.
    SqsOther,
    /// `GetObject`: its bytes on top.
    S3Get,
    /// `PutObject`, `UploadPart`: its bytes on top.
    S3Put,
    /// Heads, lists, copies, multipart starts and ends, deletes.
    S3Other,
    Ses,
}

impl Class {
    /// The class of a call (`service`, `operation` as the SDK names them).
    pub fn of(service: &str, operation: &str) -> Class {
        match (service, operation) {
            ("DynamoDB", "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem") => {
                Class::DynamoDbItem
            }
            ("DynamoDB", "TransactWriteItems" | "TransactGetItems") => Class::DynamoDbTransaction,
            ("DynamoDB", "BatchGetItem" | "BatchWriteItem") => Class::DynamoDbBatch,
            ("DynamoDB", "Query" | "Scan") => Class::DynamoDbQuery,
            ("DynamoDB", _) => Class::DynamoDbOther,
            ("SQS", "SendMessage" | "SendMessageBatch") => Class::SqsSend,
            ("SQS", "ReceiveMessage") => Class::SqsReceive,
            ("SQS", _) => Class::SqsOther,
            ("S3", "GetObject") => Class::S3Get,
            ("S3", "PutObject" | "UploadPart") => Class::S3Put,
            ("S3", _) => Class::S3Other,
            _ => Class::Ses,
        }
    }
}

/// The model's figures. Their sources are in BENCHMARKS.md §5 ("On AWS, a
/// model").
#[derive(Debug, Clone, PartialEq)]
pub struct Parameters {
    /// A one-item DynamoDB request; also the base of transactions, batches
    /// and queries.
    pub dynamodb_item: Spread,
    /// Added per item of a transaction or a batch.
    pub dynamodb_per_item_ms: f64,
    pub dynamodb_query: Spread,
    pub sqs: Spread,
    /// Time to the first byte of an S3 request.
    pub s3_first_byte: Spread,
    /// An S3 object's bytes per second, after the first byte.
    pub s3_bytes_per_second: f64,
    pub ses: Spread,
}

impl Parameters {
    /// Requests from a Lambda function to the services of its own region.
    pub fn in_region() -> Self {
        Parameters {
            dynamodb_item: Spread::new(5.0, 20.0),
            dynamodb_per_item_ms: 0.15,
            dynamodb_query: Spread::new(8.0, 30.0),
            sqs: Spread::new(10.0, 40.0),
            s3_first_byte: Spread::new(30.0, 150.0),
            s3_bytes_per_second: 50.0 * 1024.0 * 1024.0,
            ses: Spread::new(50.0, 200.0),
        }
    }

    /// One request's latency, in milliseconds: `items` written or read (a
    /// transaction's or a batch's), `bytes` of object carried (S3).
    pub fn draw(&self, class: Class, items: usize, bytes: u64, rng: &mut fastrand::Rng) -> f64 {
        let per_item = items as f64 * self.dynamodb_per_item_ms;
        let transfer = bytes as f64 * 1000.0 / self.s3_bytes_per_second;
        match class {
            Class::DynamoDbItem | Class::DynamoDbOther => self.dynamodb_item.draw(rng),
            Class::DynamoDbTransaction | Class::DynamoDbBatch => {
                self.dynamodb_item.draw(rng) + per_item
            }
            Class::DynamoDbQuery => self.dynamodb_query.draw(rng),
            Class::SqsSend | Class::SqsReceive | Class::SqsOther => self.sqs.draw(rng),
            Class::S3Get | Class::S3Put => self.s3_first_byte.draw(rng) + transfer,
            Class::S3Other => self.s3_first_byte.draw(rng),
            Class::Ses => self.ses.draw(rng),
        }
    }
}

/// The items a DynamoDB transaction or batch carries, from its JSON body.
pub fn items_of(operation: &str, body: &[u8]) -> usize {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    let count = |v: &serde_json::Value| v.as_array().map_or(0, Vec::len);
    match operation {
        "TransactWriteItems" | "TransactGetItems" => count(&json["TransactItems"]),
        "BatchGetItem" => json["RequestItems"]
            .as_object()
            .map_or(0, |tables| tables.values().map(|t| count(&t["Keys"])).sum()),
        "BatchWriteItem" => json["RequestItems"]
            .as_object()
            .map_or(0, |tables| tables.values().map(count).sum()),
        _ => 0,
    }
}

/// Time spent in requests: as it was here, and as the model has it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    pub requests: u64,
    /// From sending each request to its response, holds included.
    pub took: Duration,
    /// The latencies drawn.
    pub modelled: Duration,
}

impl Spent {
    fn add(&mut self, took: Duration, modelled: Duration) {
        self.requests += 1;
        self.took += took;
        self.modelled += modelled;
    }

    /// What `wall` (a stretch that made these requests one after the
    /// other) would have been with the model's latencies instead of the
    /// time they took here.
    pub fn modelled_time(&self, wall: Duration) -> Duration {
        wall.saturating_sub(self.took) + self.modelled
    }
}

type Meter = Arc<Mutex<Spent>>;

tokio::task_local! {
    /// The account of the invocation being run (see [`metered`]).
    static METER: Meter;
}

/// The accounts of the work being [`metered`] now, in any task.
static IN_FLIGHT: Mutex<Vec<Meter>> = Mutex::new(Vec::new());

fn in_flight() -> std::sync::MutexGuard<'static, Vec<Meter>> {
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a meter off [`IN_FLIGHT`] when its work ends, or is dropped.
struct Landed(Meter);

impl Drop for Landed {
    fn drop(&mut self) {
        in_flight().retain(|m| !Arc::ptr_eq(m, &self.0));
    }
}

/// Runs `work`, and returns with its output the requests it made through
/// clients with a [`LatencyModel`], as they took and as modelled.
///
/// A request made from a thread the work handed a blocking part to (the
/// split's and the processed file's CSV run in `spawn_blocking`, calling
/// back into the runtime) is outside the work's task: it is charged to the
/// work if no other is metered at the time, and to none otherwise (its time
/// then counts as the work's own).
pub async fn metered<F: Future>(work: F) -> (F::Output, Spent) {
    let meter = Meter::default();
    in_flight().push(meter.clone());
    let landed = Landed(meter.clone());
    let output = METER.scope(meter.clone(), work).await;
    drop(landed);
    let spent = *meter.lock().unwrap_or_else(|e| e.into_inner());
    (output, spent)
}

/// Charges a request to the work it was made for (see [`metered`]).
fn charge(took: Duration, modelled: Duration) {
    let add = |meter: &Meter| {
        meter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(took, modelled)
    };
    if METER.try_with(add).is_err() {
        if let [only] = in_flight().as_slice() {
            add(only);
        }
    }
}

#[derive(Debug)]
struct State {
    parameters: Parameters,
    rng: fastrand::Rng,
    hold: bool,
    by_class: BTreeMap<Class, Tally>,
}

/// The requests of one class.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub requests: u64,
    pub modelled: Duration,
    /// The 64 KiB chunks of their bodies, each request at least one (SQS
    /// bills a request per chunk of its payload).
    pub chunks: u64,
}

/// Bytes per billed chunk of an SQS request.
const CHUNK_BYTES: u64 = 64 * 1024;

/// Draws each request's latency from [`Parameters`] and accounts for it
/// (and holds it, if asked).
#[derive(Debug, Clone)]
pub struct LatencyModel {
    state: Arc<Mutex<State>>,
}

/// When the attempt was sent, and what it carries.
#[derive(Debug, Clone)]
struct Sent {
    at: Instant,
    items: usize,
    /// An S3 object's bytes sent.
    bytes: u64,
    /// The request body's length.
    body: u64,
}

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

impl LatencyModel {
    /// Accounts for each request without holding it; draws from `seed`.
    pub fn new(parameters: Parameters, seed: u64) -> Self {
        LatencyModel {
            state: Arc::new(Mutex::new(State {
                parameters,
                rng: fastrand::Rng::with_seed(seed),
                hold: false,
                by_class: BTreeMap::new(),
            })),
        }
    }

    /// Also holds each request until it has taken its drawn latency.
    pub fn holding(self) -> Self {
        self.lock().hold = true;
        self
    }

    pub fn parameters(&self) -> Parameters {
        self.lock().parameters.clone()
    }

    /// The requests so far, per class.
    pub fn by_class(&self) -> BTreeMap<Class, Tally> {
        self.lock().by_class.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Holds the current thread for `time` without stopping the runtime's other
/// tasks (an interceptor's hooks are not async).
fn hold(time: Duration) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let multi_thread = Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(|| std::thread::sleep(time));
    } else {
        std::thread::sleep(time);
    }
}

impl Intercept for LatencyModel {
    fn name(&self) -> &'static str {
        "LatencyModel"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let body = request.body().bytes().unwrap_or_default();
        let (items, bytes) = match cfg.load::<Metadata>() {
            Some(meta) if meta.service() == "DynamoDB" => (items_of(meta.name(), body), 0),
            Some(meta) if meta.service() == "S3" => (0, body.len() as u64),
            _ => (0, 0),
        };
        cfg.interceptor_state().store_put(Sent {
            at: Instant::now(),
            items,
            bytes,
            body: body.len() as u64,
        });
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(sent), Some(meta)) = (cfg.load::<Sent>(), cfg.load::<Metadata>()) else {
            return Ok(());
        };
        let class = Class::of(meta.service(), meta.name());
        // An object read arrives after its headers: its length says how
        // much will.
        let received = match class {
            Class::S3Get => context
                .response()
                .headers()
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0),
            _ => 0,
        };
        let observed = sent.at.elapsed();
        let (modelled, holding) = {
            let mut state = self.lock();
            let State {
                parameters, rng, ..
            } = &mut *state;
            let ms = parameters.draw(class, sent.items, sent.bytes + received, rng);
            let modelled = Duration::from_secs_f64(ms / 1000.0);
            let tally = state.by_class.entry(class).or_default();
            tally.requests += 1;
            tally.modelled += modelled;
            tally.chunks += sent.body.div_ceil(CHUNK_BYTES).max(1);
            (modelled, state.hold)
        };
        if holding && modelled > observed {
            hold(modelled - observed);
        }
        charge(sent.at.elapsed(), modelled);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(spread: Spread, n: usize) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut all: Vec<f64> = (0..n).map(|_| spread.draw(&mut rng)).collect();
        all.sort_by(f64::total_cmp);
        all
    }

    #[test]
    fn draws_have_the_median_and_the_99th_percentile_asked_for() {
        let spread = Spread::new(5.0, 20.0);
        let all = draws(spread, 200_000);
        let at = |q: f64| all[(all.len() as f64 * q) as usize];
        assert!((at(0.5) - 5.0).abs() < 0.1, "median {}", at(0.5));
        assert!((at(0.99) - 20.0).abs() < 0.8, "p99 {}", at(0.99));
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        assert!((mean - spread.mean_ms()).abs() < 0.1, "mean {mean}");
        assert!(all[0] > 0.0);
    }

    #[test]
    fn a_spread_without_a_tail_is_constant() {
        let all = draws(Spread::new(10.0, 10.0), 100);
        assert!(all.iter().all(|&ms| (ms - 10.0).abs() < 1e-9));
    }

    #[test]
    fn the_same_seed_draws_the_same_latencies() {
        let p = Parameters::in_region();
        let run = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..10)
                .map(|_| p.draw(Class::SqsSend, 0, 0, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn transactions_cost_per_item_and_objects_per_byte() {
        let p = Parameters {
            dynamodb_item: Spread::new(5.0, 5.0),
            s3_first_byte: Spread::new(30.0, 30.0),
            ..Parameters::in_region()
        };
        let mut rng = fastrand::Rng::with_seed(1);
        let one = p.draw(Class::DynamoDbItem, 0, 0, &mut rng);
        let hundred = p.draw(Class::DynamoDbTransaction, 100, 0, &mut rng);
        assert!((one - 5.0).abs() < 1e-9);
        assert!((hundred - (5.0 + 100.0 * p.dynamodb_per_item_ms)).abs() < 1e-9);
        let part = p.draw(Class::S3Put, 0, 8 * 1024 * 1024, &mut rng);
        assert!((part - (30.0 + 8.0 / 50.0 * 1000.0)).abs() < 1e-6, "{part}");
    }

    #[test]
    fn calls_are_classed_by_service_and_operation() {
        assert_eq!(Class::of("DynamoDB", "UpdateItem"), Class::DynamoDbItem);
        assert_eq!(
            Class::of("DynamoDB", "TransactWriteItems"),
            Class::DynamoDbTransaction
        );
        assert_eq!(Class::of("DynamoDB", "BatchGetItem"), Class::DynamoDbBatch);
        assert_eq!(Class::of("SQS", "SendMessageBatch"), Class::SqsSend);
        assert_eq!(Class::of("S3", "UploadPart"), Class::S3Put);
        assert_eq!(Class::of("S3", "HeadObject"), Class::S3Other);
        assert_eq!(Class::of("SESv2", "SendEmail"), Class::Ses);
    }

    #[test]
    fn items_are_counted_from_the_request() {
        let transaction = br#"{"TransactItems":[{"Put":{}},{"Update":{}},{"ConditionCheck":{}}]}"#;
        assert_eq!(items_of("TransactWriteItems", transaction), 3);
        let batch = br#"{"RequestItems":{"a":{"Keys":[{},{}]},"b":{"Keys":[{}]}}}"#;
        assert_eq!(items_of("BatchGetItem", batch), 3);
        let writes = br#"{"RequestItems":{"a":[{},{}]}}"#;
        assert_eq!(items_of("BatchWriteItem", writes), 2);
        assert_eq!(items_of("PutItem", b"{}"), 0);
        assert_eq!(items_of("TransactWriteItems", b"not json"), 0);
    }

    #[test]
    fn modelled_time_swaps_the_requests_time_for_the_model() {
        let mut spent = Spent::default();
        spent.add(Duration::from_millis(30), Duration::from_millis(5));
        spent.add(Duration::from_millis(10), Duration::from_millis(25));
        assert_eq!(
            spent.modelled_time(Duration::from_millis(100)),
            Duration::from_millis(90)
        );
        assert_eq!(spent.requests, 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_blocking_part_of_the_only_work_metered_is_charged_to_it() {
        let (out, spent) = metered(async {
            charge(Duration::from_millis(2), Duration::from_millis(5));
            tokio::task::spawn_blocking(|| {
                charge(Duration::from_millis(1), Duration::from_millis(7));
                3
            })
            .await
            .unwrap()
        })
        .await;
        assert_eq!(out, 3);
        assert_eq!(spent.requests, 2);
        assert_eq!(spent.modelled, Duration::from_millis(12));
        assert!(in_flight().is_empty());
    }
}
