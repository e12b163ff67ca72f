//! Everything the user sees: progress (bars on a terminal, periodic plain lines otherwise),
//! the plan of a dry run, the final summary and the JSON report. The library never prints;
//! it calls the [`Reporter`] implemented here.

mod progress;

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use indicatif::HumanBytes;

use airlift::escape::escape_lines;
use airlift::report::{ImageStatus, Reporter, RunReport};
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
    Arc::new(Progress::new(mode))
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

/// Prints any serialisable result as pretty JSON on stdout.
pub fn print_json_value<T: serde::Serialize>(value: &T) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)
}

/// Prints the one-paragraph summary on stderr.
pub fn print_summary(report: &RunReport) {
    let failed = report.failed();
    let ok = report
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Ok && i.referrer_of.is_none())
        .count();
    let referrers = report
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Ok && i.referrer_of.is_some())
        .count();
    let with_referrers = match referrers {
        0 => String::new(),
        n => format!(" with {n} signatures, attestations or SBOMs"),
    };
    let rate = report.bytes_transferred as f64 / report.seconds.max(0.001);
    eprintln!(
        "{ok} images copied{with_referrers}, {failed} failed; {} blobs transferred ({}), {} already present ({}) in {:.1}s ({}/s)",
        report.blobs_transferred,
        HumanBytes(report.bytes_transferred),
        report.blobs_skipped,
        HumanBytes(report.bytes_skipped),
        report.seconds,
        HumanBytes(rate as u64),
    );
    for image in report
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Failed)
    {
        let line = format!(
            "failed: {} ({}): {}",
            image.source,
            image.origin,
            image.error.as_deref().unwrap_or("unknown error")
        );
        eprintln!("{}", escape_lines(&line));
    }
}

/// Ensures the reporter trait object is what the library expects.
pub fn as_reporter(p: &Arc<Progress>) -> Arc<dyn Reporter> {
    p.clone()
}
