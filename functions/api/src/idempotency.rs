//! `Idempotency-Key`: a client that retries a request with the same key gets
//! the first response (its status and body) instead of a second import.
//! Which routes take a key is the route table's (`RouteSpec::idempotent`);
//! [`once`] wraps their handling.
//!
//! The key's record (`loyalty_aws::tables`, `IDEMPOTENCY#…` in `jobs`) is
//! the tenant's, and is claimed before the request is handled:
//!
//! - the same key with the same request (method, path and body, byte for
//!   byte) answered: its response again, with `idempotent-replayed: true`;
//! - still being handled: `request_in_progress` (409);
//! - the same key with another request: `idempotency_key_reused` (422);
//! - else the request is handled. A refusal (4xx) is kept like a success,
//!   so a retry is refused the same way; a failure (5xx) deletes the
//!   record, so the retry runs again.
//!
//! Records are kept 24 hours.

use crate::error::{error_reply, refuse, ApiError, Code};
use crate::routes::Matched;
use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use loyalty_aws::tables::{Claim, StoredResponse, MAX_STORED_BODY_BYTES};
use loyalty_aws::Aws;
use sha2::{Digest, Sha256};
use shared::tenant::Tenant;
use std::future::Future;

pub(crate) const HEADER: &str = "idempotency-key";
const MAX_KEY_BYTES: usize = 255;

/// The request's `Idempotency-Key`, if it gave one: 1 to 255 visible ASCII
/// characters (`!` to `~`), given once.
pub(crate) fn key_of(request: &Request) -> Result<Option<&str>, ApiError> {
    let mut values = request.headers().get_all(HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match request.headers().contains_key(HEADER) {
            true => Err(refuse(
                Code::InvalidRequest,
                "Idempotency-Key: give one key, not several",
            )),
            false => Ok(None),
        };
    };
    valid_key(value.as_bytes()).map(Some)
}

fn valid_key(value: &[u8]) -> Result<&str, ApiError> {
    let visible = (1..=MAX_KEY_BYTES).contains(&value.len())
        && value.iter().all(|b| (0x21..=0x7e).contains(b));
    match std::str::from_utf8(value) {
        Ok(key) if visible => Ok(key),
        _ => Err(refuse(
            Code::InvalidRequest,
            format!(
                "Idempotency-Key: '{}' is not 1 to 255 visible ASCII characters (no space)",
                String::from_utf8_lossy(&value[..value.len().min(64)])
            ),
        )),
    }
}

/// The record of `key` on this route (whatever its parameters): a key is
/// the client's, of any content; its record's name is of one size.
fn slot(route_key: &str, key: &str) -> String {
    hex::encode(Sha256::digest(format!("{route_key}\n{key}")))
}

