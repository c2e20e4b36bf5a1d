//! Values resources produce at `up` (ids, addresses) and pre-shared keys read back from the
//! clouds, by role: what one cloud's resources hand to the other's.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use dxvpn_tunnel::psk::PresharedKey;

use crate::model::Deferred;

/// An input a resource needs is not known yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{role}: needs `{output}` of {from}, which is not known yet")]
pub struct MissingInput {
    /// Role key of the resource that needs it.
    pub role: String,
    /// The resource that produces it.
    pub from: String,
    /// The output.
    pub output: String,
}

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

    /// Records the key of tunnel `index` of VPN connection `role`.
    pub fn set_key(&mut self, role: &str, index: usize, key: PresharedKey) {
        self.keys.insert((role.to_owned(), index), key);
    }

    /// Takes in everything `other` knows (what one resource's work added to a copy of these).
    pub fn absorb(&mut self, other: Outputs) {
        self.values.extend(other.values);
        self.keys.extend(other.keys);
    }

    /// Forgets everything known of `role` (it was deleted).
    pub fn forget(&mut self, role: &str) {
        self.values.retain(|(r, _), _| r != role);
        self.keys.retain(|(r, _), _| r != role);
    }

    /// Output `output` of `from`, which `role` needs.
    pub fn need(&self, role: &str, from: &str, output: &str) -> Result<String, MissingInput> {
        self.get(from, output)
            .map(str::to_owned)
            .ok_or_else(|| MissingInput {
                role: role.to_owned(),
                from: from.to_owned(),
                output: output.to_owned(),
            })
    }

    /// A planned address, resolved against the outputs known so far.
    pub fn resolve_ip(
        &self,
        role: &str,
        value: &Deferred<Ipv4Addr>,
    ) -> Result<Ipv4Addr, MissingInput> {
        match value {
            Deferred::Known(ip) => Ok(*ip),
            Deferred::After { from, output } => {
                self.need(role, from, output)?
                    .parse()
                    .map_err(|_| MissingInput {
                        role: role.to_owned(),
                        from: from.clone(),
                        output: (*output).to_owned(),
                    })
            }
        }
    }

    /// Planned addresses (a list output is comma-separated), resolved against the outputs.
    pub fn resolve_ips(
        &self,
        role: &str,
        value: &Deferred<Vec<Ipv4Addr>>,
    ) -> Result<Vec<Ipv4Addr>, MissingInput> {
        match value {
            Deferred::Known(ips) => Ok(ips.clone()),
            Deferred::After { from, output } => {
                let missing = || MissingInput {
                    role: role.to_owned(),
                    from: from.clone(),
                    output: (*output).to_owned(),
                };
                let text = self.need(role, from, output)?;
                let ips = text
                    .split(',')
                    .map(|ip| ip.trim().parse().map_err(|_| missing()))
                    .collect::<Result<Vec<Ipv4Addr>, _>>()?;
                if ips.is_empty() {
                    return Err(missing());
                }
                Ok(ips)
            }
        }
    }
}
