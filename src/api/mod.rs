//! The public API: gRPC ([`grpc`], with [`grpc_tail`]), the HTTP/JSON
//! gateway ([`gateway`], with its [`params`] and [`export`]), the seed-era
//! endpoints ([`seed`], [`ws`]) and the protocols of other tools ([`otlp`],
//! [`loki`]), all over one shared [`ApiState`]: entries
//! go in through the [`Intake`], history comes from the store, live records
//! from following it ([`tail`]). This is the only layer that speaks
//! `tonic::Status` and HTTP statuses ([`error`]).

pub mod alerts;
pub mod auth;
pub mod batch;
pub mod body;
pub mod context;
pub mod error;
pub mod export;
pub mod gateway;
pub mod grpc;
pub mod grpc_tail;
pub mod histogram;
pub mod loki;
pub mod ops;
pub mod origin;
pub mod otlp;
pub mod overload;
pub mod params;
pub mod query;
pub mod seed;
pub mod tail;
pub mod unary;
pub mod views;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::access::Grant;
use crate::bus::Catalog;
use crate::intake::Intake;
use crate::model::time::parse_duration;
use crate::pipeline::hub::Hub;
use crate::storage::Store;
use error::ApiError;

/// The service of an entry whose sender names none (OTLP without
/// `service.name`, Loki without a service label): what OpenTelemetry and
/// Loki call it themselves.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The API's own flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Heartbeat interval of quiet tail streams (e.g. `15s`).
    #[arg(long, env = "TAILLIGHT_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    #[command(flatten)]
    pub otlp: otlp::OtlpArgs,
}

/// Everything a request handler needs.
pub struct ApiState {
    /// Where pushed entries go.
    pub intake: Intake,
    /// History queries.
    pub store: Arc<dyn Store>,
    /// Live records, for tail streams.
    pub hub: Arc<Hub>,
    /// The service/tag sets beside the store (Redis), when configured.
    pub catalog: Option<Arc<dyn Catalog>>,
    /// Default heartbeat interval of tail streams.
    pub heartbeat: Duration,
    /// How OTLP records map to entries.
    pub otlp: otlp::OtlpArgs,
    /// Ends tail streams when the ways in stop.
    pub stop: CancellationToken,
}

impl ApiState {
    /// Every service `grant` may read: from the catalogue when it is
    /// complete, otherwise from the store (refilling the catalogue in the
    /// background).
    pub async fn services(&self, grant: &Grant) -> Result<Vec<String>, ApiError> {
        let mut all = self.all_services().await?;
        all.retain(|s| grant.covers(s));
        Ok(all)
    }

    async fn all_services(&self) -> Result<Vec<String>, ApiError> {
        if let Some(cat) = &self.catalog {
            match cat.services().await {
                Ok(Some(s)) => return Ok(s),
                Ok(None) => self.refill_catalog(cat.clone()),
                Err(e) => tracing::debug!(error = %e, "catalogue unavailable; asking the store"),
            }
        }
        Ok(self.store.services().await?)
    }

    /// A service's tags, like [`ApiState::services`]; a service `grant` may
    /// not read is refused.
    pub async fn tags(&self, grant: &Grant, service: String) -> Result<Vec<String>, ApiError> {
        grant.check_read(&service)?;
        if let Some(cat) = &self.catalog {
            match cat.tags(&service).await {
                Ok(Some(t)) => return Ok(t),
                Ok(None) => self.refill_catalog(cat.clone()),
                Err(e) => tracing::debug!(error = %e, "catalogue unavailable; asking the store"),
            }
        }
        Ok(self.store.tags(service).await?)
    }

    fn refill_catalog(&self, cat: Arc<dyn Catalog>) {
        let store = self.store.clone();
        tokio::spawn(async move {
            let result: Result<(), String> = async {
                let mut sets = Vec::new();
                for s in store.services().await.map_err(|e| e.to_string())? {
                    let tags = store.tags(s.clone()).await.map_err(|e| e.to_string())?;
                    sets.push((s, tags));
                }
                cat.fill(sets).await.map_err(|e| e.to_string())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "refilling the catalogue failed");
            }
        });
    }
}
