//! MariaDB gone for 30 s, holding the table locked for 20 s, and out of disk
//! for 30 s, under load, in the distributed mode, with a MariaDB of the
//! test's own: pushes go on being acknowledged into Kafka, quickly; tails
//! keep beating; the writer counts its failures and retries; and once
//! MariaDB can write again the backlog drains with every acknowledged entry
//! stored exactly once.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mount::Mount;
use common::process::{PrivateMariaDb, Proc, serve_args};
use common::reliability::{Row, wait_for_acked};
use common::{Backend, unique};
use serde_json::{Value, json};

/// A node of the distributed mode storing into `db`.
fn node_on(db: &PrivateMariaDb) -> (Proc, Arc<common::Scratch>) {
    let (mut cfg, scratch) = common::test_config(Backend::Distributed);
    cfg.store.mysql.database_url = Some(format!(
        "mysql://root@127.0.0.1:{}/{}",
        db.port,
        unique("outage").replace('-', "_")
    ));
    (Proc::spawn(&serve_args(&cfg, "all")), scratch)
}

/// When the fault was on, as the pushing loop saw it; read by [`recovered`].
#[derive(Default)]
struct Fault {
    /// Whether the fault is on now.
    on: bool,
    /// When it ended.
    ended: Option<Instant>,
}

type SharedFault = Arc<Mutex<Fault>>;

fn set_fault(fault: &SharedFault, on: bool) {
    let mut f = fault.lock().expect("fault");
    if f.on && !on {
        f.ended = Some(Instant::now());
    }
    f.on = on;
}

