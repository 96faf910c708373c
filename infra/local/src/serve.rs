//! `loyalty-local serve`: the api function over HTTP/1.1 on loopback, as
//! API Gateway would call it, so that a person opens the import page in a
//! browser (`http://127.0.0.1:8080/`) and imports a file end to end while
//! the runner delivers the queues.
//!
//! Each request becomes the `lambda_http::Request` an HTTP API event would
//! make (method, path, query, headers, body) and goes to `api::handle`.

use crate::Runner;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::http::{Request, Response, StatusCode};
use lambda_http::{Body, RequestExt};
use loyalty_aws::Aws;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tracing::warn;

/// The page's port unless told otherwise.
pub const DEFAULT_PORT: u16 = 8080;

/// Listens on `127.0.0.1:<port>` (0: any free port).
pub async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))
}

/// Serves the API and delivers the queues until one of them fails.
pub async fn serve_with_runner(aws: Aws, listener: TcpListener) -> anyhow::Result<()> {
    let runner = Runner::new(aws.clone())?;
    tokio::select! {
        served = serve(aws, listener) => served,
        ran = runner.run_forever() => ran,
    }
}

/// Answers every connection on `listener` with the api function.
pub async fn serve(aws: Aws, listener: TcpListener) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let aws = aws.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let aws = aws.clone();
                async move { Ok::<_, Infallible>(answer(&aws, request).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                warn!(error = %e, "a connection to the local API failed");
            }
        });
    }
}

async fn answer(aws: &Aws, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let response = match to_lambda(request).await {
        Ok(request) => api::handle(aws, request)
            .await
            .map_err(|e| format!("the api function failed: {e}")),
        Err(e) => Err(format!("the request could not be read: {e}")),
    };
    match response {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, Full::new(Bytes::from(body.to_vec())))
        }
        Err(message) => {
            warn!(%message, "local API");
            let mut response = Response::new(Full::new(Bytes::from(message)));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

/// The request as the function receives it from an HTTP API: its body
/// whole, its query string parameters parsed.
async fn to_lambda(request: Request<Incoming>) -> anyhow::Result<lambda_http::Request> {
    let (parts, body) = request.into_parts();
    let bytes = body.collect().await?.to_bytes();
    let query = query_parameters(parts.uri.query().unwrap_or_default());
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        Body::from(bytes.to_vec())
    };
    Ok(lambda_http::Request::from_parts(parts, body).with_query_string_parameters(query))
}

/// `limit=20&cursor=a%2Bb` → `{limit: [20], cursor: [a+b]}`.
fn query_parameters(query: &str) -> HashMap<String, Vec<String>> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut parameters: HashMap<String, Vec<String>> = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        parameters
            .entry(decode(name))
            .or_default()
            .push(decode(value));
    }
    parameters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_string_becomes_its_decoded_parameters() {
        let parameters = query_parameters("limit=20&cursor=a%2Bb%3D&tag=x&tag=y+z&flag");
        assert_eq!(parameters["limit"], ["20"]);
        assert_eq!(parameters["cursor"], ["a+b="]);
        assert_eq!(parameters["tag"], ["x", "y z"]);
        assert_eq!(parameters["flag"], [""]);
        assert!(query_parameters("").is_empty());
    }
}
