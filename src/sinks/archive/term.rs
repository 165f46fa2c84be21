//! One term as the archive's writer: from taking the role to losing it (or
//! shutdown). It reads the position, recovers the directory, follows every
//! stored record after the recovered id into the open period's files,
//! flushes them every [`FLUSH_EVERY`], checkpoints them every
//! [`CHECKPOINT_EVERY`], and when the clock passes the period's end hands
//! the period to the closer and opens the next.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::checkpoint::{self, Checkpoint};
use super::close::{self, CloseJob, CloserEnd};
use super::files::PeriodFiles;
use super::period::Period;
use super::recover::recover;
use super::state::{self, ArchiveState};
use super::{ArchiveError, Shared};
use crate::health::State;
use crate::model::Filter;
use crate::model::time::now_micros;
use crate::pipeline::follow::{Followed, OnSkip};
use crate::proto::Selection;

/// How often written lines are handed to the OS.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// How often the files are fsynced and a checkpoint written, which bounds
/// what a restart writes again.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
/// How often the newest stored id is read, for the lag.
const NEWEST_EVERY: Duration = Duration::from_millis(250);
/// Closed periods waiting for the closer (a long S3 outage): past this,
/// writing waits too, and the records wait in the store.
const QUEUED_CLOSES: usize = 64;

/// How a term ended.
#[derive(Debug)]
pub enum TermEnd {
    /// Shutdown, or the role was lost.
    Stopped,
    /// The position moved under us: another holder wrote it.
    Fenced,
}

/// The task closing ended periods.
struct Closer {
    task: JoinHandle<CloserEnd>,
    /// Its end was seen (a finished task is not awaited again).
    ended: bool,
}

/// The open period as this term writes it.
struct Writer {
    shared: Arc<Shared>,
    /// Shared with the blocking tasks that write them.
    files: Arc<Mutex<PeriodFiles>>,
    period: Period,
    /// The position the open files start from (once the closes before
    /// them are done).
    base: ArchiveState,
    /// The last id written.
    last: u64,
}

/// Writes the archive until `stop` (shutdown, or the role lost), or until
/// something fails (the caller starts a new term after a pause). `shutdown`
/// tells the two stops apart.
pub async fn run(
    shared: Arc<Shared>,
    stop: CancellationToken,
    shutdown: &CancellationToken,
) -> Result<TermEnd, ArchiveError> {
    let len = shared.period_len;
    let fresh = ArchiveState {
        period_start: Period::containing(now_micros(), len).start,
        closed_through: 0,
    };
    let base = state::load_or_create(shared.store.as_ref(), fresh).await?;
    let period = Period {
        start: base.period_start,
        len,
    };
    let root = shared.root.clone();
    let recovered = tokio::task::spawn_blocking(move || recover(&root, &base, &period))
        .await
        .map_err(|e| ArchiveError::Io(io::Error::other(e)))??;
    tracing::info!(period = %period.stem(), after = recovered.after, "writing the archive");
    shared.health(State::Ok);
    shared
        .metrics
        .written_through
        .store(recovered.after, Relaxed);
    let mut w = Writer {
        shared: shared.clone(),
        files: Arc::new(Mutex::new(recovered.files)),
        period,
        base,
        last: recovered.after,
    };
    let (jobs, queued) = mpsc::channel(QUEUED_CLOSES);
    let closer_stop = stop.child_token();
    let mut closer = Closer {
        task: tokio::spawn(close::run(
            shared.clone(),
            base,
            queued,
            closer_stop.clone(),
        )),
        ended: false,
    };
    tokio::spawn(watch_newest(shared.clone(), stop.clone()));
    let end = w.follow(&jobs, &mut closer, &stop).await;
    closer_stop.cancel();
    if !closer.ended {
        let _ = (&mut closer.task).await;
    }
    if matches!(end, Ok(TermEnd::Stopped)) && shutdown.is_cancelled() {
        // A restart then resumes from here instead of rewriting the period.
        // Not when the role was lost: the directory may be shared, and
        // belongs to the new holder now.
        w.checkpoint().await?;
    }
    end
}

