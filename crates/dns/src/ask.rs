//! One A query over UDP with its exact response code: what a check needs to tell NXDOMAIN,
//! SERVFAIL and REFUSED apart (a stub resolver folds them into one error).

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_server::proto::op::{Message, Query, ResponseCode};
use hickory_server::proto::rr::{Name, RData, RecordType};

/// How long to wait before asking again.
const RETRANSMIT: Duration = Duration::from_secs(1);

/// Asks `server` for the A records of `name`: (response code, addresses). Errors: no answer
/// within `timeout`, or a name or answer that does not parse.
pub async fn ask_a(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> std::io::Result<(ResponseCode, Vec<Ipv4Addr>)> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let local: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    let name = Name::from_str(name).map_err(|e| invalid(e.to_string()))?;
    query.add_query(Query::query(name, RecordType::A));
    let bytes = query.to_vec().map_err(|e| invalid(e.to_string()))?;
    // UDP may drop the question or the answer: ask again each second, as stub resolvers do.
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buffer = vec![0u8; 4096];
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer",
            ));
        }
        socket.send_to(&bytes, server).await?;
        let wait = (deadline - now).min(RETRANSMIT);
        let Ok(received) = tokio::time::timeout(wait, socket.recv_from(&mut buffer)).await else {
            continue;
        };
        let (n, from) = received?;
        let Ok(answer) = Message::from_vec(&buffer[..n]) else {
            continue;
        };
        // Only the answer to this query, from the server asked.
        if from != server || answer.metadata.id != query.metadata.id {
            continue;
        }
        let ips = answer
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        return Ok((answer.metadata.response_code, ips));
    }
}
