//! Taking the role: bringing the archive directory in line with the position
//! in the store before writing. The open period's files are cut back to the
//! checkpoint when it matches the position, and emptied otherwise; the
//! record stream then starts after the matching id, so every record of the
//! open period is written once, with no torn line, whatever was on disk.
//! Leftovers of an interrupted close (a `.tmp`, a compressed file of the
//! open period, an `.ndjson` beside its compressed copy) and files of
//! periods someone else has since closed are removed.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::path::Path;

use super::checkpoint::{self, Checkpoint};
use super::files::{CLOSED, OPEN, PARTIAL, PeriodFiles};
use super::period::Period;
use super::state::ArchiveState;

/// What recovery leaves: the open period's files and the id to follow from.
pub struct Recovered {
    pub files: PeriodFiles,
    /// The last id already in the files.
    pub after: u64,
}

/// Prepares `root` for writing `period` from `state`. Blocking.
pub fn recover(root: &Path, state: &ArchiveState, period: &Period) -> io::Result<Recovered> {
    std::fs::create_dir_all(root)?;
    let stem = period.stem();
    let kept = checkpoint::load(root)
        .filter(|c| c.base == *state && c.through >= state.closed_through)
        .filter(|c| fits(root, &stem, c));
    let keep: BTreeMap<String, u64> = kept.as_ref().map(|c| c.files.clone()).unwrap_or_default();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type()?.is_dir() {
            continue;
        }
        tidy_service_dir(&entry.path(), &stem, keep.get(&name).copied())?;
    }
    checkpoint::clear(root)?;
    let after = kept.as_ref().map_or(state.closed_through, |c| c.through);
    Ok(Recovered {
        files: PeriodFiles::new(root, period, keep.into_keys()),
        after,
    })
}

/// Whether every file the checkpoint lists is at least as long as it says
/// (a power loss may have lost a tail the checkpoint counted).
fn fits(root: &Path, stem: &str, c: &Checkpoint) -> bool {
    c.files.iter().all(|(dir, len)| {
        std::fs::metadata(root.join(dir).join(format!("{stem}{OPEN}")))
            .is_ok_and(|m| m.len() >= *len)
    })
}

/// Tidies one service's directory: the open period's file is cut to `keep`
/// bytes or removed, leftovers go.
fn tidy_service_dir(dir: &Path, stem: &str, keep: Option<u64>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Some(file_stem) = name.split('.').next() else {
            continue;
        };
        let current = file_stem == stem;
        if name.ends_with(PARTIAL) || (current && name.ends_with(CLOSED)) {
            // An interrupted close: it is done again from the start.
            std::fs::remove_file(&path)?;
        } else if name.ends_with(OPEN) && current {
            match keep {
                Some(len) => OpenOptions::new().write(true).open(&path)?.set_len(len)?,
                None => std::fs::remove_file(&path)?,
            }
        } else if name.ends_with(OPEN) {
            // Another period's open file: its compressed copy exists (the
            // close got that far), or the period was closed by a holder
            // that wrote elsewhere, and its records are in that copy; or
            // the position never left an earlier period and these records
            // are written again into it. Either way this file is stale.
            if !dir.join(format!("{file_stem}{CLOSED}")).exists() {
                tracing::warn!(file = %path.display(), "removing a stale archive file of a period closed elsewhere or rewritten");
            }
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}
