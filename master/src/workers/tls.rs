//! TLS on the worker port (`worker_tls` in master.yaml): `wss://` for our worker and for a
//! stock buildbot-worker (Twisted `tls:` connection string), with optional client
//! certificates.
//!
//! Handshakes run concurrently, each bounded by a timeout, in front of the WebSocket server: a
//! client that opens a TCP connection and stalls cannot hold up the others, and a failed
//! handshake (wrong CA, no client certificate) only ends that connection.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::WorkerTlsConfig;

/// Time a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn certs(field: &str, path: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("worker_tls.{field} {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "worker_tls.{field} {}: not PEM certificates",
                path.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "worker_tls.{field} {}: no certificate in it",
            path.display()
        );
    }
    Ok(certs)
}

/// The acceptor for `worker_tls`; errors name the field and file.
pub fn acceptor(cfg: &WorkerTlsConfig) -> anyhow::Result<TlsAcceptor> {
    let chain = certs("cert", &cfg.cert)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key).with_context(|| {
        format!(
            "worker_tls.key {}: expected a PEM private key",
            cfg.key.display()
        )
    })?;
    let builder = ServerConfig::builder();
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs("client_ca", ca)? {
                roots
                    .add(c)
                    .with_context(|| format!("worker_tls.client_ca {}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .context("worker_tls.client_ca")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder
        .with_single_cert(chain, key)
        .context("worker_tls: the certificate and key do not belong together")?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// A listener that hands axum only connections whose TLS handshake succeeded.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (sock, peer) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "worker port: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                // Small request/response frames: see server.rs.
                let _ = sock.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "worker port: TLS handshake failed")
                        }
                        Err(_) => tracing::warn!(%peer, "worker port: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
