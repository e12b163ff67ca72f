//! Progress display: indicatif bars on a terminal, or a plain line on stderr every few seconds
//! (for CI logs), fed by the engine's [`Reporter`] calls.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use airlift::Digest;
use airlift::report::{ImageReport, ImageStatus, PlanSummary, Reporter, volume_list};

use crate::cli::ProgressMode;

/// Counters shared by both displays.
#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    total_bytes: AtomicU64,
    images: AtomicUsize,
    images_done: AtomicUsize,
    images_failed: AtomicUsize,
    images_pending: AtomicUsize,
    in_flight: AtomicUsize,
}

/// The CLI's [`Reporter`].
pub struct Progress {
    mode: ProgressMode,
    counters: Arc<Counters>,
    bar: Option<ProgressBar>,
    started: Instant,
    ticker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// What happens before the plan is known ("connecting to X"), shown instead of byte
    /// counts that would read `0 B / 0 B`.
    phase: Arc<Mutex<Option<String>>>,
}

impl Progress {
    /// A display in `mode` (`Auto` already resolved by the caller).
    pub fn new(mode: ProgressMode) -> Self {
        let bar = (mode == ProgressMode::Bars).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(8));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            mode,
            counters: Arc::default(),
            bar,
            started: Instant::now(),
            ticker: Mutex::new(None),
            phase: Arc::default(),
        }
    }

    /// Starts the periodic plain lines (plain mode only); `interval` from
    /// `AIRLIFT_PROGRESS_INTERVAL` seconds, default 5.
    pub fn start(&self) {
        if self.mode != ProgressMode::Plain {
            return;
        }
        let secs = std::env::var("AIRLIFT_PROGRESS_INTERVAL")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(5.0);
        let (counters, started, phase) = (self.counters.clone(), self.started, self.phase.clone());
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(secs.max(0.1)));
            tick.tick().await;
            loop {
                tick.tick().await;
                let phase = phase.lock().expect("not poisoned").clone();
                match phase {
                    Some(phase) => {
                        eprintln!("progress: {phase}, {:.0}s", started.elapsed().as_secs_f64())
                    }
                    None => eprintln!("{}", plain_line(&counters, started)),
                }
            }
        });
        *self.ticker.lock().expect("not poisoned") = Some(handle);
    }

    /// Stops the display.
    pub fn finish(&self) {
        if let Some(h) = self.ticker.lock().expect("not poisoned").take() {
            h.abort();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// One line on what got done so far, for an interrupted run.
    pub fn summary(&self) -> String {
        let c = &self.counters;
        format!(
            "{} of {} images finished ({} failed), {} transferred in {:.1}s",
            c.images_done.load(Ordering::Relaxed),
            c.images.load(Ordering::Relaxed),
            c.images_failed.load(Ordering::Relaxed),
            HumanBytes(c.bytes.load(Ordering::Relaxed)),
            self.started.elapsed().as_secs_f64()
        )
    }

    /// Shows what happens before the plan is known (`connecting to X`, `planning N images`).
    pub fn set_phase(&self, phase: &str) {
        *self.phase.lock().expect("not poisoned") = Some(phase.to_owned());
        if let Some(bar) = &self.bar {
            bar.set_message(phase.to_owned());
            bar.enable_steady_tick(Duration::from_millis(125));
        }
    }

    /// A line above the progress (or in the log), e.g. a retry of a registry's first request.
    pub fn note(&self, line: &str) {
        self.println(line.to_owned());
    }

    fn println(&self, line: String) {
        // Lines carry names and errors from registries and bundles: escaped here, once.
        let line = airlift::escape::escape_lines(&line).into_owned();
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(line),
            (None, ProgressMode::None) => {}
            (None, _) => eprintln!("{line}"),
        }
    }

    fn update_message(&self) {
        if let Some(bar) = &self.bar {
            let c = &self.counters;
            bar.set_message(format!(
                "{}/{} images",
                c.images_done.load(Ordering::Relaxed),
                c.images.load(Ordering::Relaxed)
            ));
        }
    }
}

