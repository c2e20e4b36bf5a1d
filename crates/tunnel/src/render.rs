//! Device configuration for one end of a tunnel: strongSwan (`strongswan.conf`, `swanctl.conf`)
//! and BIRD 2 (`bird.conf`). The lab runs exactly these files; `dxvpn render` prints them so a
//! Linux box can stand in for either cloud.
//!
//! Secrets are rendered only by [`swanctl_secrets`], on purpose a separate function: the lab
//! loads keys into charon over VICI and never writes them to a file.

use std::fmt::Write;
use std::net::Ipv4Addr;

use dxvpn_cidr::Ipv4Net;

use crate::policy::IpsecPolicy;

/// One IKEv2 connection with a single route-based CHILD SA (0.0.0.0/0 both ways).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsecConnection {
    /// Connection name, e.g. `c1t1`.
    pub name: String,
    /// Local outside address to bind, or `%any`.
    pub local_addr: String,
    /// Local IKE identity (the public address the peer knows), or `%any`.
    pub local_id: String,
    /// Remote outside address, or `%any` to accept any.
    pub remote_addr: String,
    /// Remote IKE identity, or `%any`.
    pub remote_id: String,
    /// Whether this end brings the tunnel up (AWS `StartupAction=start`) or waits for the peer.
    pub initiate: bool,
}

/// `strongswan.conf` for a charon that runs kernel-libipsec (IPsec in user space, through a TUN
/// device) and listens for VICI on `vici_socket`.
///
/// The crypto plugins are strongSwan's own (aes, sha1, sha2, hmac, gmp), which Debian's
/// `libstrongswan` ships; `kdf` is required for IKEv2 PRFs. Routes are never installed by charon:
/// the tunnel is a wire, and BIRD decides where traffic goes.
pub fn strongswan_conf(vici_socket: &str, log_file: Option<&str>) -> String {
    let mut out = String::from(
        "charon {\n  load = random nonce aes sha1 sha2 hmac gmp kdf pem pkcs1 x509 revocation constraints pubkey kernel-libipsec kernel-netlink socket-default vici updown\n  install_routes = no\n  routing_table = 0\n  retransmit_timeout = 2.0\n  retransmit_tries = 3\n",
    );
    let _ = write!(
        out,
        "  plugins {{\n    vici {{\n      socket = unix://{vici_socket}\n    }}\n  }}\n"
    );
    if let Some(log) = log_file {
        let _ = write!(
            out,
            "  filelog {{\n    lab {{\n      path = {log}\n      default = 1\n      ike = 1\n      time_format = %F %T\n    }}\n  }}\n"
        );
    }
    out.push_str("}\n");
    out
}

/// `swanctl.conf` `connections` section; contains no secret.
pub fn swanctl_connections(connections: &[IpsecConnection], policy: &IpsecPolicy) -> String {
    let mut out = String::from("connections {\n");
    for c in connections {
        // One `key = value` per line: swanctl rejects several on one line.
        let _ = write!(
            out,
            "  {name} {{\n    version = 2\n    local_addrs = {local_addr}\n    remote_addrs = {remote_addr}\n    encap = yes\n    mobike = no\n    keyingtries = 0\n    proposals = {ike}\n    rekey_time = {ike_life}s\n    dpd_delay = {dpd_delay}s\n    local {{\n      auth = psk\n      id = {local_id}\n    }}\n    remote {{\n      auth = psk\n      id = {remote_id}\n    }}\n    children {{\n      {name} {{\n        local_ts = 0.0.0.0/0\n        remote_ts = 0.0.0.0/0\n        esp_proposals = {esp}\n        rekey_time = {esp_life}s\n        start_action = {start}\n        dpd_action = {dpd_action}\n        close_action = {dpd_action}\n      }}\n    }}\n  }}\n",
            name = c.name,
            local_addr = c.local_addr,
            remote_addr = c.remote_addr,
            local_id = c.local_id,
            remote_id = c.remote_id,
            ike = policy.strongswan_ike_proposal(),
            esp = policy.strongswan_esp_proposal(),
            ike_life = policy.phase1_lifetime_seconds,
            esp_life = policy.phase2_lifetime_seconds,
            // `keyingtries = 0`: the initiator tries again forever, as a cloud gateway does;
            // charon's default (one try) leaves a tunnel down for good after an outage
            // longer than its retransmissions (about 165 s).
            // DPD probes at a third of the timeout, so three missed probes mean dead.
            dpd_delay = (policy.dpd_timeout_seconds / 3).max(1),
            start = if c.initiate { "start" } else { "none" },
            dpd_action = if c.initiate { "restart" } else { "clear" },
        );
    }
    out.push_str("}\n");
    out
}

/// `swanctl.conf` `secrets` section binding `secret` to the two identities of a connection.
/// Only for output the user asked for: `secret` lands in the text as given.
pub fn swanctl_secrets(connection: &IpsecConnection, secret: &str) -> String {
    format!(
        "secrets {{\n  ike-{name} {{\n    id-local = {local}\n    id-remote = {remote}\n    secret = \"{secret}\"\n  }}\n}}\n",
        name = connection.name,
        local = connection.local_id,
        remote = connection.remote_id,
    )
}

/// A BGP session of a gateway router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSession {
    /// Protocol name, e.g. `c1t1` (`vpn` is a BIRD keyword: avoid it).
    pub name: String,
    /// Local address of the session (an inside address, or a transit address).
    pub local_ip: Ipv4Addr,
    /// Peer address.
    pub peer_ip: Ipv4Addr,
    /// The peer's ASN.
    pub peer_asn: u32,
    /// Where packets for `peer_ip` go: the tunnel endpoint in front of this router. BIRD
    /// resolves multihop neighbours from its own table only, so a static /32 is rendered.
    pub via: Option<Ipv4Addr>,
    /// Wait for the peer to connect (Azure never initiates BGP towards APIPA peers).
    pub passive: bool,
}

