//! The job an object version belongs to: the API's job its upload path
//! names, claimed when its file arrives; or, for a console drop, the job
//! made from the object alone (`shared::upload::console`), created once
//! however often the version is announced.

use crate::finish::reject;
use crate::handler::SplitterError;
use chrono::Utc;
use loyalty_aws::objects::ObjectInfo;
use loyalty_aws::s3_event::ObjectCreated;
use loyalty_aws::Aws;
use shared::job::{keys, Job};
use shared::tenant::Tenant;
use shared::upload::console::{ConsoleDrop, DroppedJob};
use shared::upload::{self, Arrival};
use tracing::{info, warn};

/// The object versions an event stands for: the one it names, or, for an
/// event that names none (S3 names it in a versioned bucket; an emulator or
/// a hand-made event may not), every version of its key the bucket keeps,
/// oldest first. Read as "the latest", two uploads to one key before the
/// first event is read would import the second twice over and the first
/// never; each version's job is found by the version, so one imported
/// already is not imported again.
pub async fn announced(
    aws: &Aws,
    object: &ObjectCreated,
) -> Result<Vec<ObjectCreated>, SplitterError> {
    if object.version_id.is_some() {
        return Ok(vec![object.clone()]);
    }
    let versions = aws.objects.versions(&object.key).await?;
    if versions.is_empty() {
        // No versions kept: the object as it is now.
        return Ok(vec![object.clone()]);
    }
    Ok(versions
        .into_iter()
        .map(|version| ObjectCreated {
            version_id: Some(version),
            size: None,
            sequencer: None,
            ..object.clone()
        })
        .collect())
}

/// The job this object version belongs to (new, or started before), or
/// `None` if it belongs to none (an upload nobody asked for).
pub async fn job_for(
    aws: &Aws,
    object: &ObjectCreated,
    tenant: &Tenant,
    incoming: keys::Incoming<'_>,
) -> Result<Option<Job>, SplitterError> {
    let Some(info) = aws
        .objects
        .head(&object.key, object.version_id.as_deref())
        .await?
    else {
        warn!("the object is gone: ignored");
        return Ok(None);
    };
    if let Some(job_id) = incoming.upload_job {
        return uploaded_job(aws, object, &info, tenant, job_id).await;
    }
    let dropped = ConsoleDrop {
        tenant_id: &tenant.tenant_id,
        key: &object.key,
        filename: incoming.filename,
        in_memberships_folder: incoming.membership,
        version_id: info.version_id.as_deref(),
        sequencer: object.sequencer.as_deref(),
        etag: info.etag.as_deref(),
        last_modified: info.last_modified,
        metadata: &info.metadata,
    };
    let DroppedJob { job, refused } = dropped.job(Utc::now());
    if aws.tables.create_job(&job).await? {
        info!(job_id = job.job_id.as_str(), "job created");
        if let Some(why) = refused {
            reject(aws, &job, &why).await?;
            return Ok(None);
        }
        return Ok(Some(job));
    }
    Ok(aws.tables.job(&tenant.tenant_id, &job.job_id).await?)
}

/// The API's job `job_id` for the object uploaded to its path: claimed
/// (and pinned to this version) if it awaited its file, as it stands if
/// this is its file announced again; `None` if the job is unknown or has
/// another file.
async fn uploaded_job(
    aws: &Aws,
    object: &ObjectCreated,
    info: &ObjectInfo,
    tenant: &Tenant,
    job_id: &str,
) -> Result<Option<Job>, SplitterError> {
    let Some(job) = aws.tables.job(&tenant.tenant_id, job_id).await? else {
        warn!(job_id, "upload for an unknown job: ignored");
        return Ok(None);
    };
    let (version, etag) = (info.version_id.as_deref(), info.etag.as_deref());
    Ok(match upload::arrival(&job, &object.key, version, etag) {
        Arrival::Claim(next) => {
            aws.tables
                .claim_upload(&tenant.tenant_id, job_id, next, version, etag)
                .await?
        }
        Arrival::Resume => Some(job),
        Arrival::Ignore => {
            warn!(
                job_id,
                status = job.status.as_str(),
                "the job has its file already: this upload is ignored"
            );
            None
        }
    })
}
