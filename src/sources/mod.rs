//! The ways in that are not request handlers: components that pull entries
//! from elsewhere (a Redis channel or stream) or listen for them in a
//! protocol of their own (syslog), and hand them to the [`Intake`], as the
//! API's handlers do. Each is built from its own flags by
//! [`SourcesArgs::build`] and started by the server as part of the intake,
//! so it stops first at shutdown.

mod in_flight;
pub mod redis;
mod report;
pub mod syslog;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::intake::Intake;
use crate::metrics::Registry;
use crate::net::Cluster;

/// What every source runs with.
pub struct SourceContext {
    /// Where the source's entries go, validated and stamped like any push.
    pub intake: Intake,
    /// Where the source registers its metrics.
    pub registry: Registry,
    /// Where the source says whether its upstream is reachable.
    pub health: Health,
    /// Cancelled when the ways in stop: the source stops taking new input,
    /// settles what it submitted (telling its upstream what became durable),
    /// and returns.
    pub stop: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Source: Send + 'static {
    /// A short name for logs and metrics labels.
    fn name(&self) -> &'static str;

    /// Runs until `cx.stop`, reconnecting by itself; never fails the server.
    async fn run(self: Box<Self>, cx: SourceContext);
}

/// Every source's flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SourcesArgs {
    #[command(flatten)]
    pub redis: redis::RedisSourceArgs,
    #[command(flatten)]
    pub syslog: syslog::SyslogArgs,
}

impl SourcesArgs {
    /// The sources the flags ask for.
    pub fn build(&self, cluster: &Cluster) -> Result<Vec<Box<dyn Source>>, SourceError> {
        let mut sources = self.redis.build(cluster)?;
        sources.extend(self.syslog.build()?);
        Ok(sources)
    }
}
