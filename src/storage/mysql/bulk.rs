//! Sending a batch's rows: `LOAD DATA LOCAL INFILE` from memory where the
//! server allows it, multi-row INSERTs where it does not.
//!
//! Both are text, not prepared statements: diesel prepares a statement
//! anew for every multi-row INSERT (thousands of placeholders), which made
//! the writer half as fast as a plain client. LOAD DATA skips the SQL
//! parser for the values altogether.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};

use super::chunks::size_chunks;
use super::infile::Infiles;
use crate::model::QueuedEntry;
use crate::storage::codec::LogRow;
use crate::storage::contract::StoreError;

/// How the writer sends a batch's rows to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BulkMode {
    /// `load-data` when the server's `local_infile` is on, else `insert`.
    #[default]
    Auto,
    /// `LOAD DATA LOCAL INFILE` from memory: about 1.5 times the rows per
    /// second of INSERTs. Opening fails if the server does not allow it.
    LoadData,
    /// Multi-row INSERT statements.
    Insert,
}

/// How a store sends its rows.
#[derive(Clone)]
pub(super) enum Bulk {
    /// `LOAD DATA LOCAL INFILE` of tab-separated rows built in memory.
    LoadData(Arc<Infiles>),
    /// Multi-row INSERTs, for servers with `local_infile` off.
    Insert,
}

/// A table and the columns that rows list, in order.
pub(super) struct Table {
    name: &'static str,
    columns: &'static str,
}

pub(super) const LOGS: Table = Table {
    name: "logs",
    columns: "id, service, level, message, tags, attributes, time_us, received_us, \
              trace_id, span_id, source_partition, source_offset",
};

pub(super) const LOG_TAGS: Table = Table {
    name: "log_tags",
    columns: "tag, log_id",
};

/// Always written with INSERTs (see [`insert`]): a key another writer
/// stored first must fail the batch, which LOAD DATA would only warn of.
pub(super) const DEDUP_KEYS: Table = Table {
    name: "dedup_keys",
    columns: "k, log_id",
};

/// One column value.
pub(super) enum Field<'a> {
    Int(i64),
    Text(&'a str),
    Null,
}

pub(super) fn log_fields<'a>((r, q): &'a (&LogRow, &QueuedEntry)) -> [Field<'a>; 12] {
    use Field::*;
    let (partition, offset) = match q.source {
        Some(s) => (Int(s.partition.into()), Int(s.offset)),
        None => (Null, Null),
    };
    [
        Int(r.id),
        Text(&r.service),
        Int(r.level.into()),
        Text(&r.message),
        Text(&r.tags),
        Text(&r.attributes),
        Int(r.time_us),
        Int(r.received_us),
        Text(&r.trace_id),
        Text(&r.span_id),
        partition,
        offset,
    ]
}

/// A row of text and a log id: a tag or a dedup key.
pub(super) fn text_id_fields<'a>((text, id): &'a (&str, i64)) -> [Field<'a>; 2] {
    [Field::Text(text), Field::Int(*id)]
}

impl Bulk {
    /// Writes `items` into `table`, one row each as `fields` gives it.
    pub async fn write<T, const N: usize>(
        &self,
        c: &mut AsyncMysqlConnection,
        table: Table,
        items: &[T],
        fields: for<'x> fn(&'x T) -> [Field<'x>; N],
    ) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        match self {
            Bulk::LoadData(files) => load_data(c, files, &table, items, fields).await,
            Bulk::Insert => insert(c, &table, items, fields).await,
        }
    }
}

async fn load_data<T, const N: usize>(
    c: &mut AsyncMysqlConnection,
    files: &Arc<Infiles>,
    table: &Table,
    items: &[T],
    fields: for<'x> fn(&'x T) -> [Field<'x>; N],
) -> Result<(), StoreError> {
    let mut tsv = Vec::with_capacity(items.len() * 64);
    for item in items {
        for (i, field) in fields(item).iter().enumerate() {
            if i > 0 {
                tsv.push(b'\t');
            }
            push_tsv(&mut tsv, field);
        }
        tsv.push(b'\n');
    }
    let file = files.add(Bytes::from(tsv));
    // The default FIELDS and LINES clauses (tab, newline, backslash escapes)
    // are the format written; spelling them out would depend on sql_mode.
    c.batch_execute(&format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE {} CHARACTER SET utf8mb4 ({})",
        file.name, table.name, table.columns
    ))
    .await?;
    drop(file);
    // With LOCAL the server turns errors into warnings (it cannot stop the
    // client mid-file): a duplicate key skips a row and an over-long value
    // is cut. Either would be a silent change, so either fails the batch.
    let (rows, warnings): (i64, i64) = diesel::select((
        diesel::dsl::sql::<BigInt>("ROW_COUNT()"),
        diesel::dsl::sql::<BigInt>("@@warning_count"),
    ))
    .get_result(c)
    .await?;
    if rows != items.len() as i64 || warnings != 0 {
        let first: Option<Warning> = diesel::sql_query("SHOW WARNINGS LIMIT 1")
            .get_result(c)
            .await
            .ok();
        return Err(StoreError::Refused(format!(
            "LOAD DATA into {} stored {rows} of {} rows with {warnings} warning(s){}",
            table.name,
            items.len(),
            first
                .map(|w| format!(", the first: {}", w.message))
                .unwrap_or_default()
        )));
    }
    Ok(())
}

