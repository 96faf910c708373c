//! Tenants (`tenants` table, one item per tenant): creating one, reading
//! one, setting its membership programs, its settings and its API key.

use super::request::unless_condition_failed;
use super::{from_item, item, s, to_item, Tables};
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::membership::programs::Memberships;
use shared::tenant::Tenant;

const UPDATE: &str = "dynamodb:UpdateItem";

impl Tables {
    /// Stores a new tenant; `false` if the id is taken.
    pub async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, AwsError> {
        self.put_new(
            &self.tenants,
            to_item("dynamodb:PutItem", tenant)?,
            "tenant_id",
        )
        .await
    }

    /// Sets a tenant's membership configuration; `false` if there is no
    /// such tenant.
    pub async fn set_memberships(
        &self,
        tenant_id: &str,
        memberships: &Memberships,
    ) -> Result<bool, AwsError> {
        let value =
            serde_dynamo::to_attribute_value(memberships).map_err(|e| AwsError::new(UPDATE, e))?;
        self.update_tenant(tenant_id, "SET memberships = :m", vec![(":m", value)])
            .await
    }

    /// Stores a tenant's admin, other recipients, language and country as
    /// `tenant` has them, leaving its key and programs alone; `false` if
    /// there is no such tenant.
    pub async fn set_tenant_settings(&self, tenant: &Tenant) -> Result<bool, AwsError> {
        let others = serde_dynamo::to_attribute_value(&tenant.more_recipients)
            .map_err(|e| AwsError::new(UPDATE, e))?;
        self.update_tenant(
            &tenant.tenant_id,
            "SET admin_email = :admin, more_recipients = :others, #language = :language, \
             default_country = :country",
            vec![
                (":admin", s(&tenant.admin_email)),
                (":others", others),
                (":language", s(tenant.language.code())),
                (":country", s(&tenant.default_country)),
            ],
        )
        .await
    }

    /// Replaces a tenant's API key by the one `tenant` holds the hash of
    /// (`Tenant::new_key`): the old key is refused from then on. `false`
    /// if there is no such tenant.
    pub async fn set_api_key(&self, tenant: &Tenant) -> Result<bool, AwsError> {
        self.update_tenant(
            &tenant.tenant_id,
            "SET api_key_hash = :hash",
            vec![(":hash", s(&tenant.api_key_hash))],
        )
        .await
    }

    pub async fn tenant(&self, tenant_id: &str) -> Result<Option<Tenant>, AwsError> {
        self.get(&self.tenants, item([("tenant_id", s(tenant_id))]), false)
            .await?
            .map(|i| from_item("dynamodb:GetItem", i))
            .transpose()
    }

    /// Applies `update` to an existing tenant; `false` if there is none.
    /// (`language` is a reserved word: the update names it `#language`.)
    async fn update_tenant(
        &self,
        tenant_id: &str,
        update: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, AwsError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tenants)
            .key("tenant_id", s(tenant_id))
            .update_expression(update)
            .condition_expression("attribute_exists(tenant_id)");
        if update.contains("#language") {
            request = request.expression_attribute_names("#language", "language");
        }
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        Ok(unless_condition_failed(UPDATE, request.send().await)?.is_some())
    }
}
