//! TLS for the one port. The certificate, key and client CA are read at
//! start (a file that cannot be used stops start-up: the port never falls
//! back to plaintext) and again on SIGHUP, when a file that cannot be used
//! keeps the configuration in force and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use super::ListenError;

/// The files TLS is read from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

/// The configuration in force, replaced whole on reload so a handshake
/// never sees half of one.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    pub fn load(files: TlsFiles) -> Result<Self, ListenError> {
        let config = read(&files)?;
        Ok(Tls {
            files,
            current: RwLock::new(config),
        })
    }

    /// An acceptor for one handshake, with the configuration in force.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        };
        TlsAcceptor::from(config)
    }

    /// Reads the files again; on failure the configuration in force stays.
    pub fn reload(&self) -> Result<(), ListenError> {
        let config = read(&self.files)?;
        match self.current.write() {
            Ok(mut c) => *c = config,
            Err(p) => *p.into_inner() = config,
        }
        Ok(())
    }
}

fn read(files: &TlsFiles) -> Result<Arc<ServerConfig>, ListenError> {
    let certs = certificates(&files.cert, "--tls-cert")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| bad("--tls-key", &files.key, &e.to_string()))?;
    let builder = ServerConfig::builder();
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(path, "--tls-client-ca")? {
                roots
                    .add(cert)
                    .map_err(|e| bad("--tls-client-ca", path, &e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| bad("--tls-client-ca", path, &e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| bad("--tls-cert/--tls-key", &files.cert, &e.to_string()))?;
    // gRPC clients insist on negotiating HTTP/2; browsers and curl may
    // take either.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file; none is an error.
fn certificates(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, ListenError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(flag, path, &e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(flag, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn bad(flag: &str, path: &Path, problem: &str) -> ListenError {
    ListenError::Tls(format!("{flag} {}: {problem}", path.display()))
}
