//! The API's Idempotency-Key records (`jobs` table, under the tenant, `sk =
//! IDEMPOTENCY#<slot>`, the slot a SHA-256 in hex of the route and the key,
//! so that a key of any content makes a sort key of one size): a request
//! is claimed before it is handled, answered with its response after, or
//! released if it failed, so that its retry runs it again.
//!
//! The record holds the request's fingerprint, its state (`pending`, then
//! `done`), the claim's token, when it was claimed, and once done the
//! response's status, content type and body; `ttl` is 24 hours after the
//! claim. Its size: about 300 bytes besides the body, which is at most
//! [`MAX_STORED_BODY_BYTES`], so under DynamoDB's 400 KB item (a test
//! below builds the largest).

use super::request::unless_condition_failed;
use super::{item, n, s, Item, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

/// How long a key's first response is kept and answers its retries.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;
/// The largest response body a record keeps. The routes that take a key
/// answer far less: `POST /imports` about 2 KB (its presigned URL), a
/// review started or discarded the job's status (its preview of 50 rows,
/// cells of at most 100 characters: tens of KB).
pub const MAX_STORED_BODY_BYTES: usize = 300 * 1024;
/// A claim still pending this long after it was made was left by a request
/// that died (the API function times out after 10 s): the same request
/// may take it over.
const ABANDONED_CLAIM_SECONDS: i64 = 60;
const PENDING: &str = "pending";
const DONE: &str = "done";

/// A response as a record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// What claiming a key for a request found.
#[derive(Debug)]
pub enum Claim {
    /// The request is this caller's to handle, then answer or release.
    Granted(Ticket),
    /// The same request was answered already: this is its response.
    Answered(StoredResponse),
    /// The same request is being handled by another call.
    InProgress,
    /// The key was used for another request.
    Reused,
}

/// A granted claim: only its holder answers or releases the record.
#[derive(Debug)]
pub struct Ticket {
    tenant_id: String,
    sk: String,
    token: String,
}

fn idempotency_sk(slot: &str) -> String {
    format!("IDEMPOTENCY#{slot}")
}

/// The record as claimed.
fn claim_item(tenant_id: &str, sk: &str, fingerprint: &str, token: &str, now: i64) -> Item {
    item([
        ("tenant_id", s(tenant_id)),
        ("sk", s(sk)),
        ("request_hash", s(fingerprint)),
        ("state", s(PENDING)),
        ("claim", s(token)),
        ("claimed_at", n(now)),
        ("ttl", n(now + IDEMPOTENCY_TTL_HOURS * 3600)),
    ])
}

/// What answering sets on the record.
fn answer_values(response: &StoredResponse) -> [(&'static str, AttributeValue); 4] {
    [
        (":done", s(DONE)),
        (":status", n(response.status)),
        (":type", s(&response.content_type)),
        (":body", AttributeValue::B(response.body.clone().into())),
    ]
}

impl Tables {
    /// Claims the record of `slot` (a SHA-256 in hex) for the request of
    /// this `fingerprint`, unless it holds another request, or this one
    /// pending or answered. An expired record (DynamoDB deletes them within
    /// days of their `ttl`) is claimed anew.
    pub async fn claim_request(
        &self,
        tenant_id: &str,
        slot: &str,
        fingerprint: &str,
    ) -> Result<Claim, AwsError> {
        let sk = idempotency_sk(slot);
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        // A record released between the refused claim and the read is
        // claimed again; a few rounds settle any race.
        for _ in 0..3 {
            let now = Utc::now().timestamp();
            let put = self
                .client
                .put_item()
                .table_name(&self.jobs)
                .set_item(Some(claim_item(tenant_id, &sk, fingerprint, &token, now)))
                .condition_expression(
                    "attribute_not_exists(sk) OR #ttl < :now \
                     OR (#state = :pending AND claimed_at < :abandoned AND request_hash = :hash)",
                )
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":pending", s(PENDING))
                .expression_attribute_values(":abandoned", n(now - ABANDONED_CLAIM_SECONDS))
                .expression_attribute_values(":hash", s(fingerprint))
                .send()
                .await;
            if unless_condition_failed("dynamodb:PutItem", put)?.is_some() {
                return Ok(Claim::Granted(Ticket {
                    tenant_id: tenant_id.to_owned(),
                    sk,
                    token,
                }));
            }
            let key = item([("tenant_id", s(tenant_id)), ("sk", s(&sk))]);
            if let Some(record) = self.get(&self.jobs, key, true).await? {
                return Ok(found(&record, fingerprint));
            }
        }
        Err(AwsError::new(
            "dynamodb:PutItem",
            "an idempotency record kept changing while it was claimed",
        ))
    }

    /// Keeps the response of a claimed request; `false` if the claim was
    /// no longer this ticket's (taken over as abandoned).
    pub async fn answer_request(
        &self,
        ticket: &Ticket,
        response: &StoredResponse,
    ) -> Result<bool, AwsError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.jobs)
            .key("tenant_id", s(&ticket.tenant_id))
            .key("sk", s(&ticket.sk))
            .update_expression(
                "SET #state = :done, response_status = :status, response_type = :type, \
                 response_body = :body",
            )
            .condition_expression("claim = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":token", s(&ticket.token));
        for (placeholder, value) in answer_values(response) {
            update = update.expression_attribute_values(placeholder, value);
        }
        let answered = unless_condition_failed("dynamodb:UpdateItem", update.send().await)?;
        Ok(answered.is_some())
    }

    /// Deletes a claimed request's record: its retry runs it again.
    pub async fn release_request(&self, ticket: &Ticket) -> Result<(), AwsError> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.jobs)
            .key("tenant_id", s(&ticket.tenant_id))
            .key("sk", s(&ticket.sk))
            .condition_expression("claim = :token")
            .expression_attribute_values(":token", s(&ticket.token))
            .send()
            .await;
        unless_condition_failed("dynamodb:DeleteItem", delete)?;
        Ok(())
    }
}

