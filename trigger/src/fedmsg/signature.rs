//! fedmsg x509 signature validation (reference: fedmsg `crypto/x509_ng.py`).
//!
//! The signature is RSA PKCS#1 v1.5 with SHA-1 over the canonical JSON of the envelope minus
//! `signature` and `certificate` (see `taskotron_common::json_canon`). Optionally the embedded
//! certificate must chain to a configured CA, not be revoked by the CA's CRL, and its CN must be
//! allowed to publish the topic by `routing_policy`.
//!
//! Production fedmsg certificates are RSA-1024 signed with sha1WithRSA, which modern TLS stacks
//! refuse, so the chain is checked here by hand with the `rsa` crate.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use base64::Engine as _;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::{Digest, Sha1};
use taskotron_common::json_canon;
use x509_parser::prelude::*;

use crate::config::SignatureConfig;

/// Why a message's signature is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SignatureError {
    #[error("message is not JSON: {0}")]
    Json(String),
    #[error("message is unsigned (no {0:?} field)")]
    Unsigned(&'static str),
    #[error("crypto backend {0:?} is not supported (only x509)")]
    Backend(String),
    #[error("{0}")]
    Malformed(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("certificate {cn:?} is not issued by the configured CA: {reason}")]
    Untrusted { cn: String, reason: String },
    #[error("certificate {cn:?} is revoked")]
    Revoked { cn: String },
    #[error("certificate {cn:?} may not publish {topic:?} (routing_policy)")]
    NotAuthorized { cn: String, topic: String },
    #[error("cannot load {what}: {reason}")]
    Setup { what: String, reason: String },
}

/// The trusted CA, CRL and routing policy, loaded once.
pub struct Verifier {
    ca: Option<Ca>,
    revoked_serials: HashSet<Vec<u8>>,
    routing_policy: BTreeMap<String, Vec<String>>,
    routing_nitpicky: bool,
}

struct Ca {
    subject_der: Vec<u8>,
    key: RsaPublicKey,
}

impl Verifier {
    /// Signature-only verification (the embedded certificate is trusted as is).
    pub fn signature_only() -> Verifier {
        Verifier {
            ca: None,
            revoked_serials: HashSet::new(),
            routing_policy: BTreeMap::new(),
            routing_nitpicky: false,
        }
    }

    /// Loads the CA and CRL named by the config.
    pub fn from_config(cfg: &SignatureConfig) -> Result<Verifier, SignatureError> {
        let mut v = Verifier::signature_only();
        v.routing_policy = cfg.routing_policy.clone();
        v.routing_nitpicky = cfg.routing_nitpicky;
        if let Some(path) = &cfg.ca_cert {
            let pem = read(path)?;
            let (_, pem) = parse_x509_pem(&pem).map_err(|e| setup(path, e))?;
            let cert = pem.parse_x509().map_err(|e| setup(path, e))?;
            let key = rsa_key(&cert).map_err(|e| setup(path, e))?;
            v.ca = Some(Ca {
                subject_der: cert.subject().as_raw().to_vec(),
                key,
            });
        }
        if let Some(path) = &cfg.crl {
            let pem = read(path)?;
            let (_, pem) = parse_x509_pem(&pem).map_err(|e| setup(path, e))?;
            let (_, crl) = parse_x509_crl(&pem.contents).map_err(|e| setup(path, e))?;
            let ca = v.ca.as_ref().ok_or_else(|| SignatureError::Setup {
                what: path.display().to_string(),
                reason: "a CRL needs a CA certificate".into(),
            })?;
            check_signed_by(
                crl.tbs_cert_list.as_ref(),
                &crl.signature_algorithm.algorithm.to_id_string(),
                &crl.signature_value.data,
                &ca.key,
            )
            .map_err(|e| setup(path, format!("CRL not signed by the CA: {e}")))?;
            v.revoked_serials = crl
                .iter_revoked_certificates()
                .map(|r| r.raw_serial().to_vec())
                .collect();
        }
        Ok(v)
    }

    /// True when a CA is configured (full chain checks), false for signature-only mode.
    pub fn checks_chain(&self) -> bool {
        self.ca.is_some()
    }

