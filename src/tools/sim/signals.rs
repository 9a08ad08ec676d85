//! SIGTERM/SIGINT handling: stop accepting, give in-flight responses a moment, exit within 1 s.

use std::time::Duration;

use axum::Router;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::log;

/// Installed handlers for SIGTERM and SIGINT.
/// `sim.faults.<ROLE>.ignore_sigterm`: SIGTERM is logged and ignored (SIGINT still works).
pub static IGNORE_SIGTERM: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub struct ShutdownSignals {
    term: Signal,
    int: Signal,
}

/// Installs the handlers (do this before publishing the address, so an early SIGTERM is caught).
pub fn listen() -> std::io::Result<ShutdownSignals> {
    Ok(ShutdownSignals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
    })
}

impl ShutdownSignals {
    /// Resolves with the signal's name when one arrives.
    pub async fn recv(&mut self) -> &'static str {
        loop {
            tokio::select! {
                _ = self.term.recv() => {
                    if IGNORE_SIGTERM.load(std::sync::atomic::Ordering::Relaxed) {
                        log::warn("[sim] fault injection: ignore_sigterm; SIGTERM ignored");
                        continue;
                    }
                    return "SIGTERM";
                }
                _ = self.int.recv() => return "SIGINT",
            }
        }
    }
}

/// How long in-flight responses get after a stop signal before the process exits.
const GRACE: Duration = Duration::from_millis(500);

/// Serves `app` on `listener` until a signal arrives; `on_signal` runs first (e.g. stopping the
/// engine so open streams end now instead of at the grace deadline). Returns the exit code (0).
pub async fn serve_until_signal(
    listener: std::net::TcpListener,
    app: Router,
    mut signals: ShutdownSignals,
    on_signal: impl FnOnce(),
) -> u8 {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log::error(&format!("[sim] cannot listen: {e}"));
            return 1;
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .into_future(),
    );
    let name = signals.recv().await;
    log::info(&format!("[sim] received {name}; shutting down"));
    on_signal();
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(GRACE, server).await;
    log::info("[sim] shutdown complete");
    0
}

/// Runs `serve` on a multi-threaded runtime with SIGTERM/SIGINT handlers installed; start-up
/// failures are logged and give exit status 1.
pub fn run_server<F, Fut>(serve: F) -> u8
where
    F: FnOnce(ShutdownSignals) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            super::log::error(&format!("[sim] cannot start the async runtime: {e}"));
            return 1;
        }
    };
    runtime.block_on(async move {
        match listen() {
            Ok(signal) => serve(signal).await,
            Err(e) => {
                super::log::error(&format!("[sim] cannot install signal handlers: {e}"));
                1
            }
        }
    })
}
