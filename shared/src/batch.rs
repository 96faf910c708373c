//! Batches: the unit of work the processor applies.
//!
//! Rows are spread over a fixed number of shards by customer, so every row of
//! one customer lands in the same shard, in file order. A shard's batches are
//! delivered in order (one ordered message group per shard), which keeps each
//! customer's rows in file order across batches while shards run in parallel.
//! Rows that must all keep file order (a membership file's: a row may touch
//! any card or contact an earlier row touched) share one shard.

use crate::identifier::CustomerRef;
use crate::membership::cards::CardRow;
use crate::membership::tier_changes::TierChangeRow;
use crate::points::{Operation, PointsRow};
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
    /// of the file are. The key's hash (`key_hash`) is what is kept.
    fn order_key(&self) -> Option<u64>;
    /// At least the bytes the row takes in a batch message (its JSON):
    /// batches are cut by bytes too, so no message outgrows the queue's.
    fn json_bytes(&self) -> usize;
    /// Appends the row's JSON, the same as serde's.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

/// The bytes of a batch's rows, at most: with the batch's other fields (a
/// reason of at most a few KB), a message stays under SQS's 256 KiB.
pub const MAX_ROWS_JSON_BYTES: usize = 200_000;

/// Room for a row's field names, numbers, dates and punctuation, besides
/// its text values.
const ROW_JSON_OVERHEAD: usize = 400;

/// The length of `text` as a JSON string, at most: its quotes, and six
/// bytes for each quote, backslash or control character (serde writes
/// `\"` or `\n` in two, `\u00XX` in six). Counted without a branch a
/// byte: a customer's is counted on every row.
fn json_str_len(text: &str) -> usize {
    let escaped = text
        .bytes()
        .filter(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .count();
    2 + text.len() + 5 * escaped
}

/// Appends `text` as the inside of a JSON string, as serde writes it: as
/// it is when nothing in it needs an escape (a customer almost never does).
fn push_json_str_contents(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    // Without a branch a byte, as `json_str_len` counts.
    let plain = text.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    });
    if plain {
        out.extend_from_slice(text.as_bytes());
    } else {
        let quoted = serde_json::to_vec(text)?;
        out.extend_from_slice(&quoted[1..quoted.len() - 1]);
    }
    Ok(())
}

impl BatchRow for PointsRow {
    const KIND: RowKind = RowKind::Points;
    fn row(&self) -> u64 {
        self.row
    }
    fn order_key(&self) -> Option<u64> {
        let customer = &self.customer;
        Some(key_hash(&[customer.kind(), ":", customer.value()]))
    }
    fn json_bytes(&self) -> usize {
        // `kind:value`: the kind and the colon need no escape.
        let customer = |who: &CustomerRef| json_str_len(who.value()) + who.kind().len() + 1;
        let also: usize = self
            .also
            .iter()
            .map(|(column, who)| json_str_len(column) + customer(who) + 8)
            .sum();
        ROW_JSON_OVERHEAD + customer(&self.customer) + also
    }
    /// Writes the field names as they are (they need no escape), where
    /// serde escapes each one of each row: a fifth of a split's time.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        if !self.also.is_empty() {
            return serde_json::to_writer(out, self);
        }
        // Each constant part in one piece; numbers as serde writes them
        // (`itoa`, which it uses).
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(b"{\"row\":");
        out.extend_from_slice(number.format(self.row).as_bytes());
        out.extend_from_slice(match self.customer {
            CustomerRef::Email(_) => &b",\"customer\":\"email:"[..],
            CustomerRef::Mobile(_) => b",\"customer\":\"mobile:",
            CustomerRef::CustomerId(_) => b",\"customer\":\"customer_id:",
        });
        push_json_str_contents(out, self.customer.value())?;
        out.extend_from_slice(match self.operation {
            Operation::Credit => &b"\",\"operation\":\"CR\",\"amount\":"[..],
            Operation::Debit => b"\",\"operation\":\"DR\",\"amount\":",
        });
        out.extend_from_slice(number.format(self.amount).as_bytes());
        if let Some(days) = self.expire_in_days {
            out.extend_from_slice(b",\"expire_in_days\":");
            out.extend_from_slice(number.format(days).as_bytes());
        }
        if self.set_balance {
            out.extend_from_slice(b",\"set_balance\":true");
        }
        out.push(b'}');
        Ok(())
    }
}

