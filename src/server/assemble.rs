//! Builds one process from its flags: the store, the bus and the queue each
//! open themselves from their own flags; this file only decides which parts
//! the role runs and starts each under its part of the shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ServerError;
use crate::api::ApiState;
use crate::config::{Role, ServeArgs};
use crate::health::{Health, State};
use crate::intake::Intake;
use crate::metrics::Registry;
use crate::net::Cluster;
use crate::pipeline::hub::Hub;
use crate::pipeline::retention;
use crate::pipeline::writer::{Writer, WriterMetrics};
use crate::queue::Ends;
use crate::shutdown::{Part, Shutdown};
use crate::sinks::SinkContext;
use crate::sources::SourceContext;

/// How often retention looks for expired entries.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// What the listener serves: the API on nodes that take entries, only
/// metrics and health on writers.
pub struct Node {
    pub api: Option<Arc<ApiState>>,
}

/// Combinations that cannot keep taillight's promises.
fn check(cfg: &ServeArgs) -> Result<(), ServerError> {
    let bad = |m: &str| Err(ServerError::Config(m.into()));
    if cfg.role != Role::All && !cfg.queue.is_kafka() {
        return bad(
            "--role ingest and --role writer need --kafka-brokers: with the in-process queue one process must do both",
        );
    }
    if cfg.queue.is_kafka() && !cfg.store.is_mysql() {
        return bad(
            "--kafka-brokers needs --database-url: only the MariaDB store recognises a redelivered entry and keeps it once",
        );
    }
    let limits = &cfg.intake.limits;
    if cfg.store.is_mysql() && (limits.max_service_len > 255 || limits.max_tag_len > 255) {
        return bad(
            "with --database-url, --max-service-len and --max-tag-len can be at most 255 (MariaDB's indexed column width)",
        );
    }
    Ok(())
}

/// Marks `part` down in `health` if its task ends before `stop` (a panic, a
/// bug), so that a server whose pipeline has stopped says so in `/readyz`,
/// gRPC health and `taillight_ready` instead of looking alive.
fn watch(part: &'static str, run: JoinHandle<Option<()>>, health: Health, stop: CancellationToken) {
    tokio::spawn(async move {
        let how = match run.await {
            Err(e) if e.is_panic() => "panicked",
            _ => "ended",
        };
        if !stop.is_cancelled() {
            health.set(
                part,
                State::Down(format!(
                    "its task {how} unexpectedly; entries are not being handled: restart the server"
                )),
            );
        }
    });
}

/// Opens the backends and starts every part this node runs.
pub async fn start(
    cfg: &ServeArgs,
    shutdown: &Shutdown,
    registry: &Registry,
    health: &Health,
) -> Result<Node, ServerError> {
    check(cfg)?;
    let cluster = Cluster {
        shared: cfg.queue.is_kafka(),
        redis_url: cfg.bus.redis_url.clone(),
        redis_prefix: cfg.bus.redis_prefix.clone(),
    };
    let sources = cfg.sources.build(&cluster)?;
    let sinks = cfg.sinks.build(&cluster)?;
    let store = cfg.store.open().await?;
    let bus = cfg.bus.open().await?;
    let ends = Ends {
        produce: cfg.role != Role::Writer,
        consume: cfg.role != Role::Ingest,
    };
    let writer_stop = shutdown.token(Part::Writer);
    let queue = cfg
        .queue
        .open(ends, cfg.intake.push_timeout, registry, writer_stop.clone())
        .await?;

    if let Some(consumer) = queue.consumer {
        let writer = Writer {
            consumer,
            store: store.clone(),
            bus: bus.bus.clone(),
            catalog: bus.catalog.clone(),
            metrics: WriterMetrics::new(registry),
            max_batch: cfg.batch_max(),
            abort_after_store: cfg.writer.fault_abort_after_store,
            panic_after_store: cfg.writer.fault_panic_after_store,
        };
        let run = shutdown.spawn(Part::Writer, writer.run());
        watch("writer", run, health.clone(), writer_stop.clone());
        if let Some(age) = cfg.retention.retention {
            let sweep = retention::run(store.clone(), age, RETENTION_EVERY, writer_stop);
            shutdown.spawn(Part::Writer, sweep);
        }
    }

    // Tails and sinks follow the store through the node's one subscription.
    let hub = match queue.producer.is_some() || !sinks.is_empty() {
        true => {
            let events = bus.bus.subscribe();
            let stop = shutdown.token(Part::Fanout);
            let (hub, fan_out) =
                Hub::start(events, store.clone(), &cfg.hub, registry, stop.clone()).await;
            let run = shutdown.spawn(Part::Fanout, fan_out);
            watch("live feed", run, health.clone(), stop);
            Some(hub)
        }
        false => None,
    };
    if let Some(hub) = &hub {
        for sink in sinks {
            let cx = SinkContext {
                hub: hub.clone(),
                store: store.clone(),
                registry: registry.clone(),
                health: health.clone(),
                stop: shutdown.token(Part::Sinks),
            };
            shutdown.spawn(Part::Sinks, sink.run(cx));
        }
    }

    let (Some(producer), Some(hub)) = (queue.producer, hub) else {
        return Ok(Node { api: None });
    };
    let intake_stop = shutdown.token(Part::Intake);
    let intake = Intake::new(producer, &cfg.intake, intake_stop.clone(), registry);
    for source in sources {
        let cx = SourceContext {
            intake: intake.clone(),
            registry: registry.clone(),
            health: health.clone(),
            stop: intake_stop.clone(),
        };
        shutdown.spawn(Part::Intake, source.run(cx));
    }
    Ok(Node {
        api: Some(Arc::new(ApiState {
            intake,
            store,
            hub,
            catalog: bus.catalog,
            heartbeat: cfg.api.heartbeat,
            otlp: cfg.api.otlp.clone(),
            stop: intake_stop,
        })),
    })
}
