//! Finalizing a job. Whoever holds the job's lease writes the processed file,
//! records the final status and sends the email; a second request for the
//! same job finds the email sent (or the lease held) and does nothing.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use loyalty_aws::queues::FinalizeRequest;
use loyalty_aws::{Aws, AwsError};
use shared::job::{keys, Job, JobStatus};
use shared::notification::{completion_email, rejection_email};
use shared::outcome::{RowOutcome, Tally};
use shared::processed::write_processed;
use std::time::Duration;
use tokio::runtime::Handle;
use tracing::{error, info, instrument};

/// Longer than a finalizer run may take; a crashed run's lease lapses after it.
const LEASE_SECONDS: i64 = 300;
/// Outcomes read per query while merging.
const OUTCOMES_PAGE: i32 = 1000;

pub async fn handle(aws: &Aws, event: SqsEvent) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut retry = Vec::new();
    for message in &event.records {
        let result = match serde_json::from_str::<FinalizeRequest>(
            message.body.as_deref().unwrap_or_default(),
        ) {
            Ok(request) => finalize(aws, &request).await,
            Err(e) => Err(anyhow::anyhow!("not a finalize request: {e}")),
        };
        if let Err(err) = result {
            error!(error = %err, "finalizing failed; it will be retried");
            retry.extend(message.message_id.clone());
        }
    }
    Ok(loyalty_aws::sqs::retry_only(retry))
}

#[instrument(skip_all, fields(tenant = %request.tenant_id, job = %request.job_id))]
pub async fn finalize(aws: &Aws, request: &FinalizeRequest) -> anyhow::Result<()> {
    let Some(job) = aws.tables.job(&request.tenant_id, &request.job_id).await? else {
        info!("no such job: nothing to finalize");
        return Ok(());
    };
    let due = job.email_sent_at.is_none()
        && match job.status {
            JobStatus::Processing => job.ready_to_finalize(),
            JobStatus::Finalizing
            | JobStatus::Completed
            | JobStatus::CompletedWithErrors
            | JobStatus::Rejected => true,
            JobStatus::AwaitingUpload | JobStatus::Splitting => false,
        };
    if !due {
        info!(status = job.status.as_str(), "nothing to finalize");
        return Ok(());
    }
    if !aws.tables.claim_finalization(&job, LEASE_SECONDS).await? {
        info!("another run is finalizing this job");
        return Ok(());
    }
    let tenant = aws
        .tables
        .tenant(&job.tenant_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant {} is gone", job.tenant_id))?;
    let email = match job.status {
        JobStatus::Rejected => rejection_email(&tenant, &job),
        JobStatus::Processing | JobStatus::Finalizing => {
            let (key, tally) = write_processed_file(aws, &job).await?;
            aws.tables
                .finish_job(&job, JobStatus::finished(&tally), &tally, &key)
                .await?;
            let link = download_link(aws, &key).await?;
            completion_email(&tenant, &job, &tally, &link, aws.settings.link_hours)
        }
        // Finished before, but the email was not sent: send it now.
        _ => {
            let key = job
                .processed_key
                .clone()
                .unwrap_or_else(|| keys::processed(&job.tenant_id, &job.job_id, &job.filename));
            let link = download_link(aws, &key).await?;
            completion_email(&tenant, &job, &job.tally(), &link, aws.settings.link_hours)
        }
    };
    let message_id = aws.mailer.send(&email).await?;
    aws.tables.mark_email_sent(&job).await?;
    info!(ses_message_id = %message_id, "job finalized and admin emailed");
    Ok(())
}

async fn download_link(aws: &Aws, key: &str) -> Result<String, AwsError> {
    let hours = aws.settings.link_hours;
    aws.objects
        .presign_download(key, Duration::from_secs(hours * 3600))
        .await
}

/// Streams the original file and the job's outcomes (both in row order)
/// into a temporary file, then uploads it.
async fn write_processed_file(aws: &Aws, job: &Job) -> anyhow::Result<(String, Tally)> {
    let key = keys::processed(&job.tenant_id, &job.job_id, &job.filename);
    let reader = aws.objects.open_source(job).await?;
    let path = std::env::temp_dir().join(format!("{}.processed.csv", job.job_id));
    let outcomes = Outcomes {
        aws: aws.clone(),
        runtime: Handle::current(),
        job_id: job.job_id.clone(),
        page: Vec::new().into_iter(),
        last_row: 0,
        done: false,
    };
    let out_path = path.clone();
    let tally = tokio::task::spawn_blocking(move || -> anyhow::Result<Tally> {
        let file = std::io::BufWriter::new(std::fs::File::create(&out_path)?);
        Ok(write_processed(reader, outcomes, file)?)
    })
    .await??;
    aws.objects
        .put_file(&key, &path, "text/csv; charset=utf-8")
        .await?;
    // The temporary copy is only a staging area; failing to remove it is harmless.
    let _ = std::fs::remove_file(&path);
    Ok((key, tally))
}

/// A job's outcomes in row order, read a page at a time.
struct Outcomes {
    aws: Aws,
    runtime: Handle,
    job_id: String,
    page: std::vec::IntoIter<RowOutcome>,
    last_row: u64,
    done: bool,
}

impl Iterator for Outcomes {
    type Item = Result<RowOutcome, AwsError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(outcome) = self.page.next() {
                self.last_row = outcome.row;
                return Some(Ok(outcome));
            }
            if self.done {
                return None;
            }
            let page = self.runtime.block_on(self.aws.tables.outcomes_after(
                &self.job_id,
                self.last_row,
                OUTCOMES_PAGE,
            ));
            match page {
                Ok((page, more)) => {
                    self.done = !more;
                    self.page = page.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