impl Writer {
    async fn follow(
        &mut self,
        jobs: &mpsc::Sender<CloseJob>,
        closer: &mut Closer,
        stop: &CancellationToken,
    ) -> Result<TermEnd, ArchiveError> {
        let hub = self.shared.hub.clone();
        let records = hub.follow(self.last, Filter::default(), OnSkip::Repair, stop.clone());
        let mut records = std::pin::pin!(records);
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut checkpointed = Instant::now();
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(TermEnd::Stopped),
                end = &mut closer.task, if !closer.ended => {
                    closer.ended = true;
                    return Ok(match end {
                        Ok(CloserEnd::Fenced) => TermEnd::Fenced,
                        // Only stopped with the term; anything else is a bug.
                        _ => return Err(ArchiveError::State("the closer ended early".into())),
                    });
                }
                item = records.next() => match item {
                    None => return Ok(TermEnd::Stopped),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(Followed::Records(batch))) => {
                        self.roll_if_due(jobs, stop).await?;
                        self.write(batch).await?;
                    }
                    Some(Ok(_)) => {}
                },
                _ = tick.tick() => {
                    self.roll_if_due(jobs, stop).await?;
                    if checkpointed.elapsed() >= CHECKPOINT_EVERY {
                        self.checkpoint().await?;
                        checkpointed = Instant::now();
                    } else {
                        self.blocking(|f| f.flush()).await?;
                    }
                }
            }
        }
    }

    /// Runs `f` on the files on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PeriodFiles) -> io::Result<T> + Send + 'static,
    ) -> Result<T, ArchiveError> {
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || {
            let mut files = files.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut files)
        })
        .await
        .map_err(|e| ArchiveError::Io(io::Error::other(e)))?
        .map_err(ArchiveError::Io)
    }

    async fn write(&mut self, batch: Selection) -> Result<(), ArchiveError> {
        let Some(last) = batch.iter().next_back().map(|r| r.id) else {
            return Ok(());
        };
        let n = batch.len() as u64;
        self.blocking(move |f| f.write(batch.iter())).await?;
        self.last = last;
        let m = &self.shared.metrics;
        m.written.inc_by(n);
        m.written_through.store(last, Relaxed);
        m.newest.fetch_max(last, Relaxed);
        Ok(())
    }

    /// Fsyncs the files and records how far they go.
    async fn checkpoint(&self) -> Result<(), ArchiveError> {
        let (base, through, root) = (self.base, self.last, self.shared.root.clone());
        self.blocking(move |f| {
            let files = f.sync()?;
            checkpoint::save(
                &root,
                &Checkpoint {
                    base,
                    through,
                    files,
                },
            )
        })
        .await
    }

    /// When the clock has passed the period's end: hands its files to the
    /// closer and opens the period of now.
    async fn roll_if_due(
        &mut self,
        jobs: &mpsc::Sender<CloseJob>,
        stop: &CancellationToken,
    ) -> Result<(), ArchiveError> {
        let now = now_micros();
        if !self.period.ended(now) {
            return Ok(());
        }
        let next_period = Period::containing(now, self.period.len);
        let fresh = PeriodFiles::new(&self.shared.root, &next_period, []);
        let files = self
            .blocking(move |f| std::mem::replace(f, fresh).finish())
            .await?;
        let next = ArchiveState {
            period_start: next_period.start,
            closed_through: self.last,
        };
        tracing::debug!(period = %self.period.stem(), files = files.len(), "archive period ended");
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            sent = jobs.send(CloseJob { files, next }) => {
                sent.map_err(|_| ArchiveError::State("the closer is gone".into()))?;
            }
        }
        self.period = next_period;
        self.base = next;
        Ok(())
    }
}

/// Reads the newest stored id every [`NEWEST_EVERY`], for the lag.
async fn watch_newest(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        match shared.hub.newest_id().await {
            Ok(id) => {
                shared.metrics.newest.fetch_max(id, Relaxed);
            }
            Err(e) => tracing::debug!(error = %e, "archive: reading the newest id failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(NEWEST_EVERY) => {}
        }
    }
}
