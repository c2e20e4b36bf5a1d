//! "Bring your own device": the strongSwan or BIRD configuration a Linux box needs to stand in
//! for either cloud's side of a plan. The lab runs configurations from the same renderers.
//!
//! Values that exist only after `dxvpn up` (AWS tunnel outside addresses, new Azure public IPs)
//! are rendered as `%any`, and keys as a placeholder: keys are never printed.

use dxvpn_tunnel::render::{
    BgpRouter, BgpSession, IpsecConnection, bird_conf, swanctl_connections, swanctl_secrets,
};

use crate::model::{Cloud, Plan};

/// Output format of [`device_config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceFormat {
    /// `swanctl.conf` (connections and placeholder secrets).
    Strongswan,
    /// `bird.conf` (BGP over the tunnels' inside addresses).
    Bird,
}

/// The configuration of `side` of `plan` in `format`.
pub fn device_config(plan: &Plan, side: Cloud, format: DeviceFormat) -> String {
    let existing_ips = plan
        .azure
        .existing_gateway
        .as_ref()
        .map(|g| g.public_ips.clone())
        .unwrap_or_default();
    let azure_ip = |instance: usize| {
        existing_ips
            .get(instance)
            .map_or_else(|| "%any".to_owned(), ToString::to_string)
    };
    let header = format!(
        "# dxvpn {} side of deployment `{}` ({}), rendered by `dxvpn render`.\n# %any stands for a value known after `dxvpn up`; put each tunnel's key where the placeholder is.\n",
        side.as_str(),
        plan.name,
        plan.use_case.as_str()
    );
    match format {
        DeviceFormat::Strongswan => {
            let connections: Vec<IpsecConnection> = plan
                .tunnels
                .iter()
                .map(|t| match side {
                    Cloud::Aws => IpsecConnection {
                        name: t.key.clone(),
                        local_addr: "%any".into(),
                        local_id: "%any".into(),
                        remote_addr: azure_ip(t.pairing.azure_instance),
                        remote_id: azure_ip(t.pairing.azure_instance),
                        initiate: plan.ipsec_policy.aws_startup_action == "start",
                    },
                    Cloud::Azure => IpsecConnection {
                        name: t.key.clone(),
                        local_addr: "%any".into(),
                        local_id: azure_ip(t.pairing.azure_instance),
                        remote_addr: "%any".into(),
                        remote_id: "%any".into(),
                        initiate: false,
                    },
                })
                .collect();
            let mut out = header;
            out.push_str(&swanctl_connections(&connections, &plan.ipsec_policy));
            for c in &connections {
                out.push_str(&swanctl_secrets(
                    c,
                    &format!("pre-shared key of tunnel {}", c.name),
                ));
            }
            out
        }
        DeviceFormat::Bird => {
            let (asn, peer_asn, announce) = match side {
                Cloud::Aws => (plan.aws.asn, plan.azure.asn, plan.aws.vpc_cidr),
                Cloud::Azure => (plan.azure.asn, plan.aws.asn, plan.azure.vnet_cidr),
            };
            let tunnels: Vec<BgpSession> = plan
                .tunnels
                .iter()
                .map(|t| {
                    let (local_ip, peer_ip) = match side {
                        Cloud::Aws => (t.pairing.aws_inside_ip, t.pairing.azure_inside_ip),
                        Cloud::Azure => (t.pairing.azure_inside_ip, t.pairing.aws_inside_ip),
                    };
                    BgpSession {
                        name: t.key.clone(),
                        local_ip,
                        peer_ip,
                        peer_asn,
                        via: None,
                        passive: side == Cloud::Azure,
                    }
                })
                .collect();
            let router = BgpRouter {
                router_id: tunnels
                    .first()
                    .map_or(std::net::Ipv4Addr::LOCALHOST, |s| s.local_ip),
                asn,
                announce: vec![announce],
                tunnels,
                internal: vec![],
                hold_time: 30,
                keepalive_time: 10,
                install_routes: true,
            };
            header + &bird_conf(&router)
        }
    }
}
