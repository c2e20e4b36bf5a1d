//! The planner on whole configs: valid boundary values pass, the DAG is sound, plans are
//! deterministic and carry no secret, and no input makes it panic.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::HashSet;

use dxvpn_plan::model::{Action, Deferred, PskSource, Spec};
use dxvpn_plan::{Plan, plan_from_toml};
use proptest::prelude::*;

const DEVELOPMENT: &str = include_str!("../../../examples/development.toml");
const HIGH_AVAILABILITY: &str = include_str!("../../../examples/high_availability.toml");

/// The development example with `edits` applied: (dotted path, TOML value or None to remove).
fn config_with(edits: &[(&str, Option<&str>)]) -> String {
    let mut doc: toml::Table = DEVELOPMENT.parse().unwrap();
    for (path, value) in edits {
        let mut keys: Vec<&str> = path.split('.').collect();
        let last = keys.pop().unwrap();
        let mut table = &mut doc;
        for key in keys {
            table = table
                .entry(key)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap();
        }
        match value {
            Some(v) => {
                let parsed: toml::Table = format!("v = {v}").parse().unwrap();
                table.insert(last.to_owned(), parsed["v"].clone());
            }
            None => {
                table.remove(last);
            }
        }
    }
    toml::to_string(&doc).unwrap()
}

fn plan_with(edits: &[(&str, Option<&str>)]) -> Plan {
    let text = config_with(edits);
    plan_from_toml(&text).unwrap_or_else(|p| panic!("{edits:?} should be valid: {:#?}", p.errors))
}

#[test]
fn boundary_values_that_both_clouds_accept() {
    let good: &[&[(&str, Option<&str>)]] = &[
        &[("name", Some("\"a\""))],
        &[("aws.region", Some("\"us-gov-west-1\""))],
        &[("aws.vpc_id", Some("\"vpc-0123abcd\""))],
        &[("aws.asn", Some("65534"))],
        &[("aws.asn", Some("4200000000"))],
        &[("aws.asn", Some("4294967294"))],
        &[("azure.asn", Some("65515"))],
        &[("azure.asn", Some("65521"))],
        &[("azure.gateway_subnet_cidr", Some("\"10.51.254.0/26\""))],
        &[("azure.sku", Some("\"VpnGw5AZ\""))],
        // No DNS zones: one private subnet is enough.
        &[
            (
                "aws.private_subnet_ids",
                Some("[\"subnet-0a1b2c3d4e5f60001\"]"),
            ),
            ("aws.private_subnet_cidrs", Some("[\"10.1.1.0/24\"]")),
            ("aws.private_dns_zones", Some("[]")),
            ("azure.private_dns_zones", Some("[]")),
        ],
        // Exactly two /28s left for the resolver.
        &[
            ("azure.vnet_cidr", Some("\"10.51.0.0/26\"")),
            ("azure.gateway_subnet_cidr", Some("\"10.51.0.0/27\"")),
            ("azure.used_subnet_cidrs", Some("[]")),
            // The example's Azure target is outside so small a VNet.
            ("validate", None),
        ],
        &[(
            "tunnels.inside_cidrs",
            Some("[\"169.254.21.252/30\", \"169.254.22.252/30\"]"),
        )],
        &[("aws.private_dns_zones", Some("[\"aws.internal.\"]"))],
        &[(
            "azure.private_dns_zones",
            Some("[\"azure.internal\", \"privatelink.blob.core.windows.net\"]"),
        )],
        &[("prices.aws_vpn_connection", Some("0.0"))],
        &[
            ("aws.endpoint_url", Some("\"http://127.0.0.1:4566\"")),
            ("azure.endpoint", Some("\"http://127.0.0.1:8443\"")),
        ],
        &[
            ("aws.endpoint_url", Some("\"http://localhost:4566/\"")),
            ("azure.endpoint", Some("\"http://[::1]:8443\"")),
        ],
        &[
            (
                "aws.endpoint_url",
                Some("\"https://ec2.eu-south-1.amazonaws.com\""),
            ),
            ("azure.endpoint", Some("\"https://management.azure.com\"")),
        ],
        &[("dns.aws_forwarder_ip", Some("\"10.1.2.53\""))],
        &[("dns.mode", Some("\"managed\""))],
        &[
            (
                "azure.existing_gateway_id",
                Some(
                    "\"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworkGateways/gw\"",
                ),
            ),
            ("azure.existing_gateway_public_ips", Some("[\"20.10.1.1\"]")),
        ],
    ];
    for edits in good {
        plan_with(edits);
    }
    // Tag value at the 256-character limit of both clouds.
    let longest_value = "v".repeat(256);
    plan_with(&[("tags.Owner", Some(&format!("\"{longest_value}\"")))]);
    // PSK length boundaries: 8 and 64 characters, and a 0 anywhere but first.
    let longest = format!("Z.z_90{}", "a".repeat(58));
    assert_eq!(longest.len(), 64);
    plan_with(&[(
        "tunnels.preshared_keys",
        Some(&format!("[\"abcdefgh\", \"{longest}\"]")),
    )]);
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = config_with(&[
        ("aws.vpc_cidr", Some("\"10.1.0.1/16\"")),
        ("azure.asn", Some("65517")),
        (
            "tunnels.inside_cidrs",
            Some("[\"169.254.5.0/30\", \"169.254.5.0/30\"]"),
        ),
        ("tags.aws:x", Some("\"y\"")),
    ]);
    let problems = plan_from_toml(&text).unwrap_err();
    let rules = problems.rules();
    for rule in [
        "cidr-host-bits",
        "azure-asn-reserved",
        "inside-cidr-aws-reserved",
        "inside-cidr-unique",
        "tag-key-reserved",
    ] {
        assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
    }
}

