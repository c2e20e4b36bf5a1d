//! The forwarder is not an open resolver: sources outside the allowed networks get REFUSED,
//! ANY is refused, a flood of slow queries gets SERVFAIL past the in-flight cap while other
//! queries are still answered, TCP connections are capped and checked, and a failed accept
//! (out of file descriptors) backs off instead of spinning. Each with its control.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use dxvpn_dns::{Forwarder, ForwarderConfig, MAX_IN_FLIGHT, MAX_TCP, ResponseCode};
use hickory_server::proto::op::{Message, Query};
use hickory_server::proto::rr::{Name, RecordType};
use tokio::io::AsyncReadExt;

const ZONES: &str = "[[local]]\nzone = \"lab.test\"\nrecords = { vm1 = \"10.9.9.9\" }\n";

async fn start(extra: &str) -> Forwarder {
    let text = format!("listen = \"127.0.0.1:0\"\n{extra}\n{ZONES}");
    Forwarder::start(&ForwarderConfig::from_toml(&text).unwrap())
        .await
        .unwrap()
}

fn query(name: &str, kind: RecordType) -> (u16, Vec<u8>) {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_str(name).unwrap(), kind));
    (message.metadata.id, message.to_vec().unwrap())
}

/// One UDP question from `source`: the response code, or None without an answer in 3 s.
async fn ask_from(
    source: Ipv4Addr,
    server: SocketAddr,
    name: &str,
    kind: RecordType,
) -> Option<ResponseCode> {
    let socket = tokio::net::UdpSocket::bind((source, 0)).await.unwrap();
    let (id, bytes) = query(name, kind);
    socket.send_to(&bytes, server).await.unwrap();
    let mut buffer = vec![0u8; 4096];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buffer))
            .await
            .ok()?
            .unwrap();
        let answer = Message::from_vec(&buffer[..n]).unwrap();
        if answer.metadata.id == id {
            return Some(answer.metadata.response_code);
        }
    }
}

const HERE: Ipv4Addr = Ipv4Addr::LOCALHOST;
const NEIGHBOUR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_outside_the_allowed_networks_are_refused() {
    let vpc_only = start("allow = [\"10.0.0.0/16\"]").await;
    let at = vpc_only.addr;
    assert_eq!(
        ask_from(NEIGHBOUR, at, "vm1.lab.test.", RecordType::A).await,
        Some(ResponseCode::Refused),
        "a source outside the VPC was answered"
    );
    // Controls: loopback is always answered, and an allowed source is.
    assert_eq!(
        ask_from(HERE, at, "vm1.lab.test.", RecordType::A).await,
        Some(ResponseCode::NoError)
    );
    let widened = start("allow = [\"127.0.0.2/32\"]").await;
    assert_eq!(
        ask_from(NEIGHBOUR, widened.addr, "vm1.lab.test.", RecordType::A).await,
        Some(ResponseCode::NoError)
    );
    // TCP from outside: closed before a byte is read.
    let outside = tokio::net::TcpSocket::new_v4().unwrap();
    outside.bind(SocketAddr::from((NEIGHBOUR, 0))).unwrap();
    let mut stream = outside.connect(at).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "a TCP client outside was kept: {read:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_is_refused() {
    let forwarder = start("").await;
    assert_eq!(
        ask_from(HERE, forwarder.addr, "lab.test.", RecordType::ANY).await,
        Some(ResponseCode::Refused)
    );
    assert_eq!(
        ask_from(HERE, forwarder.addr, "vm1.lab.test.", RecordType::A).await,
        Some(ResponseCode::NoError),
        "the control: an A query is answered"
    );
}

/// Twice the cap of queries to a target that never answers: those past the cap get SERVFAIL at
/// once instead of piling up, a question sent during the flood is answered at once (not
/// queued behind it), and once the slow ones have timed out all is answered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_in_flight_cap_gets_servfail_and_never_stalls() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let forwarder = start(&format!(
        "timeout_ms = 2000\n[[forward]]\nzone = \"silent.test\"\ntargets = [\"{}\"]",
        silent.local_addr().unwrap()
    ))
    .await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..2 * MAX_IN_FLIGHT {
        let (_, bytes) = query(&format!("h{i}.silent.test."), RecordType::A);
        socket.send_to(&bytes, forwarder.addr).await.unwrap();
        // Paced, so that the server's socket buffer drops none of them.
        if i % 32 == 31 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Answers before the silent target's 2 s timeout are the cap's SERVFAILs.
    let mut early_servfails = 0;
    let mut buffer = vec![0u8; 4096];
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(1000), socket.recv_from(&mut buffer)).await
    {
        if Message::from_vec(&buffer[..n])
            .unwrap()
            .metadata
            .response_code
            == ResponseCode::ServFail
        {
            early_servfails += 1;
        }
    }
    assert!(
        early_servfails >= MAX_IN_FLIGHT / 2,
        "{early_servfails} queries past the cap were answered at once"
    );
    assert!(
        ask_from(HERE, forwarder.addr, "vm1.lab.test.", RecordType::A)
            .await
            .is_some(),
        "the flood stalled the UDP path"
    );
    // Once the slow ones have timed out (each target is tried over UDP, then TCP), the cap
    // is given back.
    let mut after = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = ask_from(HERE, forwarder.addr, "vm1.lab.test.", RecordType::A).await;
        if after == Some(ResponseCode::NoError) {
            break;
        }
    }
    assert_eq!(
        after,
        Some(ResponseCode::NoError),
        "the cap was not given back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_past_the_cap_are_closed_at_once() {
    let forwarder = start("").await;
    let mut held = Vec::new();
    for _ in 0..MAX_TCP {
        held.push(
            tokio::net::TcpStream::connect(forwarder.addr)
                .await
                .unwrap(),
        );
    }
    // Let the front take them all before the one past the cap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = tokio::net::TcpStream::connect(forwarder.addr)
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "a connection past the cap was kept: {read:?}"
    );
    // The control: with one closed, a new connection is served (an answer over TCP).
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut stream = tokio::net::TcpStream::connect(forwarder.addr)
        .await
        .unwrap();
    let (_, bytes) = query("vm1.lab.test.", RecordType::A);
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend(bytes);
    tokio::io::AsyncWriteExt::write_all(&mut stream, &framed)
        .await
        .unwrap();
    let mut length = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut length))
        .await
        .expect("an answer over TCP under the cap")
        .unwrap();
}