/// A gateway router: eBGP over the tunnels, optional iBGP towards the network behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpRouter {
    /// Router id (an address of this router).
    pub router_id: Ipv4Addr,
    /// Local ASN.
    pub asn: u32,
    /// Prefixes this gateway advertises over the tunnels (the VPC or VNet range).
    pub announce: Vec<Ipv4Net>,
    /// eBGP sessions over the tunnels.
    pub tunnels: Vec<BgpSession>,
    /// iBGP sessions that carry what the tunnels learned into the network (Azure's VNet fabric);
    /// sessions here export tunnel routes with this router as next hop.
    pub internal: Vec<BgpSession>,
    /// Hold time of the tunnel sessions (AWS: 30 s).
    pub hold_time: u16,
    /// Keepalive of the tunnel sessions (AWS: 10 s).
    pub keepalive_time: u16,
    /// Install the best BGP routes in the kernel, several equal paths as ECMP.
    pub install_routes: bool,
}

/// `bird.conf` for a gateway router.
///
/// Cloud VPN gateways speak eBGP only: a tunnel session whose peer ASN equals the local one is
/// rendered as `external` without an ASN, so BIRD refuses the peer's OPEN and the session stays
/// down, as AWS (`AsnConflict`) and Azure refuse it.
pub fn bird_conf(router: &BgpRouter) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "router id {};", router.router_id);
    out.push_str("protocol device {\n  scan time 5;\n}\n");
    if router.install_routes {
        out.push_str("protocol kernel {\n  ipv4 {\n    import none;\n    export where source = RTS_BGP;\n  };\n  merge paths on;\n}\n");
    }
    out.push_str("protocol static announce {\n  ipv4;\n");
    for prefix in &router.announce {
        let _ = writeln!(out, "  route {prefix} blackhole;");
    }
    out.push_str("}\n");
    let neighbours: Vec<&BgpSession> = router
        .tunnels
        .iter()
        .chain(&router.internal)
        .filter(|s| s.via.is_some())
        .collect();
    if !neighbours.is_empty() {
        out.push_str("protocol static neighbours {\n  ipv4;\n");
        for s in neighbours {
            if let Some(via) = s.via {
                let _ = writeln!(out, "  route {}/32 via {via};", s.peer_ip);
            }
        }
        out.push_str("}\n");
    }
    for s in &router.tunnels {
        let neighbor = if s.peer_asn == router.asn {
            format!("neighbor {} external", s.peer_ip)
        } else {
            format!("neighbor {} as {} external", s.peer_ip, s.peer_asn)
        };
        let _ = write!(
            out,
            "protocol bgp {name} {{\n  local {local} as {asn};\n  {neighbor};\n  multihop 8;\n  source address {local};\n  hold time {hold};\n  keepalive time {keepalive};\n  connect retry time 5;\n  error wait time 2, 16;\n{passive}  ipv4 {{\n    import all;\n    export where proto = \"announce\";\n  }};\n}}\n",
            name = s.name,
            local = s.local_ip,
            asn = router.asn,
            hold = router.hold_time,
            keepalive = router.keepalive_time,
            passive = if s.passive { "  passive on;\n" } else { "" },
        );
    }
    for s in &router.internal {
        let _ = write!(
            out,
            "protocol bgp {name} {{\n  local {local} as {asn};\n  neighbor {peer} as {peer_asn} internal;\n  direct;\n  hold time 9;\n  keepalive time 3;\n  connect retry time 2;\n  ipv4 {{\n    import all;\n    next hop self;\n    export where source = RTS_BGP;\n  }};\n}}\n",
            name = s.name,
            local = s.local_ip,
            asn = router.asn,
            peer = s.peer_ip,
            peer_asn = s.peer_asn,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> IpsecConnection {
        IpsecConnection {
            name: "c1t1".into(),
            local_addr: "198.18.1.1".into(),
            local_id: "198.18.1.1".into(),
            remote_addr: "198.18.2.1".into(),
            remote_id: "198.18.2.1".into(),
            initiate: true,
        }
    }

    #[test]
    fn swanctl_has_one_setting_per_line_and_no_secret() {
        let text = swanctl_connections(&[connection()], &IpsecPolicy::default());
        for line in text.lines() {
            assert!(line.matches(" = ").count() <= 1, "{line}");
        }
        assert!(
            text.contains("start_action = start")
                && text.contains("mobike = no")
                && text.contains("keyingtries = 0")
                && text.contains("encap = yes")
        );
        assert!(!text.contains("secret"));
    }

    #[test]
    fn equal_asns_render_an_ebgp_only_session() {
        let session = BgpSession {
            name: "c1t1".into(),
            local_ip: "169.254.21.1".parse().unwrap(),
            peer_ip: "169.254.21.2".parse().unwrap(),
            peer_asn: 64512,
            via: Some("100.127.0.2".parse().unwrap()),
            passive: false,
        };
        let router = BgpRouter {
            router_id: "169.254.21.1".parse().unwrap(),
            asn: 64512,
            announce: vec!["10.1.0.0/16".parse().unwrap()],
            tunnels: vec![session],
            internal: vec![],
            hold_time: 30,
            keepalive_time: 10,
            install_routes: true,
        };
        let text = bird_conf(&router);
        assert!(text.contains("neighbor 169.254.21.2 external;"), "{text}");
        assert!(text.contains("route 169.254.21.2/32 via 100.127.0.2;"));
        assert!(text.contains("route 10.1.0.0/16 blackhole;"));
    }
}
