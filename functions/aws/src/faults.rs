//! Fault injection: fail AWS calls on cue, to prove that a crash at any write
//! boundary, a throttled table or a batch that never succeeds, followed by
//! the queue's retry, neither loses nor doubles a row.
//!
//! Off in production: only [`Aws::with_faults`](crate::Aws::with_faults)
//! installs it, and no function calls that; the tests and the local runner
//! do. A call can fail before it is sent (the write never happens) or after
//! its response arrives (the write happened, but the caller sees an error,
//! as if the function had died right after it). A throttled attempt never
//! reaches the table (it is turned into a harmless `ListTables`) and gets
//! the answer DynamoDB gives when a table is over its capacity, which the
//! SDK retries with backoff.

use crate::capacity::WriteCost;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeDeserializationInterceptorContextRef,
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// The call fails before reaching AWS.
    BeforeSend,
    /// The call reaches AWS and takes effect; the caller sees a failure.
    AfterResponse,
}

/// Which calls fail.
#[derive(Debug)]
enum Rule {
    /// Counts only.
    None,
    /// The `call`th call fails once.
    Once { call: usize, timing: Timing },
    /// The first `attempts` attempts of the `call`th call are throttled.
    Throttle { call: usize, attempts: u32 },
    /// Every call of this operation fails before it is sent.
    Always { operation: String },
    /// Every call of this operation whose request body holds `text` fails
    /// before it is sent (one batch's writes, say).
    AlwaysContaining { operation: String, text: String },
    /// Each call fails with this probability, at a random timing.
    Random {
        rng: fastrand::Rng,
        probability: f64,
    },
}

#[derive(Debug)]
struct State {
    calls: Vec<String>,
    /// The write units of the DynamoDB requests sent.
    cost: WriteCost,
    /// The IAM actions the requests signed so far needed, on what.
    accesses: BTreeSet<String>,
    rule: Rule,
    /// Besides the rule: calls of an operation whose body holds a text
    /// fail always (`operation`, `text`).
    also_failing: Vec<(String, String)>,
    fired: Vec<String>,
}

/// Counts every AWS call made through the clients it is installed in, and
/// fails some of them if asked.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    state: Arc<Mutex<State>>,
}

/// Marks the one execution that must fail after its response.
#[derive(Debug, Clone)]
struct FailAfterResponse;

impl Storable for FailAfterResponse {
    type Storer = StoreReplace<Self>;
}

/// Marks the execution whose attempts are throttled (kept across attempts).
#[derive(Debug, Clone)]
struct Throttled;

impl Storable for Throttled {
    type Storer = StoreReplace<Self>;
}

/// Marks the one attempt being throttled now.
#[derive(Debug, Clone)]
struct ThrottledAttempt;

impl Storable for ThrottledAttempt {
    type Storer = StoreReplace<Self>;
}

impl FaultPlan {
    fn with(rule: Rule) -> Self {
        FaultPlan {
            state: Arc::new(Mutex::new(State {
                calls: Vec::new(),
                cost: WriteCost::default(),
                accesses: BTreeSet::new(),
                rule,
                also_failing: Vec::new(),
                fired: Vec::new(),
            })),
        }
    }

    /// Counts calls and fails none.
    pub fn counting() -> Self {
        Self::with(Rule::None)
    }

    /// Fails the `n`th call (1-based) once.
    pub fn fail_call(n: usize, timing: Timing) -> Self {
        Self::with(Rule::Once { call: n, timing })
    }

    /// Throttles the first `attempts` attempts of the `n`th call, as an
    /// over-capacity DynamoDB table does.
    pub fn throttle_call(n: usize, attempts: u32) -> Self {
        Self::with(Rule::Throttle { call: n, attempts })
    }

    /// Fails every call of `operation` (`service:Operation`), for ever.
    pub fn fail_always(operation: &str) -> Self {
        Self::with(Rule::Always {
            operation: operation.to_owned(),
        })
    }

    /// Fails every call of `operation` whose request body contains `text`,
    /// for ever: the writes of one batch that always fails, say, among
    /// others that succeed.
    pub fn fail_always_containing(operation: &str, text: &str) -> Self {
        Self::with(Rule::AlwaysContaining {
            operation: operation.to_owned(),
            text: text.to_owned(),
        })
    }

    /// Fails each call with `probability`, before or after it takes effect,
    /// drawn from `seed` (the same seed and the same calls fail the same way).
    pub fn random(seed: u64, probability: f64) -> Self {
        Self::with(Rule::Random {
            rng: fastrand::Rng::with_seed(seed),
            probability,
        })
    }

    /// Fails, besides what the plan fails, every call of `operation` whose
    /// request body contains `text`, for ever.
    pub fn also_failing_always_containing(self, operation: &str, text: &str) -> Self {
        self.lock()
            .also_failing
            .push((operation.to_owned(), text.to_owned()));
        self
    }

    /// The calls made so far, as `service:Operation`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The DynamoDB write units of the requests sent so far.
    pub fn write_cost(&self) -> WriteCost {
        self.lock().cost.clone()
    }

