//! Problems found in a config: each names the config path, the rule, what is wrong and a fix.

use serde::Serialize;

/// One problem (or warning) with the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where in the config, e.g. `azure.vnet_cidr` or `tunnels.inside_cidrs[2]`.
    pub path: String,
    /// Stable rule id, e.g. `networks-overlap`.
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Every problem found in a config; planning fails when there is at least one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{} problem(s) in the config", errors.len())]
pub struct Problems {
    /// The problems, in the order the config file states them.
    pub errors: Vec<Problem>,
}

impl Problems {
    /// Records a problem.
    pub(crate) fn add(
        &mut self,
        path: impl Into<String>,
        rule: &'static str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.errors.push(Problem {
            path: path.into(),
            rule,
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The rule ids, for tests and summaries.
    pub fn rules(&self) -> Vec<&'static str> {
        self.errors.iter().map(|p| p.rule).collect()
    }
}
