//! The archive's copy in S3 (or any S3-protocol store), through the
//! `object_store` crate: request signing, per-request retries with backoff,
//! multipart uploads. Credentials, region and endpoint come from the usual
//! AWS variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...).
//!
//! A closed file goes to `<prefix>/<service dir>/<period>.ndjson.zst`, a key
//! that depends on nothing but the file, so a close redone after a crash
//! overwrites the same object rather than adding a second one. A small file
//! is one PUT, atomic in S3; a large one a multipart upload, which S3 shows
//! as an object only once completed (a bucket lifecycle rule that aborts
//! incomplete multipart uploads clears the parts of one cut short).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Files up to this size go in one PUT; larger ones in parts of this size.
const PART: usize = 8 << 20;
/// Parts of one upload in flight at once: bounds the memory an upload takes.
const PARTS_IN_FLIGHT: usize = 2;

/// One bucket and prefix.
pub struct S3Target {
    store: Arc<dyn ObjectStore>,
    /// Put before every key; may be empty.
    prefix: String,
    /// The URL as given, for messages.
    pub url: String,
}

impl S3Target {
    /// The target of `url` (`s3://bucket/prefix`), configured from the
    /// environment. Nothing is contacted yet.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not an s3://bucket/prefix URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url:?} names no bucket"));
        }
        let client = |k| AmazonS3ConfigKey::Client(k);
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            // Never a hang on a dead endpoint: each request is bounded, and
            // retried a few times within half a minute; the archive retries
            // the whole upload after that, with its own backoff.
            .with_config(client(ClientConfigKey::ConnectTimeout), "5s")
            .with_config(client(ClientConfigKey::Timeout), "60s")
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
            })
            .build()
            .map_err(|e| format!("{url}: {e}"))?;
        Ok(S3Target {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_string(),
            url: url.to_string(),
        })
    }

    /// The key of `rel` (a path relative to the archive directory).
    /// Parsed, not encoded: the key is the relative path as it is (its
    /// escapes included), so the bucket mirrors the directory.
    fn key(&self, rel: &str) -> Result<Key, String> {
        let full = match self.prefix.is_empty() {
            true => rel.to_string(),
            false => format!("{}/{rel}", self.prefix),
        };
        Key::parse(&full).map_err(|e| format!("{full:?} is no object key: {e}"))
    }

    /// Uploads the local file `path` as `rel`, replacing what is there.
    pub async fn upload(&self, path: &Path, rel: &str) -> Result<(), String> {
        let key = self.key(rel)?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let size = file.metadata().await.map_err(|e| e.to_string())?.len();
        if size <= PART as u64 {
            let mut body = Vec::with_capacity(size as usize);
            file.read_to_end(&mut body)
                .await
                .map_err(|e| e.to_string())?;
            self.store
                .put(&key, PutPayload::from(body))
                .await
                .map_err(|e| format!("uploading {key}: {e}"))?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| format!("starting the upload of {key}: {e}"))?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; PART];
        let sent: Result<(), String> = async {
            loop {
                let n = file.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Ok(());
                }
                parts
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| e.to_string())?;
                parts.write(&buf[..n]);
            }
        }
        .await;
        match sent {
            Ok(()) => parts.finish().await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => {
                let _ = parts.abort().await;
                Err(e)
            }
        }
        .map_err(|e| format!("uploading {key}: {e}"))
    }

    /// Every object under the prefix: (path relative to it, size).
    pub async fn list(&self) -> Result<Vec<(String, u64)>, String> {
        let prefix = match self.prefix.is_empty() {
            true => None,
            false => Some(self.key("")?),
        };
        let mut listing = self.store.list(prefix.as_ref());
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| format!("listing {}: {e}", self.url))?;
            let full = meta.location.to_string();
            let rel = match self.prefix.is_empty() {
                true => full.as_str(),
                false => full
                    .strip_prefix(&self.prefix)
                    .map_or(full.as_str(), |r| r.trim_start_matches('/')),
            };
            out.push((rel.to_string(), meta.size));
        }
        Ok(out)
    }

    /// Downloads `rel` into the local file `to`, streaming (an archive file
    /// may be larger than memory).
    pub async fn download(&self, rel: &str, to: &Path) -> Result<(), String> {
        let key = self.key(rel)?;
        let got = self
            .store
            .get(&key)
            .await
            .map_err(|e| format!("downloading {key}: {e}"))?;
        let mut out = tokio::fs::File::create(to)
            .await
            .map_err(|e| format!("{}: {e}", to.display()))?;
        let mut body = got.into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("downloading {key}: {e}"))?;
            out.write_all(&chunk).await.map_err(|e| e.to_string())?;
        }
        out.flush().await.map_err(|e| e.to_string())
    }
}
