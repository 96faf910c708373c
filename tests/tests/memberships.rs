//! Membership configuration of a tenant: its programs, ranked tiers, card
//! code generation and custom fields, loaded by `loyalty-local tenant
//! memberships` and kept on the tenant.

use local_stack::console;
use pipeline_tests::{unique, Harness};
use shared::test_support::SAMPLE_MEMBERSHIPS;

#[tokio::test(flavor = "multi_thread")]
async fn a_membership_configuration_is_stored_on_its_tenant() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let loaded = console::configure_memberships(&h.aws, t.id(), SAMPLE_MEMBERSHIPS)
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
    let twice = SAMPLE_MEMBERSHIPS.replace("\"id_tier\": 8", "\"id_tier\": 2");
    let err = console::configure_memberships(&h.aws, t.id(), &twice)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("program 3 lists tier 2 twice"),
        "{err}"
    );
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
    let err = console::configure_memberships(&h.aws, &unique("t"), SAMPLE_MEMBERSHIPS)
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("no tenant"), "{err}");
}

mod card_store {
    //! The DynamoDB card store keeps the promises of the reference one
    //! (`shared::membership::apply::memory`).

    use super::*;
    use chrono::Utc;
    use shared::membership::apply::{CardJob, CardStore};
    use shared::membership::cards::CardRow;
    use shared::outcome::{ErrorCode, RowStatus};
    use shared::test_support::{card_rows, sample_memberships, tier_rows};

    /// Card rows with every standard column and the sample's custom field.
    fn cards(body: &str) -> Vec<CardRow> {
        let header =
            "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier;store";
        card_rows(header, body, &sample_memberships())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn cards_are_created_once_and_a_generated_code_is_reported() {
        let h = Harness::start().await;
        let config = sample_memberships();
        let tenant = unique("t");
        let job_id = unique("J");
        let job = CardJob {
            tenant_id: &tenant,
            job_id: &job_id,
            config: &config,
        };
        let rows = cards("A1;a@x.io;1;2019-01-01 00:00:01;;1955-02-01;2;Lyon\n;b@x.io;3;;;;8;\n");
        let first = job
            .apply_cards(&h.aws.tables, &rows, Utc::now())
            .await
            .unwrap();
        let again = job
            .apply_cards(&h.aws.tables, &rows, Utc::now())
            .await
            .unwrap();
        assert_eq!(first, again);
        let stored = h.aws.tables.card(&tenant, "A1").await.unwrap().unwrap();
        assert_eq!((stored.version, stored.card.id_tier), (1, 2));
        assert_eq!(
            stored.card.custom.get("store").map(String::as_str),
            Some("Lyon")
        );
        let generated = first[1].card_code.clone().unwrap();
        assert!(
            shared::membership::ean13::is_valid(&generated),
            "{generated}"
        );
        assert!(h
            .aws
            .tables
            .card(&tenant, &generated)
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn two_files_racing_to_give_a_contact_a_card_in_one_program_create_one() {
        let h = Harness::start().await;
        let config = sample_memberships();
        let tenant = unique("t");
        let (j1, j2) = (unique("J"), unique("J"));
        let one = CardJob {
            tenant_id: &tenant,
            job_id: &j1,
            config: &config,
        };
        let two = CardJob {
            tenant_id: &tenant,
            job_id: &j2,
            config: &config,
        };
        let (a, b) = (cards("A1;a@x.io;1;;;;;\n"), cards("A2;a@x.io;1;;;;;\n"));
        let now = Utc::now();
        let (a, b) = tokio::join!(
            one.apply_cards(&h.aws.tables, &a, now),
            two.apply_cards(&h.aws.tables, &b, now)
        );
        let mut statuses = [a.unwrap()[0].clone(), b.unwrap()[0].clone()];
        statuses.sort_by_key(|o| o.status.as_str());
        assert_eq!(statuses[0].status, RowStatus::Applied);
        assert_eq!(statuses[1].error_code, Some(ErrorCode::SecondActiveCard));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_contact_moved_to_another_card_frees_the_first_and_tiers_change_in_the_history() {
        let h = Harness::start().await;
        let config = sample_memberships();
        let tenant = unique("t");
        let (j1, t1) = (unique("J"), unique("T"));
        let job = CardJob {
            tenant_id: &tenant,
            job_id: &j1,
            config: &config,
        };
        let rows = cards("A1;a@x.io;1;;;;;\nA1;c@x.io;;;;;;\nA2;a@x.io;1;;;;;\n");
        let outcomes = job
            .apply_cards(&h.aws.tables, &rows, Utc::now())
            .await
            .unwrap();
        assert!(
            outcomes.iter().all(|o| o.status == RowStatus::Applied),
            "{outcomes:?}"
        );
        let changes = CardJob {
            tenant_id: &tenant,
            job_id: &t1,
            config: &config,
        };
        let tiers =
            tier_rows("A1;Gold;Spring upgrade;2026-04-01 09:00:00;\nZZ;Gold;;2026-04-01;\n");
        let outcomes = changes
            .apply_tier_changes(&h.aws.tables, &tiers, Utc::now())
            .await
            .unwrap();
        assert_eq!(outcomes[0].status, RowStatus::Applied);
        assert_eq!(outcomes[1].error_code, Some(ErrorCode::UnknownCard));
        let card = h
            .aws
            .tables
            .card(&tenant, "A1")
            .await
            .unwrap()
            .unwrap()
            .card;
        assert_eq!((card.id_tier, card.tier_history.len()), (4, 1));
        assert_eq!(card.customer_key.as_deref(), Some("c@x.io"));
    }
}
