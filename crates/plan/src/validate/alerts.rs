//! `[alerts]`: whether `up` creates an alarm per tunnel, after how long a tunnel down fires it,
//! and which SNS topic it notifies.

use dxvpn_tunnel::UseCase;

use crate::config::AlertsConfig;
use crate::problem::Problems;

/// Default minutes a tunnel may be down before its alarm fires.
pub(crate) const DEFAULT_MINUTES: u32 = 5;
/// "An alarm's total current evaluation period can be no longer than seven days, so
/// EvaluationPeriods multiplied by Period cannot be more than 604,800 seconds" (CloudWatch
/// PutMetricAlarm); with one-minute periods, 10080 minutes.
const MAX_MINUTES: u32 = 10_080;

/// The alarms the plan creates.
#[derive(Debug, Clone)]
pub(crate) struct Alerts {
    pub minutes: u32,
    pub sns_topic_arn: Option<String>,
}

pub(crate) fn check_alerts(
    p: &mut Problems,
    config: &AlertsConfig,
    use_case: UseCase,
    region: &str,
) -> Option<Alerts> {
    let minutes = config.tunnel_down_minutes.unwrap_or(DEFAULT_MINUTES);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        p.add(
            "alerts.tunnel_down_minutes",
            "alarm-window",
            format!("{minutes} minutes is outside 1-{MAX_MINUTES}: CloudWatch evaluates an alarm over at most seven days"),
            "pick how long a tunnel may be down before you are told, e.g. 5",
        );
    }
    if let Some(arn) = &config.sns_topic_arn {
        check_topic_arn(p, arn, region);
        if config.enabled == Some(false) {
            p.add(
                "alerts.sns_topic_arn",
                "alerts-disabled",
                "a topic is given for alarms, but alerts.enabled = false creates none",
                "remove alerts.enabled = false, or the topic",
            );
        }
    }
    let on = config
        .enabled
        .unwrap_or(use_case == UseCase::HighAvailability || config.sns_topic_arn.is_some());
    on.then(|| Alerts {
        minutes,
        sns_topic_arn: config.sns_topic_arn.clone(),
    })
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME` (SNS topic ARN, as PutMetricAlarm's `AlarmActions`
/// documents it), in the deployment's region: an alarm notifies topics of its own region.
fn check_topic_arn(p: &mut Problems, arn: &str, region: &str) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let name_ok = |n: &str| {
        let base = n.strip_suffix(".fifo").unwrap_or(n);
        (1..=256).contains(&n.len())
            && base
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && ["aws", "aws-cn", "aws-us-gov"].contains(&parts[1])
        && parts[2] == "sns"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && name_ok(parts[5]);
    if !well_formed {
        p.add(
            "alerts.sns_topic_arn",
            "sns-topic-arn",
            format!("`{arn}` is not an SNS topic ARN"),
            format!("give the topic's ARN, e.g. arn:aws:sns:{region}:123456789012:vpn-alerts (aws sns list-topics)"),
        );
    } else if parts[3] != region {
        p.add(
            "alerts.sns_topic_arn",
            "sns-topic-region",
            format!("the topic is in {}, the alarms in {region}: an alarm notifies topics of its own region", parts[3]),
            format!("use a topic in {region}"),
        );
    }
}
