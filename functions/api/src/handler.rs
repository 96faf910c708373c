//! HTTP routes (the table is `crate::routes::ROUTES`; `openapi.json`
//! describes each). Every request but the emailed link, the page and the
//! OpenAPI document carries the tenant's API key (`Authorization: Bearer <key>` or
//! `x-api-key: <key>`); a job is looked up under the key's tenant only, so
//! another tenant's job is simply not found.
//!
//! | method | path                | does                                         |
//! |--------|---------------------|----------------------------------------------|
//! | POST   | `/imports`          | creates an import, returns a presigned upload (`Idempotency-Key`) |
//! | GET    | `/imports`          | the tenant's imports, newest first, a page at a time (`crate::history`) |
//! | GET    | `/imports/{job_id}` | status, counts, progress, preview, result link |
//! | POST   | `/imports/{job_id}/start`, `/discard` | a ready review started or discarded (`crate::review`; `Idempotency-Key`) |
//! | POST   | `/imports/{job_id}/revert` | undoes a finished points import once: creates its reversal job (`revert.rs`) |
//! | GET    | `/templates/{kind}` | the sample CSV of a kind: `points`, `points_with_expiry`, `smile`, `cardcode`, `tierchange` (with the tenant's programs, tiers and custom fields) |
//! | GET    | `/`, `/app.js`, `/app.css` | the import page (no key: the page asks for it) |
//! | GET    | `/downloads/{tenant}/{job_id}/{token}` | the emailed link (no key: its token is the secret): a redirect to the processed file |
//! | GET    | `/openapi.json`     | the OpenAPI document (no key)                |
//!
//! This file translates requests into domain calls and answers them: it
//! authenticates the key, reads the route and the body, and turns results
//! into HTTP statuses. What an import request may ask, and the job it makes,
//! are the domain's (`shared::upload::request`); the tables and the bucket
//! are `loyalty-aws`'s.

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use loyalty_aws::tables::Counted;
use loyalty_aws::Aws;
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::json;
use shared::job::{self, JobStatus};
use shared::kind::ImportKind;
use shared::redact::Redacted;
use shared::tenant::{parse_api_key, Tenant};
use shared::upload::request::{CreateImport, Refusal};
use std::time::Duration;
use tracing::{info, instrument};

use crate::error::{error_reply, rate_limited, refuse, ApiError, Code};
use crate::page::Asset;
use crate::routes::{self, Access, Matched, Route};
use crate::{cors, history, idempotency, openapi, page, revert, review};

pub async fn handle(aws: &Aws, request: Request) -> Result<Response<Body>, lambda_http::Error> {
    let allowed = &aws.settings.allowed_origins;
    if let Some(preflight) = cors::preflight(allowed, &request) {
        return Ok(preflight);
    }
    let origin = cors::origin(&request);
    // On the heap: a route's handling, wrapped in its Idempotency-Key's, is
    // a large future, and a caller may hold several on its stack.
    let mut response = match Box::pin(route(aws, &request)).await {
        Ok(response) => response,
        Err(e @ (ApiError::Aws(_) | ApiError::Internal(..))) => {
            tracing::error!(error = %Redacted(&e), "request failed");
            error_reply(Code::Internal, "internal error; try again")
        }
        Err(ApiError::Refused(code, message)) => error_reply(code, &message),
    };
    cors::allow(allowed, origin, response.headers_mut());
    Ok(response)
}

async fn route(aws: &Aws, request: &Request) -> Result<Response<Body>, ApiError> {
    // Each segment decoded, whether the platform decoded the path (an HTTP
    // API does) or not (a function URL, the local console): the same id
    // reaches the routes either way.
    let decoded: Vec<String> = request
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let matched = routes::find(request.method().as_str(), &segments)
        .ok_or_else(|| refuse(Code::NotFound, "no such route"))?;
    let tenant = match matched.spec.access {
        Access::Public => return public(aws, &matched).await,
        Access::ApiKey => authenticate(aws, request).await?,
    };
    let per_minute = aws.settings.tenant_requests_per_minute;
    let counted = aws
        .tables
        .count_request(&tenant.tenant_id, Utc::now(), per_minute)
        .await?;
    if let Counted::Refused { retry_after } = counted {
        tracing::warn!(tenant = %tenant.tenant_id, per_minute, "a tenant past its share of the API");
        return Ok(rate_limited(per_minute, retry_after));
    }
    let handling = dispatch(aws, &tenant, request, &matched);
    if matched.spec.idempotent {
        idempotency::once(aws, &tenant, request, &matched, handling).await
    } else {
        handling.await
    }
}