/// What makes two requests the same: the method, the route's segments and
/// the body, each with its length, so that no two requests share one.
fn fingerprint(method: &str, segments: &[&str], body: &[u8]) -> String {
    let mut hash = Sha256::new();
    let parts = std::iter::once(method.as_bytes())
        .chain(segments.iter().map(|s| s.as_bytes()))
        .chain(std::iter::once(body));
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

/// Runs `handling` once per `Idempotency-Key` of the tenant (every time,
/// without a key); see the module.
pub(crate) async fn once(
    aws: &Aws,
    tenant: &Tenant,
    request: &Request,
    matched: &Matched<'_>,
    handling: impl Future<Output = Result<Response<Body>, ApiError>>,
) -> Result<Response<Body>, ApiError> {
    let Some(key) = key_of(request)? else {
        return handling.await;
    };
    let slot = slot(&matched.spec.key(), key);
    let fingerprint = fingerprint(
        request.method().as_str(),
        matched.segments,
        request.body().as_ref(),
    );
    let ticket =
        match aws
            .tables
            .claim_request(&tenant.tenant_id, &slot, &fingerprint)
            .await?
        {
            Claim::Granted(ticket) => ticket,
            Claim::Answered(stored) => return Ok(replay(stored)),
            Claim::InProgress => return Err(refuse(
                Code::RequestInProgress,
                "a request with this Idempotency-Key is still being handled: retry it in a moment",
            )),
            Claim::Reused => {
                return Err(refuse(
                    Code::IdempotencyKeyReused,
                    "this Idempotency-Key was used for another request (another path or body): \
                 a new request takes a new key",
                ))
            }
        };
    let response = match handling.await {
        Ok(response) => response,
        Err(ApiError::Refused(code, message)) => error_reply(code, &message),
        Err(failure) => {
            release(aws, &ticket).await;
            return Err(failure);
        }
    };
    let body = response.body().as_ref();
    if response.status().is_server_error() || body.len() > MAX_STORED_BODY_BYTES {
        release(aws, &ticket).await;
        return Ok(response);
    }
    let stored = StoredResponse {
        status: response.status().as_u16(),
        content_type: response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: body.to_vec(),
    };
    // The request is done whether or not its response is kept: the client
    // gets it. Unkept, the record stays pending, and a retry is told to
    // wait until it counts as abandoned, then runs again.
    if let Err(e) = aws.tables.answer_request(&ticket, &stored).await {
        tracing::error!(error = %e, "an idempotent request's response was not kept");
    }
    Ok(response)
}

async fn release(aws: &Aws, ticket: &loyalty_aws::tables::Ticket) {
    if let Err(e) = aws.tables.release_request(ticket).await {
        tracing::error!(error = %e, "a failed idempotent request's record was not released");
    }
}

/// A kept response, as it was first given.
fn replay(stored: StoredResponse) -> Response<Body> {
    let body = match String::from_utf8(stored.body) {
        Ok(text) => Body::from(text),
        Err(bytes) => Body::from(bytes.into_bytes()),
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(kind) = HeaderValue::from_str(&stored.content_type) {
        response.headers_mut().insert(CONTENT_TYPE, kind);
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_keys(keys: &[&[u8]]) -> Request {
        let mut request = lambda_http::http::Request::builder().uri("/imports");
        for key in keys {
            request = request.header(HEADER, HeaderValue::from_bytes(key).unwrap());
        }
        request.body(Body::Empty).unwrap()
    }

    fn refused(result: Result<Option<&str>, ApiError>) -> Option<Code> {
        match result {
            Err(ApiError::Refused(code, _)) => Some(code),
            _ => None,
        }
    }

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        let longest = "k".repeat(255);
        for key in ["a", "!", "~", "order-42/retry#1", longest.as_str()] {
            let request = with_keys(&[key.as_bytes()]);
            assert_eq!(key_of(&request).ok().flatten(), Some(key));
        }
        assert_eq!(key_of(&with_keys(&[])).ok(), Some(None));
    }

    #[test]
    fn other_keys_are_invalid_requests() {
        let too_long = "k".repeat(256);
        for key in [
            "".as_bytes(),
            b"with space",
            b"tab\there",
            too_long.as_bytes(),
            b"caf\xc3\xa9",
            b"\x80",
        ] {
            assert_eq!(
                refused(key_of(&with_keys(&[key]))),
                Some(Code::InvalidRequest),
                "{key:?}"
            );
        }
        assert_eq!(
            refused(key_of(&with_keys(&[b"a", b"b"]))),
            Some(Code::InvalidRequest)
        );
    }

    #[test]
    fn a_keys_record_is_the_routes_and_of_one_size() {
        let a = slot("POST /imports", "k");
        assert_eq!(a.len(), 64);
        assert_eq!(slot(&"x".repeat(10), &"k".repeat(255)).len(), 64);
        assert_ne!(a, slot("POST /imports/{job_id}/start", "k"));
        assert_ne!(a, slot("POST /imports", "k2"));
    }

    #[test]
    fn requests_differ_by_method_path_or_body_however_their_parts_are_cut() {
        let base = fingerprint("POST", &["imports"], b"{}");
        assert_eq!(base, fingerprint("POST", &["imports"], b"{}"));
        assert_ne!(base, fingerprint("PUT", &["imports"], b"{}"));
        assert_ne!(base, fingerprint("POST", &["imports"], b"{ }"));
        assert_ne!(
            fingerprint("POST", &["imports", "J1", "start"], b""),
            fingerprint("POST", &["imports", "J2", "start"], b"")
        );
        assert_ne!(
            fingerprint("POST", &["ab", "c"], b""),
            fingerprint("POST", &["a", "bc"], b"")
        );
    }
}
