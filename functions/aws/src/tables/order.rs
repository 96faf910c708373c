//! Where each membership file stands in its tenant's order (`jobs` table):
//! `sk = MEMBERSHIP#<YYYYMMDD>#<sequence, 10 digits>#<scope>`, holding the
//! job that has that place, its file name and arrival, and once it is done
//! its final status. The key makes a place taken once: a second file of the
//! same scope, day and sequence finds it held.

use super::jobs::job_sk;
use super::request::{check_item, unless_condition_failed};
use super::{item, s, Item, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use shared::job::{Job, JobStatus};
use shared::membership::file_name::{FileName, Position};
use shared::membership::order::Placed;

const PREFIX: &str = "MEMBERSHIP#";

fn place_sk(position: Position) -> String {
    format!(
        "{PREFIX}{}#{:010}#{}",
        position.date.format("%Y%m%d"),
        position.sequence,
        position.scope.as_str()
    )
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// Status names as jobs store them.
fn status_named(name: &str) -> Option<JobStatus> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

impl Tables {
    /// Gives `job` the place of its file `name` in its tenant's order.
    /// Returns the job holding the place if another one does (a job that
    /// was rejected gives its place up).
    pub async fn place_membership(
        &self,
        job: &Job,
        name: &FileName,
    ) -> Result<Option<String>, AwsError> {
        let sk = place_sk(name.position());
        let place = item([
            ("tenant_id", s(&job.tenant_id)),
            ("sk", s(&sk)),
            ("job_id", s(&job.job_id)),
            ("filename", s(&job.filename)),
            ("arrived_at", s(job.in_order_since().to_rfc3339())),
        ]);
        loop {
            if self
                .put_if(
                    &self.jobs,
                    place.clone(),
                    "attribute_not_exists(sk) OR job_id = :me",
                    vec![(":me", s(&job.job_id))],
                )
                .await?
            {
                return Ok(None);
            }
            let Some(holder) = self.jobs_item(&job.tenant_id, &sk).await? else {
                continue;
            };
            let holder_job = text(&holder, "job_id").unwrap_or_default().to_owned();
            let status = match text(&holder, "final_status") {
                Some(name) => status_named(name),
                None => self
                    .job(&job.tenant_id, &holder_job)
                    .await?
                    .map(|j| j.status),
            };
            if !matches!(status, None | Some(JobStatus::Rejected)) {
                return Ok(Some(holder_job));
            }
            if self
                .put_if(
                    &self.jobs,
                    place.clone(),
                    "job_id = :holder",
                    vec![(":holder", s(&holder_job))],
                )
                .await?
            {
                return Ok(None);
            }
        }
    }

    /// The tenant's membership files and where each stands; a file not
    /// marked done has its job's current status.
    pub async fn membership_files(&self, tenant_id: &str) -> Result<Vec<Placed>, AwsError> {
        let mut placed = Vec::new();
        for item in self.jobs_items(tenant_id, PREFIX).await? {
            let (Some(job_id), Some(filename)) = (text(&item, "job_id"), text(&item, "filename"))
            else {
                continue;
            };
            let Ok(name) = FileName::parse(filename) else {
                continue;
            };
            let status = match text(&item, "final_status").and_then(status_named) {
                Some(status) => status,
                None => match self.job(tenant_id, job_id).await? {
                    Some(job) => job.status,
                    None => continue,
                },
            };
            let arrived_at = text(&item, "arrived_at")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
            placed.push(Placed {
                job_id: job_id.to_owned(),
                filename: filename.to_owned(),
                position: name.position(),
                status,
                arrived_at,
            });
        }
        Ok(placed)
    }

    /// Records that a membership file is done (its final status), so the
    /// order reads it without reading its job.
    pub async fn close_membership(&self, job: &Job, name: &FileName) -> Result<(), AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.jobs)
            .key("tenant_id", s(&job.tenant_id))
            .key("sk", s(place_sk(name.position())))
            .update_expression("SET final_status = :s")
            .condition_expression("job_id = :me")
            .expression_attribute_values(":s", s(job.status.as_str()))
            .expression_attribute_values(":me", s(&job.job_id))
            .send()
            .await;
        // A condition that fails: the place is another job's (this one was
        // rejected for a clash).
        unless_condition_failed("dynamodb:UpdateItem", result)?;
        Ok(())
    }

    /// Says why a waiting job waits (when that changed).
    pub async fn set_waiting_for(&self, job: &Job, why: &str) -> Result<(), AwsError> {
        self.update_job(
            &job.tenant_id,
            &job.job_id,
            "SET waiting_for = :why",
            Some("#status = :waiting"),
            &[("#status", "status")],
            vec![
                (":why", s(why)),
                (":waiting", s(JobStatus::Waiting.as_str())),
            ],
        )
        .await?;
        Ok(())
    }

    /// A waiting job's turn has come: it takes the tenant's membership
    /// turn and starts splitting. `None` if it did not start: another
    /// delivery started it, or another file of the tenant took the turn
    /// first (two files that found their turn at the same moment: one
    /// starts, the other waits to be handed back).
    ///
    /// The turn (`sk = MEMBERSHIP_TURN`) names the last file that took it;
    /// it is taken over from a file that is not being imported (waiting,
    /// finished or gone), and the job starts only while it holds the turn,
    /// in one transaction, so two files of a tenant never import at once.
    pub async fn start_waiting_job(&self, job: &Job) -> Result<Option<Job>, AwsError> {
        let me = || vec![(":me", s(&job.job_id))];
        let turn_item = item([
            ("tenant_id", s(&job.tenant_id)),
            ("sk", s(TURN)),
            ("job_id", s(&job.job_id)),
        ]);
        loop {
            let mine = "attribute_not_exists(sk) OR job_id = :me";
            if self
                .put_if(&self.jobs, turn_item.clone(), mine, me())
                .await?
            {
                break;
            }
            let Some(turn) = self.jobs_item(&job.tenant_id, TURN).await? else {
                continue;
            };
            let holder = text(&turn, "job_id").unwrap_or_default().to_owned();
            let importing = self
                .job(&job.tenant_id, &holder)
                .await?
                .is_some_and(|j| j.status.is_importing());
            if importing {
                return Ok(None);
            }
            let values = vec![(":holder", s(&holder))];
            if self
                .put_if(&self.jobs, turn_item.clone(), "job_id = :holder", values)
                .await?
            {
                break;
            }
        }
        const CALL: &str = "dynamodb:TransactWriteItems";
        let hold = check_item(
            &self.jobs,
            item([("tenant_id", s(&job.tenant_id)), ("sk", s(TURN))]),
            "job_id = :me",
            Some(item([(":me", s(&job.job_id))])),
        )?;
        let start = Update::builder()
            .table_name(&self.jobs)
            .key("tenant_id", s(&job.tenant_id))
            .key("sk", s(job_sk(&job.job_id)))
            .update_expression("SET #status = :splitting, progress_at = :now REMOVE waiting_for")
            .condition_expression("#status = :waiting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":splitting", s(JobStatus::Splitting.as_str()))
            .expression_attribute_values(":waiting", s(JobStatus::Waiting.as_str()))
            .expression_attribute_values(":now", s(Utc::now().to_rfc3339()))
            .build()
            .map_err(|e| AwsError::new(CALL, e))?;
        let start = TransactWriteItem::builder().update(start).build();
        match self.transact(vec![hold, start]).await? {
            Ok(()) => self.job(&job.tenant_id, &job.job_id).await,
            Err(refused) if refused.any_condition_failed_or_conflict() => Ok(None),
            Err(refused) => Err(refused.into_error()),
        }
    }
}

/// The item saying which membership file of a tenant last took its turn.
const TURN: &str = "MEMBERSHIP_TURN";
