//! `taillight restore`: re-imports an archive (a directory, or its S3 copy)
//! into the store named by the usual store flags. Each record is stored
//! with the dedup key `restore:<id>:<receipt µs>`, so restoring the same
//! archive twice stores nothing twice; a record whose id is still in the
//! store with the same receipt time (restoring into the store it came from)
//! is skipped too. Restored records get new ids, after every stored one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use crate::model::time::{self, parse_duration};
use crate::model::{Filter, QueuedEntry};
use crate::sinks::archive::names::service_of;
use crate::sinks::archive::read::{self, ArchivedRecord, Kind, Line};
use crate::sinks::archive::s3::S3Target;
use crate::storage::{Order, Query, Store, StoreArgs, StoreError};

/// Records per insert (one transaction each).
const BATCH: usize = 1000;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive: its directory (--archive-dir), or its S3 copy
    /// `s3://bucket/prefix` (credentials and endpoint from the AWS variables).
    #[arg(long, env = "TAILLIGHT_RESTORE_FROM")]
    pub from: String,
    /// Only these services (repeat or comma-separate).
    #[arg(
        long,
        short = 's',
        env = "TAILLIGHT_RESTORE_SERVICE",
        value_delimiter = ','
    )]
    pub service: Vec<String>,
    /// Only entries whose time is at or after this: RFC 3339, or a duration
    /// ago (`2d`).
    #[arg(long, env = "TAILLIGHT_RESTORE_SINCE")]
    pub since: Option<String>,
    /// Only entries whose time is before this: RFC 3339, or a duration ago.
    #[arg(long, env = "TAILLIGHT_RESTORE_UNTIL")]
    pub until: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// What a restore did, printed at the end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    /// Lines read, whatever became of them.
    pub lines: u64,
    pub stored: u64,
    /// Already in the store (by original id or by an earlier restore).
    pub skipped: u64,
    /// Outside --service, --since or --until.
    pub filtered: u64,
    /// Lines that are no record (a torn last line).
    pub unreadable: u64,
}

/// One archive file to read.
struct ArchiveFile {
    /// Path relative to the archive: `<service dir>/<name>`.
    rel: String,
    kind: Kind,
}

/// What to keep.
struct Wanted {
    services: HashSet<String>,
    since_us: Option<i64>,
    until_us: Option<i64>,
}

impl Wanted {
    fn keeps(&self, r: &ArchivedRecord) -> bool {
        let t = r.time_us().unwrap_or(i64::MIN);
        (self.services.is_empty() || self.services.contains(&r.service))
            && self.since_us.is_none_or(|s| t >= s)
            && self.until_us.is_none_or(|u| t < u)
    }

    /// Whether a service directory may hold wanted records.
    fn may_hold(&self, dir: &str) -> bool {
        match service_of(dir) {
            Some(s) => self.services.is_empty() || self.services.contains(&s),
            // A shortened name: the lines say.
            None => dir.contains('~'),
        }
    }
}

pub async fn run(args: RestoreArgs) -> Result<(), CliError> {
    let wanted = Wanted {
        services: args.service.iter().cloned().collect(),
        since_us: args
            .since
            .as_deref()
            .map(|t| when("since", t))
            .transpose()?,
        until_us: args
            .until
            .as_deref()
            .map(|t| when("until", t))
            .transpose()?,
    };
    let store = open_store(&args.store).await?;
    let summary = match args.from.starts_with("s3://") {
        true => from_s3(&args.from, &wanted, store.as_ref()).await?,
        false => from_dir(Path::new(&args.from), &wanted, store.as_ref()).await?,
    };
    println!(
        "restored from {}: {} files, {} lines read, {} stored, {} skipped (already stored), {} filtered out, {} unreadable",
        args.from,
        summary.files,
        summary.lines,
        summary.stored,
        summary.skipped,
        summary.filtered,
        summary.unreadable
    );
    Ok(())
}