fn assert_sound_dag(plan: &Plan) {
    let mut seen = HashSet::new();
    for r in &plan.resources {
        for dep in &r.depends_on {
            assert!(
                seen.contains(dep.as_str()),
                "{} depends on {dep}, which does not come before it",
                r.role
            );
        }
        assert!(
            seen.insert(r.role.as_str()),
            "role {} appears twice",
            r.role
        );
        match r.action {
            Action::Create => {
                assert_eq!(
                    r.tags.get("dxvpn:deployment"),
                    Some(&plan.name),
                    "{}",
                    r.role
                );
                assert_eq!(r.tags.get("dxvpn:role"), Some(&r.role));
            }
            Action::Reference => {
                assert!(r.tags.is_empty(), "dxvpn never tags what it does not own")
            }
        }
    }
    // Every deferred value names a resource that exists.
    let json = serde_json::to_value(plan).unwrap();
    let mut stack = vec![&json];
    while let Some(v) = stack.pop() {
        if let Some(from) = v
            .get("from")
            .and_then(|f| f.as_str())
            .filter(|_| v.get("output").is_some())
        {
            assert!(
                seen.contains(from),
                "deferred value from unknown role {from}"
            );
        }
        match v {
            serde_json::Value::Array(a) => stack.extend(a),
            serde_json::Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
}

#[test]
fn plans_are_sound_dags_for_every_shape() {
    for text in [DEVELOPMENT, HIGH_AVAILABILITY] {
        assert_sound_dag(&plan_from_toml(text).unwrap());
    }
    assert_sound_dag(&plan_with(&[("dns.mode", Some("\"managed\""))]));
    assert_sound_dag(&plan_with(&[
        (
            "azure.existing_gateway_id",
            Some(
                "\"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworkGateways/gw\"",
            ),
        ),
        ("azure.existing_gateway_public_ips", Some("[\"20.10.1.1\"]")),
    ]));
}

#[test]
fn customer_gateways_wait_only_for_public_ips_not_for_the_azure_gateway() {
    let plan = plan_from_toml(HIGH_AVAILABILITY).unwrap();
    for r in plan
        .resources
        .iter()
        .filter(|r| r.kind() == "customer_gateway" || r.kind() == "vpn_connection")
    {
        assert!(
            !r.depends_on.iter().any(|d| d == "azure.vpn_gateway"),
            "{} must not wait for the 45-minute gateway",
            r.role
        );
    }
    let cgw = plan.resource("aws.customer_gateway.1").unwrap();
    assert!(
        matches!(&cgw.spec, Spec::CustomerGateway { bgp_asn: 65000, ip_address: Deferred::After { from, .. } } if from == "azure.public_ip.1")
    );
}

#[test]
fn every_connection_names_its_own_apipa_address() {
    // Field notes: a connection without its own APIPA address silently uses the gateway's first.
    for text in [DEVELOPMENT, HIGH_AVAILABILITY] {
        let plan = plan_from_toml(text).unwrap();
        for t in &plan.tunnels {
            let conn = plan
                .resource(&format!("azure.connection.{}", t.key))
                .unwrap();
            let Spec::GatewayConnection {
                custom_bgp_ip_address,
                azure_instance,
                ..
            } = &conn.spec
            else {
                panic!()
            };
            assert_eq!(*custom_bgp_ip_address, t.pairing.azure_inside_ip);
            assert_eq!(*azure_instance, t.pairing.azure_instance);
            let lng = plan
                .resource(&format!("azure.local_network_gateway.{}", t.key))
                .unwrap();
            let Spec::LocalNetworkGateway {
                bgp_peering_address,
                bgp_asn,
                ..
            } = &lng.spec
            else {
                panic!()
            };
            assert_eq!(
                (*bgp_peering_address, *bgp_asn),
                (t.pairing.aws_inside_ip, plan.aws.asn)
            );
        }
    }
}

#[test]
fn existing_gateway_is_referenced_not_created() {
    let plan = plan_with(&[
        (
            "azure.existing_gateway_id",
            Some(
                "\"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworkGateways/gw\"",
            ),
        ),
        ("azure.existing_gateway_public_ips", Some("[\"20.10.1.1\"]")),
    ]);
    let gw = plan.resource("azure.vpn_gateway").unwrap();
    assert_eq!(gw.action, Action::Reference);
    assert!(plan.resources.iter().all(|r| r.kind() != "public_ip"));
    let cgw = plan.resource("aws.customer_gateway.0").unwrap();
    assert!(
        matches!(&cgw.spec, Spec::CustomerGateway { ip_address: Deferred::Known(ip), .. } if ip.to_string() == "20.10.1.1")
    );
    assert!(
        plan.cost
            .lines
            .iter()
            .all(|l| !l.item.starts_with("azure_vpn_gateway")),
        "an existing gateway costs nothing new"
    );
}

#[test]
fn planning_is_deterministic() {
    let a = serde_json::to_string(&plan_from_toml(HIGH_AVAILABILITY).unwrap()).unwrap();
    let b = serde_json::to_string(&plan_from_toml(HIGH_AVAILABILITY).unwrap()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn user_keys_stay_in_memory_only() {
    let keys = ["First.Tunnel_Key1", "Second.Tunnel_Key2"];
    let plan = plan_with(&[(
        "tunnels.preshared_keys",
        Some(&format!("[\"{}\", \"{}\"]", keys[0], keys[1])),
    )]);
    assert!(plan.tunnels.iter().all(|t| t.psk == PskSource::Config));
    assert_eq!(
        plan.tunnels[1].preshared_key.as_ref().map(|k| k.expose()),
        Some(keys[1])
    );
    let shown = format!(
        "{}\n{plan:?}\n{}",
        serde_json::to_string(&plan).unwrap(),
        dxvpn_plan::graph::mermaid(&plan)
    );
    for key in keys {
        assert!(
            !shown.contains(key),
            "key leaked into JSON, Debug or graph output"
        );
    }
}

#[test]
fn dns_forwarding_points_each_side_at_the_other() {
    let plan = plan_from_toml(HIGH_AVAILABILITY).unwrap();
    let to_azure = plan
        .dns
        .forwarding
        .iter()
        .find(|f| f.to == dxvpn_plan::Cloud::Azure)
        .unwrap();
    let inbound = plan.resource("azure.dns_inbound_endpoint").unwrap();
    let Spec::DnsInboundEndpoint { private_ip, .. } = inbound.spec else {
        panic!()
    };
    assert_eq!(to_azure.targets, Deferred::Known(vec![private_ip]));
    assert!(plan.azure.vnet_cidr.contains(&private_ip));
    let subnets: Vec<_> = plan
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::Subnet { cidr, .. } => Some(*cidr),
            _ => None,
        })
        .collect();
    assert_eq!(subnets.len(), 2);
    for s in &subnets {
        assert_eq!(s.prefix_len(), 28);
        assert!(!dxvpn_cidr::overlaps(*s, plan.azure.gateway_subnet_cidr));
    }
}

/// Keys of the contract and values of every TOML type, for structured fuzzing.
const KEYS: &[&str] = &[
    "name",
    "use_case",
    "aws.region",
    "aws.vpc_id",
    "aws.vpc_cidr",
    "aws.route_table_ids",
    "aws.private_subnet_ids",
    "aws.private_subnet_cidrs",
    "aws.asn",
    "aws.private_dns_zones",
    "azure.subscription_id",
    "azure.vnet_cidr",
    "azure.gateway_subnet_cidr",
    "azure.used_subnet_cidrs",
    "azure.asn",
    "azure.sku",
    "azure.private_dns_zones",
    "azure.existing_gateway_id",
    "azure.existing_gateway_public_ips",
    "dns.mode",
    "dns.aws_forwarder_ip",
    "dns.aws_forwarder_instance_profile",
    "tunnels.inside_cidrs",
    "tunnels.preshared_keys",
    "tags.x",
    "prices.aws_vpn_connection",
];

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        "[ -~]{0,24}".prop_map(|s| format!("{:?}", s)),
        "(10|169\\.254|192\\.168)\\.[0-9]{1,3}\\.[0-9]{1,3}/[0-9]{1,2}"
            .prop_map(|s| format!("{s:?}")),
        proptest::collection::vec("(10|169\\.254)\\.[0-9]{1,3}\\.[0-9]{1,3}/[0-9]{1,2}", 0..5)
            .prop_map(|v| format!("{v:?}")),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = plan_from_toml(&text);
    }

    #[test]
    fn arbitrary_values_at_known_keys_never_panic(edits in proptest::collection::vec((0..KEYS.len(), toml_value()), 1..6)) {
        let edits: Vec<(&str, Option<&str>)> = edits.iter().map(|(k, v)| (KEYS[*k], Some(v.as_str()))).collect();
        let text = config_with(&edits);
        match plan_from_toml(&text) {
            Ok(plan) => assert_sound_dag(&plan),
            Err(problems) => {
                prop_assert!(!problems.errors.is_empty());
                for p in &problems.errors {
                    prop_assert!(!p.path.is_empty() && !p.message.is_empty() && !p.hint.is_empty());
                }
            }
        }
    }
}

