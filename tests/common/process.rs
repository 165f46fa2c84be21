//! Child processes for tests that need a real `taillight serve` (kill -9)
//! or a Redis of their own (outages).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use taillight::config::ServeArgs;

use super::free_port;

/// How long a private Redis may take to answer after starting.
const PROMPT: Duration = Duration::from_secs(10);

/// The flags that make a `taillight serve` child process join the same
/// backends as `cfg`.
pub fn serve_args(cfg: &ServeArgs, role: &str) -> Vec<String> {
    let mut args = vec![
        "serve".to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--role".into(),
        role.into(),
        "--data-dir".into(),
        cfg.store.sqlite.data_dir.display().to_string(),
        "--kafka-topic".into(),
        cfg.queue.kafka.kafka_topic.clone(),
        "--kafka-group".into(),
        cfg.queue.kafka.kafka_group.clone(),
        "--kafka-partitions".into(),
        cfg.queue.kafka.kafka_partitions.to_string(),
        "--kafka-session-timeout".into(),
        format!("{}ms", cfg.queue.kafka.kafka_session_timeout.as_millis()),
        "--redis-channel".into(),
        cfg.bus.redis_channel.clone(),
        "--redis-prefix".into(),
        cfg.bus.redis_prefix.clone(),
    ];
    for (flag, v) in [
        ("--kafka-brokers", &cfg.queue.kafka.kafka_brokers),
        ("--database-url", &cfg.store.mysql.database_url),
        ("--redis-url", &cfg.bus.redis_url),
        ("--archive-s3-url", &cfg.sinks.archive.archive_s3_url),
    ] {
        if let Some(v) = v {
            args.push(flag.into());
            args.push(v.clone());
        }
    }
    let a = &cfg.sinks.archive;
    if let Some(dir) = &a.archive_dir {
        args.extend([
            "--archive-dir".into(),
            dir.display().to_string(),
            "--archive-period".into(),
            format!("{}s", a.archive_period.as_secs()),
        ]);
    }
    args
}

/// A `taillight serve` child process, killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub addr: String,
}

impl Proc {
    pub fn spawn(args: &[String]) -> Proc {
        Proc::spawn_with(args, &[])
    }

    /// Starts `taillight ARGS` with `env` added, and waits until it listens.
    pub fn spawn_with(args: &[String], env: &[(String, String)]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_taillight"))
            .args(args)
            .env("TAILLIGHT_LOG", "warn,taillight::sinks=info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn taillight");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                // Shown with the test's output when it fails.
                eprintln!("[child] {line}");
                if let Some(addr) = line.strip_prefix("taillight listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child never listened");
        Proc { child, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM, and waits for a graceful exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(Duration::from_secs(60));
    }

    /// Waits for the process to exit by itself; its status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "child did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` of our own, killed when the test ends however it ends.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let port = free_port();
        let mut redis = PrivateRedis { port, child: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port) and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("run redis-server (is it installed?)");
        self.child = Some(child);
        let client = ::redis::Client::open(self.url()).expect("url");
        let start = Instant::now();
        loop {
            if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200))
                && ::redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return;
            }
            assert!(start.elapsed() < PROMPT, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the kernel closes its sockets, nothing is flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP or SIGCONT: a frozen server keeps its sockets open but never
    /// answers, as a vanished host looks to the client.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `mariadbd` of our own on its own data directory and port (no grant
/// tables: root needs no password), killed when dropped. `flags` are added
/// to its command line (TLS, say).
pub struct PrivateMariaDb {
    pub port: u16,
    dir: std::path::PathBuf,
    flags: Vec<String>,
    child: Option<Child>,
}

impl PrivateMariaDb {
    /// Makes its data directory under `dir` and starts it.
    pub fn install(dir: &std::path::Path, flags: &[String]) -> Self {
        let out = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--skip-test-db"])
            .arg(format!("--datadir={}", dir.join("db").display()))
            .output()
            .expect("mariadb-install-db");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut db = PrivateMariaDb {
            port: free_port(),
            dir: dir.to_path_buf(),
            flags: flags.to_vec(),
            child: None,
        };
        db.start();
        db
    }

    /// Its Unix socket, for the mariadb client.
    pub fn socket(&self) -> String {
        self.dir.join("sock").display().to_string()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts it (again, on its data) and waits until it listens.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("mariadbd")
            .args([
                "--no-defaults",
                "--user=root",
                "--skip-grant-tables",
                "--bind-address=127.0.0.1",
            ])
            .arg(format!("--datadir={}", self.dir.join("db").display()))
            .arg(format!("--socket={}", self.socket()))
            .arg(format!("--port={}", self.port))
            .args(&self.flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mariadbd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: what is committed stays, nothing else.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the Python script `tests/<script>` with `args`, extra `env` and
/// `input` on its stdin, failing the test with its stderr if it fails; its
/// stdout.
pub fn python(script: &str, args: &[&str], env: &[(&str, &str)], input: &str) -> String {
    use std::io::Write;
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(&path)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect(script);
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The resident set of process `pid` in bytes (VmRSS of /proc/PID/status);
/// `None` once it has exited.
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb << 10)
}

/// The open file descriptors of process `pid` (sockets, the database, its
/// journal).
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count()
}
