//! Each tenant's share of the API: its requests counted per minute
//! (`jobs` table, under the tenant, `sk = QUOTA#<minute>`, the minute since
//! the Unix epoch; `ttl` two minutes on). A request past the tenant's
//! limit in its minute is refused until the next one, so one tenant's
//! burst takes at most its limit of the API's throughput and never the
//! others'. A fixed window: at a minute's edge a tenant may make twice its
//! limit within a few seconds, which the API's own throttle still bounds.

use super::request::unless_condition_failed;
use super::{item, n, s, Tables};
use crate::AwsError;
use chrono::{DateTime, Utc};

/// What counting a request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Within the tenant's share.
    Allowed,
    /// Past it: the seconds until the next minute begins.
    Refused { retry_after: u32 },
}

impl Tables {
    /// Counts one request of `tenant_id` at `now` against `per_minute`
    /// (0: no limit, nothing counted).
    pub async fn count_request(
        &self,
        tenant_id: &str,
        now: DateTime<Utc>,
        per_minute: u32,
    ) -> Result<Counted, AwsError> {
        if per_minute == 0 {
            return Ok(Counted::Allowed);
        }
        let seconds = now.timestamp();
        let minute = seconds.div_euclid(60);
        let counted = self
            .client
            .update_item()
            .table_name(&self.jobs)
            .set_key(Some(item([
                ("tenant_id", s(tenant_id)),
                ("sk", s(format!("QUOTA#{minute}"))),
            ])))
            .update_expression("ADD requests :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(requests) OR requests < :limit")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(per_minute))
            .expression_attribute_values(":ttl", n((minute + 2) * 60))
            .send()
            .await;
        Ok(
            match unless_condition_failed("dynamodb:UpdateItem", counted)? {
                Some(_) => Counted::Allowed,
                None => Counted::Refused {
                    retry_after: (60 - seconds.rem_euclid(60)) as u32,
                },
            },
        )
    }
}
