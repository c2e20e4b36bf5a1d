//! Building the namespaces, links, NAT, daemons and routers of a topology (the layout in the
//! parent module's docs).

use super::*;

/// The /30 number `n` of a transit range: (first host, second host).
pub(super) fn transit(base: [u8; 2], n: usize) -> (Ipv4Addr, Ipv4Addr) {
    let net = u32::from(Ipv4Addr::new(base[0], base[1], 0, 0)) + 4 * n as u32;
    (Ipv4Addr::from(net + 1), Ipv4Addr::from(net + 2))
}

/// Links from `inet` to tunnel ends.
pub(super) fn inet_link(n: usize) -> (Ipv4Addr, Ipv4Addr) {
    transit([100, 100], n)
}
/// Links from routers to tunnel ends.
pub(super) fn router_link(n: usize) -> (Ipv4Addr, Ipv4Addr) {
    transit([100, 127], n)
}
/// Links from Azure instances to the VNet fabric.
pub(super) fn fabric_link(i: usize) -> (Ipv4Addr, Ipv4Addr) {
    transit([100, 126], i)
}

pub(super) async fn ip(ns: &str, args: &[&str]) -> Result<String, NetlabError> {
    let mut full = vec!["ip", "-n", ns];
    full.extend_from_slice(args);
    run(&full).await
}

/// A gateway's BGP address on its loopback, and the route to its peer's through the end of
/// the tunnel at `via`.
pub(super) async fn add_bgp_address(
    ns: &str,
    local: Ipv4Addr,
    peer: Ipv4Addr,
    via: Ipv4Addr,
) -> Result<(), NetlabError> {
    ip(
        ns,
        &["addr", "replace", &format!("{local}/32"), "dev", "lo"],
    )
    .await?;
    let (peer, via) = (format!("{peer}/32"), via.to_string());
    ip(ns, &["route", "replace", &peer, "via", &via])
        .await
        .map(drop)
}

/// Undoes [`add_bgp_address`]; what is gone already is no error.
pub(super) async fn remove_bgp_address(ns: &str, local: Ipv4Addr, peer: Ipv4Addr) {
    let _ = ip(ns, &["addr", "del", &format!("{local}/32"), "dev", "lo"]).await;
    let _ = ip(ns, &["route", "del", &format!("{peer}/32")]).await;
}

/// A veth between two namespaces with an address on each end: (namespace, interface, address,
/// prefix length).
pub(super) async fn wire(
    lab: &LabRun,
    a: (&str, &str, Ipv4Addr, u8),
    b: (&str, &str, Ipv4Addr, u8),
) -> Result<(), NetlabError> {
    lab.link(a.0, a.1, b.0, b.1).await?;
    for (ns, interface, addr, len) in [a, b] {
        ip(
            ns,
            &["addr", "add", &format!("{addr}/{len}"), "dev", interface],
        )
        .await?;
    }
    Ok(())
}

/// A router namespace and a host namespace on `subnet` behind it (router on the first host).
pub(super) async fn router_and_host(
    lab: &LabRun,
    router: &str,
    host: &str,
    subnet: Ipv4Net,
    host_ip: Ipv4Addr,
) -> Result<(String, String), NetlabError> {
    let router_ns = lab.add_namespace(router).await?;
    let host_ns = lab.add_namespace(host).await?;
    let len = subnet.prefix_len();
    wire(
        lab,
        (&router_ns, "host", first_host(subnet), len),
        (&host_ns, "eth0", host_ip, len),
    )
    .await?;
    Ok((router_ns, host_ns))
}

pub(super) fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    nth_host(subnet, 1).unwrap_or(subnet.network())
}

/// An iBGP session between an Azure instance and the VNet fabric (directly connected).
pub(super) fn ibgp(name: &str, local_ip: Ipv4Addr, peer_ip: Ipv4Addr, asn: u32) -> BgpSession {
    BgpSession {
        name: name.to_owned(),
        local_ip,
        peer_ip,
        peer_asn: asn,
        via: None,
        passive: false,
    }
}

/// The namespaces and addresses of one tunnel's two ends.
pub(super) struct TunnelEnds {
    tunnel: crate::topology::LabTunnel,
    aws_ns: String,
    /// The AWS gateway's side of its link to the AWS end.
    vgw_ip: Ipv4Addr,
    az_ns: String,
    /// The Azure instance's side of its link to the Azure end.
    gw_ip: Ipv4Addr,
    /// The Azure end's outside address, behind the instance's public IP.
    az_private: Ipv4Addr,
    pip: Ipv4Addr,
}

