//! A tenant's imports, newest first (`GET /imports`), read from the jobs
//! table's sparse `History` index: only a job carries its key `listed`
//! (`shared::history::Position`, written by `create_job`), so a page reads
//! jobs and none of the batch markers and claims that share their
//! partition. The index holds `shared::history::LISTED_ATTRIBUTES`.

use super::jobs::job_sk;
use super::{from_item, item, s, Item, Tables};
use crate::AwsError;
use shared::history::{HistoryPage, ListedJob, Position};
use std::future::Future;

const HISTORY_INDEX: &str = "History";
const CALL: &str = "dynamodb:Query";

impl Tables {
    /// A page of at most `limit` of the tenant's jobs, newest first, after
    /// `after` (a page's last job) if given. One job more than the page is
    /// read: it says whether another page follows.
    pub async fn history(
        &self,
        tenant_id: &str,
        limit: usize,
        after: Option<&Position>,
    ) -> Result<HistoryPage, AwsError> {
        // An index's key is the table's key and the index's: a job's is its
        // tenant, its `sk` and its position.
        let start = after.map(|p| {
            item([
                ("tenant_id", s(tenant_id)),
                ("sk", s(job_sk(p.job_id()))),
                ("listed", s(p.as_str())),
            ])
        });
        let jobs = read_newest(limit + 1, start, |start, want| {
            self.history_query(tenant_id, start, want)
        })
        .await?;
        Ok(HistoryPage::from_read(jobs, limit))
    }

    /// One query of the index: up to `limit` items after `start`, and where
    /// DynamoDB stopped if it did.
    async fn history_query(
        &self,
        tenant_id: &str,
        start: Option<Item>,
        limit: i32,
    ) -> Result<(Vec<Item>, Option<Item>), AwsError> {
        let out = self
            .client
            .query()
            .table_name(&self.jobs)
            .index_name(HISTORY_INDEX)
            .key_condition_expression("tenant_id = :t")
            .expression_attribute_values(":t", s(tenant_id))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| AwsError::sdk(CALL, e))?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }
}

/// `wanted` jobs, newest first, read query after query from `start`: a
/// query stops at 1 MB with fewer items than asked and where it stopped
/// (`LastEvaluatedKey`), so the next asks for the rest from there, until
/// enough are read or none is left.
async fn read_newest<F, Fut>(
    wanted: usize,
    mut start: Option<Item>,
    mut query: F,
) -> Result<Vec<ListedJob>, AwsError>
where
    F: FnMut(Option<Item>, i32) -> Fut,
    Fut: Future<Output = Result<(Vec<Item>, Option<Item>), AwsError>>,
{
    let mut jobs = Vec::with_capacity(wanted);
    loop {
        let want = i32::try_from(wanted - jobs.len()).unwrap_or(i32::MAX);
        let (items, stopped_at) = query(start.take(), want).await?;
        for found in items {
            // One job that cannot be read must not hide the others.
            match from_item::<ListedJob>(CALL, found) {
                Ok(job) => jobs.push(job),
                Err(err) => tracing::error!(error = %err, "a listed job cannot be read: skipped"),
            }
        }
        match stopped_at {
            Some(key) if jobs.len() < wanted => start = Some(key),
            _ => return Ok(jobs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use serde_json::json;
    use std::cell::RefCell;

    fn job(n: u32) -> Item {
        serde_dynamo::to_item(json!({
            "tenant_id": "acme", "sk": format!("JOB#J{n}"), "job_id": format!("J{n}"),
            "listed": format!("2026-12-04T09:00:0{n}.000000000Z#J{n}"),
            "status": "completed", "filename": "f.csv", "reason": "r",
            "created_at": format!("2026-12-04T09:00:0{n}Z"),
        }))
        .unwrap()
    }

    /// Answers queries from `pages` (each at most as long as asked),
    /// recording what each asked for.
    async fn read_pages(wanted: usize, pages: Vec<Vec<Item>>) -> (Vec<String>, Vec<i32>) {
        let pages = RefCell::new(pages.into_iter());
        let asked = RefCell::new(Vec::new());
        let jobs = read_newest(wanted, None, |start, want| {
            asked.borrow_mut().push(want);
            assert_eq!(start.is_some(), asked.borrow().len() > 1);
            let mut page = pages.borrow_mut().next().unwrap_or_default();
            page.truncate(want as usize);
            let more = pages.borrow().len() > 0;
            let last = more.then(|| page.last().cloned().unwrap_or_default());
            async move { Ok((page, last)) }
        })
        .await
        .unwrap();
        let ids = jobs.into_iter().map(|j| j.job_id).collect();
        (ids, asked.into_inner())
    }

    #[test]
    fn the_index_holds_what_the_list_reads() {
        let template = include_str!("../../../../infra/template.yaml");
        let index = &template[template.find("IndexName: History").expect("the index")..];
        let line = index
            .lines()
            .find_map(|l| l.trim().strip_prefix("NonKeyAttributes: ["))
            .and_then(|l| l.strip_suffix(']'))
            .expect("its attributes");
        let projected: Vec<&str> = line.split(',').map(str::trim).collect();
        assert_eq!(projected, shared::history::LISTED_ATTRIBUTES);
    }

    #[tokio::test]
    async fn pages_cut_short_by_dynamodb_are_read_on_until_enough_jobs() {
        let (ids, asked) =
            read_pages(3, vec![vec![job(9)], vec![], vec![job(8), job(7), job(6)]]).await;
        assert_eq!(ids, ["J9", "J8", "J7"]);
        assert_eq!(asked, [3, 2, 2]);
    }

    #[tokio::test]
    async fn reading_stops_where_the_index_ends() {
        let (ids, asked) = read_pages(21, vec![vec![job(5), job(4)]]).await;
        assert_eq!(ids, ["J5", "J4"]);
        assert_eq!(asked, [21]);
    }

    #[tokio::test]
    async fn a_job_that_cannot_be_read_is_skipped() {
        let mut broken = job(8);
        broken.insert("status".into(), AttributeValue::S("no such status".into()));
        let (ids, _) = read_pages(2, vec![vec![job(9), broken], vec![job(7)]]).await;
        assert_eq!(ids, ["J9", "J7"]);
    }
}
