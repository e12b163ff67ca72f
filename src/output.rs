//! Everything the user sees: progress (bars on a terminal, periodic plain lines otherwise),
//! the plan of a dry run, the final summary and the JSON report. The library never prints;
//! it calls the [`Reporter`] implemented here.

mod progress;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::HumanBytes;

use airlift::escape::escape_lines;
use airlift::report::{ImageStatus, Reporter, RunReport, volume_list};
use airlift::transfer::Plan;

pub use progress::Progress;

use crate::cli::ProgressMode;
use crate::settings::OutputSettings;

/// Picks the progress display for these settings.
pub fn reporter(settings: &OutputSettings) -> Arc<Progress> {
    let mode = match settings.progress {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bars,
        ProgressMode::Auto => ProgressMode::Plain,
        other => other,
    };
    Arc::new(Progress::new(mode).with_warnings(!settings.quiet))
}

/// Prints a dry run's plan on stdout.
pub fn print_plan(plan: &Plan) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let s = &plan.summary;
    writeln!(
        out,
        "plan: {} images{}, {} blobs to copy ({}), {} blobs already present ({}), {} manifests to write",
        s.images,
        match s.referrers {
            0 => String::new(),
            n => format!(" with {n} signatures, attestations or SBOMs"),
        },
        s.blobs_to_transfer,
        HumanBytes(s.bytes_to_transfer),
        s.blobs_present,
        HumanBytes(s.bytes_present),
        s.manifests
    )?;
    for image in &plan.images {
        let state = match (&image.error, image.complete) {
            (Some(e), _) => format!("error: {}", airlift::transfer::error_chain(&**e)),
            (None, true) => "complete at target".to_owned(),
            (None, false) => format!(
                "{} blobs to copy ({}), {} manifests",
                image.missing.0,
                HumanBytes(image.missing.1),
                image.manifests.len()
            ),
        };
        let digest = image
            .target_digest
            .as_ref()
            .map(|d| format!(" {}", d.short()))
            .unwrap_or_default();
        let what = match &image.referrer {
            Some(r) => format!(
                " ({} of {})",
                r.artifact_type.as_deref().unwrap_or("referrer"),
                r.subject.short()
            ),
            None => String::new(),
        };
        let line = format!(
            "  {} -> {}{digest}{what}: {state}",
            image.job.source, image.job.target
        );
        writeln!(out, "{}", escape_lines(&line))?;
    }
    Ok(())
}

/// Prints the JSON report on stdout.
pub fn print_json(report: &RunReport) -> std::io::Result<()> {
    print_json_value(report)
}

/// Set once a JSON document went to stdout: `--json` prints exactly one.
static JSON_PRINTED: AtomicBool = AtomicBool::new(false);

/// Prints any serialisable result as pretty JSON on stdout.
pub fn print_json_value<T: serde::Serialize>(value: &T) -> std::io::Result<()> {
    JSON_PRINTED.store(true, Ordering::Relaxed);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)
}

/// Whether a JSON document was printed already.
pub fn json_printed() -> bool {
    JSON_PRINTED.load(Ordering::Relaxed)
}

/// The JSON document of a run that ended in an error before it had a report:
/// `{"error": "...", "exit_code": N}`. A closed stdout is ignored (the exit code tells).
pub fn print_json_error(message: &str, exit_code: u8) {
    let doc = serde_json::json!({ "error": message, "exit_code": exit_code });
    let _ = print_json_value(&doc);
}

/// Prints the end of a run on stderr: one line of totals, then every failure once (its
/// error with causes), then for an incomplete `bundle load` the volumes still to load. With
/// `quiet` only the failures.
pub fn print_summary(report: &RunReport, quiet: bool) {
    // Images are counted apart from the signatures, attestations and SBOMs that came along.
    let count = |s, referrers: bool| {
        report
            .images
            .iter()
            .filter(|i| i.status == s && i.referrer_of.is_some() == referrers)
            .count()
    };
    let (copied, present, pending, failed) = (
        count(ImageStatus::Copied, false),
        count(ImageStatus::AlreadyPresent, false),
        count(ImageStatus::Pending, false),
        report.count(ImageStatus::Failed),
    );
    let referrers = count(ImageStatus::Copied, true) + count(ImageStatus::AlreadyPresent, true);
    let with_referrers = match referrers {
        0 => String::new(),
        n => format!(" (with {n} signatures, attestations or SBOMs)"),
    };
    if !quiet {
        let rate = report.bytes_transferred as f64 / report.seconds.max(0.001);
        let pending_part = if pending > 0 {
            format!(", {pending} pending")
        } else {
            String::new()
        };
        eprintln!(
            "{copied} images copied, {present} already present{with_referrers}{pending_part}, {failed} failed; {} blobs transferred ({}), {} already present ({}) in {:.1}s ({}/s)",
            report.blobs_transferred,
            HumanBytes(report.bytes_transferred),
            report.blobs_skipped,
            HumanBytes(report.bytes_skipped),
            report.seconds,
            HumanBytes(rate as u64),
        );
    }
    for line in failure_lines(report) {
        eprintln!("{}", escape_lines(&line));
    }
    if pending > 0 && !quiet {
        eprintln!(
            "{} images complete, {pending} pending: load volume(s) {}",
            copied + present,
            volume_list(&report.pending_volumes())
        );
    }
}

