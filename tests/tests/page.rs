//! The import page in a real browser: headless Chromium (Debian's) driven
//! over WebDriver against `loyalty-local serve`, started here on the first
//! free port of 8090-8099 (the local stack's allowed origins) with the
//! runner delivering the queues behind it, as a person would use it.
//!
//! Each step's screenshot is kept in `target/page-screenshots/<test>/`.

use lambda_http::http::StatusCode;
use pipeline_tests::webdriver::Browser;
use pipeline_tests::{Harness, TestTenant};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// The local serve's ports for tests: the stack's allowed origins
/// (`LOCAL_ORIGINS` in infra/local/dev).
const PORTS: std::ops::RangeInclusive<u16> = 8090..=8099;

/// The page served with the queues delivered, a tenant, and a browser.
struct Page {
    harness: Harness,
    tenant: TestTenant,
    origin: String,
    browser: Browser,
}

impl Page {
    async fn open(test: &str) -> Page {
        let harness = Harness::start().await;
        let tenant = harness.tenant().await;
        let origin = serve(&harness).await;
        let screenshots = screenshot_dir(test);
        println!("screenshots of {test}: {}", screenshots.display());
        let browser = Browser::start(&screenshots).await.expect("a browser");
        browser.goto(&format!("{origin}/")).await.expect("the page");
        Page {
            harness,
            tenant,
            origin,
            browser,
        }
    }

    /// Types the key into the key form and sends it.
    async fn enter_key(&self, key: &str) {
        let b = &self.browser;
        let field = b.find("#api-key").await.expect("the key field");
        b.send_keys(&field, key).await.expect("typing the key");
        let submit = b
            .find("#key-form button[type=submit]")
            .await
            .expect("button");
        b.click(&submit).await.expect("use the key");
    }

    /// Enters the tenant's key and waits until the page is done with it:
    /// the workspace shown, the history read, and the focus on the new
    /// import's title (a form filled in before then may lose its focus
    /// halfway).
    async fn sign_in(&self) {
        self.enter_key(&self.tenant.api_key.clone()).await;
        self.browser
            .wait_for(
                "return !document.getElementById('workspace').hidden
                    && document.activeElement
                    && document.activeElement.id === 'new-title'",
                Duration::from_secs(20),
            )
            .await
            .expect("the workspace, the history read");
    }

    async fn shot(&mut self, step: &str) {
        self.browser.screenshot(step).await.expect("a screenshot");
    }
}

/// Serves the api function on the first free test port, the runner
/// delivering the queues in the background; the page's origin.
async fn serve(harness: &Harness) -> String {
    for port in PORTS {
        if let Ok(listener) = local_stack::serve::bind(port).await {
            let aws = harness.aws.clone();
            tokio::spawn(async move {
                if let Err(e) = local_stack::serve::serve_with_runner(aws, listener).await {
                    panic!("the local serve stopped: {e}");
                }
            });
            return format!("http://127.0.0.1:{port}");
        }
    }
    panic!("no free port in {PORTS:?} for the page");
}

/// What `js` (a function body) returns in the page.
async fn script(browser: &Browser, js: &str) -> serde_json::Value {
    browser
        .execute(js, json!([]))
        .await
        .unwrap_or_else(|e| panic!("{js}: {e}"))
}

