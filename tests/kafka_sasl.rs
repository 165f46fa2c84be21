//! SASL to the broker through `--kafka-option`: a tansu broker that
//! requires SCRAM-SHA-512 logins, and an ingest node that logs in with
//! librdkafka's own properties and has its pushes acknowledged.
//! (tansu 0.6.0 cannot serve TLS, its --cert and --key flags conflict, and
//! with SCRAM users its SQLite storage fails consumer groups; so the writer
//! side and TLS to Kafka are not tested here.)

mod common;

use std::process::{Child, Command, Stdio};

use common::process::Proc;
use common::{free_port, mysql_url, unique, wait_for_port};

/// A tansu broker on SQLite in `dir`, killed when dropped.
struct Broker(Child);

impl Broker {
    fn start(port: u16, dir: &std::path::Path, auth: bool) -> Self {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new("tansu");
        cmd.current_dir(dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            // tansu resolves the file relative to its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if auth {
            cmd.arg("--authentication");
        }
        let broker = Broker(cmd.spawn().expect("tansu (tests/run.sh installs it)"));
        wait_for_port(port, "tansu");
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_node_logs_in_to_the_broker_with_scram() {
    let dir = tempfile::tempdir().expect("tmp");
    // Users can only be made while the broker lets anyone in.
    let port = free_port();
    let open = Broker::start(port, dir.path(), false);
    let made = Command::new("tansu")
        .args([
            "user",
            "create",
            "--broker",
            &format!("tcp://127.0.0.1:{port}"),
        ])
        .args(["taillight", "s3cret-pw"])
        .output()
        .expect("tansu user create");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    drop(open);
    let port = free_port();
    let _broker = Broker::start(port, dir.path(), true);

    let data = tempfile::tempdir().expect("tmp");
    let topic = unique("sasl");
    let db = unique("sasl").replace('-', "_");
    let database = format!("{}/{db}", mysql_url());
    let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--role", "ingest"]
        .map(String::from)
        .to_vec();
    for (flag, value) in [
        ("--data-dir", data.path().display().to_string()),
        ("--kafka-brokers", format!("127.0.0.1:{port}")),
        ("--kafka-topic", topic),
        ("--database-url", database),
    ] {
        args.extend([flag.to_string(), value]);
    }
    // From the environment, as a deployment would pass a password.
    let env = [(
        "TAILLIGHT_KAFKA_OPTIONS".to_string(),
        "security.protocol=SASL_PLAINTEXT;sasl.mechanism=SCRAM-SHA-512;\
         sasl.username=taillight;sasl.password=s3cret-pw"
            .to_string(),
    )];
    let node = Proc::spawn_with(&args, &env);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/logs", node.url()))
        .body(r#"[{"service":"sasl","message":"one"},{"service":"sasl","message":"two"}]"#)
        .send()
        .await
        .expect("push");
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    drop(node);
    common::drop_database(&db);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"accepted\":2"), "{body}");
}
