//! In-memory files for `LOAD DATA LOCAL INFILE`.
//!
//! The server answers `LOAD DATA LOCAL INFILE 'name'` by asking the client
//! for the file `name`. Our connections answer only with buffers the writer
//! registered here for the statement it is running, never with a file from
//! disk: a server (or anyone who can make it ask) cannot read the client's
//! files. diesel-async does not expose its `mysql_async` connection, so the
//! buffer is handed over through this registry, which every connection of
//! one store shares as its `mysql_async` infile handler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use mysql_async::{InfileData, LocalInfileError};

/// Buffers waiting for the server to ask for them, by name.
#[derive(Default)]
pub(super) struct Infiles {
    /// Makes names unique within the store, so concurrent batches on
    /// different connections never take each other's data.
    next: AtomicU64,
    files: Mutex<HashMap<String, Bytes>>,
}

impl Infiles {
    /// Registers `data` under a fresh name; it is served once, and removed
    /// when the guard is dropped if the server never asked for it.
    pub fn add(self: &Arc<Self>, data: Bytes) -> Infile {
        // The name goes into SQL between single quotes: digits and letters only.
        let name = format!("taillight-batch-{}", self.next.fetch_add(1, Relaxed));
        self.lock().insert(name.clone(), data);
        Infile {
            name,
            files: self.clone(),
        }
    }

    /// The `mysql_async` handler that serves the registered buffers.
    pub fn handler(
        self: &Arc<Self>,
    ) -> impl Fn(&[u8]) -> futures::future::BoxFuture<'static, Result<InfileData, LocalInfileError>>
    + Send
    + Sync
    + 'static {
        let files = self.clone();
        move |name: &[u8]| {
            let data = std::str::from_utf8(name)
                .ok()
                .and_then(|name| files.lock().remove(name));
            let data: InfileData = match data {
                Some(bytes) => futures::stream::iter(packets(bytes).map(Ok)).boxed(),
                // An error inside the stream, rather than instead of it, still
                // ends the transfer, so the connection stays usable and the
                // statement fails with this message.
                None => {
                    let e = std::io::Error::other(format!(
                        "the server asked for {:?}, which is not a buffer of this client",
                        String::from_utf8_lossy(name)
                    ));
                    futures::stream::once(async move { Err(e) }).boxed()
                }
            };
            async move { Ok(data) }.boxed()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        // A panic while holding the lock leaves the map itself consistent.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Most bytes per packet of file data: well under any server's
/// `max_allowed_packet`, which each packet must fit.
const PACKET: usize = 64 << 10;

/// `data` in slices of at most [`PACKET`] bytes (no copies).
fn packets(data: Bytes) -> impl Iterator<Item = Bytes> + Send {
    (0..data.len())
        .step_by(PACKET)
        .map(move |at| data.slice(at..data.len().min(at + PACKET)))
}

/// One registered buffer; unregisters it when dropped.
pub(super) struct Infile {
    /// What the LOAD DATA statement names.
    pub name: String,
    files: Arc<Infiles>,
}

impl Drop for Infile {
    fn drop(&mut self) {
        self.files.lock().remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_each_buffer_once_and_nothing_else() {
        let files = Arc::new(Infiles::default());
        let handler = files.handler();
        let a = files.add(Bytes::from_static(b"one"));
        let b = files.add(Bytes::from_static(b"two"));
        assert_ne!(a.name, b.name);

        let chunks = |name: &str| {
            let read = handler(name.as_bytes());
            async move {
                let data = read.await.expect("a stream");
                data.collect::<Vec<_>>().await
            }
        };
        let served = chunks(&a.name).await;
        assert_eq!(served.len(), 1);
        assert_eq!(served[0].as_ref().expect("data"), "one");
        let again = chunks(&a.name).await;
        assert!(again.len() == 1 && again[0].is_err(), "served twice");
        let other = chunks("/etc/passwd").await;
        assert!(other.len() == 1 && other[0].is_err());

        drop(b);
        assert!(files.lock().is_empty());
    }

    #[test]
    fn packets_cover_the_data_in_order() {
        let data = Bytes::from((0..PACKET * 2 + 10).map(|i| i as u8).collect::<Vec<_>>());
        let parts: Vec<_> = packets(data.clone()).collect();
        assert_eq!(
            parts.iter().map(Bytes::len).collect::<Vec<_>>(),
            [PACKET, PACKET, 10]
        );
        assert_eq!(parts.concat(), data);
        assert_eq!(packets(Bytes::new()).count(), 0);
    }
}
