//! The HTTP server both twins run on: bound, served in the background, stopped gracefully.

use std::net::SocketAddr;

use crate::TwinError;

/// A running axum server.
#[derive(Debug)]
pub struct Server {
    /// `http://IP:PORT` it answers at.
    pub endpoint: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves `app` until [`Server::stop`].
    pub async fn start(
        addr: SocketAddr,
        app: axum::Router,
        name: &'static str,
    ) -> Result<Self, TwinError> {
        let io = |e| TwinError::Bind { addr, source: e };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(io)?;
        let local = listener.local_addr().map_err(io)?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "{name} stopped");
            }
        });
        Ok(Server {
            endpoint: format!("http://{local}"),
            shutdown: Some(shutdown),
            task,
        })
    }

    /// Stops serving and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}