impl BatchRow for CardRow {
    const KIND: RowKind = RowKind::Cards;
    fn row(&self) -> u64 {
        self.row
    }
    fn order_key(&self) -> Option<u64> {
        None
    }
    fn json_bytes(&self) -> usize {
        let text = |v: &Option<String>| v.as_deref().map_or(4, json_str_len);
        let custom: usize = self
            .custom
            .iter()
            .map(|(name, value)| json_str_len(name) + text(value) + 4)
            .sum();
        ROW_JSON_OVERHEAD + text(&self.card_code) + text(&self.customer_key) + custom
    }
}

impl BatchRow for TierChangeRow {
    const KIND: RowKind = RowKind::TierChanges;
    fn row(&self) -> u64 {
        self.row
    }
    fn order_key(&self) -> Option<u64> {
        None
    }
    fn json_bytes(&self) -> usize {
        ROW_JSON_OVERHEAD
            + json_str_len(&self.card_code)
            + json_str_len(&self.tier_name)
            + self.context.as_deref().map_or(4, json_str_len)
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
    /// The file's name for the amount column when it is not `amount`
    /// (`points`, Smile.io's `Points balance`...), for the errors decided
    /// when rows are applied; at most [`MAX_COLUMN_NAME_CHARS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_column: Option<String>,
    /// A reversal's batch: the original job, whose entry for each row is
    /// undone instead of the row being applied (`crate::reversal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverts: Option<String>,
    pub rows: Vec<R>,
}

/// The longest column name a batch carries (a longer one is cut).
pub const MAX_COLUMN_NAME_CHARS: usize = 64;

impl<R: BatchRow> Batch<R> {
    /// The batch as the queue carries it: serde's JSON, each row written
    /// by its own writer ([`BatchRow::write_json`]).
    pub fn to_json(&self) -> serde_json::Result<String> {
        /// The batch's fields before its rows, in the same order.
        #[derive(Serialize)]
        struct Head<'a> {
            tenant_id: &'a str,
            job_id: &'a str,
            number: u64,
            shard: u32,
            reason: &'a str,
            dry_run: bool,
            rows_kind: RowKind,
            #[serde(skip_serializing_if = "Option::is_none")]
            amount_column: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            reverts: Option<&'a str>,
        }
        // Room for the usual batch (a row takes about 110 bytes), so the
        // buffer seldom grows.
        let mut out = Vec::with_capacity(256 + self.reason.len() + 128 * self.rows.len());
        serde_json::to_writer(
            &mut out,
            &Head {
                tenant_id: &self.tenant_id,
                job_id: &self.job_id,
                number: self.number,
                shard: self.shard,
                reason: &self.reason,
                dry_run: self.dry_run,
                rows_kind: self.rows_kind,
                amount_column: self.amount_column.as_deref(),
                reverts: self.reverts.as_deref(),
            },
        )?;
        out.pop();
        out.extend_from_slice(b",\"rows\":[");
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            row.write_json(&mut out)?;
        }
        out.extend_from_slice(b"]}");
        String::from_utf8(out).map_err(serde::ser::Error::custom)
    }
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
    pub amount_column: Option<String>,
    /// A reversal's original job.
    pub reverts: Option<String>,
    pub rows_per_batch: usize,
    pub shards: u32,
}

/// Cuts validated rows into batches, holding at most one batch per shard.
/// A batch closes at `rows_per_batch` rows, or before a row that would take
/// its rows past [`MAX_ROWS_JSON_BYTES`].
pub struct Batcher<R> {
    plan: BatchPlan,
    shards: Vec<Vec<R>>,
    /// The JSON bytes of each shard's rows, at most.
    bytes: Vec<usize>,
    cut: u64,
}

