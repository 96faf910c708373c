//! What a person at the console does: register tenants and configure their
//! memberships, call the API, upload through a presigned URL, read a wallet,
//! read the emails the emulator kept.

use crate::env;
use aws_sdk_s3::primitives::ByteStream;
use lambda_http::http::{HeaderMap, Method, StatusCode};
use lambda_http::Body;
use loyalty_aws::objects::Presigned;
use loyalty_aws::Aws;
use serde::Deserialize;
use shared::identifier::{CustomerRef, MobileCountry};
use shared::membership::programs::Memberships;
use shared::tenant::{Language, Tenant};

/// Who a tenant's emails go to besides its admin, and in which language.
#[derive(Debug, Clone, Default)]
pub struct Mailing {
    pub recipients: Vec<String>,
    pub language: Language,
}

/// Registers a tenant, emailed in English to its admin only, and returns it
/// with its API key (shown only now).
pub async fn create_tenant(
    aws: &Aws,
    id: &str,
    admin_email: &str,
    country: &str,
) -> anyhow::Result<(Tenant, String)> {
    create_tenant_mailing(aws, id, admin_email, country, &Mailing::default()).await
}

/// Registers a tenant emailed as `mailing` says, and returns it with its
/// API key (shown only now).
pub async fn create_tenant_mailing(
    aws: &Aws,
    id: &str,
    admin_email: &str,
    country: &str,
    mailing: &Mailing,
) -> anyhow::Result<(Tenant, String)> {
    let (tenant, key) = Tenant::register(id, admin_email, country, new_secret()?)?;
    let mut tenant = tenant.with_recipients(&mailing.recipients)?;
    tenant.language = mailing.language;
    if !aws.tables.create_tenant(&tenant).await? {
        anyhow::bail!("tenant '{id}' exists already");
    }
    Ok((tenant, key))
}

/// 256 random bits: an API key's secret.
pub fn new_secret() -> anyhow::Result<[u8; 32]> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| anyhow::anyhow!("no randomness for the API key: {e}"))?;
    Ok(secret)
}

/// Loads a tenant's membership configuration from JSON (see
/// `infra/local/sample/memberships.json`), after checking it.
pub async fn configure_memberships(
    aws: &Aws,
    tenant_id: &str,
    json: &str,
) -> anyhow::Result<Memberships> {
    let memberships: Memberships = serde_json::from_str(json)
        .map_err(|e| anyhow::anyhow!("the membership configuration is not valid: {e}"))?;
    memberships.validate()?;
    if !aws.tables.set_memberships(tenant_id, &memberships).await? {
        anyhow::bail!("no tenant '{tenant_id}'");
    }
    Ok(memberships)
}

/// A response from the API function.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Calls the API function's handler in process, as API Gateway would.
pub async fn api(
    aws: &Aws,
    method: Method,
    path: &str,
    api_key: Option<&str>,
    body: Option<serde_json::Value>,
) -> anyhow::Result<ApiResponse> {
    let authorization = api_key.map(|key| format!("Bearer {key}"));
    let headers: Vec<(&str, &str)> = authorization
        .as_deref()
        .map(|value| ("authorization", value))
        .into_iter()
        .collect();
    api_request(
        aws,
        method,
        path,
        &headers,
        body.map(|json| json.to_string()),
    )
    .await
}

