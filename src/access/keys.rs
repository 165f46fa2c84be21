//! The keys file: each key's name, scopes, services, dates and the SHA-256
//! of the key (the key itself is shown once, when created, and never
//! stored). Keys are 256 random bits, so a fast hash cannot be searched
//! backwards; hashes are compared in constant time.
//!
//! ```toml
//! [[key]]
//! name = "ci"
//! hash = "sha256:9f86d0..."
//! scopes = ["push", "read"]
//! services = ["api*"]          # optional: all services when left out
//! created = "2026-12-07T01:02:03Z"
//! expires = "2027-01-01T00:00:00Z"   # optional
//! revoked = "2026-12-08T10:00:00Z"   # set by `taillight keys revoke`
//! ```

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AccessError;
use super::grant::{Grant, Scope};
use super::meter::Rates;
use crate::model::Pattern;

/// What every key starts with, so a leaked one is recognisable.
const PREFIX: &str = "tl_";

/// The file as written.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    #[serde(default, rename = "key")]
    pub keys: Vec<KeyRecord>,
}

/// One key as the file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Unique; what metrics, logs and `keys revoke` call it.
    pub name: String,
    /// `sha256:` and the hex digest of the key.
    pub hash: String,
    pub scopes: Vec<String>,
    /// Service patterns it is limited to; absent for all services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
    /// This key's own rates and stream cap, over the server's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_streams: Option<usize>,
}

/// A key ready to be checked.
#[derive(Debug)]
struct Checked {
    digest: [u8; 32],
    expires: Option<DateTime<Utc>>,
    revoked: bool,
    grant: Grant,
}

/// The keys of one version of the file, checked and ready.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Checked>,
}

impl KeysFile {
    /// Reads the file; a missing file is an error (a typo would otherwise
    /// lock everyone out, or in).
    pub fn read(path: &Path) -> Result<Self, AccessError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AccessError::KeysFile(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| AccessError::KeysFile(format!("{}: {e}", path.display())))
    }

    /// Writes the file whole (a new file renamed over the old one, so a
    /// server reloading it never reads half of it).
    pub fn write(&self, path: &Path) -> Result<(), AccessError> {
        let fail =
            |e: &dyn std::fmt::Display| AccessError::KeysFile(format!("{}: {e}", path.display()));
        let body = toml::to_string(self).map_err(|e| fail(&e))?;
        let text = format!(
            "# taillight API keys: names, scopes and hashes only. Manage with `taillight keys`.\n\n{body}"
        );
        let tmp = path.with_extension("tmp");
        // Only hashes, but nobody else needs to read them.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| fail(&e))?;
        f.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
        f.sync_all().map_err(|e| fail(&e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail(&e))
    }

    /// Checks every key, naming the first problem found.
    pub fn check(&self) -> Result<KeySet, AccessError> {
        let mut names = std::collections::HashSet::new();
        let mut keys = Vec::with_capacity(self.keys.len());
        for (i, k) in self.keys.iter().enumerate() {
            let bad = |what: String| {
                AccessError::KeysFile(format!("key {} ({:?}): {what}", i + 1, k.name))
            };
            if k.name.trim().is_empty() {
                return Err(bad("the name is empty".into()));
            }
            if !names.insert(k.name.as_str()) {
                return Err(bad("the name is used twice".into()));
            }
            let digest = parse_hash(&k.hash)
                .ok_or_else(|| bad("hash is not sha256:<64 hex digits>".into()))?;
            let scopes = k
                .scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            if scopes.is_empty() {
                return Err(bad("no scopes".into()));
            }
            let services = match &k.services {
                None => None,
                Some(list) => Some(
                    list.iter()
                        .map(|p| Pattern::parse(p))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(bad)?,
                ),
            };
            let date =
                |what: &str, v: &Option<String>| -> Result<Option<DateTime<Utc>>, AccessError> {
                    v.as_deref()
                        .map(|t| DateTime::parse_from_rfc3339(t).map(|d| d.with_timezone(&Utc)))
                        .transpose()
                        .map_err(|e| bad(format!("{what}: {e}")))
                };
            date("created", &Some(k.created.clone()))?;
            keys.push(Checked {
                digest,
                expires: date("expires", &k.expires)?,
                revoked: date("revoked", &k.revoked)?.is_some(),
                grant: Grant::new(&k.name, scopes, services).with_rates(k.rates().map_err(bad)?),
            });
        }
        Ok(KeySet { keys })
    }
}

