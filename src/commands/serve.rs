//! `airlift bundle serve`: open the volumes, bind, print where, serve until SIGINT/SIGTERM.

use std::sync::Arc;

use anyhow::{Context, Result};
use indicatif::HumanBytes;

use airlift::bundle::BundleStore;
use airlift::escape::escape;
use airlift::serve::{Access, AccessLog, Server};

use super::{Status, UsageError};
use crate::cli::BundleServeArgs;
use crate::settings::ServeSettings;

/// Access log lines on stderr: `PEER "METHOD TARGET" STATUS BYTES MS`, the target escaped.
struct StderrLog;

impl AccessLog for StderrLog {
    fn request(&self, a: &Access) {
        eprintln!(
            "{} \"{} {}\" {} {} {}ms",
            a.peer,
            escape(&a.method),
            escape(&a.target),
            a.status,
            a.bytes,
            a.elapsed.as_millis()
        );
    }
}

/// No access log (`-q`).
struct NoLog;

impl AccessLog for NoLog {
    fn request(&self, _: &Access) {}
}

/// Runs the server; exit 0 once stopped by a signal.
pub async fn serve(args: BundleServeArgs, quiet: bool) -> Result<Status> {
    let s = ServeSettings::resolve(args).map_err(|e| UsageError(format!("{e:#}")))?;
    let volumes = s.volumes.clone();
    let store = tokio::task::spawn_blocking(move || BundleStore::open(&volumes))
        .await
        .context("opening the bundle stopped")?
        .with_context(|| format!("cannot open bundle {}", s.volumes[0].display()))?;
    let server = Server::bind(store, &s.options).await?;
    let repos = server.repositories();
    for skipped in &repos.skipped {
        eprintln!(
            "not serving {}: {}",
            escape(&skipped.source),
            escape(&skipped.reason)
        );
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut referrers = String::new();
    if repos.referrers > 0 {
        referrers = format!(
            " (with {} of them)",
            plural(
                repos.referrers,
                "signature, attestation or SBOM",
                "signatures, attestations and SBOMs"
            )
        );
    }
    eprintln!(
        "serving {} from {} on {}{referrers}",
        plural(repos.images, "image", "images"),
        plural(server.volumes(), "volume", "volumes"),
        server.url()
    );
    let log: Arc<dyn AccessLog> = if quiet {
        Arc::new(NoLog)
    } else {
        Arc::new(StderrLog)
    };
    let stats = server.run(log, shutdown_signal()).await;
    eprintln!(
        "stopped: {} served ({})",
        plural(stats.requests as usize, "request", "requests"),
        HumanBytes(stats.bytes)
    );
    Ok(Status::Success)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM ({e}); stop the server with Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
