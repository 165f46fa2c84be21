//! A checkpoint of the open period, kept beside the files in
//! `DIR/.checkpoint.json`: the last id written and every file's length at
//! that moment, all fsynced. A restart that finds it valid for the position
//! in the store truncates each file to its length and follows on from that
//! id, instead of writing the whole period again from the store. It is only
//! a shortcut: without it, or when it does not match, recovery rewrites the
//! period, which is always exact.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::ArchiveState;

/// The checkpoint's file name; a service directory never starts with `.`.
const NAME: &str = ".checkpoint.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The position the files were opened on: the checkpoint holds only
    /// while the store's position is still this one.
    pub base: ArchiveState,
    /// Every record up to this id is in the files, within their lengths.
    pub through: u64,
    /// Each file's length, by service directory name.
    pub files: BTreeMap<String, u64>,
}

fn path(root: &Path) -> PathBuf {
    root.join(NAME)
}

/// The checkpoint in `root`, if there is a readable one.
pub fn load(root: &Path) -> Option<Checkpoint> {
    let text = std::fs::read(path(root)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "archive checkpoint unreadable; rewriting the period");
            None
        }
    }
}

/// Replaces the checkpoint atomically: a crash leaves the old one or the
/// new one, never a mix.
pub fn save(root: &Path, c: &Checkpoint) -> io::Result<()> {
    let tmp = root.join(format!("{NAME}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(c)?)?;
    f.sync_data()?;
    std::fs::rename(&tmp, path(root))?;
    sync_dir(root)
}

/// Removes the checkpoint (when it no longer describes the files).
pub fn clear(root: &Path) -> io::Result<()> {
    match std::fs::remove_file(path(root)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes a rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
