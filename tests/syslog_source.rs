//! Syslog in: Python's SysLogHandler and util-linux `logger` over UDP and
//! TCP (both framings) against a real taillight in both modes; bad input of
//! every kind counted without harm to the listener; a flooding sender slowed
//! by TCP rather than buffered; the connection cap and timeouts.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Backend, TestServer, metrics_text_at, only, sample, unique, wait_records};
use serde_json::{Value, json};
use taillight::model::time;
use taillight::proto::{Level, LogRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

backend_tests!(
    python_syslog_handler_over_udp_and_tcp,
    util_linux_logger_in_every_framing,
    bad_input_is_counted_and_the_listener_goes_on,
    a_flooding_sender_is_slowed_not_buffered,
);

const WITHIN: Duration = Duration::from_secs(60);

/// A loopback port free for both TCP and UDP.
fn syslog_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A server taking syslog on a port of its own, its flags changed by `tweak`.
async fn syslog_server(
    backend: Backend,
    tweak: impl FnOnce(&mut taillight::sources::syslog::SyslogArgs),
) -> (TestServer, u16) {
    let port = syslog_port();
    let server = TestServer::start_with(backend, |c| {
        c.sources.syslog.syslog_listen = Some(([127, 0, 0, 1], port).into());
        tweak(&mut c.sources.syslog);
    })
    .await;
    (server, port)
}

/// Runs `ops` with Python's SysLogHandler (tests/syslog_client.py).
fn python(ops: &Value) -> Value {
    let out = common::process::python("syslog_client.py", &[], &[], &ops.to_string());
    serde_json::from_str(&out).expect("client's answer")
}

/// util-linux `logger` to the server's port.
fn logger(port: u16, args: &[&str]) {
    let status = Command::new("logger")
        .args(["-n", "127.0.0.1", "-P", &port.to_string()])
        .args(args)
        .status()
        .expect("logger (tests/setup.sh installs util-linux)");
    assert!(status.success(), "logger {args:?} failed");
}

fn find<'a>(rs: &'a [LogRecord], message: &str) -> &'a LogRecord {
    rs.iter()
        .find(|r| r.message == message)
        .unwrap_or_else(|| panic!("no record {message:?} in {rs:?}"))
}

fn attr<'a>(r: &'a LogRecord, key: &str) -> &'a str {
    r.attributes
        .get(key)
        .unwrap_or_else(|| panic!("no attribute {key} in {r:?}"))
}

/// A syslog source's counter in the metrics of the server at `base`.
async fn count(base: &str, metric: &str, reason: Option<&str>) -> f64 {
    let labels = match reason {
        Some(r) => format!("{{source=\"syslog\",reason=\"{r}\"}}"),
        None => "{source=\"syslog\"}".into(),
    };
    let text = metrics_text_at(base).await;
    sample(&text, &format!("taillight_source_{metric}_total{labels}"))
}

