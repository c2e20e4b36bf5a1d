//! `cargo xtask bench up`: `up` on both twins with the clouds' real durations scaled, for each
//! use case, run as a DAG and then one resource at a time. Prints one JSON line per use case:
//! the makespan, the critical path of the measured durations, the sequential apply, and a
//! converged re-run (`up` again when everything exists: reads only).

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

use std::sync::Arc;

use dxvpn_deploy::Deployer;
use dxvpn_lab::LabScenario;
use dxvpn_lab::config::lab_config;
use dxvpn_twin_aws::AwsTwin;
use dxvpn_twin_azure::AzureTwin;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let factor: f64 = std::env::args()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .unwrap_or(1.0 / 120.0);
    for use_case in ["development", "high_availability"] {
        let mut seconds = Vec::new();
        let mut critical = 0.0;
        let mut rerun = 0.0;
        for sequential in [false, true] {
            let scenario = LabScenario::default();
            let aws = AwsTwin::start(
                "127.0.0.1:0".parse().unwrap(),
                &scenario.aws.clone().unwrap_or_default(),
                factor,
            )
            .await
            .unwrap();
            let azure = AzureTwin::start(
                "127.0.0.1:0".parse().unwrap(),
                &scenario.azure.clone().unwrap_or_default(),
                factor,
            )
            .await
            .unwrap();
            let plan = Arc::new(
                dxvpn_plan::plan_from_toml(&lab_config(
                    "dx-bench", use_case, &scenario, &aws, &azure,
                ))
                .unwrap(),
            );
            let mut deployer = Deployer::connect(&plan).await.unwrap();
            if sequential {
                deployer = deployer.with_limit(1);
            }
            let report = deployer.up(plan.clone()).await;
            assert!(report.ok(), "{:?}", report.failures().collect::<Vec<_>>());
            if !sequential {
                critical = report.critical_path(&plan).as_secs_f64();
                let again = deployer.up(plan.clone()).await;
                assert!(again.ok(), "{:?}", again.failures().collect::<Vec<_>>());
                rerun = again.makespan.as_secs_f64();
            }
            seconds.push(report.makespan.as_secs_f64());
            aws.stop().await;
            azure.stop().await;
        }
        println!(
            "{}",
            serde_json::json!({
                "use_case": use_case,
                "time_factor": factor,
                "makespan_s": seconds[0],
                "critical_path_s": critical,
                "sequential_s": seconds[1],
                "converged_rerun_s": rerun,
                "makespan_over_critical_path": seconds[0] / critical,
                "makespan_over_sequential": seconds[0] / seconds[1],
            })
        );
    }
}
