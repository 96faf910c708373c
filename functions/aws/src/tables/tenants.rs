//! Tenants (`tenants` table, one item per tenant): creating one, reading
//! one, and setting its membership programs.

use super::request::unless_condition_failed;
use super::{from_item, item, s, to_item, Tables};
use crate::AwsError;
use shared::membership::programs::Memberships;
use shared::tenant::Tenant;

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
        let call = "dynamodb:UpdateItem";
        let value =
            serde_dynamo::to_attribute_value(memberships).map_err(|e| AwsError::new(call, e))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.tenants)
            .key("tenant_id", s(tenant_id))
            .update_expression("SET memberships = :m")
            .condition_expression("attribute_exists(tenant_id)")
            .expression_attribute_values(":m", value)
            .send()
            .await;
        Ok(unless_condition_failed(call, result)?.is_some())
    }

    pub async fn tenant(&self, tenant_id: &str) -> Result<Option<Tenant>, AwsError> {
        self.get(&self.tenants, item([("tenant_id", s(tenant_id))]), false)
            .await?
            .map(|i| from_item("dynamodb:GetItem", i))
            .transpose()
    }
}
