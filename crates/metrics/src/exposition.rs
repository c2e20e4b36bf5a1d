//! One reading of both clouds, written as a Prometheus exposition (OpenMetrics or the classic
//! text format) by prometheus-client. Pure: no I/O, no clock.

use std::sync::atomic::AtomicU64;

use dxvpn_deploy::Status;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::Reading;

/// The exposition format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0, which Prometheus asks for first.
    OpenMetrics,
    /// The classic text format 0.0.4, for anything that does not ask for OpenMetrics (curl,
    /// `promtool check metrics`).
    Text,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it, the text format otherwise (what the
    /// exposition formats document as the fallback).
    pub fn negotiate(accept: Option<&str>) -> Self {
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// One tunnel as one cloud reports it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TunnelLabels {
    deployment: String,
    /// `aws` or `azure`: whose report this is.
    cloud: String,
    /// AWS: the VPN connection id; Azure: the connection's name.
    connection: String,
    /// `c1t1`, ...: the plan's tunnel key, the same in both clouds' series.
    tunnel: String,
    /// AWS's outside address of the tunnel (Azure's local network gateway points at it).
    outside_ip: String,
}

/// One direction of one tunnel as one cloud counts it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    deployment: String,
    cloud: String,
    connection: String,
    tunnel: String,
    outside_ip: String,
    /// `in`: received by that cloud's end; `out`: sent by it.
    direction: String,
}

/// Pings from where the exporter runs to one validate target.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    deployment: String,
    /// `aws`, `azure` or `here`.
    from: String,
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    deployment: String,
    tunnel: String,
    outside_ip: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteTableLabels {
    deployment: String,
    route_table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    deployment: String,
    cloud: String,
    address: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    deployment: String,
}

/// The families of one exposition, registered once per scrape: a tunnel that left the plan
/// leaves the exposition with it, and Prometheus marks its series stale.
#[derive(Default)]
struct Families {
    tunnel_up: Family<TunnelLabels, Gauge>,
    bgp_up: Family<TunnelLabels, Gauge>,
    routes: Family<TunnelLabels, Gauge>,
    bytes: Family<BytesLabels, Counter<f64, AtomicU64>>,
    traffic_success: Family<DeploymentLabels, Gauge>,
    probe_loss: Family<ProbeLabels, Gauge<f64, AtomicU64>>,
    probe_rtt: Family<ProbeLabels, Gauge<f64, AtomicU64>>,
    healthy: Family<HealthLabels, Gauge>,
    propagation: Family<RouteTableLabels, Gauge>,
    host_up: Family<HostLabels, Gauge>,
    read_success: Family<DeploymentLabels, Gauge>,
    read_duration: Family<DeploymentLabels, Gauge<f64, AtomicU64>>,
}

