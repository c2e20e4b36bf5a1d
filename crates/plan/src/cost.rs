//! Monthly cost estimate from a price table kept in `data/prices.toml` (date and source per item).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Action, Cloud, Resource, Spec};
use crate::problem::Problems;
use crate::validate::Checked;

const PRICES_TOML: &str = include_str!("../data/prices.toml");

/// One price: amount, unit, what and where it came from.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Price {
    /// USD per `per`.
    pub usd: f64,
    /// `hour` or `month`.
    pub per: String,
    /// What is priced.
    pub what: String,
    /// Where the figure comes from.
    pub source: String,
}

/// The price table.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PriceTable {
    /// Date the figures were taken.
    pub as_of: String,
    /// Hours in a billing month.
    pub hours_per_month: f64,
    /// Prices by item key.
    pub items: BTreeMap<String, Price>,
}

impl PriceTable {
    /// The built-in table.
    pub fn builtin() -> Self {
        // The file is part of the crate and checked by a test; an error here is a build defect.
        toml::from_str(PRICES_TOML).unwrap_or_else(|_| PriceTable {
            as_of: String::new(),
            hours_per_month: 730.0,
            items: BTreeMap::new(),
        })
    }

    /// The built-in table with the user's overrides (`[prices]` in the config), checked.
    pub(crate) fn with_overrides(p: &mut Problems, overrides: &BTreeMap<String, f64>) -> Self {
        let mut table = Self::builtin();
        for (key, usd) in overrides {
            let path = format!("prices.{key}");
            match table.items.get_mut(key) {
                None => p.add(
                    &path,
                    "price-item",
                    format!("`{key}` is not an item of the price table"),
                    format!(
                        "use one of: {}",
                        table.items.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(_) if !usd.is_finite() || *usd < 0.0 => p.add(
                    &path,
                    "price-value",
                    format!("{usd} is not a price"),
                    "give a price of 0 or more, in USD per the item's unit",
                ),
                Some(price) => {
                    price.usd = *usd;
                    price.source = "config [prices]".into();
                }
            }
        }
        table
    }

    fn monthly(&self, key: &str) -> Option<(f64, &Price)> {
        let price = self.items.get(key)?;
        let monthly = if price.per == "hour" {
            price.usd * self.hours_per_month
        } else {
            price.usd
        };
        Some((monthly, price))
    }
}

/// One line of the estimate.
#[derive(Debug, Clone, Serialize)]
pub struct CostLine {
    /// Price table key.
    pub item: String,
    /// What is priced.
    pub what: String,
    /// How many.
    pub quantity: u32,
    /// USD per month for all of them.
    pub monthly_usd: f64,
    /// Where the price comes from.
    pub source: String,
}

/// Monthly cost estimate.
#[derive(Debug, Clone, Serialize)]
pub struct CostEstimate {
    /// Total in USD per month.
    pub monthly_usd: f64,
    /// The lines that make the total.
    pub lines: Vec<CostLine>,
    /// Date of the price table.
    pub prices_as_of: String,
    /// What is not included.
    pub excludes: String,
}

pub(crate) fn estimate(checked: &Checked, resources: &[Resource]) -> CostEstimate {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for r in resources.iter().filter(|r| r.action == Action::Create) {
        let (key, n) = match &r.spec {
            Spec::VpnConnection { .. } => ("aws_vpn_connection".to_owned(), 1),
            // Route 53 bills every endpoint IP, and an endpoint has at least two.
            Spec::ResolverEndpoint { subnet_ids, .. } => (
                "aws_resolver_endpoint_ip".to_owned(),
                subnet_ids.len().max(2) as u32,
            ),
            // The priced defaults; another type or size is priced only when the price file
            // names it.
            Spec::ForwarderInstance { instance_type, .. } if r.cloud == Cloud::Aws => {
                *counts.entry("aws_forwarder_volume".to_owned()).or_default() += 1;
                if instance_type == crate::validate::DEFAULT_INSTANCE_TYPE {
                    ("aws_forwarder_instance".to_owned(), 1)
                } else {
                    (
                        format!("aws_instance_{}", instance_type.replace('.', "_")),
                        1,
                    )
                }
            }
            Spec::ForwarderInstance { instance_type, .. } => {
                *counts.entry("azure_forwarder_disk".to_owned()).or_default() += 1;
                if instance_type == crate::validate::DEFAULT_VM_SIZE {
                    ("azure_forwarder_vm".to_owned(), 1)
                } else {
                    (format!("azure_vm_{}", instance_type.to_lowercase()), 1)
                }
            }
            Spec::VirtualNetworkGateway { sku, .. } => {
                (format!("azure_vpn_gateway_{}", sku.to_lowercase()), 1)
            }
            Spec::PublicIp { .. } => ("azure_public_ip".to_owned(), 1),
            Spec::DnsInboundEndpoint { .. } | Spec::DnsOutboundEndpoint { .. } => {
                ("azure_dns_resolver_endpoint".to_owned(), 1)
            }
            Spec::DnsForwardingRuleset { .. } => ("azure_dns_ruleset".to_owned(), 1),
            Spec::TunnelAlarm { .. } => ("aws_cloudwatch_alarm".to_owned(), 1),
            Spec::TunnelAlert { .. } | Spec::TrafficAlert { .. } => {
                ("azure_metric_alert".to_owned(), 1)
            }
            _ => continue,
        };
        *counts.entry(key).or_default() += n;
    }
    let table = &checked.prices;
    let lines: Vec<CostLine> = counts
        .into_iter()
        .filter_map(|(item, quantity)| {
            let (monthly, price) = table.monthly(&item)?;
            Some(CostLine {
                what: price.what.clone(),
                source: price.source.clone(),
                monthly_usd: round_cents(monthly * f64::from(quantity)),
                item,
                quantity,
            })
        })
        .collect();
    CostEstimate {
        monthly_usd: round_cents(lines.iter().map(|l| l.monthly_usd).sum()),
        lines,
        prices_as_of: table.as_of.clone(),
        excludes: "data transfer (usage-based) and resources that exist already".into(),
    }
}

fn round_cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_every_item_has_a_source() {
        let table: PriceTable = toml::from_str(PRICES_TOML).expect("data/prices.toml parses");
        assert!(table.items.len() >= 10);
        for (key, price) in &table.items {
            assert!(price.per == "hour" || price.per == "month", "{key}");
            assert!(!price.source.is_empty() && price.usd >= 0.0, "{key}");
        }
        let (vpn, _) = table.monthly("aws_vpn_connection").unwrap();
        assert!((vpn - 36.5).abs() < 1e-9);
    }
}
