//! The forwarder for real on loopback: dxvpn's forwarder as the "other cloud's" resolver, a
//! second one forwarding to it, and raw DNS messages (hickory-proto) to read exact response
//! codes. Covers forwarding, local zones, the default upstream, NXDOMAIN, SERVFAIL from a silent
//! target, a missing rule (the negative control), garbage on UDP and TCP, and reload.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use dxvpn_dns::{Forwarder, ForwarderConfig, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asks `server` for the A records of `name` over UDP: (response code, addresses).
async fn ask(server: SocketAddr, name: &str) -> (ResponseCode, Vec<Ipv4Addr>) {
    dxvpn_dns::ask_a(server, name, Duration::from_secs(10))
        .await
        .unwrap()
}

async fn start(text: &str) -> Forwarder {
    Forwarder::start(&ForwarderConfig::from_toml(text).unwrap())
        .await
        .unwrap()
}

fn local(zone: &str, host: &str, ip: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\n[[local]]\nzone = \"{zone}\"\nrecords = {{ {host} = \"{ip}\" }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_zones_answers_local_ones_and_sends_the_rest_upstream() {
    // The Azure side's resolver, and an "internet" upstream.
    let azure = start(&local("azure.internal", "vm1", "10.1.1.10")).await;
    let internet = start(&local("corp.test", "www", "192.0.2.80")).await;
    // The AWS side's forwarder.
    let aws = start(&format!(
        "listen = \"127.0.0.1:0\"\nupstream = [\"{}\"]\n[[forward]]\nzone = \"azure.internal\"\ntargets = [\"{}\"]\n[[local]]\nzone = \"aws.internal\"\nrecords = {{ vm1 = \"10.0.1.10\" }}\n",
        internet.addr, azure.addr
    ))
    .await;
    let vm1_azure = vec![Ipv4Addr::new(10, 1, 1, 10)];

    assert_eq!(
        ask(aws.addr, "vm1.azure.internal.").await,
        (ResponseCode::NoError, vm1_azure.clone())
    );
    assert_eq!(
        ask(aws.addr, "vm1.aws.internal.").await,
        (ResponseCode::NoError, vec![Ipv4Addr::new(10, 0, 1, 10)])
    );
    assert_eq!(
        ask(aws.addr, "www.corp.test.").await,
        (ResponseCode::NoError, vec![Ipv4Addr::new(192, 0, 2, 80)])
    );
    assert_eq!(
        ask(aws.addr, "vm9.azure.internal.").await.0,
        ResponseCode::NXDomain
    );

    // Negative control: without the forwarding rule the zone goes upstream, which does not
    // know it.
    let no_rule = format!("upstream = [\"{}\"]\n", internet.addr);
    aws.reload(&ForwarderConfig::from_toml(&no_rule).unwrap())
        .unwrap();
    let (code, ips) = ask(aws.addr, "vm1.azure.internal.").await;
    assert_ne!(code, ResponseCode::NoError);
    assert!(ips.is_empty());
    // A reload brings it back, on the same address; with no upstream other names are refused
    // rather than leaked.
    let rule_only = format!(
        "[[forward]]\nzone = \"azure.internal\"\ntargets = [\"{}\"]\n",
        azure.addr
    );
    aws.reload(&ForwarderConfig::from_toml(&rule_only).unwrap())
        .unwrap();
    assert_eq!(ask(aws.addr, "vm1.azure.internal.").await.1, vm1_azure);
    assert_eq!(
        ask(aws.addr, "www.corp.test.").await.0,
        ResponseCode::Refused
    );

    aws.stop().await;
    azure.stop().await;
    internet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_target_gives_servfail_within_the_timeout() {
    // A socket that never answers stands for an unreachable inbound endpoint.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let forwarder = start(&format!(
        "listen = \"127.0.0.1:0\"\ntimeout_ms = 500\n[[forward]]\nzone = \"azure.internal\"\ntargets = [\"{}\"]\n",
        silent.local_addr().unwrap()
    ))
    .await;
    let started = Instant::now();
    let (code, ips) = ask(forwarder.addr, "vm1.azure.internal.").await;
    let took = started.elapsed();
    assert_eq!(code, ResponseCode::ServFail, "after {took:?}");
    assert!(ips.is_empty());
    println!("SERVFAIL after {took:?} with a 500 ms timeout");
    forwarder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_udp_and_tcp_does_not_stop_it_answering() {
    let forwarder = start(&local("aws.internal", "vm1", "10.0.1.10")).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    // A well-formed query for vm1.aws.internal A, to mutate: header, name, type, class.
    let mut valid = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["vm1", "aws", "internal"] {
        valid.push(label.len() as u8);
        valid.extend(label.bytes());
    }
    valid.extend([0, 0, 1, 0, 1]);
    let mut next = || {
        // xorshift: reproducible garbage.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..1000 {
        let packet: Vec<u8> = if round % 2 == 0 {
            // Random bytes, 0 to 599 of them.
            let len = (round * 37) % 600;
            (0..len).map(|_| next().to_le_bytes()[0]).collect()
        } else {
            // A valid query with 1 to 4 bytes changed, or cut short: parsers meet these.
            let mut p = valid.clone();
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % p.len();
                p[at] = next().to_le_bytes()[1];
            }
            if round % 7 == 0 {
                p.truncate((next() as usize) % p.len());
            }
            p
        };
        socket.send_to(&packet, forwarder.addr).await.unwrap();
    }
    let mut tcp = tokio::net::TcpStream::connect(forwarder.addr)
        .await
        .unwrap();
    tcp.write_all(&[0x00, 0x10, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .await
        .unwrap();
    tcp.write_all(&[0xff; 64]).await.unwrap();
    let mut sink = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut sink)).await;
    drop(tcp);
    assert_eq!(
        ask(forwarder.addr, "vm1.aws.internal.").await,
        (ResponseCode::NoError, vec![Ipv4Addr::new(10, 0, 1, 10)])
    );
    forwarder.stop().await;
}
