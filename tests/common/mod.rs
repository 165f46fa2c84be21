//! Test harness: a real taillight server on an ephemeral port, with real
//! clients. Each behaviour test is written once as a function taking a
//! [`TestServer`] and instantiated per backend by [`backend_tests!`].

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use taillight::config::ServeArgs;
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{Level, LogEntry};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// Which pipeline a test server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, in-process queue and bus.
    Embedded,
}

pub struct TestServer {
    pub backend: Backend,
    pub addr: SocketAddr,
    /// The configuration it was started with (and restarts with).
    pub cfg: ServeArgs,
    /// Keeps the data directory alive across restarts.
    pub dir: std::sync::Arc<TempDir>,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), taillight::server::ServerError>>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with the defaults changed by `tweak`.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut ServeArgs)) -> Self {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut cfg = ServeArgs::with_data_dir(dir.path());
        // Tests should not wait on fsync; durability across a process crash
        // does not need it (the kill -9 test uses the default).
        cfg.sqlite_synchronous = taillight::storage::sqlite::Synchronous::Normal;
        tweak(&mut cfg);
        Self::launch(backend, cfg, dir).await
    }

    async fn launch(backend: Backend, cfg: ServeArgs, dir: std::sync::Arc<TempDir>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(taillight::server::run(
            listener,
            cfg.clone(),
            shutdown.clone(),
        ));
        let server = TestServer {
            backend,
            addr,
            cfg,
            dir,
            shutdown,
            handle,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.http());
        for _ in 0..400 {
            assert!(
                !self.handle.is_finished(),
                "server at {} exited at start",
                self.addr
            );
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server at {} never became ready", self.addr);
    }

    /// Base URL for HTTP requests and gRPC channels.
    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> LogServiceClient<Channel> {
        LogServiceClient::connect(self.http())
            .await
            .expect("connect")
    }

    /// Graceful shutdown; waits until the server has drained.
    pub async fn stop(self) -> (ServeArgs, std::sync::Arc<TempDir>) {
        self.shutdown.cancel();
        self.handle
            .await
            .expect("server task")
            .expect("server shut down cleanly");
        (self.cfg, self.dir)
    }

    /// Stops and starts again on the same data, on a new port.
    pub async fn restart(self) -> Self {
        let backend = self.backend;
        let (cfg, dir) = self.stop().await;
        Self::launch(backend, cfg, dir).await
    }
}

/// Sends an HTTP request and reads its JSON answer, failing with the raw
/// body when it is not JSON.
pub async fn send_json(req: reqwest::RequestBuilder) -> (reqwest::StatusCode, serde_json::Value) {
    let (_, req) = req.build_split();
    let req = req.expect("request");
    let what = format!("{} {}", req.method(), req.url().path());
    let resp = reqwest::Client::new()
        .execute(req)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = resp.status();
    let text = resp.text().await.expect("response body");
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what} answered {status} with non-JSON {text:?}: {e}"));
    (status, v)
}

/// GETs a URL whose answer must be 200 with JSON.
pub async fn get_json(url: String) -> serde_json::Value {
    let (status, v) = send_json(reqwest::Client::new().get(url)).await;
    assert!(status.is_success(), "answered {status}: {v}");
    v
}

/// A unique service name per test, so tests sharing a store never see each
/// other's entries.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn entry(service: &str, level: Level, message: &str, tags: &[&str]) -> LogEntry {
    LogEntry {
        service: service.to_string(),
        level: level as i32,
        message: message.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

/// Instantiates each listed `async fn NAME(backend: Backend)` once per
/// backend as `#[tokio::test]`s named `BACKEND::NAME`. The function starts
/// its own server(s) with `TestServer::start(backend)` or `start_with`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Embedded).await;
                }
            )*
        }
    };
}
