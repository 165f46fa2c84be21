//! kill -9 of one node of a distributed cluster while four clients push
//! over HTTP: two ingest nodes and two writer nodes (the second writer
//! joins after the first holds every partition), real tansu, MariaDB and
//! Redis, each node a `taillight serve` process of its own.
//!
//! - A writer killed: the surviving writer takes over its partitions after
//!   the Kafka session timeout (or, where tansu 0.6.0 never reassigns them,
//!   the killed writer is started again), ingest never stops acknowledging,
//!   and every acknowledged entry is stored exactly once.
//! - An ingest node killed: its clients get connection errors, go on with
//!   the surviving node, and every acknowledged entry is stored exactly
//!   once; what was in flight at the kill is stored once or not at all.
//!
//! Each test records its row of the reliability table before asserting.
//!
//! The cluster has a broker of its own on tansu's SQLite storage, not the
//! suite's in-memory one: tansu 0.6.0's memory storage answers a fetch from
//! an offset inside a record batch with the batches after it, so a writer
//! taking over a partition whose committed offset splits a batch never
//! reads the rest of that batch (seen here: 8 and 16 acknowledged entries
//! never stored, in 2 of about 120 runs).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::process::{Proc, serve_args};
use common::reliability::{Row, wait_for_acked};
use common::{Scratch, Tansu, free_port, unique};
use serde_json::{Value, json};
use taillight::config::ServeArgs;

/// Bound on every wait for the cluster to reach a state: a loaded 2-core
/// machine is slow, but never this slow unless something hangs.
const DEADLINE: Duration = Duration::from_secs(90);
/// Entries per push, and the pause between one client's pushes: a steady
/// load the writers keep up with on two shared cores.
const BATCH: usize = 25;
const PAUSE: Duration = Duration::from_millis(20);
/// How long the surviving writer gets to hold every partition: many times
/// the 3 s session timeout of the test configuration.
const TAKEOVER: Duration = Duration::from_secs(45);
/// Acknowledged entries to see before the kill and after the cluster is
/// whole again, so the fault falls in the middle of a stream.
const STRETCH: u64 = 1000;
/// Services the clients write to: entries are keyed by service, and enough
/// of them land on every partition that each writer has work to lose.
const SERVICES: usize = 24;

/// Both tests start six processes on the same two cores; one at a time
/// keeps the figures (takeover time) about the fault, not the neighbour.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Two ingest and two writer processes on one topic, group and database.
struct Cluster {
    ingest: Vec<Proc>,
    writers: Vec<Proc>,
    partitions: u64,
    /// The nodes' settings, to start a killed one again.
    cfg: ServeArgs,
    /// Dropped after the nodes, then the broker's files.
    _broker: Tansu,
    _broker_dir: tempfile::TempDir,
    /// Dropped last: it removes the database the nodes write to.
    _scratch: Arc<Scratch>,
}

impl Cluster {
    /// Ingest nodes, one writer holding every partition, then a second
    /// writer, started only then: two members joining at once have left a
    /// partition unowned with tansu 0.6.0 (see tests/distributed.rs).
    async fn start() -> Cluster {
        let broker_dir = tempfile::tempdir().expect("temp dir");
        let broker = Tansu::start_sqlite(free_port(), broker_dir.path());
        let (cfg, scratch) = common::config_on(Some(broker.brokers()));
        let spawn = |role: &str| Proc::spawn(&serve_args(&cfg, role));
        let mut cluster = Cluster {
            ingest: vec![spawn("ingest"), spawn("ingest")],
            writers: vec![spawn("writer")],
            partitions: partitions(&cfg),
            cfg: cfg.clone(),
            _broker: broker,
            _broker_dir: broker_dir,
            _scratch: scratch,
        };
        cluster.wait_shared().await;
        cluster.writers.push(spawn("writer"));
        cluster.wait_shared().await;
        cluster
    }

    fn ingest_urls(&self) -> Vec<String> {
        self.ingest.iter().map(Proc::url).collect()
    }

    /// Waits until every writer still running holds some partitions and
    /// together they hold them all.
    async fn wait_shared(&self) {
        if let Err(counts) = self.share_within(DEADLINE).await {
            panic!(
                "the writers never shared the {} partitions: {counts:?}",
                self.partitions
            );
        }
    }

