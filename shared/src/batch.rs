//! Batches: the unit of work the processor applies.
//!
//! Rows are spread over a fixed number of shards by customer, so every row of
//! one customer lands in the same shard, in file order. A shard's batches are
//! delivered in order (one ordered message group per shard), which keeps each
//! customer's rows in file order across batches while shards run in parallel.
//! Rows that must all keep file order (a membership file's: a row may touch
//! any card or contact an earlier row touched) share one shard.

use crate::membership::cards::CardRow;
use crate::membership::tier_changes::TierChangeRow;
use crate::points::PointsRow;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Which rows a batch carries; the processor reads it before the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    #[default]
    Points,
    Cards,
    TierChanges,
}

/// A validated row that batches carry.
pub trait BatchRow: Clone + Serialize + DeserializeOwned + Send + 'static {
    const KIND: RowKind;
    /// The row's number in its file.
    fn row(&self) -> u64;
    /// Rows with the same key are applied in file order; `None`: all rows
    /// of the file are.
    fn order_key(&self) -> Option<String>;
}

impl BatchRow for PointsRow {
    const KIND: RowKind = RowKind::Points;
    fn row(&self) -> u64 {
        self.row
    }
    fn order_key(&self) -> Option<String> {
        Some(self.customer.to_string())
    }
}

impl BatchRow for CardRow {
    const KIND: RowKind = RowKind::Cards;
    fn row(&self) -> u64 {
        self.row
    }
    fn order_key(&self) -> Option<String> {
        None
    }
}

impl BatchRow for TierChangeRow {
    const KIND: RowKind = RowKind::TierChanges;
    fn row(&self) -> u64 {
        self.row
    }
    fn order_key(&self) -> Option<String> {
        None
    }
}

/// What the processor reads first, to know which rows follow.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct BatchHead {
    #[serde(default)]
    pub rows_kind: RowKind,
}

/// Rows of one job, all from one shard, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch<R = PointsRow> {
    pub tenant_id: String,
    pub job_id: String,
    /// 1-based, in the order batches were cut.
    pub number: u64,
    pub shard: u32,
    pub reason: String,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub rows_kind: RowKind,
    pub rows: Vec<R>,
}

impl<R> Batch<R> {
    /// The ordered group this batch belongs to: one per job and shard.
    pub fn group_id(&self) -> String {
        format!("{}-{}", self.job_id, self.shard)
    }

    /// Stable per batch, so a re-sent batch is recognised as the same one.
    pub fn dedup_id(&self) -> String {
        format!("{}-b{}", self.job_id, self.number)
    }
}

/// What every batch of a job carries besides its rows.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    pub tenant_id: String,
    pub job_id: String,
    pub reason: String,
    pub dry_run: bool,
    pub rows_per_batch: usize,
    pub shards: u32,
}

/// Cuts validated rows into batches, holding at most one batch per shard.
pub struct Batcher<R> {
    plan: BatchPlan,
    shards: Vec<Vec<R>>,
    cut: u64,
}

impl<R: BatchRow> Batcher<R> {
    pub fn new(plan: BatchPlan) -> Self {
        let shards = (0..plan.shards.max(1)).map(|_| Vec::new()).collect();
        Batcher {
            plan,
            shards,
            cut: 0,
        }
    }

    /// Adds a row; returns a batch when the row's shard is full.
    pub fn push(&mut self, row: R) -> Option<Batch<R>> {
        let shard = row
            .order_key()
            .map_or(0, |key| shard_of(&key, self.shards.len() as u32));
        let rows = &mut self.shards[shard as usize];
        rows.push(row);
        (rows.len() >= self.plan.rows_per_batch).then(|| self.cut(shard))
    }

    /// The remaining partial batches, by shard.
    pub fn finish(mut self) -> Vec<Batch<R>> {
        let pending: Vec<u32> = (0..self.shards.len() as u32)
            .filter(|&s| !self.shards[s as usize].is_empty())
            .collect();
        pending.into_iter().map(|s| self.cut(s)).collect()
    }

    fn cut(&mut self, shard: u32) -> Batch<R> {
        self.cut += 1;
        let capacity = self.plan.rows_per_batch;
        Batch {
            tenant_id: self.plan.tenant_id.clone(),
            job_id: self.plan.job_id.clone(),
            number: self.cut,
            shard,
            reason: self.plan.reason.clone(),
            dry_run: self.plan.dry_run,
            rows_kind: R::KIND,
            rows: std::mem::replace(
                &mut self.shards[shard as usize],
                Vec::with_capacity(capacity),
            ),
        }
    }
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
fn shard_of(key: &str, shards: u32) -> u32 {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % u64::from(shards)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifier::CustomerRef;
    use crate::points::Operation;

    fn row(n: u64, who: &str) -> PointsRow {
        PointsRow {
            row: n,
            customer: CustomerRef::Email(format!("{who}@x.io")),
            operation: Operation::Credit,
            amount: 1,
            expire_in_days: None,
            set_balance: false,
            also: Vec::new(),
        }
    }

    fn plan(rows_per_batch: usize, shards: u32) -> BatchPlan {
        BatchPlan {
            tenant_id: "acme".into(),
            job_id: "J".into(),
            reason: "r".into(),
            dry_run: false,
            rows_per_batch,
            shards,
        }
    }

    #[test]
    fn a_customers_rows_stay_in_one_shard_in_file_order() {
        let mut batcher = Batcher::new(plan(2, 4));
        let mut batches = Vec::new();
        for n in 1..=20 {
            let who = ["ann", "bob", "cyd"][(n % 3) as usize];
            batches.extend(batcher.push(row(n, who)));
        }
        batches.extend(batcher.finish());
        assert_eq!(batches.iter().map(|b| b.rows.len()).sum::<usize>(), 20);
        for who in ["ann", "bob", "cyd"] {
            let key = CustomerRef::Email(format!("{who}@x.io"));
            let holding: Vec<&Batch> = batches
                .iter()
                .filter(|b| b.rows.iter().any(|r| r.customer == key))
                .collect();
            assert!(holding
                .windows(2)
                .all(|w| w[0].shard == w[1].shard && w[0].number < w[1].number));
            let order: Vec<u64> = holding
                .iter()
                .flat_map(|b| b.rows.iter().filter(|r| r.customer == key).map(|r| r.row))
                .collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{who}: {order:?}");
        }
    }

    #[test]
    fn batches_never_exceed_their_size() {
        let mut batcher = Batcher::new(plan(3, 2));
        let full: Vec<Batch> = (1..=10)
            .filter_map(|n| batcher.push(row(n, "ann")))
            .collect();
        assert!(full.iter().all(|b| b.rows.len() == 3));
        assert_eq!(
            batcher
                .finish()
                .iter()
                .map(|b| b.rows.len())
                .collect::<Vec<_>>(),
            [1]
        );
    }
}
