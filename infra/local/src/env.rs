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
    load_from(&stack_env_file())
        .map_err(|e| anyhow::anyhow!("{e}. Start the local stack first: bash infra/local/dev up"))
}

/// Loads another stack's environment, as [`load`] does: a deployed stack's
/// is a function's variables, the JSON object that `aws lambda
/// get-function-configuration --query Environment.Variables` prints.
pub fn load_from(path: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let vars = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for (name, value) in vars {
        if std::env::var_os(&name).is_none() {
            // Single-threaded at this point: nothing reads the environment concurrently.
            std::env::set_var(name, value);
        }
    }
    Ok(())
}

/// `NAME=value` lines (blank lines and `#` comments skipped), or a JSON
/// object of names to string values.
pub fn parse(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    if text.trim_start().starts_with('{') {
        let vars: std::collections::BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("not a JSON object of names to strings: {e}"))?;
        return Ok(vars.into_iter().collect());
    }
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(number, line)| {
            line.split_once('=')
                .filter(|(name, _)| !name.is_empty())
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("line {number} is not NAME=value: {line:?}"))
        })
        .collect()
}

pub fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .map_err(|_| anyhow::anyhow!("{name} is not set; run bash infra/local/dev up"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_name_value_lines_and_skips_comments() {
        let text = "# the stack\nLOYALTY_BUCKET=b\n\n  AWS_REGION=eu-west-3  \nX=a=b\n";
        assert_eq!(
            parse(text).unwrap(),
            pairs(&[
                ("LOYALTY_BUCKET", "b"),
                ("AWS_REGION", "eu-west-3"),
                ("X", "a=b")
            ])
        );
    }

    #[test]
    fn reads_a_functions_variables_as_the_aws_cli_prints_them() {
        let text = r#"{
    "LOYALTY_TENANTS_TABLE": "loyalty-tenants",
    "LOYALTY_STALL_SECONDS": "3600"
}"#;
        assert_eq!(
            parse(text).unwrap(),
            pairs(&[
                ("LOYALTY_STALL_SECONDS", "3600"),
                ("LOYALTY_TENANTS_TABLE", "loyalty-tenants")
            ])
        );
    }

    #[test]
    fn a_line_without_a_name_and_a_value_is_refused_with_its_number() {
        let err = parse("A=1\nnot a setting\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(parse("=1").is_err());
        let err = parse(r#"{"A": 1}"#).unwrap_err().to_string();
        assert!(err.contains("JSON object"), "{err}");
    }
}
