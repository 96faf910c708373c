//! Tenant isolation (README, "Security"): no key, URL, object or file of tenant A can
//! read or change tenant B's data. Through the API: a key is bound to its
//! tenant, other tenants' jobs, previews and processed files are not found.
//! Through the bucket: a presigned URL writes one key of one size for a few
//! minutes, and an object under A's prefix changes A's data only, whatever
//! its key, metadata or content names.
//!
//! Its length: one test binary per capability (each binary is linked on its
//! own); its tests share the helpers at its top.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::presigning::PresigningConfig;
use lambda_http::http::{Method, StatusCode};
use lambda_http::Body;
use local_stack::console;
use local_stack::runner::{Function, Runner};
use loyalty_aws::metrics::Metrics;
use loyalty_aws::s3_event::{object_created_event, ObjectCreated};
use loyalty_aws::Aws;
use pipeline_tests::{Harness, TestTenant};
use serde_json::{json, Value};
use shared::job::JobStatus;
use shared::membership::apply::CardStore;
use shared::test_support::SAMPLE_MEMBERSHIPS;
use std::time::{Duration, SystemTime};

/// Held (shared) by the tests that run the pipeline: every runner delivers
/// every queued message, so a test whose functions are set up differently
/// holds it alone.
static RUNNERS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Calls the API with these headers, as API Gateway would.
async fn call(
    h: &Harness,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = lambda_http::http::Request::builder()
        .method(method)
        .uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = body.map_or(Body::Empty, |b| Body::from(b.to_string()));
    let response = api::handle(&h.aws, request.body(body).unwrap())
        .await
        .unwrap();
    let json = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (response.status(), json)
}

/// `POST /imports` with this header's credentials and body.
async fn post(h: &Harness, header: &str, body: Value) -> (StatusCode, Value) {
    let (name, value) = match header.strip_prefix("Bearer ") {
        Some(_) => ("authorization", header),
        None => ("x-api-key", header),
    };
    call(h, Method::POST, "/imports", &[(name, value)], Some(body)).await
}

