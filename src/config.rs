//! Command-line flags. Every flag can also be set through the `TAILLIGHT_*`
//! environment variable named beside it. Each component owns its flags (an
//! `Args` struct beside its code); `serve` flattens them all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::access::AccessArgs;
use crate::api::ApiArgs;
use crate::bus::RedisArgs;
use crate::intake::IntakeArgs;
use crate::listen::ListenArgs;
use crate::model::time::parse_duration;
use crate::pipeline::hub::HubArgs;
use crate::pipeline::retention::RetentionArgs;
use crate::pipeline::writer::WriterArgs;
use crate::queue::QueueArgs;
use crate::sinks::SinksArgs;
use crate::sources::SourcesArgs;
use crate::storage::StoreArgs;

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
    /// Re-import an archive (its directory or its S3 copy) into the store.
    Restore(Box<crate::cli::restore::RestoreArgs>),
    /// Create, list and revoke API keys in a keys file.
    Keys(crate::cli::keys::KeysArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on for every protocol.
    #[arg(long, env = "TAILLIGHT_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// A second address serving only /metrics, /healthz and /readyz, with
    /// no key (for a scraper on a private network); off by default. On the
    /// main address /metrics needs an `admin` key when keys are required.
    #[arg(long, env = "TAILLIGHT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Longest graceful shutdown (open requests, then the writer's drain,
    /// then the sinks) may take in all before what is left is cut short.
    #[arg(long, env = "TAILLIGHT_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Web pages' origins allowed to call the API besides the server's own
    /// (CORS), comma-separated, e.g. `https://logs.example.com`. A request
    /// a browser sends from any other page is refused (403). None by
    /// default.
    #[arg(long, env = "TAILLIGHT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// What this process does: `all` (API and writer), `ingest` (the API,
    /// producing to Kafka) or `writer` (consumes Kafka into the database;
    /// serves only metrics and health). Ingest and writer need Kafka.
    #[arg(long, env = "TAILLIGHT_ROLE", value_enum, default_value = "all")]
    pub role: Role,
    #[command(flatten)]
    pub connections: ListenArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub bus: RedisArgs,
    #[command(flatten)]
    pub intake: IntakeArgs,
    #[command(flatten)]
    pub writer: WriterArgs,
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub sources: SourcesArgs,
    #[command(flatten)]
    pub sinks: SinksArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    All,
    Ingest,
    Writer,
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
        args.store.sqlite.data_dir = data_dir.into();
        args
    }

    /// Most entries per write transaction, given or the mode's default.
    pub fn batch_max(&self) -> usize {
        self.writer.batch_max(self.queue.is_kafka())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let a = ServeArgs::with_data_dir("/tmp/x");
        assert_eq!(a.listen.port(), 50051);
        assert_eq!(a.intake.limits.max_tags, 32);
        assert_eq!(a.batch_max(), 5_000);
        let mut k = a.clone();
        k.queue.kafka.kafka_brokers = Some("127.0.0.1:9092".into());
        assert_eq!(k.batch_max(), 2_500);
        k.writer.batch_max = Some(0);
        assert_eq!(k.batch_max(), 1);
    }
}
