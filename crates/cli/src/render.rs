//! Human-readable output for plans and problems.

use std::io::{self, Write};
use std::path::Path;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use dxvpn_plan::model::{Action, Deferred, PskSource};
use dxvpn_plan::{Plan, Problem, Problems};

/// Writes the plan as sections: resources, tunnels, BGP and IPsec, DNS, cost, warnings.
pub(crate) fn plan_text(out: &mut impl Write, plan: &Plan) -> io::Result<()> {
    let created = plan
        .resources
        .iter()
        .filter(|r| r.action == Action::Create)
        .count();
    writeln!(
        out,
        "Plan {} ({}): AWS {} {} {}  <->  Azure {} {} {}\n",
        plan.name,
        plan.use_case.as_str(),
        plan.aws.region,
        plan.aws.vpc_id,
        plan.aws.vpc_cidr,
        plan.azure.location,
        plan.azure.vnet_name,
        plan.azure.vnet_cidr
    )?;

    writeln!(
        out,
        "Resources: {created} to create, {} referenced",
        plan.resources.len() - created
    )?;
    let mut table = new_table(["cloud", "action", "kind", "role", "name", "depends on"]);
    for r in &plan.resources {
        let action = match r.action {
            Action::Create => "create",
            Action::Reference => "use",
        };
        table.add_row([
            r.cloud.as_str(),
            action,
            r.kind(),
            &r.role,
            &r.name,
            &r.depends_on.join(", "),
        ]);
    }
    writeln!(out, "{table}\n")?;

    writeln!(out, "Tunnels: {}", plan.tunnels.len())?;
    let mut table = new_table([
        "tunnel",
        "aws connection",
        "azure instance",
        "inside cidr",
        "aws inside",
        "azure inside",
        "psk",
    ]);
    for t in &plan.tunnels {
        let p = &t.pairing;
        table.add_row([
            t.key.clone(),
            (p.aws_connection + 1).to_string(),
            (p.azure_instance + 1).to_string(),
            p.inside_cidr.to_string(),
            p.aws_inside_ip.to_string(),
            p.azure_inside_ip.to_string(),
            match t.psk {
                PskSource::Generated => "generated at up".into(),
                PskSource::Config => "from config (hidden)".into(),
            },
        ]);
    }
    writeln!(out, "{table}")?;
    let policy = &plan.ipsec_policy;
    writeln!(
        out,
        "BGP: AWS AS {} <-> Azure AS {} ({} gateway {}). IPsec: {} {} / ESP {}, DPD {} s.\n",
        plan.aws.asn,
        plan.azure.asn,
        if plan.azure.active_active {
            "active-active"
        } else {
            "active-standby"
        },
        plan.azure.sku,
        policy.ike_version,
        policy.strongswan_ike_proposal(),
        policy.strongswan_esp_proposal(),
        policy.dpd_timeout_seconds
    )?;

    let mode = serde_json::to_value(plan.dns.mode).ok();
    let mode = mode.as_ref().and_then(|m| m.as_str()).unwrap_or_default();
    if plan.dns.forwarding.is_empty() {
        writeln!(out, "DNS: no private zones given, nothing forwarded.\n")?;
    } else {
        writeln!(out, "DNS ({mode}):")?;
        for f in &plan.dns.forwarding {
            let targets = match &f.targets {
                Deferred::Known(ips) => ips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                Deferred::After { from, output } => format!("{output} of {from}"),
            };
            writeln!(
                out,
                "  {} -> {}: {} via {} to {} ({})",
                f.from.as_str(),
                f.to.as_str(),
                f.zones.join(", "),
                f.via,
                targets,
                f.receiver
            )?;
        }
        writeln!(out)?;
    }

    writeln!(
        out,
        "Cost: about {:.2} USD a month (prices as of {}; excludes {})",
        plan.cost.monthly_usd, plan.cost.prices_as_of, plan.cost.excludes
    )?;
    let mut table = new_table(["item", "quantity", "usd/month"]);
    for line in &plan.cost.lines {
        table.add_row([
            line.what.clone(),
            line.quantity.to_string(),
            format!("{:.2}", line.monthly_usd),
        ]);
    }
    writeln!(out, "{table}")?;

    if !plan.warnings.is_empty() {
        writeln!(
            out,
            "\nwarning: {} thing(s) to look at",
            plan.warnings.len()
        )?;
    }
    for w in &plan.warnings {
        problem(out, w)?;
    }
    Ok(())
}

/// Writes every problem with its path, rule and fix.
pub(crate) fn problems_text(
    out: &mut impl Write,
    file: &Path,
    problems: &Problems,
) -> io::Result<()> {
    writeln!(
        out,
        "error: {} problem(s) in {}; nothing was created",
        problems.errors.len(),
        file.display()
    )?;
    for p in &problems.errors {
        problem(out, p)?;
    }
    Ok(())
}

/// One problem or warning: where, which rule, what, and the fix.
fn problem(out: &mut impl Write, p: &Problem) -> io::Result<()> {
    writeln!(
        out,
        "\n  {} [{}]\n    {}\n    fix: {}",
        p.path, p.rule, p.message, p.hint
    )
}

fn new_table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY).set_header(header);
    table
}
