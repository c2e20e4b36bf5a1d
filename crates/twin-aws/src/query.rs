//! The EC2 Query protocol's request side: flat `Name.N` lists, `Filter.N.Name` / `Filter.N.Value.M`
//! filters and `TagSpecification.N.Tag.M.Key` tags, from a form body or a query string.

use std::collections::BTreeMap;

/// Parameters of one request.
#[derive(Debug, Default)]
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a POST body or a GET query string).
    pub(crate) fn parse(text: &[u8]) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(text).unwrap_or_default();
        Params(pairs.into_iter().collect())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every parameter but `skip`, in one comparable text (a retry under the same idempotency
    /// token must repeat it).
    pub(crate) fn print_without(&self, skip: &str) -> String {
        let kept: Vec<_> = self.0.iter().filter(|(k, _)| *k != skip).collect();
        format!("{kept:?}")
    }

    /// `Name.1`, `Name.2`, ... in order.
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        (1..)
            .map_while(|i| self.0.get(&format!("{name}.{i}")).cloned())
            .collect()
    }

    /// Sub-parameters of list entry `name.i`, e.g. `Options.TunnelOptions.1.*`, with the prefix removed.
    pub(crate) fn entries(&self, name: &str) -> Vec<Params> {
        (1..)
            .map_while(|i| {
                let prefix = format!("{name}.{i}.");
                let sub: BTreeMap<String, String> = self
                    .0
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), v.clone())))
                    .collect();
                (!sub.is_empty()).then_some(Params(sub))
            })
            .collect()
    }

    /// Sub-parameters under `prefix.` (a structure member such as `TunnelOptions.*`), with the
    /// prefix removed.
    pub(crate) fn under(&self, prefix: &str) -> Params {
        let prefix = format!("{prefix}.");
        Params(
            self.0
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), v.clone())))
                .collect(),
        )
    }

    /// `Filter.N.Name` with its `Filter.N.Value.M`.
    pub(crate) fn filters(&self) -> Vec<(String, Vec<String>)> {
        self.entries("Filter")
            .into_iter()
            .filter_map(|f| Some((f.get("Name")?.to_owned(), f.list("Value"))))
            .collect()
    }

    /// Tags of `TagSpecification.N` (any resource type) or of `Tag.N` (CreateTags).
    pub(crate) fn tags(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        for spec in self.entries("TagSpecification") {
            for tag in spec.entries("Tag") {
                if let Some(key) = tag.get("Key") {
                    tags.insert(
                        key.to_owned(),
                        tag.0.get("Value").cloned().unwrap_or_default(),
                    );
                }
            }
        }
        for tag in self.entries("Tag") {
            if let Some(key) = tag.get("Key") {
                tags.insert(
                    key.to_owned(),
                    tag.0.get("Value").cloned().unwrap_or_default(),
                );
            }
        }
        tags
    }

    /// The `Value`s of an algorithm list such as `Phase1EncryptionAlgorithm.N.Value`.
    pub(crate) fn values(&self, name: &str) -> Vec<String> {
        self.entries(name)
            .iter()
            .filter_map(|e| e.get("Value").map(str::to_owned))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_filters_tags_and_tunnel_options() {
        let p = Params::parse(
            b"Action=DescribeVpnGateways&VpnGatewayId.1=vgw-1&VpnGatewayId.2=vgw-2&Filter.1.Name=tag%3Adxvpn%3Adeployment&Filter.1.Value.1=dx&TagSpecification.1.ResourceType=vpn-gateway&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=x&Options.TunnelOptions.2.TunnelInsideCidr=169.254.22.0%2F30&Options.TunnelOptions.2.IKEVersion.1.Value=ikev2",
        );
        assert_eq!(p.list("VpnGatewayId"), ["vgw-1", "vgw-2"]);
        assert_eq!(
            p.filters(),
            vec![("tag:dxvpn:deployment".to_owned(), vec!["dx".to_owned()])]
        );
        assert_eq!(p.tags().get("Name").map(String::as_str), Some("x"));
        let tunnels = p.entries("Options.TunnelOptions");
        assert_eq!(
            tunnels.len(),
            0,
            "entries start at 1: entry 2 alone is not a list"
        );
        let p = Params::parse(b"Options.TunnelOptions.1.TunnelInsideCidr=169.254.21.0%2F30&Options.TunnelOptions.1.IKEVersion.1.Value=ikev2");
        let tunnels = p.entries("Options.TunnelOptions");
        assert_eq!(tunnels[0].get("TunnelInsideCidr"), Some("169.254.21.0/30"));
        assert_eq!(tunnels[0].values("IKEVersion"), ["ikev2"]);
    }
}
