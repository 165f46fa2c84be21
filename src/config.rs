//! Command-line flags. Every flag can also be set through the `TAILLIGHT_*`
//! environment variable named beside it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::api::validate::Limits;
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
    Serve(ServeArgs),
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
    /// Entries accepted but not yet stored, beyond which pushes wait.
    #[arg(long, env = "TAILLIGHT_QUEUE_CAPACITY", default_value_t = 100_000)]
    pub queue_capacity: usize,
    /// Most entries the writer commits in one transaction.
    #[arg(long, env = "TAILLIGHT_BATCH_MAX", default_value_t = 5_000)]
    pub batch_max: usize,
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
    #[command(flatten)]
    pub limits: Limits,
}

impl ServeArgs {
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
    }
}
