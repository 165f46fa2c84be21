//! `taillight keys create | list | revoke`: manages the keys file a server
//! reads with `--keys-file`. A running server picks changes up within a
//! second; the key itself is printed once, at creation, and never stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use clap::{Args, Subcommand};

use super::CliError;
use crate::access::keys::{self, KeyRecord, KeysFile};
use crate::access::{Pattern, Scope};
use crate::model::time::parse_duration;

#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The keys file (the server's --keys-file); created by the first
    /// `keys create`.
    #[arg(long, env = "TAILLIGHT_KEYS_FILE", global = true)]
    pub keys_file: Option<PathBuf>,
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key and print it (once: only its hash is kept).
    Create(CreateArgs),
    /// List the keys (names, scopes, services, dates; never the keys).
    List,
    /// Revoke a key by name: servers refuse it from their next reload.
    Revoke {
        /// The key's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// What it may do: push, read, admin (comma-separated).
    #[arg(long, required = true, value_delimiter = ',', value_parser = Scope::parse)]
    scope: Vec<Scope>,
    /// Only these services (patterns with `*` and `?`; repeat or
    /// comma-separate). All services when left out.
    #[arg(long, value_delimiter = ',')]
    service: Vec<String>,
    /// Its name in listings, metrics and `keys revoke`; made up when
    /// left out.
    #[arg(long)]
    name: Option<String>,
    /// How long it stays valid (e.g. 90d); forever when left out.
    #[arg(long, value_parser = parse_duration)]
    expires: Option<Duration>,
    /// Entries per second it may push (over the server's
    /// --key-entries-per-second).
    #[arg(long)]
    entries_per_second: Option<f64>,
    /// Bytes per second it may push (over --key-bytes-per-second).
    #[arg(long)]
    bytes_per_second: Option<f64>,
    /// Tail streams it may hold open (over --max-tail-streams-per-key).
    #[arg(long)]
    tail_streams: Option<usize>,
}

pub fn run(args: KeysArgs) -> Result<(), CliError> {
    let path = args.keys_file.ok_or_else(|| {
        CliError::Usage("--keys-file (TAILLIGHT_KEYS_FILE) names the keys file".into())
    })?;
    match args.action {
        KeysAction::Create(a) => create(&path, a),
        KeysAction::List => list(&path),
        KeysAction::Revoke { name } => revoke(&path, &name),
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}

fn stamp(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn read(path: &Path, missing_ok: bool) -> Result<KeysFile, CliError> {
    if missing_ok && !path.exists() {
        return Ok(KeysFile::default());
    }
    let file = KeysFile::read(path).map_err(|e| CliError::Usage(e.to_string()))?;
    file.check().map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(file)
}

fn create(path: &Path, a: CreateArgs) -> Result<(), CliError> {
    let CreateArgs {
        scope: scopes,
        service: services,
        name,
        expires,
        ..
    } = a;
    let mut file = read(path, true)?;
    for s in &services {
        Pattern::parse(s).map_err(|e| CliError::Usage(format!("--service: {e}")))?;
    }
    let key = keys::generate().map_err(|e| CliError::Usage(e.to_string()))?;
    let name = name.unwrap_or_else(|| format!("key-{}", &keys::hash(&key)[7..15]));
    if file.keys.iter().any(|k| k.name == name) {
        return Err(CliError::Usage(format!(
            "a key named {name:?} exists already"
        )));
    }
    let expires = match expires {
        None => None,
        Some(d) => Some(stamp(
            now()
                + chrono::Duration::from_std(d)
                    .map_err(|e| CliError::Usage(format!("--expires: {e}")))?,
        )),
    };
    file.keys.push(KeyRecord {
        name: name.clone(),
        hash: keys::hash(&key),
        scopes: scopes.iter().map(|s| s.name().to_string()).collect(),
        services: (!services.is_empty()).then_some(services),
        created: stamp(now()),
        expires,
        revoked: None,
        entries_per_second: a.entries_per_second,
        bytes_per_second: a.bytes_per_second,
        tail_streams: a.tail_streams,
    });
    file.check().map_err(|e| CliError::Usage(e.to_string()))?;
    file.write(path)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    eprintln!(
        "created API key {name:?} in {}; it is shown this once:",
        path.display()
    );
    println!("{key}");
    Ok(())
}

fn list(path: &Path) -> Result<(), CliError> {
    let file = read(path, false)?;
    println!(
        "{:<20} {:<18} {:<24} {:<21} {:<21} STATE",
        "NAME", "SCOPES", "SERVICES", "CREATED", "EXPIRES"
    );
    let now = now();
    for k in &file.keys {
        let expired = k
            .expires
            .as_deref()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .is_some_and(|e| e <= now);
        let state = match (&k.revoked, expired) {
            (Some(_), _) => "revoked",
            (None, true) => "expired",
            (None, false) => "active",
        };
        println!(
            "{:<20} {:<18} {:<24} {:<21} {:<21} {state}",
            k.name,
            k.scopes.join(","),
            k.services.as_ref().map_or("*".to_string(), |s| s.join(",")),
            k.created,
            k.expires.as_deref().unwrap_or("never"),
        );
    }
    Ok(())
}

fn revoke(path: &Path, name: &str) -> Result<(), CliError> {
    let mut file = read(path, false)?;
    let key = file
        .keys
        .iter_mut()
        .find(|k| k.name == name)
        .ok_or_else(|| CliError::Usage(format!("no key named {name:?} in {}", path.display())))?;
    if key.revoked.is_none() {
        key.revoked = Some(stamp(now()));
    }
    file.write(path)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    eprintln!("revoked API key {name:?}");
    Ok(())
}
