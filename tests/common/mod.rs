//! Test harness: a real taillight server on an ephemeral port, with real
//! clients. Each behaviour test is written once as a function taking a
//! [`TestServer`] and instantiated per backend by [`backend_tests!`].

#![allow(dead_code)]

pub mod mount;
pub mod process;
pub mod reliability;
pub mod tls;

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
    /// Kafka (tansu), MariaDB and Redis, each test with its own topic,
    /// consumer group, database, channel and key prefix.
    Distributed,
}

impl Backend {
    /// Its name in the reliability table.
    pub fn mode(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// Where the distributed tests find their services. MariaDB and Redis run on
/// the machine; a Kafka-protocol broker (tansu) is started once per test
/// process unless TAILLIGHT_TEST_KAFKA names one.
pub struct Infra {
    pub kafka: String,
    pub mysql: String,
    pub redis: String,
}

pub fn infra() -> &'static Infra {
    static INFRA: std::sync::OnceLock<Infra> = std::sync::OnceLock::new();
    INFRA.get_or_init(|| Infra {
        kafka: std::env::var("TAILLIGHT_TEST_KAFKA")
            .unwrap_or_else(|_| Tansu::start_memory().leak()),
        mysql: mysql_url(),
        redis: redis_url(),
    })
}

/// The MariaDB server (without a database), from TAILLIGHT_TEST_MYSQL.
pub fn mysql_url() -> String {
    std::env::var("TAILLIGHT_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// The Redis server, from TAILLIGHT_TEST_REDIS.
pub fn redis_url() -> String {
    std::env::var("TAILLIGHT_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A free loopback port (bound and released; good enough on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tansu broker child process, killed when dropped. A watchdog shell ends
/// it too if the test process dies without dropping it.
pub struct Tansu {
    pub port: u16,
    child: std::process::Child,
}

impl Tansu {
    pub fn start_memory() -> Self {
        let port = free_port();
        Self::start(
            port,
            port,
            "memory://tansu/",
            std::env::temp_dir().as_path(),
        )
    }

    /// An in-memory broker on `port` that tells clients it is at
    /// `advertised` (a proxy the test controls), so every connection a
    /// client opens after reading metadata goes through that address too.
    pub fn start_behind(port: u16, advertised: u16) -> Self {
        Self::start(
            port,
            advertised,
            "memory://tansu/",
            std::env::temp_dir().as_path(),
        )
    }

    /// A broker whose topics and committed offsets survive a kill -9: SQLite
    /// in `dir`, so a restart on the same port and dir continues.
    pub fn start_sqlite(port: u16, dir: &std::path::Path) -> Self {
        // tansu resolves the file relative to its working directory.
        Self::start(port, port, "sqlite://tansu.db", dir)
    }

    fn start(port: u16, advertised: u16, storage: &str, cwd: &std::path::Path) -> Self {
        let script = format!(
            "tansu broker --listener-url tcp://127.0.0.1:{port} --advertised-listener-url tcp://127.0.0.1:{advertised} --storage-engine {storage} >/dev/null 2>&1 & t=$!; \
             trap 'kill -9 $t 2>/dev/null; exit 0' TERM; \
             while kill -0 {parent} 2>/dev/null && kill -0 $t 2>/dev/null; do sleep 0.5; done; kill -9 $t 2>/dev/null",
            parent = std::process::id()
        );
        let child = std::process::Command::new("sh")
            .current_dir(cwd)
            .arg("-c")
            .arg(script)
            .spawn()
            .expect("tansu must be installed (tests/run.sh installs it)");
        wait_for_port(port, "tansu");
        Tansu { port, child }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Keeps the broker for the rest of the process; returns its address.
    fn leak(self) -> String {
        let b = self.brokers();
        std::mem::forget(self);
        b
    }

    /// Kills the broker at once (SIGKILL to tansu via the watchdog).
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.child.wait();
        // The port is free once tansu is gone.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Per-test state outside the server that must outlive restarts and be
/// cleaned up at the end: the data directory, the database, Redis keys.
pub struct Scratch {
    pub dir: TempDir,
    /// `(server URL, database name)` of a MariaDB database to drop.
    database: Option<(String, String)>,
    /// Redis URL and key prefix to delete.
    redis_keys: Option<(String, String)>,
}

/// Drops a test's own database from the machine's MariaDB.
pub fn drop_database(db: &str) {
    let _ = std::process::Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            "-uroot",
            "-e",
            &format!("DROP DATABASE IF EXISTS `{db}`"),
        ])
        .status();
}

/// Every stored message of `svc`, read through the export.
pub async fn exported_messages(base: &str, svc: &str) -> Vec<String> {
    let text = reqwest::get(format!("{base}/v1/logs/export?service={svc}"))
        .await
        .expect("export")
        .text()
        .await
        .expect("body");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["message"].as_str().map(str::to_string))
        .collect()
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some((_, db)) = &self.database {
            drop_database(db);
        }
        if let Some((url, prefix)) = &self.redis_keys {
            let keys = std::process::Command::new("redis-cli")
                .args(["-u", url, "--scan", "--pattern", &format!("{prefix}*")])
                .output();
            if let Ok(out) = keys {
                let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(String::from)
                    .collect();
                if !keys.is_empty() {
                    let _ = std::process::Command::new("redis-cli")
                        .args(["-u", url, "DEL"])
                        .args(&keys)
                        .output();
                }
            }
        }
    }
}

/// A name unique to this test process and call, for topics, groups,
/// databases, channels.
pub fn unique_name(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

/// The configuration of a test server on `backend`, and its scratch space.
pub fn test_config(backend: Backend) -> (ServeArgs, std::sync::Arc<Scratch>) {
    let kafka = (backend == Backend::Distributed).then(|| infra().kafka.clone());
    config_on(kafka)
}

/// A configuration on the broker `kafka` with its own database, topic,
/// group, channel and prefix on the shared MariaDB and Redis; embedded
/// (SQLite, in-process queue and bus) when `kafka` is `None`.
pub fn config_on(kafka: Option<String>) -> (ServeArgs, std::sync::Arc<Scratch>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = ServeArgs::with_data_dir(dir.path());
    // Tests should not wait on fsync; durability across a process crash
    // does not need it (the kill -9 tests use the default).
    cfg.store.sqlite.sqlite_synchronous = taillight::storage::sqlite::Synchronous::Normal;
    let mut scratch = Scratch {
        dir,
        database: None,
        redis_keys: None,
    };
    if let Some(kafka) = kafka {
        let (mysql, redis) = (mysql_url(), redis_url());
        let name = unique_name("tl");
        cfg.queue.kafka.kafka_brokers = Some(kafka);
        cfg.queue.kafka.kafka_topic = format!("{name}.logs");
        cfg.queue.kafka.kafka_group = format!("{name}.writers");
        cfg.queue.kafka.kafka_partitions = 3;
        cfg.queue.kafka.kafka_session_timeout = Duration::from_secs(3);
        cfg.store.mysql.database_url = Some(format!("{mysql}/{name}"));
        cfg.store.mysql.database_pool = 4;
        cfg.bus.redis_url = Some(redis.clone());
        cfg.bus.redis_channel = format!("{name}.records");
        cfg.bus.redis_prefix = format!("{name}:");
        scratch.database = Some((mysql, name.clone()));
        scratch.redis_keys = Some((redis, format!("{name}:")));
    }
    (cfg, std::sync::Arc::new(scratch))
}

pub struct TestServer {
    pub backend: Backend,
    pub addr: SocketAddr,
    /// The configuration it was started with (and restarts with).
    pub cfg: ServeArgs,
    /// Keeps the data directory, database and keys alive across restarts.
    pub scratch: std::sync::Arc<Scratch>,
    /// The key the harness reads /metrics with, when the server needs keys.
    pub admin_key: Option<String>,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), taillight::server::ServerError>>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with the defaults changed by `tweak`.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut ServeArgs)) -> Self {
        let (mut cfg, scratch) = test_config(backend);
        tweak(&mut cfg);
        Self::launch(backend, cfg, scratch).await
    }

    /// Another server sharing this one's backends (same database, topic,
    /// group, channel), configured by `tweak`: a second node of one cluster.
    pub async fn sibling(&self, tweak: impl FnOnce(&mut ServeArgs)) -> Self {
        let mut cfg = self.cfg.clone();
        tweak(&mut cfg);
        Self::launch(self.backend, cfg, self.scratch.clone()).await
    }

    /// Starts a server on exactly this configuration and scratch space.
    pub async fn launch(
        backend: Backend,
        cfg: ServeArgs,
        scratch: std::sync::Arc<Scratch>,
    ) -> Self {
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
            scratch,
            admin_key: None,
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

    /// The token that shuts the server down, for a test that must begin a
    /// shutdown while it is doing something else.
    pub fn stop_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Graceful shutdown; waits until the server has drained.
    pub async fn stop(self) -> (ServeArgs, std::sync::Arc<Scratch>) {
        self.shutdown.cancel();
        self.handle
            .await
            .expect("server task")
            .expect("server shut down cleanly");
        (self.cfg, self.scratch)
    }

    /// Stops and starts again on the same data, on a new port.
    pub async fn restart(self) -> Self {
        let backend = self.backend;
        let (cfg, scratch) = self.stop().await;
        Self::launch(backend, cfg, scratch).await
    }

    /// Reads one value from /metrics.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.metrics_text().await;
        sample_of(&text, name).unwrap_or_else(|| panic!("no metric {name}"))
    }

    /// The server's /metrics, with its admin key when it requires keys.
    pub async fn metrics_text(&self) -> String {
        let mut req = reqwest::Client::new().get(format!("{}/metrics", self.http()));
        if let Some(k) = &self.admin_key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        req.send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// Waits until every acknowledged entry is stored and queryable. In the
    /// embedded mode that is already so when a push returns; with Kafka the
    /// writer stores it a moment later.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let accepted = self.metric("taillight_entries_accepted_total").await;
            let stored = self.metric("taillight_entries_stored_total").await;
            if stored >= accepted {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {stored} of {accepted} acknowledged entries were stored"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

/// Every record matching `filter`, oldest first, walking every page.
pub async fn query_all(
    c: &mut LogServiceClient<Channel>,
    filter: taillight::proto::LogFilter,
) -> Vec<taillight::proto::LogRecord> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let resp = c
            .query_logs(taillight::proto::QueryLogsRequest {
                filter: Some(filter.clone()),
                order: taillight::proto::Order::OldestFirst as i32,
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("QueryLogs")
            .into_inner();
        out.extend(resp.records);
        if resp.next_page_token.is_empty() {
            return out;
        }
        token = resp.next_page_token;
    }
}

/// Reads one value from the /metrics of the server at `base` (`http://…`).
pub async fn metric_at(base: &str, name: &str) -> u64 {
    try_metric_at(base, name)
        .await
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// One value from /metrics, or `None` while the part that reports it has
/// not started yet.
pub async fn try_metric_at(base: &str, name: &str) -> Option<u64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    sample_of(&text, name)
}

/// The value of the unlabelled sample `name` in a /metrics text.
pub fn sample_of(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
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

/// The filter of one service's records.
pub fn only(service: &str) -> taillight::proto::LogFilter {
    taillight::proto::LogFilter {
        services: vec![service.to_string()],
        ..Default::default()
    }
}

/// A record's attribute, failing the test when it has none by that name.
pub fn attr<'a>(r: &'a taillight::proto::LogRecord, key: &str) -> &'a str {
    r.attributes
        .get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no attribute {key} in {:?}", r.attributes))
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
        mod distributed {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Distributed).await;
                }
            )*
        }
    };
}

