//! SIGTERM while four clients push as fast as they can, in both modes: the
//! process exits within `--shutdown-timeout`, every push in flight ends with
//! an answer or a refused connection (never a hang), and every entry that
//! was acknowledged is stored exactly once.

mod common;

use std::time::{Duration, Instant};

use common::process::{Proc, serve_args};
use common::reliability::{Row, wait_for_acked};
use common::{Backend, unique};
use serde_json::{Value, json};

backend_tests!(sigterm_under_load_stores_every_acknowledged_entry_once);

/// Pushes batches of 50 numbered entries until the server stops answering;
/// the messages of every acknowledged batch, and the statuses seen.
async fn pusher(base: String, svc: String, who: usize) -> (Vec<String>, Vec<u16>) {
    let http = reqwest::Client::new();
    let (mut acked, mut statuses) = (Vec::new(), Vec::new());
    for k in 0.. {
        let messages: Vec<String> = (0..50).map(|i| format!("p{who}-b{k}-{i}")).collect();
        let body: Vec<Value> = messages
            .iter()
            .map(|m| json!({"service": svc, "message": m}))
            .collect();
        let sent = tokio::time::timeout(
            Duration::from_secs(30),
            http.post(format!("{base}/v1/logs")).json(&body).send(),
        )
        .await
        .expect("a push must not hang");
        match sent {
            Ok(r) => {
                statuses.push(r.status().as_u16());
                if r.status() == 200 {
                    acked.extend(messages);
                }
            }
            // The listener is closed: shutdown has begun.
            Err(_) => break,
        }
    }
    (acked, statuses)
}

async fn sigterm_under_load_stores_every_acknowledged_entry_once(backend: Backend) {
    let (cfg, _scratch) = common::test_config(backend);
    let mut args = serve_args(&cfg, "all");
    args.extend(["--shutdown-timeout".into(), "5s".into()]);
    let mut node = Proc::spawn(&args);
    let svc = unique("sigterm");
    let pushers: Vec<_> = (0..4)
        .map(|who| tokio::spawn(pusher(node.url(), svc.clone(), who)))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = node.child.id().to_string();
    let started = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = node.wait_exit(Duration::from_secs(30));
    let took = started.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took < Duration::from_secs(6),
        "exited after {took:?} with a 5 s shutdown timeout"
    );
    let (mut acked, mut answered) = (Vec::new(), 0);
    for p in pushers {
        let (a, statuses) = p.await.expect("pusher");
        assert!(
            statuses.iter().all(|s| matches!(s, 200 | 503)),
            "answers during shutdown: {statuses:?}"
        );
        acked.extend(a);
        answered += statuses.len();
    }
    assert!(
        acked.len() >= 200,
        "too little was pushed to mean anything: {}",
        acked.len()
    );

    // Back up on the same data: everything acknowledged, once.
    let again = Proc::spawn(&args);
    let stored = wait_for_acked(&again.url(), &svc, &acked, Duration::from_secs(60)).await;
    Row {
        fault: "SIGTERM while 4 clients push as fast as they can (5 s shutdown timeout)".into(),
        pushed: answered as u64 * 50,
        acknowledged: acked.len() as u64,
        detail: format!(
            "exited {} ms after SIGTERM; every push answered 200 or 503, or refused at connect",
            took.as_millis()
        ),
        test: "sigterm::sigterm_under_load_stores_every_acknowledged_entry_once".into(),
        mode: backend.mode(),
        ..Row::default()
    }
    .tallied(
        acked.iter().map(String::as_str),
        stored.iter().map(String::as_str),
    )
    .record_and_check();
}