    /// Verifies one envelope body; returns the signer's certificate CN.
    pub fn verify(&self, body: &[u8]) -> Result<String, SignatureError> {
        let mut value = json_canon::parse(body).map_err(|e| SignatureError::Json(e.to_string()))?;
        if let Some(crypto) = value.get("crypto") {
            match crypto {
                json_canon::Value::Str(s) if s.to_string_lossless().as_deref() == Some("x509") => {}
                other => {
                    return Err(SignatureError::Backend(json_canon::to_string(other)));
                }
            }
        }
        let sig_b64 = take_str(&mut value, "signature")?;
        let cert_b64 = take_str(&mut value, "certificate")?;
        let topic = match value.get("topic") {
            Some(json_canon::Value::Str(s)) => s.to_string_lossless().unwrap_or_default(),
            _ => return Err(SignatureError::Malformed("field \"topic\" missing".into())),
        };
        let sig = b64(&sig_b64, "signature")?;
        let cert_pem = b64(&cert_b64, "certificate")?;
        let (_, pem) = parse_x509_pem(&cert_pem)
            .map_err(|e| SignatureError::Malformed(format!("certificate is not PEM: {e}")))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| SignatureError::Malformed(format!("certificate is not X.509: {e}")))?;
        let cn = common_name(&cert);

        let canonical = json_canon::to_string(&value);
        let key = rsa_key(&cert).map_err(SignatureError::Malformed)?;
        key.verify(
            Pkcs1v15Sign::new::<Sha1>(),
            &Sha1::digest(canonical.as_bytes()),
            &sig,
        )
        .map_err(|_| SignatureError::BadSignature)?;

        if let Some(ca) = &self.ca {
            if cert.issuer().as_raw() != ca.subject_der.as_slice() {
                return Err(SignatureError::Untrusted {
                    cn,
                    reason: "issuer differs from the CA's subject".into(),
                });
            }
            check_signed_by(
                cert.tbs_certificate.as_ref(),
                &cert.signature_algorithm.algorithm.to_id_string(),
                &cert.signature_value.data,
                &ca.key,
            )
            .map_err(|reason| SignatureError::Untrusted {
                cn: cn.clone(),
                reason,
            })?;
            if !cert.validity().is_valid() {
                return Err(SignatureError::Untrusted {
                    cn,
                    reason: "certificate is expired or not yet valid".into(),
                });
            }
            if self.revoked_serials.contains(cert.raw_serial()) {
                return Err(SignatureError::Revoked { cn });
            }
        }

        match self.routing_policy.get(&topic) {
            Some(allowed) if !allowed.contains(&cn) => {
                return Err(SignatureError::NotAuthorized { cn, topic })
            }
            None if self.routing_nitpicky => {
                return Err(SignatureError::NotAuthorized { cn, topic })
            }
            _ => {}
        }
        Ok(cn)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SignatureError> {
    std::fs::read(path).map_err(|e| setup(path, e))
}

fn setup(path: &Path, e: impl std::fmt::Display) -> SignatureError {
    SignatureError::Setup {
        what: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn take_str(v: &mut json_canon::Value, key: &'static str) -> Result<String, SignatureError> {
    match v.remove_key(key) {
        Some(json_canon::Value::Str(s)) => s
            .to_string_lossless()
            .ok_or_else(|| SignatureError::Malformed(format!("field {key:?} is not text"))),
        Some(_) => Err(SignatureError::Malformed(format!(
            "field {key:?} must be a string"
        ))),
        None => Err(SignatureError::Unsigned(key)),
    }
}

/// fedmsg wraps base64 at 76 columns; whitespace is ignored like Python's b64decode.
fn b64(s: &str, what: &str) -> Result<Vec<u8>, SignatureError> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| SignatureError::Malformed(format!("{what} is not base64: {e}")))
}

fn rsa_key(cert: &X509Certificate<'_>) -> Result<RsaPublicKey, String> {
    RsaPublicKey::from_public_key_der(cert.public_key().raw)
        .map_err(|e| format!("certificate key is not RSA: {e}"))
}

fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Checks an RSA PKCS#1 v1.5 signature made by `key` over `tbs` (a certificate or CRL body).
fn check_signed_by(
    tbs: &[u8],
    alg_oid: &str,
    sig: &[u8],
    key: &RsaPublicKey,
) -> Result<(), String> {
    let (scheme, digest) = match alg_oid {
        "1.2.840.113549.1.1.5" => (Pkcs1v15Sign::new::<Sha1>(), Sha1::digest(tbs).to_vec()),
        "1.2.840.113549.1.1.11" => (
            Pkcs1v15Sign::new::<sha2::Sha256>(),
            sha2::Sha256::digest(tbs).to_vec(),
        ),
        "1.2.840.113549.1.1.12" => (
            Pkcs1v15Sign::new::<sha2::Sha384>(),
            sha2::Sha384::digest(tbs).to_vec(),
        ),
        "1.2.840.113549.1.1.13" => (
            Pkcs1v15Sign::new::<sha2::Sha512>(),
            sha2::Sha512::digest(tbs).to_vec(),
        ),
        other => return Err(format!("unsupported signature algorithm {other}")),
    };
    key.verify(scheme, &digest, sig)
        .map_err(|_| "signature by the CA does not verify".to_string())
}
