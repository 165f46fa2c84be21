//! The MariaDB store's documents (saved views).

use diesel::prelude::*;
use diesel_async::{AsyncMysqlConnection, RunQueryDsl};

use crate::storage::contract::{Document, Order, StoreError};
use crate::storage::schema::documents;

type Row = (String, String, String, i64);

fn document((kind, name, body, updated_us): Row) -> Document {
    Document {
        kind,
        name,
        body,
        updated_us,
    }
}

pub(super) async fn put(c: &mut AsyncMysqlConnection, d: &Document) -> Result<(), StoreError> {
    diesel::replace_into(documents::table)
        .values((
            documents::kind.eq(&d.kind),
            documents::name.eq(&d.name),
            documents::body.eq(&d.body),
            documents::updated_us.eq(d.updated_us),
        ))
        .execute(c)
        .await?;
    Ok(())
}

pub(super) async fn list(
    c: &mut AsyncMysqlConnection,
    kind: &str,
    order: Order,
    limit: u32,
) -> Result<Vec<Document>, StoreError> {
    let by_name = documents::table.filter(documents::kind.eq(kind));
    let by_name = match order {
        Order::OldestFirst => by_name.order(documents::name.asc()).into_boxed(),
        Order::NewestFirst => by_name.order(documents::name.desc()).into_boxed(),
    };
    let rows: Vec<Row> = by_name
        .limit(i64::from(limit))
        .select((
            documents::kind,
            documents::name,
            documents::body,
            documents::updated_us,
        ))
        .load(c)
        .await?;
    Ok(rows.into_iter().map(document).collect())
}

pub(super) async fn delete(
    c: &mut AsyncMysqlConnection,
    kind: &str,
    name: &str,
) -> Result<bool, StoreError> {
    let n = diesel::delete(
        documents::table
            .filter(documents::kind.eq(kind))
            .filter(documents::name.eq(name)),
    )
    .execute(c)
    .await?;
    Ok(n > 0)
}

/// Deletes the documents of `kind` below the `keep` last by name.
pub(super) async fn trim(
    c: &mut AsyncMysqlConnection,
    kind: &str,
    keep: u32,
) -> Result<u64, StoreError> {
    let Some(keep) = keep.checked_sub(1) else {
        let all = diesel::delete(documents::table.filter(documents::kind.eq(kind)))
            .execute(c)
            .await?;
        return Ok(all as u64);
    };
    let lowest_kept: Option<String> = documents::table
        .filter(documents::kind.eq(kind))
        .order(documents::name.desc())
        .offset(i64::from(keep))
        .select(documents::name)
        .first(c)
        .await
        .optional()?;
    let Some(lowest_kept) = lowest_kept else {
        return Ok(0);
    };
    let n = diesel::delete(
        documents::table
            .filter(documents::kind.eq(kind))
            .filter(documents::name.lt(lowest_kept)),
    )
    .execute(c)
    .await?;
    Ok(n as u64)
}
