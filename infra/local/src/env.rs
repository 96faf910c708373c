//! The local stack's environment: written by `infra/local/provision.py` to
//! `.local/stack.env` (the functions' variables from the template, the queue
//! feeding each function, and the emulator's endpoint and credentials).

use std::path::{Path, PathBuf};

/// The env file of this checkout: `<workspace>/.local/stack.env`.
pub fn stack_env_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.local/stack.env")
        .components()
        .collect()
}

/// Loads `.local/stack.env` into the process environment, without
/// overriding variables already set. Call before any thread starts.
pub fn load() -> anyhow::Result<()> {
    let path = stack_env_file();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}. Start the local stack first: bash infra/local/dev up",
            path.display()
        )
    })?;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((name, value)) = line.split_once('=') {
            if std::env::var_os(name).is_none() {
                // Single-threaded at this point: nothing reads the environment concurrently.
                std::env::set_var(name, value);
            }
        }
    }
    Ok(())
}

pub fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .map_err(|_| anyhow::anyhow!("{name} is not set; run bash infra/local/dev up"))
}
