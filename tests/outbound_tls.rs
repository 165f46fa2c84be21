//! taillight's own connections over TLS, to servers of the test's own that
//! accept nothing else: Redis (`rediss://`, its CA through SSL_CERT_FILE)
//! and MariaDB (`require_secure_transport`, its CA as the URL's `ssl_ca`).
//! An unknown CA is refused with a clear error rather than ignored.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{PrivateMariaDb, Proc};
use common::tls::Certs;
use common::{free_port, unique};

/// A child process killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn serve(data: &std::path::Path, flags: &[&str], env: &[(String, String)]) -> Proc {
    let mut args: Vec<String> = vec!["serve".into(), "--listen".into(), "127.0.0.1:0".into()];
    args.extend(["--data-dir".into(), path(data)]);
    args.extend(flags.iter().map(|s| s.to_string()));
    Proc::spawn_with(&args, env)
}

/// Runs `taillight ARGS` to its end; its status and stderr.
fn run_taillight(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_taillight"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("SSL_CERT_FILE")
        .output()
        .expect("run taillight");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn push_and_read_back(server: &Proc, svc: &str) {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/logs", server.url()))
        .body(format!(r#"{{"service":"{svc}","message":"through tls"}}"#))
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = http
            .get(format!("{}/v1/logs?service={svc}", server.url()))
            .send()
            .await
            .expect("query")
            .text()
            .await
            .expect("body");
        if body.contains("through tls") {
            return;
        }
        assert!(Instant::now() < deadline, "never stored: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_bus_speaks_tls_and_refuses_an_unknown_ca() {
    let certs = Certs::new();
    let port = free_port();
    let _redis = Daemon(
        Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                &path(&certs.cert),
                "--tls-key-file",
                &path(&certs.key),
            ])
            .args([
                "--tls-ca-cert-file",
                &path(&certs.ca),
                "--tls-auth-clients",
                "no",
            ])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server"),
    );
    let ca = path(&certs.ca);
    let cli = |args: &[&str]| {
        Command::new("redis-cli")
            .args([
                "--tls",
                "--cacert",
                &ca,
                "-h",
                "localhost",
                "-p",
                &port.to_string(),
            ])
            .args(args)
            .output()
            .expect("redis-cli")
    };
    wait_until("redis-server with TLS", || {
        String::from_utf8_lossy(&cli(&["PING"]).stdout).contains("PONG")
    });
    let url = format!("rediss://localhost:{port}");
    let prefix = unique("tlsbus");
    let data = tempfile::tempdir().expect("tmp");
    let flags = ["--redis-url", &url, "--redis-prefix", &prefix];
    let server = serve(data.path(), &flags, &[("SSL_CERT_FILE".into(), ca.clone())]);
    let svc = unique("rediss");
    push_and_read_back(&server, &svc).await;
    // The service went into the catalogue in that Redis.
    let members = cli(&["SMEMBERS", &format!("{prefix}services")]);
    assert!(
        String::from_utf8_lossy(&members.stdout).contains(&svc),
        "{members:?}"
    );

    // Without the CA the certificate is not trusted: start-up says so.
    let other = tempfile::tempdir().expect("tmp");
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--data-dir"];
    args.push(other.path().to_str().expect("utf-8"));
    args.extend(flags);
    let (ok, err) = run_taillight(&args, &[]);
    assert!(!ok, "started with an untrusted Redis certificate: {err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mariadb_store_speaks_tls_with_the_urls_ca() {
    let certs = Certs::new();
    let dir = tempfile::tempdir().expect("tmp");
    let tls = [
        format!("--ssl-ca={}", path(&certs.ca)),
        format!("--ssl-cert={}", path(&certs.cert)),
        format!("--ssl-key={}", path(&certs.key)),
        "--require-secure-transport=ON".into(),
    ];
    let mariadb = PrivateMariaDb::install(dir.path(), &tls);
    let port = mariadb.port;
    let db = unique("tls_store").replace('-', "_");
    let url = format!(
        "mysql://root@localhost:{port}/{db}?ssl_ca={}",
        path(&certs.ca)
    );
    let data = tempfile::tempdir().expect("tmp");
    let server = serve(data.path(), &["--database-url", &url], &[]);
    push_and_read_back(&server, &unique("mariadb-tls")).await;
    drop(server);

    // Built-in roots only: the test CA is not among them.
    let plain = format!("mysql://root@localhost:{port}/{db}?require_ssl=true");
    let other = tempfile::tempdir().expect("tmp");
    let (ok, err) = run_taillight(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            other.path().to_str().expect("utf-8"),
            "--database-url",
            &plain,
        ],
        &[],
    );
    assert!(!ok, "started with an untrusted MariaDB certificate: {err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
