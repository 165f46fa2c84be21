//! The real `taillight` binary: the client commands (push, query, services,
//! tail) against a server, and `taillight serve` as a child process that is
//! killed with SIGKILL or stopped with SIGTERM.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, TestServer, unique};
use serde_json::Value;
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{Level, LogFilter, PushLogsRequest, TailRequest};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_taillight");

backend_tests!(cli_commands_against_a_server, query_formats_are_the_export);

// ---------------------------------------------------------------- helpers

/// A `taillight` command with no `TAILLIGHT_*` variables inherited.
fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TAILLIGHT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs a client command to completion, feeding it `stdin`.
async fn run(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        let mut cmd = command();
        cmd.args(&args)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn taillight");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        let out = child.wait_with_output().expect("wait for taillight");
        if !out.status.success() {
            eprintln!(
                "taillight {args:?} exited with {}:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    })
    .await
    .expect("command task")
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// A long-running child whose stdout lines arrive on a channel; killed on drop.
struct Streaming {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Streaming {
    fn spawn(args: &[&str]) -> Self {
        let mut child = command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn taillight");
        let (tx, lines) = mpsc::unbounded_channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Streaming { child, lines }
    }

    async fn next_line(&mut self, within: Duration) -> String {
        tokio::time::timeout(within, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("no output line within {within:?}"))
            .expect("the command's stdout closed")
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `taillight serve` as a child process on a port of its choosing.
struct ServeProcess {
    child: Child,
    addr: SocketAddr,
    /// Everything it wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    async fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let data_dir = data_dir.to_path_buf();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let p = tokio::task::spawn_blocking(move || Self::start_blocking(&data_dir, &extra))
            .await
            .expect("start task");
        p.wait_ready().await;
        p
    }

    fn start_blocking(data_dir: &PathBuf, extra: &[String]) -> Self {
        let mut child = command()
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn taillight serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        // Keeps draining stderr, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("taillight listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
                sink.lock().expect("log").push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a
                .parse()
                .unwrap_or_else(|e| panic!("bad address {a:?}: {e}")),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "taillight serve printed no address; stderr:\n{}",
                    log.lock().expect("log").join("\n")
                );
            }
        };
        ServeProcess { child, addr, log }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stderr(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/readyz", self.url())).await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server never became ready; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL, and reap it.
    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every record of `service`, oldest first, over gRPC with cursor paging.
async fn all_records(url: &str, service: &str) -> Vec<(u64, String)> {
    let mut client = LogServiceClient::connect(url.to_string())
        .await
        .expect("connect");
    let filter = LogFilter {
        services: vec![service.to_string()],
        ..Default::default()
    };
    common::query_all(&mut client, filter)
        .await
        .into_iter()
        .map(|r| (r.id, r.message))
        .collect()
}

// ---------------------------------------------------------------- client commands

/// push, query, services, tail and the environment variables, against `url`.
/// `server` is the in-process test server behind `url`, if it is one: it is
/// settled before reading back (a child `serve` on SQLite needs no settling,
/// a push returns only once its entries are committed).
async fn exercise_cli(url: &str, server: Option<&TestServer>) {
    let svc = unique("cli");

    // push: one entry per stdin line.
    let out = run(
        &["push", "--server", url, "--service", &svc, "--tag", "t"],
        "a\nb\n",
        &[],
    )
    .await;
    assert!(out.status.success(), "push failed");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("accepted 2 entries"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(server) = server {
        server.settle().await;
    }

    // query --json: one JSON object per line, newest first.
    let out = run(&["query", "--server", url, "-s", &svc, "--json"], "", &[]).await;
    assert!(out.status.success());
    let lines = stdout_lines(&out);
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let msgs: Vec<&str> = records
        .iter()
        .map(|r| r["message"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(msgs, ["b", "a"]);
    for r in &records {
        assert_eq!(r["service"], svc.as_str());
        assert_eq!(r["level"], "INFO");
        assert_eq!(r["tags"], serde_json::json!(["t"]));
        assert!(r["id"].as_u64().is_some(), "{r}");
    }

    // Plain text, oldest first.
    let out = run(
        &[
            "query",
            "--server",
            url,
            "-s",
            &svc,
            "--oldest-first",
            "--no-color",
        ],
        "",
        &[],
    )
    .await;
    assert!(out.status.success());
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].ends_with(" a") && lines[1].ends_with(" b"),
        "{lines:?}"
    );
    assert!(lines[0].contains(&svc) && lines[0].contains("INFO") && lines[0].contains("[t]"));
    assert!(
        !lines[0].contains('\x1b'),
        "colour in piped output: {lines:?}"
    );

    // services, and the tags of one.
    let out = run(&["services", "--server", url], "", &[]).await;
    assert!(out.status.success());
    assert!(
        stdout_lines(&out).contains(&svc),
        "{:?}",
        stdout_lines(&out)
    );
    let out = run(&["services", "--server", url, "--tags", &svc], "", &[]).await;
    assert!(out.status.success());
    assert_eq!(stdout_lines(&out), ["t"]);

    // Every flag is also an environment variable.
    let out = run(&["services"], "", &[("TAILLIGHT_SERVER", url)]).await;
    assert!(out.status.success(), "TAILLIGHT_SERVER was not used");
    assert!(stdout_lines(&out).contains(&svc));
    let out = run(
        &["query", "--json"],
        "",
        &[("TAILLIGHT_SERVER", url), ("TAILLIGHT_SERVICE", &svc)],
    )
    .await;
    assert!(out.status.success());
    assert_eq!(stdout_lines(&out).len(), 2);

    // tail: the backfill, then what is pushed afterwards.
    let mut tail =
        Streaming::spawn(&["tail", "--server", url, "-s", &svc, "-n", "5", "--no-color"]);
    let first = tail.next_line(Duration::from_secs(10)).await;
    let second = tail.next_line(Duration::from_secs(5)).await;
    assert!(first.ends_with(" a") && first.contains(&svc), "{first:?}");
    assert!(second.ends_with(" b"), "{second:?}");
    let out = run(
        &[
            "push",
            "--server",
            url,
            "--service",
            &svc,
            "-l",
            "warn",
            "-a",
            "k=v",
            "live message",
        ],
        "",
        &[],
    )
    .await;
    assert!(out.status.success());
    let live = tail.next_line(Duration::from_secs(5)).await;
    assert!(live.contains("live message"), "{live:?}");
    assert!(live.contains("WARN") && live.contains("k=v"), "{live:?}");
    drop(tail);

    // Errors exit non-zero and say why.
    let out = run(
        &["push", "--server", url, "--service", "bad name", "x"],
        "",
        &[],
    )
    .await;
    assert!(!out.status.success(), "an invalid service was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("service"), "{err}");
    let out = run(&["services", "--server", "http://127.0.0.1:1"], "", &[]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn cli_commands_against_a_server(backend: Backend) {
    let server = TestServer::start(backend).await;
    exercise_cli(&server.http(), Some(&server)).await;
}

/// The body of `GET /v1/logs/export` for `query`, which must succeed.
async fn export_body(url: &str, query: &[(&str, &str)]) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{url}/v1/logs/export"))
        .query(query)
        .send()
        .await
        .expect("export");
    assert!(
        resp.status().is_success(),
        "export {query:?}: {}",
        resp.status()
    );
    resp.text().await.expect("export body")
}

/// `query --format ndjson|csv` prints exactly what the export endpoint
/// answers for the same filter, `--json` is `--format ndjson`, and
/// `--limit 0` walks every page.
async fn query_formats_are_the_export(backend: Backend) {
    let server = TestServer::start(backend).await;
    let url = server.http();
    let svc = unique("cli-export");
    // More than one page, with text CSV must quote; one attribute each, so
    // even NDJSON compares byte for byte.
    let entries: Vec<Value> = (0..1500)
        .map(|i| {
            serde_json::json!({
                "service": svc,
                "level": if i % 3 == 0 { "warn" } else { "info" },
                "message": format!("line {i:04}, \"quoted\"\nsecond line ✓"),
                "tags": ["t"],
                "attributes": { "i": i.to_string() },
            })
        })
        .collect();
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/logs"))
        .json(&entries)
        .send()
        .await
        .expect("push");
    assert!(resp.status().is_success(), "push: {}", resp.status());
    server.settle().await;

    let query = |extra: &[&str]| {
        let mut args = vec!["query", "--server", url.as_str(), "-s", svc.as_str()];
        args.extend_from_slice(extra);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run(&args, "", &[]).await;
            assert!(out.status.success(), "query {args:?} failed");
            String::from_utf8(out.stdout).expect("UTF-8 output")
        }
    };
    let every = ["--limit", "0", "--oldest-first"];
    for format in ["csv", "ndjson"] {
        let printed = query(&[&every[..], &["--format", format]].concat()).await;
        let body = export_body(&url, &[("service", &svc), ("format", format)]).await;
        assert_eq!(printed, body, "query --format {format} --limit 0");
    }
    assert_eq!(
        query(&[&every[..], &["--json"]].concat()).await,
        query(&[&every[..], &["--format", "ndjson"]].concat()).await,
        "--json is --format ndjson"
    );
    assert_eq!(
        query(&[&every[..], &["--format", "csv", "-l", "warn"]].concat()).await,
        export_body(
            &url,
            &[("service", &svc), ("format", "csv"), ("min_level", "warn")]
        )
        .await,
        "filtered"
    );

    // Newest first by default; the limit counts records, not the header.
    let newest = query(&["--format", "csv", "-n", "5"]).await;
    let desc = export_body(
        &url,
        &[("service", &svc), ("format", "csv"), ("order", "newest")],
    )
    .await;
    let rows: Vec<&str> = desc.split_inclusive("\r\n").collect();
    assert!(rows.len() > 6, "{desc}");
    assert_eq!(newest, rows[..6].concat());

    // Pages of large entries would pass the server's 4 MiB response limit:
    // the CLI shrinks them to fit and still prints every entry.
    let big = unique("cli-export-big");
    for half in 0..2 {
        let entries: Vec<Value> = (0..40)
            .map(|i| serde_json::json!({ "service": big, "message": format!("{half}-{i:02} {}", "x".repeat(60_000)) }))
            .collect();
        let resp = reqwest::Client::new()
            .post(format!("{url}/v1/logs"))
            .json(&entries)
            .send()
            .await
            .expect("push");
        assert!(resp.status().is_success(), "push: {}", resp.status());
    }
    server.settle().await;
    let out = run(
        &[
            "query", "--server", &url, "-s", &big, "--format", "csv", "--limit", "0",
        ],
        "",
        &[],
    )
    .await;
    assert!(out.status.success(), "query of large entries failed");
    let body = export_body(
        &url,
        &[("service", &big), ("format", "csv"), ("order", "newest")],
    )
    .await;
    assert_eq!(out.stdout.len(), body.len(), "query of large entries");
    assert!(
        out.stdout == body.as_bytes(),
        "query of large entries differs"
    );

    let out = run(
        &["query", "--server", &url, "--json", "--format", "csv"],
        "",
        &[],
    )
    .await;
    assert!(!out.status.success(), "--json and --format csv together");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_as_a_child_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServeProcess::start(
        &dir.path().join("data"),
        &["--sqlite-synchronous", "normal"],
    )
    .await;
    exercise_cli(&server.url(), None).await;
}

// ---------------------------------------------------------------- crash and shutdown

fn batch(service: &str, prefix: &str, n: usize) -> (PushLogsRequest, Vec<String>) {
    let messages: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:03}")).collect();
    let entries = messages
        .iter()
        .map(|m| common::entry(service, Level::Info, m, &["durable"]))
        .collect();
    (PushLogsRequest { entries }, messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // Default settings: SQLite synchronous FULL.
    let mut server = ServeProcess::start(&data, &[]).await;
    let url = server.url();
    let svc = unique("durable");
    let mut client = LogServiceClient::connect(url.clone())
        .await
        .expect("connect");

    // 2000 entries in 10 acknowledged calls of 4 messages each.
    let mut acked: Vec<String> = Vec::new();
    for call in 0..10 {
        let mut msgs = Vec::new();
        let mut names = Vec::new();
        for m in 0..4 {
            let (req, n) = batch(&svc, &format!("ack-{call:02}-{m}"), 50);
            msgs.push(req);
            names.extend(n);
        }
        let resp = client
            .push_logs(tokio_stream::iter(msgs))
            .await
            .expect("PushLogs")
            .into_inner();
        assert_eq!(resp.accepted, 200);
        acked.extend(names);
    }
    assert_eq!(acked.len(), 2000);

    // A stream that is still open when the server dies.
    let (tx, rx) = mpsc::channel::<PushLogsRequest>(4);
    let mut c = client.clone();
    let open_stream = tokio::spawn(async move {
        c.push_logs(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let sent = Arc::new(AtomicUsize::new(0));
    let feed_svc = svc.clone();
    let feed_sent = sent.clone();
    let feeder = tokio::spawn(async move {
        for k in 0..100_000 {
            let (req, _) = batch(&feed_svc, &format!("open-{k:05}"), 20);
            if tx.send(req).await.is_err() {
                break;
            }
            feed_sent.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    // And calls that keep completing right up to the kill.
    let raced = Arc::new(AtomicUsize::new(0));
    let mut c = client.clone();
    let race_svc = svc.clone();
    let race_count = raced.clone();
    let racer = tokio::spawn(async move {
        let mut acked = Vec::new();
        for r in 0..100_000 {
            let (req, names) = batch(&race_svc, &format!("race-{r:05}"), 10);
            match c.push_logs(tokio_stream::iter([req])).await {
                Ok(resp) => {
                    assert_eq!(resp.into_inner().accepted, 10);
                    acked.extend(names);
                    race_count.fetch_add(1, Relaxed);
                }
                Err(_) => break,
            }
        }
        acked
    });

    // Let both get going, then pull the plug.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sent.load(Relaxed) < 10 || raced.load(Relaxed) < 5 {
        assert!(
            Instant::now() < deadline,
            "pushes made no progress: {} messages sent, {} calls acknowledged",
            sent.load(Relaxed),
            raced.load(Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9();
    let open = tokio::time::timeout(Duration::from_secs(10), open_stream)
        .await
        .expect("the open stream noticed the crash")
        .expect("stream task");
    assert!(
        open.is_err(),
        "a never-finished stream reported success: {open:?}"
    );
    let race_acked = tokio::time::timeout(Duration::from_secs(10), racer)
        .await
        .expect("the racing pushes noticed the crash")
        .expect("racer task");
    feeder.abort();
    acked.extend(race_acked);

    // Same data directory, new process.
    let server = ServeProcess::start(&data, &[]).await;
    let stored = all_records(&server.url(), &svc).await;
    eprintln!(
        "after the kill: {} acknowledged, {} stored ({} from the open stream)",
        acked.len(),
        stored.len(),
        stored
            .iter()
            .filter(|(_, m)| m.starts_with("open-"))
            .count()
    );
    let ids: Vec<u64> = stored.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids are not strictly increasing"
    );
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, m) in &stored {
        *count.entry(m.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "stored twice: {dups:?}");
    let missing: Vec<&String> = acked
        .iter()
        .filter(|m| !count.contains_key(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged entries lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // Acknowledged calls were sequential, so their entries are in push order.
    let position: HashMap<&str, u64> = stored.iter().map(|(id, m)| (m.as_str(), *id)).collect();
    let acked_ids: Vec<u64> = acked.iter().map(|m| position[m.as_str()]).collect();
    assert!(
        acked_ids.windows(2).all(|w| w[0] < w[1]),
        "acknowledged entries out of push order"
    );

    // The restarted server carries on after the highest id.
    let max = ids.last().copied().unwrap_or(0);
    let out = run(
        &[
            "push",
            "--server",
            &server.url(),
            "--service",
            &svc,
            "after restart",
        ],
        "",
        &[],
    )
    .await;
    assert!(out.status.success());
    let after = all_records(&server.url(), &svc).await;
    let (new_id, new_msg) = after.last().expect("a record").clone();
    assert_eq!(new_msg, "after restart");
    assert!(
        new_id > max,
        "id {new_id} reused after restart (max was {max})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // A long shutdown timeout: open tails must end at once, not hold it up.
    let mut server = ServeProcess::start(&data, &["--shutdown-timeout", "60s"]).await;
    let url = server.url();
    let svc = unique("sigterm");
    let mut client = LogServiceClient::connect(url.clone())
        .await
        .expect("connect");
    let (req, names) = batch(&svc, "before-term", 50);
    let resp = client
        .push_logs(tokio_stream::iter([req]))
        .await
        .expect("PushLogs")
        .into_inner();
    assert_eq!(resp.accepted, 50);

    // Open tails over gRPC and SSE.
    let mut grpc_tail = client
        .tail(TailRequest {
            filter: Some(LogFilter {
                services: vec![svc.clone()],
                ..Default::default()
            }),
            last: 1,
            ..Default::default()
        })
        .await
        .expect("Tail")
        .into_inner();
    let first = grpc_tail.message().await.expect("tail message");
    assert!(first.is_some());
    let mut sse = reqwest::get(format!("{url}/v1/tail?service={svc}&last=1"))
        .await
        .expect("SSE tail");
    assert!(sse.chunk().await.expect("SSE chunk").is_some());

    let pid = server.child.id().to_string();
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM")
    })
    .await
    .expect("kill task");
    assert!(status.success());

    let exit = loop {
        if let Some(s) = server.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "server still running {:?} after SIGTERM; stderr:\n{}",
            started.elapsed(),
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        exit.success(),
        "exit status {exit:?}; stderr:\n{}",
        server.stderr()
    );
    assert!(
        server.stderr().contains("shutting down"),
        "{}",
        server.stderr()
    );

    // The tails ended rather than hanging.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match grpc_tail.message().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the gRPC tail stream did not end");
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = sse.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the SSE tail did not end");

    let server = ServeProcess::start(&data, &[]).await;
    let stored: Vec<String> = all_records(&server.url(), &svc)
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(stored, names);
    let unique_count = stored.iter().collect::<HashSet<_>>().len();
    assert_eq!(unique_count, 50);
}