/// Waits until exactly `want` records match `filter` at the server at
/// `base` (`http://…`); fails if more arrive, or after `within`. The records,
/// oldest first.
pub async fn wait_records(
    base: &str,
    filter: &taillight::proto::LogFilter,
    want: usize,
    within: Duration,
) -> Vec<taillight::proto::LogRecord> {
    let deadline = std::time::Instant::now() + within;
    let mut c = LogServiceClient::connect(base.to_string())
        .await
        .expect("connect");
    loop {
        let got = query_all(&mut c, filter.clone()).await;
        assert!(
            got.len() <= want,
            "{} records stored, expected {want}",
            got.len()
        );
        if got.len() == want {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {want} records stored",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole /metrics text of the server at `base`.
pub async fn metrics_text_at(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

/// A sample's value in a /metrics text (`name{labels}` exactly as written),
/// 0 when absent.
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            (n == name).then(|| v.trim().parse::<f64>().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Creates an API key in `file` with `taillight keys create ARGS` (the real
/// command); the key it printed.
pub fn create_key(file: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_taillight"))
        .args(["keys", "create", "--keys-file"])
        .arg(file)
        .args(args)
        .output()
        .expect("taillight keys create");
    assert!(
        out.status.success(),
        "keys create {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs clients/python/example.py (stubs generated from proto/ with
/// grpcio-tools) against the server at `addr` (HOST:PORT) as service `svc`,
/// with `env` added (TAILLIGHT_KEY, TAILLIGHT_CA_CERT); what it printed.
pub fn python_example(addr: &str, svc: &str, env: &[(&str, &str)]) -> String {
    use std::process::Command;
    let root = env!("CARGO_MANIFEST_DIR");
    let stubs = tempfile::tempdir().expect("tmp");
    let status = Command::new("python3")
        .args(["-m", "grpc_tools.protoc", "-I", &format!("{root}/proto")])
        .arg(format!("--python_out={}", stubs.path().display()))
        .arg(format!("--grpc_python_out={}", stubs.path().display()))
        .arg(format!("{root}/proto/taillight/v1/logs.proto"))
        .status()
        .expect("grpcio-tools (tests/setup.sh installs it)");
    assert!(status.success(), "generating the stubs");
    let out = Command::new("python3")
        .arg(format!("{root}/clients/python/example.py"))
        .env(
            "PYTHONPATH",
            format!("{root}/clients/python:{}", stubs.path().display()),
        )
        .env("TAILLIGHT_SERVER", addr)
        .env("TAILLIGHT_SERVICE", svc)
        .env_remove("TAILLIGHT_KEY")
        .env_remove("TAILLIGHT_CA_CERT")
        .envs(env.iter().copied())
        .output()
        .expect("python3");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}
