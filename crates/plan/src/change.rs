//! How a resource in a cloud differs from its plan: the words `dxvpn diff` and `up` use.

use serde::Serialize;

/// One field whose value in the cloud differs from the plan's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Where, e.g. `tunnels[1].inside_cidr` or `.properties.bgpSettings.asn`.
    pub path: String,
    /// The cloud's value.
    pub from: String,
    /// The plan's value.
    pub to: String,
}

impl FieldChange {
    /// A field from `from` to `to`.
    pub fn new(path: impl Into<String>, from: impl ToString, to: impl ToString) -> Self {
        FieldChange {
            path: path.into(),
            from: from.to_string(),
            to: to.to_string(),
        }
    }

    /// A secret field that changes: neither value is ever shown.
    pub fn secret(path: impl Into<String>) -> Self {
        FieldChange {
            path: path.into(),
            from: "(secret)".into(),
            to: "(changed)".into(),
        }
    }
}

/// What a cloud holds of one planned resource, compared with the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// Not there.
    Missing,
    /// There, as planned.
    Same,
    /// There; these fields change in place.
    Update(Vec<FieldChange>),
    /// There, but the cloud cannot change `field` in place: a new resource is needed.
    Replace {
        /// The field that forces it.
        field: FieldChange,
        /// The cloud's rule, in words.
        rule: String,
    },
}