impl<R: BatchRow> Batcher<R> {
    pub fn new(plan: BatchPlan) -> Self {
        let shards: Vec<Vec<R>> = (0..plan.shards.max(1)).map(|_| Vec::new()).collect();
        Batcher {
            plan,
            bytes: vec![0; shards.len()],
            shards,
            cut: 0,
        }
    }

    /// Adds a row; returns a batch when the row's shard is full (by rows),
    /// or the shard's batch so far when the row does not fit in it (by
    /// bytes: the row then starts the next one).
    pub fn push(&mut self, row: R) -> Option<Batch<R>> {
        let shard = row
            .order_key()
            .map_or(0, |hash| (hash % self.shards.len() as u64) as u32);
        let size = row.json_bytes();
        let at = shard as usize;
        let full = self.shards[at].len() >= self.plan.rows_per_batch
            || self.bytes[at] + size > MAX_ROWS_JSON_BYTES;
        let before = (full && !self.shards[at].is_empty()).then(|| self.cut(shard));
        self.shards[at].push(row);
        self.bytes[at] += size;
        match before {
            Some(batch) => Some(batch),
            None => (self.shards[at].len() >= self.plan.rows_per_batch).then(|| self.cut(shard)),
        }
    }

    /// Goes on numbering batches after the `cut` batches cut before (a
    /// split going on from a checkpoint, where every batch was cut).
    pub fn resume(plan: BatchPlan, cut: u64) -> Self {
        Batcher {
            cut,
            ..Self::new(plan)
        }
    }

    /// Every shard's partial batch, cut now, by shard.
    pub fn flush(&mut self) -> Vec<Batch<R>> {
        let pending: Vec<u32> = (0..self.shards.len() as u32)
            .filter(|&s| !self.shards[s as usize].is_empty())
            .collect();
        pending.into_iter().map(|s| self.cut(s)).collect()
    }

    /// The remaining partial batches, by shard.
    pub fn finish(mut self) -> Vec<Batch<R>> {
        self.flush()
    }

    fn cut(&mut self, shard: u32) -> Batch<R> {
        self.cut += 1;
        self.bytes[shard as usize] = 0;
        let capacity = self.plan.rows_per_batch;
        Batch {
            tenant_id: self.plan.tenant_id.clone(),
            job_id: self.plan.job_id.clone(),
            number: self.cut,
            shard,
            reason: self.plan.reason.clone(),
            dry_run: self.plan.dry_run,
            rows_kind: R::KIND,
            amount_column: self.plan.amount_column.clone(),
            reverts: self.plan.reverts.clone(),
            rows: std::mem::replace(
                &mut self.shards[shard as usize],
                Vec::with_capacity(capacity),
            ),
        }
    }
}

