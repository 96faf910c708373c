//! The card store in DynamoDB (`subscriptions` table): the stored side of
//! `shared::membership::apply`.
//!
//! - `pk = <tenant>#CARD#<code>`, `sk = CARD`: the card, with `version`.
//! - `pk = <tenant>#CARD#<code>`, `sk = TIER#<job>#<row>`: one tier change
//!   of the card, kept for ever (the card item keeps only its latest
//!   `MAX_TIER_HISTORY`, so it stays bounded however often its tier changes).
//! - `pk = <tenant>#ACTIVE#<program>#<contact>`, `sk = CLAIM`: which card is
//!   the contact's active one in the program, and until when (`expires_at`,
//!   epoch seconds; absent = no end). A claim that has expired is free.
//!
//! A decision is one transaction: the row's outcome (if the row is still
//! undecided), the card (if still at the version read), the contact's claim
//! (if free, expired or already this card's) and the release of the claim
//! the card held before.

use super::{from_item, n, s, to_item, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::apply::LedgerStore;
use shared::membership::apply::{CardCommit, CardDecision, CardStore, StoredCard};
use shared::membership::cards::{Card, TierHistoryEntry};
use shared::outcome::RowOutcome;
use std::collections::HashMap;

#[derive(Serialize, Deserialize)]
struct TierChangeItem {
    pk: String,
    sk: String,
    tenant_id: String,
    card_code: String,
    #[serde(flatten)]
    change: TierHistoryEntry,
}

#[derive(Serialize, Deserialize)]
struct CardItem {
    pk: String,
    sk: String,
    tenant_id: String,
    version: u64,
    card: Card,
}

fn card_pk(tenant_id: &str, code: &str) -> String {
    format!("{tenant_id}#CARD#{code}")
}

fn claim_pk(tenant_id: &str, program: u64, contact: &str) -> String {
    format!("{tenant_id}#ACTIVE#{program}#{contact}")
}

const CALL: &str = "dynamodb:TransactWriteItems";

impl Tables {
    async fn subscription_item(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, AwsError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.subscriptions)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb:GetItem", e))?
            .item)
    }
}

impl CardStore for Tables {
    type Error = AwsError;

    async fn decided(&self, job_id: &str, rows: &[u64]) -> Result<Vec<RowOutcome>, AwsError> {
        LedgerStore::decided(self, job_id, rows).await
    }

    async fn card(&self, tenant_id: &str, code: &str) -> Result<Option<StoredCard>, AwsError> {
        self.subscription_item(&card_pk(tenant_id, code), "CARD")
            .await?
            .map(|item| {
                from_item::<CardItem>("dynamodb:GetItem", item).map(|c| StoredCard {
                    card: c.card,
                    version: c.version,
                })
            })
            .transpose()
    }

