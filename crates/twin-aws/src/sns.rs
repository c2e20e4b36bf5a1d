//! SNS, the subset an alert topic needs, over the Query protocol (API 2010-03-31, told apart by
//! `Version=2010-03-31`), for aws-sdk-sns pointed at the twin. The rules are the SNS API
//! reference's: CreateTopic is idempotent by name and answers the existing topic's ARN, but
//! refuses one "already exists with different tags"; a name is 1-256 letters, digits, hyphens
//! and underscores; DeleteTopic of a topic that is not there is no error; an e-mail
//! subscription stays "pending confirmation" until its owner confirms it (the twin sends no
//! mail, so it stays pending, and a pending one has no ARN to unsubscribe by: it lists as
//! `PendingConfirmation`); subscribing the same endpoint again answers the same subscription;
//! lists come 100 a page with a `NextToken`, in no documented order (a seeded one).

use std::collections::BTreeMap;

use dxvpn_twin_kit::seed::rank;

use crate::awsquery::Out;
use crate::iam::ACCOUNT_ID;
use crate::query::Params;

/// SNS's API version, which tells its calls from EC2's and IAM's.
pub(crate) const SNS_VERSION: &str = "2010-03-31";
pub(crate) const SNS_NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
/// ListTopics and ListSubscriptionsByTopic answer up to 100 a page.
const PAGE: usize = 100;

/// An SNS error: HTTP status, code and message.
pub(crate) use crate::awsquery::QueryError as SnsError;

fn invalid(message: impl Into<String>) -> SnsError {
    SnsError {
        status: 400,
        code: "InvalidParameter",
        message: format!("Invalid parameter: {}", message.into()),
    }
}

fn not_found(message: &str) -> SnsError {
    SnsError {
        status: 404,
        code: "NotFound",
        message: message.to_owned(),
    }
}

#[derive(Debug, Clone)]
struct Subscription {
    /// None while pending confirmation.
    arn: Option<String>,
    protocol: String,
    endpoint: String,
}

#[derive(Debug, Clone)]
struct Topic {
    tags: Vec<(String, String)>,
    subscriptions: Vec<Subscription>,
}

#[derive(Debug)]
pub(crate) struct Sns {
    region: String,
    seed: u64,
    /// By ARN.
    topics: BTreeMap<String, Topic>,
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, SnsError> {
    p.get(name)
        .ok_or_else(|| invalid(format!("{name} is required")))
}

/// `Tags.member.N.Key` / `.Value`.
fn tags(p: &Params) -> Vec<(String, String)> {
    (1..)
        .map_while(|i| {
            let key = p.get(&format!("Tags.member.{i}.Key"))?;
            Some((
                key.to_owned(),
                p.get(&format!("Tags.member.{i}.Value"))
                    .unwrap_or_default()
                    .to_owned(),
            ))
        })
        .collect()
}

/// Where a page starts, from `NextToken`.
fn page_start(p: &Params) -> Result<usize, SnsError> {
    match p.get("NextToken") {
        None => Ok(0),
        Some(token) => token
            .strip_prefix("dxvpn-page-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| invalid("NextToken")),
    }
}

fn email_ok(endpoint: &str) -> bool {
    endpoint.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !endpoint.contains(char::is_whitespace)
    })
}

impl Sns {
    pub(crate) fn new(region: &str, seed: u64) -> Self {
        Sns {
            region: region.to_owned(),
            seed,
            topics: BTreeMap::new(),
        }
    }

