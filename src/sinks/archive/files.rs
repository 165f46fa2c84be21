//! The files of the open period: one `DIR/<service dir>/<period>.ndjson` per
//! service, one record a line in the gateway's JSON. Lines are buffered and
//! handed to the OS every flush; a line cut short by a crash is no harm,
//! since recovery truncates every open file to a known good length (see
//! `recover`). Only so many files are kept open at once; a service seen
//! again after its file was closed appends to it.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::names::dir_name;
use super::period::Period;
use crate::model::json::RecordOut;
use crate::proto::LogRecord;

/// Suffix of an open (still written) archive file.
pub const OPEN: &str = ".ndjson";
/// Suffix of a closed, compressed one.
pub const CLOSED: &str = ".ndjson.zst";
/// Suffix of a compressed file being written; never read.
pub const PARTIAL: &str = ".tmp";

/// Most files kept open at once: a deployment with thousands of services
/// must not run out of file descriptors.
const MAX_OPEN: usize = 256;
/// Buffer per open file.
const BUFFER: usize = 64 * 1024;

/// An open file and when it was last written (for closing the least used).
struct Handle {
    out: BufWriter<File>,
    used: u64,
}

/// Every file of one period, as this holder writes them.
pub struct PeriodFiles {
    /// The archive directory.
    root: PathBuf,
    /// The period's file name stem.
    stem: String,
    /// Open files by service directory name.
    open: HashMap<String, Handle>,
    /// Every file of the period, open or not, by service directory name:
    /// what a checkpoint lists and what closing the period compresses.
    files: BTreeMap<String, PathBuf>,
    /// Counts writes, to find the least recently used file.
    clock: u64,
    /// One line at a time, reused.
    line: Vec<u8>,
}

impl PeriodFiles {
    /// The files of `period` under `root`, taking over `existing` (service
    /// directory names whose file is already there, at a good length).
    pub fn new(root: &Path, period: &Period, existing: impl IntoIterator<Item = String>) -> Self {
        let stem = period.stem();
        let files = existing
            .into_iter()
            .map(|d| {
                let path = root.join(&d).join(format!("{stem}{OPEN}"));
                (d, path)
            })
            .collect();
        PeriodFiles {
            root: root.to_path_buf(),
            stem,
            open: HashMap::new(),
            files,
            clock: 0,
            line: Vec::with_capacity(1024),
        }
    }

    /// Appends `records`, each to its service's file.
    pub fn write<'a>(&mut self, records: impl Iterator<Item = &'a LogRecord>) -> io::Result<()> {
        for r in records {
            self.line.clear();
            serde_json::to_writer(&mut self.line, &RecordOut::from(r))?;
            self.line.push(b'\n');
            let dir = dir_name(&r.service);
            let line = std::mem::take(&mut self.line);
            let written = self.handle(dir).and_then(|h| h.out.write_all(&line));
            self.line = line;
            written?;
        }
        Ok(())
    }

    /// Hands every buffered line to the OS: a crash of the process loses
    /// none of them from then on.
    pub fn flush(&mut self) -> io::Result<()> {
        for h in self.open.values_mut() {
            h.out.flush()?;
        }
        Ok(())
    }

    /// Flushes and fsyncs every file; their lengths by service directory,
    /// which a checkpoint records.
    pub fn sync(&mut self) -> io::Result<BTreeMap<String, u64>> {
        self.flush()?;
        for h in self.open.values() {
            h.out.get_ref().sync_data()?;
        }
        let mut lengths = BTreeMap::new();
        for (dir, path) in &self.files {
            lengths.insert(dir.clone(), std::fs::metadata(path)?.len());
        }
        Ok(lengths)
    }

    /// Flushes, fsyncs and closes every file; their paths, for closing the
    /// period.
    pub fn finish(mut self) -> io::Result<Vec<PathBuf>> {
        self.sync()?;
        self.open.clear();
        Ok(std::mem::take(&mut self.files).into_values().collect())
    }

    /// The open file of a service directory, opening (or creating) it.
    fn handle(&mut self, dir: String) -> io::Result<&mut Handle> {
        self.clock += 1;
        let clock = self.clock;
        if !self.open.contains_key(&dir) {
            if self.open.len() >= MAX_OPEN {
                self.close_least_used()?;
            }
            let path = match self.files.get(&dir) {
                Some(p) => p.clone(),
                None => {
                    let d = self.root.join(&dir);
                    std::fs::create_dir_all(&d)?;
                    d.join(format!("{}{OPEN}", self.stem))
                }
            };
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            self.files.insert(dir.clone(), path);
            let out = BufWriter::with_capacity(BUFFER, file);
            self.open.insert(dir.clone(), Handle { out, used: clock });
        }
        let h = self
            .open
            .get_mut(&dir)
            .ok_or_else(|| io::Error::other("an archive file vanished from the open set"))?;
        h.used = clock;
        Ok(h)
    }

    fn close_least_used(&mut self) -> io::Result<()> {
        let oldest = self
            .open
            .iter()
            .min_by_key(|(_, h)| h.used)
            .map(|(d, _)| d.clone());
        if let Some(mut h) = oldest.and_then(|d| self.open.remove(&d)) {
            // Synced now, since `sync` only reaches the files still open.
            h.out.flush()?;
            h.out.get_ref().sync_data()?;
        }
        Ok(())
    }
}
