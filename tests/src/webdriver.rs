//! A small W3C WebDriver client: headless Chromium driven through
//! `chromedriver` over HTTP, for the import page's browser tests. Only what
//! those tests do: open a page, find elements, type, click, run a script,
//! take screenshots, resize the window.
//!
//! Chromium and its driver are Debian's (`chromium`, `chromium-driver`),
//! installed by `bash infra/local/dev test`.

use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key under which WebDriver names an element (W3C WebDriver §12.1).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An element of the page, by its WebDriver reference.
#[derive(Debug, Clone)]
pub struct Element(String);

/// One headless Chromium session, and the chromedriver that runs it.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    driver: Child,
    screenshots: PathBuf,
    shot: u32,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session;
    /// screenshots go to `screenshots` (emptied first).
    pub async fn start(screenshots: &Path) -> anyhow::Result<Browser> {
        let port = free_port()?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "chromedriver could not be started ({e}); install Debian's chromium and chromium-driver (bash infra/local/dev test does)"
                )
            })?;
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            http,
            session: String::new(),
            driver,
            screenshots: screenshots.to_owned(),
            shot: 0,
        };
        browser.wait_ready(&base).await?;
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"],
        });
        if Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let created = browser
            .send(
                reqwest::Method::POST,
                &format!("{base}/session"),
                Some(json!({
                    "capabilities": { "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": options,
                    }}
                })),
            )
            .await?;
        let id = created["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no session id in {created}"))?;
        browser.session = format!("{base}/session/{id}");
        let _ = std::fs::remove_dir_all(screenshots);
        std::fs::create_dir_all(screenshots)?;
        Ok(browser)
    }

    async fn wait_ready(&self, base: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = self.http.get(format!("{base}/status")).send().await {
                let status: Value = serde_json::from_str(&response.text().await?)?;
                if status["value"]["ready"] == json!(true) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!("chromedriver did not become ready on {base}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A WebDriver command: its `value`, or the driver's error.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status();
        let reply: Value = serde_json::from_str(&response.text().await?)?;
        if !status.is_success() {
            anyhow::bail!(
                "WebDriver {url}: {} ({})",
                reply["value"]["error"],
                reply["value"]["message"]
            );
        }
        Ok(reply["value"].clone())
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.session);
        let body = (method == reqwest::Method::POST).then_some(body);
        self.send(method, &url, body).await
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await
            .map(drop)
    }

    /// The first element `css` selects, now.
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        found[ELEMENT]
            .as_str()
            .map(|id| Element(id.to_owned()))
            .ok_or_else(|| anyhow::anyhow!("no element reference for {css}: {found}"))
    }

    /// Types `text` into an element (for a file input: the file's absolute path).
    pub async fn send_keys(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await
        .map(drop)
    }

    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/click", element.0),
            json!({}),
        )
        .await
        .map(drop)
    }

    /// The element's rendered text.
    pub async fn text(&self, element: &Element) -> anyhow::Result<String> {
        let text = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{}/text", element.0),
                json!({}),
            )
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page
    /// and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// Waits until `script` returns something other than null or false,
    /// and returns that.
    pub async fn wait_for(&self, script: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.execute(script, json!([])).await?;
            if !value.is_null() && value != json!(false) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                anyhow::bail!("still nothing after {timeout:?}: {script}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The window's size in CSS pixels (a phone: 390 × 844).
    pub async fn resize(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            json!({ "width": width, "height": height }),
        )
        .await
        .map(drop)
    }

    /// A PNG of the window, saved as `NN-<step>.png`.
    pub async fn screenshot(&mut self, step: &str) -> anyhow::Result<PathBuf> {
        let png = self
            .command(reqwest::Method::GET, "/screenshot", json!({}))
            .await?;
        let png =
            base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default())?;
        self.shot += 1;
        let path = self
            .screenshots
            .join(format!("{:02}-{step}.png", self.shot));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Ends the session (Chromium exits) and stops the driver.
    pub async fn quit(mut self) {
        let _ = self
            .send(reqwest::Method::DELETE, &self.session, None)
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    /// A test that failed before [`Browser::quit`] leaves no driver behind.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A port nothing listens on now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
