//! `dxvpn status --watch` off a terminal through the binary, as root on the lab: one JSON line
//! at the start (nothing deployed, not healthy), none while nothing changes (the negative
//! control of "a line per change"), new lines as the clouds' reports change while `up` runs and
//! the tunnels come up, and SIGTERM ends it with the last reading's exit code.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dxvpn_lab::Lab;
use serde_json::Value;

/// The watcher is stopped whatever happens to the test.
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(lines: &Mutex<Vec<Value>>, what: &str, done: impl Fn(&[Value]) -> bool) {
    let start = Instant::now();
    while !done(&lines.lock().unwrap()) {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "{what}: {:#?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_a_line_per_change_and_stops_on_sigterm() {
    let lab = Lab::start_on_loopback(0.0005).await.unwrap();
    let config = lab.config("dx-watch", "development");
    let path = std::env::temp_dir().join(format!("dxvpn-watch-{}.toml", std::process::id()));
    std::fs::write(&path, &config).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_dxvpn"))
        .args([
            "status", "--watch", "--every", "1", "--output", "json", "-c",
        ])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut watcher = Watcher(child);
    let lines = Arc::new(Mutex::new(Vec::<Value>::new()));
    let into = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            into.lock()
                .unwrap()
                .push(serde_json::from_str(&line).unwrap());
        }
    });

    wait_for(&lines, "the first reading", |l| !l.is_empty());
    assert_eq!(lines.lock().unwrap()[0]["healthy"], false);
    // Nothing deployed, nothing changes: three more readings print nothing.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(lines.lock().unwrap().len(), 1, "a line without a change");

    let converged = dxvpn_test_support::converged(&lab, &config).await;
    wait_for(&lines, "a healthy reading", |l| {
        l.last().is_some_and(|v| v["healthy"] == true)
    });
    {
        let seen = lines.lock().unwrap();
        assert!(seen.len() >= 2, "{seen:#?}");
        // Each line differs from the one before it.
        for pair in seen.windows(2) {
            assert_ne!(pair[0]["status"], pair[1]["status"]);
        }
    }

    let pid = watcher.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let code = loop {
        if let Some(status) = watcher.0.try_wait().unwrap() {
            break status.code();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "SIGTERM ignored");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0), "exit code of a healthy last reading");

    let down = converged.deployer.down(converged.plan.clone()).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    lab.wait_for(Duration::from_secs(120), |s| s.prefix.is_none())
        .await
        .unwrap();
    lab.stop().await;
    let _ = std::fs::remove_file(&path);
}