/// A tunnel end's namespace forwards between the router and `ipsec0`. When there is no SA (or
/// no charon, hence no `ipsec0`), the blackhole keeps traffic for the other cloud from leaving in
/// clear through the default route to the internet. Rules sit before table 220. What the end
/// itself says to its own network (ICMP "fragmentation needed" when a packet does not fit
/// `ipsec0`, as a cloud's gateway answers) goes to the router, not to the internet.
pub(super) async fn wire_endpoint(
    ns: &str,
    router_ip: Ipv4Addr,
    own_network: Ipv4Net,
) -> Result<(), NetlabError> {
    ip(
        ns,
        &[
            "route",
            "add",
            &own_network.to_string(),
            "via",
            &router_ip.to_string(),
        ],
    )
    .await?;
    ip(
        ns,
        &[
            "rule", "add", "iif", "rtr", "lookup", "100", "priority", "100",
        ],
    )
    .await?;
    ip(
        ns,
        &["route", "add", "default", "dev", "ipsec0", "table", "100"],
    )
    .await?;
    ip(
        ns,
        &[
            "route",
            "add",
            "blackhole",
            "default",
            "metric",
            "4000",
            "table",
            "100",
        ],
    )
    .await?;
    ip(
        ns,
        &[
            "rule", "add", "iif", "ipsec0", "lookup", "101", "priority", "101",
        ],
    )
    .await?;
    ip(
        ns,
        &[
            "route",
            "add",
            "default",
            "via",
            &router_ip.to_string(),
            "table",
            "101",
        ],
    )
    .await?;
    Ok(())
}

impl DataPlane {
    pub(super) async fn build_all(&mut self) -> Result<(), NetlabError> {
        let t = self.topology.clone();
        let lab = &self.run;
        let inet = lab.add_namespace("inet").await?;
        run_with_input(
            &["ip", "netns", "exec", &inet, "nft", "-f", "-"],
            Some("table ip dxlab {\n  chain cut { type filter hook prerouting priority -300; policy accept; }\n  chain to_instances { type nat hook prerouting priority -100; policy accept; }\n  chain from_instances { type nat hook postrouting priority 100; policy accept; }\n}\n"),
        )
        .await?;

        // Gateways' routers and the hosts behind them.
        let (vgw, _) =
            router_and_host(lab, "aws-vgw", "aws-host", t.aws.host_subnet, t.aws.host_ip).await?;
        let (fabric, az_host) = router_and_host(
            lab,
            "az-vnet",
            "az-host",
            t.azure.host_subnet,
            t.azure.host_ip,
        )
        .await?;
        let az_gw_ip = first_host(t.azure.host_subnet);
        // Azure injects learned routes into the VNet itself: the host always points at the fabric.
        ip(
            &az_host,
            &["route", "add", "default", "via", &az_gw_ip.to_string()],
        )
        .await?;

        let mut instance_ns = Vec::new();
        for i in 0..t.azure_instances() {
            let gw = lab.add_namespace(&format!("az-gw{i}")).await?;
            let (gw_ip, fabric_ip) = fabric_link(i);
            wire(
                lab,
                (&gw, "fab", gw_ip, 30),
                (&fabric, &format!("gw{i}"), fabric_ip, 30),
            )
            .await?;
            ip(
                &gw,
                &[
                    "route",
                    "add",
                    &t.azure.vnet_cidr.to_string(),
                    "via",
                    &fabric_ip.to_string(),
                ],
            )
            .await?;
            instance_ns.push(gw);
        }

        // Tunnel ends: wiring, NAT, addresses.
        let mut ends = Vec::new();
        for (j, tunnel) in t.tunnels.iter().enumerate() {
            self.slots.insert(tunnel.key.clone(), j);
            let pip = t
                .azure
                .public_ips
                .get(tunnel.azure_instance)
                .copied()
                .ok_or_else(|| {
                    NetlabError::Topology(format!(
                        "{}: no Azure instance {}",
                        tunnel.key, tunnel.azure_instance
                    ))
                })?;
            let inet_if = |side: &str| format!("{side}-{}", tunnel.key);
            let router_if = format!("t-{}", tunnel.key);

            // AWS end: holds its public address itself.
            let aws_ns = lab.add_namespace(&format!("aws-{}", tunnel.key)).await?;
            let (inet_ip, ep_ip) = inet_link(2 * j);
            wire(
                lab,
                (&inet, &inet_if("a"), inet_ip, 30),
                (&aws_ns, "out", ep_ip, 30),
            )
            .await?;
            let public = tunnel.aws.outside_ip.to_string();
            ip(
                &inet,
                &[
                    "route",
                    "add",
                    &format!("{public}/32"),
                    "via",
                    &ep_ip.to_string(),
                ],
            )
            .await?;
            ip(
                &aws_ns,
                &["addr", "add", &format!("{public}/32"), "dev", "out"],
            )
            .await?;
            ip(
                &aws_ns,
                &[
                    "route",
                    "add",
                    "default",
                    "via",
                    &inet_ip.to_string(),
                    "src",
                    &public,
                ],
            )
            .await?;
            let (vgw_ip, aws_ep_ip) = router_link(2 * j);
            wire(
                lab,
                (&vgw, &router_if, vgw_ip, 30),
                (&aws_ns, "rtr", aws_ep_ip, 30),
            )
            .await?;
            // AWS takes the first host of its inside CIDR and expects the peer on the second.
            let (aws_local, aws_peer) = (
                aws_inside_ip(tunnel.aws.inside_cidr),
                azure_inside_ip(tunnel.aws.inside_cidr),
            );
            add_bgp_address(&vgw, aws_local, aws_peer, aws_ep_ip).await?;

            // Azure end: a private address behind the instance's public IP.
            let az_ns = lab.add_namespace(&format!("az-{}", tunnel.key)).await?;
            let (inet_ip, az_private) = inet_link(2 * j + 1);
            wire(
                lab,
                (&inet, &inet_if("z"), inet_ip, 30),
                (&az_ns, "out", az_private, 30),
            )
            .await?;
            ip(
                &az_ns,
                &["route", "add", "default", "via", &inet_ip.to_string()],
            )
            .await?;
            let nft = |chain: &'static str, rule: Vec<String>| {
                let mut args: Vec<String> = [
                    "ip", "netns", "exec", &inet, "nft", "add", "rule", "ip", "dxlab", chain,
                ]
                .map(String::from)
                .to_vec();
                args.extend(rule);
                async move { run(&args.iter().map(String::as_str).collect::<Vec<_>>()).await }
            };
            let words = |text: String| {
                text.split_whitespace()
                    .map(String::from)
                    .collect::<Vec<_>>()
            };
            nft(
                "to_instances",
                words(format!(
                    "ip saddr {public} ip daddr {pip} dnat to {az_private}"
                )),
            )
            .await?;
            nft(
                "from_instances",
                words(format!("ip saddr {az_private} snat to {pip}")),
            )
            .await?;
            let gw = &instance_ns[tunnel.azure_instance];
            let (gw_ip, az_ep_ip) = router_link(2 * j + 1);
            wire(
                lab,
                (gw, &router_if, gw_ip, 30),
                (&az_ns, "rtr", az_ep_ip, 30),
            )
            .await?;
            let (custom, peer) = (tunnel.azure.custom_bgp_ip, tunnel.azure.peer_bgp_ip);
            add_bgp_address(gw, custom, peer, az_ep_ip).await?;

            ends.push(TunnelEnds {
                tunnel: tunnel.clone(),
                aws_ns,
                vgw_ip,
                az_ns,
                gw_ip,
                az_private,
                pip,
            });
        }
        self.set_route_propagation(t.aws.route_propagation).await?;

