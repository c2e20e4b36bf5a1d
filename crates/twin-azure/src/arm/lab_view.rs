//! What the lab reads of ARM (the gateway and its connections with keys, in memory only), and the
//! tamper test hook.

use dxvpn_twin_kit::faults::Tamper;
use dxvpn_twin_kit::views::AzureView;

use super::*;

impl Arm {
    /// The gateway and its connections as Azure holds them, keys included, for the lab's data
    /// plane (in memory only). Only provisioned resources count: a gateway still `Updating` has
    /// no tunnels yet.
    pub(crate) fn lab_view(&mut self) -> AzureView {
        use dxvpn_twin_kit::views::{AzureConnectionView, AzureGatewayView, AzureInstanceView};
        self.sweep();
        fn ipv4<T: std::str::FromStr>(v: Option<&Value>) -> Option<T> {
            v.and_then(Value::as_str).and_then(|s| s.parse().ok())
        }
        let mut view = AzureView::default();
        let vnet_id = self.seeded.vnet_id.clone();
        if let Some(vnet) = self.live(&vnet_id) {
            view.vnet_cidr = ipv4(vnet.props().pointer("/addressSpace/addressPrefixes/0"));
            // The host lives in a seeded workload subnet, not one a deployment adds (DNS).
            view.host_subnet = self
                .children_of(&vnet_id, Kind::Subnet)
                .filter(|s| !s.name().eq_ignore_ascii_case("GatewaySubnet"))
                .filter(|s| self.seed_ids.contains(&key_of(&s.id)))
                .find_map(|s| ipv4(s.props().get("addressPrefix")));
        }
        view.vms = self.running_vms();
        view.host_filter = self.host_filter();
        let Some(gateway) = self.all_live(Kind::Gateway).find(|g| g.serving()) else {
            return view;
        };
        let instances = gateway_custom_addresses(gateway)
            .into_iter()
            .zip(
                gateway
                    .props()
                    .get("ipConfigurations")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            )
            .filter_map(|((id, apipa), config)| {
                let pip = self.live(ref_id(config.pointer("/properties/publicIPAddress"))?)?;
                Some(AzureInstanceView {
                    ip_configuration_id: key_of(&id),
                    public_ip: pip.ip?,
                    apipa,
                })
            })
            .collect();
        view.gateway = Some(AzureGatewayView {
            asn: gateway
                .props()
                .pointer("/bgpSettings/asn")
                .and_then(Value::as_u64)
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(0),
            instances,
        });
        let gateway_key = key_of(&gateway.id);
        view.connections = self
            .all_live(Kind::Connection)
            .filter(|c| c.phase() == Phase::Succeeded)
            .filter(|c| {
                ref_id(c.props().get("virtualNetworkGateway1")).map(key_of)
                    == Some(gateway_key.clone())
            })
            .filter_map(|c| {
                let lng = self.live(ref_id(c.props().get("localNetworkGateway2"))?)?;
                let lp = lng.props();
                Some(AzureConnectionView {
                    name: c.name().to_owned(),
                    peer_outside_ip: ipv4(lp.get("gatewayIpAddress"))?,
                    peer_bgp_ip: ipv4(lp.pointer("/bgpSettings/bgpPeeringAddress")),
                    peer_asn: lp
                        .pointer("/bgpSettings/asn")
                        .and_then(Value::as_u64)
                        .and_then(|a| u32::try_from(a).ok())
                        .unwrap_or(0),
                    psk: self
                        .keys
                        .get(&key_of(&c.id))
                        .and_then(|k| dxvpn_tunnel::psk::PresharedKey::parse(k).ok()),
                    custom_bgp: c
                        .props()
                        .get("gatewayCustomBgpIpAddresses")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|a| {
                            Some((
                                key_of(a.get("ipConfigurationId")?.as_str()?),
                                ipv4(a.get("customBgpIpAddress"))?,
                            ))
                        })
                        .collect(),
                })
            })
            .collect();
        view
    }

    /// Test hook: Azure now holds another key for the connection to this AWS tunnel, or expects
    /// another ASN from its peer. False when no live connection points at that address.
    pub(crate) fn tamper(&mut self, tamper: &Tamper) -> bool {
        let ip = tamper.outside_ip().to_string();
        let found = self.all_live(Kind::Connection).find_map(|c| {
            let lng = self.live(ref_id(c.props().get("localNetworkGateway2"))?)?;
            (lng.prop_str("gatewayIpAddress") == Some(ip.as_str()))
                .then(|| (key_of(&c.id), key_of(&lng.id)))
        });
        let Some((connection, lng)) = found else {
            return false;
        };
        match tamper {
            Tamper::Psk { .. } => {
                let key = dxvpn_tunnel::psk::PresharedKey::generate();
                self.keys.insert(connection, key.expose().to_owned());
            }
            Tamper::PeerAsn { asn, .. } => {
                if let Some(settings) = self
                    .records
                    .get_mut(&lng)
                    .and_then(|r| r.body.get_mut("properties"))
                    .and_then(|p| p.get_mut("bgpSettings"))
                    .and_then(Value::as_object_mut)
                {
                    settings.insert("asn".into(), json!(asn));
                }
            }
        }
        true
    }
}