/// Waits until a syslog source's counter reaches `want` (and fails if it
/// passes it).
async fn wait_count(base: &str, metric: &str, reason: Option<&str>, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = count(base, metric, reason).await;
        if got == want {
            return;
        }
        assert!(
            got < want && Instant::now() < deadline,
            "{metric} {reason:?}: {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn python_syslog_handler_over_udp_and_tcp(backend: Backend) {
    let plain = unique("py-plain");
    let default_service = plain.clone();
    let (server, port) = syslog_server(backend, |s| s.syslog_service = default_service).await;
    let app = unique("pyapp");
    let records = |prefix: &str| {
        json!([
            {"level": "debug", "message": format!("{prefix} debug")},
            {"level": "info", "message": format!("{prefix} info")},
            {"level": "warning", "message": format!("{prefix} warning")},
            {"level": "error", "message": format!("{prefix} error")},
            {"level": "critical", "message": format!("{prefix} critical")},
        ])
    };
    python(&json!([
        {"op": "log", "port": port, "transport": "udp", "ident": format!("{app}: "),
         "facility": "local3", "records": records("udp")},
        {"op": "log", "port": port, "transport": "tcp", "ident": format!("{app}: "),
         "facility": "local3", "records": records("tcp")},
        // No ident: no tag, so the default service.
        {"op": "log", "port": port, "transport": "tcp", "ident": null,
         "records": [{"level": "error", "message": "no ident over tcp"}]},
        {"op": "log", "port": port, "transport": "udp", "ident": null,
         "records": [{"level": "info", "message": "no ident over udp"}]},
    ]));
    let base = server.http();
    let mine = wait_records(&base, &only(&app), 10, WITHIN).await;
    for transport in ["udp", "tcp"] {
        let levels: Vec<i32> = ["debug", "info", "warning", "error", "critical"]
            .iter()
            .map(|l| find(&mine, &format!("{transport} {l}")).level)
            .collect();
        use Level::*;
        assert_eq!(
            levels,
            [Debug, Info, Warn, Error, Fatal].map(|l| l as i32),
            "{transport}"
        );
        let r = find(&mine, &format!("{transport} warning"));
        assert_eq!(attr(r, "syslog.facility"), "local3");
        assert_eq!(attr(r, "syslog.severity"), "warning");
        // The handler names no host: the sender's address.
        assert_eq!(attr(r, "host"), "127.0.0.1");
    }
    let plain = wait_records(&base, &only(&plain), 2, WITHIN).await;
    assert_eq!(find(&plain, "no ident over tcp").level, Level::Error as i32);
    assert_eq!(
        attr(find(&plain, "no ident over udp"), "syslog.facility"),
        "user"
    );
    wait_count(&base, "accepted", None, 12.0).await;
    assert_eq!(
        sample(
            &metrics_text_at(&base).await,
            "taillight_source_up{source=\"syslog\"}"
        ),
        1.0
    );
}

async fn util_linux_logger_in_every_framing(backend: Backend) {
    let (server, port) = syslog_server(backend, |_| {}).await;
    let app = unique("lg");
    let t = app.as_str();
    logger(port, &["-d", "-t", t, "-p", "local3.err", "udp rfc5424"]);
    logger(port, &["-T", "-t", t, "-p", "user.warning", "tcp lines"]);
    logger(port, &["-T", "--octet-count", "-t", t, "tcp counted"]);
    logger(
        port,
        &["-T", "--rfc3164", "--id=4242", "-t", t, "tcp rfc3164"],
    );
    logger(
        port,
        &[
            "-d",
            "--rfc3164",
            "-t",
            t,
            "-p",
            "daemon.debug",
            "udp rfc3164",
        ],
    );
    logger(
        port,
        &[
            "-T",
            "-t",
            t,
            "--msgid",
            "ID47",
            "--sd-id",
            "zoo@123",
            "--sd-param",
            "tiger=\"hungry\"",
            "--sd-param",
            "note=\"a \\\"quoted\\\" \\] \\\\ x\"",
            "with data",
        ],
    );
    let before = time::now_micros();
    let rs = wait_records(&server.http(), &only(&app), 6, WITHIN).await;
    let udp = find(&rs, "udp rfc5424");
    assert_eq!(udp.level, Level::Error as i32);
    assert_eq!(attr(udp, "syslog.facility"), "local3");
    assert!(!attr(udp, "host").is_empty());
    // RFC 5424 times are the sender's, with its offset.
    let sent = time::to_micros(&udp.time.expect("time"));
    assert!(
        (before - sent).abs() < 60_000_000,
        "time {sent} vs {before}"
    );
    assert_eq!(find(&rs, "tcp lines").level, Level::Warn as i32);
    assert_eq!(find(&rs, "tcp counted").level, Level::Info as i32);
    let bsd = find(&rs, "tcp rfc3164");
    assert_eq!(attr(bsd, "syslog.procid"), "4242");
    // RFC 3164 has no year and no zone: read as UTC this year.
    let sent = time::to_micros(&bsd.time.expect("time"));
    assert!((before - sent).abs() < 86_400_000_000, "time {sent}");
    assert_eq!(find(&rs, "udp rfc3164").level, Level::Debug as i32);
    let sd = find(&rs, "with data");
    assert_eq!(attr(sd, "syslog.msgid"), "ID47");
    assert_eq!(attr(sd, "zoo@123.tiger"), "hungry");
    assert_eq!(attr(sd, "zoo@123.note"), "a \"quoted\" ] \\ x");
    assert_eq!(attr(sd, "timeQuality.tzKnown"), "1");
}

/// Writes `bytes` on a new connection and closes it.
async fn send_tcp(port: u16, bytes: &[u8]) {
    let mut c = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    c.write_all(bytes).await.expect("write");
    c.shutdown().await.expect("shutdown");
}

async fn bad_input_is_counted_and_the_listener_goes_on(backend: Backend) {
    let (server, port) = syslog_server(backend, |s| {
        s.syslog_max_message_bytes = 4096;
        s.syslog_frame_timeout = Duration::from_secs(1);
    })
    .await;
    let app = unique("bad");
    let line = |m: &str| format!("<13>{app}: {m}\n").into_bytes();
    let megabyte = vec![b'x'; 1 << 20];
    let mut stream = Vec::new();
    // A 1 MB line, then a 1 MB octet-counted frame: each skipped, and the
    // message after each is read.
    stream.extend(format!("<13>{app}: ").as_bytes());
    stream.extend(&megabyte);
    stream.extend(b"\n");
    stream.extend(line("after a long line"));
    stream.extend(format!("{} ", megabyte.len()).as_bytes());
    stream.extend(&megabyte);
    let counted = format!("<13>{app}: after a long frame");
    stream.extend(format!("{} {counted}", counted.len()).as_bytes());
    // Not UTF-8, not syslog, a broken count, an entry over the intake's
    // limits (more attributes than --max-attributes).
    stream.extend(format!("<13>{app}: ").as_bytes());
    stream.extend(b"\xff\xfe bytes\n");
    stream.extend(b"hello, I am not syslog\n");
    stream.extend(b"12x not a count\n");
    let params: String = (0..70).map(|i| format!(" p{i}=\"v\"")).collect();
    stream.extend(format!("<13>1 - h {app} - - [many{params}] too many attributes\n").as_bytes());
    stream.extend(line("last on the connection"));
    send_tcp(port, &stream).await;

    // Half a message, then nothing: the server closes the connection after
    // the frame timeout.
    let mut stalled = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stalled.write_all(b"100 <13>half").await.expect("write");
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the stalled connection stayed open"
    );

    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let to = ("127.0.0.1", port);
    for datagram in [
        vec![b'y'; 5000],
        b"garbage".to_vec(),
        b"<13>x: \xc3\x28".to_vec(),
        line("over udp"),
    ] {
        udp.send_to(&datagram, to).await.expect("send");
    }
    let base = server.http();
    let rs = wait_records(&base, &only(&app), 4, WITHIN).await;
    let messages: Vec<&str> = rs.iter().map(|r| r.message.as_str()).collect();
    for m in [
        "after a long line",
        "after a long frame",
        "last on the connection",
        "over udp",
    ] {
        assert!(messages.contains(&m), "{m} missing from {messages:?}");
    }
    let want = [
        ("too_large", 3.0),
        ("not_utf8", 2.0),
        ("malformed", 2.0),
        ("bad_frame", 1.0),
        ("incomplete", 1.0),
        ("invalid", 1.0),
    ];
    for (reason, n) in want {
        wait_count(&base, "rejected", Some(reason), n).await;
    }
    assert_eq!(count(&base, "received", None).await, 14.0);

    // The listener is as it was.
    send_tcp(port, &line("still listening")).await;
    wait_records(&base, &only(&app), 5, WITHIN).await;
}

