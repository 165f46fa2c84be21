//! Every writer's look at the whole topic: its lag, its partitions, and
//! partitions nobody is taking (see [`stall`](super::stall)).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer as _, StreamConsumer};
use tokio_util::sync::CancellationToken;

use super::stall::{PartitionState, StallWatch};
use crate::metrics::Registry;

pub(super) struct Monitor {
    /// The writer's group member: its assignment and position.
    pub consumer: Arc<StreamConsumer>,
    /// A client of the group that never joins it, asked about the topic.
    pub watcher: Arc<BaseConsumer>,
    pub topic: String,
    pub group: String,
    /// Behind a lock only because each look runs on a blocking thread.
    pub watch: Mutex<StallWatch>,
    pub gauges: Gauges,
}

/// What the monitor reports in `/metrics`.
pub(super) struct Gauges {
    /// Entries the writer has yet to read from its partitions.
    lag: Gauge,
    /// Partitions assigned to this writer now: shows whether every writer
    /// of a group got a share, and when a rebalance left one idle.
    partitions: Gauge,
    /// Partitions of the topic whose entries wait while their committed
    /// offset stands still: a writer stuck, or a partition the group left
    /// without an owner.
    stalled: Gauge,
}

impl Gauges {
    pub fn new(registry: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        Gauges {
            lag: gauge(
                "taillight_writer_lag",
                "Entries on the writer's Kafka partitions not yet read.",
            ),
            partitions: gauge(
                "taillight_writer_partitions",
                "Kafka partitions assigned to this writer.",
            ),
            stalled: gauge(
                "taillight_writer_stalled_partitions",
                "Kafka partitions with entries waiting and a committed offset that has not moved for a while.",
            ),
        }
    }
}

/// Looks at the topic every few seconds until `stop`.
pub(super) fn spawn(monitor: Monitor, stop: CancellationToken) {
    let monitor = Arc::new(monitor);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            // Blocking calls to the broker.
            let m = monitor.clone();
            let _ = tokio::task::spawn_blocking(move || m.look()).await;
        }
    });
}

impl Monitor {
    /// One look at the topic, which serves every gauge and the stall watch.
    fn look(&self) {
        let (c, t) = (&self.consumer, &self.topic);
        let Ok(assignment) = c.assignment() else {
            return;
        };
        let gauges = &self.gauges;
        gauges.partitions.set(assignment.count() as i64);
        let Some(state) = topic_state(&self.watcher, t, &self.group, &assignment) else {
            return;
        };
        if let Some(lag) = lag(c, t, &state.parts) {
            gauges.lag.set(lag.min(i64::MAX as u64) as i64);
        }
        let verdict = self
            .watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(Instant::now(), &state.parts, state.starved);
        gauges.stalled.set(verdict.stalled.len() as i64);
        if verdict.rejoin {
            tracing::warn!(
                partitions = ?verdict.stalled,
                "entries wait on a partition no writer holds, or the group gave this writer none; rejoining it so the partitions are assigned again"
            );
            // Leaving and joining again: a subscription to the same topic
            // alone is not a change the group sees.
            c.unsubscribe();
            if let Err(e) = c.subscribe(&[t]) {
                tracing::error!(error = %e, "could not rejoin the writers' group");
            }
        } else if verdict.changed && !verdict.stalled.is_empty() {
            tracing::warn!(partitions = ?verdict.stalled, "entries wait on partitions whose committed offsets do not move");
        } else if verdict.changed {
            tracing::info!("no partition is stalled any more");
        }
    }
}

/// One look at the topic and the group.
struct TopicState {
    parts: Vec<PartitionState>,
    /// The group is stable, has no more members than partitions, and gave
    /// this writer none.
    starved: bool,
}

/// Every partition of `topic`: its committed offset, its end, whether it is
/// in `assignment` and whether any member of `group` holds it. `None` when
/// the broker did not answer.
fn topic_state(
    c: &BaseConsumer,
    topic: &str,
    group: &str,
    assignment: &TopicPartitionList,
) -> Option<TopicState> {
    let timeout = Duration::from_millis(1500);
    let metadata = c.fetch_metadata(Some(topic), timeout).ok()?;
    let ids: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)?
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut all = TopicPartitionList::new();
    for &p in &ids {
        all.add_partition(topic, p);
    }
    let committed = c.committed_offsets(all, timeout).ok()?;
    let group = describe_group(c, topic, group, timeout);
    let held = group.as_ref().and_then(|g| g.held.as_ref());
    // A member left with nothing while there are partitions enough for
    // everyone: no assignor does that; the broker got the rebalance wrong.
    let starved = group.as_ref().is_some_and(|g| g.members <= ids.len()) && assignment.count() == 0;
    let parts: Option<Vec<PartitionState>> = ids
        .iter()
        .map(|&p| {
            let (low, high) = c
                .fetch_watermarks(topic, p, Duration::from_millis(500))
                .ok()?;
            Some(PartitionState {
                partition: p,
                committed: offset_of(&committed, topic, p).unwrap_or(low),
                end: high,
                mine: assignment.find_partition(topic, p).is_some(),
                owned: held.map(|h| h.contains(&p)),
            })
        })
        .collect();
    Some(TopicState {
        parts: parts?,
        starved,
    })
}