/// One line per failed image, in list order. Images failing for one cause share a line when
/// there are three or more of them (a registry that is down, credentials it rejects, one
/// cause of many blobs), and blobs failing for one cause are counted, not listed: "failed: 3
/// images (a (list:1), b and 1 more): 24 blobs: credentials for R were rejected".
fn failure_lines(report: &RunReport) -> Vec<String> {
    use airlift::report::ImageReport;
    let failed: Vec<&ImageReport> = report
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Failed)
        .collect();
    // The cause an image is grouped by: its registry's, else that of its first failed blob,
    // else its error.
    let key = |i: &ImageReport| {
        i.cause
            .clone()
            .or_else(|| i.failed_blobs.first().map(|(_, c)| c.clone()))
            .or_else(|| i.error.clone())
            .unwrap_or_else(|| "unknown error".to_owned())
    };
    // Distinct blobs of `images` failing for `cause`.
    let blobs = |images: &[&ImageReport], cause: &str| {
        images
            .iter()
            .flat_map(|i| &i.failed_blobs)
            .filter(|(_, c)| c == cause)
            .map(|(d, _)| d)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    // What failed: "N blobs: CAUSE" for several blobs, else for a group the registry-wide
    // cause, else the first image's whole error (which names the reference or blob).
    let what = |images: &[&ImageReport], cause: &str| match blobs(images, cause) {
        n if n >= 2 => format!("{n} blobs: {cause}"),
        _ if images.len() > 1 && images[0].cause.is_some() => cause.to_owned(),
        _ => images[0]
            .error
            .clone()
            .unwrap_or_else(|| "unknown error".to_owned()),
    };
    let mut shared: HashMap<String, Vec<&ImageReport>> = HashMap::new();
    for image in &failed {
        shared.entry(key(image)).or_default().push(image);
    }
    let mut lines = Vec::new();
    for image in &failed {
        let cause = key(image);
        match shared.get(&cause).map(Vec::as_slice) {
            Some(group @ [first, second, rest @ ..]) if !rest.is_empty() => {
                if std::ptr::eq(*first, *image) {
                    lines.push(format!(
                        "failed: {} images ({} ({}), {} and {} more): {}",
                        group.len(),
                        first.source,
                        first.origin,
                        second.source,
                        rest.len(),
                        what(group, &cause)
                    ));
                }
            }
            _ => lines.push(format!(
                "failed: {} ({}): {}",
                image.source,
                image.origin,
                what(&[image], &cause)
            )),
        }
    }
    lines
}

/// Ensures the reporter trait object is what the library expects.
pub fn as_reporter(p: &Arc<Progress>) -> Arc<dyn Reporter> {
    p.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift::Digest;
    use airlift::report::ImageReport;

    fn failed(source: &str, error: &str, blobs: &[(&str, &str)]) -> ImageReport {
        ImageReport {
            source: source.to_owned(),
            target: format!("site/{source}"),
            digest: None,
            source_digest: None,
            status: ImageStatus::Failed,
            error: Some(error.to_owned()),
            pending_volumes: Vec::new(),
            origin: format!("list:{}", source.len()),
            referrer_of: None,
            artifact_type: None,
            integrity_error: false,
            disk_full: false,
            cause: None,
            failed_blobs: blobs
                .iter()
                .map(|(content, cause)| (Digest::of(content.as_bytes()), (*cause).to_owned()))
                .collect(),
        }
    }

    fn report(images: Vec<ImageReport>) -> RunReport {
        RunReport {
            images,
            blobs_transferred: 0,
            blobs_skipped: 0,
            bytes_transferred: 0,
            bytes_skipped: 0,
            seconds: 0.0,
            missing_from_bundle: Vec::new(),
            volumes: Vec::new(),
        }
    }

    #[test]
    fn blobs_failing_for_one_cause_are_counted_once() {
        let denied = "HTTP 403 from R: quota exceeded";
        let r = report(vec![
            failed("a", "blob A failed: ...", &[("1", denied), ("2", denied)]),
            failed("b", "blob B failed: ...", &[("2", denied), ("3", denied)]),
            failed("c", "blob C failed: ...", &[("4", denied)]),
            failed("d", "cannot fetch manifest d: not found", &[]),
        ]);
        assert_eq!(
            failure_lines(&r),
            [
                format!("failed: 3 images (a (list:1), b and 1 more): 4 blobs: {denied}"),
                "failed: d (list:1): cannot fetch manifest d: not found".to_owned(),
            ]
        );
    }

    #[test]
    fn one_image_with_many_failed_blobs_says_how_many() {
        let r = report(vec![
            failed(
                "a",
                "blob A failed: x",
                &[("1", "reset"), ("2", "reset"), ("3", "other")],
            ),
            failed(
                "bb",
                "blob B failed: cannot copy blob B: reset",
                &[("4", "reset")],
            ),
        ]);
        // Two images are not a group; each says its own count or error.
        assert_eq!(
            failure_lines(&r),
            [
                "failed: a (list:1): 2 blobs: reset",
                "failed: bb (list:2): blob B failed: cannot copy blob B: reset",
            ]
        );
    }

    #[test]
    fn a_registry_cause_groups_images_and_a_lone_image_keeps_its_error() {
        let cause = "credentials for R were rejected";
        let mut images: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|s| {
                let mut i = failed(s, &format!("cannot fetch manifest {s}: {cause}"), &[]);
                i.cause = Some(cause.to_owned());
                i
            })
            .collect();
        assert_eq!(
            failure_lines(&report(images.clone())),
            [format!(
                "failed: 3 images (a (list:1), b and 1 more): {cause}"
            )]
        );
        images.truncate(1);
        assert_eq!(
            failure_lines(&report(images)),
            [format!(
                "failed: a (list:1): cannot fetch manifest a: {cause}"
            )]
        );
    }
}
