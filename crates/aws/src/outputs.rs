//! Values resources produce (ids, addresses) and keys read back from AWS, by role.

use std::collections::BTreeMap;

use dxvpn_tunnel::psk::PresharedKey;

use crate::AwsError;

/// Outputs of the resources seen or made so far. Keys are kept apart and never printed.
#[derive(Clone, Default)]
pub struct Outputs {
    values: BTreeMap<(String, String), String>,
    keys: BTreeMap<(String, usize), PresharedKey>,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("values", &self.values)
            .field("keys", &format!("{} [REDACTED]", self.keys.len()))
            .finish()
    }
}

impl Outputs {
    /// Records output `output` of `role`.
    pub fn set(&mut self, role: &str, output: &str, value: &str) {
        self.values
            .insert((role.to_owned(), output.to_owned()), value.to_owned());
    }

    /// Output `output` of `role`, if known.
    pub fn get(&self, role: &str, output: &str) -> Option<&str> {
        self.values
            .get(&(role.to_owned(), output.to_owned()))
            .map(String::as_str)
    }

    /// The key of tunnel `index` (0 or 1) of VPN connection `role`, as AWS holds it.
    pub fn key(&self, role: &str, index: usize) -> Option<&PresharedKey> {
        self.keys.get(&(role.to_owned(), index))
    }

    pub(crate) fn set_key(&mut self, role: &str, index: usize, key: PresharedKey) {
        self.keys.insert((role.to_owned(), index), key);
    }

    pub(crate) fn forget(&mut self, role: &str) {
        self.values.retain(|(r, _), _| r != role);
        self.keys.retain(|(r, _), _| r != role);
    }

    pub(crate) fn need(&self, role: &str, from: &str, output: &str) -> Result<String, AwsError> {
        self.get(from, output)
            .map(str::to_owned)
            .ok_or_else(|| AwsError::MissingInput {
                role: role.to_owned(),
                from: from.to_owned(),
                output: output.to_owned(),
            })
    }
}
