//! MariaDB gone for 30 s, and MariaDB holding the table locked for 20 s,
//! under load, in the distributed mode, with a MariaDB of the test's own:
//! pushes go on being acknowledged into Kafka, quickly; tails keep beating;
//! the writer counts its failures and retries; and once MariaDB is back the
//! backlog drains with every acknowledged entry stored exactly once.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{PrivateMariaDb, Proc, serve_args};
use common::{Backend, unique};
use serde_json::{Value, json};

/// A node of the distributed mode storing into `db`.
fn node_on(db: &PrivateMariaDb) -> (Proc, std::sync::Arc<common::Scratch>) {
    let (mut cfg, scratch) = common::test_config(Backend::Distributed);
    cfg.store.mysql.database_url = Some(format!(
        "mysql://root@127.0.0.1:{}/{}",
        db.port,
        unique("outage").replace('-', "_")
    ));
    (Proc::spawn(&serve_args(&cfg, "all")), scratch)
}

/// What a client saw pushing 20 entries every 50 ms for `total`: the
/// acknowledged messages, and the answers (status, time) of the pushes
/// made while `fault` (asked before each push) said the fault was on.
async fn push_through(
    base: &str,
    svc: &str,
    total: Duration,
    mut fault: impl FnMut(Duration) -> bool,
) -> (Vec<String>, Vec<(u16, Duration)>) {
    let http = reqwest::Client::new();
    let (mut acked, mut during) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for k in 0.. {
        if started.elapsed() >= total {
            break;
        }
        let on = fault(started.elapsed());
        let messages: Vec<String> = (0..20).map(|i| format!("b{k}-{i}")).collect();
        let body: Vec<Value> = messages
            .iter()
            .map(|m| json!({"service": svc, "message": m}))
            .collect();
        let asked = Instant::now();
        let r = http
            .post(format!("{base}/v1/logs"))
            .json(&body)
            .send()
            .await
            .expect("an answer");
        if on {
            during.push((r.status().as_u16(), asked.elapsed()));
        }
        if r.status() == 200 {
            acked.extend(messages);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (acked, during)
}

/// Pushes during the fault were acknowledged (into Kafka), each quickly;
/// the slowest.
fn all_quick(during: &[(u16, Duration)]) -> Duration {
    assert!(
        during.len() > 100,
        "{} pushes during the fault",
        during.len()
    );
    assert!(during.iter().all(|(s, _)| *s == 200), "{during:?}");
    let slowest = during.iter().map(|(_, d)| *d).max().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(2),
        "a push took {slowest:?} during the fault"
    );
    slowest
}

/// Waits until every acknowledged message is stored; asserts each once.
async fn all_stored_once(base: &str, svc: &str, acked: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let (missing, twice) = loop {
        let mut seen: HashMap<String, u32> = HashMap::new();
        for m in common::exported_messages(base, svc).await {
            *seen.entry(m).or_default() += 1;
        }
        let missing = acked.iter().filter(|m| !seen.contains_key(*m)).count();
        let twice = seen.values().filter(|n| **n > 1).count();
        if missing == 0 || Instant::now() > deadline {
            break (missing, twice);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(
        (missing, twice),
        (0, 0),
        "of {} acknowledged: missing, stored twice",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_down_for_30_s_under_load_loses_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut db = PrivateMariaDb::install(dir.path(), &[]);
    let (node, _scratch) = node_on(&db);
    let svc = unique("dbdown");
    // MariaDB gone from 5 s to 35 s of 45.
    let (acked, during) = push_through(&node.url(), &svc, Duration::from_secs(45), |t| {
        if t > Duration::from_secs(5) && t < Duration::from_secs(35) && db.is_running() {
            db.kill();
        }
        if t >= Duration::from_secs(35) && !db.is_running() {
            db.start();
        }
        !db.is_running()
    })
    .await;
    let slowest = all_quick(&during);
    let errors = common::metric_at(&node.url(), "taillight_errors_total{kind=\"store\"}").await;
    assert!(errors > 0, "the writer's failures are counted");
    all_stored_once(&node.url(), &svc, &acked).await;
    println!(
        "down: {} entries acknowledged, {} pushes while MariaDB was down (slowest {slowest:?}), {errors} failed store attempts, all stored once",
        acked.len(),
        during.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_locked_for_20_s_under_load_keeps_ingest_and_tails_responsive() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = PrivateMariaDb::install(dir.path(), &[]);
    let (node, _scratch) = node_on(&db);
    let svc = unique("dblock");
    // A tail with a heartbeat a second, counted while the table is locked.
    let mut tail = reqwest::get(format!("{}/v1/tail?service={svc}&heartbeat=1", node.url()))
        .await
        .expect("tail");
    let (beats_tx, beats) = std::sync::mpsc::channel();
    let reader = tokio::spawn(async move {
        while let Ok(Some(chunk)) = tail.chunk().await {
            if String::from_utf8_lossy(&chunk).contains("event: heartbeat") {
                let _ = beats_tx.send(Instant::now());
            }
        }
    });
    let sock = db.socket();
    let mut lock: Option<Child> = None;
    let mut window = None;
    let (acked, during) = push_through(&node.url(), &svc, Duration::from_secs(30), |t| {
        if lock.is_none() && t > Duration::from_secs(5) {
            lock = Some(
                Command::new("mariadb")
                    .args(["--no-defaults", "-uroot", &format!("--socket={sock}")])
                    .arg("-e")
                    .arg(lock_sql(&sock))
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("mariadb"),
            );
            window = Some(Instant::now());
        }
        lock.as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    })
    .await;
    let slowest = all_quick(&during);
    let (from, to) = (
        window.expect("locked"),
        window.expect("locked") + Duration::from_secs(20),
    );
    let beats_during = beats.try_iter().filter(|at| *at > from && *at < to).count();
    assert!(
        beats_during >= 10,
        "{beats_during} heartbeats while the table was locked"
    );
    all_stored_once(&node.url(), &svc, &acked).await;
    reader.abort();
    println!(
        "locked: {} entries acknowledged, {} pushes while locked (slowest {slowest:?}), {beats_during} tail heartbeats meanwhile, all stored once",
        acked.len(),
        during.len()
    );
}

/// The statement that holds every `logs` table of the server locked for
/// 20 s (there is one: the node's database).
fn lock_sql(sock: &str) -> String {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "-uroot", &format!("--socket={sock}"), "-N", "-e"])
        .arg("SELECT CONCAT('`', table_schema, '`.`logs`') FROM information_schema.tables WHERE table_name = 'logs'")
        .output()
        .expect("mariadb");
    let table = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!table.is_empty(), "no logs table yet");
    format!("LOCK TABLES {table} WRITE; SELECT SLEEP(20); UNLOCK TABLES;")
}