/// A request on a route that needs no key.
async fn public(aws: &Aws, matched: &Matched<'_>) -> Result<Response<Body>, ApiError> {
    let param = |name| matched.param(name);
    match matched.spec.route {
        // The emailed link carries its own secret.
        Route::Download => download(aws, param("tenant"), param("job_id"), param("token")).await,
        Route::OpenApi => Ok(openapi::document()),
        // The page asks for the key itself.
        Route::Page => Ok(page::serve(aws, Asset::Index).await?),
        Route::PageScript => Ok(page::serve(aws, Asset::Script).await?),
        Route::PageStyle => Ok(page::serve(aws, Asset::Style).await?),
        // Routes that need a key are the tenant's (`dispatch`).
        _ => Err(refuse(Code::Unauthorized, "a valid API key is required")),
    }
}

/// A tenant's request on its route.
async fn dispatch(
    aws: &Aws,
    tenant: &Tenant,
    request: &Request,
    matched: &Matched<'_>,
) -> Result<Response<Body>, ApiError> {
    let job_id = matched.param("job_id");
    match matched.spec.route {
        Route::CreateImport => create_import(aws, tenant, request).await,
        Route::ListImports => history::list(aws, tenant, request).await,
        Route::ImportStatus => job_reply(aws, tenant, job_id, StatusCode::OK).await,
        Route::StartReview => {
            review::start(aws, tenant, job_id).await?;
            job_reply(aws, tenant, job_id, StatusCode::ACCEPTED).await
        }
        Route::DiscardReview => {
            review::discard(aws, tenant, job_id).await?;
            job_reply(aws, tenant, job_id, StatusCode::OK).await
        }
        Route::RevertImport => {
            let reversal = revert::revert(aws, tenant, job_id).await?;
            job_reply(aws, tenant, &reversal, StatusCode::ACCEPTED).await
        }
        Route::Template => template(matched.param("kind"), tenant),
        // Answered without a key (`public`).
        Route::Download | Route::OpenApi | Route::Page | Route::PageScript | Route::PageStyle => {
            public(aws, matched).await
        }
    }
}

async fn authenticate(aws: &Aws, request: &Request) -> Result<Tenant, ApiError> {
    let headers = request.headers();
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    let unauthorized = || refuse(Code::Unauthorized, "a valid API key is required");
    let (tenant_id, secret) = key.and_then(parse_api_key).ok_or_else(unauthorized)?;
    match aws.tables.tenant(tenant_id).await? {
        Some(tenant) if tenant.accepts_secret(secret) => Ok(tenant),
        _ => Err(unauthorized()),
    }
}

/// The credentials of an `Authorization: Bearer <token>` value; the
/// scheme's name is case-insensitive (RFC 9110 §11.1), and one or more
/// spaces follow it.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

#[derive(Debug, Serialize)]
struct UploadTicket {
    job_id: String,
    status: JobStatus,
    upload: loyalty_aws::objects::Presigned,
    expires_in_seconds: u64,
    max_bytes: u64,
}

#[instrument(skip_all, fields(tenant = %tenant.tenant_id))]
async fn create_import(
    aws: &Aws,
    tenant: &Tenant,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let body: CreateImport = serde_json::from_slice(request.body().as_ref())
        .map_err(|e| refuse(Code::InvalidRequest, format!("invalid request body: {e}")))?;
    let import = body
        .check(aws.settings.max_upload_bytes)
        .map_err(|refusal| match refusal {
            Refusal::TooLarge(m) => refuse(Code::FileTooLarge, m),
            Refusal::Invalid(m) => refuse(Code::InvalidRequest, m),
        })?;
    let mut entropy = [0u8; 16];
    getrandom::fill(&mut entropy)
        .map_err(|e| ApiError::Internal("drawing the job id's random part", e.to_string()))?;
    let now = Utc::now();
    let job_id = job::job_id(now, &entropy);
    let job = import.job(&tenant.tenant_id, &job_id, now);
    aws.tables.create_job(&job).await?;
    let expires = aws.settings.upload_url_seconds;
    let upload = aws
        .objects
        .presign_upload(
            &job.source_key,
            import.size_bytes,
            Duration::from_secs(expires),
        )
        .await?;
    info!(job = %job_id, "import created");
    Ok(reply(
        StatusCode::CREATED,
        &UploadTicket {
            job_id,
            status: job.status,
            upload,
            expires_in_seconds: expires,
            max_bytes: import.size_bytes,
        },
    ))
}

