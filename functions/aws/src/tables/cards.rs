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

use super::request::{check_item, put_item};
use super::{from_item, item, n, s, to_item, Item, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::apply::LedgerStore;
use shared::membership::apply::{CardCommit, CardDecision, CardStore, StoredCard};
use shared::membership::cards::{Card, TierHistoryEntry};
use shared::outcome::RowOutcome;

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

pub(super) fn card_pk(tenant_id: &str, code: &str) -> String {
    format!("{tenant_id}#CARD#{code}")
}

fn claim_pk(tenant_id: &str, program: u64, contact: &str) -> String {
    format!("{tenant_id}#ACTIVE#{program}#{contact}")
}

const CALL: &str = "dynamodb:TransactWriteItems";

impl Tables {
    /// The item of `subscriptions` with this key, read consistently.
    async fn subscription_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, AwsError> {
        let key = item([("pk", s(pk)), ("sk", s(sk))]);
        self.get(&self.subscriptions, key, true).await
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
            let values = value.map(|v| item([(":v", v)]));
            let card_item = match &d.write {
                Some(card) => {
                    let stored = CardItem {
                        pk: card_pk(&d.tenant_id, code),
                        sk: "CARD".into(),
                        tenant_id: d.tenant_id.clone(),
                        version: version + 1,
                        card: card.clone(),
                    };
                    let stored = to_item(CALL, &stored)?;
                    put_item(&self.subscriptions, stored, Some(condition), values)?
                }
                None => {
                    let key = item([("pk", s(card_pk(&d.tenant_id, code))), ("sk", s("CARD"))]);
                    check_item(&self.subscriptions, key, condition, values)?
                }
            };
            items.push(card_item);
        }
        if let (Some(change), Some(card)) = (&d.history, &d.write) {
            // Unconditional: the same row always writes the same change.
            let change = TierChangeItem {
                pk: card_pk(&d.tenant_id, &card.card_code),
                sk: format!("TIER#{}", change.source),
                tenant_id: d.tenant_id.clone(),
                card_code: card.card_code.clone(),
                change: change.clone(),
            };
            let change = to_item(CALL, &change)?;
            items.push(put_item(&self.subscriptions, change, None, None)?);
        }
        if let (Some((program, contact)), Some(card)) = (&d.claim, &d.write) {
            let mut claim = item([
                ("pk", s(claim_pk(&d.tenant_id, *program, contact))),
                ("sk", s("CLAIM")),
                ("card_code", s(&card.card_code)),
            ]);
            if let Some(at) = card.expiration_date {
                claim.insert("expires_at".to_owned(), n(at.timestamp()));
            }
            let free = "attribute_not_exists(pk) OR card_code = :code OR expires_at < :now";
            let values = item([(":code", s(&card.card_code)), (":now", n(now.timestamp()))]);
            items.push(put_item(
                &self.subscriptions,
                claim,
                Some(free),
                Some(values),
            )?);
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
        match self.transact(items).await? {
            Ok(()) => Ok(CardCommit::Done),
            // The first item is the row's outcome.
            Err(refused) if refused.condition_failed(0) => Ok(CardCommit::AlreadyDecided),
            Err(refused) if refused.any_condition_failed_or_conflict() => Ok(CardCommit::Changed),
            Err(refused) => Err(refused.into_error()),
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
