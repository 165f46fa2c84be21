//! A network cut between a taillight node and its Kafka broker for 60 s,
//! under load, in the distributed mode, with the node a real `taillight
//! serve` process so its memory can be read.
//!
//! The cut is made by a TCP proxy the test owns. The node reaches tansu only
//! through it: tansu advertises the proxy's address, so the connections the
//! client opens after reading the broker's metadata go through it as well.
//! While cut, the proxy passes nothing: live connections go silent with both
//! ends left open, as behind a pulled cable, and new ones are accepted but
//! never answered. At restore those connections are closed (the state a
//! firewall forgot during the cut) and new ones are forwarded again. tansu
//! itself never stops, so no producer resumes an idempotence session against
//! a restarted broker.
//!
//! It proves that, while a client pushes batches of unique entries every
//! 50 ms throughout: pushes during the cut are refused with UNAVAILABLE
//! naming kafka, quickly once the node knows the broker is gone, and none
//! hangs; the node's memory stays bounded; /healthz keeps answering; pushes
//! succeed again after the cut without a restart; and every acknowledged
//! entry is stored exactly once.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{self, Proc, serve_args};
use common::reliability::{Row, wait_for_acked};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Pushing before the cut, to show the node healthy and take its memory.
const BEFORE: Duration = Duration::from_secs(10);
const CUT: Duration = Duration::from_secs(60);
/// Pushing after the restore (longer if no push has succeeded yet).
const AFTER: Duration = Duration::from_secs(15);
/// The longest the test waits for the first success after the restore.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// The node's `--push-timeout`.
const PUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// By this long into the cut the node must know the broker is gone: what
/// was in flight waits out the push timeout, and the node looks at the
/// broker every 2 s with 1.5 s for an answer; the rest is slack for a loaded
/// machine.
const KNOWN_AFTER: Duration = Duration::from_secs(8);
/// A refusal once the outage is known.
const QUICK: Duration = Duration::from_secs(2);
/// Any push until then: the push timeout and slack.
const SLOW: Duration = Duration::from_secs(6);
/// A push not answered within this has hung.
const HUNG: Duration = Duration::from_secs(30);
/// How much the node's RSS may grow during the cut over its peak before.
const RSS_GROWTH_KB: u64 = 100 * 1024;
/// Entries per push.
const BATCH: usize = 20;

/// A loopback TCP forwarder to `upstream` that the test can cut.
struct Proxy {
    port: u16,
    cut: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (cut, state) = watch::channel(false);
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((client, _)) => {
                        tokio::spawn(relay(client, upstream, state.clone()));
                    }
                    // Out of descriptors, say: try again shortly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        Proxy { port, cut, accept }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }

    fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Forwards one connection until it ends or the network is cut; then holds
/// both ends open and silent until the network returns, and closes them.
async fn relay(mut client: TcpStream, upstream: u16, mut cut: watch::Receiver<bool>) {
    if !*cut.borrow_and_update() {
        let Ok(mut broker) = TcpStream::connect(("127.0.0.1", upstream)).await else {
            return;
        };
        // Kafka's small requests and answers must not wait for Nagle.
        let _ = client.set_nodelay(true);
        let _ = broker.set_nodelay(true);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut broker) => return,
            _ = cut.wait_for(|c| *c) => {}
        }
        let _ = cut.wait_for(|c| !*c).await;
        drop(broker);
    } else {
        let _ = cut.wait_for(|c| !*c).await;
    }
    drop(client);
}

/// One push as the client saw it.
struct Answer {
    asked: Instant,
    took: Duration,
    /// `None` when no answer came (the connection failed or it hung).
    status: Option<u16>,
    body: String,
}

impl Answer {
    fn answered(&self) -> Instant {
        self.asked + self.took
    }

    fn ok(&self) -> bool {
        self.status == Some(200)
    }

    /// 503 UNAVAILABLE with a message that names the broker.
    fn names_kafka(&self) -> bool {
        let v: Value = serde_json::from_str(&self.body).unwrap_or_default();
        self.status == Some(503)
            && v["error"]["code"] == "UNAVAILABLE"
            && v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("kafka"))
    }
}

#[derive(Default)]
struct Pushed {
    /// Entries sent, acknowledged or not.
    pushed: u64,
    acked: Vec<String>,
    answers: Vec<Answer>,
}