/// What the broker says of `group`, when it is stable (during a rebalance
/// every partition is briefly without an owner, so nothing is concluded).
struct GroupView {
    members: usize,
    /// The partitions of the topic its members hold; `None` when the broker
    /// does not say (tansu 0.6.0 describes members without assignments).
    held: Option<BTreeSet<i32>>,
}

fn describe_group(
    c: &BaseConsumer,
    topic: &str,
    group: &str,
    timeout: Duration,
) -> Option<GroupView> {
    let list = c.fetch_group_list(Some(group), timeout).ok()?;
    let info = list.groups().iter().find(|g| g.name() == group)?;
    if info.state() != "Stable" {
        return None;
    }
    let held = info
        .members()
        .iter()
        .try_fold(BTreeSet::new(), |mut held, m| {
            held.extend(assigned_partitions(m.assignment()?, topic)?);
            Some(held)
        });
    Some(GroupView {
        members: info.members().len(),
        held,
    })
}

/// The partitions of `topic` in a member's assignment as the consumer
/// protocol encodes it: a version (i16), then topics (i32 count), each a
/// name (i16 length, bytes) and partitions (i32 count, i32 each); user data
/// follows and is not needed.
fn assigned_partitions(mut b: &[u8], topic: &str) -> Option<Vec<i32>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = b.split_at_checked(n)?;
        *b = rest;
        Some(head)
    }
    let i16_of = |b: &mut &[u8]| take(b, 2)?.try_into().ok().map(i16::from_be_bytes);
    let i32_of = |b: &mut &[u8]| take(b, 4)?.try_into().ok().map(i32::from_be_bytes);
    i16_of(&mut b)?;
    let mut out = Vec::new();
    for _ in 0..i32_of(&mut b)? {
        let len = usize::try_from(i16_of(&mut b)?).ok()?;
        let name = take(&mut b, len)?;
        for _ in 0..i32_of(&mut b)? {
            let p = i32_of(&mut b)?;
            if name == topic.as_bytes() {
                out.push(p);
            }
        }
    }
    Some(out)
}

/// A partition's offset in `list`, if it has a real one.
fn offset_of(list: &TopicPartitionList, topic: &str, partition: i32) -> Option<i64> {
    list.find_partition(topic, partition)
        .and_then(|p| p.offset().to_raw())
        .filter(|o| *o >= 0)
}

/// Entries behind the end of the topic on this consumer's partitions: from
/// its position, or the committed offset before it has one.
fn lag(consumer: &StreamConsumer, topic: &str, parts: &[PartitionState]) -> Option<u64> {
    let position = consumer.position().ok()?;
    let lag = parts
        .iter()
        .filter(|p| p.mine)
        .map(|p| {
            let pos = offset_of(&position, topic, p.partition).unwrap_or(p.committed);
            (p.end - pos).max(0) as u64
        })
        .sum();
    Some(lag)
}

#[cfg(test)]
mod tests {
    use super::assigned_partitions;

    #[test]
    fn a_members_assignment_is_read_as_the_consumer_protocol_encodes_it() {
        let mut b = vec![0, 1]; // version
        b.extend(2i32.to_be_bytes()); // two topics
        for (name, parts) in [("other", &[7i32][..]), ("logs", &[0, 3][..])] {
            b.extend((name.len() as i16).to_be_bytes());
            b.extend(name.as_bytes());
            b.extend((parts.len() as i32).to_be_bytes());
            for p in parts {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend(0i32.to_be_bytes()); // no user data
        assert_eq!(assigned_partitions(&b, "logs"), Some(vec![0, 3]));
        assert_eq!(assigned_partitions(&b, "none"), Some(vec![]));
        // Cut short anywhere: unknown, never a guess.
        assert_eq!(assigned_partitions(&b[..b.len() - 10], "logs"), None);
    }
}
