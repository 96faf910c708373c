//! A membership file's turn. The file is admitted (its name, the tenant's
//! programs and universe: `shared::membership::admission`), takes its place
//! in its tenant's order, and is split only when its turn comes
//! (`shared::membership::order`); until then its job waits, saying why.
//! Its event comes back when the file before it is done, and with every
//! watchdog sweep.

use crate::finish::reject;
use crate::handler::SplitterError;
use chrono::Utc;
use loyalty_aws::Aws;
use shared::job::Job;
use shared::membership::admission;
use shared::membership::order::{self, Placed, Turn};
use shared::redact::Redacted;
use shared::tenant::Tenant;
use tracing::info;

/// A membership file's place in its tenant's order, and whether its turn
/// has come: the job, now splitting, if it has; `None` if it waits (or was
/// rejected, or another delivery started it).
pub async fn take_turn(aws: &Aws, tenant: &Tenant, job: Job) -> Result<Option<Job>, SplitterError> {
    let name = match admission::admit(&job.filename, tenant.memberships.as_ref()) {
        Ok(name) => name,
        Err(why) => return reject(aws, &job, &why).await.map(|()| None),
    };
    let holder = aws.tables.place_membership(&job, &name).await?;
    let files = aws.tables.membership_files(&job.tenant_id).await?;
    let me = Placed::of(&job, &name);
    let clash = order::clash(&me, &name, &files)
        .or_else(|| holder.map(|holder| order::held(&holder, &name)));
    if let Some(why) = clash {
        return reject(aws, &job, &why).await.map(|()| None);
    }
    match order::turn(
        &me,
        &files,
        Utc::now(),
        aws.settings.membership_wait_seconds,
    ) {
        Turn::Wait(why) => {
            // Logged when the wait starts or its reason changes, not at
            // every look (the file is handed back about once a second).
            if job.waiting_for.as_deref() != Some(why.as_str()) {
                aws.tables.set_waiting_for(&job, &why).await?;
                info!(why = %Redacted(&why), "membership file waits for its turn");
            }
            Ok(None)
        }
        Turn::Go => {
            let started = aws.tables.start_waiting_job(&job).await?;
            if started.is_some() {
                let waited = (Utc::now() - job.in_order_since()).num_seconds();
                info!(waited_seconds = waited, "membership file's turn: splitting");
            }
            Ok(started)
        }
    }
}
