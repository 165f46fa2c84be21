//! Test certificates, made with the openssl command: a CA, a server
//! certificate for `localhost` and 127.0.0.1, and a client certificate.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What every key here is: a P-256 key, unencrypted.
const NEW_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];
/// The server certificate's extensions.
const SERVER_EXT: &str = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";

pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certs {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let mut ca = vec!["req", "-x509"];
        ca.extend(NEW_KEY);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=taillight test CA",
        ]);
        openssl(d, &ca);
        signed(d, "server", "/CN=localhost", SERVER_EXT);
        signed(
            d,
            "client",
            "/CN=test client",
            "extendedKeyUsage=clientAuth\n",
        );
        Certs {
            ca: d.join("ca.pem"),
            cert: d.join("server.pem"),
            key: d.join("server.key"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client.key"),
            dir,
        }
    }

    /// A second server certificate from the same CA, named `cn`, written
    /// over the first (for reloading).
    pub fn reissue(&self, cn: &str) {
        signed(self.dir.path(), "server", &format!("/CN={cn}"), SERVER_EXT);
    }
}

/// `name.pem` and `name.key`, signed by the CA, with extensions `ext`.
fn signed(d: &Path, name: &str, subject: &str, ext: &str) {
    let (key, csr, pem, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(d.join(&extfile), ext).expect("ext");
    let mut req = vec!["req"];
    req.extend(NEW_KEY);
    req.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
    openssl(d, &req);
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &extfile,
        ],
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
