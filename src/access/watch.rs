//! Reloading the keys file without a restart: when it changes (checked
//! every second) and on SIGHUP.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::Access;

/// How often the file's modification time and size are looked at.
const POLL: Duration = Duration::from_secs(1);

/// Reloads `access`'s keys until `stop`.
pub async fn watch(access: Arc<Access>, stop: CancellationToken) {
    let Some(path) = access.keys_path().map(|p| p.to_path_buf()) else {
        return;
    };
    let stamp = || {
        std::fs::metadata(&path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
    };
    let mut seen = stamp();
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler; the keys file is reloaded when it changes");
            None
        }
    };
    loop {
        let signalled = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = signalled => {}
            _ = tokio::time::sleep(POLL) => {
                let now = stamp();
                if now == seen {
                    continue;
                }
                seen = now;
            }
        }
        match access.reload() {
            Ok(n) => tracing::info!(file = %path.display(), active = n, "API keys reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "the keys file was not reloaded; the keys before stay in force")
            }
        }
    }
}
