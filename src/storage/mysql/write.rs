//! Writing one batch: its ids, the redelivery check, the rows (sent by
//! [`Bulk`]) and the service and tag listings.

use std::collections::{BTreeMap, HashSet};

use diesel::prelude::*;
use diesel_async::{AsyncMysqlConnection, RunQueryDsl};

use super::bulk::{Bulk, LOG_TAGS, LOGS, log_fields, text_id_fields};
use super::chain::{Outcome, Stage, Turn};
use super::chunks::{KEYS_PER_STATEMENT, size_chunks};
use super::delivery::Delivery;
use super::keyspace::is_key;
use super::known::{Known, Unlisted};
use super::ledger;
use crate::model::{QueuedEntry, SourcePosition};
use crate::storage::codec::{BatchRows, dedup_keys, drop_stored_keys};
use crate::storage::contract::StoreError;
use crate::storage::contract::StoreError::EarlierBatchFailed;
use crate::storage::schema::mysql::{id_sequence, sourced_logs};
use crate::storage::schema::{log_counts, service_tags, services};

/// How a batch gets its ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ids {
    /// Lock the id counter first, after the batch before has committed.
    Locked,
    /// Guess them from where the batch before ends, load the rows, and
    /// check the guess under the id lock once the batch before committed.
    Guessed,
}

/// Why a batch's transaction was rolled back.
#[derive(Debug, thiserror::Error)]
pub(super) enum Rollback {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The guessed ids were taken by someone else: try again, locked.
    #[error("the guessed ids were taken")]
    WrongGuess,
}

impl From<diesel::result::Error> for Rollback {
    fn from(e: diesel::result::Error) -> Self {
        Rollback::Store(e.into())
    }
}

/// Runs in the batch transaction: settles the ids (see [`Ids`]), drops
/// redeliveries, stores the rest. Redeliveries are removed from `entries`
/// for good, so a retry does not look for them again. Returns the first id.
pub(super) async fn write_batch(
    c: &mut AsyncMysqlConnection,
    bulk: &Bulk,
    entries: &mut Vec<QueuedEntry>,
    turn: &mut Turn,
    ids: Ids,
    known: &Known,
    look_up_keys: bool,
) -> Result<(i64, Unlisted), Rollback> {
    let first = match (ids, turn.before.as_mut()) {
        (Ids::Guessed, Some(before)) => before.placed().await.ok_or(EarlierBatchFailed)?,
        (_, before) => {
            if let Some(before) = before
                && before.settled(None).await == Outcome::Failed
            {
                return Err(EarlierBatchFailed.into());
            }
            lock_next_id(c).await?
        }
    };
    drop_redeliveries(c, entries, &turn.claimed, look_up_keys).await?;
    let keys = dedup_keys(entries);
    if !keys.is_empty() {
        let stored = ledger::stored_keys(c, &keys).await?;
        drop_stored_keys(entries, &stored);
    }
    if entries.is_empty() {
        // Nothing to store, but success still means every batch before
        // was stored.
        let first = match turn.before.as_mut() {
            Some(before) => match before.settled(None).await {
                Outcome::Committed { end } => end,
                _ => return Err(EarlierBatchFailed.into()),
            },
            None => first,
        };
        turn.link.set(Stage::Placed { end: first });
        return Ok((first, Unlisted::default()));
    }
    let end = first + entries.len() as i64;
    let rows = BatchRows::new(first, entries);
    let logs: Vec<_> = rows.logs.iter().zip(entries.iter()).collect();
    // The first row goes in alone, before the batch after this one may load
    // its rows. Another process's batch stores from the same first id up, so
    // it meets this row before any of the next batch's, and waits on this
    // transaction: a wait InnoDB sees, so it can break a cycle as a deadlock.
    // Were the next batch's rows in first, that batch could block the other
    // process while waiting here for this one, and this one wait for the
    // other process's lock: a cycle through this process, invisible to
    // InnoDB, held until the 50 s lock wait timeout.
    let (claim, rest) = logs.split_at(1);
    bulk.write(c, LOGS, claim, log_fields).await?;
    turn.link.set(Stage::Placed { end });
    bulk.write(c, LOGS, rest, log_fields).await?;
    bulk.write(c, LOG_TAGS, &rows.tags, text_id_fields).await?;
    ledger::insert_keys(c, &rows.keys).await?;

    if ids == Ids::Guessed
        && let Some(before) = turn.before.as_mut()
    {
        match before.settled(Some(first)).await {
            Outcome::Failed => return Err(EarlierBatchFailed.into()),
            Outcome::Moved => return Err(Rollback::WrongGuess),
            Outcome::Committed { .. } => {}
        }
    }
    // Takes the id lock (a locked batch holds it already) and moves the
    // counter past this batch in one statement. A guess is checked by the
    // condition: another writer process may have committed since.
    let moved = diesel::update(id_sequence::table.filter(id_sequence::next_id.eq(first)))
        .set(id_sequence::next_id.eq(end))
        .execute(c)
        .await?;
    if moved != 1 {
        return Err(Rollback::WrongGuess);
    }
    // The listings come last, under the id lock: their rows are shared by
    // batches, and a batch holding one while it waits for the batch before
    // could block that batch for good.
    let unlisted = known.unlisted(&rows.services, &rows.service_tags);
    if !unlisted.services.is_empty() {
        let names: Vec<_> = unlisted
            .services
            .iter()
            .map(|s| services::name.eq(s))
            .collect();
        diesel::insert_or_ignore_into(services::table)
            .values(names)
            .execute(c)
            .await?;
    }
    for chunk in size_chunks(&unlisted.pairs, |(s, t)| s.len() + t.len()) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(s, t)| (service_tags::service.eq(s), service_tags::tag.eq(t)))
            .collect();
        diesel::insert_or_ignore_into(service_tags::table)
            .values(values)
            .execute(c)
            .await?;
    }
    add_counts(c, &rows.counts).await?;
    Ok((first, unlisted))
}

