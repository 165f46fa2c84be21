//! What the archive tests share: reading an archive directory as it is on
//! disk (independently of taillight's own reader), checking it against the
//! store, and `taillight serve` child processes that can be killed -9.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use taillight::config::{Role, ServeArgs};
use taillight::model::json::RecordOut;
use taillight::proto::LogRecord;
use taillight::sinks::archive::names::dir_name;

pub use crate::common::process::Proc;

/// Every line of every archive file under `root`, by path relative to it.
/// Of an `.ndjson` and its compressed copy only the copy counts (the open
/// file is left beside it only by a close cut short). A running archive may
/// be caught mid-write (a file's last line half flushed, a file renamed by
/// a close): such a read is tried again for up to two seconds, ten flush
/// periods; a torn line still there then is one for good, and fails.
pub fn read_archive(root: &Path) -> BTreeMap<String, Vec<serde_json::Value>> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match try_read_archive(root) {
            Ok(archive) => return archive,
            Err(why) if Instant::now() >= deadline => panic!("{why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn try_read_archive(root: &Path) -> Result<BTreeMap<String, Vec<serde_json::Value>>, String> {
    let mut out = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(root) else {
        return Ok(out);
    };
    let fail = |what: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", what.display());
    for d in dirs {
        let d = d.map_err(|e| fail(root, &e))?;
        if !d.file_type().map_err(|e| fail(&d.path(), &e))?.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(d.path()).map_err(|e| fail(&d.path(), &e))? {
            let path = f.map_err(|e| fail(&d.path(), &e))?.path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let bytes = if name.ends_with(".ndjson.zst") {
                let file = std::fs::File::open(&path).map_err(|e| fail(&path, &e))?;
                zstd::stream::decode_all(file).map_err(|e| fail(&path, &e))?
            } else if name.ends_with(".ndjson") {
                let closed = path.with_file_name(format!("{name}.zst"));
                if closed.exists() {
                    continue;
                }
                std::fs::read(&path).map_err(|e| fail(&path, &e))?
            } else {
                continue;
            };
            let rel = format!("{}/{name}", d.file_name().to_string_lossy());
            let parsed = lines(&rel, &bytes)?;
            out.insert(rel, parsed);
        }
    }
    Ok(out)
}

fn lines(rel: &str, bytes: &[u8]) -> Result<Vec<serde_json::Value>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    if bytes.last() != Some(&b'\n') {
        return Err(format!("{rel}: last line torn"));
    }
    bytes[..bytes.len() - 1]
        .split(|b| *b == b'\n')
        .map(|l| {
            serde_json::from_slice(l)
                .map_err(|e| format!("{rel}: torn line {:?}: {e}", String::from_utf8_lossy(l)))
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

/// The archive holds each id once, and every record of `store`: what a
/// stopped node leaves when entries may have been stored after `store` was
/// read.
pub fn assert_covers(archive: &BTreeMap<String, Vec<serde_json::Value>>, store: &[LogRecord]) {
    let ids = archived_ids(archive);
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an id archived twice");
    let missing = store.iter().filter(|r| !unique.contains(&r.id)).count();
    assert_eq!(missing, 0, "{missing} stored ids not archived");
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

/// The flags of a `taillight serve` child process on `cfg`'s backends, in
/// its role, with its archive.
pub fn serve_args(cfg: &ServeArgs) -> Vec<String> {
    let role = match cfg.role {
        Role::All => "all",
        Role::Ingest => "ingest",
        Role::Writer => "writer",
    };
    crate::common::process::serve_args(cfg, role)
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
