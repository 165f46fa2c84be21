//! The Python client example (clients/python): stubs generated from proto/
//! with grpcio-tools, the stdlib `logging` calls of an application, and a
//! TaillightHandler shipping them to a real server, in both modes.

mod common;

use std::process::Command;

use common::{Backend, TestServer, unique};
use taillight::proto::{Level, LogFilter};

backend_tests!(logging_records_arrive_through_the_handler);

async fn logging_records_arrive_through_the_handler(backend: Backend) {
    let server = TestServer::start(backend).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let stubs = tempfile::tempdir().expect("tmp");
    let status = Command::new("python3")
        .args(["-m", "grpc_tools.protoc", "-I", &format!("{root}/proto")])
        .arg(format!("--python_out={}", stubs.path().display()))
        .arg(format!("--grpc_python_out={}", stubs.path().display()))
        .arg(format!("{root}/proto/taillight/v1/logs.proto"))
        .status()
        .expect("grpcio-tools (tests/setup.sh installs it)");
    assert!(status.success(), "generating the stubs");
    let svc = unique("python");
    let out = Command::new("python3")
        .arg(format!("{root}/clients/python/example.py"))
        .env(
            "PYTHONPATH",
            format!("{root}/clients/python:{}", stubs.path().display()),
        )
        .env("TAILLIGHT_SERVER", server.addr.to_string())
        .env("TAILLIGHT_SERVICE", &svc)
        .output()
        .expect("python3");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(printed.trim(), "sent 4 dropped 0");
    server.settle().await;
    let mut c = server.client().await;
    let rs = common::query_all(
        &mut c,
        LogFilter {
            services: vec![svc],
            ..Default::default()
        },
    )
    .await;
    let got: Vec<(i32, &str)> = rs
        .iter()
        .map(|r| (r.level, r.message.lines().next().unwrap_or("")))
        .collect();
    assert_eq!(
        got,
        [
            (Level::Info as i32, "order placed"),
            (Level::Warn as i32, "card declined"),
            (Level::Error as i32, "total could not be computed"),
            (Level::Debug as i32, "done"),
        ]
    );
    assert_eq!(rs[0].attributes["order"], "42");
    assert_eq!(rs[0].attributes["logger"], "shop.checkout");
    assert_eq!(rs[1].tags, ["payments", "retry"]);
    assert!(
        rs[2].message.contains("ZeroDivisionError"),
        "{}",
        rs[2].message
    );
}