impl Families {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "dxvpn_tunnel_up",
            "1 when the cloud reports the tunnel up: AWS vgwTelemetry UP, Azure connectionStatus Connected",
            self.tunnel_up.clone(),
        );
        registry.register(
            "dxvpn_tunnel_bgp_up",
            "1 when the cloud reports the tunnel's BGP session established: AWS reports a BGP tunnel UP only then, Azure's BGP peer status Connected",
            self.bgp_up.clone(),
        );
        registry.register(
            "dxvpn_bgp_routes_received",
            "Routes the cloud's gateway received over the tunnel: AWS accepted routes, Azure routes received from the peer",
            self.routes.clone(),
        );
        registry.register_with_unit(
            "dxvpn_tunnel",
            "Bytes through the tunnel as the cloud counts them (AWS/VPN TunnelDataIn/TunnelDataOut, Azure TunnelIngressBytes/TunnelEgressBytes): direction in is what that cloud's end received, out what it sent",
            Unit::Bytes,
            self.bytes.clone(),
        );
        registry.register(
            "dxvpn_traffic_read_success",
            "1 when both clouds' traffic metrics were read; 0 leaves the byte counters of the cloud that failed out",
            self.traffic_success.clone(),
        );
        registry.register(
            "dxvpn_probe_loss_ratio",
            "Share of the echo requests to the validate target that got no reply in the last reading (dxvpn metrics --from)",
            self.probe_loss.clone(),
        );
        registry.register_with_unit(
            "dxvpn_probe_rtt",
            "Average round trip of the replies from the validate target in the last reading; absent without replies",
            Unit::Seconds,
            self.probe_rtt.clone(),
        );
        registry.register(
            "dxvpn_tunnel_healthy",
            "1 when the tunnel carries traffic as dxvpn status judges it: up in both clouds, BGP connected, routes learned both ways",
            self.healthy.clone(),
        );
        registry.register(
            "dxvpn_route_propagation",
            "1 when the route table propagates the VPN gateway's routes",
            self.propagation.clone(),
        );
        registry.register(
            "dxvpn_forwarder_host_up",
            "1 when the DNS forwarder host dxvpn created runs, as its cloud reports it",
            self.host_up.clone(),
        );
        registry.register(
            "dxvpn_read_success",
            "1 when both clouds answered the last reading; 0 leaves every other series out",
            self.read_success.clone(),
        );
        registry.register_with_unit(
            "dxvpn_read_duration",
            "How long the last reading of both clouds took",
            Unit::Seconds,
            self.read_duration.clone(),
        );
    }

    fn fill(&self, deployment: &str, status: &Status) {
        let bit = |b: bool| i64::from(b);
        for t in &status.tunnels {
            let labels = |cloud: &str, connection: &str| TunnelLabels {
                deployment: deployment.to_owned(),
                cloud: cloud.to_owned(),
                connection: connection.to_owned(),
                tunnel: t.key.clone(),
                outside_ip: t.outside_ip.clone(),
            };
            let aws = labels("aws", &t.aws_connection);
            let azure = labels("azure", &t.azure_connection);
            let aws_up = t.aws_status == "UP";
            self.tunnel_up.get_or_create(&aws).set(bit(aws_up));
            self.tunnel_up
                .get_or_create(&azure)
                .set(bit(t.azure_status == "Connected"));
            // AWS/VPN TunnelState: "for BGP tunnels, 1 means the session is established".
            self.bgp_up.get_or_create(&aws).set(bit(aws_up));
            self.bgp_up
                .get_or_create(&azure)
                .set(bit(t.bgp_state == "Connected"));
            self.routes
                .get_or_create(&aws)
                .set(i64::from(t.aws_accepted_routes));
            self.routes.get_or_create(&azure).set(t.bgp_routes_received);
            self.healthy
                .get_or_create(&HealthLabels {
                    deployment: deployment.to_owned(),
                    tunnel: t.key.clone(),
                    outside_ip: t.outside_ip.clone(),
                })
                .set(bit(t.up));
        }
        for p in &status.route_propagation {
            self.propagation
                .get_or_create(&RouteTableLabels {
                    deployment: deployment.to_owned(),
                    route_table: p.route_table_id.clone(),
                })
                .set(bit(p.propagates));
        }
        let host = |cloud: &str, address: &str, running: bool| {
            self.host_up
                .get_or_create(&HostLabels {
                    deployment: deployment.to_owned(),
                    cloud: cloud.to_owned(),
                    address: address.to_owned(),
                })
                .set(bit(running));
        };
        if let Some(h) = &status.forwarder_host {
            host("aws", &h.ip, h.running());
        }
        if let Some(h) = &status.azure_forwarder_host {
            host("azure", &h.ip, h.vm.as_ref().is_some_and(|vm| vm.running()));
        }
    }
}

/// The exposition of `reading` for deployment `deployment`, in `format`.
pub fn encode(deployment: &str, reading: &Reading, format: Format) -> String {
    let families = Families::default();
    let mut registry = Registry::default();
    families.register(&mut registry);
    let labels = DeploymentLabels {
        deployment: deployment.to_owned(),
    };
    families
        .read_duration
        .get_or_create(&labels)
        .set(reading.took.as_secs_f64());
    families
        .read_success
        .get_or_create(&labels)
        .set(i64::from(reading.status.is_ok()));
    for p in &reading.probes {
        let labels = ProbeLabels {
            deployment: deployment.to_owned(),
            from: p.from.clone(),
            target: p.target.clone(),
        };
        let lost = f64::from(p.sent.saturating_sub(p.received)) / f64::from(p.sent.max(1));
        families.probe_loss.get_or_create(&labels).set(lost);
        if let Some(rtt) = p.rtt_seconds {
            families.probe_rtt.get_or_create(&labels).set(rtt);
        }
    }
    if let Ok(status) = &reading.status {
        families.fill(deployment, status);
        families
            .traffic_success
            .get_or_create(&labels)
            .set(i64::from(reading.traffic_errors.is_empty()));
        for b in &reading.bytes {
            families
                .bytes
                .get_or_create(&BytesLabels {
                    deployment: deployment.to_owned(),
                    cloud: b.key.cloud.clone(),
                    connection: b.key.connection.clone(),
                    tunnel: b.key.tunnel.clone(),
                    outside_ip: b.key.outside_ip.clone(),
                    direction: b.key.direction.to_owned(),
                })
                .inc_by(b.bytes);
        }
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = match format {
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
    };
    out
}
