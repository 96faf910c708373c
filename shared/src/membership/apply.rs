//! Applying membership rows to cards, exactly once, the way points are
//! applied to wallets (`crate::apply`): each row is decided on the cards as
//! read, and the decision is committed together with the row's outcome, only
//! if the row is still undecided and what it was decided on is unchanged —
//! the card (by version), and for a card with a contact, that contact's
//! active card in the program. A redelivered or racing row finds its outcome
//! and reuses it; a row that lost a race is decided again.
//!
//! Its length: under 350 lines of code; its tests follow it.

use super::cards::{Card, CardChange, CardRow, Known, TierHistoryEntry};
use super::ean13;
use super::programs::Memberships;
use super::tier_changes::TierChangeRow;
use crate::apply::MAX_ATTEMPTS;
use crate::outcome::{ErrorCode, RowError, RowOutcome};
use chrono::{DateTime, Utc};
use std::future::Future;

/// A card as stored, with the version its next write must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCard {
    pub card: Card,
    pub version: u64,
}

/// One row's decision, to be committed all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDecision {
    pub tenant_id: String,
    pub job_id: String,
    pub outcome: RowOutcome,
    /// The card code the row was decided on and the version read (0: none).
    pub read: Option<(String, u64)>,
    /// The card as the row leaves it (created or changed).
    pub write: Option<Card>,
    /// `(program, contact)` whose active card the written card is: no other
    /// active card of theirs may hold it when the decision commits.
    pub claim: Option<(u64, String)>,
    /// `(program, contact)` whose active card the card was before the row
    /// and no longer is (its contact changed, or it expired).
    pub release: Option<(u64, String)>,
    /// A tier change the row made, kept for ever as an item of its own (the
    /// card keeps only its latest `MAX_TIER_HISTORY`).
    pub history: Option<TierHistoryEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardCommit {
    Done,
    /// The card or the contact's active card changed since they were read.
    Changed,
    /// Another delivery decided this row first: its outcome stands.
    AlreadyDecided,
}