/// The job as `GET /imports/{job_id}` shows it, with `code`.
async fn job_reply(
    aws: &Aws,
    tenant: &Tenant,
    job_id: &str,
    code: StatusCode,
) -> Result<Response<Body>, ApiError> {
    let job = aws
        .tables
        .job(&tenant.tenant_id, job_id)
        .await?
        .ok_or_else(|| refuse(Code::NotFound, format!("no job {job_id}")))?;
    let processed_file = match &job.processed_key {
        Some(key) => Some(
            aws.objects
                .presign_download(key, Duration::from_secs(aws.settings.link_hours * 3600))
                .await?,
        ),
        None => None,
    };
    Ok(reply(
        code,
        &json!({
            "job_id": job.job_id,
            "status": job.status,
            "waiting_for": job.waiting_for,
            "kind": job.kind,
            "reason": job.reason,
            "dry_run": job.dry_run,
            "allow_duplicate": job.allow_duplicate,
            "filename": job.filename,
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "rejection": job.rejection,
            "counts": job.counts(),
            "progress": job.progress(),
            "preview": job.preview,
            "errors": job.errors,
            "review_first": job.review_first,
            "review": job.review,
            "started_at": job.started_at,
            "reverts": job.reverts,
            "reverted_by": job.reverted_by,
            "can_revert": shared::reversal::revertible(&job).is_ok(),
            "processed_file": processed_file,
            "email_sent_at": job.email_sent_at,
        }),
    ))
}

/// The emailed link: a redirect to a freshly signed S3 link of the job's
/// processed file, for as long as the link is valid. A wrong tenant, job or
/// token and an expired link are all the same 404.
async fn download(
    aws: &Aws,
    tenant_id: &str,
    job_id: &str,
    token: &str,
) -> Result<Response<Body>, ApiError> {
    let gone = || {
        refuse(
            Code::NotFound,
            "no such download, or its link has expired: GET /imports/{job_id} with your API key gives a fresh one",
        )
    };
    if shared::tenant::validate_tenant_id(tenant_id).is_err() {
        return Err(gone());
    }
    let job = aws.tables.job(tenant_id, job_id).await?.ok_or_else(gone)?;
    let key = job.download(token, Utc::now()).ok_or_else(gone)?;
    let url = aws
        .objects
        .presign_download(key, Duration::from_secs(DOWNLOAD_REDIRECT_SECONDS))
        .await?;
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::FOUND;
    let location = lambda_http::http::HeaderValue::from_str(&url)
        .map_err(|e| ApiError::Internal("the signed link as a Location header", e.to_string()))?;
    response.headers_mut().insert("location", location);
    response.headers_mut().insert(
        "cache-control",
        lambda_http::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// A download redirect's S3 link is followed at once.
const DOWNLOAD_REDIRECT_SECONDS: u64 = 300;

fn template(kind: &str, tenant: &Tenant) -> Result<Response<Body>, ApiError> {
    let kind: ImportKind = kind
        .trim_end_matches(".csv")
        .parse()
        .map_err(|m: String| refuse(Code::NotFound, m))?;
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/csv; charset=utf-8")
        .header(
            "content-disposition",
            format!("attachment; filename=\"{}_template.csv\"", kind.as_str()),
        )
        .body(Body::from(kind.template_for(tenant.memberships.as_ref())))
        .map_err(|e| ApiError::Internal("the template's response", e.to_string()))
}

pub(crate) fn reply<T: Serialize>(code: StatusCode, body: &T) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = code;
    response.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}
