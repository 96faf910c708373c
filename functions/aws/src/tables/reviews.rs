//! A review's passage through the jobs and wallets tables
//! (`shared::review`): its read checkpointed with what it found so far,
//! the customers it has seen, and the review ready, started, discarded or
//! expired.
//!
//! The customers a review counts are marked in `wallets` under
//! `pk = <tenant>#review:<job>#<customer>`, `sk = SEEN`, with the row that
//! first named the customer and whether it had a wallet then (an item of
//! under 200 bytes, with a TTL). The marker decides each count once: a run
//! that reads the same rows after the same checkpoint finds its own
//! markers and counts them again at the same rows, exactly as the run that
//! stopped would have, and never a customer an earlier row named. A
//! membership file's cards are marked the same way
//! (`<tenant>#review:<job>#card:<code>`, under 400 bytes with a code of 128
//! characters), new if `subscriptions` holds no card of that code.

use super::cards::card_pk;
use super::{epoch_in_days, item, n, s, Item, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use shared::job::{Job, JobStatus};
use shared::review::{counted_at, Named, Review, REVIEW_VALID_DAYS};
use shared::split::{Checkpoint, SplitSummary};
use std::collections::{HashMap, HashSet};

const SEEN: &str = "SEEN";

fn seen_pk(tenant_id: &str, job_id: &str, customer: &str) -> String {
    format!("{tenant_id}#review:{job_id}#{customer}")
}

/// Where what a review names would be stored if it is not new: the
/// customer's wallet, or the card.
fn stored_key(tenant_id: &str, named: &Named) -> (String, &'static str) {
    match named {
        Named::Customer(customer) => (format!("{tenant_id}#{customer}"), "WALLET"),
        Named::Card(code) => (card_pk(tenant_id, code), "CARD"),
    }
}

fn attribute<T: serde::Serialize>(value: &T) -> Result<AttributeValue, AwsError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| AwsError::new("dynamodb:UpdateItem", e))
}

impl Tables {
    /// Counts, of these customers (or cards) each with the row of a batch
    /// that first names it (`shared::review::first_rows`), those no earlier
    /// row of the file named, and of those the ones not stored yet (no
    /// wallet, no card): `(counted, new)`.
    pub async fn count_first_sightings(
        &self,
        tenant_id: &str,
        job_id: &str,
        firsts: &[(Named, u64)],
    ) -> Result<(u64, u64), AwsError> {
        let marker_key = |named: &Named| {
            item([
                ("pk", s(seen_pk(tenant_id, job_id, &named.marker()))),
                ("sk", s(SEEN)),
            ])
        };
        let keys = firsts.iter().map(|(named, _)| marker_key(named)).collect();
        let mut marked: HashMap<String, (u64, bool)> = HashMap::new();
        for found in self.batch_get(&self.wallets, keys).await? {
            if let (Some(AttributeValue::S(pk)), Some(AttributeValue::N(row))) =
                (found.get("pk"), found.get("row"))
            {
                let new = matches!(found.get("new"), Some(AttributeValue::Bool(true)));
                let row = row
                    .parse()
                    .map_err(|e| AwsError::new("dynamodb:BatchGetItem", e))?;
                marked.insert(pk.clone(), (row, new));
            }
        }
        let (mut counted, mut new) = (0, 0);
        let mut unmarked = Vec::new();
        for (named, row) in firsts {
            match marked.get(&seen_pk(tenant_id, job_id, &named.marker())) {
                Some(&(first, was_new)) => {
                    if counted_at(Some(first), *row) {
                        counted += 1;
                        new += u64::from(was_new);
                    }
                }
                None => unmarked.push((named, *row)),
            }
        }
        if unmarked.is_empty() {
            return Ok((counted, new));
        }
        let stored = self.stored_of(tenant_id, &unmarked).await?;
        let ttl = epoch_in_days(REVIEW_VALID_DAYS);
        let markers: Vec<Item> = unmarked
            .iter()
            .map(|(named, row)| {
                let is_new = !stored.contains(&stored_key(tenant_id, named).0);
                counted += 1;
                new += u64::from(is_new);
                let mut marker = marker_key(named);
                marker.insert("row".into(), n(row));
                marker.insert("new".into(), AttributeValue::Bool(is_new));
                marker.insert("ttl".into(), n(ttl));
                marker
            })
            .collect();
        self.batch_put(&self.wallets, markers).await?;
        Ok((counted, new))
    }