#[test]
fn validate_targets_are_checked_and_carried_into_the_plan() {
    let plan = plan_with(&[]);
    assert_eq!(plan.validate_targets.len(), 2);
    let azure = &plan.validate_targets[1];
    assert_eq!(azure.cloud, dxvpn_plan::Cloud::Azure);
    assert_eq!(azure.address, Some("10.51.1.4".parse().unwrap()));
    assert_eq!(azure.name.as_deref(), Some("vm1.azure.internal"));
    assert_eq!(azure.tcp_ports, vec![22]);
    assert!(azure.ping);

    // A name outside the cloud's forwarded zones works but is warned about.
    let plan = plan_with(&[(
        "validate.targets",
        Some(r#"[{ cloud = "azure", name = "vm1.example.org", ping = false }]"#),
    )]);
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.rule == "name-outside-forwarded-zones"
                && w.path == "validate.targets[0].name"),
        "{:#?}",
        plan.warnings
    );

    // Negative controls: an address of the wrong cloud, a malformed name, port 0.
    let text = config_with(&[(
        "validate.targets",
        Some(
            r#"[{ cloud = "aws", address = "10.51.1.4" }, { cloud = "azure", name = "bad..name" }, { cloud = "azure", address = "10.51.1.4", tcp_ports = [0] }]"#,
        ),
    )]);
    let problems = plan_from_toml(&text).unwrap_err();
    let found: Vec<(&str, &str)> = problems
        .errors
        .iter()
        .map(|p| (p.path.as_str(), p.rule))
        .collect();
    assert_eq!(
        found,
        [
            ("validate.targets[0].address", "target-in-cloud"),
            ("validate.targets[1].name", "dns-name"),
            ("validate.targets[2].tcp_ports[0]", "port-range"),
        ]
    );
}

