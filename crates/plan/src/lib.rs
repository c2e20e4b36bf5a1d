//! The dxvpn config file and the validated plan made from it.
//!
//! This crate owns the config contract (TOML, unknown keys are errors), every check that can be
//! made before touching a cloud (reported all at once, each with its config path, rule and fix),
//! and the [`Plan`]: every resource of both clouds with its role key, tags, attributes and data
//! dependencies, the tunnels, the DNS forwarding in each direction, and a monthly cost estimate.
//! It is pure: no I/O, no clock, no randomness; the same config always gives the same plan.
//!
//! ```
//! let config = r#"
//! name = "dx-dev"
//! use_case = "development"
//! [aws]
//! region = "eu-south-1"
//! vpc_id = "vpc-0123456789abcdef0"
//! vpc_cidr = "10.1.0.0/16"
//! route_table_ids = ["rtb-0123456789abcdef0"]
//! [azure]
//! subscription_id = "00000000-0000-0000-0000-000000000000"
//! resource_group = "dx-rg"
//! location = "italynorth"
//! vnet_name = "dx-vnet"
//! vnet_cidr = "10.51.0.0/16"
//! gateway_subnet_cidr = "10.51.255.0/27"
//! "#;
//! let plan = dxvpn_plan::plan_from_toml(config).unwrap();
//! assert_eq!(plan.tunnels.len(), 2);
//! assert!(plan.resources.iter().any(|r| r.role == "aws.vpn_connection.0"));
//!
//! let bad = config.replace("10.51.0.0/16", "10.1.128.0/17");
//! let problems = dxvpn_plan::plan_from_toml(&bad).unwrap_err();
//! assert_eq!(problems.errors[0].path, "azure.vnet_cidr");
//! ```

mod build;
pub mod change;
pub mod config;
pub mod cost;
pub mod device;
pub mod forwarder_host;
pub mod graph;
pub mod model;
pub mod outputs;
pub mod problem;
pub mod schema;
mod validate;

pub use change::{Drift, FieldChange};
pub use config::Config;
pub use model::{Cloud, Plan, Resource, Spec};
pub use outputs::{MissingInput, Outputs};
pub use problem::{Problem, Problems};
pub use validate::is_dns_name;

/// Parses and validates a config file's text, then plans it.
pub fn plan_from_toml(text: &str) -> Result<Plan, Problems> {
    plan(parse_config(text)?)
}

/// Validates a parsed config and plans it.
pub fn plan(config: Config) -> Result<Plan, Problems> {
    validate::check(config).map(build::build)
}

/// Parses a config file's text: TOML syntax and the shape of the contract (keys and types).
pub fn parse_config(text: &str) -> Result<Config, Problems> {
    let mut problems = Problems::default();
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            let at = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            problems.add(
                format!("line {}, column {}", at.0, at.1),
                "toml-syntax",
                e.message().to_owned(),
                "fix the TOML syntax at that place (strings in double quotes, tables as [name])",
            );
            return Err(problems);
        }
    };
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        // Values deserialized from toml carry a second line naming the key again; keep the first.
        let message = e
            .inner()
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let (path, rule, hint) = if let Some(field) = between_backticks(&message, "missing field `")
        {
            let path = if path == "." {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            (
                path,
                "required",
                "add this key; see the config reference in README.md".to_owned(),
            )
        } else if let Some(key) = between_backticks(&message, "unknown field `") {
            let allowed: Vec<&str> = message.split('`').skip(3).step_by(2).collect();
            let closest = allowed
                .iter()
                .min_by_key(|a| strsim::levenshtein(key, a))
                .filter(|a| strsim::levenshtein(key, a) <= 3);
            let hint = match closest {
                Some(near) => format!(
                    "did you mean `{near}`? Keys allowed here: {}",
                    allowed.join(", ")
                ),
                None => format!(
                    "remove the key or fix its spelling; keys allowed here: {}",
                    allowed.join(", ")
                ),
            };
            let message = format!("unknown key `{key}`");
            problems.add(path, "unknown-key", message, hint);
            return problems;
        } else if message.starts_with("unknown variant") {
            (
                path,
                "enum-value",
                "use one of the values the message lists".to_owned(),
            )
        } else {
            (
                path,
                "type",
                "give a value of the expected type; see the config reference in README.md"
                    .to_owned(),
            )
        };
        // Say "a whole number" and "a list", not Rust's type names.
        let message = message
            .replace("i64", "a whole number")
            .replace("f64", "a number")
            .replace("a sequence", "a list");
        let message = if config::is_secret_path(&path) {
            without_the_value(&message)
        } else {
            message
        };
        problems.add(path, rule, message, hint);
        problems
    })
}

/// Serde's type and value errors quote what they found (`invalid type: string "...", expected a
/// list`); for a field that holds a secret only the expectation is kept.
fn without_the_value(message: &str) -> String {
    match message.split_once(", expected ") {
        Some((_, expected)) => {
            format!(
                "wrong type or value (not shown: this field holds a secret), expected {expected}"
            )
        }
        None => "wrong type or value (not shown: this field holds a secret)".to_owned(),
    }
}

fn between_backticks<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // `get` rather than slicing: an offset inside a multi-byte character must not panic.
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
