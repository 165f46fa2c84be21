//! One taillight server under test, as its own process (so its memory and
//! CPU are its own), with the broker, database and Redis names it uses, and
//! a sampler of its resident memory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use taillight::config::ServeArgs;
use taillight::proto::log_service_client::LogServiceClient;
use tonic::transport::Channel;

use crate::common::{Scratch, Tansu, config_on, free_port, metric_at};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// SQLite, in-process queue and bus: `taillight serve` as shipped.
    Embedded,
    /// Kafka (tansu), MariaDB and Redis.
    Distributed,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Embedded => "embedded",
            Mode::Distributed => "kafka+mariadb+redis",
        }
    }
}

pub struct Node {
    pub mode: Mode,
    /// `http://127.0.0.1:PORT`, for gRPC and HTTP alike.
    pub base: String,
    pub cfg: ServeArgs,
    child: Child,
    /// The node's own broker, so its memory is freed with the node.
    _tansu: Option<Tansu>,
    /// Drops the database and Redis keys when the node is done.
    _scratch: Arc<Scratch>,
    /// Highest RSS seen since the last `reset_peak`, in bytes.
    peak_rss: Arc<AtomicU64>,
    stop_sampler: Arc<AtomicBool>,
}

/// Largest gRPC message the suite's clients send or accept: above the
/// server's own limits, so a limit hit is the server's, not the client's.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

impl Node {
    pub async fn start(mode: Mode, bin: &str) -> Node {
        Self::start_with(mode, bin, &[]).await
    }