/// A time flag: RFC 3339, or a duration before now.
fn when(flag: &str, text: &str) -> Result<i64, CliError> {
    if let Some(us) = time::parse(text) {
        return Ok(us);
    }
    let ago = parse_duration(text).map_err(|_| {
        CliError::Usage(format!(
            "--{flag} {text:?} is neither an RFC 3339 time nor a duration like 2d"
        ))
    })?;
    Ok(time::now_micros() - i64::try_from(ago.as_micros()).unwrap_or(i64::MAX))
}

async fn open_store(args: &StoreArgs) -> Result<std::sync::Arc<dyn Store>, CliError> {
    args.open().await.map_err(|e| match e {
        // SQLite's data directory is locked by the server that uses it.
        StoreError::Connection(m) if !args.is_mysql() && m.contains("in use") => CliError::Usage(format!(
            "{m}: stop the server first (restore writes to the store itself), or restore through --database-url"
        )),
        e => CliError::Usage(format!("opening the store: {e}")),
    })
}

/// The archive files among `names` (relative paths), oldest period first;
/// of an `.ndjson` and its compressed copy, only the copy (the open file
/// is left beside it only by a close cut short, and holds the same lines).
fn pick(names: impl IntoIterator<Item = String>, wanted: &Wanted) -> Vec<ArchiveFile> {
    let mut by_file: BTreeMap<(String, String), Kind> = BTreeMap::new();
    for rel in names {
        let Some((dir, name)) = rel.rsplit_once('/') else {
            continue;
        };
        let Some((kind, stem)) = read::classify(name) else {
            continue;
        };
        if dir.contains('/') || !wanted.may_hold(dir) {
            continue;
        }
        let key = (stem.to_string(), dir.to_string());
        let better = match by_file.get(&key) {
            None => true,
            Some(k) => *k == Kind::Plain,
        };
        if better {
            by_file.insert(key, kind);
        }
    }
    by_file
        .into_iter()
        .map(|((stem, dir), kind)| {
            let suffix = match kind {
                Kind::Plain => ".ndjson",
                Kind::Zstd => ".ndjson.zst",
                Kind::Gzip => ".ndjson.gz",
            };
            ArchiveFile {
                rel: format!("{dir}/{stem}{suffix}"),
                kind,
            }
        })
        .collect()
}

async fn from_dir(root: &Path, wanted: &Wanted, store: &dyn Store) -> Result<Summary, CliError> {
    let mut names = Vec::new();
    let dirs = std::fs::read_dir(root)
        .map_err(|e| CliError::Usage(format!("--from {}: {e}", root.display())))?;
    for d in dirs {
        let d = d?;
        if !d.file_type()?.is_dir() {
            continue;
        }
        let dir = d.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(d.path())? {
            names.push(format!("{dir}/{}", f?.file_name().to_string_lossy()));
        }
    }
    let mut summary = Summary::default();
    for file in pick(names, wanted) {
        restore_file(
            &root.join(&file.rel),
            file.kind,
            wanted,
            store,
            &mut summary,
        )
        .await?;
    }
    Ok(summary)
}

