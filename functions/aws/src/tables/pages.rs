//! Outcome pages in the `outcomes` table, and a job's outcomes read back in
//! row order.
//!
//! The table is keyed by `job_id` and a number, `row`. Below [`PAGE_BASE`]
//! the number is a row's, for outcomes recorded one by one. From it up, it
//! names a page of a points batch: `PAGE_BASE + shard·2⁴⁰ + batch·2¹⁰ +
//! index`, holding one attribute `r<row>` per decided row. A page costs one
//! write for up to 49 rows instead of one per row.
//!
//! Within a shard, batches are cut in file order and a batch's pages follow
//! its rows, so one shard's pages, in key order, hold its rows in file
//! order. The job's outcomes in row order are a merge of one stream per
//! shard and the stream of rows recorded one by one.

use super::outcomes::OutcomeItem;
use super::{epoch_in_days, from_item, item, n, s, Item, Tables, OUTCOME_TTL_DAYS};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use shared::apply::{Commit, Page};
use shared::job::Job;
use shared::outcome::{RowOutcome, RowStatus};
use std::collections::{HashMap, VecDeque};

/// The first key of pages; every row number is below it.
pub(super) const PAGE_BASE: u64 = 1 << 60;

/// The key of a page in the `outcomes` table.
fn page_key(page: &Page) -> u64 {
    page_key_of(page.shard, page.batch, page.index)
}

fn page_key_of(shard: u32, batch: u64, index: u32) -> u64 {
    PAGE_BASE + (u64::from(shard) << 40) + (batch << 10) + u64::from(index)
}

/// The attribute holding a row's outcome in its page.
fn row_attribute(row: u64) -> String {
    format!("r{row}")
}