/// A row of `SHOW WARNINGS`.
#[derive(diesel::QueryableByName)]
struct Warning {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "Message")]
    message: String,
}

/// Appends `field` in LOAD DATA's default text format.
fn push_tsv(out: &mut Vec<u8>, field: &Field) {
    match field {
        // Writing into a Vec cannot fail.
        Field::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Field::Null => out.extend_from_slice(b"\\N"),
        Field::Text(text) => {
            for &b in text.as_bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    0 => out.extend_from_slice(b"\\0"),
                    _ => out.push(b),
                }
            }
        }
    }
}

/// Multi-row INSERTs, in chunks within the row and packet limits.
pub(super) async fn insert<T, const N: usize>(
    c: &mut AsyncMysqlConnection,
    table: &Table,
    items: &[T],
    fields: for<'x> fn(&'x T) -> [Field<'x>; N],
) -> Result<(), StoreError> {
    let text_len = |item: &T| -> usize {
        fields(item)
            .iter()
            .map(|f| match f {
                Field::Text(t) => t.len(),
                _ => 0,
            })
            .sum()
    };
    for chunk in size_chunks(items, text_len) {
        // Hex doubles the text; ~100 bytes of numbers and syntax per row.
        let bytes: usize = chunk.iter().map(text_len).sum();
        let mut sql = String::with_capacity(2 * bytes + 100 * chunk.len() + 200);
        let _ = write!(
            sql,
            "INSERT INTO {} ({}) VALUES ",
            table.name, table.columns
        );
        for (i, item) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ",(" });
            for (j, field) in fields(item).iter().enumerate() {
                if j > 0 {
                    sql.push(',');
                }
                push_sql(&mut sql, field);
            }
            sql.push(')');
        }
        c.batch_execute(&sql).await?;
    }
    Ok(())
}

/// `texts` as a comma-separated list of SQL literals, for an `IN (...)`.
pub(super) fn text_list(texts: &[&str]) -> String {
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let mut sql = String::with_capacity(2 * bytes + 14 * texts.len());
    for (i, text) in texts.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        push_sql(&mut sql, &Field::Text(text));
    }
    sql
}

/// Appends `field` as an SQL literal; text as a hex literal in utf8mb4,
/// which needs no quoting or escaping whatever the server's `sql_mode`.
fn push_sql(sql: &mut String, field: &Field) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match field {
        Field::Int(n) => {
            let _ = write!(sql, "{n}");
        }
        Field::Null => sql.push_str("NULL"),
        Field::Text(text) => {
            sql.push_str("_utf8mb4 X'");
            for b in text.bytes() {
                sql.push(HEX[(b >> 4) as usize] as char);
                sql.push(HEX[(b & 15) as usize] as char);
            }
            sql.push('\'');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_escapes_what_load_data_would_read_otherwise() {
        let mut out = Vec::new();
        push_tsv(&mut out, &Field::Text("a\tb\nc\\N\r\0é'\""));
        assert_eq!(out, "a\\tb\\nc\\\\N\\r\\0é'\"".as_bytes());
        out.clear();
        push_tsv(&mut out, &Field::Null);
        push_tsv(&mut out, &Field::Int(-42));
        assert_eq!(out, b"\\N-42");
    }

    #[test]
    fn sql_literals() {
        let mut sql = String::new();
        push_sql(&mut sql, &Field::Text("a'"));
        push_sql(&mut sql, &Field::Null);
        push_sql(&mut sql, &Field::Int(7));
        assert_eq!(sql, "_utf8mb4 X'6127'NULL7");
        assert_eq!(text_list(&["a", ""]), "_utf8mb4 X'61',_utf8mb4 X''");
    }
}