impl KeyRecord {
    /// Its own rates, each positive when given.
    fn rates(&self) -> Result<Rates, String> {
        for (field, v) in [
            ("entries_per_second", self.entries_per_second),
            ("bytes_per_second", self.bytes_per_second),
        ] {
            if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                return Err(format!("{field} must be a positive number"));
            }
        }
        Ok(Rates {
            entries_per_second: self.entries_per_second,
            bytes_per_second: self.bytes_per_second,
            tail_streams: self.tail_streams,
        })
    }
}

impl KeySet {
    /// The grant of `key`, or why it has none.
    pub fn grant(&self, key: &str) -> Result<Grant, AccessError> {
        let digest = digest(key);
        // Every key is compared, so the time taken says nothing of which
        // (or whether one) matched.
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.digest.ct_eq(&digest)) {
                found = Some(k);
            }
        }
        let k =
            found.ok_or_else(|| AccessError::Unauthenticated("the API key is not valid".into()))?;
        if k.revoked {
            return Err(AccessError::Unauthenticated(format!(
                "API key {:?} was revoked",
                &*k.grant.name
            )));
        }
        if k.expires.is_some_and(|e| e <= Utc::now()) {
            return Err(AccessError::Unauthenticated(format!(
                "API key {:?} has expired",
                &*k.grant.name
            )));
        }
        Ok(k.grant.clone())
    }

    /// Keys that can still be used.
    pub fn active(&self) -> usize {
        self.keys
            .iter()
            .filter(|k| !k.revoked && k.expires.is_none_or(|e| e > Utc::now()))
            .count()
    }
}

/// A new random key.
pub fn generate() -> Result<String, AccessError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| AccessError::KeysFile(format!("no randomness for a key: {e}")))?;
    Ok(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// How the file records `key`.
pub fn hash(key: &str) -> String {
    let d = digest(key);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in d {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, key: &str) -> KeyRecord {
        KeyRecord {
            name: name.into(),
            hash: hash(key),
            scopes: vec!["read".into()],
            services: Some(vec!["api*".into()]),
            created: "2026-12-07T00:00:00Z".into(),
            expires: None,
            revoked: None,
            entries_per_second: None,
            bytes_per_second: None,
            tail_streams: None,
        }
    }

    #[test]
    fn keys_round_trip_and_check() {
        let key = generate().unwrap();
        assert!(key.starts_with("tl_") && key.len() == 46);
        let mut file = KeysFile {
            keys: vec![record("ci", &key)],
        };
        let text = toml::to_string(&file).unwrap();
        let back: KeysFile = toml::from_str(&text).unwrap();
        let set = back.check().unwrap();
        let g = set.grant(&key).unwrap();
        assert_eq!(&*g.name, "ci");
        assert!(g.may(Scope::Read) && !g.may(Scope::Push) && g.covers("api-x") && !g.covers("web"));
        assert!(matches!(
            set.grant("tl_wrong"),
            Err(AccessError::Unauthenticated(_))
        ));
        let refusal = |file: &KeysFile| file.check().unwrap().grant(&key).unwrap_err().to_string();
        file.keys[0].revoked = Some("2026-12-07T01:00:00Z".into());
        assert!(refusal(&file).contains("revoked"));
        file.keys[0].revoked = None;
        file.keys[0].expires = Some("2000-01-01T00:00:00Z".into());
        assert!(refusal(&file).contains("expired"));
    }

    #[test]
    fn bad_files_name_the_problem() {
        let mut file = KeysFile {
            keys: vec![record("ci", "a"), record("ci", "b")],
        };
        assert!(file.check().unwrap_err().to_string().contains("used twice"));
        file.keys.pop();
        file.keys[0].scopes = vec!["write".into()];
        assert!(
            file.check()
                .unwrap_err()
                .to_string()
                .contains("unknown scope \"write\"")
        );
        file.keys[0].scopes = vec!["read".into()];
        file.keys[0].hash = "md5:00".into();
        assert!(file.check().unwrap_err().to_string().contains("sha256"));
        assert!(toml::from_str::<KeysFile>("[[key]]\nname = 1").is_err());
    }
}