        // Daemons: every charon, then their keys and connections (responders first), then BIRD.
        for end in &ends {
            for (ns, router_ip, own_network) in [
                (&end.aws_ns, end.vgw_ip, t.aws.vpc_cidr),
                (&end.az_ns, end.gw_ip, t.azure.vnet_cidr),
            ] {
                let dir = self.role_dir(ns)?;
                let charon = Charon::start(&self.run, ns, &dir, &mut self.children).await?;
                wire_endpoint(ns, router_ip, own_network).await?;
                self.charons.insert(ns.clone(), charon);
            }
        }
        let policy = IpsecPolicy::default();
        for end in &ends {
            let tunnel = &end.tunnel;
            let azure_end = IpsecConnection {
                name: tunnel.key.clone(),
                local_addr: end.az_private.to_string(),
                local_id: end.pip.to_string(),
                remote_addr: tunnel.azure.peer_outside_ip.to_string(),
                remote_id: tunnel.azure.peer_outside_ip.to_string(),
                initiate: false,
            };
            let aws_end = IpsecConnection {
                name: tunnel.key.clone(),
                local_addr: tunnel.aws.outside_ip.to_string(),
                local_id: tunnel.aws.outside_ip.to_string(),
                remote_addr: tunnel.aws.customer_gateway_ip.to_string(),
                remote_id: tunnel.aws.customer_gateway_ip.to_string(),
                initiate: true,
            };
            for (ns, connection, psk) in [
                (&end.az_ns, &azure_end, &tunnel.azure.psk),
                (&end.aws_ns, &aws_end, &tunnel.aws.psk),
            ] {
                let charon = &self.charons[ns.as_str()];
                charon
                    .load_psk(
                        &connection.name,
                        [&connection.local_id, &connection.remote_id],
                        psk,
                    )
                    .await?;
                let conf = charon.vici.with_file_name("swanctl.conf");
                let text = swanctl_connections(std::slice::from_ref(connection), &policy);
                crate::private_dir::write_private(&conf, text)?;
                charon.load_connections(&conf).await?;
            }
        }

