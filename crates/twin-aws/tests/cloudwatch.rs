//! CloudWatch metric alarms through the real aws-sdk-cloudwatch (Smithy RPC v2 CBOR): an alarm
//! on a tunnel's AWS/VPN TunnelState is OK while the tunnel is up, still OK right after it
//! goes down (it waits its evaluation periods), ALARM once every period of the window saw it
//! down, and OK again after it comes back; an alarm on a tunnel that publishes nothing is
//! INSUFFICIENT_DATA (missing data) or ALARM (missing data breaching); PutMetricAlarm's rules,
//! DescribeAlarms' pages, and DeleteAlarms' tolerance of unknown names.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
use dxvpn_twin_aws::{AwsScenario, AwsTwin, TunnelTelemetry};

/// 60 s periods become 3 s.
const FACTOR: f64 = 0.05;
const PERIOD: Duration = Duration::from_secs(3);

fn telemetry(twin: &AwsTwin, up: &[Ipv4Addr]) {
    let reports: BTreeMap<Ipv4Addr, TunnelTelemetry> = up
        .iter()
        .map(|ip| {
            (
                *ip,
                TunnelTelemetry {
                    ipsec_up: true,
                    bgp_up: true,
                    accepted_routes: 1,
                    ..Default::default()
                },
            )
        })
        .collect();
    twin.set_telemetry(&reports);
}

async fn put_alarm(
    cw: &aws_sdk_cloudwatch::Client,
    name: &str,
    vpn: &str,
    ip: &str,
    missing: &str,
) -> Result<(), aws_sdk_cloudwatch::Error> {
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/VPN")
        .metric_name("TunnelState")
        .dimensions(Dimension::builder().name("VpnId").value(vpn).build())
        .dimensions(
            Dimension::builder()
                .name("TunnelIpAddress")
                .value(ip)
                .build(),
        )
        .statistic(Statistic::Maximum)
        .period(60)
        .evaluation_periods(2)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .treat_missing_data(missing)
        .alarm_actions("arn:aws:sns:eu-south-1:123456789012:dxvpn-alerts")
        .send()
        .await
        .map(drop)
        .map_err(Into::into)
}

async fn state(cw: &aws_sdk_cloudwatch::Client, name: &str) -> StateValue {
    let out = cw.describe_alarms().alarm_names(name).send().await.unwrap();
    out.metric_alarms()[0].state_value().unwrap().clone()
}

