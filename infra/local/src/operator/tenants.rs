//! `tenant show`, `tenant set` and `tenant rotate-key`: a registered
//! tenant's settings, read and changed, and its API key replaced.

use super::table::labelled;
use clap::Args;
use loyalty_aws::Aws;
use serde_json::json;
use shared::tenant::{Language, SettingsChange, Tenant};

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The tenant's id.
    pub id: String,
    /// The new admin: the first address the import reports are sent to.
    #[arg(long, value_name = "EMAIL")]
    pub admin_email: Option<String>,
    /// The addresses the reports are sent to besides the admin's, all of
    /// them (repeat it for several; they replace the current ones; at most
    /// 10 addresses with the admin's).
    #[arg(
        long = "recipient",
        value_name = "EMAIL",
        conflicts_with = "no_recipients"
    )]
    pub recipients: Vec<String>,
    /// The reports go to the admin only.
    #[arg(long)]
    pub no_recipients: bool,
    /// The language of the import reports: en or fr.
    #[arg(long, value_name = "CODE", value_parser = crate::operator::language)]
    pub language: Option<Language>,
    /// The country of mobile numbers without a prefix (ISO code).
    #[arg(long, value_name = "CODE", value_parser = crate::operator::country)]
    pub country: Option<String>,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl SetArgs {
    /// What the options change.
    pub fn change(&self) -> SettingsChange {
        SettingsChange {
            admin_email: self.admin_email.clone(),
            recipients: if self.no_recipients {
                Some(Vec::new())
            } else {
                (!self.recipients.is_empty()).then(|| self.recipients.clone())
            },
            language: self.language,
            default_country: self.country.clone(),
        }
    }
}

/// The tenant, or an error naming it.
pub async fn existing(aws: &Aws, tenant_id: &str) -> anyhow::Result<Tenant> {
    aws.tables
        .tenant(tenant_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no tenant '{tenant_id}'"))
}

/// Changes a tenant's settings, each value checked as at registration, and
/// returns the tenant as stored.
pub async fn set(aws: &Aws, tenant_id: &str, change: &SettingsChange) -> anyhow::Result<Tenant> {
    if change.is_empty() {
        anyhow::bail!(
            "nothing to change: give --admin-email, --recipient, --no-recipients, --language or --country"
        );
    }
    let tenant = existing(aws, tenant_id).await?.with_settings(change)?;
    if !aws.tables.set_tenant_settings(&tenant).await? {
        anyhow::bail!("no tenant '{tenant_id}'");
    }
    Ok(tenant)
}

/// Gives the tenant a new API key and returns it (shown only now); the old
/// key is refused from then on.
pub async fn rotate_key(aws: &Aws, tenant_id: &str) -> anyhow::Result<(Tenant, String)> {
    let mut tenant = existing(aws, tenant_id).await?;
    let key = tenant.new_key(crate::console::new_secret()?);
    if !aws.tables.set_api_key(&tenant).await? {
        anyhow::bail!("no tenant '{tenant_id}'");
    }
    Ok((tenant, key))
}

/// A tenant's settings as JSON (no key, only its fingerprint).
pub fn tenant_json(tenant: &Tenant) -> serde_json::Value {
    json!({
        "tenant_id": tenant.tenant_id,
        "admin_email": tenant.admin_email,
        "recipients": tenant.recipients(),
        "language": tenant.language.code(),
        "default_country": tenant.default_country,
        "key_fingerprint": tenant.key_fingerprint(),
        "memberships": tenant.memberships.as_ref().map(|m| json!({
            "universe": m.universe,
            "programs": m.programs.len(),
        })),
    })
}

/// A tenant's settings as text.
pub fn tenant_text(tenant: &Tenant) -> String {
    let memberships = tenant.memberships.as_ref().map_or_else(
        || "none".to_owned(),
        |m| format!("universe {}, {} programs", m.universe, m.programs.len()),
    );
    format!(
        "tenant {}\n{}",
        tenant.tenant_id,
        labelled(&[
            ("admin email", tenant.admin_email.clone()),
            ("emails go to", tenant.recipients().join(", ")),
            ("emails in", tenant.language.code().to_owned()),
            ("default country", tenant.default_country.clone()),
            ("key fingerprint", tenant.key_fingerprint().to_owned()),
            ("memberships", memberships),
        ])
    )
}

/// A new key, printed once: as text with a warning, or as JSON.
pub fn key_output(tenant: &Tenant, key: &str, json: bool) -> String {
    if json {
        let mut value = tenant_json(tenant);
        value["api_key"] = key.into();
        format!("{value:#}\n")
    } else {
        format!(
            "{}  API key (shown once, keep it safe): {key}\n",
            tenant_text(tenant)
        )
    }
}