/// Rollup rows per statement: four values each, far within MariaDB's
/// 65,535 placeholders.
const COUNTS_PER_STATEMENT: usize = 1_000;

/// Adds the batch's entries to the histogram's rollup, under the id lock
/// like the listings (batches share its rows).
async fn add_counts(
    c: &mut AsyncMysqlConnection,
    counts: &BTreeMap<(i64, &str, i32), i64>,
) -> Result<(), diesel::result::Error> {
    let rows: Vec<_> = counts
        .iter()
        .map(|((minute, service, level), n)| {
            (
                log_counts::minute.eq(minute),
                log_counts::service.eq(service),
                log_counts::level.eq(level),
                log_counts::n.eq(n),
            )
        })
        .collect();
    for chunk in rows.chunks(COUNTS_PER_STATEMENT) {
        diesel::insert_into(log_counts::table)
            .values(chunk)
            .on_conflict(diesel::dsl::DuplicatedKeys)
            .do_update()
            .set(
                log_counts::n.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "n + VALUES(n)",
                )),
            )
            .execute(c)
            .await?;
    }
    Ok(())
}

/// Locks the id counter until the transaction ends; returns the next id.
async fn lock_next_id(c: &mut AsyncMysqlConnection) -> Result<i64, diesel::result::Error> {
    id_sequence::table
        .select(id_sequence::next_id)
        .for_update()
        .first(c)
        .await
}

/// Removes entries already stored or `claimed` by an earlier open batch, and
/// all but the first of the same delivery within the batch (see
/// [`Delivery`]). A redelivery stored by another process after this
/// transaction's snapshot is caught by the unique source key instead, and
/// so are key spaces' entries when `look_up_keys` is off (see
/// [`KeySpaces::look_up`](super::keyspace::KeySpaces::look_up)).
async fn drop_redeliveries(
    c: &mut AsyncMysqlConnection,
    entries: &mut Vec<QueuedEntry>,
    claimed: &HashSet<Delivery>,
    look_up_keys: bool,
) -> Result<(), StoreError> {
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let looked_up = entries
        .iter()
        .filter_map(|q| q.source)
        .filter(|s| look_up_keys || !is_key(*s));
    for s in looked_up {
        offsets.entry(s.partition).or_default().push(s.offset);
    }
    // A partition is read in order, so a redelivery can only be at or below
    // the highest offset stored for it: one statement settles the usual
    // case, a batch of only new entries.
    let partitions: Vec<i32> = offsets.keys().copied().collect();
    let highest = if partitions.is_empty() {
        BTreeMap::new()
    } else {
        highest_offsets(c, &partitions).await?
    };
    let mut seen = HashSet::new();
    for (partition, offsets) in offsets {
        let highest = highest.get(&partition).copied().flatten();
        if highest.is_none_or(|h| offsets.iter().all(|o| *o > h)) {
            continue;
        }
        for chunk in offsets.chunks(KEYS_PER_STATEMENT) {
            let stored: Vec<(Option<i64>, i64)> = sourced_logs::table
                .filter(sourced_logs::source_partition.eq(partition))
                .filter(sourced_logs::source_offset.eq_any(chunk))
                .select((sourced_logs::source_offset, sourced_logs::received_us))
                .load(c)
                .await?;
            seen.extend(stored.into_iter().filter_map(|(offset, received_us)| {
                let offset = offset?;
                Some(Delivery::new(
                    SourcePosition { partition, offset },
                    received_us,
                ))
            }));
        }
    }
    entries.retain(|q| Delivery::of(q).is_none_or(|d| !claimed.contains(&d) && seen.insert(d)));
    Ok(())
}

/// The highest offset stored for each of `partitions`, by one `MAX` per
/// partition joined with UNION ALL. MariaDB answers each from the unique
/// source key while planning ("Select tables optimized away"), however stale
/// the table's statistics. One `MAX ... GROUP BY` was planned from them: right
/// after a burst of inserts, before InnoDB recounted the table, it scanned
/// every entry of the partitions instead (0.4 s on 900k entries), and a
/// Kafka-mode tail at 6k entries/s waited about 250 ms per entry.
async fn highest_offsets(
    c: &mut AsyncMysqlConnection,
    partitions: &[i32],
) -> Result<BTreeMap<i32, Option<i64>>, StoreError> {
    #[derive(QueryableByName)]
    struct Highest {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        partition: i64,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        offset: Option<i64>,
    }
    // Partitions are integers from the broker, so writing them into the
    // statement cannot change its meaning.
    let sql = partitions
        .iter()
        .map(|p| {
            format!(
                "SELECT CAST({p} AS SIGNED) AS `partition`, MAX(source_offset) AS `offset` \
                 FROM logs WHERE source_partition = {p}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows: Vec<Highest> = diesel::sql_query(sql).load(c).await?;
    Ok(rows
        .into_iter()
        .filter_map(|h| Some((i32::try_from(h.partition).ok()?, h.offset)))
        .collect())
}
