//! A stream's share of a batch, with the batch's renderings: the text a
//! kind of stream sends for a record (the SSE tail's event) is made once
//! per batch, by the first stream that sends the record, and every other
//! stream sends the same bytes. With 500 SSE streams, turning each record
//! into JSON again for every stream was a third of the server's work.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::proto::{LogRecord, Selection};

/// Some records of one batch, in id order, and the renderings of that batch.
#[derive(Debug, Clone)]
pub struct Share {
    /// The records, encoded once for all (the gRPC message's bytes).
    pub records: Selection,
    /// Texts made from the batch's records, shared with every stream that
    /// is handed any of the batch.
    pub rendered: Arc<Rendered>,
}

impl Share {
    /// Records with renderings of their own: read from the store for one
    /// stream, so there is no one to share them with.
    pub fn alone(records: Selection) -> Share {
        Share {
            records,
            rendered: Arc::new(Rendered::default()),
        }
    }

    /// The parts of at most `max` encoded bytes each (see
    /// [`Selection::split`]), sharing the renderings.
    pub fn split(self, max: usize) -> Vec<Share> {
        let rendered = self.rendered;
        self.records
            .split(max)
            .into_iter()
            .map(|records| Share {
                records,
                rendered: rendered.clone(),
            })
            .collect()
    }
}

/// One text per record of a batch, by id, made on first use. There is one
/// kind of text (the SSE event): a second kind would need a key of its own.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The texts made so far, by record id.
    texts: Mutex<BTreeMap<u64, Bytes>>,
    /// Bytes of the texts, added to `live` while they are held.
    held: AtomicUsize,
    /// The fan-out's total of bytes alive (see `Bounds::live`), so that its
    /// bound covers the texts too; `None` for records read from the store.
    live: Option<Arc<AtomicUsize>>,
}

impl Rendered {
    /// Renderings counted in the fan-out's total `live`.
    pub(super) fn counted(live: &Arc<AtomicUsize>) -> Rendered {
        Rendered {
            texts: Mutex::default(),
            held: AtomicUsize::new(0),
            live: Some(live.clone()),
        }
    }

    /// `record`'s text, made by `render` if no stream has made it yet.
    pub fn get(&self, record: &LogRecord, render: impl FnOnce(&LogRecord) -> Bytes) -> Bytes {
        let mut texts = self.texts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(text) = texts.get(&record.id) {
            return text.clone();
        }
        // Made under the lock: a second stream waits for the text instead
        // of making it again.
        let text = render(record);
        self.held.fetch_add(text.len(), Relaxed);
        if let Some(live) = &self.live {
            live.fetch_add(text.len(), Relaxed);
        }
        texts.insert(record.id, text.clone());
        text
    }
}

impl Drop for Rendered {
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.fetch_sub(self.held.load(Relaxed), Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_made_once_and_counted_while_held() {
        let live = Arc::new(AtomicUsize::new(0));
        let rendered = Rendered::counted(&live);
        let record = LogRecord {
            id: 7,
            ..Default::default()
        };
        let mut made = 0;
        for _ in 0..3 {
            let text = rendered.get(&record, |r| {
                made += 1;
                Bytes::from(format!("id {}", r.id))
            });
            assert_eq!(&text[..], b"id 7");
        }
        assert_eq!((made, live.load(Relaxed)), (1, 4));
        drop(rendered);
        assert_eq!(live.load(Relaxed), 0);
    }
}
