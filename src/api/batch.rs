//! A batch from a client where each entry stands alone (the gateway's JSON,
//! OTLP, Loki push): the valid entries are stored, and every invalid one is
//! reported by the path of its field, so one bad entry neither hides nor
//! blocks the others.

use super::error::ApiError;
use crate::access::Grant;
use crate::intake::Intake;
use crate::model::FieldViolation;
use crate::proto::LogEntry;

/// One entry of a batch as the client's shape maps it: an entry to
/// validate, or why it cannot be one.
pub type Item = Result<LogEntry, FieldViolation>;

/// Most refused entries an answer lists: 1.4M bad lines in one body once
/// made a 143 MB answer.
pub const MAX_LISTED: usize = 100;

/// What a batch came to.
pub struct Outcome {
    /// Entries now durable.
    pub accepted: u64,
    /// Every entry refused, in order, its field named from the request's root.
    pub rejected: Vec<FieldViolation>,
}

/// Validates `items` (each already mapped to an entry, or refused while
/// mapping), stores the valid ones and waits until they are durable. `path`
/// names item `i` within the request (`entries[3]`).
pub async fn push_valid(
    intake: &Intake,
    grant: &Grant,
    items: Vec<Item>,
    path: impl Fn(usize) -> String,
) -> Result<Outcome, ApiError> {
    let mut rejected = Vec::new();
    let mut entries = Vec::with_capacity(items.len());
    let mut positions = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Ok(e) => {
                entries.push(e);
                positions.push(i);
            }
            Err(v) => rejected.push((i, v)),
        }
    }
    let prepared = intake.prepare_for(grant, entries, false)?;
    rejected.extend(prepared.invalid.into_iter().map(|(i, v)| (positions[i], v)));
    let accepted = prepared.entries.len() as u64;
    intake.push(prepared.entries).await?;
    rejected.sort_by_key(|(i, _)| *i);
    Ok(Outcome {
        accepted,
        rejected: rejected
            .into_iter()
            .map(|(i, v)| v.within(&path(i)))
            .collect(),
    })
}

impl Outcome {
    /// The batch's answer in the gateway's terms: an error listing the
    /// refused entries (the first [`MAX_LISTED`], then how many more, so
    /// the answer does not grow with the body) with how many were stored.
    pub fn into_result(self) -> Result<u64, ApiError> {
        if self.rejected.is_empty() {
            return Ok(self.accepted);
        }
        let more = self.rejected.len().saturating_sub(MAX_LISTED);
        let mut violations = self.rejected;
        violations.truncate(MAX_LISTED);
        if more > 0 {
            violations.push(FieldViolation::new(
                "entries",
                format!("{more} more entries were refused (the first {MAX_LISTED} are listed)"),
            ));
        }
        Err(ApiError::Invalid {
            violations,
            accepted: Some(self.accepted),
        })
    }

    /// The refusals as one line, the first few in full: what OTLP's
    /// `partial_success` and Loki's error body carry.
    pub fn summary(&self) -> String {
        const SHOWN: usize = 5;
        let mut text =
            crate::model::violation::describe(&self.rejected[..self.rejected.len().min(SHOWN)]);
        if self.rejected.len() > SHOWN {
            text.push_str(&format!("; and {} more", self.rejected.len() - SHOWN));
        }
        text
    }
}
