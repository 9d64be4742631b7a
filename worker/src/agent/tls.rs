//! The TLS client side of `wss://` (worker.yaml `tls:`): the master's CA (or the public web
//! PKI roots) and an optional client certificate.

use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::config::TlsConfig;

pub fn client_config(tls: &TlsConfig) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    match &tls.ca {
        Some(ca) => {
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("tls.ca {}", ca.display()))?
            {
                let c =
                    c.with_context(|| format!("tls.ca {}: not PEM certificates", ca.display()))?;
                roots
                    .add(c)
                    .with_context(|| format!("tls.ca {}", ca.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("tls.cert {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("tls.cert {}: not PEM certificates", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
                format!("tls.key {}: expected a PEM private key", key.display())
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .context("tls: the client certificate and key do not belong together")?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