#[test]
fn the_schema_and_the_reference_in_docs_are_the_generated_ones() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let schema = serde_json::to_string_pretty(&dxvpn_plan::schema::config_schema()).unwrap() + "\n";
    let reference = dxvpn_plan::schema::config_reference_markdown();
    for (file, generated, command) in [
        (
            "config.schema.json",
            &schema,
            "dxvpn schema > docs/config.schema.json",
        ),
        (
            "config-reference.md",
            &reference,
            "dxvpn schema --format markdown > docs/config-reference.md",
        ),
    ] {
        let written = std::fs::read_to_string(docs.join(file)).unwrap_or_default();
        assert!(
            written == *generated,
            "docs/{file} is stale: run `{command}`"
        );
    }
    // Every top-level key the parser knows is in the reference, and a made-up one is not.
    for key in [
        "`name`",
        "`aws.vpc_cidr`",
        "`dns.mode`",
        "`validate.targets[].cloud`",
    ] {
        assert!(reference.contains(key), "{key}");
    }
    assert!(!reference.contains("`aws.vpc_cidrs`"));
    // The schema describes the examples' shape: required keys of the whole file.
    let required = dxvpn_plan::schema::config_schema()["required"].clone();
    assert_eq!(
        required,
        serde_json::json!(["name", "use_case", "aws", "azure"])
    );
}

