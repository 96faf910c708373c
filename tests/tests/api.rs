//! The API's own behaviour against the emulator: a tenant's history a page
//! at a time (`GET /imports`), `Idempotency-Key` on `POST /imports`, the
//! error shape, and the OpenAPI document. Each call goes to the api
//! function's handler in process, as API Gateway would make it.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::{Method, StatusCode};
use local_stack::console::{self, ApiResponse};
use loyalty_aws::faults::FaultPlan;
use loyalty_aws::Aws;
use pipeline_tests::{Harness, TestTenant};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Calls the API as `tenant` (no key if `None`) with these headers too.
async fn call(
    aws: &Aws,
    tenant: Option<&TestTenant>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> ApiResponse {
    let authorization = tenant.map(|t| format!("Bearer {}", t.api_key));
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(value) = &authorization {
        all.push(("authorization", value));
    }
    console::api_request(aws, method, path, &all, body.map(str::to_owned))
        .await
        .expect("api call")
}

fn import_body(filename: &str) -> String {
    json!({"kind": "points", "reason": "r", "filename": filename, "size_bytes": 40}).to_string()
}

/// `POST /imports` of `body` with this `Idempotency-Key`.
async fn post_with_key(aws: &Aws, t: &TestTenant, key: &str, body: &str) -> ApiResponse {
    let headers = [("idempotency-key", key)];
    call(aws, Some(t), Method::POST, "/imports", &headers, Some(body)).await
}

/// `GET /imports?<query>`: its status and body.
async fn list(h: &Harness, t: &TestTenant, query: &str) -> (StatusCode, Value) {
    let path = format!("/imports?{query}");
    let response = call(&h.aws, Some(t), Method::GET, &path, &[], None).await;
    (response.status, response.json().unwrap_or(Value::Null))
}

fn ids(page: &Value) -> Vec<String> {
    page["imports"]
        .as_array()
        .expect("imports")
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The tenant's history read a page of `limit` at a time, following each
/// page's cursor: the job ids of each page.
async fn pages(h: &Harness, t: &TestTenant, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut query = format!("limit={limit}");
    loop {
        let (status, page) = list(h, t, &query).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages.push(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit={limit}&cursor={cursor}"),
            None => return pages,
        }
        assert!(pages.len() < 20, "the pages never end");
    }
}

/// The error body's code, after checking it is exactly `{"error": {"code", "message"}}`.
fn error_code(response: &ApiResponse) -> String {
    let body = response.json().expect("an error body is JSON");
    let error = body["error"].as_object().expect("error");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let mut fields: Vec<&str> = error.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["code", "message"], "{body}");
    assert!(!error["message"].as_str().unwrap().is_empty());
    error["code"].as_str().unwrap().to_owned()
}

/// The tenant's Idempotency-Key records, raw.
async fn idempotency_records(h: &Harness, t: &TestTenant) -> Vec<HashMap<String, AttributeValue>> {
    h.aws
        .tables
        .client()
        .query()
        .table_name(&h.aws.settings.jobs_table)
        .key_condition_expression("tenant_id = :t AND begins_with(sk, :p)")
        .expression_attribute_values(":t", AttributeValue::S(t.id().to_owned()))
        .expression_attribute_values(":p", AttributeValue::S("IDEMPOTENCY#".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("query")
        .items
        .unwrap_or_default()
}

/// Rewrites a record as `update` says (a request that died, a record past
/// its time).
async fn rewrite(
    h: &Harness,
    record: &HashMap<String, AttributeValue>,
    update: &str,
    names: &[(&str, &str)],
    values: Vec<(&str, AttributeValue)>,
) {
    let mut request = h
        .aws
        .tables
        .client()
        .update_item()
        .table_name(&h.aws.settings.jobs_table)
        .key("tenant_id", record["tenant_id"].clone())
        .key("sk", record["sk"].clone())
        .update_expression(update);
    for (placeholder, name) in names {
        request = request.expression_attribute_names(*placeholder, *name);
    }
    for (placeholder, value) in values {
        request = request.expression_attribute_values(placeholder, value);
    }
    request.send().await.expect("update");
}

fn epoch_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_lists_a_tenants_imports_newest_first_a_page_at_a_time() {
    let h = Harness::start().await;
    let (t, other) = (h.tenant().await, h.tenant().await);
    // An import run to its end (its batch marker and content claim beside
    // it in the jobs table), then four created through the API.
    h.drop_file(
        &t,
        "first.csv",
        "email,amount\na@example.com,10\nnot-an-email,5\n",
        None,
    )
    .await;
    h.settle(&t).await;
    let dropped = h.only_job(&t).await.job_id;
    let mut created = Vec::new();
    for n in 1..=4 {
        let ticket = h.create_import(&t, &format!("api-{n}.csv"), 40).await;
        created.push(ticket["job_id"].as_str().unwrap().to_owned());
    }
    let theirs = h.create_import(&other, "theirs.csv", 40).await;
    let newest_first: Vec<String> = created
        .iter()
        .rev()
        .cloned()
        .chain([dropped.clone()])
        .collect();

    let by_two = pages(&h, &t, 2).await;
    assert_eq!(by_two.len(), 3, "{by_two:?}");
    assert_eq!(by_two.concat(), newest_first);
    assert_eq!(
        pages(&h, &t, 4).await,
        [newest_first[..4].to_vec(), vec![dropped.clone()]]
    );
    // A page that ends the history exactly promises no other.
    assert_eq!(pages(&h, &t, 5).await, std::slice::from_ref(&newest_first));
    let (status, all) = list(&h, &t, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&all), newest_first);
    assert_eq!(all["next_cursor"], Value::Null);

    let listed = &all["imports"].as_array().unwrap();
    let finished = &listed[4];
    assert_eq!(finished["status"], "completed_with_errors");
    assert_eq!(finished["kind"], "points");
    assert_eq!(finished["filename"], "first.csv");
    assert!(finished["finished_at"].is_string());
    assert_eq!(
        finished["counts"],
        json!({"rows": 2, "invalid": 1, "applied": 1, "failed": 1, "skipped": 0, "credited": 10, "debited": 0})
    );
    let waiting = &listed[0];
    assert_eq!(waiting["status"], "awaiting_upload");
    assert_eq!(waiting["filename"], "api-4.csv");
    assert_eq!(waiting["reason"], "r");
    assert_eq!(
        (&waiting["dry_run"], &waiting["review"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(waiting["counts"]["rows"], Value::Null);
    assert_eq!(waiting["finished_at"], Value::Null);

    // The other tenant sees its own import only.
    let (_, theirs_listed) = list(&h, &other, "").await;
    assert_eq!(ids(&theirs_listed), [theirs["job_id"].as_str().unwrap()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_limit_or_cursor_is_refused_naming_it_and_its_value() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let nonsense = "6e6f7420612063757273f072";
    for (query, named) in [
        ("limit=0", "limit: '0'"),
        ("limit=101", "limit: '101'"),
        ("limit=ten", "limit: 'ten'"),
        ("cursor=zz", "cursor: 'zz'"),
        (
            &format!("cursor={nonsense}"),
            &format!("cursor: '{nonsense}'"),
        ),
        ("limit=2&limit=3", "limit: given more than once"),
    ] {
        let path = format!("/imports?{query}");
        let response = call(&h.aws, Some(&t), Method::GET, &path, &[], None).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error_code(&response), "invalid_request");
        let message = response.json().unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.starts_with(named), "{query}: {message}");
    }
    let anonymous = call(&h.aws, None, Method::GET, "/imports", &[], None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&anonymous), "unauthorized");
    let nowhere = call(&h.aws, Some(&t), Method::DELETE, "/imports", &[], None).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&nowhere), "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_with_the_same_key_gets_the_first_response_and_makes_no_second_import() {
    let h = Harness::start().await;
    let (t, other) = (h.tenant().await, h.tenant().await);
    let body = import_body("once.csv");
    let first = post_with_key(&h.aws, &t, "order-42", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert!(!first.headers.contains_key("idempotent-replayed"));
    let again = post_with_key(&h.aws, &t, "order-42", &body).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.headers["content-type"], "application/json");
    let job_id = first.json().unwrap()["job_id"].as_str().unwrap().to_owned();
    assert_eq!(h.jobs(&t).await.len(), 1);
    assert_eq!(h.only_job(&t).await.job_id, job_id);

    // The same key for another request is refused, and makes nothing.
    let reused = post_with_key(&h.aws, &t, "order-42", &import_body("other.csv")).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&reused), "idempotency_key_reused");
    assert_eq!(h.jobs(&t).await.len(), 1);

    // Keys are each tenant's own.
    let theirs = post_with_key(&h.aws, &other, "order-42", &body).await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_ne!(theirs.json().unwrap()["job_id"], job_id.as_str());

    // Without a key, each request is an import.
    for _ in 0..2 {
        let response = call(&h.aws, Some(&t), Method::POST, "/imports", &[], Some(&body)).await;
        assert_eq!(response.status, StatusCode::CREATED);
    }
    assert_eq!(h.jobs(&t).await.len(), 3);

    // A key that is not 1 to 255 visible characters is refused.
    for bad in ["has space", &"k".repeat(256)] {
        let refused = post_with_key(&h.aws, &t, bad, &body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(error_code(&refused), "invalid_request");
    }
    assert_eq!(h.jobs(&t).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_is_kept_for_the_retry_and_a_failure_is_not() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let empty =
        json!({"kind": "points", "reason": "r", "filename": "f.csv", "size_bytes": 0}).to_string();
    let refused = post_with_key(&h.aws, &t, "k-refused", &empty).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let again = post_with_key(&h.aws, &t, "k-refused", &empty).await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::BAD_REQUEST, &refused.body)
    );
    assert_eq!(again.headers["idempotent-replayed"], "true");

    // The job's write fails: a 500, and nothing kept, so the retry runs.
    let failing = Aws::with_faults(
        h.aws.settings.clone(),
        FaultPlan::fail_always_containing("DynamoDB:PutItem", "\"JOB#"),
    )
    .await;
    let body = import_body("retried.csv");
    let failed = post_with_key(&failing, &t, "k-failed", &body).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&failed), "internal");
    assert!(h.jobs(&t).await.is_empty());
    let retried = post_with_key(&h.aws, &t, "k-failed", &body).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text());
    assert!(!retried.headers.contains_key("idempotent-replayed"));
    assert_eq!(h.jobs(&t).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_while_the_first_request_is_handled_is_told_it_is_in_progress() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    // The first request's job write (after the tenant's read, its request
    // counted and the key claimed) is throttled a few times: the SDK backs
    // off for seconds, holding the request after its claim.
    let plan = FaultPlan::throttle_call(4, 3);
    let slow = Aws::with_faults(h.aws.settings.clone(), plan.clone()).await;
    let body = import_body("slow.csv");
    let first = {
        let (slow, key, body) = (slow.clone(), t.api_key.clone(), body.clone());
        tokio::spawn(async move {
            let headers = [
                ("idempotency-key", "k-slow"),
                ("authorization", &format!("Bearer {key}")),
            ];
            console::api_request(&slow, Method::POST, "/imports", &headers, Some(body)).await
        })
    };
    let mut waited = 0;
    while idempotency_records(&h, &t).await.is_empty() {
        assert!(waited < 200, "the first request never claimed its key");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let during = post_with_key(&h.aws, &t, "k-slow", &body).await;
    assert_eq!(during.status, StatusCode::CONFLICT, "{}", during.text());
    assert_eq!(error_code(&during), "request_in_progress");
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(
        plan.calls()[..4],
        [
            "DynamoDB:GetItem",
            "DynamoDB:UpdateItem",
            "DynamoDB:PutItem",
            "DynamoDB:PutItem"
        ]
    );
    let after = post_with_key(&h.aws, &t, "k-slow", &body).await;
    assert_eq!(
        (after.status, &after.body),
        (StatusCode::CREATED, &first.body)
    );
    assert_eq!(h.jobs(&t).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_left_by_a_request_that_died_or_a_record_past_its_day_is_claimed_anew() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let body = import_body("died.csv");
    let first = post_with_key(&h.aws, &t, "k-died", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let records = idempotency_records(&h, &t).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record["state"], AttributeValue::S("done".into()));
    let ttl: i64 = record["ttl"].as_n().unwrap().parse().unwrap();
    assert!((ttl - epoch_now() - 24 * 3600).abs() < 60, "{ttl}");

    // As if the request had died after its claim, two minutes ago.
    rewrite(
        &h,
        record,
        "SET #state = :pending, claimed_at = :then REMOVE response_status, response_type, response_body",
        &[("#state", "state")],
        vec![(":pending", AttributeValue::S("pending".into())), (":then", AttributeValue::N((epoch_now() - 120).to_string()))],
    )
    .await;
    let taken_over = post_with_key(&h.aws, &t, "k-died", &body).await;
    assert_eq!(
        taken_over.status,
        StatusCode::CREATED,
        "{}",
        taken_over.text()
    );
    assert_ne!(taken_over.body, first.body);
    assert_eq!(h.jobs(&t).await.len(), 2);

    // Past its ttl, not yet deleted by DynamoDB: the key is free again.
    let record = &idempotency_records(&h, &t).await[0];
    rewrite(
        &h,
        record,
        "SET #ttl = :past",
        &[("#ttl", "ttl")],
        vec![(":past", AttributeValue::N((epoch_now() - 1).to_string()))],
    )
    .await;
    let fresh = post_with_key(&h.aws, &t, "k-died", &import_body("another.csv")).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.text());
    assert_eq!(h.jobs(&t).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_served_without_a_key() {
    let h = Harness::start().await;
    let response = call(&h.aws, None, Method::GET, "/openapi.json", &[], None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers["content-type"], "application/json");
    let doc = response.json().unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    assert!(doc["paths"]["/imports"]["get"].is_object());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_past_its_share_of_the_api_is_told_to_wait_and_the_others_are_not() {
    let h = Harness::start().await;
    let (noisy, quiet) = (h.tenant().await, h.tenant().await);
    let mut aws = h.aws.clone();
    aws.settings.tenant_requests_per_minute = 3;
    // A minute's edge may fall among the calls: a refusal comes by the
    // seventh call at the latest (two minutes' shares).
    let mut allowed = 0;
    let mut refused = None;
    for _ in 0..7 {
        let reply = call(&aws, Some(&noisy), Method::GET, "/imports", &[], None).await;
        if reply.status == StatusCode::OK {
            allowed += 1;
        } else {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("a refusal past the share");
    assert!((3..=6).contains(&allowed), "{allowed} allowed");
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let body = refused.json().expect("json");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let wait: u32 = refused.headers["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    // Another tenant is answered as usual, and so are requests without a
    // key (the page, the OpenAPI document).
    let other = call(&aws, Some(&quiet), Method::GET, "/imports", &[], None).await;
    assert_eq!(other.status, StatusCode::OK);
    let public = call(&aws, None, Method::GET, "/openapi.json", &[], None).await;
    assert_eq!(public.status, StatusCode::OK);
}