/// How long after the fault ended the writer stored again: the stored
/// count stands still while the fault is on, so its first rise after the
/// end is the writer's recovery.
async fn recovered(base: String, fault: SharedFault) -> Option<Duration> {
    let mut during = None;
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        let stored = common::try_metric_at(&base, "taillight_entries_stored_total").await;
        let (on, ended) = {
            let f = fault.lock().expect("fault");
            (f.on, f.ended)
        };
        match (on, ended, stored, during) {
            (true, _, Some(n), _) => during = Some(n),
            (false, Some(end), Some(n), Some(d)) if n > d => return Some(end.elapsed()),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// What a client saw pushing 20 entries every 50 ms.
struct Pushed {
    /// The messages of acknowledged pushes.
    acked: Vec<String>,
    /// The answers (status, time) of the pushes made during the fault.
    during: Vec<(u16, Duration)>,
    /// Entries sent in all.
    sent: usize,
}

/// Pushes batches of `message(k, i)` for `total`, asking `fault` before
/// each push whether the fault is on (and letting it start or end it).
async fn push_through(
    base: &str,
    svc: &str,
    total: Duration,
    message: impl Fn(usize, usize) -> String,
    mut fault: impl FnMut(Duration) -> bool,
) -> Pushed {
    let http = reqwest::Client::new();
    let mut p = Pushed {
        acked: Vec::new(),
        during: Vec::new(),
        sent: 0,
    };
    let started = Instant::now();
    for k in 0.. {
        if started.elapsed() >= total {
            break;
        }
        let on = fault(started.elapsed());
        let messages: Vec<String> = (0..20).map(|i| message(k, i)).collect();
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
        p.sent += messages.len();
        if on {
            p.during.push((r.status().as_u16(), asked.elapsed()));
        }
        if r.status() == 200 {
            p.acked.extend(messages);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p
}

fn short(k: usize, i: usize) -> String {
    format!("b{k}-{i}")
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

/// The row of a run, from what was pushed and what is stored.
fn row(fault: &str, test: &str, p: &Pushed, stored: &[String]) -> Row {
    Row {
        fault: fault.into(),
        mode: "distributed".into(),
        pushed: p.sent as u64,
        acknowledged: p.acked.len() as u64,
        test: format!("mariadb_outage::{test}"),
        ..Row::default()
    }
    .tallied(
        p.acked.iter().map(String::as_str),
        stored.iter().map(String::as_str),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_down_for_30_s_under_load_loses_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut db = PrivateMariaDb::install(dir.path(), &[]);
    let (node, _scratch) = node_on(&db);
    let svc = unique("dbdown");
    let fault = SharedFault::default();
    let recovery = tokio::spawn(recovered(node.url(), fault.clone()));
    // MariaDB gone from 5 s to 35 s of 45.
    let pushed = push_through(&node.url(), &svc, Duration::from_secs(45), short, |t| {
        if t > Duration::from_secs(5) && t < Duration::from_secs(35) && db.is_running() {
            db.kill();
        }
        if t >= Duration::from_secs(35) && !db.is_running() {
            db.start();
        }
        set_fault(&fault, !db.is_running());
        !db.is_running()
    })
    .await;
    let slowest = all_quick(&pushed.during);
    let errors = common::metric_at(&node.url(), "taillight_errors_total{kind=\"store\"}").await;
    assert!(errors > 0, "the writer's failures are counted");
    let stored = wait_for_acked(&node.url(), &svc, &pushed.acked, Duration::from_secs(120)).await;
    let mut row = row(
        "MariaDB killed for 30 s",
        "mariadb_down_for_30_s_under_load_loses_nothing",
        &pushed,
        &stored,
    );
    row.recovery = recovery.await.expect("watch");
    row.detail = format!(
        "{} pushes while it was down, all acknowledged, the slowest in {} ms; {errors} failed store attempts counted",
        pushed.during.len(),
        slowest.as_millis()
    );
    row.record_and_check();
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
    let fault = SharedFault::default();
    let recovery = tokio::spawn(recovered(node.url(), fault.clone()));
    let sock = db.socket();
    let mut lock: Option<Child> = None;
    let mut window = None;
    let pushed = push_through(&node.url(), &svc, Duration::from_secs(30), short, |t| {
        if lock.is_none() && t > Duration::from_secs(5) {
            lock = Some(hold_lock(&sock));
            window = Some(Instant::now());
        }
        let on = lock
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        set_fault(&fault, on);
        on
    })
    .await;
    let slowest = all_quick(&pushed.during);
    let from = window.expect("locked");
    let to = from + Duration::from_secs(20);
    let beats_during = beats.try_iter().filter(|at| *at > from && *at < to).count();
    assert!(
        beats_during >= 10,
        "{beats_during} heartbeats while the table was locked"
    );
    let stored = wait_for_acked(&node.url(), &svc, &pushed.acked, Duration::from_secs(120)).await;
    reader.abort();
    let mut row = row(
        "MariaDB holding the logs table locked for 20 s",
        "mariadb_locked_for_20_s_under_load_keeps_ingest_and_tails_responsive",
        &pushed,
        &stored,
    );
    row.recovery = recovery.await.expect("watch");
    row.detail = format!(
        "{} pushes while locked, all acknowledged, the slowest in {} ms; an SSE tail kept its 1 s heartbeat ({beats_during} beats)",
        pushed.during.len(),
        slowest.as_millis()
    );
    row.record_and_check();
}

/// A client holding every `logs` table of the server locked for 20 s
/// (there is one: the node's database).
fn hold_lock(sock: &str) -> Child {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "-uroot", &format!("--socket={sock}"), "-N", "-e"])
        .arg("SELECT CONCAT('`', table_schema, '`.`logs`') FROM information_schema.tables WHERE table_name = 'logs'")
        .output()
        .expect("mariadb");
    let table = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!table.is_empty(), "no logs table yet");
    Command::new("mariadb")
        .args(["--no-defaults", "-uroot", &format!("--socket={sock}")])
        .arg("-e")
        .arg(format!(
            "LOCK TABLES {table} WRITE; SELECT SLEEP(20); UNLOCK TABLES;"
        ))
        .stdout(Stdio::null())
        .spawn()
        .expect("mariadb")
}

/// Messages of 2 KB, so the table outgrows the space left within seconds.
fn padded(k: usize, i: usize) -> String {
    format!("b{k}-{i}-{}", "p".repeat(2_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_out_of_disk_for_30_s_under_load_loses_nothing() {
    let disk = Mount::new("400m");
    let db = PrivateMariaDb::install(disk.path(), &[]);
    let (node, _scratch) = node_on(&db);
    let svc = unique("dbfull");
    let fault = SharedFault::default();
    let recovery = tokio::spawn(recovered(node.url(), fault.clone()));
    // The disk filled at 5 s and freed at 35 s of 50.
    let mut ballast = None;
    let mut freed = false;
    let pushed = push_through(&node.url(), &svc, Duration::from_secs(50), padded, |t| {
        if ballast.is_none() && t > Duration::from_secs(5) {
            ballast = Some(disk.fill());
        }
        if !freed && t > Duration::from_secs(35) {
            std::fs::remove_file(ballast.as_ref().expect("filled")).expect("free the disk");
            freed = true;
        }
        let on = ballast.is_some() && !freed;
        set_fault(&fault, on);
        on
    })
    .await;
    let slowest = all_quick(&pushed.during);
    let errors = common::metric_at(&node.url(), "taillight_errors_total{kind=\"store\"}").await;
    assert!(errors > 0, "the store never filled up");
    let stored = wait_for_acked(&node.url(), &svc, &pushed.acked, Duration::from_secs(120)).await;
    let mut row = row(
        "MariaDB's disk full for 30 s (a 400 MB tmpfs)",
        "mariadb_out_of_disk_for_30_s_under_load_loses_nothing",
        &pushed,
        &stored,
    );
    row.recovery = recovery.await.expect("watch");
    row.detail = format!(
        "{} pushes while full, all acknowledged into Kafka, the slowest in {} ms; {errors} failed store attempts counted",
        pushed.during.len(),
        slowest.as_millis()
    );
    row.record_and_check();
}