    /// Runs one SNS action: the XML inside its `<ActionResult>` (None for none).
    pub(crate) fn handle(&mut self, action: &str, p: &Params) -> Result<Option<String>, SnsError> {
        match action {
            "CreateTopic" => self.create_topic(p),
            "DeleteTopic" => {
                self.topics.remove(required(p, "TopicArn")?);
                Ok(None)
            }
            "ListTopics" => {
                let mut arns: Vec<&String> = self.topics.keys().collect();
                arns.sort_by_key(|a| rank(self.seed, a));
                let start = page_start(p)?;
                let page: Vec<&String> = arns.iter().skip(start).take(PAGE).copied().collect();
                let mut out = Out::default();
                out.members("Topics", &page, |o, arn| {
                    o.field("TopicArn", arn);
                });
                if start + PAGE < arns.len() {
                    out.field("NextToken", &format!("dxvpn-page-{}", start + PAGE));
                }
                Ok(Some(out.0))
            }
            "ListTagsForResource" => {
                let topic = self
                    .topics
                    .get(required(p, "ResourceArn")?)
                    .ok_or_else(|| SnsError {
                        status: 404,
                        code: "ResourceNotFound",
                        message: "Resource does not exist".into(),
                    })?;
                let mut out = Out::default();
                out.members("Tags", &topic.tags, |o, (k, v)| {
                    o.field("Key", k).field("Value", v);
                });
                Ok(Some(out.0))
            }
            "Subscribe" => self.subscribe(p),
            "ListSubscriptionsByTopic" => {
                let arn = required(p, "TopicArn")?;
                let topic = self
                    .topics
                    .get(arn)
                    .ok_or_else(|| not_found("Topic does not exist"))?;
                let start = page_start(p)?;
                let page: Vec<&Subscription> =
                    topic.subscriptions.iter().skip(start).take(PAGE).collect();
                let mut out = Out::default();
                out.members("Subscriptions", &page, |o, s| {
                    o.field(
                        "SubscriptionArn",
                        s.arn.as_deref().unwrap_or("PendingConfirmation"),
                    )
                    .field("Owner", ACCOUNT_ID)
                    .field("Protocol", &s.protocol)
                    .field("Endpoint", &s.endpoint)
                    .field("TopicArn", arn);
                });
                if start + PAGE < topic.subscriptions.len() {
                    out.field("NextToken", &format!("dxvpn-page-{}", start + PAGE));
                }
                Ok(Some(out.0))
            }
            "Unsubscribe" => {
                let arn = required(p, "SubscriptionArn")?;
                let found = self.topics.values_mut().find(|t| {
                    t.subscriptions
                        .iter()
                        .any(|s| s.arn.as_deref() == Some(arn))
                });
                match found {
                    Some(t) => t.subscriptions.retain(|s| s.arn.as_deref() != Some(arn)),
                    None => return Err(not_found("Subscription does not exist")),
                }
                Ok(None)
            }
            _ => Err(SnsError {
                status: 400,
                code: "InvalidAction",
                message: format!("{action} is not served by the dxvpn AWS twin"),
            }),
        }
    }

    fn create_topic(&mut self, p: &Params) -> Result<Option<String>, SnsError> {
        let name = required(p, "Name")?;
        let well_formed = (1..=256).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !well_formed {
            return Err(invalid(
                "Topic Name: 1-256 letters, numbers, hyphens and underscores (FIFO topics are not served by the dxvpn AWS twin)",
            ));
        }
        let arn = format!("arn:aws:sns:{}:{ACCOUNT_ID}:{name}", self.region);
        let wanted = tags(p);
        match self.topics.get(&arn) {
            // "If a topic with the same name exists, the ARN is returned" unless its tags differ.
            Some(existing) if !wanted.is_empty() && existing.tags != wanted => {
                return Err(invalid(
                    "Tags Reason: Topic already exists with different tags",
                ));
            }
            Some(_) => {}
            None => {
                self.topics.insert(
                    arn.clone(),
                    Topic {
                        tags: wanted,
                        subscriptions: Vec::new(),
                    },
                );
            }
        }
        let mut out = Out::default();
        out.field("TopicArn", &arn);
        Ok(Some(out.0))
    }

    fn subscribe(&mut self, p: &Params) -> Result<Option<String>, SnsError> {
        let arn = required(p, "TopicArn")?.to_owned();
        let protocol = required(p, "Protocol")?.to_owned();
        let endpoint = p.get("Endpoint").unwrap_or_default().to_owned();
        if protocol != "email" && protocol != "email-json" {
            return Err(invalid(format!(
                "Protocol {protocol} is not served by the dxvpn AWS twin (email and email-json are)"
            )));
        }
        if !email_ok(&endpoint) {
            return Err(invalid("Email address"));
        }
        let return_arn = p.get("ReturnSubscriptionArn") == Some("true");
        let topic = self
            .topics
            .get_mut(&arn)
            .ok_or_else(|| not_found("Topic does not exist"))?;
        let existing = topic
            .subscriptions
            .iter()
            .find(|s| s.protocol == protocol && s.endpoint.eq_ignore_ascii_case(&endpoint))
            .cloned();
        let subscription = match existing {
            Some(s) => s,
            None => {
                let s = Subscription {
                    arn: None,
                    protocol,
                    endpoint,
                };
                topic.subscriptions.push(s.clone());
                s
            }
        };
        let answer = match (&subscription.arn, return_arn) {
            (Some(a), _) => a.clone(),
            // "If you set this parameter to true, the response includes the ARN for the
            // pending subscription"; otherwise "pending confirmation". The ARN's suffix is
            // the twin's own (real ones end in a UUID); no client should parse it.
            (None, true) => format!("{arn}:{:016x}", rank(self.seed, &subscription.endpoint)),
            (None, false) => "pending confirmation".to_owned(),
        };
        let mut out = Out::default();
        out.field("SubscriptionArn", &answer);
        Ok(Some(out.0))
    }

    pub(crate) fn inventory(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.topics
                .iter()
                .map(|(arn, t)| {
                    serde_json::json!({
                        "arn": arn,
                        "subscriptions": t.subscriptions.iter().map(|s| &s.endpoint).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }
}
