//! Command-line flags. Every flag can also be set through the `TAILLIGHT_*`
//! environment variable named beside it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::api::validate::Limits;
use crate::storage::mysql::BulkMode;
use crate::storage::sqlite::Synchronous;

#[derive(Debug, Parser)]
#[command(
    name = "taillight",
    version,
    about = "Collect logs from every service and read them live"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Diagnostics filter (tracing `EnvFilter` syntax), written to stderr.
    #[arg(long, global = true, env = "TAILLIGHT_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (gRPC, gRPC-web, HTTP/JSON and the viewer on one port).
    Serve(Box<ServeArgs>),
    /// Push log lines read from stdin (or given as arguments).
    Push(crate::cli::push::PushArgs),
    /// Follow logs live, like `kubectl logs -f`.
    Tail(crate::cli::tail::TailArgs),
    /// Search stored logs.
    Query(crate::cli::query::QueryArgs),
    /// List services, or the tags of one service.
    Services(crate::cli::services::ServicesArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on for every protocol.
    #[arg(long, env = "TAILLIGHT_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Directory of the embedded SQLite store.
    #[arg(long, env = "TAILLIGHT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// SQLite durability: `full` fsyncs each batch commit (survives power
    /// loss), `normal` survives a process crash only.
    #[arg(
        long,
        env = "TAILLIGHT_SQLITE_SYNCHRONOUS",
        value_enum,
        default_value = "full"
    )]
    pub sqlite_synchronous: Synchronous,
    /// Entries accepted but not yet stored, beyond which pushes wait
    /// (embedded mode). Four full write batches keep the writer busy; more
    /// only holds memory (100k took the server to 120 MB under load).
    #[arg(long, env = "TAILLIGHT_QUEUE_CAPACITY", default_value_t = 20_000)]
    pub queue_capacity: usize,
    /// Most entries the writer commits in one transaction. By default 5,000
    /// with SQLite, whose fsync per commit is worth spreading over many
    /// entries, and 2,500 with Kafka and MariaDB, where smaller batches hold
    /// less memory and reach live tails sooner at the same throughput (see
    /// BENCHMARKS.md).
    #[arg(long, env = "TAILLIGHT_BATCH_MAX")]
    pub batch_max: Option<usize>,
    /// Record batches buffered per tail stream before it starts skipping.
    #[arg(long, env = "TAILLIGHT_TAIL_BUFFER", default_value_t = 256)]
    pub tail_buffer: usize,
    /// Heartbeat interval of quiet tail streams (e.g. `15s`).
    #[arg(long, env = "TAILLIGHT_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Longest a push may wait to become durable before DEADLINE_EXCEEDED.
    #[arg(long, env = "TAILLIGHT_PUSH_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub push_timeout: Duration,
    /// Longest graceful shutdown waits for open requests before closing them.
    #[arg(long, env = "TAILLIGHT_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Browser origins allowed to call the API cross-origin (CORS),
    /// comma-separated, e.g. `https://logs.example.com`. None by default.
    #[arg(long, env = "TAILLIGHT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// What this process does: `all` (API and writer), `ingest` (the API,
    /// producing to Kafka) or `writer` (consumes Kafka into the database;
    /// serves only metrics and health). Ingest and writer need Kafka.
    #[arg(long, env = "TAILLIGHT_ROLE", value_enum, default_value = "all")]
    pub role: Role,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// MariaDB/MySQL URL (`mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE`);
    /// the database is created if missing. Without it: SQLite in --data-dir.
    #[arg(long, env = "TAILLIGHT_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Connections in the database pool.
    #[arg(long, env = "TAILLIGHT_DATABASE_POOL", default_value_t = 8)]
    pub database_pool: u32,
    /// How the writer sends rows to MariaDB: `load-data` (LOAD DATA LOCAL
    /// INFILE from memory, fastest; needs the server's `local_infile`),
    /// `insert` (multi-row INSERTs), or `auto` (load-data when allowed).
    #[arg(long, env = "TAILLIGHT_DATABASE_BULK", value_enum, default_value_t = BulkMode::Auto)]
    pub database_bulk: BulkMode,
    /// Redis URL (`redis://HOST[:PORT]`) for the live feed between nodes and
    /// the service/tag catalogue. Without it: in-process (one node).
    #[arg(long, env = "TAILLIGHT_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Redis pub/sub channel of committed records.
    #[arg(
        long,
        env = "TAILLIGHT_REDIS_CHANNEL",
        default_value = "taillight.logs"
    )]
    pub redis_channel: String,
    /// Prefix of taillight's Redis keys.
    #[arg(long, env = "TAILLIGHT_REDIS_PREFIX", default_value = "taillight:")]
    pub redis_prefix: String,
    /// Delete entries older than this (e.g. `30d`); keep everything when unset.
    #[arg(long, env = "TAILLIGHT_RETENTION", value_parser = parse_duration)]
    pub retention: Option<Duration>,
    /// Fault injection for the exactly-once test: abort the process after the
    /// Nth stored batch, before its queue offsets are committed.
    #[arg(long, env = "TAILLIGHT_FAULT_ABORT_AFTER_STORE", hide = true)]
    pub fault_abort_after_store: Option<u64>,
    #[command(flatten)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    All,
    Ingest,
    Writer,
}

