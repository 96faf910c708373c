//! What a refused request is told: `{"error": {"code", "message"}}`, with a
//! stable code per kind of refusal and its HTTP status.

use crate::handler::reply;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use loyalty_aws::AwsError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request is refused: the caller can tell why and act on it.
    #[error("{1}")]
    Refused(Code, String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A failure of this function's own, not of a call to AWS: what failed,
    /// and why.
    #[error("{0}: {1}")]
    Internal(&'static str, String),
}

/// The stable `error.code` of every refusal, and its HTTP status. Clients
/// branch on the code; the message is for people and may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    Unauthorized,
    NotFound,
    InvalidRequest,
    FileTooLarge,
    NotReady,
    ReviewExpired,
    /// The job cannot be reverted (not a finished points import, a dry
    /// run, a reversal itself).
    NotRevertible,
    /// The job was reverted already; the message names its reversal.
    AlreadyReverted,
    IdempotencyKeyReused,
    RequestInProgress,
    /// The tenant made more requests this minute than its share.
    RateLimited,
    Internal,
}

impl Code {
    #[cfg(test)]
    pub(crate) const ALL: [Code; 12] = [
        Code::Unauthorized,
        Code::NotFound,
        Code::InvalidRequest,
        Code::FileTooLarge,
        Code::NotReady,
        Code::ReviewExpired,
        Code::NotRevertible,
        Code::AlreadyReverted,
        Code::IdempotencyKeyReused,
        Code::RequestInProgress,
        Code::RateLimited,
        Code::Internal,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::Unauthorized => "unauthorized",
            Code::NotFound => "not_found",
            Code::InvalidRequest => "invalid_request",
            Code::FileTooLarge => "file_too_large",
            Code::NotReady => "not_ready",
            Code::ReviewExpired => "review_expired",
            Code::NotRevertible => "not_revertible",
            Code::AlreadyReverted => "already_reverted",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::RequestInProgress => "request_in_progress",
            Code::RateLimited => "rate_limited",
            Code::Internal => "internal",
        }
    }

    pub(crate) fn status(self) -> StatusCode {
        match self {
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidRequest | Code::FileTooLarge => StatusCode::BAD_REQUEST,
            Code::NotReady | Code::ReviewExpired | Code::NotRevertible | Code::AlreadyReverted => {
                StatusCode::CONFLICT
            }
            Code::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Code::RequestInProgress => StatusCode::CONFLICT,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub(crate) fn refuse(code: Code, message: impl Into<String>) -> ApiError {
    ApiError::Refused(code, message.into())
}

/// `{"error": {"code": ..., "message": ...}}` with the code's status.
pub(crate) fn error_reply(code: Code, message: &str) -> Response<Body> {
    reply(
        code.status(),
        &json!({"error": {"code": code.as_str(), "message": message}}),
    )
}

/// A tenant past its share of the API this minute: 429, and when to
/// come back (`Retry-After`, RFC 9110 §10.2.3).
pub(crate) fn rate_limited(per_minute: u32, retry_after: u32) -> Response<Body> {
    let message = format!(
        "this tenant made more than {per_minute} requests this minute; try again in \
         {retry_after} s"
    );
    let mut response = error_reply(Code::RateLimited, &message);
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from(retry_after));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_is_its_own_and_an_error_status() {
        let names: HashSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len());
        for code in Code::ALL {
            let status = code.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code:?}"
            );
        }
    }
}
