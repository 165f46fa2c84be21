//! The archive's S3 copy and `taillight restore`, against a real
//! S3-protocol server (moto's standalone server, installed by
//! tests/setup.sh) and checked with an independent client (boto3). S3 is
//! down when the first periods close: the uploads are retried, the archive
//! says it is degraded, and everything is uploaded once S3 is back. Then
//! the archive is restored from the directory and from S3, each twice,
//! into fresh stores and into the one it came from: nothing is stored
//! twice.

mod common;
#[path = "archive/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Backend, TestServer, entry, free_port, query_all, unique, wait_for_port};
use support::{Proc, archive_dir, eventually, read_archive, serve_args, taillight};
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{Level, LogFilter, LogRecord, PushLogsRequest};

const DEADLINE: Duration = Duration::from_secs(90);

/// A moto S3 server child, killed when dropped.
struct Moto {
    port: u16,
    child: Child,
}

impl Moto {
    fn start(port: u16) -> Moto {
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server must be installed (tests/setup.sh installs it)");
        wait_for_port(port, "moto");
        Moto { port, child }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The AWS variables pointing every client at the moto on `port`.
fn aws_env(port: u16) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into()
}

/// Runs a boto3 script with the AWS variables; its stdout.
fn boto3(port: u16, script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .envs(aws_env(port))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn create_bucket(port: u16, bucket: &str) {
    boto3(
        port,
        &format!("import boto3; boto3.client('s3').create_bucket(Bucket='{bucket}')"),
    );
}

/// Every object under `prefix`, as boto3 sees it: key → sha256 of its body.
fn objects(port: u16, bucket: &str, prefix: &str) -> BTreeMap<String, String> {
    let script = format!(
        "import boto3, hashlib\n\
         s3 = boto3.client('s3')\n\
         for page in s3.get_paginator('list_objects_v2').paginate(Bucket='{bucket}', Prefix='{prefix}/'):\n\
         \x20   for o in page.get('Contents', []):\n\
         \x20       body = s3.get_object(Bucket='{bucket}', Key=o['Key'])['Body'].read()\n\
         \x20       print(o['Key'], hashlib.sha256(body).hexdigest())\n"
    );
    boto3(port, &script)
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, h)| (k.to_string(), h.to_string()))
        .collect()
}

/// Every closed file under `root`: its key under `prefix` → sha256 (by
/// Python's hashlib, as the objects are).
fn closed_files(root: &Path, prefix: &str) -> BTreeMap<String, String> {
    let script = format!(
        "import hashlib, pathlib\n\
         for f in sorted(pathlib.Path('{}').glob('*/*.ndjson.zst')):\n\
         \x20   print('{prefix}/' + f.parent.name + '/' + f.name, hashlib.sha256(f.read_bytes()).hexdigest())\n",
        root.display()
    );
    boto3(0, &script)
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, h)| (k.to_string(), h.to_string()))
        .collect()
}

async fn push(
    c: &mut LogServiceClient<tonic::transport::Channel>,
    svcs: &[&str],
    from: usize,
    n: usize,
) {
    let entries = (from..from + n)
        .map(|i| entry(svcs[i % svcs.len()], Level::Warn, &format!("m{i}"), &["s3"]))
        .collect();
    c.push_logs(futures::stream::iter([PushLogsRequest { entries }]))
        .await
        .expect("push");
}

/// What a record says, without its id (which a restore renumbers).
fn content(r: &LogRecord) -> String {
    let mut attrs: Vec<_> = r.attributes.iter().collect();
    attrs.sort();
    format!(
        "{}|{}|{}|{:?}|{attrs:?}|{:?}|{:?}",
        r.service, r.level, r.message, r.tags, r.time, r.received_time
    )
}

/// The records of a stopped node's SQLite data directory.
async fn records_in(data_dir: &Path) -> Vec<LogRecord> {
    let (mut cfg, scratch) = common::test_config(Backend::Embedded);
    cfg.store.sqlite.data_dir = data_dir.to_path_buf();
    let server = TestServer::launch(Backend::Embedded, cfg, scratch).await;
    let mut c = server.client().await;
    let rows = query_all(&mut c, LogFilter::default()).await;
    server.stop().await;
    rows
}

