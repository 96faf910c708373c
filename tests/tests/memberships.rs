//! Membership configuration of a tenant: its programs, ranked tiers, card
//! code generation and custom fields, loaded by `loyalty-local tenant
//! memberships` and kept on the tenant.

use local_stack::console;
use pipeline_tests::{unique, Harness};

const SAMPLE: &str = include_str!("../../infra/local/sample/memberships.json");

#[tokio::test(flavor = "multi_thread")]
async fn a_membership_configuration_is_stored_on_its_tenant() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let loaded = console::configure_memberships(&h.aws, t.id(), SAMPLE)
        .await
        .unwrap();
    let stored = h.aws.tables.tenant(t.id()).await.unwrap().unwrap();
    assert_eq!(stored.memberships.as_ref(), Some(&loaded));
    let club = loaded.program(1).unwrap();
    assert_eq!(club.lowest_tier().unwrap().name, "Bronze");
    assert!(loaded.auto_card_codes);
    // The tenant's other settings are untouched.
    assert_eq!(stored.admin_email, t.tenant.admin_email);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inconsistent_configuration_is_refused_and_nothing_is_stored() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let twice = SAMPLE.replace("\"id_tier\": 7", "\"id_tier\": 4");
    let err = console::configure_memberships(&h.aws, t.id(), &twice)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tier 4 is listed twice"), "{err}");
    let not_json = console::configure_memberships(&h.aws, t.id(), "{\"universe\": 3}")
        .await
        .unwrap_err();
    assert!(not_json.to_string().contains("not valid"), "{not_json}");
    let stored = h.aws.tables.tenant(t.id()).await.unwrap().unwrap();
    assert_eq!(stored.memberships, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn configuring_a_tenant_that_does_not_exist_fails() {
    let h = Harness::start().await;
    let err = console::configure_memberships(&h.aws, &unique("t"), SAMPLE)
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("no tenant"), "{err}");
}