    /// Starts a node with `env` added to its environment (more flags).
    pub async fn start_with(mode: Mode, bin: &str, env: &[(&str, String)]) -> Node {
        let tansu = (mode == Mode::Distributed).then(Tansu::start_memory);
        let (mut cfg, scratch) = config_on(tansu.as_ref().map(Tansu::brokers));
        let port = free_port();
        cfg.listen = ([127, 0, 0, 1], port).into();
        // Production defaults, not the tests' shortcuts.
        cfg.store.sqlite.sqlite_synchronous = taillight::storage::sqlite::Synchronous::Full;
        cfg.queue.kafka.kafka_partitions = 6;
        cfg.store.mysql.database_pool = 8;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TAILLIGHT_LOG", "warn")
            .env("TAILLIGHT_LISTEN", cfg.listen.to_string())
            .env("TAILLIGHT_DATA_DIR", &cfg.store.sqlite.data_dir)
            .env("TAILLIGHT_SQLITE_SYNCHRONOUS", "full")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(b) = &cfg.queue.kafka.kafka_brokers {
            cmd.env("TAILLIGHT_KAFKA_BROKERS", b)
                .env("TAILLIGHT_KAFKA_TOPIC", &cfg.queue.kafka.kafka_topic)
                .env("TAILLIGHT_KAFKA_GROUP", &cfg.queue.kafka.kafka_group)
                .env(
                    "TAILLIGHT_KAFKA_PARTITIONS",
                    cfg.queue.kafka.kafka_partitions.to_string(),
                )
                .env("TAILLIGHT_KAFKA_SESSION_TIMEOUT", "6s");
        }
        if let Some(u) = &cfg.store.mysql.database_url {
            cmd.env("TAILLIGHT_DATABASE_URL", u).env(
                "TAILLIGHT_DATABASE_POOL",
                cfg.store.mysql.database_pool.to_string(),
            );
        }
        if let Some(u) = &cfg.bus.redis_url {
            cmd.env("TAILLIGHT_REDIS_URL", u)
                .env("TAILLIGHT_REDIS_CHANNEL", &cfg.bus.redis_channel)
                .env("TAILLIGHT_REDIS_PREFIX", &cfg.bus.redis_prefix);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let peak_rss = Arc::new(AtomicU64::new(0));
        let stop_sampler = Arc::new(AtomicBool::new(false));
        let (pid, peak, stop) = (child.id(), peak_rss.clone(), stop_sampler.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                if let Some(rss) = rss_bytes(pid) {
                    peak.fetch_max(rss, Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let node = Node {
            mode,
            base: format!("http://127.0.0.1:{port}"),
            cfg,
            child,
            _tansu: tansu,
            _scratch: scratch,
            peak_rss,
            stop_sampler,
        };
        node.wait_ready().await;
        node
    }

    async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.base);
        for _ in 0..1200 {
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{} server never became ready", self.mode.name());
    }

    pub async fn client(&self) -> LogServiceClient<Channel> {
        LogServiceClient::new(self.channel().await)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// A new connection to the node.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.base.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn metric(&self, name: &str) -> u64 {
        metric_at(&self.base, name).await
    }

    /// The server's `/metrics` exposition.
    async fn metrics_text(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics")
    }

    /// The writer's busy seconds per stage (read, store, commit, publish).
    pub async fn writer_seconds(&self) -> [f64; 4] {
        let text = self.metrics_text().await;
        ["read", "store", "commit", "publish"].map(|stage| {
            let name = format!("taillight_writer_seconds_total{{stage=\"{stage}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&name)?.trim().parse().ok())
                .unwrap_or(0.0)
        })
    }

    /// The server's entry-delay histogram at each of `points`: cumulative
    /// (upper bound in ms, entries) pairs, the last bound infinite.
    pub async fn delays(&self, points: &[&str]) -> Vec<Vec<(f64, f64)>> {
        let text = self.metrics_text().await;
        points
            .iter()
            .map(|p| {
                let suffix = format!("\",point=\"{p}\"}}");
                text.lines()
                    .filter_map(|l| {
                        let rest = l.strip_prefix("taillight_entry_delay_seconds_bucket{le=\"")?;
                        let (le, n) = rest.split_once(&suffix)?;
                        let le = match le {
                            "+Inf" => f64::INFINITY,
                            s => s.parse::<f64>().ok()? * 1e3,
                        };
                        Some((le, n.trim().parse().ok()?))
                    })
                    .collect()
            })
            .collect()
    }

    /// Waits until `n` entries have been stored in all; returns when that
    /// happened.
    pub async fn wait_stored(&self, n: u64, timeout: Duration) -> std::time::Instant {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let stored = self.metric("taillight_entries_stored_total").await;
            if stored >= n {
                return std::time::Instant::now();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: only {stored} of {n} entries stored after {timeout:?}",
                self.mode.name()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn reset_peak_rss(&self) {
        self.peak_rss
            .store(rss_bytes(self.child.id()).unwrap_or(0), Relaxed);
    }

    /// Resident memory now, bytes.
    pub fn rss(&self) -> u64 {
        rss_bytes(self.child.id()).unwrap_or(0)
    }

    pub fn peak_rss(&self) -> u64 {
        self.peak_rss.load(Relaxed)
    }

    /// CPU time (user + system) the server process has used, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.child.id()).unwrap_or(0.0)
    }

    /// The database name in distributed mode.
    pub fn database(&self) -> Option<String> {
        let url = self.cfg.store.mysql.database_url.as_ref()?;
        Some(url.rsplit('/').next()?.to_string())
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.cfg.store.sqlite.data_dir.join("taillight.db")
    }

    /// Counts the stored entries of `marker`: (rows, distinct messages,
    /// smallest id, largest id).
    pub async fn stored_counts(&self, marker: &str) -> (u64, u64, u64, u64) {
        let sql = format!(
            "SELECT COUNT(*) AS c0, COUNT(DISTINCT message) AS c1, COALESCE(MIN(id), 0) AS c2, \
             COALESCE(MAX(id), 0) AS c3 FROM logs WHERE message LIKE '{marker}:%'"
        );
        let row = match self.database() {
            Some(db) => crate::sql::mariadb(&db, &sql),
            None => crate::sql::sqlite(&self.sqlite_path(), &sql),
        };
        let v: Vec<u64> = row
            .split_whitespace()
            .map(|x| x.parse().expect("count"))
            .collect();
        (v[0], v[1], v[2], v[3])
    }

    /// Bytes the store occupies on disk.
    pub fn disk_bytes(&self) -> u64 {
        match self.database() {
            Some(db) => crate::sql::mariadb(
                "information_schema",
                &format!(
                    "SELECT COALESCE(SUM(ALLOCATED_SIZE), 0) FROM INNODB_SYS_TABLESPACES WHERE NAME LIKE '{db}/%'"
                ),
            )
            .trim()
            .parse()
            .unwrap_or(0),
            None => std::fs::read_dir(&self.cfg.store.sqlite.data_dir)
                .map(|d| {
                    d.filter_map(|e| e.ok()?.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0),
        }
    }

    /// SIGTERM, then waits for the graceful shutdown.
    pub fn stop(mut self) {
        self.stop_sampler.store(true, Relaxed);
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_sampler.store(true, Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
