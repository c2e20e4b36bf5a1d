//! `[alerts]`: whether `up` creates an alarm per tunnel in each cloud, after how long a tunnel
//! down fires it, and which SNS topic and Azure action group they notify.

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
    pub azure_action_group_id: Option<String>,
    /// Addresses the topic and the action group dxvpn makes tell (none: neither is made).
    pub emails: Vec<String>,
}

/// An Azure action group takes at most 1000 e-mail receivers ("Action groups", limits).
const MAX_EMAILS: usize = 1000;

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
    if let Some(id) = &config.azure_action_group_id {
        check_action_group_id(p, id);
        if config.enabled == Some(false) {
            p.add(
                "alerts.azure_action_group_id",
                "alerts-disabled",
                "an action group is given for alerts, but alerts.enabled = false creates none",
                "remove alerts.enabled = false, or the action group",
            );
        }
    }
    check_emails(p, &config.emails);
    if !config.emails.is_empty() && config.enabled == Some(false) {
        p.add(
            "alerts.emails",
            "alerts-disabled",
            "addresses are given for alerts, but alerts.enabled = false creates none",
            "remove alerts.enabled = false, or the addresses",
        );
    }
    let asked = config.sns_topic_arn.is_some()
        || config.azure_action_group_id.is_some()
        || !config.emails.is_empty();
    let on = config
        .enabled
        .unwrap_or(use_case == UseCase::HighAvailability || asked);
    on.then(|| Alerts {
        minutes,
        sns_topic_arn: config.sns_topic_arn.clone(),
        azure_action_group_id: config.azure_action_group_id.clone(),
        emails: config.emails.clone(),
    })
}

/// Each address once, in the form `local@domain.tld` (what SNS's e-mail protocol and Azure's
/// e-mail receivers take), at most [`MAX_EMAILS`].
fn check_emails(p: &mut Problems, emails: &[String]) {
    if emails.len() > MAX_EMAILS {
        p.add(
            "alerts.emails",
            "alert-email",
            format!(
                "{} addresses; an Azure action group takes at most {MAX_EMAILS}",
                emails.len()
            ),
            "send the alerts to a list address instead",
        );
    }
    for (i, email) in emails.iter().enumerate() {
        let path = format!("alerts.emails[{i}]");
        let well_formed = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if !well_formed {
            p.add(
                &path,
                "alert-email",
                format!("`{email}` is not an e-mail address"),
                "give an address like ops@example.com",
            );
        } else if emails[..i].iter().any(|e| e.eq_ignore_ascii_case(email)) {
            p.add(
                &path,
                "alert-email-twice",
                format!("`{email}` is listed twice"),
                "list each address once",
            );
        }
    }
}

/// `/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Insights/actionGroups/NAME`: an
/// action group is global, so any resource group and subscription will do (metric alert
/// `actions[].actionGroupId`, Microsoft.Insights 2018-03-01).
fn check_action_group_id(p: &mut Problems, id: &str) {
    let parts: Vec<&str> = id.split('/').collect();
    let well_formed = parts.len() == 9
        && parts[0].is_empty()
        && parts[1].eq_ignore_ascii_case("subscriptions")
        && !parts[2].is_empty()
        && parts[3].eq_ignore_ascii_case("resourceGroups")
        && !parts[4].is_empty()
        && parts[5].eq_ignore_ascii_case("providers")
        && parts[6].eq_ignore_ascii_case("Microsoft.Insights")
        && parts[7].eq_ignore_ascii_case("actionGroups")
        && !parts[8].is_empty();
    if !well_formed {
        p.add(
            "alerts.azure_action_group_id",
            "action-group-id",
            format!("`{id}` is not an action group's ARM id"),
            "give the id az monitor action-group show prints, e.g. /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Insights/actionGroups/vpn-alerts",
        );
    }
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
