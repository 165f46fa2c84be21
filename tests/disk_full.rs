//! The embedded server on a small filesystem of its own (a tmpfs the test
//! mounts; CI runs as root), with its log on that filesystem and elsewhere.
//! While the disk is full a push is refused with 507 / RESOURCE_EXHAUSTED
//! and stores nothing; once space returns ingest resumes by itself; every
//! acknowledged entry is stored once; SIGTERM still ends the server. With
//! the log on the full disk the pipeline once died for good (a failed
//! write to stderr panicked inside the writer).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::mount::Mount;
use common::reliability::Row;
use common::unique;
use serde_json::{Value, json};

/// `taillight serve` with its stderr appended to `log`.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &Path, log: &Path) -> Self {
        let cmd = format!(
            "exec {} serve --listen 127.0.0.1:0 --data-dir {} --shutdown-timeout 5s 2>>{}",
            env!("CARGO_BIN_EXE_taillight"),
            data.display(),
            log.display()
        );
        let child = Command::new("sh")
            .args(["-c", &cmd])
            .env("TAILLIGHT_LOG", "info")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        // Killed by its Drop if it never listens.
        let mut server = Server {
            child,
            base: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find_map(|l| l.strip_prefix("taillight listening on "))
            {
                server.base = format!("http://{}", addr.trim());
                return server;
            }
            assert!(Instant::now() < deadline, "never listened: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM; how long it took to exit.
    fn terminate(mut self) -> Duration {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill")
                .success()
        );
        loop {
            if self.child.try_wait().expect("wait").is_some() {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "SIGTERM did not end it"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn push(http: &reqwest::Client, base: &str, body: &Value) -> (u16, Value) {
    let r = http
        .post(format!("{base}/v1/logs"))
        .json(body)
        .send()
        .await
        .expect("an answer");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn batch(svc: &str, k: usize) -> (Vec<String>, Value) {
    let pad = "p".repeat(2_000);
    let messages: Vec<String> = (0..20).map(|i| format!("b{k}-{i}-{pad}")).collect();
    let body = messages
        .iter()
        .map(|m| json!({"service": svc, "message": m}))
        .collect();
    (messages, Value::Array(body))
}

async fn survives_a_full_disk(log_on_the_full_disk: bool) {
    let disk = Mount::new("8m");
    let elsewhere = tempfile::tempdir().expect("tmp");
    let log = match log_on_the_full_disk {
        true => disk.path().join("server.log"),
        false => elsewhere.path().join("server.log"),
    };
    let server = Server::start(&disk.path().join("data"), &log);
    let http = reqwest::Client::new();
    let svc = unique("full");
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    let ballast = disk.fill();
    // Pushes go on until the store has no room left either.
    let mut full = None;
    for k in 0..2_000 {
        let (messages, body) = batch(&svc, k);
        match push(&http, &server.base, &body).await {
            (200, _) => acked.extend(messages),
            (status, answer) => {
                refused.extend(messages);
                full = Some((status, answer));
                break;
            }
        }
    }
    let (status, answer) = full.expect("the disk never filled");
    assert_eq!(status, 507, "{answer}");
    assert_eq!(answer["error"]["code"], "RESOURCE_EXHAUSTED");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("out of space"), "{message}");
    // Still full: refused again and again, each refusal logged, until the
    // log's last page is full too and its lines cannot be written.
    for k in 5_000..5_050 {
        let (messages, body) = batch(&svc, k);
        let (status, answer) = push(&http, &server.base, &body).await;
        assert_eq!(status, 507, "push {k} while full: {answer}");
        refused.extend(messages);
    }

    std::fs::remove_file(&ballast).expect("free the disk");
    let freed = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut k = 10_000;
    let recovery = loop {
        let (messages, body) = batch(&svc, k);
        k += 1;
        if push(&http, &server.base, &body).await.0 == 200 {
            acked.extend(messages);
            break freed.elapsed();
        }
        refused.extend(messages);
        assert!(
            Instant::now() < deadline,
            "ingest did not resume once space returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ready = http
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status().as_u16(),
        200,
        "{}",
        ready.text().await.unwrap_or_default()
    );

    let stored = common::exported_messages(&server.base, &svc).await;
    let counts: std::collections::HashSet<&str> = stored.iter().map(String::as_str).collect();
    let refused_stored = refused
        .iter()
        .filter(|m| counts.contains(m.as_str()))
        .count();
    let where_log = if log_on_the_full_disk {
        "on it"
    } else {
        "elsewhere"
    };
    Row {
        fault: format!("disk full (an 8 MB tmpfs), the server's log {where_log}"),
        mode: "embedded".into(),
        pushed: (acked.len() + refused.len()) as u64,
        acknowledged: acked.len() as u64,
        recovery: Some(recovery),
        detail: format!(
            "{} entries refused with 507 while full, {refused_stored} of them stored",
            refused.len()
        ),
        test: format!(
            "disk_full::a_full_disk_with_the_log_{}_refuses_pushes_and_recovers",
            where_log.replace(' ', "_")
        ),
        ..Row::default()
    }
    .tallied(
        acked.iter().map(String::as_str),
        stored.iter().map(String::as_str),
    )
    .record_and_check();
    assert_eq!(refused_stored, 0, "refused entries were stored");
    let took = server.terminate();
    assert!(took < Duration::from_secs(8), "SIGTERM took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_with_the_log_on_it_refuses_pushes_and_recovers() {
    survives_a_full_disk(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_with_the_log_elsewhere_refuses_pushes_and_recovers() {
    survives_a_full_disk(false).await;
}