/// What a record another call claimed says to this request.
fn found(record: &Item, fingerprint: &str) -> Claim {
    let text = |name: &str| match record.get(name) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "",
    };
    if text("request_hash") != fingerprint {
        return Claim::Reused;
    }
    let status = match record.get("response_status") {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    };
    match (text("state"), status, record.get("response_body")) {
        (DONE, Some(status), Some(AttributeValue::B(body))) => Claim::Answered(StoredResponse {
            status,
            content_type: text("response_type").to_owned(),
            body: body.as_ref().to_vec(),
        }),
        _ => Claim::InProgress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::stored_item_size;

    fn answered(body: Vec<u8>) -> Item {
        let response = StoredResponse {
            status: 201,
            content_type: "application/json".into(),
            body,
        };
        let mut record = claim_item(
            &"t".repeat(40),
            &idempotency_sk(&"a".repeat(64)),
            &"b".repeat(64),
            &"c".repeat(32),
            Utc::now().timestamp(),
        );
        record.insert("state".into(), s(DONE));
        let [_, (_, status), (_, kind), (_, body)] = answer_values(&response);
        record.insert("response_status".into(), status);
        record.insert("response_type".into(), kind);
        record.insert("response_body".into(), body);
        record
    }

    #[test]
    fn the_largest_record_fits_in_a_dynamodb_item() {
        let size = stored_item_size(&answered(vec![b'x'; MAX_STORED_BODY_BYTES]));
        assert!(size < 400 * 1024, "{size} bytes");
        assert!(size - MAX_STORED_BODY_BYTES < 400, "{size} bytes");
    }

    #[test]
    fn a_record_answers_its_own_request_only() {
        let record = answered(b"{}".to_vec());
        assert!(matches!(found(&record, &"d".repeat(64)), Claim::Reused));
        match found(&record, &"b".repeat(64)) {
            Claim::Answered(r) => assert_eq!((r.status, r.body), (201, b"{}".to_vec())),
            other => panic!("{other:?}"),
        }
        let pending = claim_item("t", "IDEMPOTENCY#a", "h", "c", 0);
        assert!(matches!(found(&pending, "h"), Claim::InProgress));
    }
}
