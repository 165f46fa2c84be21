//! The Redis lease against a real Redis: one holder at a time, and a
//! takeover when the holder lets go or goes away.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use taillight::net::redis::Link;
use taillight::net::redis::lease::Lease;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

fn link() -> Arc<Link> {
    let client = ::redis::Client::open(common::redis_url()).expect("redis url");
    Link::new(client).expect("link")
}

/// Starts a claim on `key`; its state, and the token that ends it.
fn claim(key: &str, ttl: Duration) -> (watch::Receiver<bool>, CancellationToken) {
    let stop = CancellationToken::new();
    let (held, run) = Lease::new(link(), key.to_string(), ttl).hold(stop.clone());
    tokio::spawn(run);
    (held, stop)
}

/// Waits until exactly one of `held` holds; its index. Never two at once.
async fn one_holder(held: &[&watch::Receiver<bool>], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let holders: Vec<usize> = (0..held.len()).filter(|&i| *held[i].borrow()).collect();
        assert!(holders.len() <= 1, "two holders at once: {holders:?}");
        if let [one] = holders[..] {
            return one;
        }
        assert!(Instant::now() < deadline, "nobody took the lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_and_a_takeover_when_it_lets_go() {
    let key = format!("{}:lease", common::unique_name("test"));
    let ttl = Duration::from_millis(1500);
    let (a, stop_a) = claim(&key, ttl);
    let (b, stop_b) = claim(&key, ttl);
    let first = one_holder(&[&a, &b], Duration::from_secs(3)).await;
    // Nobody else gets it while the holder renews, for several lifetimes.
    let until = Instant::now() + ttl * 3;
    while Instant::now() < until {
        assert_eq!(one_holder(&[&a, &b], Duration::from_secs(1)).await, first);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The holder lets go (it releases the key): the other takes over within
    // one renewal period.
    let (stop_first, stop_other) = if first == 0 {
        (&stop_a, &stop_b)
    } else {
        (&stop_b, &stop_a)
    };
    stop_first.cancel();
    let mut gone = if first == 0 { a.clone() } else { b.clone() };
    tokio::time::timeout(Duration::from_secs(5), gone.wait_for(|h| !h))
        .await
        .expect("the holder lets go when stopped")
        .expect("lease state");
    let t = Instant::now();
    let second = one_holder(&[&a, &b], ttl * 2).await;
    assert_ne!(second, first);
    assert!(t.elapsed() < ttl, "took {:?}", t.elapsed());
    stop_other.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_vanishes_is_replaced_after_the_lease_runs_out() {
    let key = format!("{}:lease", common::unique_name("test"));
    let ttl = Duration::from_millis(1500);
    // A holder that dies without releasing: its key simply stops being renewed.
    let mut c = ::redis::Client::open(common::redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: () = ::redis::cmd("SET")
        .arg(&key)
        .arg("dead-holder")
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .query_async(&mut c)
        .await
        .expect("set");
    let t = Instant::now();
    let (b, stop_b) = claim(&key, ttl);
    one_holder(&[&b], ttl * 3).await;
    assert!(
        t.elapsed() >= ttl - Duration::from_millis(100),
        "taken too early"
    );
    stop_b.cancel();
}