async fn get_job(h: &Harness, key: &str, job_id: &str) -> (StatusCode, Value) {
    let bearer = format!("Bearer {key}");
    call(
        h,
        Method::GET,
        &format!("/imports/{job_id}"),
        &[("authorization", &bearer)],
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_needs_a_valid_key_of_its_own_tenant() {
    let _runs = RUNNERS.read().await;
    let h = Harness::start().await;
    let a = h.tenant().await;
    let b = h.tenant().await;
    let job_id = h
        .api_import(
            &a,
            "points",
            "a.csv",
            "email,amount\nx@example.com,1\n",
            false,
        )
        .await;
    let path = format!("/imports/{job_id}");
    let a_secret = a.api_key.split_once('.').unwrap().1;
    let b_secret = b.api_key.split_once('.').unwrap().1;
    let refused = [
        vec![],
        vec![("authorization", "Bearer ".to_owned())],
        vec![("authorization", "Bearer nonsense".to_owned())],
        vec![("authorization", format!("Basic {}", a.api_key))],
        // A's tenant with B's secret, or A's secret one character off.
        vec![("authorization", format!("Bearer {}.{b_secret}", a.id()))],
        vec![("x-api-key", format!("{}.{}0", a.id(), &a_secret[1..]))],
        // A tenant that does not exist, with a real secret.
        vec![("x-api-key", format!("no-such-tenant.{a_secret}"))],
        vec![("x-api-key", format!("{}.{}", a.id(), "0".repeat(64)))],
    ];
    for headers in refused {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (status, body) = call(&h, Method::GET, &path, &headers, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(
            body,
            json!({"error": {"code": "unauthorized", "message": "a valid API key is required"}})
        );
    }
    // Either header carries the key; the scheme's name in any case.
    assert_eq!(get_job(&h, &a.api_key, &job_id).await.0, StatusCode::OK);
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let value = format!("{scheme}  {}", a.api_key);
        let (status, _) = call(&h, Method::GET, &path, &[("authorization", &value)], None).await;
        assert_eq!(status, StatusCode::OK, "{value}");
    }
    let (status, _) = call(&h, Method::GET, &path, &[("x-api-key", &a.api_key)], None).await;
    assert_eq!(status, StatusCode::OK);
    // The stored tenant keeps only a hash of the secret.
    let stored = h.aws.tables.tenant(a.id()).await.unwrap().unwrap();
    assert_eq!(stored.api_key_hash.len(), 64);
    assert!(!stored.api_key_hash.contains(a_secret));
    h.settle(&a).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_naming_another_item_of_the_jobs_table_is_not_found() {
    let _runs = RUNNERS.read().await;
    let h = Harness::start().await;
    let t = h.tenant().await;
    let job = h
        .api_import(
            &t,
            "points",
            "t.csv",
            "email,amount\nann@example.com,7\n",
            false,
        )
        .await;
    h.settle(&t).await;
    // A batch marker and a content claim live beside the job, under keys
    // that continue its own: none is a job.
    let long = "9".repeat(2_000);
    for id in [
        format!("{job}%23BATCH%231"),
        format!("{job}%23CONTENT%230"),
        "%23".to_owned(),
        long,
        "%00".to_owned(),
        "%E9t%E9".to_owned(),
    ] {
        let (status, body) = get_job(&h, &t.api_key, &id).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
        assert!(body.get("status").is_none(), "{id}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_tenants_jobs_previews_and_processed_files_are_not_found() {
    let _runs = RUNNERS.read().await;
    let h = Harness::start().await;
    let a = h.tenant().await;
    let b = h.tenant().await;
    let b_job = h
        .api_import(
            &b,
            "points",
            "b.csv",
            "email,amount\nbea@example.com,7\n",
            false,
        )
        .await;
    h.settle(&b).await;
    let (status, own) = get_job(&h, &b.api_key, &b_job).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own["preview"][0]["identifier"], "bea@example.com", "{own}");
    let link = own["processed_file"].as_str().unwrap();
    assert!(link.contains(&format!("/processed/{}/", b.id())), "{link}");

    // A sees B's job exactly as a job that does not exist: no status, no
    // preview, no link to the processed file.
    let (status, body) = get_job(&h, &a.api_key, &b_job).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": {"code": "not_found", "message": format!("no job {b_job}")}})
    );
    let (_, missing) = get_job(&h, &a.api_key, "20260101000000-000000000000").await;
    assert_eq!(
        missing,
        json!({"error": {"code": "not_found", "message": "no job 20260101000000-000000000000"}})
    );
    // Nor through a path that climbs out of A's jobs.
    for path in [
        format!("/imports/../{}/{b_job}", b.id()),
        format!("/imports/{}%2F{b_job}", b.id()),
        format!("/imports/{}#{b_job}", b.id()),
    ] {
        let bearer = format!("Bearer {}", a.api_key);
        let (status, body) =
            call(&h, Method::GET, &path, &[("authorization", &bearer)], None).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
            "{path}: {status} {body}"
        );
        assert!(body.get("preview").is_none(), "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_is_always_created_for_the_keys_own_tenant() {
    let h = Harness::start().await;
    let a = h.tenant().await;
    let b = h.tenant().await;
    let bearer = format!("Bearer {}", a.api_key);
    let request = |extra: Value| {
        let mut body =
            json!({"kind": "points", "reason": "r", "filename": "x.csv", "size_bytes": 10});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    // A body cannot name a tenant, a key or a job.
    for extra in [
        json!({"tenant_id": b.id()}),
        json!({"tenant": b.id()}),
        json!({"key": format!("incoming/{}/x.csv", b.id())}),
        json!({"job_id": "20260101000000-000000000000"}),
    ] {
        let (status, body) = post(&h, &bearer, request(extra.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {body}");
    }
    // Nor can a file name climb out of the tenant's folder.
    for filename in [format!("../../{}/x.csv", b.id()), "..\\x.csv".into()] {
        let (status, _) = post(&h, &bearer, request(json!({ "filename": filename }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filename}");
    }
    let (status, ticket) = post(&h, &bearer, request(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let url = ticket["upload"]["url"].as_str().unwrap();
    assert!(
        url.contains(&format!("/incoming/{}/uploads/", a.id())),
        "{url}"
    );
    assert!(h.jobs(&b).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_presigned_url_is_bound_to_its_key_size_and_lifetime() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let ticket = h.create_import(&t, "a b.csv", 120).await;
    let url = ticket["upload"]["url"].as_str().unwrap();
    let job_id = ticket["job_id"].as_str().unwrap();
    let path = url.split('?').next().unwrap();
    assert!(
        path.ends_with(&format!("/incoming/{}/uploads/{job_id}/a%20b.csv", t.id())),
        "{url}"
    );
    assert!(
        url.contains("X-Amz-Expires=900"),
        "expires in minutes: {url}"
    );
    let signed = url
        .split("X-Amz-SignedHeaders=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        signed.contains("content-length") && signed.contains("host"),
        "{signed}"
    );
    assert_eq!(ticket["upload"]["headers"]["content-length"], "120");

    // S3 checks the signature over method, path, signed headers and expiry;
    // the emulator does not, so compare signatures computed at one instant:
    // the same key, size and lifetime sign alike; another key, size or
    // lifetime does not, so S3 refuses a URL changed in any of them.
    let signature = |u: &str| u.split("X-Amz-Signature=").nth(1).unwrap().to_owned();
    let at = SystemTime::now();
    let sign = |key: String, size: u64, seconds: u64| {
        let objects = h.aws.objects.clone();
        async move {
            let config = PresigningConfig::builder()
                .start_time(at)
                .expires_in(Duration::from_secs(seconds))
                .build()
                .unwrap();
            signature(
                &objects
                    .presign_upload_with(&key, size, config)
                    .await
                    .unwrap()
                    .url,
            )
        }
    };
    let own = format!("incoming/{}/uploads/{job_id}/a b.csv", t.id());
    let other = format!("incoming/{}/uploads/{job_id}/a b.csv", "another-tenant");
    let reference = sign(own.clone(), 120, 900).await;
    assert_eq!(reference, sign(own.clone(), 120, 900).await);
    assert_ne!(reference, sign(own.clone(), 121, 900).await);
    assert_ne!(reference, sign(own.clone(), 120, 3600).await);
    assert_ne!(reference, sign(other, 120, 900).await);

    // The API refuses sizes over the limit.
    let too_big = h
        .api(&t, Method::POST, "/imports", Some(json!({
            "kind": "points", "reason": "r", "filename": "big.csv", "size_bytes": h.aws.settings.max_upload_bytes + 1
        })))
        .await;
    assert_eq!(too_big.status, StatusCode::BAD_REQUEST);
}

/// A tenant with the sample membership programs.
async fn member(h: &Harness) -> TestTenant {
    let t = h.tenant().await;
    console::configure_memberships(&h.aws, t.id(), SAMPLE_MEMBERSHIPS)
        .await
        .expect("membership configuration");
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_under_one_tenants_prefix_changes_that_tenants_data_only() {
    let _runs = RUNNERS.read().await;
    let h = Harness::start().await;
    let a = member(&h).await;
    let b = member(&h).await;
    // B: a wallet, a card and an import waiting for its upload.
    h.drop_file(&b, "b.csv", "email,amount\nshared@example.com,100\n", None)
        .await;
    let cards = |customer: &str| {
        format!(
            "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier\n\
             \"SHARED-1\";\"{customer}\";\"1\";;;;\"2\"\n"
        )
    };
    h.drop_file(
        &b,
        "memberships/demoshop_cardcode_customers_20260110.csv",
        cards("bea@example.com"),
        None,
    )
    .await;
    h.settle(&b).await;
    let waiting = h.create_import(&b, "w.csv", 40).await;
    let b_job = waiting["job_id"].as_str().unwrap().to_owned();
    let b_before = h.jobs(&b).await;

    // A: a file at B's upload key (under A's prefix), a key that climbs
    // towards B's folder, metadata naming B and its job, a column naming B,
    // and a card file reusing B's card code.
    let credit = |points: u32| format!("email,amount\nshared@example.com,{points}\n");
    h.drop_file(&a, &format!("uploads/{b_job}/w.csv"), credit(1), None)
        .await;
    h.drop_file(&a, &format!("../{}/climb.csv", b.id()), credit(5), None)
        .await;
    h.drop_file_with(
        &a,
        "meta.csv",
        credit(6),
        &[
            ("tenant", b.id()),
            ("tenant-id", b.id()),
            ("job-id", &b_job),
        ],
    )
    .await;
    h.drop_file(
        &a,
        "column.csv",
        format!("email,amount,tenant_id\nshared@example.com,5,{}\n", b.id()),
        None,
    )
    .await;
    h.drop_file(
        &a,
        "memberships/demoshop_cardcode_customers_20260111.csv",
        cards("ann@example.com"),
        None,
    )
    .await;
    h.settle(&a).await;
    h.settle(&b).await;

    // B is as it was.
    assert_eq!(h.balance(&b, "email:shared@example.com").await, 100);
    assert_eq!(h.ledger_len(&b, "email:shared@example.com").await, 1);
    let b_after = h.jobs(&b).await;
    assert_eq!(b_after.len(), b_before.len());
    let still = h.aws.tables.job(b.id(), &b_job).await.unwrap().unwrap();
    assert_eq!(still.status, JobStatus::AwaitingUpload);
    let b_card = CardStore::card(&h.aws.tables, b.id(), "SHARED-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b_card.card.customer_key.as_deref(), Some("bea@example.com"));
    assert!(h
        .processed_keys(&b)
        .await
        .iter()
        .all(|k| k.starts_with(&format!("processed/{}/", b.id()))));

    // A's own files changed A's data: the climbing key and the metadata one
    // credited A's wallet; the upload for a job A never created was
    // ignored; the unknown column rejected its file.
    assert_eq!(h.balance(&a, "email:shared@example.com").await, 11);
    let a_jobs = h.jobs(&a).await;
    assert!(a_jobs.iter().all(|j| j.tenant_id == a.id()));
    assert!(a_jobs.iter().all(|j| j.job_id != b_job));
    let rejected = a_jobs.iter().find(|j| j.filename == "column.csv").unwrap();
    assert_eq!(rejected.status, JobStatus::Rejected);
    let a_card = CardStore::card(&h.aws.tables, a.id(), "SHARED-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a_card.card.customer_key.as_deref(), Some("ann@example.com"));
    // Every email went to its own tenant's admin.
    for job in a_jobs.iter().filter(|j| j.email_sent_at.is_some()) {
        for email in h.emails_about(&job.job_id).await {
            assert_eq!(email.destinations.to, vec![a.tenant.admin_email.clone()]);
            assert!(email.destinations.cc.is_empty() && email.destinations.bcc.is_empty());
        }
    }
}

/// An upload no tenant owns (under a mistyped or deleted tenant's folder, or
/// straight under `incoming/`) changes no one's data and is left where it
/// is; nobody can be emailed about it, so it is counted in the metric the
/// template's `IgnoredUploadsAlarm` watches. A folder marker is not counted.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_no_tenant_owns_is_counted_for_the_operators_alarm() {
    let h = Harness::start().await;
    let ghost = pipeline_tests::unique("ghost");
    let in_ghost_folder = format!("incoming/{ghost}/points.csv");
    let in_no_folder = format!("incoming/{ghost}-points.csv");
    let folder = format!("incoming/{ghost}/");
    let file = "email,amount\nghost@example.com,5\n";
    for (key, body) in [
        (&in_ghost_folder, file),
        (&in_no_folder, file),
        (&folder, ""),
    ] {
        console::drop_object(&h.aws, key, body.as_bytes().to_vec(), &[])
            .await
            .expect("put object");
    }
    let mut splitter = h.aws.clone();
    splitter.metrics = Metrics::in_memory("loyalty-import/test");
    for key in [&in_ghost_folder, &in_no_folder, &folder] {
        let event = object_created_event(&ObjectCreated {
            bucket: h.aws.objects.bucket().to_owned(),
            key: key.clone(),
            version_id: None,
            size: None,
            sequencer: None,
        });
        splitter::handle(&splitter, event).await.expect("handled");
    }

    assert!(h.aws.tables.jobs(&ghost).await.unwrap().is_empty());
    let counted: Vec<(Value, Value)> = splitter
        .metrics
        .recorded()
        .into_iter()
        .map(|document| {
            let emf = &document["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(emf["Namespace"], "loyalty-import/test");
            assert_eq!(emf["Dimensions"], json!([["Function"], []]));
            assert_eq!(
                emf["Metrics"],
                json!([{"Name": splitter::handler::UPLOADS_IGNORED, "Unit": "Count"}])
            );
            assert_eq!(document["Function"], "splitter");
            assert_eq!(document[splitter::handler::UPLOADS_IGNORED], 1.0);
            (document["reason"].clone(), document["key"].clone())
        })
        .collect();
    assert_eq!(
        counted,
        [
            (json!("unknown_tenant"), json!(in_ghost_folder)),
            (json!("no_tenant_folder"), json!(in_no_folder)),
        ]
    );

    // The alarm watches that metric, in the namespace the functions are given.
    let template = include_str!("../../infra/template.yaml");
    let alarm = template
        .split("\n  IgnoredUploadsAlarm:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("the template's IgnoredUploadsAlarm");
    let namespace = "\"loyalty-import/${Prefix}\"";
    assert!(template.contains(&format!("LOYALTY_METRICS_NAMESPACE: !Sub {namespace}")));
    for line in [
        format!("Namespace: !Sub {namespace}"),
        format!("MetricName: {}", splitter::handler::UPLOADS_IGNORED),
        "- Name: Function".to_owned(),
        "Value: splitter".to_owned(),
    ] {
        assert!(alarm.contains(&line), "the alarm has {line}:\n{alarm}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn emails_go_to_the_registered_admin_whatever_the_file_or_request_says() {
    let _runs = RUNNERS.read().await;
    let h = Harness::start().await;
    let t = h.tenant().await;
    let key = h
        .drop_file_with(
            &t,
            "notify.csv",
            "email,amount,admin_email\nx@example.com,5,thief@example.com\n",
            &[
                ("admin-email", "thief@example.com"),
                ("reply-to", "thief@example.com"),
                ("email", "thief@example.com"),
            ],
        )
        .await;
    h.drop_file_with(
        &t,
        "notify-ok.csv",
        "email,amount\nthief@example.com,5\n",
        &[
            ("admin-email", "thief@example.com"),
            ("email", "thief@example.com"),
        ],
    )
    .await;
    h.settle(&t).await;
    let jobs = h.jobs(&t).await;
    assert_eq!(jobs.len(), 2, "{key}");
    for job in &jobs {
        let emails = h.emails_about(&job.job_id).await;
        assert_eq!(emails.len(), 1, "{}", job.filename);
        let to = &emails[0].destinations;
        assert_eq!(to.to, vec![t.tenant.admin_email.clone()]);
        assert!(to.cc.is_empty() && to.bcc.is_empty());
    }
    // The API has no field for a recipient.
    let (status, _) = post(&h, &t.api_key, json!({"kind": "points", "reason": "r", "filename": "x.csv", "size_bytes": 10, "notify": "thief@example.com"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// `GET path` without a key: the status and the `location` header.
async fn follow(h: &Harness, path: &str) -> (StatusCode, Option<String>) {
    let request = lambda_http::http::Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Body::Empty)
        .unwrap();
    let response = api::handle(&h.aws, request).await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), location)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_emailed_link_downloads_its_own_processed_file_until_it_expires() {
    // Alone: another test's runner would finalize its job without the API's address.
    let _alone = RUNNERS.write().await;
    let h = Harness::start().await;
    let a = h.tenant().await;
    let b = h.tenant().await;
    // The finalizer as deployed: it knows the API's address.
    let mut settings = h.aws.settings.clone();
    settings.api_url = Some("https://api.example/".into());
    let runner = Runner::new(h.aws.clone())
        .unwrap()
        .with_clients_for(Function::Finalizer, Aws::new(settings).await);
    h.drop_file(&a, "linked.csv", "email,amount\nlee@example.com,8\n", None)
        .await;
    runner
        .run_until_idle(Some(a.id()), Duration::from_secs(90))
        .await
        .unwrap();
    let job = h.only_job(&a).await;
    let email = &h.emails_about(&job.job_id).await[0];
    let link = email
        .body
        .split_whitespace()
        .find(|w| w.starts_with("https://api.example/"))
        .unwrap_or_else(|| panic!("no link: {}", email.body));
    let path = link.trim_start_matches("https://api.example");
    let token = path.rsplit('/').next().unwrap();
    assert_eq!(
        path,
        format!("/downloads/{}/{}/{token}", a.id(), job.job_id)
    );
    assert_eq!(token.len(), 64);

    // The link redirects to a fresh S3 link of the processed file, without
    // an API key.
    let (status, location) = follow(&h, path).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    assert!(location.contains("X-Amz-Expires=300"), "{location}");
    let file = reqwest::get(&location).await.unwrap().text().await.unwrap();
    assert_eq!(file, h.processed_file(&job).await);

    // Another token, another tenant, another job: not found, alike.
    let last = if token.ends_with('0') { '1' } else { '0' };
    let wrong_token = format!("{}{last}", &token[..63]);
    for other in [
        format!("/downloads/{}/{}/{wrong_token}", a.id(), job.job_id),
        format!("/downloads/{}/{}/{token}", b.id(), job.job_id),
        format!("/downloads/{}/20260101000000-000000000000/{token}", a.id()),
        format!("/downloads/{}/{}/", a.id(), job.job_id),
    ] {
        assert_ne!(follow(&h, &other).await.0, StatusCode::FOUND, "{other}");
    }

    // Past its lifetime, the link is gone; the API still signs a fresh one.
    h.aws
        .tables
        .client()
        .update_item()
        .table_name(&h.aws.settings.jobs_table)
        .key("tenant_id", AttributeValue::S(a.id().to_owned()))
        .key("sk", AttributeValue::S(format!("JOB#{}", job.job_id)))
        .update_expression("SET download_until = :past")
        .expression_attribute_values(
            ":past",
            AttributeValue::S("2026-01-01T00:00:00+00:00".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(follow(&h, path).await.0, StatusCode::NOT_FOUND);
    let (status, fresh) = get_job(&h, &a.api_key, &job.job_id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(fresh["processed_file"]
        .as_str()
        .unwrap()
        .contains("X-Amz-Signature="));
}
