//! `loyalty-local demo`: a sample import end to end on the local stack (a
//! tenant, an upload to the presigned URL, the pipeline, the processed file,
//! the email and a wallet), then a card code and a tier change file.

use crate::console::{self, api, upload};
use crate::Runner;
use lambda_http::http::{Method, StatusCode};
use loyalty_aws::objects::Presigned;
use loyalty_aws::Aws;
use serde_json::json;
use std::time::Duration;

/// A sample import end to end: tenant, presigned upload, pipeline, results.
pub async fn run(aws: Aws) -> anyhow::Result<()> {
    let sample = include_bytes!("../sample/welcome-campaign.csv").to_vec();
    let tenant_id = format!("demo-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    let (tenant, key) =
        console::create_tenant(&aws, &tenant_id, "admin@demo-shop.example", "FR").await?;
    println!(
        "== 1. tenant {} created (admin {}), API key {key}",
        tenant.tenant_id, tenant.admin_email
    );

    let created = api(
        &aws,
        Method::POST,
        "/imports",
        Some(&key),
        Some(json!({
            "kind": "points_with_expiry",
            "reason": "Welcome campaign",
            "filename": "welcome campaign.csv",
            "size_bytes": sample.len(),
        })),
    )
    .await?;
    anyhow::ensure!(
        created.status == StatusCode::CREATED,
        "POST /imports: {} {}",
        created.status,
        created.text()
    );
    let ticket = created.json()?;
    let job_id = ticket["job_id"].as_str().unwrap_or_default().to_owned();
    let presigned: Presigned = serde_json::from_value(ticket["upload"].clone())?;
    println!(
        "== 2. import {job_id} created; uploading {} bytes to the presigned URL",
        sample.len()
    );
    let status = upload(&presigned, sample).await?;
    anyhow::ensure!(status.is_success(), "upload refused: {status}");

    println!("== 3. running the pipeline (splitter -> processor -> finalizer)");
    let runner = Runner::new(aws.clone())?;
    runner
        .run_until_idle(Some(&tenant.tenant_id), Duration::from_secs(120))
        .await?;

    let job = api(
        &aws,
        Method::GET,
        &format!("/imports/{job_id}"),
        Some(&key),
        None,
    )
    .await?
    .json()?;
    println!("== 4. job summary (GET /imports/{job_id})");
    let summary = json!({
        "status": job["status"], "counts": job["counts"], "progress": job["progress"],
        "reason": job["reason"], "email_sent_at": job["email_sent_at"],
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);

    let record = aws
        .tables
        .job(&tenant.tenant_id, &job_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job vanished"))?;
    let processed_key = record
        .processed_key
        .ok_or_else(|| anyhow::anyhow!("no processed file"))?;
    println!(
        "== 5. processed file s3://{}/{processed_key}",
        aws.settings.bucket
    );
    print!(
        "{}",
        String::from_utf8_lossy(&aws.objects.get_bytes(&processed_key).await?)
    );

    println!("== 6. email sent to the tenant's admin");
    let emails = console::sent_emails().await?;
    for email in emails
        .iter()
        .filter(|e| e.destinations.to.contains(&tenant.admin_email))
    {
        println!(
            "To: {}\nFrom: {}\nSubject: {}\n\n{}",
            email.destinations.to.join(", "),
            email.source,
            email.subject,
            email.body
        );
    }

    println!(
        "== 7. a wallet: loyalty-local wallet {} --email alice@example.com",
        tenant.tenant_id
    );
    let alice = console::customer_ref(&tenant, "email", "alice@example.com")?;
    print!("{}", console::wallet_report(&aws, &tenant, &alice).await?);
    memberships_demo(&aws, &tenant.tenant_id, &runner).await
}

/// The membership half of the demo: the tenant's programs, then a tier
/// change file and the card code file of the same day, dropped in that
/// order; the tier changes wait for the cards.
async fn memberships_demo(aws: &Aws, tenant_id: &str, runner: &Runner) -> anyhow::Result<()> {
    let config = include_str!("../sample/memberships.json");
    let memberships = console::configure_memberships(aws, tenant_id, config).await?;
    println!(
        "== 8. membership programs loaded (universe {}): {}",
        memberships.universe,
        memberships
            .programs
            .iter()
            .map(|p| format!("{} {}", p.id_program, p.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let files = [
        (
            "demoshop_tierchange_customers_20260110.csv",
            &include_bytes!("../sample/demoshop_tierchange_customers_20260110.csv")[..],
        ),
        (
            "demoshop_cardcode_customers_20260110.csv",
            &include_bytes!("../sample/demoshop_cardcode_customers_20260110.csv")[..],
        ),
    ];
    for (name, content) in files {
        let key = format!("incoming/{tenant_id}/memberships/{name}");
        console::drop_object(aws, &key, content.to_vec(), &[]).await?;
        println!("   dropped {key}");
        runner.pump().await?;
    }
    if let Some(job) = aws
        .tables
        .jobs(tenant_id)
        .await?
        .into_iter()
        .find(|j| j.filename == files[0].0)
    {
        println!(
            "== 9. {} is {}: {}",
            job.filename,
            job.status.as_str(),
            job.waiting_for.as_deref().unwrap_or("its turn came")
        );
    }
    runner
        .run_until_idle(Some(tenant_id), Duration::from_secs(120))
        .await?;
    let jobs = aws.tables.jobs(tenant_id).await?;
    for (step, (name, _)) in [(10, files[1]), (11, files[0])] {
        let job = jobs
            .iter()
            .find(|j| j.filename == name)
            .ok_or_else(|| anyhow::anyhow!("no job for {name}"))?;
        let key = job
            .processed_key
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("no processed file for {name}"))?;
        println!(
            "== {step}. {name}: job {} {} ({} applied, {} failed); processed file:",
            job.job_id,
            job.status.as_str(),
            job.applied,
            job.failed
        );
        print!(
            "{}",
            String::from_utf8_lossy(&aws.objects.get_bytes(key).await?)
        );
    }
    let tenant = aws
        .tables
        .tenant(tenant_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant vanished"))?;
    println!("== 12. a card: loyalty-local card {tenant_id} my_card_code");
    print!(
        "{}",
        console::card_report(aws, &tenant, "my_card_code").await?
    );
    Ok(())
}
