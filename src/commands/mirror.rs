//! `airlift mirror sync`: lists -> jobs -> plan -> execute -> report.

use std::time::Instant;

use anyhow::{Context, Result};

use airlift::registry::RegistryClient;
use airlift::transfer::{Sink, Source};
use airlift::{imagelist, mapping};

use super::{Status, UsageError};
use crate::cli::SyncArgs;
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

    let outcome = super::plan_and_run(
        &source,
        &sink,
        jobs,
        &settings.transfer,
        &settings.client,
        &settings.output,
        settings.dry_run,
        started,
    )
    .await?;
    match outcome {
        super::Outcome::Done(_, report) => {
            super::finish_run(&report, &settings.output, settings.dry_run)
        }
        super::Outcome::Interrupted => Ok(Status::Interrupted),
    }
}