async fn until(cw: &aws_sdk_cloudwatch::Client, name: &str, wanted: StateValue) -> Duration {
    let start = Instant::now();
    while state(cw, name).await != wanted {
        assert!(start.elapsed() < 10 * PERIOD, "{name} never {wanted:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_tunnel_state_alarm_waits_its_periods_then_fires_and_clears() {
    let twin = AwsTwin::start(
        dxvpn_test_support::loopback(),
        &AwsScenario::default(),
        FACTOR,
    )
    .await
    .unwrap();
    let cw = dxvpn_test_support::cloudwatch_client(&twin.endpoint);
    let (vpn, ips) = dxvpn_test_support::twin_vpn_connection(&twin.endpoint).await;
    telemetry(&twin, &ips);
    let (t1, t2) = (ips[0].to_string(), ips[1].to_string());
    put_alarm(&cw, "dx-c1t1", &vpn, &t1, "breaching")
        .await
        .unwrap();
    put_alarm(&cw, "dx-c1t2", &vpn, &t2, "breaching")
        .await
        .unwrap();
    // A tunnel that publishes nothing: unknown with missing data, breaching when told so.
    put_alarm(&cw, "dx-nowhere", &vpn, "198.51.100.1", "missing")
        .await
        .unwrap();
    put_alarm(
        &cw,
        "dx-nowhere-breaching",
        &vpn,
        "198.51.100.1",
        "breaching",
    )
    .await
    .unwrap();
    assert_eq!(state(&cw, "dx-nowhere").await, StateValue::InsufficientData);
    until(&cw, "dx-nowhere-breaching", StateValue::Alarm).await;

    until(&cw, "dx-c1t1", StateValue::Ok).await;
    let full = cw
        .describe_alarms()
        .alarm_names("dx-c1t1")
        .send()
        .await
        .unwrap();
    let alarm = &full.metric_alarms()[0];
    assert_eq!(
        alarm.alarm_arn(),
        Some("arn:aws:cloudwatch:eu-south-1:123456789012:alarm:dx-c1t1")
    );
    assert_eq!(alarm.dimensions().len(), 2);
    assert_eq!(alarm.alarm_actions().len(), 1);
    assert!(alarm.state_updated_timestamp().is_some());

    // Tunnel 1 goes down: not yet an alarm (the window still saw it up), then ALARM within
    // the two periods of its window, while tunnel 2's stays OK.
    telemetry(&twin, &ips[1..]);
    assert_eq!(state(&cw, "dx-c1t1").await, StateValue::Ok);
    let fired = until(&cw, "dx-c1t1", StateValue::Alarm).await;
    assert!(
        fired >= PERIOD,
        "fired after {fired:?}, before a whole period"
    );
    assert_eq!(state(&cw, "dx-c1t2").await, StateValue::Ok);
    let alarms = cw
        .describe_alarms()
        .state_value(StateValue::Alarm)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = alarms
        .metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name())
        .collect();
    assert!(
        names.contains(&"dx-c1t1") && !names.contains(&"dx-c1t2"),
        "{names:?}"
    );

    // Back up: OK once a period has seen it up.
    telemetry(&twin, &ips);
    until(&cw, "dx-c1t1", StateValue::Ok).await;
    twin.stop().await;
}

#[tokio::test]
async fn put_metric_alarm_rules_pages_and_deletes() {
    let twin = AwsTwin::start(dxvpn_test_support::loopback(), &AwsScenario::default(), 0.0)
        .await
        .unwrap();
    let cw = dxvpn_test_support::cloudwatch_client(&twin.endpoint);
    let base = || {
        cw.put_metric_alarm()
            .alarm_name("dx-rules")
            .namespace("AWS/VPN")
            .metric_name("TunnelState")
            .statistic(Statistic::Maximum)
            .evaluation_periods(1)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
    };
    let code = |e: &aws_sdk_cloudwatch::error::SdkError<_>| {
        let e: &aws_sdk_cloudwatch::operation::put_metric_alarm::PutMetricAlarmError =
            e.as_service_error().unwrap();
        e.code().unwrap_or_default().to_owned()
    };
    let e = base().period(45).threshold(1.0).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    let e = base().period(60).send().await.unwrap_err();
    assert_eq!(code(&e), "MissingParameter");
    let e = base()
        .period(60)
        .threshold(1.0)
        .evaluation_periods(20_000)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue");
    assert!(
        base()
            .period(60)
            .threshold(1.0)
            .alarm_actions("not-an-arn")
            .send()
            .await
            .is_err()
    );

    for name in ["dx-a", "dx-b", "dx-c", "other"] {
        put_alarm(&cw, name, "vpn-1", "198.51.100.1", "missing")
            .await
            .unwrap();
    }
    // Two pages of two, each name once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = cw
            .describe_alarms()
            .alarm_name_prefix("dx-")
            .max_records(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        assert!(page.metric_alarms().len() <= 2);
        seen.extend(
            page.metric_alarms()
                .iter()
                .map(|a| a.alarm_name().unwrap().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["dx-a", "dx-b", "dx-c"]);
    let both = cw
        .describe_alarms()
        .alarm_names("dx-a")
        .alarm_name_prefix("dx-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(both.code(), Some("InvalidParameterCombination"));

    // Unknown names do not stop the known ones from being deleted.
    cw.delete_alarms()
        .alarm_names("dx-a")
        .alarm_names("dx-never-made")
        .send()
        .await
        .unwrap();
    let left = cw
        .describe_alarms()
        .alarm_name_prefix("dx-")
        .send()
        .await
        .unwrap();
    assert_eq!(left.metric_alarms().len(), 2);
    assert_eq!(twin.inventory()["alarms"].as_array().unwrap().len(), 3);
    twin.stop().await;
}