/// A row's outcome as kept in a page: `<points>,<balance>` for an applied
/// row (most rows, kept small: a page's size is its cost), JSON otherwise.
fn encode(outcome: &RowOutcome) -> String {
    match outcome {
        RowOutcome {
            status: RowStatus::Applied,
            error_code: None,
            error_message: None,
            points: Some(points),
            balance_after: Some(balance),
            card_code: None,
            ..
        } => format!("{points},{balance}"),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn decode(row: u64, text: &str) -> Result<RowOutcome, String> {
    if text.starts_with('{') {
        return serde_json::from_str(text).map_err(|e| format!("row {row}: {e}"));
    }
    let (points, balance) = text
        .split_once(',')
        .and_then(|(p, b)| Some((p.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| format!("row {row}: unreadable outcome '{text}'"))?;
    Ok(RowOutcome::applied(row, points, balance))
}

/// The outcomes a page item holds, in row order.
fn page_outcomes(call: &'static str, item: &Item) -> Result<Vec<RowOutcome>, AwsError> {
    let mut outcomes = Vec::new();
    for (name, value) in item {
        let Some(row) = name.strip_prefix('r').and_then(|r| r.parse::<u64>().ok()) else {
            continue;
        };
        let AttributeValue::S(text) = value else {
            return Err(AwsError::new(call, format!("{name} is not a string")));
        };
        outcomes.push(decode(row, text).map_err(|e| AwsError::new(call, e))?);
    }
    outcomes.sort_by_key(|o| o.row);
    Ok(outcomes)
}

/// Outcomes read per query: rows recorded one by one, or pages.
const ROWS_PER_QUERY: i32 = 1000;
const PAGES_PER_QUERY: i32 = 20;

/// One range of keys of a job, read in key order a query at a time.
struct Stream {
    /// The next key to read.
    next: u64,
    to: u64,
    limit: i32,
    /// Outcomes read and not yet handed out, with the key of their item.
    buffer: VecDeque<(u64, RowOutcome)>,
    /// The item of the outcome last handed out.
    last: Option<u64>,
    done: bool,
}

/// A job's outcomes in row order, whether recorded one by one or in pages.
pub struct JobOutcomes {
    tables: Tables,
    job_id: String,
    streams: Vec<Stream>,
}

impl Tables {
    /// The transaction item writing a commit's rows' outcomes into their
    /// page, if none of them has one yet.
    pub(super) fn page_update(&self, c: &Commit) -> Result<TransactWriteItem, AwsError> {
        let call = "dynamodb:TransactWriteItems";
        let mut set = vec!["#ttl = :ttl".to_owned()];
        let mut condition = Vec::new();
        let mut names = HashMap::from([("#ttl".to_owned(), "ttl".to_owned())]);
        let mut values = HashMap::from([(":ttl".to_owned(), n(epoch_in_days(OUTCOME_TTL_DAYS)))]);
        for (i, row) in c.rows.iter().enumerate() {
            names.insert(format!("#r{i}"), row_attribute(row.outcome.row));
            values.insert(format!(":r{i}"), s(encode(&row.outcome)));
            set.push(format!("#r{i} = :r{i}"));
            condition.push(format!("attribute_not_exists(#r{i})"));
        }
        Ok(TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.outcomes)
                    .key("job_id", s(&c.page.job_id))
                    .key("row", n(page_key(&c.page)))
                    .update_expression(format!("SET {}", set.join(", ")))
                    .condition_expression(condition.join(" AND "))
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .build()
                    .map_err(|e| AwsError::new(call, e))?,
            )
            .build())
    }

    /// The outcomes these pages hold (pages never written are left out).
    pub(super) async fn pages_outcomes(&self, pages: &[Page]) -> Result<Vec<RowOutcome>, AwsError> {
        let keys = pages
            .iter()
            .map(|p| item([("job_id", s(&p.job_id)), ("row", n(page_key(p)))]))
            .collect();
        let mut found = Vec::new();
        for item in self.batch_get(&self.outcomes, keys).await? {
            found.extend(page_outcomes("dynamodb:BatchGetItem", &item)?);
        }
        Ok(found)
    }

    /// Reads the job's outcomes in row order (see [`JobOutcomes::next`]).
    pub fn job_outcomes(&self, job: &Job) -> JobOutcomes {
        self.job_outcomes_from(job, &[])
    }

    /// As [`Self::job_outcomes`], going on from where an earlier reader
    /// stood ([`JobOutcomes::resume_keys`]; from the start if they are not
    /// this job's).
    pub fn job_outcomes_from(&self, job: &Job, keys: &[u64]) -> JobOutcomes {
        let stream = |from, to, limit| Stream {
            next: from,
            to,
            limit,
            buffer: VecDeque::new(),
            last: None,
            done: false,
        };
        let mut streams = vec![stream(0, PAGE_BASE - 1, ROWS_PER_QUERY)];
        streams.extend((0..job.shards).map(|shard| {
            stream(
                page_key_of(shard, 0, 0),
                page_key_of(shard + 1, 0, 0) - 1,
                PAGES_PER_QUERY,
            )
        }));
        if keys.len() == streams.len()
            && streams
                .iter()
                .zip(keys)
                .all(|(s, &key)| (s.next..=s.to + 1).contains(&key))
        {
            for (stream, &key) in streams.iter_mut().zip(keys) {
                stream.next = key;
            }
        }
        JobOutcomes {
            tables: self.clone(),
            job_id: job.job_id.clone(),
            streams,
        }
    }
}

impl JobOutcomes {
    /// The next outcome in row order, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<RowOutcome>, AwsError> {
        for stream in &mut self.streams {
            while stream.buffer.is_empty() && !stream.done {
                stream.fill(&self.tables, &self.job_id).await?;
            }
        }
        let Some(stream) = self
            .streams
            .iter_mut()
            .filter(|s| !s.buffer.is_empty())
            .min_by_key(|s| s.buffer.front().map(|(_, o)| o.row))
        else {
            return Ok(None);
        };
        Ok(stream.buffer.pop_front().map(|(key, outcome)| {
            stream.last = Some(key);
            outcome
        }))
    }

    /// Where a reader made later can go on from and miss nothing this one
    /// has not handed out: for each range, the item of the last outcome it
    /// handed out (that item may hold later rows too), or the next to read.
    /// A reader made from them hands out some rows again, all before the
    /// next one this reader would: a caller skips rows it has.
    pub fn resume_keys(&self) -> Vec<u64> {
        self.streams
            .iter()
            .map(|s| {
                s.last
                    .or_else(|| s.buffer.front().map(|(key, _)| *key))
                    .unwrap_or(s.next)
            })
            .collect()
    }
}

impl Stream {
    async fn fill(&mut self, tables: &Tables, job_id: &str) -> Result<(), AwsError> {
        let call = "dynamodb:Query";
        if self.next > self.to {
            self.done = true;
            return Ok(());
        }
        let out = tables
            .client
            .query()
            .table_name(&tables.outcomes)
            .key_condition_expression("job_id = :job AND #row BETWEEN :from AND :to")
            .expression_attribute_names("#row", "row")
            .expression_attribute_values(":job", s(job_id))
            .expression_attribute_values(":from", n(self.next))
            .expression_attribute_values(":to", n(self.to))
            .consistent_read(true)
            .limit(self.limit)
            .send()
            .await
            .map_err(|e| AwsError::sdk(call, e))?;
        for item in out.items.unwrap_or_default() {
            let key = match item.get("row") {
                Some(AttributeValue::N(key)) => key.parse::<u64>().ok(),
                _ => None,
            }
            .ok_or_else(|| AwsError::new(call, "an outcome item without its row"))?;
            if self.to >= PAGE_BASE {
                self.buffer
                    .extend(page_outcomes(call, &item)?.into_iter().map(|o| (key, o)));
            } else {
                let outcome = from_item::<OutcomeItem>(call, item)?.outcome;
                self.buffer.push_back((key, outcome));
            }
            self.next = key + 1;
        }
        self.done = out.last_evaluated_key.is_none_or(|k| k.is_empty());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::outcome::ErrorCode;

    #[test]
    fn an_applied_row_is_kept_small_and_any_outcome_reads_back_the_same() {
        let applied = RowOutcome::applied(7, -120, 30);
        assert_eq!(encode(&applied), "-120,30");
        let refused = RowOutcome::failed(8, ErrorCode::InsufficientBalance, "too much".to_owned())
            .with_balance(30);
        for outcome in [applied, refused, RowOutcome::set_aside(9)] {
            assert_eq!(decode(outcome.row, &encode(&outcome)), Ok(outcome));
        }
    }

    #[test]
    fn a_shards_pages_follow_its_batches_and_stay_above_every_row() {
        assert!(page_key_of(0, 1, 0) > 10_000_000_000);
        assert!(page_key_of(0, 1, 3) < page_key_of(0, 2, 0));
        assert!(page_key_of(0, (1 << 30) - 1, 1023) < page_key_of(1, 0, 0));
    }
}
