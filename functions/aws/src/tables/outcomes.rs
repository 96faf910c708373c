//! Row outcomes recorded one by one (`outcomes` table, `job_id` and `row`):
//! rows that failed validation, rows refused without a ledger commit, and
//! each membership row. A row's outcome is written once: whichever delivery
//! decides it first keeps it. Outcomes of a points batch's rows go in pages
//! (`pages`).

use super::request::put_item;
use super::{epoch_in_days, from_item, item, n, s, to_item, Tables, OUTCOME_TTL_DAYS};
use crate::AwsError;
use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::{Deserialize, Serialize};
use shared::outcome::RowOutcome;

#[derive(Serialize, Deserialize)]
pub(super) struct OutcomeItem {
    job_id: String,
    #[serde(flatten)]
    pub(super) outcome: RowOutcome,
    ttl: i64,
}

impl OutcomeItem {
    /// A row's outcome in its job, kept until `ttl` (epoch seconds).
    fn new(job_id: &str, outcome: &RowOutcome, ttl: i64) -> Self {
        OutcomeItem {
            job_id: job_id.to_owned(),
            outcome: outcome.clone(),
            ttl,
        }
    }
}

/// Until when an outcome written now is kept.
fn outcome_ttl() -> i64 {
    epoch_in_days(OUTCOME_TTL_DAYS)
}

impl Tables {
    /// Records outcomes decided outside a ledger commit (rows that failed
    /// validation). Re-recording the same outcome is harmless.
    pub async fn put_outcomes(
        &self,
        job_id: &str,
        outcomes: &[RowOutcome],
    ) -> Result<(), AwsError> {
        let call = "dynamodb:BatchWriteItem";
        let ttl = outcome_ttl();
        let items = outcomes
            .iter()
            .map(|o| to_item(call, &OutcomeItem::new(job_id, o, ttl)))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_put(&self.outcomes, items).await
    }

    /// Records refusals for rows no delivery has decided, up to 100 in one
    /// transaction (each `attribute_not_exists`): a row decided meanwhile
    /// keeps its outcome and drops out, and the rest are written again.
    /// Returns how many were recorded.
    pub async fn seal_many(&self, job_id: &str, outcomes: &[RowOutcome]) -> Result<u64, AwsError> {
        let ttl = outcome_ttl();
        let mut sealed = 0;
        for chunk in outcomes.chunks(shared::apply::MAX_COMMIT_ITEMS) {
            let mut pending: Vec<&RowOutcome> = chunk.iter().collect();
            while !pending.is_empty() {
                let items = pending
                    .iter()
                    .map(|outcome| self.outcome_put_until(job_id, outcome, ttl))
                    .collect::<Result<Vec<_>, AwsError>>()?;
                match self.transact(items).await? {
                    Ok(()) => {
                        sealed += pending.len() as u64;
                        pending.clear();
                    }
                    Err(refused) if !refused.any_condition_failed() => {
                        return Err(refused.into_error())
                    }
                    Err(refused) => {
                        pending = pending
                            .into_iter()
                            .enumerate()
                            .filter(|(i, _)| !refused.condition_failed(*i))
                            .map(|(_, outcome)| outcome)
                            .collect();
                    }
                }
            }
        }
        Ok(sealed)
    }

    /// Records a row's outcome unless the row has one; `false` if it has.
    pub(super) async fn seal_outcome(
        &self,
        job_id: &str,
        outcome: &RowOutcome,
    ) -> Result<bool, AwsError> {
        let item = OutcomeItem::new(job_id, outcome, outcome_ttl());
        self.put_new(
            &self.outcomes,
            to_item("dynamodb:PutItem", &item)?,
            "job_id",
        )
        .await
    }

    /// The outcomes recorded one by one of these rows of a job, in row order
    /// (rows without one are left out).
    pub(super) async fn row_outcomes(
        &self,
        job_id: &str,
        rows: &[u64],
    ) -> Result<Vec<RowOutcome>, AwsError> {
        let keys = rows
            .iter()
            .map(|r| item([("job_id", s(job_id)), ("row", n(r))]))
            .collect();
        let mut found = self
            .batch_get(&self.outcomes, keys)
            .await?
            .into_iter()
            .map(|item| from_item::<OutcomeItem>("dynamodb:BatchGetItem", item).map(|o| o.outcome))
            .collect::<Result<Vec<_>, _>>()?;
        found.sort_by_key(|o| o.row);
        Ok(found)
    }

    /// The transaction item recording a row's outcome, if it has none yet.
    pub(super) fn outcome_put(
        &self,
        job_id: &str,
        outcome: &RowOutcome,
    ) -> Result<TransactWriteItem, AwsError> {
        self.outcome_put_until(job_id, outcome, outcome_ttl())
    }

    fn outcome_put_until(
        &self,
        job_id: &str,
        outcome: &RowOutcome,
        ttl: i64,
    ) -> Result<TransactWriteItem, AwsError> {
        let item = to_item(
            "dynamodb:TransactWriteItems",
            &OutcomeItem::new(job_id, outcome, ttl),
        )?;
        let condition = Some("attribute_not_exists(job_id)");
        put_item(&self.outcomes, item, condition, None)
    }
}
