//! TLS on the one port, with real clients and a test CA: curl (HTTP/1.1 and
//! HTTP/2), grpcurl, the Python grpcio handler and the CLI; client
//! certificates; files that cannot be used stopping start-up; SIGHUP
//! reloading the certificate. The port never answers plaintext instead.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::process::Proc;
use common::tls::Certs;
use common::unique;

/// `taillight serve` with TLS from `certs`, plus `extra` flags.
fn serve_tls(certs: &Certs, data: &std::path::Path, extra: &[&str]) -> Proc {
    let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--data-dir"]
        .map(String::from)
        .to_vec();
    args.push(data.display().to_string());
    args.extend(["--tls-cert".into(), certs.cert.display().to_string()]);
    args.extend(["--tls-key".into(), certs.key.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Proc::spawn(&args)
}

fn port(p: &Proc) -> &str {
    p.addr.rsplit(':').next().expect("port")
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// curl with the test CA; the body, then the HTTP status on the last line.
fn curl(certs: &Certs, extra: &[&str]) -> (String, String) {
    let ca = certs.ca.display().to_string();
    let mut args = vec!["-sS", "--cacert", &ca, "-w", "\n%{http_code}"];
    args.extend(extra);
    let o = run("curl", &args);
    assert!(o.status.success(), "curl {extra:?}: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').expect("status line");
    (body.to_string(), code.to_string())
}

#[test]
fn http_grpc_python_and_the_cli_work_over_tls() {
    let certs = Certs::new();
    let data = tempfile::tempdir().expect("tmp");
    let server = serve_tls(&certs, data.path(), &[]);
    let base = format!("https://localhost:{}", port(&server));
    let svc = unique("tls");

    let (_, code) = curl(&certs, &[&format!("{base}/healthz")]);
    assert_eq!(code, "200");
    let push = format!(r#"{{"service":"{svc}","message":"over curl"}}"#);
    let (body, code) = curl(
        &certs,
        &["--http2", "-d", &push, &format!("{base}/v1/logs")],
    );
    assert_eq!(code, "200", "{body}");
    let (body, code) = curl(
        &certs,
        &["--http1.1", &format!("{base}/v1/logs?service={svc}")],
    );
    assert_eq!(code, "200");
    assert!(body.contains("over curl"), "{body}");

    let ca = certs.ca.display().to_string();
    let target = format!("localhost:{}", port(&server));
    let entry = format!(r#"{{"entry":{{"service":"{svc}","message":"over grpcurl"}}}}"#);
    let o = run(
        "grpcurl",
        &[
            "-cacert",
            &ca,
            "-d",
            &entry,
            &target,
            "taillight.v1.LogService/PushLog",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run("grpcurl", &["-cacert", &ca, &target, "list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("taillight.v1.LogService"),
        "{}",
        text(&o)
    );

    let printed = common::python_example(&target, &svc, &[("TAILLIGHT_CA_CERT", &ca)]);
    assert_eq!(printed.trim(), "sent 4 dropped 0 refused None");

    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", &base, "--ca-cert", &ca]);
        run(env!("CARGO_BIN_EXE_taillight"), &all)
    };
    let o = cli(&["push", "--service", &svc, "over the cli"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(&["query", "--service", &svc]);
    let out = String::from_utf8_lossy(&o.stdout);
    for m in ["over curl", "over grpcurl", "order placed", "over the cli"] {
        assert!(out.contains(m), "{m} missing from the query: {}", text(&o));
    }
}

#[test]
fn the_tls_port_answers_no_plaintext_and_no_unknown_certificate() {
    let certs = Certs::new();
    let data = tempfile::tempdir().expect("tmp");
    let server = serve_tls(&certs, data.path(), &[]);
    let p = port(&server);
    // Without the CA, curl cannot verify the server (exit 60).
    let o = run("curl", &["-sS", &format!("https://localhost:{p}/healthz")]);
    assert_eq!(o.status.code(), Some(60), "{}", text(&o));
    // Plaintext HTTP and gRPC get no answer, only a closed connection.
    let o = run(
        "curl",
        &[
            "-sS",
            "-m",
            "5",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{p}/healthz"),
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "000");
    let o = run(
        "grpcurl",
        &[
            "-plaintext",
            "-max-time",
            "5",
            &format!("127.0.0.1:{p}"),
            "list",
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn a_client_certificate_is_required_when_a_client_ca_is_set() {
    let certs = Certs::new();
    let data = tempfile::tempdir().expect("tmp");
    let ca = certs.ca.display().to_string();
    let server = serve_tls(&certs, data.path(), &["--tls-client-ca", &ca]);
    let base = format!("https://localhost:{}", port(&server));
    let o = run(
        "curl",
        &["-sS", "--cacert", &ca, &format!("{base}/healthz")],
    );
    assert!(!o.status.success(), "no client certificate: {}", text(&o));
    let (cert, key) = (
        certs.client_cert.display().to_string(),
        certs.client_key.display().to_string(),
    );
    let (_, code) = curl(
        &certs,
        &["--cert", &cert, "--key", &key, &format!("{base}/healthz")],
    );
    assert_eq!(code, "200");
    let svc = unique("mtls");
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--server",
            &base,
            "--ca-cert",
            &ca,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
        ]);
        run(env!("CARGO_BIN_EXE_taillight"), &all)
    };
    let o = cli(&["push", "--service", &svc, "with a client certificate"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(&["query", "--service", &svc]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("with a client certificate"),
        "{}",
        text(&o)
    );
}

#[test]
fn tls_files_that_cannot_be_used_stop_start_up() {
    let certs = Certs::new();
    let d = certs.dir.path();
    let garbage = d.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let (cert, key, client_key) = (
        certs.cert.display().to_string(),
        certs.key.display().to_string(),
        certs.client_key.display().to_string(),
    );
    let missing = d.join("missing.pem").display().to_string();
    let garbage = garbage.display().to_string();
    for (flags, says) in [
        (
            vec!["--tls-cert", &missing, "--tls-key", &key],
            format!("--tls-cert {missing}"),
        ),
        (
            vec!["--tls-cert", &garbage, "--tls-key", &key],
            format!("--tls-cert {garbage}"),
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &garbage],
            format!("--tls-key {garbage}"),
        ),
        // A key that is not the certificate's.
        (
            vec!["--tls-cert", &cert, "--tls-key", &client_key],
            "--tls-cert/--tls-key".into(),
        ),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-ca",
                &garbage,
            ],
            format!("--tls-client-ca {garbage}"),
        ),
        (vec!["--tls-cert", &cert], "--tls-key".into()),
    ] {
        let data = tempfile::tempdir().expect("tmp");
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().expect("utf-8"),
        ];
        args.extend(&flags);
        let o = Command::new(env!("CARGO_BIN_EXE_taillight"))
            .args(&args)
            .output()
            .expect("run taillight");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{flags:?} started: {err}");
        assert!(err.contains(&says), "{flags:?}: expected {says:?} in {err}");
        assert!(!err.contains("serving"), "{flags:?} served: {err}");
    }
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_it_when_the_new_one_is_bad() {
    let certs = Certs::new();
    let data = tempfile::tempdir().expect("tmp");
    let server = serve_tls(&certs, data.path(), &[]);
    let base = format!("https://localhost:{}", port(&server));
    let subject = || {
        let o = run(
            "curl",
            &[
                "-sv",
                "--cacert",
                &certs.ca.display().to_string(),
                &format!("{base}/healthz"),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        err.lines()
            .find_map(|l| l.trim().strip_prefix("*  subject: ").map(str::to_string))
            .unwrap_or_else(|| panic!("no subject in {err}"))
    };
    assert!(subject().contains("CN=localhost"));
    certs.reissue("renewed.localhost");
    let hup = || {
        let s = Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status();
        assert!(s.expect("kill").success());
    };
    hup();
    let renewed = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        subject().contains("CN=renewed.localhost")
    });
    assert!(renewed, "the certificate was not reloaded on SIGHUP");
    std::fs::write(&certs.key, "broken\n").expect("write");
    hup();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        subject().contains("CN=renewed.localhost"),
        "the certificate in force was kept"
    );
    let (metrics, _) = curl(&certs, &[&format!("{base}/metrics")]);
    assert!(
        metrics.contains("taillight_tls_reload_failures_total 1"),
        "{metrics}"
    );
}

/// Keys over TLS, with the clients a team would use: curl and grpcurl get
/// 401 / UNAUTHENTICATED without a key or with a wrong one, and work with
/// one.
#[test]
fn api_keys_are_checked_over_tls() {
    let certs = Certs::new();
    let data = tempfile::tempdir().expect("tmp");
    let file = certs.dir.path().join("keys.toml");
    let key = common::create_key(&file, &["--scope", "push,read", "--name", "tls-team"]);
    let keys = file.display().to_string();
    let server = serve_tls(&certs, data.path(), &["--keys-file", &keys]);
    let base = format!("https://localhost:{}", port(&server));
    let url = format!("{base}/v1/services");
    let (_, code) = curl(&certs, &[&url]);
    assert_eq!(code, "401");
    let (_, code) = curl(&certs, &["-H", "authorization: Bearer tl_wrong", &url]);
    assert_eq!(code, "401");
    let (body, code) = curl(
        &certs,
        &["-H", &format!("authorization: Bearer {key}"), &url],
    );
    assert_eq!(code, "200", "{body}");

    let ca = certs.ca.display().to_string();
    let target = format!("localhost:{}", port(&server));
    let method = "taillight.v1.LogService/ListServices";
    let o = run("grpcurl", &["-cacert", &ca, "-d", "{}", &target, method]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Unauthenticated"),
        "{}",
        text(&o)
    );
    let auth = format!("authorization: Bearer {key}");
    let o = run(
        "grpcurl",
        &["-cacert", &ca, "-H", &auth, "-d", "{}", &target, method],
    );
    assert!(o.status.success(), "{}", text(&o));
}
