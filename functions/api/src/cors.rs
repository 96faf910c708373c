//! Cross-origin requests: which web pages may call the API from a browser.
//!
//! Only the configured origins (`Settings::allowed_origins`) are answered,
//! each by name, never `*`. A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) from one of them is answered here with
//! 204 and what it may send; from any other origin with 403 and no allow
//! headers, so the browser refuses the request. Every other response to an
//! allowed origin names it in `access-control-allow-origin`, so the page can
//! read it. On AWS the HTTP API's own CORS configuration answers first
//! (`infra/template.yaml`); this is the same rule for the local serve.

use lambda_http::http::header::{HeaderMap, HeaderValue};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

/// The methods the API's routes take.
const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
/// The headers a page sends: the key, a JSON body, a retry's idempotency key.
const ALLOW_HEADERS: &str = "authorization, content-type, x-api-key, idempotency-key";
/// How long a browser may keep a preflight's answer.
const MAX_AGE_SECONDS: &str = "600";

/// The answer to a preflight request, or `None` if `request` is not one.
pub fn preflight(allowed: &[String], request: &Request) -> Option<Response<Body>> {
    let headers = request.headers();
    if request.method() != Method::OPTIONS || !headers.contains_key("access-control-request-method")
    {
        return None;
    }
    let origin = headers.get("origin")?;
    let mut response = Response::new(Body::Empty);
    let out = response.headers_mut();
    out.insert("vary", HeaderValue::from_static("origin"));
    if is_allowed(allowed, origin) {
        *response.status_mut() = StatusCode::NO_CONTENT;
        let out = response.headers_mut();
        out.insert("access-control-allow-origin", origin.clone());
        out.insert(
            "access-control-allow-methods",
            HeaderValue::from_static(ALLOW_METHODS),
        );
        out.insert(
            "access-control-allow-headers",
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        out.insert(
            "access-control-max-age",
            HeaderValue::from_static(MAX_AGE_SECONDS),
        );
    } else {
        *response.status_mut() = StatusCode::FORBIDDEN;
    }
    Some(response)
}

/// The request's `Origin`, kept to answer it with [`allow`].
pub fn origin(request: &Request) -> Option<HeaderValue> {
    request.headers().get("origin").cloned()
}

/// Names an allowed `origin` in a response's headers; the answer varies
/// with the origin, so caches keep one per origin.
pub fn allow(allowed: &[String], origin: Option<HeaderValue>, headers: &mut HeaderMap) {
    let Some(origin) = origin.filter(|o| is_allowed(allowed, o)) else {
        return;
    };
    headers.insert("access-control-allow-origin", origin);
    headers.append("vary", HeaderValue::from_static("origin"));
}

fn is_allowed(allowed: &[String], origin: &HeaderValue) -> bool {
    origin
        .to_str()
        .is_ok_and(|origin| allowed.iter().any(|a| a == origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "http://127.0.0.1:8080";

    fn allowed() -> Vec<String> {
        vec![PAGE.to_owned(), "https://portal.example".to_owned()]
    }

    fn request(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method(method)
            .uri("/imports");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::Empty).expect("request")
    }

    fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
        response.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_is_answered_with_what_it_may_send() {
        let request = request(
            Method::OPTIONS,
            &[
                ("origin", PAGE),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
        );
        let response = preflight(&allowed(), &request).expect("a preflight");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&response, "access-control-allow-origin"), Some(PAGE));
        assert_eq!(
            header(&response, "access-control-allow-methods"),
            Some(ALLOW_METHODS)
        );
        let headers = header(&response, "access-control-allow-headers").unwrap_or_default();
        assert!(headers.contains("authorization") && headers.contains("content-type"));
        assert_eq!(header(&response, "vary"), Some("origin"));
    }

    #[test]
    fn a_preflight_from_another_origin_is_refused_without_allow_headers() {
        let request = request(
            Method::OPTIONS,
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "POST"),
            ],
        );
        let response = preflight(&allowed(), &request).expect("a preflight");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response
            .headers()
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-")));
    }

    #[test]
    fn no_origin_is_allowed_when_none_is_configured() {
        let request = request(
            Method::OPTIONS,
            &[("origin", PAGE), ("access-control-request-method", "GET")],
        );
        let response = preflight(&[], &request).expect("a preflight");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn an_origin_must_match_exactly() {
        for near in [
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8080",
            "*",
            "null",
        ] {
            let origin = HeaderValue::from_static(near);
            assert!(!is_allowed(&allowed(), &origin), "{near}");
        }
    }

    #[test]
    fn other_requests_are_not_preflights() {
        let plain = request(Method::GET, &[("origin", PAGE)]);
        assert!(preflight(&allowed(), &plain).is_none());
        // An OPTIONS without the preflight's header is a route like any other.
        let options = request(Method::OPTIONS, &[("origin", PAGE)]);
        assert!(preflight(&allowed(), &options).is_none());
    }

    #[test]
    fn a_response_to_an_allowed_origin_names_it_and_varies_with_it() {
        let mut headers = HeaderMap::new();
        allow(
            &allowed(),
            Some(HeaderValue::from_static(PAGE)),
            &mut headers,
        );
        assert_eq!(headers.get("access-control-allow-origin").unwrap(), PAGE);
        assert_eq!(headers.get("vary").unwrap(), "origin");
    }

    #[test]
    fn a_response_to_another_origin_or_none_allows_nothing() {
        for origin in [Some(HeaderValue::from_static("https://evil.example")), None] {
            let mut headers = HeaderMap::new();
            allow(&allowed(), origin, &mut headers);
            assert!(headers.is_empty());
        }
    }
}
