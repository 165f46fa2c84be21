//! Where records live: the [`Store`] trait, its SQLite implementation for
//! the embedded mode and its MariaDB implementation for the distributed mode,
//! chosen by [`StoreArgs::open`].

mod blocks;
pub mod codec;
mod contract;
mod grams;
pub mod histogram;
pub mod mysql;
mod rollup;
pub mod schema;
pub mod sqlite;

use std::sync::Arc;

pub use contract::{Document, Order, Position, Query, QueryResult, Store, StoreError};
use mysql::{MysqlArgs, MysqlStore};
use sqlite::{SqliteArgs, SqliteStore};

/// The store's flags: MariaDB when a database URL is given, SQLite otherwise.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub sqlite: SqliteArgs,
    #[command(flatten)]
    pub mysql: MysqlArgs,
}

impl StoreArgs {
    /// Whether the store is MariaDB, shared by several processes.
    pub fn is_mysql(&self) -> bool {
        self.mysql.database_url.is_some()
    }

    /// Opens the store the flags name, applying its migrations.
    pub async fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        let m = &self.mysql;
        Ok(match &m.database_url {
            Some(url) => Arc::new(MysqlStore::open(url, m.database_pool, m.database_bulk).await?),
            None => {
                let args = self.sqlite.clone();
                Arc::new(
                    tokio::task::spawn_blocking(move || SqliteStore::open(&args))
                        .await
                        .map_err(|e| StoreError::Connection(format!("opening the store: {e}")))??,
                )
            }
        })
    }
}