/// FNV-1a of the parts written one after the other: stable across builds
/// and platforms, unlike std's hasher, so a customer's shard is too.
fn key_hash(parts: &[&str]) -> u64 {
    parts
        .iter()
        .flat_map(|part| part.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::Operation;

    #[test]
    fn a_customers_shard_is_the_fnv_hash_of_its_kind_and_value_as_before() {
        // Pinned: a split going on after a deploy must send each customer
        // to the shard it went to before (FNV-1a of `kind:value`).
        let key = |c: CustomerRef| {
            PointsRow {
                customer: c,
                ..row(1, "a")
            }
            .order_key()
        };
        assert_eq!(
            key(CustomerRef::Email("alice@example.com".into())),
            Some(5_923_653_643_472_591_932)
        );
        assert_eq!(
            key(CustomerRef::Mobile("+33612345678".into())),
            Some(6_251_246_745_464_092_420)
        );
        assert_eq!(
            key_hash(&["email", ":", "a@x.io"]),
            key_hash(&["email:a@x.io"])
        );
    }

    fn a_batch<R>(rows: Vec<R>, amount_column: Option<&str>, reverts: Option<&str>) -> Batch<R> {
        Batch {
            tenant_id: "acme \"quoted\"".into(),
            job_id: "J-1".into(),
            number: 7,
            shard: 3,
            reason: "line\nbreak \u{1} é".into(),
            dry_run: reverts.is_none(),
            rows_kind: RowKind::Points,
            amount_column: amount_column.map(str::to_owned),
            reverts: reverts.map(str::to_owned),
            rows,
        }
    }

    #[test]
    fn a_batch_is_written_as_serde_writes_it() {
        let mut rows: Vec<PointsRow> = (1..=7).map(|n| row(n, &format!("c{n}"))).collect();
        rows[1].customer = CustomerRef::CustomerId("C \"42\" \\ \u{7}\u{1F600}".into());
        rows[2].operation = Operation::Debit;
        rows[2].amount = -5;
        rows[3].expire_in_days = Some(36_500);
        rows[4].set_balance = true;
        rows[5].also = vec![("mobile".into(), CustomerRef::Mobile("+33612345678".into()))];
        rows[6].customer = CustomerRef::Mobile("+33612345678".into());
        rows[6].row = u64::MAX;
        rows[6].amount = i64::MIN;
        for batch in [
            a_batch(rows.clone(), None, None),
            a_batch(rows.clone(), Some("Points balance"), Some("J-0")),
            a_batch(Vec::new(), None, None),
        ] {
            let json = batch.to_json().unwrap();
            assert_eq!(json, serde_json::to_string(&batch).unwrap());
            assert_eq!(serde_json::from_str::<Batch>(&json).unwrap(), batch);
        }
        let cards = a_batch(vec![longest_card_row(1), longest_card_row(2)], None, None);
        assert_eq!(
            cards.to_json().unwrap(),
            serde_json::to_string(&cards).unwrap()
        );
    }

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
            amount_column: None,
            reverts: None,
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

    /// A card row as long as a file can make one: every text at its
    /// column's limit, made of the character JSON escapes the longest.
    fn longest_card_row(n: u64) -> CardRow {
        use crate::membership::cards::Edit;
        use crate::membership::{self, programs::MAX_CUSTOM_FIELDS};
        let worst = |chars: usize| Some("\u{1}".repeat(chars));
        CardRow {
            row: n,
            card_code: worst(membership::MAX_CARD_CODE_CHARS),
            customer_key: worst(membership::MAX_CUSTOMER_KEY_CHARS),
            id_program: Edit::Set(u64::MAX),
            join_date: Some(chrono::DateTime::<chrono::Utc>::MAX_UTC),
            expiration_date: Edit::Set(chrono::DateTime::<chrono::Utc>::MAX_UTC),
            birthday: Edit::Set(chrono::NaiveDate::MAX),
            id_tier: Some(u64::MAX),
            custom: (0..MAX_CUSTOM_FIELDS)
                .map(|f| {
                    (
                        format!("field_{f:0>30}"),
                        worst(membership::MAX_CUSTOM_FIELD_CHARS),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_batch_message_stays_under_the_queues_limit_whatever_its_rows_hold() {
        let mut batcher = Batcher::new(BatchPlan {
            amount_column: Some("\u{1}".repeat(MAX_COLUMN_NAME_CHARS)),
            reason: "r".repeat(2_000),
            ..plan(196, 1)
        });
        let mut batches = Vec::new();
        for n in 1..=100 {
            batches.extend(batcher.push(longest_card_row(n)));
        }
        batches.extend(batcher.finish());
        assert!(batches.len() > 1);
        for batch in &batches {
            let bytes = serde_json::to_vec(batch).unwrap().len();
            assert!(bytes < 256 * 1024, "batch {}: {bytes} bytes", batch.number);
            let estimate: usize = batch.rows.iter().map(BatchRow::json_bytes).sum();
            assert!(estimate <= MAX_ROWS_JSON_BYTES);
        }
        // Every row once, in file order.
        let rows: Vec<u64> = batches
            .iter()
            .flat_map(|b| b.rows.iter().map(|r| r.row))
            .collect();
        assert_eq!(rows, (1..=100).collect::<Vec<_>>());
    }

    #[test]
    fn a_rows_estimate_is_never_below_its_json() {
        let card = longest_card_row(1);
        assert!(card.json_bytes() >= serde_json::to_vec(&card).unwrap().len());
        let points = row(1, "a\"b\\c\u{7}");
        assert!(points.json_bytes() >= serde_json::to_vec(&points).unwrap().len());
    }
}
