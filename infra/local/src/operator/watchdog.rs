//! `watchdog`: what the watchdog's last sweep found and did, as the sweep
//! recorded it (`finalizer::watchdog`, `shared::sweep`).

use super::table::{when, Table};
use chrono::{DateTime, Utc};
use loyalty_aws::Aws;
use serde_json::json;
use shared::sweep::SweepRecord;

/// The template's schedule: a sweep every 10 minutes. A last sweep older
/// than two of them says the schedule, or the sweep, is failing.
pub const LATE_AFTER_SECONDS: i64 = 2 * 600;

/// The last sweep recorded, if any.
pub async fn last_sweep(aws: &Aws) -> anyhow::Result<Option<SweepRecord>> {
    Ok(aws.tables.last_sweep().await?)
}

/// The sweep as JSON, with its age at `now` (`null` if none was recorded).
pub fn sweep_json(sweep: Option<&SweepRecord>, now: DateTime<Utc>) -> serde_json::Value {
    match sweep {
        None => json!({ "last_sweep": null }),
        Some(sweep) => json!({
            "last_sweep": sweep,
            "age_seconds": (now - sweep.finished_at).num_seconds(),
        }),
    }
}

/// The sweep as text: when, how long ago, the jobs looked at, then each
/// list with its count and names.
pub fn sweep_text(sweep: Option<&SweepRecord>, now: DateTime<Utc>) -> String {
    let Some(sweep) = sweep else {
        return "no sweep recorded yet: the watchdog (the finalizer on its schedule) has not \
                run since sweeps are recorded, or could not record one\n"
            .to_owned();
    };
    let age = (now - sweep.finished_at).num_seconds();
    let mut out = format!(
        "last sweep: {} ({}s ago, took {} ms), {} unfinished jobs looked at\n",
        when(Some(sweep.started_at)),
        age,
        (sweep.finished_at - sweep.started_at).num_milliseconds(),
        sweep.jobs
    );
    if age > LATE_AFTER_SECONDS {
        out.push_str(
            "  late: a deployed stack sweeps every 10 minutes; check the finalizer's schedule \
             and its errors (a local stack sweeps only while `loyalty-local run` runs)\n",
        );
    }
    let mut table = Table::new(&["WHAT", "JOBS", "NAMES"]);
    for (what, names) in sweep.lists() {
        let mut shown = names.first.join(", ");
        if names.more() > 0 {
            shown.push_str(&format!(" and {} more", names.more()));
        }
        table.row(vec![what.to_owned(), names.count.to_string(), shown]);
    }
    out.push_str(&table.render());
    out
}
