//! The reliability table the suite writes: each fault or load test records
//! one row of what it pushed, what was acknowledged, found, lost and stored
//! twice, and how long recovery took. `tests/run.sh` renders the rows into
//! `docs/RELIABILITY.md` after the tests (`tests/reliability_table.py`).

use std::collections::HashMap;
use std::time::Duration;

/// One fault, load or input test's outcome in one mode.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Row {
    /// What happened to the server, in a few words ("MariaDB killed 30 s").
    pub fault: String,
    /// `embedded` or `distributed`.
    pub mode: String,
    /// Unique entries sent (acknowledged or not).
    pub pushed: u64,
    /// Entries the server acknowledged.
    pub acknowledged: u64,
    /// Acknowledged entries found in the store afterwards.
    pub found: u64,
    /// Acknowledged entries missing from the store.
    pub lost: u64,
    /// Entries stored more than once.
    pub duplicated: u64,
    /// From the end of the fault to the first success, when it applies.
    #[serde(serialize_with = "seconds")]
    pub recovery: Option<Duration>,
    /// The figures the fault is about (latency, RSS, refusals), one line.
    pub detail: String,
    /// The test that wrote the row (`file::function`).
    pub test: String,
}

fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&d.map(|d| d.as_secs_f64()), s)
}

/// Counts `found` against `acknowledged`: how many acknowledged entries were
/// found, how many are missing, and how many stored messages occur more
/// than once (`found` may hold entries that were never acknowledged).
pub fn tally<'a>(
    acknowledged: impl IntoIterator<Item = &'a str>,
    found: impl IntoIterator<Item = &'a str>,
) -> (u64, u64, u64) {
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for m in found {
        *seen.entry(m).or_default() += 1;
    }
    let duplicated = seen.values().map(|&n| n.saturating_sub(1)).sum();
    let (mut present, mut lost) = (0, 0);
    for m in acknowledged {
        if seen.contains_key(m) {
            present += 1;
        } else {
            lost += 1;
        }
    }
    (present, lost, duplicated)
}

/// Waits until every acknowledged message of `svc` is stored on the
/// server at `base` (or `within` has passed); the stored messages.
pub async fn wait_for_acked(
    base: &str,
    svc: &str,
    acked: &[String],
    within: Duration,
) -> Vec<String> {
    let started = std::time::Instant::now();
    loop {
        let stored = super::exported_messages(base, svc).await;
        let acked = acked.iter().map(String::as_str);
        let (_, lost, _) = tally(acked, stored.iter().map(String::as_str));
        if lost == 0 || started.elapsed() > within {
            return stored;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Row {
    /// Fills `found`, `lost` and `duplicated` from the two lists.
    pub fn tallied<'a>(
        mut self,
        acknowledged: impl IntoIterator<Item = &'a str>,
        found: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        (self.found, self.lost, self.duplicated) = tally(acknowledged, found);
        self
    }

    /// Records the row, then fails the test if an acknowledged entry is
    /// missing or an entry was stored twice.
    pub fn record_and_check(&self) {
        self.record();
        assert_eq!(
            (self.lost, self.duplicated),
            (0, 0),
            "{}: of {} acknowledged, lost and stored twice",
            self.fault,
            self.acknowledged
        );
    }

    /// Writes the row where `tests/run.sh` collects them. A test records
    /// its row before asserting, so a failing run's table shows why.
    pub fn record(&self) {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
        let _ = std::fs::create_dir_all(&dir);
        let name: String = format!("{}-{}", self.test, self.mode)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let text = serde_json::to_string_pretty(self).expect("a row is JSON");
        std::fs::write(dir.join(format!("{name}.json")), &text).expect("write the reliability row");
        eprintln!("reliability: {text}");
    }
}
