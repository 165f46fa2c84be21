//! The archive's position, kept in the store as the position named
//! `archive` so that any node can take over from it: which period the open
//! files belong to, and the last id in a closed (compressed, uploaded)
//! file. Its hold is that id, so retention keeps every record the archive
//! has not closed yet. Moving it is a compare-and-swap: a holder that finds
//! it moved by someone else has lost the role and stops.

use serde::{Deserialize, Serialize};

use super::ArchiveError;
use crate::storage::{Position, Store};

/// The position's name in the store.
pub const NAME: &str = "archive";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveState {
    /// Start (seconds since the epoch) of the period whose files are open.
    pub period_start: i64,
    /// Every record up to this id is in a closed file; the open period holds
    /// the records after it.
    pub closed_through: u64,
}

impl ArchiveState {
    /// As kept in the store.
    pub fn position(&self) -> Position {
        Position {
            value: serde_json::to_string(self).unwrap_or_default(),
            hold: Some(self.closed_through),
        }
    }

    fn from_position(p: &Position) -> Result<Self, ArchiveError> {
        serde_json::from_str(&p.value).map_err(|e| {
            ArchiveError::State(format!("position {NAME:?} is not the archive's: {e}"))
        })
    }
}

/// The position in the store, created as `fresh` (holding every record
/// from the first on) when there is none yet.
pub async fn load_or_create(
    store: &dyn Store,
    fresh: ArchiveState,
) -> Result<ArchiveState, ArchiveError> {
    loop {
        if let Some(p) = store.position(NAME).await? {
            return ArchiveState::from_position(&p);
        }
        if store.swap_position(NAME, None, &fresh.position()).await? {
            return Ok(fresh);
        }
        // Another node created it first: read theirs.
    }
}

/// Moves the position from `from` to `to`; false when someone else moved it.
pub async fn advance(
    store: &dyn Store,
    from: &ArchiveState,
    to: &ArchiveState,
) -> Result<bool, ArchiveError> {
    Ok(store
        .swap_position(NAME, Some(&from.position()), &to.position())
        .await?)
}
