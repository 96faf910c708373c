//! Cards in plain memory: the reference behaviour the DynamoDB store
//! (`loyalty_aws::tables`) must match.

use super::lock;
use crate::membership::apply::{CardCommit, CardDecision, CardStore, StoredCard};
use crate::membership::cards::{Card, TierHistoryEntry};
use crate::outcome::RowOutcome;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryCards {
    /// `(tenant, code)` → card.
    pub cards: Mutex<HashMap<(String, String), StoredCard>>,
    pub outcomes: Mutex<HashMap<(String, u64), RowOutcome>>,
    /// `(tenant, code)` → every tier change, in the order committed.
    pub history: Mutex<HashMap<(String, String), Vec<TierHistoryEntry>>>,
}

impl CardStore for MemoryCards {
    type Error = Infallible;

    async fn decided(&self, job_id: &str, rows: &[u64]) -> Result<Vec<RowOutcome>, Infallible> {
        Ok(super::decided(&self.outcomes, job_id, rows))
    }

    async fn card(&self, tenant_id: &str, code: &str) -> Result<Option<StoredCard>, Infallible> {
        let cards = lock(&self.cards);
        Ok(cards.get(&(tenant_id.to_owned(), code.to_owned())).cloned())
    }

    async fn active_card(
        &self,
        tenant_id: &str,
        id_program: u64,
        customer_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Card>, Infallible> {
        let cards = lock(&self.cards);
        Ok(cards
            .iter()
            .filter(|((tenant, _), _)| tenant == tenant_id)
            .map(|(_, stored)| &stored.card)
            .find(|card| {
                card.id_program == id_program
                    && card.customer_key.as_deref() == Some(customer_key)
                    && card.is_active(now)
            })
            .cloned())
    }

    async fn commit(&self, d: &CardDecision, now: DateTime<Utc>) -> Result<CardCommit, Infallible> {
        let mut outcomes = lock(&self.outcomes);
        let mut cards = lock(&self.cards);
        let key = (d.job_id.clone(), d.outcome.row);
        if outcomes.contains_key(&key) {
            return Ok(CardCommit::AlreadyDecided);
        }
        if let Some((code, version)) = &d.read {
            let stored = cards
                .get(&(d.tenant_id.clone(), code.clone()))
                .map_or(0, |s| s.version);
            if stored != *version {
                return Ok(CardCommit::Changed);
            }
        }
        if let (Some((program, contact)), Some(card)) = (&d.claim, &d.write) {
            let taken = cards.iter().any(|((tenant, code), stored)| {
                *tenant == d.tenant_id
                    && *code != card.card_code
                    && stored.card.id_program == *program
                    && stored.card.customer_key.as_deref() == Some(contact.as_str())
                    && stored.card.is_active(now)
            });
            if taken {
                return Ok(CardCommit::Changed);
            }
        }
        if let (Some(change), Some(card)) = (&d.history, &d.write) {
            let mut history = lock(&self.history);
            let kept = history
                .entry((d.tenant_id.clone(), card.card_code.clone()))
                .or_default();
            if !kept.iter().any(|h| h.source == change.source) {
                kept.push(change.clone());
            }
        }
        if let Some(card) = &d.write {
            let key = (d.tenant_id.clone(), card.card_code.clone());
            let version = cards.get(&key).map_or(0, |s| s.version) + 1;
            cards.insert(
                key,
                StoredCard {
                    card: card.clone(),
                    version,
                },
            );
        }
        outcomes.insert(key, d.outcome.clone());
        Ok(CardCommit::Done)
    }
}