fn plain_line(c: &Counters, started: Instant) -> String {
    let elapsed = started.elapsed().as_secs_f64();
    let (bytes, total) = (
        c.bytes.load(Ordering::Relaxed),
        c.total_bytes.load(Ordering::Relaxed),
    );
    let pct = if total == 0 {
        100.0
    } else {
        (bytes as f64 * 100.0 / total as f64).min(100.0)
    };
    format!(
        "progress: {} / {} ({pct:.0}%) at {}/s, {}/{} images done ({} failed), {} blobs in flight, {elapsed:.0}s",
        HumanBytes(bytes),
        HumanBytes(total),
        HumanBytes((bytes as f64 / elapsed.max(0.001)) as u64),
        c.images_done.load(Ordering::Relaxed),
        c.images.load(Ordering::Relaxed),
        c.images_failed.load(Ordering::Relaxed),
        c.in_flight.load(Ordering::Relaxed),
    )
}

impl Reporter for Progress {
    fn on_plan(&self, plan: &PlanSummary) {
        *self.phase.lock().expect("not poisoned") = None;
        let c = &self.counters;
        c.total_bytes
            .store(plan.bytes_to_transfer, Ordering::Relaxed);
        c.images.store(plan.images, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(plan.bytes_to_transfer);
        }
        self.update_message();
        self.println(format!(
            "plan: {} images, {} blobs to copy ({}), {} already present ({})",
            plan.images,
            plan.blobs_to_transfer,
            HumanBytes(plan.bytes_to_transfer),
            plan.blobs_present,
            HumanBytes(plan.bytes_present)
        ));
    }

    fn on_blob_start(&self, _digest: &Digest, _size: u64) {
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    fn on_bytes(&self, n: u64) {
        self.counters.bytes.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn on_blob_retry(&self, digest: &Digest, _lost: u64, error: &str) {
        self.println(format!("retrying blob {}: {error}", digest.short()));
    }

    fn on_blob_replanned(&self, _digest: &Digest, size: u64, copied: bool) {
        let total = &self.counters.total_bytes;
        if copied {
            total.fetch_add(size, Ordering::Relaxed);
        } else {
            let _ = total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(size))
            });
        }
        if let Some(bar) = &self.bar {
            match copied {
                true => bar.inc_length(size),
                false => bar.dec_length(size),
            }
        }
    }

    fn on_blob_done(&self, _digest: &Digest, _size: u64) {
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn on_image_done(&self, image: &ImageReport) {
        let c = &self.counters;
        c.images_done.fetch_add(1, Ordering::Relaxed);
        let digest = image.digest.as_ref().map(|d| d.short()).unwrap_or("-");
        // `bundle create` records images under their listed names: no arrow to itself.
        let names = if image.source == image.target {
            image.source.clone()
        } else {
            format!("{} -> {}", image.source, image.target)
        };
        // Failures are printed once, by the summary at the end.
        let line = match image.status {
            ImageStatus::Failed => {
                c.images_failed.fetch_add(1, Ordering::Relaxed);
                None
            }
            ImageStatus::Pending => {
                c.images_pending.fetch_add(1, Ordering::Relaxed);
                Some(format!(
                    "pending: {}: waiting for volume(s) {}",
                    image.source,
                    volume_list(&image.pending_volumes)
                ))
            }
            ImageStatus::AlreadyPresent => Some(format!("already present: {names} ({digest})")),
            ImageStatus::Copied | ImageStatus::Planned => {
                Some(format!("copied: {names} ({digest})"))
            }
        };
        if let Some(line) = line {
            self.println(line);
        }
        self.update_message();
    }

    fn on_warning(&self, message: &str) {
        self.println(format!("warning: {message}"));
    }
}
