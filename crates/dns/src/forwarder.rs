//! The forwarder: a hickory-server `Catalog` of forwarding zone handlers (hickory-resolver
//! underneath, with its per-TTL cache) and in-memory zones, behind a handler that can swap the
//! catalog while serving (`reload`).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverOpts};
use hickory_server::Server;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::RecordType;
use hickory_server::proto::rr::rdata::{A, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::forwarder::{ForwardConfig, ForwardZoneHandler};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::sync::Semaphore;

use crate::config::{ForwarderConfig, parse_target};

/// Why the forwarder could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum ForwarderError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// hickory refused a zone.
    #[error("zone {zone}: {message}")]
    Zone {
        /// The zone.
        zone: String,
        /// hickory's message.
        message: String,
    },
}

/// Queries answered at once; past this a query gets SERVFAIL at once instead of waiting, so
/// that a flood stalls neither the UDP path nor memory.
pub const MAX_IN_FLIGHT: usize = 256;

/// Answers with whichever catalog is current, within [`MAX_IN_FLIGHT`], and refuses ANY.
#[derive(Clone)]
struct Current {
    catalog: Arc<RwLock<Arc<Catalog>>>,
    in_flight: Arc<Semaphore>,
}

#[async_trait::async_trait]
impl RequestHandler for Current {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        tracing::debug!(query = ?request.queries, src = %request.src(), "query");
        // ANY is the amplification query (RFC 8482 lets a server decline it).
        if request
            .queries
            .queries()
            .iter()
            .any(|q| q.query_type() == RecordType::ANY)
        {
            return answer_error(request, response_handle, ResponseCode::Refused).await;
        }
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            return answer_error(request, response_handle, ResponseCode::ServFail).await;
        };
        let catalog = self
            .catalog
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

/// An answer with no records and `code`.
async fn answer_error<R: ResponseHandler>(
    request: &Request,
    mut response_handle: R,
    code: ResponseCode,
) -> ResponseInfo {
    let response =
        MessageResponseBuilder::from_message_request(request).error_msg(&request.metadata, code);
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "answer not sent");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}

fn name(zone: &str) -> Result<Name, ForwarderError> {
    let fqdn = if zone.ends_with('.') {
        zone.to_owned()
    } else {
        format!("{zone}.")
    };
    Name::from_str(&fqdn).map_err(|e| ForwarderError::Zone {
        zone: zone.to_owned(),
        message: e.to_string(),
    })
}

fn forwarder(
    origin: Name,
    targets: &[String],
    config: &ForwarderConfig,
) -> Result<Arc<dyn ZoneHandler>, ForwarderError> {
    let name_servers = targets
        .iter()
        .filter_map(|t| parse_target(t))
        .map(|addr| {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            server.connections = vec![udp, tcp];
            server
        })
        .collect();
    let mut options = ResolverOpts::default();
    // One try per target within the timeout: a silent target means SERVFAIL, soon.
    options.timeout = config.timeout();
    options.attempts = 1;
    let handler = ForwardZoneHandler::builder_with_config(
        ForwardConfig {
            name_servers,
            options: Some(options),
        },
        TokioRuntimeProvider::default(),
    )
    .with_origin(origin.clone())
    .build()
    .map_err(|message| ForwarderError::Zone {
        zone: origin.to_string(),
        message,
    })?;
    Ok(Arc::new(handler))
}

fn local_zone(zone: &crate::config::LocalZone) -> Result<Arc<dyn ZoneHandler>, ForwarderError> {
    let origin = name(&zone.zone)?;
    let mut handler = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(
        name(&format!("ns.{}", zone.zone))?,
        name(&format!("hostmaster.{}", zone.zone))?,
        1,
        3600,
        600,
        86400,
        60,
    );
    handler.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
    for (host, ip) in &zone.records {
        let fqdn = name(&format!("{host}.{}", zone.zone))?;
        handler.upsert_mut(Record::from_rdata(fqdn, 60, RData::A(A(*ip))), 1);
    }
    Ok(Arc::new(handler))
}

/// The catalog a configuration describes.
pub fn catalog(config: &ForwarderConfig) -> Result<Catalog, ForwarderError> {
    config.check()?;
    let mut catalog = Catalog::new();
    for f in &config.forward {
        let origin = name(&f.zone)?;
        catalog.upsert(
            LowerName::new(&origin),
            vec![forwarder(origin, &f.targets, config)?],
        );
    }
    for l in &config.local {
        catalog.upsert(LowerName::new(&name(&l.zone)?), vec![local_zone(l)?]);
    }
    if !config.upstream.is_empty() {
        catalog.upsert(
            LowerName::new(&Name::root()),
            vec![forwarder(Name::root(), &config.upstream, config)?],
        );
    }
    Ok(catalog)
}

/// A running forwarder on UDP and TCP.
pub struct Forwarder {
    /// The address it answers on (the port is the real one when 0 was asked).
    pub addr: SocketAddr,
    current: Arc<RwLock<Arc<Catalog>>>,
    server: Server<Current>,
    front: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // The front is a task of its own: it must not outlive the forwarder.
        self.front.abort();
    }
}

/// UDP and TCP on one address. With port 0 the free UDP port may be taken for TCP (by any
/// outgoing connection), so a few ports are tried.
async fn bind_both(
    listen: SocketAddr,
) -> Result<(tokio::net::UdpSocket, tokio::net::TcpListener, SocketAddr), ForwarderError> {
    let bind = |addr, source| ForwarderError::Bind { addr, source };
    let mut tries = if listen.port() == 0 { 20 } else { 1 };
    loop {
        tries -= 1;
        let udp = tokio::net::UdpSocket::bind(listen)
            .await
            .map_err(|e| bind(listen, e))?;
        let addr = udp.local_addr().map_err(|e| bind(listen, e))?;
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp, addr)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries > 0 => continue,
            Err(e) => return Err(bind(addr, e)),
        }
    }
}

impl Forwarder {
    /// Checks `config`, binds UDP and TCP on its address (port 0: one free port for both), and
    /// serves.
    pub async fn start(config: &ForwarderConfig) -> Result<Self, ForwarderError> {
        let current = Arc::new(RwLock::new(Arc::new(catalog(config)?)));
        let (udp, tcp, addr) = bind_both(config.listen).await?;
        let allowed = config.allowed_networks();
        let handler = Current {
            catalog: current.clone(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        };
        // UDP through hickory, whose access control answers REFUSED outside `allowed`; TCP
        // through the capped front, which closes such connections.
        let front = crate::tcp_front::serve(tcp, handler.clone(), allowed.clone());
        let mut server = Server::with_access(handler, [], allowed);
        server.register_socket(udp);
        tracing::info!(%addr, zones = config.forward.len() + config.local.len(), "DNS forwarder serving");
        Ok(Forwarder {
            addr,
            current,
            server,
            front,
        })
    }

    /// Serves `config`'s zones from now on (the address stays). A bad config changes nothing.
    pub fn reload(&self, config: &ForwarderConfig) -> Result<(), ForwarderError> {
        let fresh = Arc::new(catalog(config)?);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        tracing::info!(
            zones = config.forward.len() + config.local.len(),
            "DNS forwarder reloaded"
        );
        Ok(())
    }

    /// Stops serving, letting answers in flight finish.
    pub async fn stop(mut self) {
        self.front.abort();
        let _ = self.server.shutdown_gracefully().await;
    }
}
