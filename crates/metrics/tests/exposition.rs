//! The exposition of a reading, without a cloud: which series a status gives, in both formats,
//! and what a failed reading leaves out.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use dxvpn_aws::PropagationState;
use dxvpn_deploy::{Status, TunnelHealth};
use dxvpn_metrics::{ByteCount, ByteKey, Format, ProbeReading, Reading, encode};

fn tunnel(key: &str, ip: &str, aws: &str, azure: &str, bgp: &str, routes: i64) -> TunnelHealth {
    TunnelHealth {
        key: key.into(),
        outside_ip: ip.into(),
        aws_connection: "vpn-0123".into(),
        aws_status: aws.into(),
        aws_message: String::new(),
        aws_accepted_routes: i32::try_from(routes).unwrap(),
        azure_connection: format!("dx-{key}"),
        azure_status: azure.into(),
        bgp_neighbor: "169.254.21.1".into(),
        bgp_state: bgp.into(),
        bgp_routes_received: routes,
        up: aws == "UP" && azure == "Connected" && bgp == "Connected" && routes > 0,
    }
}

fn byte_key(tunnel: &str, cloud: &str, direction: &'static str) -> ByteKey {
    ByteKey {
        tunnel: tunnel.into(),
        cloud: cloud.into(),
        connection: if cloud == "aws" {
            "vpn-0123".into()
        } else {
            format!("dx-{tunnel}")
        },
        outside_ip: "203.0.113.1".into(),
        direction,
    }
}

fn reading(status: Result<Status, String>) -> Reading {
    Reading {
        at: Instant::now(),
        took: Duration::from_millis(250),
        bytes: match &status {
            Ok(_) => vec![
                ByteCount {
                    key: byte_key("c1t1", "aws", "in"),
                    bytes: 1500.0,
                },
                ByteCount {
                    key: byte_key("c1t1", "azure", "out"),
                    bytes: 0.0,
                },
            ],
            Err(_) => Vec::new(),
        },
        traffic_errors: Vec::new(),
        probes: vec![
            ProbeReading {
                target: "10.51.1.10".into(),
                from: "aws".into(),
                sent: 3,
                received: 3,
                rtt_seconds: Some(0.012),
            },
            ProbeReading {
                target: "10.51.9.99".into(),
                from: "aws".into(),
                sent: 3,
                received: 0,
                rtt_seconds: None,
            },
        ],
        status,
    }
}

fn status() -> Status {
    Status {
        tunnels: vec![
            tunnel("c1t1", "203.0.113.1", "UP", "Connected", "Connected", 2),
            tunnel("c1t2", "203.0.113.2", "DOWN", "Connecting", "Connecting", 0),
        ],
        route_propagation: vec![PropagationState {
            route_table_id: "rtb-1".into(),
            propagates: false,
        }],
        forwarder_host: None,
        azure_forwarder_host: None,
    }
}

fn sample<'a>(text: &'a str, name: &str, labels: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
}

#[test]
fn each_tunnel_is_reported_per_cloud_with_its_labels_in_both_formats() {
    let r = reading(Ok(status()));
    for format in [Format::Text, Format::OpenMetrics] {
        let text = encode("dx", &r, format);
        let aws1 = r#"deployment="dx",cloud="aws",connection="vpn-0123",tunnel="c1t1",outside_ip="203.0.113.1""#;
        let azure2 = r#"deployment="dx",cloud="azure",connection="dx-c1t2",tunnel="c1t2",outside_ip="203.0.113.2""#;
        assert_eq!(sample(&text, "dxvpn_tunnel_up", aws1), Some("1"), "{text}");
        assert_eq!(sample(&text, "dxvpn_tunnel_bgp_up", aws1), Some("1"));
        assert_eq!(sample(&text, "dxvpn_bgp_routes_received", aws1), Some("2"));
        // The negative half: the tunnel that is down reads 0, in the other cloud's report too.
        assert_eq!(sample(&text, "dxvpn_tunnel_up", azure2), Some("0"));
        assert_eq!(sample(&text, "dxvpn_tunnel_bgp_up", azure2), Some("0"));
        assert_eq!(
            sample(&text, "dxvpn_tunnel_healthy", r#"tunnel="c1t1""#),
            Some("1")
        );
        assert_eq!(
            sample(&text, "dxvpn_tunnel_healthy", r#"tunnel="c1t2""#),
            Some("0")
        );
        assert_eq!(
            sample(&text, "dxvpn_route_propagation", r#"route_table="rtb-1""#),
            Some("0")
        );
        assert_eq!(sample(&text, "dxvpn_read_success", "dx"), Some("1"));
        assert_eq!(
            sample(&text, "dxvpn_read_duration_seconds", "dx"),
            Some("0.25")
        );
        assert_eq!(text.matches("dxvpn_tunnel_up{").count(), 4);
        // Byte counters, named by Prometheus's rules (unit, then `_total`).
        let bytes = r#"cloud="aws",connection="vpn-0123",tunnel="c1t1",outside_ip="203.0.113.1",direction="in""#;
        assert_eq!(
            sample(&text, "dxvpn_tunnel_bytes_total", bytes),
            Some("1500.0"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("# TYPE dxvpn_tunnel_bytes") && l.ends_with(" counter")),
            "{text}"
        );
        assert_eq!(sample(&text, "dxvpn_traffic_read_success", "dx"), Some("1"));
        // Pings from the exporter's place: a target that answers, and one that does not.
        let answers = r#"from="aws",target="10.51.1.10""#;
        let silent = r#"from="aws",target="10.51.9.99""#;
        assert_eq!(
            sample(&text, "dxvpn_probe_loss_ratio", answers),
            Some("0.0")
        );
        assert_eq!(
            sample(&text, "dxvpn_probe_rtt_seconds", answers),
            Some("0.012")
        );
        assert_eq!(sample(&text, "dxvpn_probe_loss_ratio", silent), Some("1.0"));
        assert_eq!(sample(&text, "dxvpn_probe_rtt_seconds", silent), None);
        // No forwarder host planned, so no series for one.
        assert!(!text.contains("dxvpn_forwarder_host_up{"));
        assert_eq!(
            text.ends_with("# EOF\n"),
            format == Format::OpenMetrics,
            "{text}"
        );
    }
}

#[test]
fn a_failed_reading_says_so_and_repeats_no_tunnel_value() {
    let text = encode("dx", &reading(Err("throttled".into())), Format::Text);
    assert_eq!(sample(&text, "dxvpn_read_success", "dx"), Some("0"));
    assert!(!text.contains("dxvpn_tunnel_up{"), "{text}");
    assert!(!text.contains("dxvpn_tunnel_bytes_total{"), "{text}");
    assert!(!text.contains("throttled"));
}

#[test]
fn openmetrics_only_when_asked_for() {
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
    assert_eq!(Format::negotiate(None), Format::Text);
    assert!(
        Format::Text
            .content_type()
            .starts_with("text/plain; version=0.0.4")
    );
}