    async fn active_card(
        &self,
        tenant_id: &str,
        id_program: u64,
        customer_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Card>, AwsError> {
        let Some(claim) = self
            .subscription_item(&claim_pk(tenant_id, id_program, customer_key), "CLAIM")
            .await?
        else {
            return Ok(None);
        };
        let Some(AttributeValue::S(code)) = claim.get("card_code") else {
            return Ok(None);
        };
        Ok(CardStore::card(self, tenant_id, code)
            .await?
            .map(|s| s.card)
            .filter(|card| {
                card.is_active(now)
                    && card.id_program == id_program
                    && card.customer_key.as_deref() == Some(customer_key)
            }))
    }

    async fn commit(&self, d: &CardDecision, now: DateTime<Utc>) -> Result<CardCommit, AwsError> {
        let mut items = vec![self.outcome_put(&d.job_id, &d.outcome)?];
        if let Some((code, version)) = &d.read {
            let (condition, value) = Self::version_condition(*version);
            let values = value.map(|v| HashMap::from([(":v".to_owned(), v)]));
            let item = match &d.write {
                Some(card) => TransactWriteItem::builder().put(
                    Put::builder()
                        .table_name(&self.subscriptions)
                        .set_item(Some(to_item(
                            CALL,
                            &CardItem {
                                pk: card_pk(&d.tenant_id, code),
                                sk: "CARD".into(),
                                tenant_id: d.tenant_id.clone(),
                                version: version + 1,
                                card: card.clone(),
                            },
                        )?))
                        .condition_expression(condition)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(|e| AwsError::new(CALL, e))?,
                ),
                None => TransactWriteItem::builder().condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.subscriptions)
                        .key("pk", s(card_pk(&d.tenant_id, code)))
                        .key("sk", s("CARD"))
                        .condition_expression(condition)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(|e| AwsError::new(CALL, e))?,
                ),
            };
            items.push(item.build());
        }
        if let (Some(change), Some(card)) = (&d.history, &d.write) {
            // Unconditional: the same row always writes the same change.
            let item = TierChangeItem {
                pk: card_pk(&d.tenant_id, &card.card_code),
                sk: format!("TIER#{}", change.source),
                tenant_id: d.tenant_id.clone(),
                card_code: card.card_code.clone(),
                change: change.clone(),
            };
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.subscriptions)
                            .set_item(Some(to_item(CALL, &item)?))
                            .build()
                            .map_err(|e| AwsError::new(CALL, e))?,
                    )
                    .build(),
            );
        }
        if let (Some((program, contact)), Some(card)) = (&d.claim, &d.write) {
            let mut claim = HashMap::from([
                (
                    "pk".to_owned(),
                    s(claim_pk(&d.tenant_id, *program, contact)),
                ),
                ("sk".to_owned(), s("CLAIM")),
                ("card_code".to_owned(), s(&card.card_code)),
            ]);
            if let Some(at) = card.expiration_date {
                claim.insert("expires_at".to_owned(), n(at.timestamp()));
            }
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.subscriptions)
                            .set_item(Some(claim))
                            .condition_expression(
                                "attribute_not_exists(pk) OR card_code = :code OR expires_at < :now",
                            )
                            .expression_attribute_values(":code", s(&card.card_code))
                            .expression_attribute_values(":now", n(now.timestamp()))
                            .build()
                            .map_err(|e| AwsError::new(CALL, e))?,
                    )
                    .build(),
            );
        }
        if let (Some((program, contact)), Some(card)) = (&d.release, &d.write) {
            items.push(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.subscriptions)
                            .key("pk", s(claim_pk(&d.tenant_id, *program, contact)))
                            .key("sk", s("CLAIM"))
                            .condition_expression("attribute_not_exists(pk) OR card_code = :code")
                            .expression_attribute_values(":code", s(&card.card_code))
                            .build()
                            .map_err(|e| AwsError::new(CALL, e))?,
                    )
                    .build(),
            );
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(CardCommit::Done),
            Err(err) => {
                let codes = super::cancellation_codes(&err);
                if codes.first().map(String::as_str) == Some("ConditionalCheckFailed") {
                    Ok(CardCommit::AlreadyDecided)
                } else if codes
                    .iter()
                    .any(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict")
                {
                    Ok(CardCommit::Changed)
                } else {
                    Err(AwsError::sdk(CALL, err))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::membership::programs::MAX_CUSTOM_FIELDS;
    use shared::membership::tier_changes::MAX_TIER_HISTORY;
    use shared::membership::{
        MAX_CARD_CODE_CHARS, MAX_CONTEXT_CHARS, MAX_CUSTOMER_KEY_CHARS, MAX_CUSTOM_FIELD_CHARS,
        MAX_TIER_NAME_CHARS,
    };

    #[test]
    fn the_largest_card_a_file_can_make_fits_its_item() {
        // Every text at its limit, in four-byte characters (DynamoDB counts
        // UTF-8 bytes), and a full tier history.
        let text = |chars: usize| "😀".repeat(chars);
        let at = DateTime::<Utc>::MAX_UTC;
        let card = Card {
            card_code: text(MAX_CARD_CODE_CHARS),
            customer_key: Some(text(MAX_CUSTOMER_KEY_CHARS)),
            id_program: u64::MAX,
            id_tier: u64::MAX,
            join_date: at,
            expiration_date: Some(at),
            birthday: Some(chrono::NaiveDate::MAX),
            custom: (0..MAX_CUSTOM_FIELDS)
                .map(|n| (format!("field_{n:0>40}"), text(MAX_CUSTOM_FIELD_CHARS)))
                .collect(),
            tier_history: (0..MAX_TIER_HISTORY)
                .map(|n| TierHistoryEntry {
                    id_tier: u64::MAX,
                    tier_name: text(MAX_TIER_NAME_CHARS),
                    context: Some(text(MAX_CONTEXT_CHARS)),
                    value_date: at,
                    source: format!("20261203105951-40cae05c688a#{n:0>12}"),
                })
                .collect(),
            last_downgrade_check: Some(at),
        };
        let item = CardItem {
            pk: card_pk(&"t".repeat(40), &card.card_code),
            sk: "CARD".into(),
            tenant_id: "t".repeat(40),
            version: u64::MAX,
            card,
        };
        let item = serde_dynamo::to_item(&item).unwrap();
        let size = crate::capacity::stored_item_size(&item);
        assert!(size < 400 * 1024, "{size} bytes");
        println!("the largest card item: {size} bytes");
    }
}
