//! The Azure twin answers a second client, the newest Python SDKs (azure-mgmt-network 33.1,
//! azure-mgmt-dnsresolver 1.1, api-versions 2026-03-01 and 2025-05-01), as it answers azure_mgmt_network's
//! 2024-03-01: tests/python/lifecycle.py creates, reads, lists and deletes what dxvpn writes.
//!
//! `cargo xtask test` installs the pinned SDKs (tests/python/requirements.txt) in a virtual
//! environment and points `DXVPN_PYTHON` at its interpreter. Under CI the test fails when it is
//! missing rather than passing without having checked anything.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use tokio::process::Command;

use dxvpn_twin_azure::{AzureScenario, AzureTwin};

fn python() -> Option<PathBuf> {
    match std::env::var_os("DXVPN_PYTHON").map(PathBuf::from) {
        Some(p) if p.exists() => Some(p),
        _ if std::env::var_os("CI").is_some() => {
            panic!("DXVPN_PYTHON names no interpreter; run the tests with `cargo xtask test`")
        }
        _ => None,
    }
}

/// Runs the script against `twin`; `(succeeded, stdout + stderr)`.
async fn lifecycle(python: &Path, twin: &AzureTwin, api_version: Option<&str>) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/lifecycle.py");
    let s = &twin.seeded;
    let out = Command::new(python)
        .arg(script)
        .args([
            twin.endpoint.as_str(),
            s.subscription_id.as_str(),
            s.resource_group.as_str(),
            AzureScenario::default().vnet_name.as_str(),
        ])
        .args(api_version)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn the_newest_python_sdks_create_read_and_delete_what_dxvpn_writes() {
    let Some(python) = python() else {
        eprintln!("skipped: DXVPN_PYTHON is not set (cargo xtask test sets it)");
        return;
    };
    let scenario = AzureScenario::default();
    let start = || AzureTwin::start("127.0.0.1:0".parse().unwrap(), &scenario, 0.0001);
    let twin = start().await.unwrap();
    let (ok, out) = lifecycle(&python, &twin, None).await;
    assert!(ok, "{out}");
    // azure-mgmt-network 33.1 sends 2026-03-01; azure-mgmt-dnsresolver 1.1 2025-05-01.
    assert!(
        out.contains("deleted; api-versions sent: 2025-05-01 2026-03-01\n"),
        "{out}"
    );
    // ARM's operation URLs carry the version of the request that started the operation.
    assert!(
        out.contains("operations polled at: 2025-05-01 2026-03-01\n"),
        "{out}"
    );
    assert_eq!(twin.live_ids(), twin.seed_ids(), "back to the seed");

    // The negative control: an api-version ARM never published is refused, as ARM does.
    let twin = start().await.unwrap();
    let (ok, out) = lifecycle(&python, &twin, Some("2019-13-01")).await;
    assert!(!ok, "{out}");
    assert!(out.contains("InvalidApiVersionParameter"), "{out}");
}
