//! The forwarder's DNS over TCP, served here rather than by hickory's listener: hickory accepts
//! without a cap and retries a failed accept at once, so out of file descriptors it spins a
//! core. Here each connection is checked against the allowed networks, at most [`MAX_TCP`] are
//! open at once (the next is closed at once), a failed accept backs off, and each message goes
//! to the same handler (catalog, in-flight cap, ANY refusal) as the UDP path.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::rr::Record;
use hickory_server::proto::serialize::binary::BinEncoder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// TCP connections open at once. DNS over TCP is for the rare truncated answer: a few dozen
/// is plenty, and the cap keeps a flood from taking every file descriptor.
pub const MAX_TCP: usize = 64;
/// How long a TCP client may stay silent before the connection is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The longest pause after failed accepts in a row.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves DNS over TCP on `listener` with `handler` until aborted.
pub(crate) fn serve<H>(listener: TcpListener, handler: H, allowed: Vec<IpNet>) -> JoinHandle<()>
where
    H: RequestHandler + Clone,
{
    tokio::spawn(async move {
        let open = Arc::new(Semaphore::new(MAX_TCP));
        let mut backoff = Duration::from_millis(10);
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => {
                    backoff = Duration::from_millis(10);
                    accepted
                }
                Err(e) => {
                    // EMFILE and friends: retrying at once only spins.
                    tracing::warn!(error = %e, ?backoff, "TCP accept failed; pausing");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            };
            if !allowed
                .iter()
                .any(|n| n.contains(&peer.ip().to_canonical()))
            {
                tracing::debug!(%peer, "TCP client outside the allowed networks; closed");
                continue;
            }
            let Ok(permit) = open.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "TCP connections at the cap; closed");
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let _permit = permit;
                connection(stream, peer, handler).await;
            });
        }
    })
}

/// One connection: length-prefixed messages answered in turn, until the client is silent for
/// [`TCP_IDLE`], closes, or sends what is not DNS.
async fn connection<H: RequestHandler>(mut stream: TcpStream, peer: SocketAddr, handler: H) {
    loop {
        let mut length = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut length)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut message)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Ok(request) = Request::from_bytes(message, peer, Protocol::Tcp) else {
            return;
        };
        let answer = Answer::default();
        handler
            .handle_request::<Answer, TokioTime>(&request, answer.clone())
            .await;
        let Some(bytes) = answer.take() else {
            continue;
        };
        let Ok(length) = u16::try_from(bytes.len()) else {
            return;
        };
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend(bytes);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// Where the handler's answer to one TCP message is kept until it is written.
#[derive(Clone, Default)]
struct Answer(Arc<Mutex<Option<Vec<u8>>>>);

impl Answer {
    fn take(&self) -> Option<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Answer {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(u16::MAX);
        let info = response.destructive_emit(&mut encoder)?;
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(bytes);
        Ok(info)
    }
}
