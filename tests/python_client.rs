//! The Python client example (clients/python): stubs generated from proto/
//! with grpcio-tools, the stdlib `logging` calls of an application, and a
//! TaillightHandler shipping them to a real server, in both modes.

mod common;

use common::{Backend, TestServer, unique};
use taillight::proto::{Level, LogFilter};

backend_tests!(logging_records_arrive_through_the_handler);

async fn logging_records_arrive_through_the_handler(backend: Backend) {
    let server = TestServer::start(backend).await;
    let svc = unique("python");
    let printed = run_example(&server, &svc, None);
    assert_eq!(printed.trim(), "sent 4 dropped 0 refused None");
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

/// Runs clients/python/example.py against `server` as service `svc`, with
/// the API key `key` if given; what it printed.
fn run_example(server: &TestServer, svc: &str, key: Option<&str>) -> String {
    let env: Vec<(&str, &str)> = key.map(|k| ("TAILLIGHT_KEY", k)).into_iter().collect();
    common::python_example(&server.addr.to_string(), svc, &env)
}

/// With keys required, the handler ships with a push key, and a key
/// without the push scope gets its batch refused (dropped and said why,
/// not retried forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_sends_its_api_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("keys.toml");
    let push = common::create_key(&file, &["--scope", "push", "--name", "py"]);
    let read = common::create_key(&file, &["--scope", "read", "--name", "reader"]);
    let admin = common::create_key(&file, &["--scope", "admin", "--name", "ops"]);
    let mut server = TestServer::start_with(Backend::Embedded, |c| {
        c.access.keys_file = Some(file.clone());
    })
    .await;
    server.admin_key = Some(admin);
    let svc = unique("pykey");
    assert_eq!(
        run_example(&server, &svc, Some(&push)).trim(),
        "sent 4 dropped 0 refused None"
    );
    let refused = run_example(&server, &svc, Some(&read));
    assert!(
        refused.starts_with(
            "sent 0 dropped 4 refused API key \"reader\" does not have the push scope"
        ),
        "{refused}"
    );
    let none = run_example(&server, &svc, None);
    assert!(none.contains("an API key is required"), "{none}");
}