/// `target/page-screenshots/<test>/`, beside the test binary's `debug/`.
fn screenshot_dir(test: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    // target/debug/deps/page-<hash>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the target directory")
        .to_owned();
    target.join("page-screenshots").join(test)
}

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../infra/local/sample/welcome-campaign.csv")
        .canonicalize()
        .expect("the sample file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_imports_a_points_file_from_the_page_and_downloads_its_result() {
    let mut page = Page::open("imports_a_points_file").await;
    page.shot("key-asked").await;
    page.sign_in().await;
    page.shot("key-accepted").await;

    // Points with expiry (the sample's columns), a reason, the sample file,
    // applied at once (not reviewed first).
    let job_id = upload_sample(&mut page, false).await;
    page.shot("uploaded").await;
    let b = &page.browser;
    let status = b
        .wait_for(
            "const s = document.getElementById('job-section').dataset.status;
             return ['completed', 'completed_with_errors', 'rejected'].includes(s) && s;",
            Duration::from_secs(120),
        )
        .await
        .expect("the import finishes");
    page.shot("done").await;
    assert_eq!(status, json!("completed_with_errors"));

    // The preview shows each row's error as the file has them.
    let b = &page.browser;
    let preview = b.find("#preview tbody").await.expect("preview");
    let preview = b.text(&preview).await.expect("preview text");
    assert!(preview.contains("alice@example.com"), "{preview}");
    assert!(preview.contains("'1,000'"), "carol's amount: {preview}");
    assert!(preview.contains("Valid"), "{preview}");
    let errors = script(
        b,
        "return document.querySelectorAll('#preview td.invalid').length",
    )
    .await;
    assert!(
        errors.as_u64().unwrap_or(0) >= 2,
        "rows with errors: {errors}"
    );

    // The link downloads the processed file the pipeline wrote.
    let href = script(b, "return document.getElementById('processed-link').href").await;
    let href = href.as_str().expect("href");
    let downloaded = reqwest::get(href)
        .await
        .expect("download")
        .text()
        .await
        .expect("text");
    let job = page
        .harness
        .aws
        .tables
        .job(page.tenant.id(), &job_id)
        .await
        .expect("job")
        .expect("the job");
    assert_eq!(downloaded, page.harness.processed_file(&job).await);

    // Alice: 500 credited, then 120 debited by her other spelling.
    assert_eq!(
        page.harness
            .balance(&page.tenant, "email:alice@example.com")
            .await,
        380
    );

    // Coming back to the address opens the same job.
    let b = &page.browser;
    b.goto(&format!("{}/#job={job_id}", page.origin))
        .await
        .expect("again");
    b.wait_for(
        "return document.getElementById('job-section').dataset.status",
        Duration::from_secs(10),
    )
    .await
    .expect("the job again, the key remembered in the tab");
    page.browser.resize(390, 844).await.expect("phone width");
    page.shot("phone").await;
    let wide = page
        .browser
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1",
            json!([]),
        )
        .await
        .expect("width");
    assert_eq!(wide, json!(false), "the page scrolls sideways on a phone");
    page.browser.quit().await;
    // Nothing of the tenant's left in flight for the next test binary.
    page.harness.settle(&page.tenant).await;
}

/// Chooses the sample file's kind, a reason and the file, then uploads
/// it; the job's id once the page follows it.
async fn upload_sample(page: &mut Page, review: bool) -> String {
    upload(page, "points_with_expiry", &sample(), review).await
}

/// Chooses `kind`, a reason and `file`, then uploads it; the job's id once
/// the page follows it.
async fn upload(page: &mut Page, kind: &str, file: &std::path::Path, review: bool) -> String {
    let b = &page.browser;
    script(
        b,
        &format!(
            "const kind = document.getElementById('kind'); kind.value = '{kind}';
             kind.dispatchEvent(new Event('change'));"
        ),
    )
    .await;
    let ticked = script(b, "return document.getElementById('review').checked").await;
    if ticked != json!(review) {
        let box_ = b.find("#review").await.expect("review box");
        b.click(&box_).await.expect("review box");
    }
    let reason = b.find("#reason").await.expect("reason");
    b.send_keys(&reason, "Welcome campaign")
        .await
        .expect("type");
    let input = b.find("#file").await.expect("file input");
    b.send_keys(&input, &file.display().to_string())
        .await
        .expect("choose the file");
    let upload = b.find("#upload").await.expect("upload button");
    b.click(&upload).await.expect("upload");
    let job_id = b
        .wait_for(
            "const m = /^#job=(.+)$/.exec(location.hash); return m && m[1];",
            Duration::from_secs(30),
        )
        .await;
    let Ok(job_id) = job_id else {
        page.shot("upload-failed").await;
        let alert = script(
            &page.browser,
            "const a = document.getElementById('alert'); return a.hidden ? '' : a.textContent",
        )
        .await;
        panic!("no job in the address after the upload; the page says: {alert}");
    };
    job_id.as_str().expect("job id").to_owned()
}

