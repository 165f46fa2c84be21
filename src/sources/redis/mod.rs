//! Entries from Redis, where many projects already publish their log lines:
//! pub/sub channels ([`channel`], at most once, as pub/sub is) and streams
//! ([`stream`], a consumer group, acknowledged only once durable). What a
//! message may be is in [`parse`].

mod channel;
mod parse;
mod stream;

use std::time::Duration;

use ::redis::Client;

use super::{Source, SourceError};
use crate::model::time::parse_duration;
use crate::net::Cluster;
pub use channel::ChannelSource;
pub use stream::StreamSource;

/// The Redis sources' flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RedisSourceArgs {
    /// Redis the publishers use (`redis://HOST[:PORT]`); by default the
    /// `--redis-url` of the bus.
    #[arg(long, env = "TAILLIGHT_INGEST_REDIS_URL")]
    pub ingest_redis_url: Option<String>,
    /// Pub/sub channels to take entries from, comma-separated; names with
    /// `*`, `?` or `[` are patterns (PSUBSCRIBE). Pub/sub keeps nothing:
    /// what is published while no node listens is lost.
    #[arg(long, env = "TAILLIGHT_INGEST_REDIS_CHANNELS", value_delimiter = ',')]
    pub ingest_redis_channels: Vec<String>,
    /// Streams to take entries from, comma-separated, read in the consumer
    /// group `--ingest-redis-group` (created at the start of the stream
    /// when missing) and acknowledged once stored.
    #[arg(long, env = "TAILLIGHT_INGEST_REDIS_STREAMS", value_delimiter = ',')]
    pub ingest_redis_streams: Vec<String>,
    /// Consumer group of the stream readers.
    #[arg(
        long,
        env = "TAILLIGHT_INGEST_REDIS_GROUP",
        default_value = "taillight"
    )]
    pub ingest_redis_group: String,
    /// This node's name in the group; by default the host name, so a
    /// restarted node takes up its own unacknowledged entries at once. Two
    /// nodes on one host need names of their own.
    #[arg(long, env = "TAILLIGHT_INGEST_REDIS_CONSUMER")]
    pub ingest_redis_consumer: Option<String>,
    /// How long a stream entry may stay unacknowledged by its reader (a
    /// node that died) before another node claims it.
    #[arg(long, env = "TAILLIGHT_INGEST_REDIS_CLAIM_IDLE", default_value = "30s", value_parser = parse_duration)]
    pub ingest_redis_claim_idle: Duration,
    /// Service of messages that do not name one (plain lines); by default
    /// the channel's or stream's name.
    #[arg(long, env = "TAILLIGHT_INGEST_REDIS_SERVICE")]
    pub ingest_redis_service: Option<String>,
}

impl RedisSourceArgs {
    /// The sources these flags ask for, none when no channel or stream is
    /// named.
    pub fn build(&self, cluster: &Cluster) -> Result<Vec<Box<dyn Source>>, SourceError> {
        let mut sources: Vec<Box<dyn Source>> = Vec::new();
        if self.ingest_redis_channels.is_empty() && self.ingest_redis_streams.is_empty() {
            return Ok(sources);
        }
        let url = self
            .ingest_redis_url
            .as_ref()
            .or(cluster.redis_url.as_ref())
            .ok_or_else(|| {
                SourceError::Config(
                    "--ingest-redis-channels and --ingest-redis-streams need --ingest-redis-url (or --redis-url)".into(),
                )
            })?;
        let client = open(url)?;
        if !self.ingest_redis_channels.is_empty() {
            sources.push(Box::new(ChannelSource::new(self, client.clone(), cluster)?));
        }
        if !self.ingest_redis_streams.is_empty() {
            sources.push(Box::new(StreamSource::new(self, client)?));
        }
        Ok(sources)
    }
}

/// A client for `url`, refused at start when the URL is malformed.
fn open(url: &str) -> Result<Client, SourceError> {
    Client::open(url).map_err(|e| SourceError::Config(format!("invalid Redis URL {url:?}: {e}")))
}

/// The service of a message that names none.
fn default_service<'a>(args: &'a Option<String>, origin: &'a str) -> &'a str {
    args.as_deref().unwrap_or(origin)
}
