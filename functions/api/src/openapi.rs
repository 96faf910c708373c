//! `GET /openapi.json`: the API's OpenAPI 3 document, kept beside the crate
//! (`functions/api/openapi.json`) and built into the function. Its tests
//! hold it to the code: its paths are the route table's
//! (`crate::routes::ROUTES`), with the same access and `Idempotency-Key`,
//! and its error codes are `Code::ALL`.

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::{Body, Response};

const DOCUMENT: &str = include_str!("../openapi.json");

pub(crate) fn document() -> Response<Body> {
    let mut response = Response::new(Body::from(DOCUMENT));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use crate::routes::{Access, ROUTES};
    use serde_json::Value;
    use std::collections::BTreeSet;

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
    }

    /// Every operation of the document: its method (in capitals), path and
    /// description.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let paths = doc["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                METHODS.iter().filter_map(move |m| {
                    let op = item.get(*m)?;
                    Some((m.to_uppercase(), path.clone(), op.clone()))
                })
            })
            .collect()
    }

    /// A `$ref` of the document's own components, resolved.
    fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(to) => {
                let pointer = to.strip_prefix('#').expect("a local $ref");
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("{to} resolves"))
            }
            None => value,
        }
    }

    #[test]
    fn it_is_an_openapi_3_document() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."));
        let served = document();
        assert_eq!(served.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(served.body().as_ref(), DOCUMENT.as_bytes());
    }

    #[test]
    fn it_describes_every_route_the_handler_serves_and_no_other() {
        let doc = doc();
        let documented: BTreeSet<(String, String)> = operations(&doc)
            .into_iter()
            .map(|(method, path, _)| (method, path))
            .collect();
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn a_route_needs_a_key_in_the_document_as_in_the_handler() {
        let doc = doc();
        let needs_key = |op: &Value| op.get("security") != Some(&serde_json::json!([]));
        for (method, path, op) in operations(&doc) {
            let spec = ROUTES
                .iter()
                .find(|r| r.method == method && r.path == path)
                .unwrap();
            assert_eq!(
                needs_key(&op),
                spec.access == Access::ApiKey,
                "{method} {path}"
            );
        }
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["apiKey"]["name"], "x-api-key");
    }

    #[test]
    fn each_operation_declares_its_paths_parameters() {
        let doc = doc();
        for (method, path, op) in operations(&doc) {
            let in_path: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| resolve(&doc, p))
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(declared, in_path, "{method} {path}");
        }
    }

    #[test]
    fn the_routes_that_take_an_idempotency_key_say_so() {
        let doc = doc();
        for (method, path, op) in operations(&doc) {
            let spec = ROUTES
                .iter()
                .find(|r| r.method == method && r.path == path)
                .unwrap();
            let takes_key = op["parameters"].as_array().into_iter().flatten().any(|p| {
                let p = resolve(&doc, p);
                p["in"] == "header" && p["name"] == "Idempotency-Key"
            });
            assert_eq!(takes_key, spec.idempotent, "{method} {path}");
        }
    }

    #[test]
    fn its_error_codes_are_the_handlers() {
        let doc = doc();
        let documented: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]
            ["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(documented, codes);
    }

    #[test]
    fn its_statuses_and_kinds_are_the_domains() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        for status in schemas["JobStatus"]["enum"].as_array().unwrap() {
            serde_json::from_value::<shared::job::JobStatus>(status.clone())
                .unwrap_or_else(|_| panic!("status {status}"));
        }
        for kind in schemas["ImportKind"]["enum"].as_array().unwrap() {
            serde_json::from_value::<shared::kind::ImportKind>(kind.clone())
                .unwrap_or_else(|_| panic!("kind {kind}"));
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(doc: &Value, value: &Value) {
            match value {
                Value::Object(map) => {
                    resolve(doc, value);
                    map.values().for_each(|v| walk(doc, v));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(doc, v)),
                _ => {}
            }
        }
        let doc = doc();
        walk(&doc, &doc);
    }
}
