//! MariaDB stopped for 30 s under load, in the distributed mode, with a
//! MariaDB of the test's own (killed and started again on its data): pushes
//! go on being acknowledged into Kafka, the writer counts its failures and
//! retries, and once MariaDB is back the backlog drains with every
//! acknowledged entry stored exactly once.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{Proc, serve_args};
use common::{Backend, free_port, unique};
use serde_json::{Value, json};

/// A mariadbd on its own data directory and port.
struct Db {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Db {
    fn install(dir: &Path) -> Self {
        let out = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--skip-test-db"])
            .arg(format!("--datadir={}", dir.join("db").display()))
            .output()
            .expect("mariadb-install-db");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut db = Db {
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
        };
        db.start();
        db
    }

    fn start(&mut self) {
        let child = Command::new("mariadbd")
            .args([
                "--no-defaults",
                "--user=root",
                "--skip-grant-tables",
                "--bind-address=127.0.0.1",
            ])
            .arg(format!("--datadir={}", self.dir.join("db").display()))
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .arg(format!("--port={}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mariadbd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: what is committed stays, nothing else.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_down_for_30_s_under_load_loses_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut db = Db::install(dir.path());
    let (mut cfg, _scratch) = common::test_config(Backend::Distributed);
    cfg.store.mysql.database_url = Some(format!(
        "mysql://root@127.0.0.1:{}/{}",
        db.port,
        unique("outage").replace('-', "_")
    ));
    let node = Proc::spawn(&serve_args(&cfg, "all"));
    let svc = unique("dbdown");
    let http = reqwest::Client::new();
    let mut acked = Vec::new();
    let mut during = Vec::new();
    let started = Instant::now();
    let mut killed_at = None;
    let mut k = 0;
    // 45 s of pushes, 20 entries every 50 ms; MariaDB gone from 5 s to 35 s.
    while started.elapsed() < Duration::from_secs(45) {
        let t = started.elapsed();
        if killed_at.is_none() && t > Duration::from_secs(5) {
            db.kill();
            killed_at = Some(Instant::now());
        }
        if killed_at.is_some_and(|at| at.elapsed() > Duration::from_secs(30)) && db.child.is_none()
        {
            db.start();
        }
        let messages: Vec<String> = (0..20).map(|i| format!("b{k}-{i}")).collect();
        k += 1;
        let body: Vec<Value> = messages
            .iter()
            .map(|m| json!({"service": svc, "message": m}))
            .collect();
        let asked = Instant::now();
        let r = http
            .post(format!("{}/v1/logs", node.url()))
            .json(&body)
            .send()
            .await
            .expect("an answer");
        if db.child.is_none() {
            during.push((r.status().as_u16(), asked.elapsed()));
        }
        if r.status() == 200 {
            acked.extend(messages);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // While MariaDB was away, pushes were acknowledged (into Kafka), quickly.
    assert!(
        during.len() > 100,
        "{} pushes during the outage",
        during.len()
    );
    assert!(during.iter().all(|(s, _)| *s == 200), "{during:?}");
    let slowest = during.iter().map(|(_, d)| *d).max().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(2),
        "a push took {slowest:?} during the outage"
    );
    let errors = common::metric_at(&node.url(), "taillight_errors_total{kind=\"store\"}").await;
    assert!(errors > 0, "the writer's failures are counted");

    // The backlog drains; every acknowledged entry once.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (missing, twice) = loop {
        let mut seen: HashMap<String, u32> = HashMap::new();
        for m in common::exported_messages(&node.url(), &svc).await {
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
    println!(
        "{} entries acknowledged, {} pushes while MariaDB was down (slowest {slowest:?}), {errors} failed store attempts, all stored once",
        acked.len(),
        during.len()
    );
}