    /// The keys (`pk`) of the wallets and cards stored for these, read for
    /// their key only.
    async fn stored_of(
        &self,
        tenant_id: &str,
        unmarked: &[(&Named, u64)],
    ) -> Result<HashSet<String>, AwsError> {
        let (mut wallets, mut cards) = (Vec::new(), Vec::new());
        for (named, _) in unmarked {
            let (pk, sk) = stored_key(tenant_id, named);
            let key = item([("pk", s(pk)), ("sk", s(sk))]);
            match named {
                Named::Customer(_) => wallets.push(key),
                Named::Card(_) => cards.push(key),
            }
        }
        let mut found = self
            .batch_get_projected(&self.wallets, wallets, Some("pk"))
            .await?;
        found.extend(
            self.batch_get_projected(&self.subscriptions, cards, Some("pk"))
                .await?,
        );
        Ok(found
            .into_iter()
            .filter_map(|i| match i.get("pk") {
                Some(AttributeValue::S(pk)) => Some(pk.clone()),
                _ => None,
            })
            .collect())
    }

    /// Records where a review's read stands and what it found up to there,
    /// unless another run of it has got further: `false` then.
    pub async fn save_review_checkpoint(
        &self,
        job: &Job,
        at: &Checkpoint,
        review: &Review,
    ) -> Result<bool, AwsError> {
        Ok(self
            .update_job(
                &job.tenant_id,
                &job.job_id,
                "SET split_checkpoint = :at, review = :review, progress_at = :now",
                Some(
                    "#status = :reviewing AND (attribute_not_exists(split_checkpoint) \
                     OR split_checkpoint.#row < :row)",
                ),
                &[("#status", "status"), ("#row", "row")],
                vec![
                    (":at", attribute(at)?),
                    (":review", attribute(review)?),
                    (":now", s(Utc::now().to_rfc3339())),
                    (":reviewing", s(JobStatus::Reviewing.as_str())),
                    (":row", n(at.row)),
                ],
            )
            .await?
            .is_some())
    }

    /// The whole file is read: the review is ready for the admin. It stays
    /// among the unfinished jobs, for the watchdog to expire it.
    pub async fn finish_review(
        &self,
        job: &Job,
        summary: &SplitSummary,
        review: &Review,
    ) -> Result<Option<Job>, AwsError> {
        self.update_job(
            &job.tenant_id,
            &job.job_id,
            "SET #status = :ready, kind = :kind, review = :review, progress_at = :now \
             REMOVE split_checkpoint, hashing",
            Some("#status = :reviewing"),
            &[("#status", "status")],
            vec![
                (":ready", s(JobStatus::ReadyForReview.as_str())),
                (":reviewing", s(JobStatus::Reviewing.as_str())),
                (":kind", s(summary.kind.as_str())),
                (":review", attribute(review)?),
                (":now", s(Utc::now().to_rfc3339())),
            ],
        )
        .await
    }

    /// Starts a ready review: its file, the same object version, is split
    /// and applied from its first row (`next` is `splitting`, or `waiting`
    /// for a membership file's turn: `shared::review::started`). `None` if
    /// it was not ready.
    pub async fn start_review(
        &self,
        tenant_id: &str,
        job_id: &str,
        next: JobStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, AwsError> {
        self.leave_review(
            tenant_id,
            job_id,
            next,
            "SET #status = :next, progress_at = :now, started_at = :now",
            now,
        )
        .await
    }

    /// Ends a ready review without applying anything: `discarded` by the
    /// admin, or `expired`. `None` if it was not ready.
    pub async fn close_review(
        &self,
        tenant_id: &str,
        job_id: &str,
        next: JobStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, AwsError> {
        self.leave_review(
            tenant_id,
            job_id,
            next,
            "SET #status = :next, finished_at = :now REMOVE unfinished",
            now,
        )
        .await
    }

    async fn leave_review(
        &self,
        tenant_id: &str,
        job_id: &str,
        next: JobStatus,
        update: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, AwsError> {
        self.update_job(
            tenant_id,
            job_id,
            update,
            Some("#status = :ready"),
            &[("#status", "status")],
            vec![
                (":next", s(next.as_str())),
                (":ready", s(JobStatus::ReadyForReview.as_str())),
                (":now", s(now.to_rfc3339())),
            ],
        )
        .await
    }
}