/// The Kafka-protocol broker between ingest and writers.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers (`HOST:PORT[,HOST:PORT]`). Without them: an
    /// in-process queue (one node).
    #[arg(long, env = "TAILLIGHT_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Topic of incoming entries; created at start if missing.
    #[arg(long, env = "TAILLIGHT_KAFKA_TOPIC", default_value = "taillight.logs")]
    pub kafka_topic: String,
    /// Partitions of the topic when taillight creates it: the most writers
    /// that can share the work.
    #[arg(long, env = "TAILLIGHT_KAFKA_PARTITIONS", default_value_t = 6)]
    pub kafka_partitions: i32,
    /// Consumer group of the writers.
    #[arg(
        long,
        env = "TAILLIGHT_KAFKA_GROUP",
        default_value = "taillight-writer"
    )]
    pub kafka_group: String,
    /// How long the group waits for a silent writer before reassigning its
    /// partitions.
    #[arg(long, env = "TAILLIGHT_KAFKA_SESSION_TIMEOUT", default_value = "6s", value_parser = parse_duration)]
    pub kafka_session_timeout: Duration,
    /// How long the producer waits for more entries before it sends a batch
    /// to the broker. Each push may wait that long, but the broker gets
    /// fewer, larger requests: with it on the same cores, 5 ms rather than
    /// 1 ms more than halved live-tail latency under load (BENCHMARKS.md).
    #[arg(long, env = "TAILLIGHT_KAFKA_LINGER", default_value = "5ms", value_parser = parse_duration)]
    pub kafka_linger: Duration,
}

impl ServeArgs {
    /// Most entries per write transaction, given or the mode's default.
    pub fn batch_max(&self) -> usize {
        let default = if self.kafka.kafka_brokers.is_some() {
            2_500
        } else {
            5_000
        };
        self.batch_max.unwrap_or(default).max(1)
    }

    /// The defaults, with the store in `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        let mut args = Only::parse_from(["serve"]).args;
        args.data_dir = data_dir.into();
        args
    }
}

/// Client flags shared by push, tail, query and services.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The taillight server.
    #[arg(
        long,
        env = "TAILLIGHT_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
}

/// Parses `250ms`, `15s`, `2m`, `1h`, `1d` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 15s, 500ms or 2m"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        u => {
            return Err(format!(
                "unknown unit {u:?} in {text:?}; use ms, s, m, h or d"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn defaults_parse() {
        let a = ServeArgs::with_data_dir("/tmp/x");
        assert_eq!(a.listen.port(), 50051);
        assert_eq!(a.limits.max_tags, 32);
        assert_eq!(a.batch_max(), 5_000);
        let mut k = a.clone();
        k.kafka.kafka_brokers = Some("127.0.0.1:9092".into());
        assert_eq!(k.batch_max(), 2_500);
        k.batch_max = Some(0);
        assert_eq!(k.batch_max(), 1);
    }
}