    /// Waits up to `within` for every writer still running to hold some
    /// partitions, all of them together; what each held last if they did
    /// not. Each writer updates its gauge every 2 s, which bounds how
    /// precisely this sees the moment.
    async fn share_within(&self, within: Duration) -> Result<(), Vec<u64>> {
        let started = Instant::now();
        loop {
            let mut counts = Vec::new();
            for w in &self.writers {
                let n = common::try_metric_at(&w.url(), "taillight_writer_partitions").await;
                counts.push(n.unwrap_or(0));
            }
            if counts.iter().all(|&n| n > 0) && counts.iter().sum::<u64>() == self.partitions {
                return Ok(());
            }
            if started.elapsed() > within {
                return Err(counts);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn partitions(cfg: &ServeArgs) -> u64 {
    u64::try_from(cfg.queue.kafka.kafka_partitions).expect("a positive partition count")
}

/// What the clients share while they push: when to stop, and how much has
/// been acknowledged so far (to time the fault).
#[derive(Default)]
struct Progress {
    stop: AtomicBool,
    acked: AtomicU64,
}

/// What one client saw.
#[derive(Default)]
struct Pushed {
    /// Entries sent, acknowledged or not.
    sent: u64,
    acked: Vec<String>,
    /// Answers other than 200.
    refused: u64,
    /// Pushes that got no answer: connection refused or cut.
    errors: u64,
    /// The first push that got no answer.
    first_error: Option<Instant>,
    /// The first acknowledgement after that: the client is pushing again.
    back: Option<Instant>,
}

/// Four clients pushing numbered entries until told to stop.
struct Clients {
    progress: Arc<Progress>,
    tasks: Vec<tokio::task::JoinHandle<Pushed>>,
    services: Vec<String>,
}

impl Clients {
    fn start(nodes: Vec<String>) -> Clients {
        let prefix = unique("cluster");
        let services: Vec<String> = (0..SERVICES).map(|i| format!("{prefix}-{i}")).collect();
        let progress = Arc::new(Progress::default());
        let tasks = (0..4)
            .map(|who| {
                tokio::spawn(push_until_stopped(
                    who,
                    nodes.clone(),
                    services.clone(),
                    progress.clone(),
                ))
            })
            .collect();
        Clients {
            progress,
            tasks,
            services,
        }
    }

    fn acked(&self) -> u64 {
        self.progress.acked.load(Relaxed)
    }

    /// Waits until `n` entries have been acknowledged in all.
    async fn wait_acked(&self, n: u64) {
        let started = Instant::now();
        while self.acked() < n {
            assert!(
                started.elapsed() < DEADLINE,
                "only {} of {n} entries acknowledged",
                self.acked()
            );
            assert!(
                !self.tasks.iter().any(|t| t.is_finished()),
                "a client stopped early"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the clients; what each saw.
    async fn stop(mut self) -> Vec<Pushed> {
        self.progress.stop.store(true, Relaxed);
        let mut seen = Vec::new();
        for t in std::mem::take(&mut self.tasks) {
            seen.push(t.await.expect("a client panicked"));
        }
        seen
    }

    /// The services' filter for the export (a comma-separated list).
    fn filter(&self) -> String {
        self.services.join(",")
    }
}

/// A test that fails while its clients push must not leave them pushing at
/// nodes being torn down: their complaints would bury the real failure.
impl Drop for Clients {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Pushes batches of numbered entries, alternating between `nodes`; a node
/// that does not answer is dropped from the rotation, as a client with a
/// list of endpoints does. An unanswered push is not sent again: its
/// entries may or may not be stored, and a retry could store them twice.
async fn push_until_stopped(
    who: usize,
    mut nodes: Vec<String>,
    services: Vec<String>,
    progress: Arc<Progress>,
) -> Pushed {
    let http = reqwest::Client::new();
    let mut out = Pushed::default();
    for k in 0.. {
        if progress.stop.load(Relaxed) {
            break;
        }
        assert!(!nodes.is_empty(), "client {who}: every node failed");
        let node = k % nodes.len();
        let messages: Vec<String> = (0..BATCH).map(|i| format!("c{who}-b{k}-{i}")).collect();
        let body: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| json!({"service": services[(k + i) % services.len()], "message": m}))
            .collect();
        out.sent += BATCH as u64;
        let asked = Instant::now();
        match push(&http, &nodes[node], &body).await {
            Ok(Some(accepted)) => {
                assert_eq!(accepted, BATCH as u64, "client {who}: a partial acceptance");
                out.acked.extend(messages);
                progress.acked.fetch_add(BATCH as u64, Relaxed);
                if out.first_error.is_some() && out.back.is_none() {
                    out.back = Some(Instant::now());
                }
            }
            Ok(None) => out.refused += 1,
            Err(e) => {
                eprintln!("client {who}: {} did not answer: {e}", nodes[node]);
                out.errors += 1;
                out.first_error.get_or_insert(asked);
                nodes.remove(node);
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
    out
}

/// One `POST /v1/logs`: how many entries were accepted when the answer is
/// 200, `None` for another answer, or why there was none.
async fn push(http: &reqwest::Client, base: &str, body: &[Value]) -> Result<Option<u64>, String> {
    let answer = async {
        let r = http
            .post(format!("{base}/v1/logs"))
            .json(body)
            .send()
            .await?;
        if r.status() != 200 {
            return Ok(None);
        }
        let v: Value = r.json().await?;
        Ok::<_, reqwest::Error>(v["accepted"].as_u64())
    };
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("a push must not hang")
        .map_err(|e| e.to_string())
}

/// Waits until every acknowledged message can be read back through `base`,
/// then a moment more so a late duplicate would show; every stored message
/// of the clients' services, and how long the store took to catch up.
async fn wait_stored(
    base: &str,
    clients_filter: &str,
    acked: &[String],
    within: Duration,
) -> (Vec<String>, Duration) {
    let started = Instant::now();
    // What is still missing at the deadline, the row's tally reports.
    wait_for_acked(base, clients_filter, acked, within).await;
    let caught_up = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    (
        common::exported_messages(base, clients_filter).await,
        caught_up,
    )
}

/// Sums what the clients saw.
fn totals(seen: &[Pushed]) -> (u64, Vec<String>, u64, u64) {
    let sent = seen.iter().map(|p| p.sent).sum();
    let acked: Vec<String> = seen.iter().flat_map(|p| p.acked.iter().cloned()).collect();
    let refused = seen.iter().map(|p| p.refused).sum();
    let errors = seen.iter().map(|p| p.errors).sum();
    (sent, acked, refused, errors)
}

/// Tallies the row and records it, with its figures on the test's output.
fn record(row: Row, acked: &[String], found: &[String]) -> Row {
    let row = row.tallied(
        acked.iter().map(String::as_str),
        found.iter().map(String::as_str),
    );
    row.record();
    println!(
        "{}: {} pushed, {} acknowledged, {} found, {} lost, {} stored twice, recovery {:?}; {}",
        row.test,
        row.pushed,
        row.acknowledged,
        row.found,
        row.lost,
        row.duplicated,
        row.recovery,
        row.detail
    );
    row
}

/// Asserts that nothing acknowledged was lost and nothing stored twice.
fn assert_exactly_once(row: &Row, acked: &[String], found: &[String]) {
    let stored: HashSet<&str> = found.iter().map(String::as_str).collect();
    let lost: Vec<&str> = acked
        .iter()
        .map(String::as_str)
        .filter(|m| !stored.contains(m))
        .take(20)
        .collect();
    assert!(
        row.lost == 0 && row.duplicated == 0,
        "{}: of {} acknowledged entries {} were lost (among them {lost:?}), and {} stored more than once",
        row.fault,
        row.acknowledged,
        row.lost,
        row.duplicated
    );
}

/// Waits until `writer` has stored something: its partitions carry entries,
/// so killing it leaves work for the survivor to take over.
async fn wait_until_working(writer: &Proc) {
    let started = Instant::now();
    while common::metric_at(&writer.url(), "taillight_entries_stored_total").await == 0 {
        assert!(
            started.elapsed() < DEADLINE,
            "the writer to be killed never stored an entry"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One of two writers killed mid-stream: the other takes over all its
/// partitions, and nothing acknowledged is lost or stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_writer_loses_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start().await;
    let clients = Clients::start(cluster.ingest_urls());
    clients.wait_acked(STRETCH).await;
    // The victim holds partitions and has stored from them, so the survivor
    // has work to take over.
    wait_until_working(&cluster.writers[0]).await;
    cluster.wait_shared().await;
    let victim = cluster.writers.remove(0);
    let held = common::metric_at(&victim.url(), "taillight_writer_partitions").await;

    let killed = Instant::now();
    drop(victim); // SIGKILL
    // The survivor holds every partition once the group has noticed. Past
    // the deadline the test goes on, so its row shows what was stranded.
    let takeover = cluster
        .share_within(TAKEOVER)
        .await
        .map(|()| killed.elapsed());
    // tansu 0.6.0 often never hands the survivor the dead member's
    // partitions (docs/RELIABILITY.md); then the killed writer comes back,
    // as a supervisor would bring it, and must store what waited, once.
    let restarted = takeover.is_err();
    if restarted {
        cluster
            .writers
            .push(Proc::spawn(&serve_args(&cluster.cfg, "writer")));
    }
    let acked_at_takeover = clients.acked();
    clients.wait_acked(acked_at_takeover + STRETCH).await;
    let filter = clients.filter();
    let seen = clients.stop().await;
    let pushed_for = killed.elapsed();

    let (sent, acked, refused, errors) = totals(&seen);
    let base = cluster.ingest[0].url();
    let (found, drained) = wait_stored(&base, &filter, &acked, DEADLINE).await;
    let taken = match &takeover {
        Ok(t) => format!(
            "the other held them all {:.1} s after the kill",
            t.as_secs_f64()
        ),
        Err(counts) => format!(
            "the other held only {counts:?} of them {} s after the kill (a tansu 0.6.0 defect), so the killed writer was started again",
            TAKEOVER.as_secs()
        ),
    };
    let row = record(
        Row {
            fault: "kill -9 of a writer in a 4-node cluster (2 ingest, 2 writers), 4 clients"
                .into(),
            mode: "distributed".into(),
            pushed: sent,
            acknowledged: acked.len() as u64,
            // With the restart: from the kill until all was stored.
            recovery: Some(takeover.as_ref().copied().unwrap_or(pushed_for + drained)),
            detail: format!(
                "the killed writer held {held} of {} partitions; {taken}; {refused} pushes refused and {errors} unanswered meanwhile; {} entries acknowledged after that; store caught up {:.1} s after the clients stopped ({:.1} s after the kill)",
                cluster.partitions,
                acked.len() as u64 - acked_at_takeover,
                drained.as_secs_f64(),
                (pushed_for + drained).as_secs_f64(),
            ),
            test: "cluster::kill_9_of_a_writer_loses_nothing".into(),
            ..Default::default()
        },
        &acked,
        &found,
    );
    println!("writer killed; restarted: {restarted}; {taken}");
    assert_exactly_once(&row, &acked, &found);
    // Ingest does not depend on the writers: no push went unanswered.
    assert_eq!(errors, 0, "pushes to the untouched ingest nodes failed");
}

/// One of two ingest nodes killed mid-stream: its clients move to the other
/// node, and nothing acknowledged is lost or stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_an_ingest_node_loses_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start().await;
    let clients = Clients::start(cluster.ingest_urls());
    clients.wait_acked(STRETCH).await;

    let acked_at_kill = clients.acked();
    let killed = Instant::now();
    drop(cluster.ingest.remove(1)); // SIGKILL
    clients.wait_acked(acked_at_kill + STRETCH).await;
    let filter = clients.filter();
    let seen = clients.stop().await;

    // The slowest client's way back: its first acknowledgement after the
    // push the dead node did not answer.
    let recovery = seen
        .iter()
        .filter_map(|p| p.back)
        .map(|back| back.duration_since(killed))
        .max();
    let (sent, acked, refused, errors) = totals(&seen);
    let base = cluster.ingest[0].url();
    let (found, drained) = wait_stored(&base, &filter, &acked, DEADLINE).await;
    let acked_set: HashSet<&str> = acked.iter().map(String::as_str).collect();
    let unacked_stored = found
        .iter()
        .filter(|m| !acked_set.contains(m.as_str()))
        .count();
    let row = record(
        Row {
            fault: "kill -9 of an ingest node in a 4-node cluster (2 ingest, 2 writers), 4 clients"
                .into(),
            mode: "distributed".into(),
            pushed: sent,
            acknowledged: acked.len() as u64,
            recovery,
            detail: format!(
                "{errors} pushes ({} entries) unanswered at the kill, {unacked_stored} of those entries stored anyway; {refused} pushes refused; every client acknowledged again within {:.2} s through the other node; store caught up {:.1} s after the clients stopped",
                errors * BATCH as u64,
                recovery.unwrap_or_default().as_secs_f64(),
                drained.as_secs_f64(),
            ),
            test: "cluster::kill_9_of_an_ingest_node_loses_nothing".into(),
            ..Default::default()
        },
        &acked,
        &found,
    );
    assert_exactly_once(&row, &acked, &found);
    // Each client alternated between the nodes, so each met the dead one,
    // and each went on through the survivor.
    for (who, p) in seen.iter().enumerate() {
        assert!(p.errors > 0, "client {who} never met the killed node");
        assert!(
            p.back.is_some(),
            "client {who} had nothing acknowledged after the kill"
        );
    }
}
