//! `airlift mirror sync`: lists -> jobs -> plan -> execute -> report.

use std::time::Instant;

use anyhow::{Context, Result};

use airlift::registry::RegistryClient;
use airlift::transfer::{self, Sink, Source};
use airlift::{imagelist, mapping};

use super::{Status, UsageError};
use crate::cli::SyncArgs;
use crate::output;
use crate::settings::SyncSettings;

/// Runs `mirror sync`.
pub async fn sync(args: SyncArgs, quiet: bool) -> Result<Status> {
    let started = Instant::now();
    let settings = SyncSettings::resolve(args, quiet).map_err(|e| UsageError(format!("{e:#}")))?;
    let entries = imagelist::load(&settings.lists)?;
    let jobs = mapping::resolve(
        &entries,
        settings.dest.as_ref(),
        settings.mode,
        &settings.platforms,
    )?;
    let client = RegistryClient::new(settings.client.clone())
        .context("cannot set up the registry client")?;
    let (source, sink) = (Source::Registry(client.clone()), Sink::Registry(client));

    let progress = output::reporter(&settings.output);
    let reporter = output::as_reporter(&progress);
    progress.start();
    let plan = transfer::plan(&source, &sink, jobs, &settings.transfer, &*reporter).await;

    let report = if settings.dry_run {
        progress.finish();
        if !settings.output.json {
            output::print_plan(&plan)?;
        }
        transfer::dry_run_report(&plan, started)
    } else {
        let run = transfer::execute(&source, &sink, plan, &settings.transfer, reporter, started);
        tokio::select! {
            report = run => {
                progress.finish();
                report
            }
            _ = tokio::signal::ctrl_c() => {
                progress.finish();
                eprintln!("interrupted: blobs already copied are kept; run the same command again to finish");
                return Ok(Status::Interrupted);
            }
        }
    };
    if settings.output.json {
        output::print_json(&report)?;
    }
    if !settings.output.quiet && !settings.dry_run {
        output::print_summary(&report);
    }
    let integrity = report.images.iter().any(|i| i.integrity_error);
    Ok(match report.failed() {
        0 => Status::Success,
        _ if integrity => Status::Integrity,
        _ => Status::Failed,
    })
}
