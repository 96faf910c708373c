//! The import page: a plain HTML page, its script and its style, built into
//! the function (`functions/api/page/`) and served at `GET /`, `/app.js`
//! and `/app.css` without an API key. The page asks the admin for the key
//! and sends it with each call it makes to the API.
//!
//! Its content security policy lets it load nothing but its own files and
//! call nothing but the API (its own origin) and the import bucket, where it
//! puts the file through the presigned URL.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use loyalty_aws::{Aws, AwsError};
use std::time::Duration;

/// One of the page's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Index,
    Script,
    Style,
}

impl Asset {
    fn content(self) -> (&'static str, &'static str) {
        match self {
            Asset::Index => (
                "text/html; charset=utf-8",
                include_str!("../page/index.html"),
            ),
            Asset::Script => (
                "text/javascript; charset=utf-8",
                include_str!("../page/app.js"),
            ),
            Asset::Style => ("text/css; charset=utf-8", include_str!("../page/app.css")),
        }
    }
}

/// The file, with headers that keep the browser to the page's own files and
/// the bucket.
pub async fn serve(aws: &Aws, asset: Asset) -> Result<Response<Body>, AwsError> {
    let bucket = bucket_origin(aws).await?;
    let (content_type, text) = asset.content();
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-type", content_type.to_owned()),
        // Not versioned by name: a new deployment must show at once.
        ("cache-control", "no-cache".to_owned()),
        ("content-security-policy", content_security_policy(&bucket)),
        ("x-content-type-options", "nosniff".to_owned()),
        ("referrer-policy", "no-referrer".to_owned()),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    Ok(response)
}

/// The page's own files only; calls to the API (its own origin) and to the
/// bucket's, where the file is uploaded.
fn content_security_policy(bucket_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self' {bucket_origin}; form-action 'none'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The origin the presigned URLs point to, as the S3 client resolves it
/// (the region's virtual-hosted address on AWS, the emulator's endpoint
/// locally): a link signed now for no object in particular says which.
async fn bucket_origin(aws: &Aws) -> Result<String, AwsError> {
    let url = aws
        .objects
        .presign_download("incoming/", Duration::from_secs(60))
        .await?;
    origin_of(&url)
        .map(str::to_owned)
        .ok_or_else(|| AwsError::new("s3:presign", format!("no origin in {url}")))
}

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if scheme.is_empty() || authority.is_empty() {
        return None;
    }
    Some(&url[..scheme.len() + 3 + authority.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presigned_urls_origin_is_its_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://b.s3.eu-west-1.amazonaws.com/incoming/x?X-Amz-Signature=1"),
            Some("https://b.s3.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:5055/bucket/incoming/"),
            Some("http://127.0.0.1:5055")
        );
        assert_eq!(origin_of("not a url"), None);
    }

    #[test]
    fn the_policy_lets_the_page_call_only_itself_and_the_bucket() {
        let policy = content_security_policy("https://b.s3.eu-west-1.amazonaws.com");
        assert!(policy.contains("connect-src 'self' https://b.s3.eu-west-1.amazonaws.com;"));
        assert!(policy.starts_with("default-src 'none'"));
        assert!(!policy.contains("unsafe"));
        assert!(!policy.contains('*'));
    }

    #[test]
    fn the_page_loads_nothing_from_another_host() {
        for asset in [Asset::Index, Asset::Script, Asset::Style] {
            let (_, text) = asset.content();
            assert!(!text.contains("//cdn"), "{asset:?}");
            assert!(!text.contains("<script>"), "{asset:?}: inline script");
            assert!(!text.contains("style=\""), "{asset:?}: inline style");
        }
    }
}
