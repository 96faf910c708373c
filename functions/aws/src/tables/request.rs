//! How the tables talk to DynamoDB, whatever the item: a write that may find
//! its condition false (someone else got there first: an answer, not an
//! error), batch reads and writes that retry what DynamoDB left unprocessed,
//! queries read to their last page, and transactions whose refusal says
//! which of their items was refused and why.

use super::{Item, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, PutRequest, TransactWriteItem,
    WriteRequest,
};

/// Items written per `BatchWriteItem` request, and keys read per
/// `BatchGetItem` request: DynamoDB's limits.
const BATCH_PUT_ITEMS: usize = 25;
const BATCH_GET_KEYS: usize = 100;

/// A request's error that may say its condition was false.
pub(super) trait ConditionFailed {
    fn condition_failed(&self) -> bool;
}

impl ConditionFailed for PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailed for DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailed for UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// A conditional request's output, or `None` if its condition was false.
pub(super) fn unless_condition_failed<T, E, R>(
    call: &'static str,
    result: Result<T, SdkError<E, R>>,
) -> Result<Option<T>, AwsError>
where
    E: ConditionFailed + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(E::condition_failed) => Ok(None),
        Err(e) => Err(AwsError::sdk(call, e)),
    }
}

/// Why each item of a refused transaction was refused, in the order of the
/// items: DynamoDB's code for it (`None` for an item not at fault).
pub(super) struct Cancellation {
    codes: Vec<String>,
    /// The refusal as an error, for a caller that cannot take it.
    error: AwsError,
}

impl Cancellation {
    /// Whether item `index`'s condition was false.
    pub(super) fn condition_failed(&self, index: usize) -> bool {
        self.codes.get(index).is_some_and(|c| c == CONDITION_FAILED)
    }

    /// Whether any item's condition was false.
    pub(super) fn any_condition_failed(&self) -> bool {
        self.codes.iter().any(|c| c == CONDITION_FAILED)
    }

    /// Whether any item's condition was false, or another request was
    /// writing one of the items at the same moment.
    pub(super) fn any_condition_failed_or_conflict(&self) -> bool {
        self.codes
            .iter()
            .any(|c| c == CONDITION_FAILED || c == CONFLICT)
    }

    /// Each item's code, in the order of the items.
    pub(super) fn codes(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().map(String::as_str)
    }

    pub(super) fn into_error(self) -> AwsError {
        self.error
    }
}

pub(super) const CONDITION_FAILED: &str = "ConditionalCheckFailed";
pub(super) const CONFLICT: &str = "TransactionConflict";

const TRANSACT: &str = "dynamodb:TransactWriteItems";

/// A transaction item putting `item` into `table`, if `condition` holds.
pub(super) fn put_item(
    table: &str,
    item: Item,
    condition: Option<&str>,
    values: Option<Item>,
) -> Result<TransactWriteItem, AwsError> {
    Ok(TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .set_expression_attribute_values(values)
                .build()
                .map_err(|e| AwsError::new(TRANSACT, e))?,
        )
        .build())
}

/// A transaction item that only checks `condition` on the item of `table`
/// with `key`.
pub(super) fn check_item(
    table: &str,
    key: Item,
    condition: &str,
    values: Option<Item>,
) -> Result<TransactWriteItem, AwsError> {
    Ok(TransactWriteItem::builder()
        .condition_check(
            ConditionCheck::builder()
                .table_name(table)
                .set_key(Some(key))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .build()
                .map_err(|e| AwsError::new(TRANSACT, e))?,
        )
        .build())
}

/// Waits a little longer after each unsuccessful attempt.
async fn backoff(attempt: u32, again: bool) {
    if again {
        let millis = 25u64 << attempt.min(6);
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
}

impl Tables {
    /// Puts an item unless one with its key exists; `false` if it does.
    pub(super) async fn put_new(
        &self,
        table: &str,
        item: Item,
        key_attribute: &str,
    ) -> Result<bool, AwsError> {
        self.put_if(
            table,
            item,
            &format!("attribute_not_exists({key_attribute})"),
            vec![],
        )
        .await
    }

    /// Puts `item` if `condition` holds; returns whether it did.
    pub(super) async fn put_if(
        &self,
        table: &str,
        item: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, AwsError> {
        let mut request = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        let put = unless_condition_failed("dynamodb:PutItem", request.send().await)?;
        Ok(put.is_some())
    }

    /// The item of `table` with `key`, if there is one.
    pub(super) async fn get(
        &self,
        table: &str,
        key: Item,
        consistent_read: bool,
    ) -> Result<Option<Item>, AwsError> {
        let mut request = self.client.get_item().table_name(table).set_key(Some(key));
        if consistent_read {
            request = request.consistent_read(true);
        }
        let out = request
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb:GetItem", e))?;
        Ok(out.item)
    }

    /// Every item `query` finds, in key order, every page read.
    pub(super) async fn query_all(query: QueryFluentBuilder) -> Result<Vec<Item>, AwsError> {
        query
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::sdk("dynamodb:Query", e))
    }

    /// Writes `items` in one transaction; `Err(Cancellation)` inside the
    /// result if DynamoDB refused it for one of its items.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Cancellation>, AwsError> {
        let Err(err) = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        else {
            return Ok(Ok(()));
        };
        let codes: Vec<String> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_owned())
                .collect(),
            _ => Vec::new(),
        };
        let error = AwsError::sdk(TRANSACT, err);
        if codes.is_empty() {
            return Err(error);
        }
        Ok(Err(Cancellation { codes, error }))
    }

    /// Puts items, 25 a request, until every one is written.
    pub(super) async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<(), AwsError> {
        let call = "dynamodb:BatchWriteItem";
        for chunk in items.chunks(BATCH_PUT_ITEMS) {
            let mut requests = chunk
                .iter()
                .map(|item| {
                    Ok(WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item.clone()))
                                .build()
                                .map_err(|e| AwsError::new(call, e))?,
                        )
                        .build())
                })
                .collect::<Result<Vec<_>, AwsError>>()?;
            let mut attempt = 0;
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .map_err(|e| AwsError::sdk(call, e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
                attempt += 1;
                backoff(attempt, !requests.is_empty()).await;
            }
        }
        Ok(())
    }

    /// The items of `table` with these keys that exist, read consistently,
    /// a hundred keys a request.
    pub(super) async fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
    ) -> Result<Vec<Item>, AwsError> {
        self.batch_get_projected(table, keys, None).await
    }

    /// As [`Self::batch_get`], each item read only for the attributes
    /// `projection` names (a `ProjectionExpression`), if given.
    pub(super) async fn batch_get_projected(
        &self,
        table: &str,
        keys: Vec<Item>,
        projection: Option<&str>,
    ) -> Result<Vec<Item>, AwsError> {
        let call = "dynamodb:BatchGetItem";
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut keys = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .set_projection_expression(projection.map(str::to_owned))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| AwsError::new(call, e))?,
            );
            let mut attempt = 0;
            while let Some(request) = keys.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| AwsError::sdk(call, e))?;
                found.extend(
                    out.responses
                        .and_then(|mut r| r.remove(table))
                        .unwrap_or_default(),
                );
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .filter(|k| !k.keys().is_empty());
                attempt += 1;
                backoff(attempt, keys.is_some()).await;
            }
        }
        Ok(found)
    }
}
