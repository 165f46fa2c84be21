use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use taillight::config::{Cli, Command};
use taillight::{cli, server};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// jemalloc for every allocation in the process, librdkafka's and SQLite's
/// included: it returns freed memory to the system in the background, where
/// glibc's per-thread arenas kept tens of MB above the live heap.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts. Freed pages go back to the
/// system after 100 ms instead of ten seconds, so RSS follows the live heap:
/// at 48k entries/s a one-second delay alone held RSS at 1.7 times the
/// active heap, since every batch frees megabytes within a second.
#[unsafe(export_name = "malloc_conf")]
static MALLOC_CONF: &[u8; 36] = b"dirty_decay_ms:100,muzzy_decay_ms:0\0";

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        // On a failed write (stderr on a full disk) the subscriber would
        // report it with eprintln!, which panics, in whichever task logged:
        // once that was the writer, and the pipeline ended for good. A log
        // line that cannot be written is dropped instead.
        .log_internal_errors(false)
        .init();
    let result: Result<(), String> = match args.command {
        Command::Serve(cfg) => serve(*cfg).await,
        Command::Push(a) => cli::push::run(a).await.map_err(|e| e.to_string()),
        Command::Tail(a) => cli::tail::run(a).await.map_err(|e| e.to_string()),
        Command::Query(a) => cli::query::run(a).await.map_err(|e| e.to_string()),
        Command::Services(a) => cli::services::run(a).await.map_err(|e| e.to_string()),
        Command::Restore(a) => cli::restore::run(*a).await.map_err(|e| e.to_string()),
        Command::Keys(a) => cli::keys::run(a).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!, which panics when stderr cannot be written.
            let _ = writeln!(std::io::stderr(), "taillight: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: taillight::config::ServeArgs) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    // Tests and scripts read the bound address (the port may have been 0).
    eprintln!(
        "taillight listening on {}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    server::run(listener, cfg, shutdown)
        .await
        .map_err(|e| e.to_string())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
