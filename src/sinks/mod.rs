//! The ways out that follow the store: components that read every stored
//! record by id, through [`Hub::follow`](crate::pipeline::hub::Hub), and
//! keep it somewhere else (the file archive, its S3 copy) or act on it
//! (alerts). Each is built
//! from its own flags by [`SinksArgs::build`] and started by the server as
//! part of the sinks, which stop after the writer at shutdown.

pub mod alerts;
pub mod archive;

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics::Registry;
use crate::net::Cluster;
use crate::pipeline::hub::Hub;
use crate::storage::Store;

/// What every sink runs with.
pub struct SinkContext {
    /// Followed for every stored record.
    pub hub: Arc<Hub>,
    /// Where the sink keeps its position, and reads when it catches up.
    pub store: Arc<dyn Store>,
    /// Where the sink registers its metrics.
    pub registry: Registry,
    /// Where the sink says how it is doing.
    pub health: Health,
    /// Cancelled when the sinks stop: the sink finishes what it holds and
    /// returns; it resumes from its position at the next start.
    pub stop: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{0}")]
    Config(String),
}

#[async_trait]
pub trait Sink: Send + 'static {
    /// A short name for logs and metrics labels.
    fn name(&self) -> &'static str;

    /// Runs until `cx.stop`; never fails the server.
    async fn run(self: Box<Self>, cx: SinkContext);
}

/// Every sink's flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SinksArgs {
    #[command(flatten)]
    pub archive: archive::ArchiveArgs,
    #[command(flatten)]
    pub alerts: alerts::AlertsArgs,
}

impl SinksArgs {
    /// The sinks the flags ask for.
    pub fn build(&self, cluster: &Cluster) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        let mut sinks = Vec::new();
        sinks.extend(self.archive.build(cluster)?);
        sinks.extend(self.alerts.build(cluster)?);
        Ok(sinks)
    }
}