/// `taillight restore` into `data_dir`; its summary line.
fn restore(from: &str, data_dir: &Path, port: u16, extra: &[&str]) -> String {
    let mut args: Vec<String> = ["restore", "--from", from, "--data-dir"]
        .map(String::from)
        .into();
    args.push(data_dir.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    taillight(&args, &aws_env(port))
}

fn stored_of(summary: &str) -> u64 {
    summary
        .split(", ")
        .find_map(|p| p.strip_suffix(" stored")?.parse().ok())
        .unwrap_or_else(|| panic!("no stored count in {summary:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_survive_an_outage_and_restores_store_nothing_twice() {
    let port = free_port();
    let bucket = unique("tl").to_lowercase();
    let url = format!("s3://{bucket}/backup");
    let (mut cfg, scratch) = common::test_config(Backend::Embedded);
    cfg.sinks.archive.archive_dir = Some(scratch.dir.path().join("archive"));
    cfg.sinks.archive.archive_period = Duration::from_secs(2);
    cfg.sinks.archive.archive_s3_url = Some(url.clone());
    let root = archive_dir(&cfg);
    // S3 is down when the first periods close.
    let node = Proc::spawn_with(&serve_args(&cfg), &aws_env(port));
    let mut c = LogServiceClient::connect(node.url())
        .await
        .expect("connect");
    let svcs = ["api", "a/b"];
    push(&mut c, &svcs, 0, 100).await;
    eventually(DEADLINE, async || {
        let failures =
            common::metric_at(&node.url(), "taillight_archive_upload_failures_total").await;
        let ready = reqwest::get(format!("{}/readyz", node.url()))
            .await
            .expect("readyz");
        let (status, body) = (ready.status(), ready.text().await.unwrap_or_default());
        match failures > 0 && body.contains("archive: degraded") {
            true => {
                assert!(status.is_success(), "degraded is still ready: {body}");
                Ok(())
            }
            false => Err(format!("{failures} upload failures; readyz: {body}")),
        }
    })
    .await;
    let moto = Moto::start(port);
    create_bucket(moto.port, &bucket);
    push(&mut c, &svcs, 100, 100).await;
    // Everything closed, and every closed file in S3 as it is on disk.
    eventually(DEADLINE, async || {
        let closed: usize = read_archive(&root)
            .iter()
            .filter(|(k, _)| k.ends_with(".zst"))
            .map(|(_, v)| v.len())
            .sum();
        let (local, remote) = (
            closed_files(&root, "backup"),
            objects(moto.port, &bucket, "backup"),
        );
        match closed == 200 && local == remote {
            true => Ok(()),
            false => Err(format!(
                "{closed} of 200 closed; {} files, {} objects",
                local.len(),
                remote.len()
            )),
        }
    })
    .await;
    let ready = reqwest::get(format!("{}/readyz", node.url()))
        .await
        .expect("readyz")
        .text()
        .await
        .unwrap_or_default();
    assert!(!ready.contains("archive"), "still degraded: {ready}");
    let keys = objects(moto.port, &bucket, "backup");
    assert!(
        keys.keys().any(|k| k.starts_with("backup/a%2Fb/")),
        "{keys:?}"
    );
    assert!(
        keys.keys()
            .all(|k| k.ends_with(".ndjson.zst") && !k.contains(':')),
        "{keys:?}"
    );

    // The store is locked while its server runs.
    let data = cfg.store.sqlite.data_dir.clone();
    let locked = Command::new(env!("CARGO_BIN_EXE_taillight"))
        .args([
            "restore",
            "--from",
            &root.display().to_string(),
            "--data-dir",
            &data.display().to_string(),
        ])
        .output()
        .expect("restore");
    assert!(!locked.status.success());
    let why = String::from_utf8_lossy(&locked.stderr);
    assert!(why.contains("stop the server first"), "{why}");
    let original = query_all(&mut c, LogFilter::default()).await;
    assert_eq!(original.len(), 200);
    node.stop();

    // Into the store it came from: every record is still there.
    let again = restore(&root.display().to_string(), &data, port, &[]);
    assert_eq!(stored_of(&again), 0, "{again}");
    // Into fresh stores, from the directory and from S3, twice each.
    let mut want: Vec<String> = original.iter().map(content).collect();
    want.sort();
    for from in [root.display().to_string(), url.clone()] {
        let fresh = tempfile::tempdir().expect("tmp");
        let first = restore(&from, fresh.path(), port, &[]);
        assert_eq!(stored_of(&first), 200, "{first}");
        let second = restore(&from, fresh.path(), port, &[]);
        assert_eq!(stored_of(&second), 0, "{second}");
        let mut got: Vec<String> = records_in(fresh.path()).await.iter().map(content).collect();
        got.sort();
        assert_eq!(got, want, "restored from {from}");
    }
    // One service, by its name.
    let fresh = tempfile::tempdir().expect("tmp");
    let one = restore(&url, fresh.path(), port, &["--service", "a/b"]);
    assert_eq!(stored_of(&one), 100, "{one}");
}
