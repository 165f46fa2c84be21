//! What the archive tests share: reading an archive directory as it is on
//! disk (independently of taillight's own reader), checking it against the
//! store, and `taillight serve` child processes that can be killed -9.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use taillight::config::{Role, ServeArgs};
use taillight::model::json::RecordOut;
use taillight::proto::LogRecord;
use taillight::sinks::archive::names::dir_name;

/// Every line of every archive file under `root`, by path relative to it.
/// Of an `.ndjson` and its compressed copy only the copy counts (the open
/// file is left beside it only by a close cut short). Fails on a line that
/// is not whole JSON: a torn line.
pub fn read_archive(root: &Path) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut out = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(root) else {
        return out;
    };
    for d in dirs.map(|d| d.expect("dir entry")) {
        if !d.file_type().expect("type").is_dir() {
            continue;
        }
        for f in std::fs::read_dir(d.path()).expect("service dir") {
            let path = f.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let bytes = if name.ends_with(".ndjson.zst") {
                zstd::stream::decode_all(std::fs::File::open(&path).expect("open"))
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            } else if name.ends_with(".ndjson") {
                let closed = path.with_file_name(format!("{name}.zst"));
                if closed.exists() {
                    continue;
                }
                std::fs::read(&path).expect("read")
            } else {
                continue;
            };
            let rel = format!("{}/{name}", d.file_name().to_string_lossy());
            out.insert(rel.clone(), lines(&rel, &bytes));
        }
    }
    out
}

fn lines(rel: &str, bytes: &[u8]) -> Vec<serde_json::Value> {
    if bytes.is_empty() {
        return Vec::new();
    }
    assert_eq!(bytes.last(), Some(&b'\n'), "{rel}: last line torn");
    bytes[..bytes.len() - 1]
        .split(|b| *b == b'\n')
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!("{rel}: torn line {:?}: {e}", String::from_utf8_lossy(l))
            })
        })
        .collect()
}

/// The ids of every archived line, in file order.
pub fn archived_ids(archive: &BTreeMap<String, Vec<serde_json::Value>>) -> Vec<u64> {
    archive
        .values()
        .flatten()
        .map(|v| v["id"].as_u64().expect("id"))
        .collect()
}

/// The archive holds every record of `store` once, each file in id order,
/// in its service's directory, as the gateway shows it.
pub fn assert_exact(archive: &BTreeMap<String, Vec<serde_json::Value>>, store: &[LogRecord]) {
    let by_id: BTreeMap<u64, &LogRecord> = store.iter().map(|r| (r.id, r)).collect();
    let mut seen = BTreeSet::new();
    for (rel, lines) in archive {
        let ids: Vec<u64> = lines
            .iter()
            .map(|v| v["id"].as_u64().expect("id"))
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{rel}: not in id order"
        );
        for (v, id) in lines.iter().zip(ids) {
            assert!(seen.insert(id), "id {id} archived twice (again in {rel})");
            let r = by_id
                .get(&id)
                .unwrap_or_else(|| panic!("{rel}: id {id} is not in the store"));
            assert_eq!(
                v,
                &serde_json::to_value(RecordOut::from(*r)).expect("json"),
                "{rel}: id {id} differs from the store"
            );
            let dir = rel.split('/').next().expect("dir");
            assert_eq!(dir, dir_name(&r.service), "id {id} in the wrong directory");
        }
    }
    let missing: Vec<u64> = by_id
        .keys()
        .filter(|id| !seen.contains(id))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{} stored ids not archived: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

/// Polls `check` every 200 ms until it returns `Ok`, for at most `within`.
pub async fn eventually<T>(
    within: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(why) => assert!(Instant::now() < deadline, "{why}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The flags that start a `taillight serve` child on `cfg`'s backends and
/// archive.
pub fn serve_args(cfg: &ServeArgs) -> Vec<String> {
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--shutdown-timeout",
        "20s",
    ]
    .map(String::from)
    .into();
    let mut flag = |f: &str, v: String| {
        args.push(f.to_string());
        args.push(v);
    };
    flag(
        "--data-dir",
        cfg.store.sqlite.data_dir.display().to_string(),
    );
    let role = match cfg.role {
        Role::All => "all",
        Role::Ingest => "ingest",
        Role::Writer => "writer",
    };
    flag("--role", role.to_string());
    let a = &cfg.sinks.archive;
    if let Some(d) = &a.archive_dir {
        flag("--archive-dir", d.display().to_string());
    }
    flag(
        "--archive-period",
        format!("{}s", a.archive_period.as_secs()),
    );
    if let Some(u) = &a.archive_s3_url {
        flag("--archive-s3-url", u.clone());
    }
    if let Some(b) = &cfg.queue.kafka.kafka_brokers {
        let k = &cfg.queue.kafka;
        flag("--kafka-brokers", b.clone());
        flag("--kafka-topic", k.kafka_topic.clone());
        flag("--kafka-group", k.kafka_group.clone());
        flag("--kafka-partitions", k.kafka_partitions.to_string());
        flag(
            "--kafka-session-timeout",
            format!("{}ms", k.kafka_session_timeout.as_millis()),
        );
    }
    if let Some(u) = &cfg.store.mysql.database_url {
        flag("--database-url", u.clone());
    }
    if let Some(u) = &cfg.bus.redis_url {
        flag("--redis-url", u.clone());
        flag("--redis-channel", cfg.bus.redis_channel.clone());
        flag("--redis-prefix", cfg.bus.redis_prefix.clone());
    }
    args
}

/// A `taillight` child process, killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    /// `http://host:port` once it listens.
    pub url: String,
}

impl Proc {
    /// Starts `taillight ARGS` with `env` added and waits until it listens.
    pub fn serve(args: &[String], env: &[(String, String)]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_taillight"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("TAILLIGHT_LOG", "warn,taillight::sinks=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn taillight");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("[child] {line}");
                if let Some(addr) = line.strip_prefix("taillight listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("child never listened");
        Proc {
            child,
            url: format!("http://{addr}"),
        }
    }

    /// SIGTERM, and waits for a graceful exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().expect("try_wait").is_none() {
            assert!(Instant::now() < deadline, "child did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `taillight ARGS` to the end; its stdout, failing on a non-zero exit.
pub fn taillight(args: &[String], env: &[(String, String)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_taillight"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run taillight");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "taillight {args:?} failed: {stdout}{stderr}"
    );
    stdout
}

/// The archive directory of a test configuration.
pub fn archive_dir(cfg: &ServeArgs) -> PathBuf {
    cfg.sinks
        .archive
        .archive_dir
        .clone()
        .expect("an archive dir")
}
