//! Progress display: indicatif bars on a terminal, or a plain line on stderr every few seconds
//! (for CI logs), fed by the engine's [`Reporter`] calls. On a terminal each finished image is
//! one line above the bars, and a large image gets a bar of its own (advanced as its blobs
//! complete) under which the overall bar stays.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use airlift::Digest;
use airlift::report::{ImagePlan, ImageReport, ImageStatus, PlanSummary, Reporter, volume_list};

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

/// Images moving at least this many bytes get a bar of their own on a terminal.
const LARGE_IMAGE: u64 = 32 << 20;
/// At most this many image bars at once; another large image gets one when a bar is gone.
const MAX_IMAGE_BARS: usize = 4;

/// A large image's progress: bytes of its blobs completed out of those it needs moved.
struct ImageBar {
    source: String,
    target: String,
    total: u64,
    /// Blobs completed (a blob shared by images counts for each).
    done: HashSet<Digest>,
    moved: u64,
    /// Bytes arrived so far of its blobs in flight.
    partial: HashMap<Digest, u64>,
    bar: Option<ProgressBar>,
    finished: bool,
}

impl ImageBar {
    /// Shows what moved: the blobs done and the bytes of those in flight.
    fn show(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.moved + self.partial.values().sum::<u64>());
        }
    }
}

/// The large images of the run, and which of them each blob belongs to.
#[derive(Default)]
struct ImageBars {
    images: Vec<ImageBar>,
    by_blob: HashMap<Digest, Vec<usize>>,
}

/// The CLI's [`Reporter`].
pub struct Progress {
    mode: ProgressMode,
    counters: Arc<Counters>,
    /// The terminal display holding the overall bar and the image bars.
    multi: Option<MultiProgress>,
    bar: Option<ProgressBar>,
    images: Mutex<ImageBars>,
    started: Instant,
    ticker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// What happens before the plan is known ("connecting to X"), shown instead of byte
    /// counts that would read `0 B / 0 B`.
    phase: Arc<Mutex<Option<String>>>,
    /// Whether warnings are printed when there is no progress display (`--progress none`
    /// without `-q`).
    warnings: bool,
}

impl Progress {
    /// A display in `mode` (`Auto` already resolved by the caller).
    pub fn new(mode: ProgressMode) -> Self {
        Progress::with_target(mode, ProgressDrawTarget::stderr_with_hz(8))
    }

