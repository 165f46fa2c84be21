//! Direct SQL against the stores, for counting what was stored and for the
//! raw-insert limits: the `mariadb` client and a plain diesel SQLite
//! connection, not taillight's code.

use std::path::Path;
use std::process::{Command, Stdio};

use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// Runs `sql` in `db` with the `mariadb` client; its tab-separated output.
pub fn mariadb(db: &str, sql: &str) -> String {
    let out = Command::new("mariadb")
        .args(["-h127.0.0.1", "-uroot", "-N", "-B", db, "-e", sql])
        .stderr(Stdio::inherit())
        .output()
        .expect("the mariadb client must be installed");
    assert!(out.status.success(), "mariadb failed on: {sql}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Feeds the file at `path` to the `mariadb` client in `db`.
pub fn mariadb_file(db: &str, path: &Path, extra: &[&str]) {
    let file = std::fs::File::open(path).expect("sql file");
    let status = Command::new("mariadb")
        .args(["-h127.0.0.1", "-uroot"])
        .args(extra)
        .arg(db)
        .stdin(file)
        .status()
        .expect("the mariadb client must be installed");
    assert!(status.success(), "mariadb failed on {}", path.display());
}

#[derive(QueryableByName)]
struct Four {
    #[diesel(sql_type = BigInt)]
    c0: i64,
    #[diesel(sql_type = BigInt)]
    c1: i64,
    #[diesel(sql_type = BigInt)]
    c2: i64,
    #[diesel(sql_type = BigInt)]
    c3: i64,
}

/// Runs a query of four integer columns `c0`..`c3` on the SQLite file at
/// `path`; the values separated by spaces.
pub fn sqlite(path: &Path, sql: &str) -> String {
    let mut c = SqliteConnection::establish(&path.to_string_lossy()).expect("open sqlite");
    let r: Four = diesel::sql_query(sql)
        .get_result(&mut c)
        .expect("sqlite query");
    format!("{} {} {} {}", r.c0, r.c1, r.c2, r.c3)
}
