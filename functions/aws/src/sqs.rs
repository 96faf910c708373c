//! Partial batch responses: the messages Lambda should deliver again.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};

/// A response asking SQS to redeliver exactly these message ids.
pub fn retry_only(message_ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = message_ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}