/// Waits until the job shown has one of `statuses`; the status.
async fn shown_status(page: &Page, statuses: &[&str], within: Duration) -> String {
    let js = format!(
        "const s = document.getElementById('job-section').dataset.status; return {} .includes(s) && s;",
        json!(statuses)
    );
    let status = page
        .browser
        .wait_for(&js, within)
        .await
        .unwrap_or_else(|e| panic!("none of {statuses:?}: {e}"));
    status.as_str().expect("a status").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reviews_a_file_starts_it_finds_it_in_the_history_and_reverts_it() {
    let mut page = Page::open("reviews_then_starts").await;
    page.sign_in().await;
    let job_id = upload_sample(&mut page, true).await;
    shown_status(&page, &["ready_for_review"], Duration::from_secs(60)).await;
    page.shot("review").await;

    // The review's totals and its errors by code, as the API has them;
    // nothing applied yet.
    let b = &page.browser;
    let valid = script(
        b,
        "const dt = [...document.querySelectorAll('#review-totals dt')]
             .find(dt => dt.textContent === 'Valid rows');
         return dt && dt.nextElementSibling.textContent;",
    )
    .await;
    let job = page
        .harness
        .aws
        .tables
        .job(page.tenant.id(), &job_id)
        .await
        .expect("job")
        .expect("the job");
    let review = job.review.clone().expect("a review");
    assert_eq!(valid, json!(review.valid.to_string()));
    let codes = script(
        b,
        "return [...document.querySelectorAll('#review-errors tbody th')].map(th => th.textContent)",
    )
    .await;
    let expected: Vec<&str> = review
        .errors
        .codes
        .iter()
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(codes, json!(expected));
    assert!(!expected.is_empty(), "the sample has rows in error");
    let alice = "email:alice@example.com";
    assert_eq!(page.harness.balance(&page.tenant, alice).await, 0);

    let start = b.find("#start").await.expect("start");
    b.click(&start).await.expect("start");
    let status = shown_status(
        &page,
        &["completed", "completed_with_errors"],
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(status, "completed_with_errors");
    page.shot("started-and-done").await;
    assert_eq!(page.harness.balance(&page.tenant, alice).await, 380);
    let b = &page.browser;
    let shown = script(b, "return !document.getElementById('result-errors').hidden").await;
    assert_eq!(shown, json!(true), "the rows not applied, by error");

    // The history lists it, newest first.
    let refresh = b.find("#history-refresh").await.expect("refresh");
    b.click(&refresh).await.expect("refresh");
    let first = b
        .wait_for(
            "const a = document.querySelector('#history tbody tr th a'); return a && a.getAttribute('href');",
            Duration::from_secs(10),
        )
        .await
        .expect("the history");
    assert_eq!(first, json!(format!("#job={job_id}")));
    page.shot("history").await;

    // Undone from its page: the reversal takes back what it applied.
    let b = &page.browser;
    let revert = b.find("#revert").await.expect("the revert button");
    b.click(&revert).await.expect("revert");
    page.shot("revert-asked").await;
    let b = &page.browser;
    let yes = b.find("#revert-yes").await.expect("the confirmation");
    b.click(&yes).await.expect("confirm");
    let reversal = format!("{job_id}-revert");
    b.wait_for(
        &format!("return location.hash === '#job={reversal}'"),
        Duration::from_secs(10),
    )
    .await
    .expect("the reversal followed");
    shown_status(
        &page,
        &["completed", "completed_with_errors"],
        Duration::from_secs(120),
    )
    .await;
    page.shot("reverted").await;
    assert_eq!(page.harness.balance(&page.tenant, alice).await, 0);
    let b = &page.browser;
    let said = script(
        b,
        "return document.getElementById('result-reverts').textContent",
    )
    .await;
    assert_eq!(said, json!(format!("This import reverts import {job_id}.")));
    page.browser.quit().await;
    page.harness.settle(&page.tenant).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reviews_a_card_file_sees_its_rows_and_discards_it() {
    let mut page = Page::open("reviews_cards_then_discards").await;
    local_stack::console::configure_memberships(
        &page.harness.aws,
        page.tenant.id(),
        shared::test_support::SAMPLE_MEMBERSHIPS,
    )
    .await
    .expect("membership programs");
    page.sign_in().await;
    let cards = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../infra/local/sample/demoshop_cardcode_customers_20260110.csv")
        .canonicalize()
        .expect("the sample card file");
    let job_id = upload(&mut page, "cardcode", &cards, true).await;
    shown_status(&page, &["ready_for_review"], Duration::from_secs(60)).await;
    page.shot("card-review").await;

    // Its rows' first cells under their own heading, and its cards counted.
    let b = &page.browser;
    let heading = script(
        b,
        "return [...document.querySelectorAll('#preview thead th')].map(th => th.textContent)",
    )
    .await;
    assert_eq!(heading, json!(["Row", "First cells of the row", "Result"]));
    let first = script(
        b,
        "return document.querySelector('#preview tbody tr td').textContent",
    )
    .await;
    assert!(
        first
            .as_str()
            .is_some_and(|c| c.starts_with("my_card_code, jane@example.com")),
        "{first}"
    );
    let job = page.harness.job(&page.tenant, &job_id).await;
    assert!(job.review.expect("a review").customers > 0);

    let discard = b.find("#discard").await.expect("discard");
    b.click(&discard).await.expect("discard");
    shown_status(&page, &["discarded"], Duration::from_secs(20)).await;
    page.shot("card-discarded").await;
    // Nothing applied: no card, no email.
    let card = shared::membership::apply::CardStore::card(
        &page.harness.aws.tables,
        page.tenant.id(),
        "my_card_code",
    )
    .await
    .expect("card read");
    assert!(card.is_none());
    assert!(page.harness.emails_about(&job_id).await.is_empty());
    page.browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_in_an_alert() {
    let mut page = Page::open("wrong_key").await;
    let wrong = format!("{}.{}", page.tenant.id(), "0".repeat(64));
    page.enter_key(&wrong).await;
    let b = &page.browser;
    let alert = b
        .wait_for(
            "const a = document.querySelector('[role=alert]:not([hidden])'); return a && a.textContent;",
            Duration::from_secs(10),
        )
        .await
        .expect("an alert");
    assert!(
        alert
            .as_str()
            .unwrap_or_default()
            .contains("This API key was not accepted"),
        "{alert}"
    );
    let focused = script(b, "return document.activeElement.id").await;
    assert_eq!(focused, json!("alert"), "the alert takes the focus");
    let forgotten = script(
        b,
        "return sessionStorage.getItem('loyalty-import.api-key') === null
                 && !document.getElementById('key-section').hidden",
    )
    .await;
    assert_eq!(forgotten, json!(true));
    page.shot("wrong-key").await;
    page.browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_from_the_pages_origin_is_allowed_and_from_another_refused() {
    let harness = Harness::start().await;
    let origin = serve(&harness).await;
    let client = reqwest::Client::new();
    let preflight = |from: &str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{origin}/imports"))
            .header("origin", from)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };

    let allowed = preflight(&origin).await.expect("preflight");
    assert_eq!(allowed.status().as_u16(), StatusCode::NO_CONTENT.as_u16());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], origin.as_str());
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .unwrap_or_default();
    assert!(methods.contains("POST"), "{methods}");
    let names = headers["access-control-allow-headers"]
        .to_str()
        .unwrap_or_default();
    assert!(names.contains("authorization"), "{names}");

    let refused = preflight("https://elsewhere.example")
        .await
        .expect("preflight");
    assert_eq!(refused.status().as_u16(), StatusCode::FORBIDDEN.as_u16());
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    // The page itself needs no key, and keeps to its own files and the bucket.
    let page = client.get(format!("{origin}/")).send().await.expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    let bucket = std::env::var("AWS_ENDPOINT_URL").expect("the emulator's endpoint");
    assert!(
        policy.contains(&format!("connect-src 'self' {bucket};")),
        "{policy}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
}