/// Calls the API function's handler in process with these headers (and
/// no others) and this body, as API Gateway would.
pub async fn api_request(
    aws: &Aws,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> anyhow::Result<ApiResponse> {
    let mut request = lambda_http::http::Request::builder()
        .method(method)
        .uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = body.map_or(Body::Empty, Body::from);
    let response = api::handle(aws, request.body(body)?)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(ApiResponse {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.body().to_vec(),
    })
}

/// Puts a file in the bucket as a console drop does (`incoming/<tenant>/…`),
/// with these `x-amz-meta-*` metadata (`reason`, `mode`, `allow-duplicate`).
pub async fn drop_object(
    aws: &Aws,
    key: &str,
    content: impl Into<ByteStream>,
    metadata: &[(&str, &str)],
) -> anyhow::Result<()> {
    let metadata = metadata
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    aws.objects
        .client()
        .put_object()
        .bucket(aws.objects.bucket())
        .key(key)
        .set_metadata(Some(metadata))
        .body(content.into())
        .send()
        .await?;
    Ok(())
}

/// Uploads a file the way a merchant's browser would: a plain HTTP request
/// to the presigned URL, with the headers the API said to send.
pub async fn upload(presigned: &Presigned, content: Vec<u8>) -> anyhow::Result<StatusCode> {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(presigned.method.as_bytes())?;
    let mut request = client.request(method, &presigned.url);
    for (name, value) in &presigned.headers {
        request = request.header(name, value);
    }
    let response = request.body(content).send().await?;
    Ok(StatusCode::from_u16(response.status().as_u16())?)
}

/// An email the emulator accepted for sending.
#[derive(Debug, Clone, Deserialize)]
pub struct SentEmail {
    pub id: String,
    pub source: String,
    pub destinations: Destinations,
    pub subject: String,
    /// The plain text part.
    pub body: String,
    /// The HTML part, if it had one.
    #[serde(default)]
    pub html: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Destinations {
    #[serde(rename = "ToAddresses", default)]
    pub to: Vec<String>,
    #[serde(rename = "CcAddresses", default)]
    pub cc: Vec<String>,
    #[serde(rename = "BccAddresses", default)]
    pub bcc: Vec<String>,
}

/// Every email sent so far (moto keeps them at `/moto-api/data.json`).
pub async fn sent_emails() -> anyhow::Result<Vec<SentEmail>> {
    let endpoint = env::var("AWS_ENDPOINT_URL")?;
    let data: serde_json::Value = reqwest::get(format!(
        "{}/moto-api/data.json",
        endpoint.trim_end_matches('/')
    ))
    .await?
    .error_for_status()?
    .bytes()
    .await
    .map(|b| serde_json::from_slice(&b))??;
    let messages = data["ses"]["Message"].clone();
    Ok(serde_json::from_value(messages).unwrap_or_default())
}

/// Parses `email:...`, `mobile:...` or `customer_id:...` as the importer
/// would (mobiles in the tenant's default country).
pub fn customer_ref(tenant: &Tenant, kind: &str, value: &str) -> anyhow::Result<CustomerRef> {
    let parsed = match kind {
        "email" => CustomerRef::email(value),
        "mobile" => CustomerRef::mobile(value, &MobileCountry::new(&tenant.default_country)),
        "customer_id" | "customer-id" => CustomerRef::customer_id(value),
        other => anyhow::bail!("'{other}' is not an identifier: use email, mobile or customer_id"),
    };
    parsed.map_err(|e| anyhow::anyhow!(e.message))
}

/// A customer's wallet as text: balance, unexpired lots, ledger entries.
pub async fn wallet_report(
    aws: &Aws,
    tenant: &Tenant,
    customer: &CustomerRef,
) -> anyhow::Result<String> {
    use std::fmt::Write;
    let view = aws.tables.wallet_view(&tenant.tenant_id, customer).await?;
    let now = chrono::Utc::now();
    let mut out = String::new();
    writeln!(out, "wallet of {customer} in tenant {}", tenant.tenant_id)?;
    let Some(wallet) = view.wallet else {
        writeln!(out, "  no wallet yet (balance 0)")?;
        return Ok(out);
    };
    writeln!(out, "  balance: {} points", wallet.balance_at(now))?;
    writeln!(out, "  points without expiry: {}", wallet.permanent)?;
    let lots: Vec<_> = wallet.unexpired_lots(now).collect();
    writeln!(out, "  expiring lots: {}", lots.len())?;
    for lot in lots {
        writeln!(
            out,
            "    {:>8} points expire at the end of {} (UTC)",
            lot.remaining, lot.expires_on
        )?;
    }
    writeln!(out, "  ledger entries: {}", view.entries.len())?;
    for e in &view.entries {
        writeln!(
            out,
            "    {}  {} {:>8}  balance {:>8}  job {} row {}  \"{}\"{}",
            e.applied_at.format("%Y-%m-%d %H:%M:%S"),
            e.operation,
            e.amount,
            e.balance_after,
            e.job_id,
            e.row,
            e.reason,
            e.expires_at
                .map(|t| format!("  expires {}", t.format("%Y-%m-%d")))
                .unwrap_or_default()
        )?;
    }
    Ok(out)
}

/// A customer's wallet as JSON: its balance now, the wallet as stored
/// (`null` if none yet) and every ledger entry.
pub async fn wallet_json(
    aws: &Aws,
    tenant: &Tenant,
    customer: &CustomerRef,
) -> anyhow::Result<serde_json::Value> {
    let view = aws.tables.wallet_view(&tenant.tenant_id, customer).await?;
    let now = chrono::Utc::now();
    Ok(serde_json::json!({
        "tenant_id": tenant.tenant_id,
        "customer": customer.to_string(),
        "balance": view.wallet.as_ref().map_or(0, |w| w.balance_at(now)),
        "wallet": view.wallet,
        "entries": view.entries,
    }))
}

/// A card as JSON (`null` if there is no such card), with its tier history.
pub async fn card_json(
    aws: &Aws,
    tenant: &Tenant,
    card_code: &str,
) -> anyhow::Result<serde_json::Value> {
    use shared::membership::apply::CardStore;
    let stored = CardStore::card(&aws.tables, &tenant.tenant_id, card_code).await?;
    Ok(serde_json::json!({
        "tenant_id": tenant.tenant_id,
        "card_code": card_code,
        "card": stored.map(|s| s.card),
    }))
}

/// A card as text: holder, program and tier (by name), dates, custom
/// fields and tier history.
pub async fn card_report(aws: &Aws, tenant: &Tenant, card_code: &str) -> anyhow::Result<String> {
    use shared::membership::apply::CardStore;
    use std::fmt::Write;
    let mut out = String::new();
    writeln!(out, "card {card_code} in tenant {}", tenant.tenant_id)?;
    let Some(stored) = CardStore::card(&aws.tables, &tenant.tenant_id, card_code).await? else {
        writeln!(out, "  no such card")?;
        return Ok(out);
    };
    let card = stored.card;
    let program = tenant
        .memberships
        .as_ref()
        .and_then(|m| m.program(card.id_program));
    let tier_name = program
        .and_then(|p| p.tier(card.id_tier))
        .map_or("?", |t| t.name.as_str());
    let when = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or("-".to_owned(), |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        })
    };
    let active = if card.is_active(chrono::Utc::now()) {
        "active"
    } else {
        "expired"
    };
    writeln!(
        out,
        "  holder: {}",
        card.customer_key.as_deref().unwrap_or("(no contact)")
    )?;
    writeln!(
        out,
        "  program: {} ({}), tier: {tier_name} ({}), {active}",
        card.id_program,
        program.map_or("?", |p| p.name.as_str()),
        card.id_tier
    )?;
    writeln!(out, "  joined: {}", when(Some(card.join_date)))?;
    writeln!(out, "  expires: {}", when(card.expiration_date))?;
    writeln!(
        out,
        "  birthday: {}",
        card.birthday.map_or("-".to_owned(), |d| d.to_string())
    )?;
    writeln!(
        out,
        "  last downgrade check: {}",
        when(card.last_downgrade_check)
    )?;
    for (name, value) in &card.custom {
        writeln!(out, "  {name}: {value}")?;
    }
    writeln!(
        out,
        "  tier history (the card keeps its latest {}): {}",
        shared::membership::tier_changes::MAX_TIER_HISTORY,
        card.tier_history.len()
    )?;
    for change in &card.tier_history {
        writeln!(
            out,
            "    {}  {} ({})  \"{}\"  from {}",
            when(Some(change.value_date)),
            change.tier_name,
            change.id_tier,
            change.context.as_deref().unwrap_or(""),
            change.source
        )?;
    }
    Ok(out)
}