    /// A display in `mode` drawing its bars to `target`.
    fn with_target(mode: ProgressMode, target: ProgressDrawTarget) -> Self {
        let multi = (mode == ProgressMode::Bars).then(|| MultiProgress::with_draw_target(target));
        let bar = multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(0));
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
            multi,
            bar,
            images: Mutex::default(),
            started: Instant::now(),
            ticker: Mutex::new(None),
            phase: Arc::default(),
            warnings: mode != ProgressMode::None,
        }
    }

    /// Prints warnings even with no progress display (`--progress none`); `-q` keeps them off.
    pub fn with_warnings(mut self, on: bool) -> Self {
        self.warnings = on;
        self
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
        for image in &mut self.images.lock().expect("not poisoned").images {
            if let Some(bar) = image.bar.take() {
                bar.finish_and_clear();
            }
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
        match (&self.multi, self.mode) {
            (Some(multi), _) => {
                let _ = multi.println(line);
            }
            (None, ProgressMode::None) => {}
            (None, _) => eprintln!("{line}"),
        }
    }

    /// Gives the large images that `digest` belongs to a bar, while fewer than
    /// [`MAX_IMAGE_BARS`] are shown.
    fn show_image_bars(&self, bars: &mut ImageBars, digest: &Digest) {
        let (Some(multi), Some(main)) = (&self.multi, &self.bar) else {
            return;
        };
        let mut shown = bars.images.iter().filter(|i| i.bar.is_some()).count();
        for &i in bars
            .by_blob
            .get(digest)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let image = &mut bars.images[i];
            if image.bar.is_some() || image.finished || shown >= MAX_IMAGE_BARS {
                continue;
            }
            let bar = multi.insert_before(main, ProgressBar::new(image.total));
            bar.set_style(
                ProgressStyle::with_template("  {wide_msg} {bar:30} {bytes}/{total_bytes}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(airlift::escape::escape_lines(&image.source).into_owned());
            bar.set_position(image.moved);
            image.bar = Some(bar);
            shown += 1;
        }
    }

    /// The image bars shown: (source, position, length).
    #[cfg(test)]
    fn image_bars(&self) -> Vec<(String, u64, u64)> {
        let bars = self.images.lock().expect("not poisoned");
        bars.images
            .iter()
            .filter_map(|i| {
                let bar = i.bar.as_ref()?;
                Some((i.source.clone(), bar.position(), bar.length().unwrap_or(0)))
            })
            .collect()
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

    fn on_images(&self, images: &[ImagePlan]) {
        if self.multi.is_none() {
            return;
        }
        let mut bars = self.images.lock().expect("not poisoned");
        for image in images {
            let total: u64 = image.blobs.iter().map(|(_, size)| size).sum();
            if total < LARGE_IMAGE {
                continue;
            }
            let index = bars.images.len();
            for (digest, _) in &image.blobs {
                bars.by_blob.entry(digest.clone()).or_default().push(index);
            }
            bars.images.push(ImageBar {
                source: image.source.clone(),
                target: image.target.clone(),
                total,
                done: HashSet::new(),
                moved: 0,
                partial: HashMap::new(),
                bar: None,
                finished: false,
            });
        }
    }

    fn on_blob_start(&self, digest: &Digest, _size: u64) {
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        if self.multi.is_some() {
            let mut bars = self.images.lock().expect("not poisoned");
            self.show_image_bars(&mut bars, digest);
        }
    }

    fn on_bytes(&self, n: u64) {
        self.counters.bytes.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn on_blob_bytes(&self, digest: &Digest, n: u64) {
        self.on_bytes(n);
        if self.multi.is_none() {
            return;
        }
        // The bars of the large images this blob belongs to move with its bytes; its
        // `on_blob_done` settles them at the sum of the blobs done.
        let mut bars = self.images.lock().expect("not poisoned");
        let ImageBars { images, by_blob } = &mut *bars;
        for &i in by_blob.get(digest).map(Vec::as_slice).unwrap_or_default() {
            let image = &mut images[i];
            if image.bar.is_some() && !image.done.contains(digest) {
                *image.partial.entry(digest.clone()).or_default() += n;
                image.show();
            }
        }
    }

    fn on_blob_retry(&self, digest: &Digest, _lost: u64, error: &str) {
        self.println(format!("retrying blob {}: {error}", digest.short()));
        // A whole-blob retry starts its bytes again.
        let mut bars = self.images.lock().expect("not poisoned");
        let ImageBars { images, by_blob } = &mut *bars;
        for &i in by_blob.get(digest).map(Vec::as_slice).unwrap_or_default() {
            if images[i].partial.remove(digest).is_some() {
                images[i].show();
            }
        }
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

    fn on_blob_done(&self, digest: &Digest, size: u64) {
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.multi.is_none() {
            return;
        }
        let mut bars = self.images.lock().expect("not poisoned");
        // A bundle load reports blobs done only: a bar appears with its image's first one.
        self.show_image_bars(&mut bars, digest);
        let ImageBars { images, by_blob } = &mut *bars;
        for &i in by_blob.get(digest).map(Vec::as_slice).unwrap_or_default() {
            let image = &mut images[i];
            if image.done.insert(digest.clone()) {
                image.moved += size;
                image.partial.remove(digest);
                image.show();
            }
        }
    }

    fn on_image_done(&self, image: &ImageReport) {
        if let Some(multi) = &self.multi {
            let mut bars = self.images.lock().expect("not poisoned");
            let done = bars
                .images
                .iter_mut()
                .find(|i| !i.finished && i.source == image.source && i.target == image.target);
            if let Some(done) = done {
                done.finished = true;
                if let Some(bar) = done.bar.take() {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
            }
        }
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
        let line = format!("warning: {message}");
        match (&self.multi, self.mode) {
            (None, ProgressMode::None) if self.warnings => {
                eprintln!("{}", airlift::escape::escape_lines(&line));
            }
            _ => self.println(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(source: &str, blobs: &[(&str, u64)]) -> ImagePlan {
        ImagePlan {
            source: source.to_owned(),
            target: format!("site/{source}"),
            blobs: blobs
                .iter()
                .map(|(content, size)| (Digest::of(content.as_bytes()), *size))
                .collect(),
        }
    }

    fn report(source: &str) -> ImageReport {
        ImageReport {
            source: source.to_owned(),
            target: format!("site/{source}"),
            digest: None,
            source_digest: None,
            status: ImageStatus::Copied,
            error: None,
            pending_volumes: Vec::new(),
            origin: "list:1".to_owned(),
            referrer_of: None,
            artifact_type: None,
            integrity_error: false,
            disk_full: false,
            cause: None,
            failed_blobs: Vec::new(),
        }
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn large_images_get_a_bar_while_they_move() {
        let p = Progress::with_target(ProgressMode::Bars, ProgressDrawTarget::hidden());
        p.on_images(&[
            plan("big", &[("shared", 40 * MIB), ("big-only", 24 * MIB)]),
            plan("also-big", &[("shared", 40 * MIB)]),
            plan("small", &[("shared-small", MIB)]),
        ]);
        assert!(p.image_bars().is_empty(), "no bar before a blob moves");
        let d = |s: &str| Digest::of(s.as_bytes());
        p.on_blob_start(&d("big-only"), 24 * MIB);
        assert_eq!(p.image_bars(), [("big".to_owned(), 0, 64 * MIB)]);
        p.on_blob_done(&d("big-only"), 24 * MIB);
        // A blob shared by two large images moves both.
        p.on_blob_start(&d("shared"), 40 * MIB);
        p.on_blob_done(&d("shared"), 40 * MIB);
        assert_eq!(
            p.image_bars(),
            [
                ("big".to_owned(), 64 * MIB, 64 * MIB),
                ("also-big".to_owned(), 40 * MIB, 40 * MIB)
            ]
        );
        // A small image never gets one; a finished image's bar goes.
        p.on_blob_start(&d("shared-small"), MIB);
        p.on_image_done(&report("big"));
        p.on_image_done(&report("small"));
        assert_eq!(
            p.image_bars(),
            [("also-big".to_owned(), 40 * MIB, 40 * MIB)]
        );
        p.finish();
        assert!(p.image_bars().is_empty());
    }

    #[test]
    fn an_image_bar_moves_with_the_bytes_of_its_blobs() {
        let p = Progress::with_target(ProgressMode::Bars, ProgressDrawTarget::hidden());
        p.on_images(&[plan("one-layer", &[("layer", 768 * MIB), ("config", 1024)])]);
        let (layer, config) = (Digest::of(b"layer"), Digest::of(b"config"));
        p.on_blob_start(&layer, 768 * MIB);
        p.on_blob_start(&config, 1024);
        for _ in 0..3 {
            p.on_blob_bytes(&layer, 100 * MIB);
        }
        p.on_blob_bytes(&config, 1000);
        let total = 768 * MIB + 1024;
        assert_eq!(
            p.image_bars(),
            [("one-layer".to_owned(), 300 * MIB + 1000, total)]
        );
        // Done settles at the blob's size; a retried blob starts its bytes again.
        p.on_blob_done(&config, 1024);
        p.on_blob_retry(&layer, 0, "connection reset");
        p.on_blob_bytes(&layer, MIB);
        assert_eq!(
            p.image_bars(),
            [("one-layer".to_owned(), MIB + 1024, total)]
        );
        p.on_blob_bytes(&layer, 767 * MIB);
        p.on_blob_done(&layer, 768 * MIB);
        assert_eq!(p.image_bars(), [("one-layer".to_owned(), total, total)]);
    }

    #[test]
    fn at_most_a_few_image_bars_at_once() {
        let p = Progress::with_target(ProgressMode::Bars, ProgressDrawTarget::hidden());
        let names: Vec<String> = (0..6).map(|i| format!("image-{i}")).collect();
        let plans: Vec<ImagePlan> = names
            .iter()
            .map(|n| plan(n, &[(n.as_str(), 100 * MIB)]))
            .collect();
        p.on_images(&plans);
        for n in &names {
            p.on_blob_start(&Digest::of(n.as_bytes()), 100 * MIB);
        }
        assert_eq!(p.image_bars().len(), MAX_IMAGE_BARS);
        // One finishes: the next blob event of a waiting image shows its bar.
        p.on_image_done(&report("image-0"));
        p.on_blob_done(&Digest::of(b"image-5"), 100 * MIB);
        let shown: Vec<String> = p.image_bars().into_iter().map(|b| b.0).collect();
        assert_eq!(shown, ["image-1", "image-2", "image-3", "image-5"]);
    }

    #[test]
    fn plain_mode_keeps_no_image_bars() {
        let p = Progress::with_target(ProgressMode::Plain, ProgressDrawTarget::hidden());
        p.on_images(&[plan("big", &[("x", 100 * MIB)])]);
        p.on_blob_start(&Digest::of(b"x"), 100 * MIB);
        assert!(p.image_bars().is_empty());
    }
}