/// Pushes `BATCH` unique entries every 50 ms until `stop`; `last_ok` is when
/// the latest push was acknowledged, so the test knows recovery happened.
async fn push_until(
    base: String,
    svc: String,
    stop: CancellationToken,
    last_ok: Arc<Mutex<Option<Instant>>>,
) -> Pushed {
    let http = reqwest::Client::builder()
        .timeout(HUNG)
        .build()
        .expect("an HTTP client");
    let mut out = Pushed::default();
    for k in 0.. {
        if stop.is_cancelled() {
            break;
        }
        let messages: Vec<String> = (0..BATCH).map(|i| format!("b{k}-{i}")).collect();
        let body: Vec<Value> = messages
            .iter()
            .map(|m| json!({"service": svc, "message": m}))
            .collect();
        let asked = Instant::now();
        let (status, body) = match http
            .post(format!("{base}/v1/logs"))
            .json(&body)
            .send()
            .await
        {
            Ok(r) => (
                Some(r.status().as_u16()),
                r.text().await.unwrap_or_default(),
            ),
            Err(e) => (None, e.to_string()),
        };
        let answer = Answer {
            asked,
            took: asked.elapsed(),
            status,
            body,
        };
        out.pushed += BATCH as u64;
        if answer.ok() {
            out.acked.extend(messages);
            *last_ok.lock().expect("last_ok lock") = Some(answer.answered());
        }
        out.answers.push(answer);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

/// Waits until the node says it is ready (its topic and store reached).
async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "the node never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The node's RSS every second until `stop`.
async fn sample_rss(pid: u32, stop: CancellationToken) -> Vec<(Instant, u64)> {
    let mut samples = Vec::new();
    while !stop.is_cancelled() {
        if let Some(kb) = process::rss(pid).map(|b| b >> 10) {
            samples.push((Instant::now(), kb));
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    samples
}

/// GET /healthz every second until `stop`: how long each answer took, or
/// why there was none.
async fn probe_health(base: String, stop: CancellationToken) -> Vec<Result<Duration, String>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client");
    let mut probes = Vec::new();
    while !stop.is_cancelled() {
        let asked = Instant::now();
        probes.push(match http.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status() == 200 => Ok(asked.elapsed()),
            Ok(r) => Err(format!("answered {}", r.status())),
            Err(e) => Err(e.to_string()),
        });
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    probes
}

/// What the pushes asked during the cut came to. A push asked just before
/// the restore and answered after it counts only towards `slowest`.
struct DuringCut {
    /// Answered before the restore.
    pushes: usize,
    /// Refused with 503 naming kafka.
    unavailable: usize,
    /// Refused otherwise (504 when the push timeout ran out, say).
    other_refusals: usize,
    /// Acknowledged before the restore: the cut leaked.
    leaked: usize,
    slowest: Duration,
    /// From the cut to the first push after which every push of the cut was
    /// refused quickly with UNAVAILABLE naming kafka.
    known_after: Option<Duration>,
    /// The slowest answer of the pushes from then on.
    slowest_once_known: Duration,
}

fn during_cut(answers: &[Answer], cut: Instant, restore: Instant) -> DuringCut {
    let asked: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.asked >= cut && a.asked < restore)
        .collect();
    let during: Vec<&Answer> = asked
        .iter()
        .copied()
        .filter(|a| a.answered() < restore)
        .collect();
    let tail = during
        .iter()
        .rev()
        .take_while(|a| a.names_kafka() && a.took < QUICK)
        .count();
    let known = &during[during.len() - tail..];
    DuringCut {
        pushes: during.len(),
        unavailable: during.iter().filter(|a| a.names_kafka()).count(),
        other_refusals: during
            .iter()
            .filter(|a| a.status.is_some() && !a.ok() && !a.names_kafka())
            .count(),
        leaked: during.iter().filter(|a| a.ok()).count(),
        slowest: asked.iter().map(|a| a.took).max().unwrap_or_default(),
        known_after: known.first().map(|a| a.asked - cut),
        slowest_once_known: known.iter().map(|a| a.took).max().unwrap_or_default(),
    }
}

/// From the restore to the first acknowledgement of a push asked after it,
/// and how many pushes were refused after that one.
fn recovery(answers: &[Answer], restore: Instant) -> (Option<Duration>, usize) {
    let after: Vec<&Answer> = answers.iter().filter(|a| a.asked >= restore).collect();
    let Some(first) = after.iter().position(|a| a.ok()) else {
        return (None, 0);
    };
    let refused_later = after[first..].iter().filter(|a| !a.ok()).count();
    (Some(after[first].answered() - restore), refused_later)
}

/// The node's peak RSS in kB before the cut, during it, and after it.
fn rss_peaks(samples: &[(Instant, u64)], cut: Instant, restore: Instant) -> (u64, u64, u64) {
    let peak = |keep: &dyn Fn(Instant) -> bool| {
        samples
            .iter()
            .filter(|(t, _)| keep(*t))
            .map(|(_, kb)| *kb)
            .max()
            .unwrap_or_default()
    };
    (
        peak(&|t| t < cut),
        peak(&|t| t >= cut && t < restore),
        peak(&|t| t >= restore),
    )
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// What the client and the samplers saw over the whole run.
struct Run {
    pushed: Pushed,
    rss: Vec<(Instant, u64)>,
    health: Vec<Result<Duration, String>>,
    cut: Instant,
    restore: Instant,
}

/// Pushes to `node` for `BEFORE`, through a cut of `CUT`, and after it
/// until `AFTER` has passed and a push has succeeded again (or
/// `RECOVERY_LIMIT`), sampling its RSS and /healthz meanwhile.
async fn push_through_cut(node: &Proc, proxy: &Proxy, svc: &str) -> Run {
    let stop = CancellationToken::new();
    let last_ok = Arc::new(Mutex::new(None));
    let pusher = tokio::spawn(push_until(
        node.url(),
        svc.to_string(),
        stop.clone(),
        last_ok.clone(),
    ));
    let rss = tokio::spawn(sample_rss(node.child.id(), stop.clone()));
    let health = tokio::spawn(probe_health(node.url(), stop.clone()));

    tokio::time::sleep(BEFORE).await;
    proxy.cut();
    let cut = Instant::now();
    tokio::time::sleep(CUT).await;
    proxy.restore();
    let restore = Instant::now();
    tokio::time::sleep(AFTER).await;
    // A slow recovery is measured, not cut short.
    while last_ok
        .lock()
        .expect("last_ok lock")
        .is_none_or(|t| t < restore)
        && restore.elapsed() < RECOVERY_LIMIT
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    Run {
        pushed: pusher.await.expect("pusher"),
        rss: rss.await.expect("RSS sampler"),
        health: health.await.expect("health prober"),
        cut,
        restore,
    }
}

/// The figures of a run that the row and the checks use.
struct Figures {
    /// Pushes answered before the cut that were refused.
    refused_before: usize,
    during: DuringCut,
    recovery: Option<Duration>,
    /// Pushes refused after the first success following the restore.
    refused_after: usize,
    /// Peak RSS in kB before, during and after the cut.
    rss: (u64, u64, u64),
    health_failed: Vec<String>,
    health_slowest: Duration,
}

fn figures(run: &Run) -> Figures {
    let answers = &run.pushed.answers;
    let (recovery, refused_after) = recovery(answers, run.restore);
    Figures {
        refused_before: answers
            .iter()
            .filter(|a| a.answered() < run.cut && !a.ok())
            .count(),
        during: during_cut(answers, run.cut, run.restore),
        recovery,
        refused_after,
        rss: rss_peaks(&run.rss, run.cut, run.restore),
        health_failed: run
            .health
            .iter()
            .filter_map(|p| p.as_ref().err().cloned())
            .collect(),
        health_slowest: run
            .health
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .max()
            .copied()
            .unwrap_or_default(),
    }
}

/// The row's detail: refusals, memory and health, one line.
fn detail(f: &Figures, probes: usize) -> String {
    let d = &f.during;
    let (before, during, after) = f.rss;
    format!(
        "{}/{} pushes refused during the cut ({} with 503 naming kafka), quick (<{}s) from +{:.1}s, slowest refusal {:.2}s ({:.2}s once known); RSS before {:.0} MB, max during {:.0} MB, after {:.0} MB; /healthz {}/{probes} answered (slowest {} ms)",
        d.unavailable + d.other_refusals,
        d.pushes,
        d.unavailable,
        QUICK.as_secs(),
        d.known_after.unwrap_or(CUT).as_secs_f64(),
        d.slowest.as_secs_f64(),
        d.slowest_once_known.as_secs_f64(),
        mb(before),
        mb(during),
        mb(after),
        probes - f.health_failed.len(),
        f.health_slowest.as_millis(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_cut_to_the_broker_for_60_s() {
    let tansu_port = common::free_port();
    let proxy = Proxy::start(tansu_port).await;
    let _broker = common::Tansu::start_behind(tansu_port, proxy.port);
    let (cfg, _scratch) = common::config_on(Some(format!("127.0.0.1:{}", proxy.port)));
    let mut args = serve_args(&cfg, "all");
    args.extend([
        "--push-timeout".into(),
        format!("{}s", PUSH_TIMEOUT.as_secs()),
    ]);
    let node = Proc::spawn(&args);
    wait_ready(&node.url()).await;
    let svc = common::unique("cut");

    let run = push_through_cut(&node, &proxy, &svc).await;
    let acked = &run.pushed.acked;
    let found = wait_for_acked(&node.url(), &svc, acked, Duration::from_secs(120)).await;
    let f = figures(&run);
    let detail = detail(&f, run.health.len());
    let row = Row {
        fault: "network cut to the broker for 60 s".into(),
        mode: "distributed".into(),
        pushed: run.pushed.pushed,
        acknowledged: acked.len() as u64,
        recovery: f.recovery,
        detail: detail.clone(),
        test: "broker_cut::network_cut_to_the_broker_for_60_s".into(),
        ..Default::default()
    }
    .tallied(
        acked.iter().map(String::as_str),
        found.iter().map(String::as_str),
    );
    row.record();
    println!(
        "broker cut: {} pushed, {} acknowledged, {} found, {} lost, {} stored twice; recovery {:?} ({} refused after it); {detail}",
        row.pushed,
        row.acknowledged,
        row.found,
        row.lost,
        row.duplicated,
        f.recovery,
        f.refused_after
    );

    check_cut_handled(&run, &f);
    assert_eq!(
        (row.lost, row.duplicated),
        (0, 0),
        "of {} acknowledged: lost, stored twice",
        row.acknowledged
    );
}

/// The node worked before the cut, refused quickly during it without
/// hanging or growing, stayed healthy, and recovered by itself.
fn check_cut_handled(run: &Run, f: &Figures) {
    assert!(
        run.pushed.acked.len() >= 50 * BATCH,
        "only {} entries acknowledged",
        run.pushed.acked.len()
    );
    assert_eq!(f.refused_before, 0, "pushes refused before the cut");
    let unanswered: Vec<&String> = run
        .pushed
        .answers
        .iter()
        .filter(|a| a.status.is_none())
        .map(|a| &a.body)
        .collect();
    assert!(
        unanswered.is_empty(),
        "pushes never answered: {unanswered:?}"
    );
    let d = &f.during;
    assert!(d.pushes > 100, "{} pushes during the cut", d.pushes);
    assert_eq!(d.leaked, 0, "pushes acknowledged through a cut network");
    assert_eq!(
        d.unavailable + d.other_refusals,
        d.pushes,
        "every push refused"
    );
    assert!(
        d.slowest < SLOW,
        "a push took {:?} during the cut",
        d.slowest
    );
    let known = d.known_after.expect("refusals were never quick");
    assert!(
        known <= KNOWN_AFTER,
        "refusals were slow or not UNAVAILABLE naming kafka until {known:?} into the cut: {:?}",
        slow_refusals(&run.pushed.answers, run.cut, run.restore)
    );
    let (rss_before, rss_during, _) = f.rss;
    assert!(
        rss_during < rss_before + RSS_GROWTH_KB,
        "RSS grew from {rss_before} kB to {rss_during} kB during the cut"
    );
    assert!(
        f.health_failed.is_empty(),
        "/healthz failed: {:?}",
        f.health_failed
    );
    let recovered = f.recovery.expect("no push succeeded after the restore");
    assert!(
        recovered < Duration::from_secs(30),
        "recovery took {recovered:?}"
    );
    assert_eq!(f.refused_after, 0, "pushes refused after the recovery");
}

/// The pushes of the cut that were not refused quickly with UNAVAILABLE
/// naming kafka: when, how long, what they answered.
fn slow_refusals(
    answers: &[Answer],
    cut: Instant,
    restore: Instant,
) -> Vec<(Duration, Duration, Option<u16>, String)> {
    answers
        .iter()
        .filter(|a| a.asked >= cut && a.asked < restore)
        .filter(|a| !(a.names_kafka() && a.took < QUICK))
        .map(|a| {
            (
                a.asked - cut,
                a.took,
                a.status,
                a.body.chars().take(200).collect(),
            )
        })
        .collect()
}