async fn a_flooding_sender_is_slowed_not_buffered(backend: Backend) {
    const N: usize = 30_000;
    let (server, port) = syslog_server(backend, |_| {}).await;
    let (tcp_app, udp_app, other) = (unique("flood-tcp"), unique("flood-udp"), unique("other"));
    let ops = json!([
        {"op": "flood", "port": port, "transport": "tcp", "ident": format!("{tcp_app}: "), "prefix": "t", "count": N},
    ]);
    let udp_ops = json!([
        {"op": "flood", "port": port, "transport": "udp", "ident": format!("{udp_app}: "), "prefix": "u", "count": N},
    ]);
    let tcp_flood = std::thread::spawn(move || python(&ops));
    let udp_flood = std::thread::spawn(move || python(&udp_ops));
    let base = server.http();
    // While it floods, others get through, and what the source holds stays
    // within its budget.
    let mut most_buffered = 0.0f64;
    let mut other_sent = false;
    while !(tcp_flood.is_finished() && udp_flood.is_finished()) {
        let text = metrics_text_at(&base).await;
        most_buffered = most_buffered.max(sample(&text, "taillight_syslog_buffered_bytes"));
        if !other_sent {
            send_tcp(port, format!("<11>{other}: during the flood\n").as_bytes()).await;
            other_sent = true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tcp_flood.join().expect("tcp flood");
    udp_flood.join().expect("udp flood");
    assert!(
        most_buffered <= (32 << 20) as f64,
        "{most_buffered} bytes buffered"
    );
    wait_records(&base, &only(&other), 1, WITHIN).await;
    // TCP loses nothing: the sender waited.
    let tcp = wait_records(&base, &only(&tcp_app), N, WITHIN).await;
    let mut seen = std::collections::HashSet::new();
    assert!(tcp.iter().all(|r| seen.insert(r.message.clone())));
    // UDP loses what arrives while the source is behind, and says so:
    // every message received is in the end accepted or counted lost.
    let deadline = Instant::now() + WITHIN;
    let (accepted, lost) = loop {
        let received = count(&base, "received", None).await;
        let accepted = count(&base, "accepted", None).await;
        let lost = count(&base, "lost", Some("backlog")).await;
        if received == accepted + lost {
            break (accepted, lost);
        }
        assert!(
            Instant::now() < deadline,
            "{received} received, {accepted} accepted, {lost} lost"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    server.settle().await;
    let udp_stored = common::query_all(&mut server.client().await, only(&udp_app))
        .await
        .len();
    eprintln!(
        "udp: {udp_stored} of {N} stored, {lost} counted lost; most buffered {most_buffered} bytes"
    );
    assert!(udp_stored <= N);
    assert_eq!(accepted, (N + 1 + udp_stored) as f64);
}

/// A cap on connections, idle ones closed, and a shutdown that does not
/// wait for open connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_idle_ones_closed() {
    let (server, port) = syslog_server(Backend::Embedded, |s| {
        s.syslog_max_connections = 2;
        s.syslog_idle_timeout = Duration::from_secs(2);
    })
    .await;
    let base = server.http();
    let connect = || TcpStream::connect(("127.0.0.1", port));
    let mut a = connect().await.expect("a");
    let b = connect().await.expect("b");
    a.write_all(b"<13>cap: from a\n").await.expect("write");
    wait_records(&base, &only("cap"), 1, WITHIN).await;
    let gauge = async || {
        sample(
            &metrics_text_at(&base).await,
            "taillight_syslog_connections",
        )
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge().await != 2.0 {
        assert!(Instant::now() < deadline, "b was never taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The third is closed at once.
    let mut c = connect().await.expect("c");
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "over the cap, yet open"
    );
    assert_eq!(
        count(&base, "rejected", Some("connection_limit")).await,
        1.0
    );
    // Silent ones are closed after the idle timeout, freeing their places.
    let closed = tokio::time::timeout(Duration::from_secs(10), a.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "idle, yet open");
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge().await != 0.0 {
        assert!(Instant::now() < deadline, "connections never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A connection held open (with half a message) does not hold up a
    // shutdown.
    let mut open = connect().await.expect("open");
    open.write_all(b"<13>cap: half").await.expect("write");
    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown waited"
    );
}