/// Every secret field fed every wrong type: the error names the field and the expectation, and
/// never the value (serde's type errors quote it: `invalid type: string "...", expected a list`).
/// Valid keys of the wrong shape and digits-only keys (AWS takes `12345678`) are included.
#[test]
fn no_config_error_quotes_a_secret_fields_value() {
    let wrong_values = [
        r#""Secret.Key_1234""#,
        "12345678",
        "12345678.5",
        "true",
        "1979-05-27T07:32:00Z",
        r#"{ k = "Secret.Key_1234" }"#,
        r#"[["Secret.Key_1234", "Other.Key_5678"]]"#,
        r#"[{ k = "Secret.Key_1234" }, "Other.Key_5678"]"#,
        "[12345678, 23456789]",
        r#"["Secret.Key_1234", 23456789]"#,
    ];
    for field in dxvpn_plan::config::SECRET_FIELDS {
        for value in wrong_values {
            let text = config_with(&[(field, Some(value))]);
            let problems = plan_from_toml(&text).expect_err(value);
            let shown = format!("{problems} {}", serde_json::to_string(&problems).unwrap());
            for secret in ["Secret.Key_1234", "Other.Key_5678", "12345678", "23456789"] {
                assert!(!shown.contains(secret), "{field} = {value}: {shown}");
            }
            assert!(
                problems.errors.iter().any(|p| p.path.starts_with(field)),
                "{field} = {value}: the field is named: {shown}"
            );
        }
    }
    // The control: a value of a field that holds no secret is still quoted, to help.
    let problems = plan_from_toml(&config_with(&[("name", Some("12345678"))])).unwrap_err();
    assert!(format!("{problems:?}").contains("12345678"), "{problems:?}");
}

/// Plain http only to this machine: keys and tokens cross in these calls.
#[test]
fn plain_http_endpoints_off_this_machine_are_refused() {
    for url in [
        "http://10.0.0.5:4566",
        "http://ec2.example.com",
        "http://127.0.0.1@evil.example.com:80",
        "http://127.0.0.1.evil.example.com",
        "http://localhost.evil.example.com/",
    ] {
        let problems = plan_from_toml(&config_with(&[(
            "aws.endpoint_url",
            Some(&format!("\"{url}\"")),
        )]))
        .unwrap_err();
        assert!(
            problems
                .errors
                .iter()
                .any(|p| p.path == "aws.endpoint_url" && p.rule == "endpoint-plain-http"),
            "{url}: {problems:?}"
        );
    }
}

