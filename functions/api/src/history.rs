//! `GET /imports?limit=N&cursor=C`: the tenant's imports, newest first, a
//! page at a time (`shared::history`). The cursor is the hex of the page's
//! last job's position: opaque to clients, read back only in the exact
//! form it was given.

use crate::error::{refuse, ApiError, Code};
use crate::handler::reply;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use loyalty_aws::Aws;
use percent_encoding::percent_decode_str;
use serde_json::json;
use shared::history::{ListedJob, Position};
use shared::tenant::Tenant;

pub(crate) const DEFAULT_LIMIT: usize = 20;
pub(crate) const MAX_LIMIT: usize = 100;
#[cfg(test)]
use shared::history::MAX_CURSOR_CHARS;

pub(crate) async fn list(
    aws: &Aws,
    tenant: &Tenant,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let page_asked = PageAsked::parse(request.uri().query())?;
    let page = aws
        .tables
        .history(
            &tenant.tenant_id,
            page_asked.limit,
            page_asked.after.as_ref(),
        )
        .await?;
    let imports: Vec<_> = page.jobs.iter().map(listed).collect();
    Ok(reply(
        StatusCode::OK,
        &json!({
            "imports": imports,
            "next_cursor": page.next.as_ref().map(cursor),
        }),
    ))
}

fn listed(job: &ListedJob) -> serde_json::Value {
    json!({
        "job_id": job.job_id,
        "status": job.status,
        "kind": job.kind,
        "filename": job.filename,
        "reason": job.reason,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "dry_run": job.dry_run,
        "review": job.review_first,
        "counts": job.counts(),
        "reverts": job.reverts,
        "reverted_by": job.reverted_by,
        "can_revert": job.can_revert(),
    })
}

/// The page a request asks for: how many jobs, after which.
#[derive(Debug, PartialEq, Eq)]
struct PageAsked {
    limit: usize,
    after: Option<Position>,
}

impl PageAsked {
    /// Reads `limit` and `cursor` from a query string; other parameters
    /// are left alone. A parameter given twice, or a value that is not
    /// one this API would take, is refused, naming it.
    fn parse(query: Option<&str>) -> Result<PageAsked, ApiError> {
        let mut asked = PageAsked {
            limit: DEFAULT_LIMIT,
            after: None,
        };
        let (mut limit_seen, mut cursor_seen) = (false, false);
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value).decode_utf8_lossy();
            let seen = match name {
                "limit" => &mut limit_seen,
                "cursor" => &mut cursor_seen,
                _ => continue,
            };
            if std::mem::replace(seen, true) {
                return Err(refuse(
                    Code::InvalidRequest,
                    format!("{name}: given more than once"),
                ));
            }
            if name == "limit" {
                asked.limit = limit(&value).ok_or_else(|| {
                    invalid(
                        name,
                        &value,
                        &format!("a whole number from 1 to {MAX_LIMIT}"),
                    )
                })?;
            } else {
                asked.after = Some(
                    position(&value)
                        .ok_or_else(|| invalid(name, &value, "a next_cursor this API gave"))?,
                );
            }
        }
        Ok(asked)
    }
}

fn invalid(name: &str, value: &str, wanted: &str) -> ApiError {
    let shown: String = value.chars().take(64).collect();
    let cut = if shown.len() < value.len() { "…" } else { "" };
    refuse(
        Code::InvalidRequest,
        format!("{name}: '{shown}{cut}' is not {wanted}"),
    )
}

fn limit(value: &str) -> Option<usize> {
    let digits = !value.is_empty()
        && value.len() <= 3
        && !value.starts_with('0')
        && value.bytes().all(|b| b.is_ascii_digit());
    let limit: usize = value.parse().ok().filter(|_| digits)?;
    (1..=MAX_LIMIT).contains(&limit).then_some(limit)
}

/// A page's next cursor: the hex of its last job's position.
fn cursor(after: &Position) -> String {
    after.cursor()
}

/// The position a cursor stands for, if it is exactly one [`cursor`] gives.
fn position(cursor: &str) -> Option<Position> {
    Position::from_cursor(cursor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn sample() -> Position {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap();
        Position::of(at, "20261204090000-3f2a9c0d1e4b")
    }

    fn refusal(query: &str) -> Option<String> {
        match PageAsked::parse(Some(query)) {
            Err(ApiError::Refused(Code::InvalidRequest, message)) => Some(message),
            _ => None,
        }
    }

    #[test]
    fn a_cursor_reads_back_as_the_position_it_was_made_from() {
        let c = cursor(&sample());
        assert!(c.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(c.len() <= MAX_CURSOR_CHARS);
        assert_eq!(position(&c), Some(sample()));
    }

    #[test]
    fn only_a_cursor_as_given_is_taken() {
        let c = cursor(&sample());
        for bad in [
            String::new(),
            c.to_uppercase(),
            c[1..].to_owned(),
            format!("{c}00"),
            format!("{c} "),
            hex::encode("2026-12-04T09:00:00Z#J"),
            hex::encode("not a position"),
            "zz".repeat(10),
            "ff".repeat(10),
            "a".repeat(MAX_CURSOR_CHARS + 2),
        ] {
            assert_eq!(position(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_page_is_twenty_jobs_unless_a_limit_from_1_to_100_is_asked() {
        let page = |q| PageAsked::parse(q).ok().map(|p: PageAsked| p.limit);
        assert_eq!(page(None), Some(20));
        assert_eq!(page(Some("")), Some(20));
        assert_eq!(page(Some("limit=1")), Some(1));
        assert_eq!(page(Some("limit=100&other=x")), Some(100));
        for bad in [
            "0",
            "101",
            "-1",
            "+5",
            "1.0",
            "",
            "ten",
            "0100",
            "010",
            "99999999999999999999",
        ] {
            let message = refusal(&format!("limit={bad}")).expect(bad);
            assert!(message.starts_with(&format!("limit: '{bad}'")), "{message}");
        }
    }

    #[test]
    fn a_cursor_is_refused_naming_it_and_its_value() {
        let asked = PageAsked::parse(Some(&format!("cursor={}&limit=5", cursor(&sample())))).ok();
        assert_eq!(
            asked,
            Some(PageAsked {
                limit: 5,
                after: Some(sample())
            })
        );
        let message = refusal("cursor=abc").unwrap();
        assert!(message.starts_with("cursor: 'abc' is not"), "{message}");
        let long = "9".repeat(500);
        assert!(refusal(&format!("cursor={long}")).unwrap().len() < 200);
    }

    #[test]
    fn a_parameter_given_twice_is_refused() {
        assert_eq!(
            refusal("limit=5&limit=5").as_deref(),
            Some("limit: given more than once")
        );
    }
}