/// Where cards and row outcomes are kept.
pub trait CardStore: Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    fn decided(
        &self,
        job_id: &str,
        rows: &[u64],
    ) -> impl Future<Output = Result<Vec<RowOutcome>, Self::Error>> + Send;

    fn card(
        &self,
        tenant_id: &str,
        card_code: &str,
    ) -> impl Future<Output = Result<Option<StoredCard>, Self::Error>> + Send;

    /// The contact's card in the program that is active at `now`, if any.
    fn active_card(
        &self,
        tenant_id: &str,
        id_program: u64,
        customer_key: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Card>, Self::Error>> + Send;

    fn commit(
        &self,
        decision: &CardDecision,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<CardCommit, Self::Error>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum CardApplyError<E> {
    #[error("row {0}: the cards kept changing under it; the batch will be retried")]
    Contention(u64),
    #[error("row {0} is recorded as decided but its outcome cannot be read")]
    LostOutcome(u64),
    #[error(transparent)]
    Store(E),
}

/// Generated codes tried before a row fails for want of a free one.
const MAX_GENERATED: u32 = 10;

/// The batch of rows of one membership file, with what they need.
pub struct CardJob<'a> {
    pub tenant_id: &'a str,
    pub job_id: &'a str,
    pub config: &'a Memberships,
}

/// The rows of a membership file, which a [`CardJob`] applies in order.
pub trait MembershipRow: Sized + Sync {
    fn apply_all<S: CardStore>(
        job: &CardJob<'_>,
        store: &S,
        rows: &[Self],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<RowOutcome>, CardApplyError<S::Error>>> + Send;
}

impl MembershipRow for CardRow {
    async fn apply_all<S: CardStore>(
        job: &CardJob<'_>,
        store: &S,
        rows: &[Self],
        now: DateTime<Utc>,
    ) -> Result<Vec<RowOutcome>, CardApplyError<S::Error>> {
        job.apply_cards(store, rows, now).await
    }
}

impl MembershipRow for TierChangeRow {
    async fn apply_all<S: CardStore>(
        job: &CardJob<'_>,
        store: &S,
        rows: &[Self],
        now: DateTime<Utc>,
    ) -> Result<Vec<RowOutcome>, CardApplyError<S::Error>> {
        job.apply_tier_changes(store, rows, now).await
    }
}

impl CardJob<'_> {
    /// Applies card code rows in order; returns each row's outcome.
    pub async fn apply_cards<S: CardStore>(
        &self,
        store: &S,
        rows: &[CardRow],
        now: DateTime<Utc>,
    ) -> Result<Vec<RowOutcome>, CardApplyError<S::Error>> {
        let mut outcomes = Vec::with_capacity(rows.len());
        for row in rows {
            let outcome = match self.decided(store, row.row).await? {
                Some(outcome) => outcome,
                None => self.apply_card(store, row, now).await?,
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Applies tier change rows in order; returns each row's outcome.
    pub async fn apply_tier_changes<S: CardStore>(
        &self,
        store: &S,
        rows: &[TierChangeRow],
        now: DateTime<Utc>,
    ) -> Result<Vec<RowOutcome>, CardApplyError<S::Error>> {
        let mut outcomes = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(outcome) = self.decided(store, row.row).await? {
                outcomes.push(outcome);
                continue;
            }
            let source = format!("{}#{}", self.job_id, row.row);
            let mut done = None;
            for _ in 0..MAX_ATTEMPTS {
                let stored = self.card(store, &row.card_code).await?;
                let (outcome, write) =
                    match row.decide(self.config, stored.as_ref().map(|s| &s.card), &source) {
                        Ok(card) => (
                            RowOutcome::applied_to_card(row.row, &card.card_code),
                            Some(card),
                        ),
                        Err(refused) => (refused, None),
                    };
                let history = write
                    .as_ref()
                    .and_then(|card| card.tier_history.iter().find(|h| h.source == source))
                    .cloned();
                let decision = CardDecision {
                    tenant_id: self.tenant_id.to_owned(),
                    job_id: self.job_id.to_owned(),
                    outcome,
                    read: Some((row.card_code.clone(), stored.map_or(0, |s| s.version))),
                    write,
                    claim: None,
                    release: None,
                    history,
                };
                if let Some(outcome) = self.commit(store, decision, now).await? {
                    done = Some(outcome);
                    break;
                }
            }
            outcomes.push(done.ok_or(CardApplyError::Contention(row.row))?);
        }
        Ok(outcomes)
    }

    async fn apply_card<S: CardStore>(
        &self,
        store: &S,
        row: &CardRow,
        now: DateTime<Utc>,
    ) -> Result<RowOutcome, CardApplyError<S::Error>> {
        for _ in 0..MAX_ATTEMPTS {
            let (code, stored, generated) = match &row.card_code {
                Some(code) => (Some(code.clone()), self.card(store, code).await?, None),
                None if self.config.auto_card_codes => {
                    match self.free_code(store, row.row).await? {
                        Some(code) => (Some(code.clone()), None, Some(code)),
                        None => {
                            return Ok(RowOutcome::from(&RowError::new(
                                row.row,
                                Some("card_code"),
                                ErrorCode::MissingCardCode,
                                "no free card code could be generated; give the card a code",
                            )))
                        }
                    }
                }
                None => (None, None, None),
            };
            let program = stored
                .as_ref()
                .map(|s| s.card.id_program)
                .or(row.id_program.value());
            let active = match (program, &row.customer_key) {
                (Some(program), Some(contact)) => store
                    .active_card(self.tenant_id, program, contact, now)
                    .await
                    .map_err(CardApplyError::Store)?
                    .filter(|card| Some(&card.card_code) != code.as_ref()),
                _ => None,
            };
            let known = Known {
                existing: stored.as_ref().map(|s| &s.card),
                active_for_contact: active.as_ref(),
                generated_code: generated.as_deref(),
            };
            let (outcome, write) = match row.decide(self.config, known, now) {
                Ok(change) => {
                    let card = match change {
                        CardChange::Create(card) | CardChange::Update(card) => card,
                    };
                    (
                        RowOutcome::applied_to_card(row.row, &card.card_code),
                        Some(card),
                    )
                }
                Err(refused) => (refused, None),
            };
            let holds = |card: &Card| {
                let contact = card.customer_key.clone()?;
                card.is_active(now).then_some((card.id_program, contact))
            };
            let claim = write.as_ref().and_then(holds);
            let release = stored
                .as_ref()
                .and_then(|s| holds(&s.card))
                .filter(|held| write.is_some() && Some(held) != claim.as_ref());
            let decision = CardDecision {
                tenant_id: self.tenant_id.to_owned(),
                job_id: self.job_id.to_owned(),
                outcome,
                read: code.map(|c| (c, stored.map_or(0, |s| s.version))),
                write,
                claim,
                release,
                history: None,
            };
            if let Some(outcome) = self.commit(store, decision, now).await? {
                return Ok(outcome);
            }
        }
        Err(CardApplyError::Contention(row.row))
    }

    /// The first generated code for the row that no card has.
    async fn free_code<S: CardStore>(
        &self,
        store: &S,
        row: u64,
    ) -> Result<Option<String>, CardApplyError<S::Error>> {
        for attempt in 0..MAX_GENERATED {
            let code = ean13::generate(self.tenant_id, self.job_id, row, attempt);
            if self.card(store, &code).await?.is_none() {
                return Ok(Some(code));
            }
        }
        Ok(None)
    }

    async fn card<S: CardStore>(
        &self,
        store: &S,
        code: &str,
    ) -> Result<Option<StoredCard>, CardApplyError<S::Error>> {
        store
            .card(self.tenant_id, code)
            .await
            .map_err(CardApplyError::Store)
    }

    async fn decided<S: CardStore>(
        &self,
        store: &S,
        row: u64,
    ) -> Result<Option<RowOutcome>, CardApplyError<S::Error>> {
        Ok(store
            .decided(self.job_id, &[row])
            .await
            .map_err(CardApplyError::Store)?
            .pop())
    }

    /// The outcome if the decision (or an earlier one) stands, `None` if it
    /// must be made again.
    async fn commit<S: CardStore>(
        &self,
        store: &S,
        decision: CardDecision,
        now: DateTime<Utc>,
    ) -> Result<Option<RowOutcome>, CardApplyError<S::Error>> {
        let row = decision.outcome.row;
        match store
            .commit(&decision, now)
            .await
            .map_err(CardApplyError::Store)?
        {
            CardCommit::Done => Ok(Some(decision.outcome)),
            CardCommit::Changed => Ok(None),
            CardCommit::AlreadyDecided => self
                .decided(store, row)
                .await?
                .map(Some)
                .ok_or(CardApplyError::LostOutcome(row)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::RowStatus;
    use crate::test_support::MemoryCards;
    use crate::test_support::{block_on, card_rows, club, tier_rows};

    const CARD_HEADER: &str =
        "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn codes(outcomes: &[RowOutcome]) -> Vec<(RowStatus, Option<ErrorCode>)> {
        outcomes.iter().map(|o| (o.status, o.error_code)).collect()
    }

    #[test]
    fn a_file_applied_twice_creates_each_card_once_and_reports_the_same() {
        let store = MemoryCards::default();
        let config = club(true);
        let job = CardJob {
            tenant_id: "acme",
            job_id: "J1",
            config: &config,
        };
        let rows = card_rows(CARD_HEADER, "A1;a@x.io;1;;;;\n;b@x.io;1;;;;4\n", &config);
        let first = block_on(job.apply_cards(&store, &rows, now())).unwrap();
        let again = block_on(job.apply_cards(&store, &rows, now())).unwrap();
        assert_eq!(first, again);
        assert_eq!(store.cards.lock().unwrap().len(), 2);
        let generated = first[1].card_code.clone().unwrap();
        assert!(ean13::is_valid(&generated), "{generated}");
    }

    #[test]
    fn a_generated_code_already_taken_is_replaced_by_the_next() {
        let store = MemoryCards::default();
        let config = club(true);
        let job = CardJob {
            tenant_id: "acme",
            job_id: "J2",
            config: &config,
        };
        // Another card holds the code row 1 of J2 would get first.
        let taken = ean13::generate("acme", "J2", 1, 0);
        let holder = card_rows(CARD_HEADER, &format!("{taken};z@x.io;1;;;;\n"), &config);
        let other = CardJob {
            job_id: "J1",
            ..job
        };
        block_on(other.apply_cards(&store, &holder, now())).unwrap();
        let created = block_on(job.apply_cards(
            &store,
            &card_rows(CARD_HEADER, ";a@x.io;1;;;;\n", &config),
            now(),
        ))
        .unwrap();
        assert_eq!(
            created[0].card_code,
            Some(ean13::generate("acme", "J2", 1, 1))
        );
        assert_eq!(store.cards.lock().unwrap().len(), 2);
    }

    #[test]
    fn one_active_card_per_contact_and_program_but_an_expired_card_does_not_count() {
        let store = MemoryCards::default();
        let config = club(true);
        let job = CardJob {
            tenant_id: "acme",
            job_id: "J1",
            config: &config,
        };
        let rows = card_rows(
            CARD_HEADER,
            "A1;a@x.io;1;;2020-01-01;;\nA2;a@x.io;1;;;;\nA3;a@x.io;1;;;;\n",
            &config,
        );
        let outcomes = block_on(job.apply_cards(&store, &rows, now())).unwrap();
        assert_eq!(
            codes(&outcomes),
            [
                (RowStatus::Applied, None),
                (RowStatus::Applied, None),
                (RowStatus::Failed, Some(ErrorCode::SecondActiveCard)),
            ]
        );
        // Nor may an update give the contact a second active card.
        let moves = card_rows(CARD_HEADER, "B1;b@x.io;1;;;;\nB1;a@x.io;;;;;\n", &config);
        let moved = block_on(
            CardJob {
                job_id: "J2",
                ..job
            }
            .apply_cards(&store, &moves, now()),
        )
        .unwrap();
        assert_eq!(moved[1].error_code, Some(ErrorCode::SecondActiveCard));
    }

    #[test]
    fn a_tier_change_applies_to_a_card_created_before_it_and_fails_for_an_unknown_card() {
        let store = MemoryCards::default();
        let config = club(false);
        let cards = CardJob {
            tenant_id: "acme",
            job_id: "C1",
            config: &config,
        };
        let changes = CardJob {
            tenant_id: "acme",
            job_id: "T1",
            config: &config,
        };
        let tiers = tier_rows("A1;Gold;upgrade;2026-11-20;\n");
        let early = block_on(changes.apply_tier_changes(&store, &tiers, now())).unwrap();
        assert_eq!(early[0].error_code, Some(ErrorCode::UnknownCard));
        block_on(cards.apply_cards(
            &store,
            &card_rows(CARD_HEADER, "A1;a@x.io;1;;;;\n", &config),
            now(),
        ))
        .unwrap();
        let later = CardJob {
            job_id: "T2",
            ..changes
        };
        let applied = block_on(later.apply_tier_changes(&store, &tiers, now())).unwrap();
        assert_eq!(applied[0].status, RowStatus::Applied);
        let stored = block_on(store.card("acme", "A1")).unwrap().unwrap();
        assert_eq!(
            (
                stored.card.id_tier,
                stored.card.tier_history.len(),
                stored.version
            ),
            (4, 1, 2)
        );
    }

    #[test]
    fn a_card_keeps_its_latest_tier_changes_and_every_change_is_kept_apart() {
        let config = club(false);
        let store = MemoryCards::default();
        let cards = CardJob {
            tenant_id: "acme",
            job_id: "C1",
            config: &config,
        };
        block_on(cards.apply_cards(
            &store,
            &card_rows(CARD_HEADER, "A1;a@x.io;1;;;;\n", &config),
            now(),
        ))
        .unwrap();
        let total = super::super::tier_changes::MAX_TIER_HISTORY + 10;
        let file: String = (0..total)
            .map(|n| format!("A1;{};change {n};2026-11-20;\n", ["Gold", "Bronze"][n % 2]))
            .collect();
        let changes = CardJob {
            job_id: "T1",
            ..cards
        };
        let applied =
            block_on(changes.apply_tier_changes(&store, &tier_rows(&file), now())).unwrap();
        assert!(applied.iter().all(|o| o.status == RowStatus::Applied));
        let card = block_on(store.card("acme", "A1")).unwrap().unwrap().card;
        assert_eq!(
            card.tier_history.len(),
            super::super::tier_changes::MAX_TIER_HISTORY
        );
        assert_eq!(
            card.tier_history.last().unwrap().context.as_deref(),
            Some(format!("change {}", total - 1).as_str())
        );
        let kept = store.history.lock().unwrap()[&("acme".to_owned(), "A1".to_owned())].clone();
        assert_eq!(kept.len(), total);
        assert_eq!(kept[0].context.as_deref(), Some("change 0"));
    }
}