/// The parsed config derives Debug for diagnostics; the keys it holds must not come out.
#[test]
fn debug_of_a_config_shows_no_key() {
    let text = config_with(&[(
        "tunnels.preshared_keys",
        Some(r#"["Secret.Key_1234", "Other.Key_5678"]"#),
    )]);
    let config = dxvpn_plan::parse_config(&text).unwrap();
    let shown = format!("{config:?} {config:#?}");
    assert!(
        !shown.contains("Secret.Key_1234") && !shown.contains("Other.Key_5678"),
        "{shown}"
    );
    assert!(shown.contains("2 redacted"), "{shown}");
}

/// The AWS forwarder host gets an instance profile with Session Manager's policy, as the
/// original module's, unless the config names its own or asks for none; a bad name is an error
/// naming the field.
#[test]
fn the_aws_forwarder_host_gets_its_instance_profile_unless_the_config_says_otherwise() {
    let profile_of = |plan: &Plan| match &plan.resource("aws.dns_forwarder").unwrap().spec {
        Spec::ForwarderInstance {
            instance_profile, ..
        } => instance_profile.clone(),
        other => panic!("{other:?}"),
    };
    // The longest names there are still fit IAM's 64 characters for a role.
    let longest = "a".repeat(32);
    let plan = plan_with(&[
        ("name", Some(&format!("\"{longest}\""))),
        ("aws.vpc_id", Some("\"vpc-0123456789abcdef0\"")),
    ]);
    let created = plan.resource("aws.dns_forwarder_profile").unwrap();
    let Spec::InstanceProfile { name, policy_arns } = &created.spec else {
        panic!("{:?}", created.spec)
    };
    assert_eq!(name.len(), 64, "{name}");
    assert_eq!(name, &format!("{longest}-dns-forwarder-0123456789abcdef0"));
    assert_eq!(
        policy_arns,
        &["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    );
    assert_eq!(profile_of(&plan).as_ref(), Some(name));
    let host = plan.resource("aws.dns_forwarder").unwrap();
    assert!(host.depends_on.contains(&created.role), "{host:?}");
    assert_sound_dag(&plan);

    let theirs = plan_with(&[("dns.aws_forwarder_instance_profile", Some("\"ops-ssm\""))]);
    assert!(theirs.resource("aws.dns_forwarder_profile").is_none());
    assert_eq!(profile_of(&theirs).as_deref(), Some("ops-ssm"));

    let none = plan_with(&[("dns.aws_forwarder_instance_profile", Some("\"none\""))]);
    assert!(none.resource("aws.dns_forwarder_profile").is_none());
    assert_eq!(profile_of(&none), None);

    let bad = plan_from_toml(&config_with(&[(
        "dns.aws_forwarder_instance_profile",
        Some("\"arn:aws:iam::1:instance-profile/x\""),
    )]))
    .unwrap_err();
    assert!(
        bad.errors
            .iter()
            .any(|e| e.path == "dns.aws_forwarder_instance_profile"),
        "{:#?}",
        bad.errors
    );

    // In China the policy lives in the aws-cn partition.
    let china = plan_with(&[("aws.region", Some("\"cn-north-1\""))]);
    let Spec::InstanceProfile { policy_arns, .. } =
        &china.resource("aws.dns_forwarder_profile").unwrap().spec
    else {
        panic!()
    };
    assert!(policy_arns[0].starts_with("arn:aws-cn:iam::aws:policy/"));
}

#[test]
fn alert_emails_make_a_topic_and_an_action_group_that_every_alarm_and_alert_tells() {
    let config = format!(
        "{DEVELOPMENT}\n[alerts]\nemails = [\"ops@example.com\", \"oncall@example.org\"]\n"
    );
    let plan = dxvpn_plan::plan_from_toml(&config).unwrap();
    let topic = plan.resource(dxvpn_plan::model::ALERT_TOPIC_ROLE).unwrap();
    let group = plan.resource(dxvpn_plan::model::ACTION_GROUP_ROLE).unwrap();
    assert!(matches!(&topic.spec, Spec::AlertTopic { emails } if emails.len() == 2));
    assert!(
        matches!(&group.spec, Spec::ActionGroup { short_name, emails } if short_name.len() <= 12 && emails.len() == 2)
    );
    let mut alarms = 0;
    let mut alerts = 0;
    for r in &plan.resources {
        match &r.spec {
            Spec::TunnelAlarm {
                notify_alert_topic, ..
            } => {
                alarms += 1;
                assert!(*notify_alert_topic);
                assert!(r.depends_on.contains(&topic.role), "{:?}", r.depends_on);
            }
            Spec::TunnelAlert {
                notify_action_group,
                ..
            } => {
                alerts += 1;
                assert!(*notify_action_group);
                assert!(r.depends_on.contains(&group.role), "{:?}", r.depends_on);
            }
            _ => {}
        }
    }
    // Addresses turn the alarms on in development.
    assert_eq!((alarms, alerts), (2, 2));
    // Without addresses, neither is made (the high availability default).
    let ha = dxvpn_plan::plan_from_toml(HIGH_AVAILABILITY).unwrap();
    assert!(ha.resource(dxvpn_plan::model::ALERT_TOPIC_ROLE).is_none());
    assert!(ha.resource(dxvpn_plan::model::ACTION_GROUP_ROLE).is_none());

    for (emails, rule) in [
        ("\"ops at example.com\"", "alert-email"),
        ("\"ops@localhost\"", "alert-email"),
        (
            "\"ops@example.com\", \"OPS@example.com\"",
            "alert-email-twice",
        ),
    ] {
        let config = format!("{DEVELOPMENT}\n[alerts]\nemails = [{emails}]\n");
        let problems = dxvpn_plan::plan_from_toml(&config).unwrap_err();
        assert!(
            problems
                .errors
                .iter()
                .any(|p| p.rule == rule && p.path.starts_with("alerts.emails[")),
            "{emails}: {problems:?}"
        );
    }
}

#[test]
fn azure_tunnel_alerts_come_with_the_alarms_watch_each_bgp_peer_and_take_an_action_group() {
    let alerts = |plan: &Plan| -> Vec<(String, std::net::Ipv4Addr, u32, Vec<String>)> {
        plan.resources
            .iter()
            .filter_map(|r| match &r.spec {
                Spec::TunnelAlert {
                    tunnel,
                    peer,
                    window_minutes,
                    action_groups,
                    ..
                } => {
                    // Each alert watches the gateway, and waits for nothing else.
                    assert_eq!(r.depends_on, vec!["azure.vpn_gateway".to_owned()]);
                    assert_eq!(r.cloud, dxvpn_plan::Cloud::Azure);
                    Some((
                        tunnel.clone(),
                        *peer,
                        *window_minutes,
                        action_groups.clone(),
                    ))
                }
                _ => None,
            })
            .collect()
    };
    let ha = dxvpn_plan::plan_from_toml(HIGH_AVAILABILITY).unwrap();
    let ha_alerts = alerts(&ha);
    assert_eq!(ha_alerts.len(), 4);
    for (tunnel, peer, window, groups) in &ha_alerts {
        let t = ha.tunnels.iter().find(|t| t.key == *tunnel).unwrap();
        assert_eq!(
            *peer, t.pairing.aws_inside_ip,
            "the peer is AWS's end of {tunnel}"
        );
        assert_eq!((*window, groups.len()), (5, 0));
    }
    let line = ha
        .cost
        .lines
        .iter()
        .find(|l| l.item == "azure_metric_alert")
        .unwrap();
    assert_eq!((line.quantity, line.monthly_usd), (8, 0.8));
    // And a traffic alert per tunnel, on its own connection's bytes in, after the connection.
    let traffic: Vec<(&str, &str)> = ha
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::TrafficAlert {
                tunnel, connection, ..
            } => {
                let own = format!("azure.connection.{tunnel}");
                assert!(r.depends_on.contains(&own), "{:?}", r.depends_on);
                assert_eq!(ha.resource(&own).unwrap().name, *connection);
                Some((tunnel.as_str(), connection.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(traffic.len(), 4, "{traffic:?}");
    assert!(alerts(&dxvpn_plan::plan_from_toml(DEVELOPMENT).unwrap()).is_empty());

    // An action group turns them on in development; the window is the shortest Azure offers
    // that covers the minutes, five at least.
    let group = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ops/providers/Microsoft.Insights/actionGroups/vpn-alerts";
    for (minutes, window) in [(2, 5), (7, 15), (61, 360), (10_080, 1440)] {
        let config = format!(
            "{DEVELOPMENT}\n[alerts]\nazure_action_group_id = \"{group}\"\ntunnel_down_minutes = {minutes}\n"
        );
        let dev = alerts(&dxvpn_plan::plan_from_toml(&config).unwrap());
        assert_eq!(dev.len(), 2);
        assert!(
            dev.iter()
                .all(|(_, _, w, g)| *w == window && g == &[group.to_owned()]),
            "{minutes}: {dev:?}"
        );
    }
    // Not an action group's id, or one with alerts turned off: named, with the rule.
    for (config, rule) in [
        (
            format!("{DEVELOPMENT}\n[alerts]\nazure_action_group_id = \"vpn-alerts\"\n"),
            "action-group-id",
        ),
        (
            format!(
                "{DEVELOPMENT}\n[alerts]\nenabled = false\nazure_action_group_id = \"{group}\"\n"
            ),
            "alerts-disabled",
        ),
    ] {
        let problems = dxvpn_plan::plan_from_toml(&config).unwrap_err();
        assert!(
            problems
                .errors
                .iter()
                .any(|p| p.rule == rule && p.path == "alerts.azure_action_group_id"),
            "{problems:?}"
        );
    }
}

#[test]
fn tunnel_alarms_are_on_in_high_availability_off_in_development_and_follow_alerts() {
    let alarms = |plan: &Plan| -> Vec<(String, Vec<String>, u32)> {
        plan.resources
            .iter()
            .filter_map(|r| match &r.spec {
                Spec::TunnelAlarm {
                    tunnel,
                    minutes,
                    actions,
                    ..
                } => {
                    // Each alarm waits for its own tunnel's VPN connection, and for nothing else.
                    let t = plan.tunnels.iter().find(|t| t.key == *tunnel).unwrap();
                    assert_eq!(r.depends_on, vec![t.connection_role()]);
                    Some((tunnel.clone(), actions.clone(), *minutes))
                }
                _ => None,
            })
            .collect()
    };
    let ha = dxvpn_plan::plan_from_toml(HIGH_AVAILABILITY).unwrap();
    let ha_alarms = alarms(&ha);
    assert_eq!(ha_alarms.len(), 4);
    assert!(
        ha_alarms
            .iter()
            .all(|(_, actions, minutes)| actions.is_empty() && *minutes == 5)
    );
    let line = ha
        .cost
        .lines
        .iter()
        .find(|l| l.item == "aws_cloudwatch_alarm")
        .unwrap();
    assert_eq!((line.quantity, line.monthly_usd), (4, 0.4));
    assert_eq!(
        alarms(&dxvpn_plan::plan_from_toml(DEVELOPMENT).unwrap()).len(),
        0
    );

    let topic = "arn:aws:sns:eu-south-1:123456789012:vpn-alerts";
    let with_topic =
        format!("{DEVELOPMENT}\n[alerts]\nsns_topic_arn = \"{topic}\"\ntunnel_down_minutes = 2\n");
    let dev = alarms(&dxvpn_plan::plan_from_toml(&with_topic).unwrap());
    assert_eq!(dev.len(), 2);
    assert!(
        dev.iter()
            .all(|(_, a, m)| a == &[topic.to_owned()] && *m == 2)
    );
    let off = format!("{HIGH_AVAILABILITY}\n[alerts]\nenabled = false\n");
    assert!(alarms(&dxvpn_plan::plan_from_toml(&off).unwrap()).is_empty());
    // A topic with alerts turned off is a contradiction, named as one.
    let both = format!("{DEVELOPMENT}\n[alerts]\nenabled = false\nsns_topic_arn = \"{topic}\"\n");
    let problems = dxvpn_plan::plan_from_toml(&both).unwrap_err();
    assert!(
        problems.errors.iter().any(|p| p.rule == "alerts-disabled"),
        "{problems:?}"
    );
}