    /// The IAM actions the calls so far needed, and on what
    /// ([`crate::access`]), presigned requests included.
    pub fn accesses(&self) -> BTreeSet<String> {
        self.lock().accesses.clone()
    }

    /// The faults injected so far, described.
    pub fn fired(&self) -> Vec<String> {
        self.lock().fired.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What happens to one call.
enum Verdict {
    Pass,
    Fail(Timing),
    Throttle,
}

impl State {
    fn verdict(&mut self, n: usize, call: &str) -> Verdict {
        match &mut self.rule {
            Rule::None => Verdict::Pass,
            Rule::Once { call: at, timing } if *at == n => Verdict::Fail(*timing),
            Rule::Throttle { call: at, .. } if *at == n => Verdict::Throttle,
            Rule::Always { operation } if operation == call => Verdict::Fail(Timing::BeforeSend),
            Rule::Random { rng, probability } => {
                if rng.f64() >= *probability {
                    Verdict::Pass
                } else if rng.bool() {
                    Verdict::Fail(Timing::BeforeSend)
                } else {
                    Verdict::Fail(Timing::AfterResponse)
                }
            }
            _ => Verdict::Pass,
        }
    }

    /// Whether the rule fails this call for what its request body holds.
    fn matches_body(&self, call: &str, body: &[u8]) -> bool {
        let holds = |operation: &str, text: &str| {
            operation == call
                && body
                    .windows(text.len().max(1))
                    .any(|w| w == text.as_bytes())
        };
        let by_rule = match &self.rule {
            Rule::AlwaysContaining { operation, text } => holds(operation, text),
            _ => false,
        };
        by_rule || self.also_failing.iter().any(|(o, t)| holds(o, t))
    }

    /// Whether one more attempt of the throttled call is throttled.
    fn take_throttle(&mut self) -> bool {
        match &mut self.rule {
            Rule::Throttle { attempts, .. } if *attempts > 0 => {
                *attempts -= 1;
                true
            }
            _ => false,
        }
    }
}

impl Intercept for FaultPlan {
    fn name(&self) -> &'static str {
        "FaultPlan"
    }

    // Not `read_before_execution`: a client's interceptors run that before the
    // operation's metadata is in the config bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let call = cfg
            .load::<Metadata>()
            .map(|m| format!("{}:{}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown".to_owned());
        let mut state = self.lock();
        state.calls.push(call.clone());
        let n = state.calls.len();
        match state.verdict(n, &call) {
            Verdict::Pass => Ok(()),
            Verdict::Fail(timing) => {
                state.fired.push(format!("call {n} ({call}), {timing:?}"));
                match timing {
                    Timing::BeforeSend => {
                        Err(format!("injected fault before call {n} ({call})").into())
                    }
                    Timing::AfterResponse => {
                        cfg.interceptor_state().store_put(FailAfterResponse);
                        Ok(())
                    }
                }
            }
            Verdict::Throttle => {
                state.fired.push(format!("call {n} ({call}), throttled"));
                cfg.interceptor_state().store_put(Throttled);
                Ok(())
            }
        }
    }

    // Before signing, not before sending: presigned requests stop after
    // signing, and what they will do needs the signer's permission too.
    fn read_before_signing(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let request = context.request();
            let accesses = crate::access::of_request(
                meta.service(),
                meta.name(),
                request.uri(),
                request.body().bytes(),
            );
            self.lock().accesses.extend(accesses);
        }
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let call = format!("{}:{}", meta.service(), meta.name());
            let body = context.request().body().bytes().unwrap_or_default();
            let mut state = self.lock();
            if state.matches_body(&call, body) {
                let n = state.calls.len();
                state
                    .fired
                    .push(format!("call {n} ({call}), its body matched"));
                return Err(
                    format!("injected fault before call {n} ({call}): its body matched").into(),
                );
            }
        }
        if cfg.load::<Throttled>().is_some() && self.lock().take_throttle() {
            // A throttled request is refused before the table sees it.
            let request = context.request_mut();
            request
                .headers_mut()
                .insert("x-amz-target", "DynamoDB_20120810.ListTables");
            request.headers_mut().insert("content-length", "2");
            *request.body_mut() = SdkBody::from("{}");
            cfg.interceptor_state().store_put(ThrottledAttempt);
        } else if let Some(meta) = cfg.load::<Metadata>().filter(|m| m.service() == "DynamoDB") {
            let body = context.request().body().bytes().unwrap_or_default();
            let cost = crate::capacity::of_request(meta.name(), body);
            self.lock().cost.add(cost);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<ThrottledAttempt>().is_some() {
            cfg.interceptor_state().unset::<ThrottledAttempt>();
            let mut response = HttpResponse::new(
                StatusCode::try_from(400)?,
                SdkBody::from(
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
                ),
            );
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.0");
            *context.response_mut() = response;
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match cfg.load::<FailAfterResponse>() {
            Some(_) => Err("injected fault after the call took effect".into()),
            None => Ok(()),
        }
    }
}