        // BIRD: the AWS gateway, each Azure instance, the VNet fabric.
        self.aws_router_id = ends.first().map_or(Ipv4Addr::new(169, 254, 21, 1), |e| {
            aws_inside_ip(e.tunnel.aws.inside_cidr)
        });
        let aws_router = self.aws_router();
        self.start_bird(&vgw, &aws_router).await?;
        for (i, gw) in instance_ns.iter().enumerate() {
            let router = self.instance_router(i);
            self.start_bird(gw, &router).await?;
        }
        let fabric_router = BgpRouter {
            router_id: fabric_link(0).1,
            asn: t.azure.asn,
            announce: vec![],
            tunnels: vec![],
            internal: (0..t.azure_instances())
                .map(|i| {
                    ibgp(
                        &format!("gw{i}"),
                        fabric_link(i).1,
                        fabric_link(i).0,
                        t.azure.asn,
                    )
                })
                .collect(),
            hold_time: AWS_HOLD_TIME,
            keepalive_time: AWS_KEEPALIVE,
            install_routes: true,
        };
        self.start_bird(&fabric, &fabric_router).await
    }

    /// The AWS gateway's BGP router: a session over each tunnel of the topology.
    pub(super) fn aws_router(&self) -> BgpRouter {
        let t = &self.topology;
        BgpRouter {
            router_id: self.aws_router_id,
            asn: t.aws.asn,
            announce: vec![t.aws.vpc_cidr],
            tunnels: t
                .tunnels
                .iter()
                .map(|tunnel| BgpSession {
                    name: tunnel.key.clone(),
                    local_ip: aws_inside_ip(tunnel.aws.inside_cidr),
                    peer_ip: azure_inside_ip(tunnel.aws.inside_cidr),
                    peer_asn: tunnel.aws.customer_gateway_asn,
                    via: Some(router_link(2 * self.slot(&tunnel.key)).1),
                    passive: false,
                })
                .collect(),
            internal: vec![],
            hold_time: AWS_HOLD_TIME,
            keepalive_time: AWS_KEEPALIVE,
            install_routes: true,
        }
    }

    /// Azure instance `i`'s BGP router: its tunnels, and iBGP to the VNet fabric.
    pub(super) fn instance_router(&self, i: usize) -> BgpRouter {
        let t = &self.topology;
        let (gw_ip, fabric_ip) = fabric_link(i);
        BgpRouter {
            router_id: gw_ip,
            asn: t.azure.asn,
            announce: vec![t.azure.vnet_cidr],
            tunnels: t
                .tunnels
                .iter()
                .filter(|tunnel| tunnel.azure_instance == i)
                .map(|tunnel| BgpSession {
                    name: tunnel.key.clone(),
                    local_ip: tunnel.azure.custom_bgp_ip,
                    peer_ip: tunnel.azure.peer_bgp_ip,
                    peer_asn: tunnel.azure.peer_asn,
                    via: Some(router_link(2 * self.slot(&tunnel.key) + 1).1),
                    // Azure does not initiate BGP towards APIPA peers: AWS must.
                    passive: true,
                })
                .collect(),
            internal: vec![ibgp("fabric", gw_ip, fabric_ip, t.azure.asn)],
            hold_time: AWS_HOLD_TIME,
            keepalive_time: AWS_KEEPALIVE,
            install_routes: true,
        }
    }

    /// The wiring slot of tunnel `key`: its links' addresses (`inet_link`, `router_link`).
    pub(super) fn slot(&self, key: &str) -> usize {
        self.slots.get(key).copied().unwrap_or_default()
    }

    /// The run-directory folder of namespace `ns` (its role), created if needed.
    pub(super) fn role_dir(&self, ns: &str) -> Result<std::path::PathBuf, NetlabError> {
        let dir = self
            .run
            .dir()
            .join(ns.trim_start_matches(&format!("{}-", self.run.prefix())));
        crate::private_dir::private_dir(&dir)?;
        Ok(dir)
    }

    pub(super) async fn start_bird(
        &mut self,
        ns: &str,
        router: &BgpRouter,
    ) -> Result<(), NetlabError> {
        let dir = self.role_dir(ns)?;
        let bird = Bird::start(&self.run, ns, &dir, &bird_conf(router), &mut self.children).await?;
        self.birds.insert(ns.to_owned(), bird);
        Ok(())
    }
}
