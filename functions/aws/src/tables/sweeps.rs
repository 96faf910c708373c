//! The watchdog's last sweep (`jobs` table, `tenant_id = #watchdog`,
//! `sk = LAST_SWEEP`): one item, rewritten by each sweep unless a later
//! one is stored already. `#` is in no tenant id (`shared::tenant`), and
//! the item carries neither index's key, so no tenant's jobs, history or
//! sweep reads it.

use super::{from_item, item, s, Tables};
use crate::AwsError;
use shared::sweep::SweepRecord;

const PARTITION: &str = "#watchdog";
const SORT_KEY: &str = "LAST_SWEEP";

impl Tables {
    /// Stores a sweep's summary (under 200 KB: `shared::sweep`), unless
    /// the item holds a sweep started later (two sweeps can overlap);
    /// `false` then.
    pub async fn record_sweep(&self, record: &SweepRecord) -> Result<bool, AwsError> {
        let call = "dynamodb:UpdateItem";
        let value = serde_dynamo::to_attribute_value(record).map_err(|e| AwsError::new(call, e))?;
        // An update rather than a put: it creates the item as well, and the
        // finalizer's role updates the jobs table already.
        let result = self
            .client
            .update_item()
            .table_name(&self.jobs)
            .key("tenant_id", s(PARTITION))
            .key("sk", s(SORT_KEY))
            .update_expression("SET sweep = :sweep, started_at = :at")
            .condition_expression("attribute_not_exists(started_at) OR started_at <= :at")
            .expression_attribute_values(":sweep", value)
            .expression_attribute_values(":at", s(fixed_width(record.started_at)))
            .send()
            .await;
        Ok(super::request::unless_condition_failed(call, result)?.is_some())
    }

    /// The last sweep stored, if any sweep was.
    pub async fn last_sweep(&self) -> Result<Option<SweepRecord>, AwsError> {
        let key = item([("tenant_id", s(PARTITION)), ("sk", s(SORT_KEY))]);
        self.get(&self.jobs, key, true)
            .await?
            .map(|i| from_item::<Stored>("dynamodb:GetItem", i).map(|stored| stored.sweep))
            .transpose()
    }
}

/// The item: the record, and its start as fixed-width text for the
/// condition's comparison.
#[derive(serde::Deserialize)]
struct Stored {
    sweep: SweepRecord,
}

fn fixed_width(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