async fn from_s3(url: &str, wanted: &Wanted, store: &dyn Store) -> Result<Summary, CliError> {
    let s3 = S3Target::from_url(url).map_err(CliError::Usage)?;
    let listed = s3.list().await.map_err(CliError::Usage)?;
    let files = pick(listed.into_iter().map(|(rel, _)| rel), wanted);
    let mut summary = Summary::default();
    let tmp = scratch_dir()?;
    for file in files {
        let local = tmp.join("download");
        s3.download(&file.rel, &local)
            .await
            .map_err(CliError::Usage)?;
        let done = restore_file(&local, file.kind, wanted, store, &mut summary).await;
        let _ = std::fs::remove_file(&local);
        done?;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(summary)
}

/// A private directory for downloads, one file at a time.
fn scratch_dir() -> Result<PathBuf, CliError> {
    let dir = std::env::temp_dir().join(format!(
        "taillight-restore-{}-{}",
        std::process::id(),
        time::now_micros()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn restore_file(
    path: &Path,
    kind: Kind,
    wanted: &Wanted,
    store: &dyn Store,
    summary: &mut Summary,
) -> Result<(), CliError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Line>>(2);
    let reader_path = path.to_path_buf();
    // Decompressing and parsing on a blocking thread, a batch ahead.
    let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut input = read::open(&reader_path, kind)?;
        let mut buf = Vec::new();
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(line) = read::next_line(&mut input, &mut buf)? {
            batch.push(line);
            if batch.len() == BATCH && tx.blocking_send(std::mem::take(&mut batch)).is_err() {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        Ok(())
    });
    summary.files += 1;
    while let Some(lines) = rx.recv().await {
        let mut records = Vec::with_capacity(lines.len());
        for line in lines {
            summary.lines += 1;
            match line {
                Line::Record(r) if wanted.keeps(&r) => records.push(*r),
                Line::Record(_) => summary.filtered += 1,
                Line::Bad => summary.unreadable += 1,
            }
        }
        store_batch(store, records, summary).await?;
    }
    reader
        .await
        .map_err(|e| CliError::Usage(format!("reading {}: {e}", path.display())))?
        .map_err(|e| CliError::Usage(format!("reading {}: {e}", path.display())))
}

/// Stores what is not stored yet of `records`.
async fn store_batch(
    store: &dyn Store,
    records: Vec<ArchivedRecord>,
    summary: &mut Summary,
) -> Result<(), CliError> {
    if records.is_empty() {
        return Ok(());
    }
    let present = still_stored(store, &records).await?;
    let mut entries: Vec<QueuedEntry> = Vec::with_capacity(records.len());
    for r in &records {
        if present.get(&r.id) == r.received_us().as_ref() {
            summary.skipped += 1;
            continue;
        }
        match r.to_entry() {
            Some(e) => entries.push(e),
            None => summary.unreadable += 1,
        }
    }
    let offered = entries.len() as u64;
    let stored = store
        .insert(entries)
        .await
        .map_err(|e| CliError::Usage(format!("storing: {e}")))?
        .len() as u64;
    summary.stored += stored;
    summary.skipped += offered - stored;
    Ok(())
}

/// The receipt times of the records of `records`' services still stored
/// under their original ids, by id.
async fn still_stored(
    store: &dyn Store,
    records: &[ArchivedRecord],
) -> Result<HashMap<u64, i64>, CliError> {
    let (Some(min), Some(max)) = (
        records.iter().map(|r| r.id).min(),
        records.iter().map(|r| r.id).max(),
    ) else {
        return Ok(HashMap::new());
    };
    let services: HashSet<&str> = records.iter().map(|r| r.service.as_str()).collect();
    let mut found = HashMap::new();
    let mut after = min.saturating_sub(1);
    loop {
        let q = Query {
            filter: Filter {
                services: services.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            after_id: Some(after),
            before_id: Some(max.saturating_add(1)),
            order: Order::OldestFirst,
            limit: BATCH as u32,
            ..Default::default()
        };
        let page = store
            .query(q)
            .await
            .map_err(|e| CliError::Usage(format!("reading the store: {e}")))?
            .records;
        for r in &page {
            if let Some(t) = &r.received_time {
                found.insert(r.id, time::to_micros(t));
            }
        }
        match page.last() {
            Some(last) if page.len() == BATCH => after = last.id,
            _ => return Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::archive::names::dir_name;

    #[test]
    fn compressed_copies_win_and_unwanted_services_are_skipped() {
        let wanted = Wanted {
            services: ["a/b".to_string()].into(),
            since_us: None,
            until_us: None,
        };
        let names = [
            format!("{}/2026-01-01T00-00-00Z.ndjson", dir_name("a/b")),
            format!("{}/2026-01-01T00-00-00Z.ndjson.zst", dir_name("a/b")),
            format!("{}/2026-01-01T00-01-00Z.ndjson", dir_name("a/b")),
            "other/2026-01-01T00-00-00Z.ndjson.zst".to_string(),
            format!("{}/notes.txt", dir_name("a/b")),
        ];
        let picked: Vec<String> = pick(names, &wanted).into_iter().map(|f| f.rel).collect();
        assert_eq!(
            picked,
            [
                "a%2Fb/2026-01-01T00-00-00Z.ndjson.zst",
                "a%2Fb/2026-01-01T00-01-00Z.ndjson"
            ]
        );
    }
}
