//! `airlift mirror sync`: lists -> jobs -> plan -> execute -> report; and `airlift mirror
//! status`: the same plan, shown as what is present, missing or different at the target.

use std::time::Instant;

use anyhow::{Context, Result};

use airlift::registry::RegistryClient;
use airlift::transfer::{Sink, Source};
use airlift::{imagelist, mapping};

use super::{Status, UsageError};
use crate::cli::SyncArgs;
use crate::settings::SyncSettings;

/// What `sync` and `status` share: settings, the lists mapped to jobs, the client.
fn prepare(
    args: SyncArgs,
    quiet: bool,
) -> Result<(SyncSettings, Vec<mapping::ImageJob>, RegistryClient)> {
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
    Ok((settings, jobs, client))
}

/// Runs `mirror sync`.
pub async fn sync(args: SyncArgs, quiet: bool) -> Result<Status> {
    let started = Instant::now();
    let (settings, jobs, client) = prepare(args, quiet)?;
    let (source, sink) = (Source::Registry(client.clone()), Sink::Registry(client));

    let outcome = super::plan_and_run(
        &source,
        &sink,
        None,
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

/// What `mirror status` found for one image.
#[derive(Debug, serde::Serialize)]
struct ImageState {
    source: String,
    target: String,
    /// `present`, `missing`, `different` or `error`.
    status: &'static str,
    /// The digest the target should hold (the source's, or the filtered index's).
    digest: Option<airlift::Digest>,
    /// What the target's tag holds instead, when `different`.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_holds: Option<airlift::Digest>,
    /// Blobs and bytes still to copy, when not present.
    blobs_to_copy: usize,
    bytes_to_copy: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    origin: String,
}

/// Runs `mirror status`: plans as `sync --dry-run` does, then asks each target tag that is
/// not complete what it holds.
pub async fn status(args: SyncArgs, quiet: bool) -> Result<Status> {
    use std::io::Write;
    let (settings, jobs, client) = prepare(args, quiet)?;
    let (source, sink) = (
        Source::Registry(client.clone()),
        Sink::Registry(client.clone()),
    );
    let progress = crate::output::reporter(&settings.output);
    progress.start();
    let unreachable =
        super::check_registries(&source, &sink, &jobs, &settings.client, &progress).await?;
    if let Some((_, line)) = unreachable.iter().next() {
        progress.finish();
        anyhow::bail!("{line}");
    }
    super::prepare_credentials(&source, &sink, &jobs, &settings.output).await;
    progress.set_phase(&format!("checking {} images", jobs.len()));
    let plan = airlift::transfer::plan(
        &source,
        &sink,
        jobs,
        &settings.transfer,
        &airlift::report::NoReporter,
    )
    .await;
    progress.finish();
    let mut states = Vec::with_capacity(plan.images.len());
    for image in &plan.images {
        let target = &image.job.target;
        let (status, target_holds, error) = match (&image.error, image.complete) {
            (Some(e), _) => ("error", None, Some(airlift::transfer::error_chain(&**e))),
            (None, true) => ("present", None, None),
            (None, false) => {
                let repo = client.repo(target.registry(), target.repository());
                let locator = target
                    .tag()
                    .map(str::to_owned)
                    .or_else(|| image.target_digest.as_ref().map(ToString::to_string))
                    .unwrap_or_default();
                match repo.head_manifest(&locator).await {
                    Ok(Some(info)) if Some(&info.digest) != image.target_digest.as_ref() => {
                        ("different", Some(info.digest), None)
                    }
                    Ok(_) => ("missing", None, None),
                    Err(e) => ("error", None, Some(airlift::transfer::error_chain(&e))),
                }
            }
        };
        states.push(ImageState {
            source: image.job.source.to_string(),
            target: target.to_string(),
            status,
            digest: image.target_digest.clone(),
            target_holds,
            blobs_to_copy: image.missing.0,
            bytes_to_copy: image.missing.1,
            error,
            origin: image.job.origin.to_string(),
        });
    }
    let count = |s: &str| states.iter().filter(|i| i.status == s).count();
    if settings.output.json {
        crate::output::print_json_value(&serde_json::json!({ "images": states }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for i in &states {
            let detail = match i.status {
                "present" => String::new(),
                "missing" => format!(
                    " ({} blobs to copy, {})",
                    i.blobs_to_copy,
                    indicatif::HumanBytes(i.bytes_to_copy)
                ),
                "different" => format!(
                    " (holds {}, the list's is {})",
                    i.target_holds.as_ref().map(|d| d.short()).unwrap_or("-"),
                    i.digest.as_ref().map(|d| d.short()).unwrap_or("-")
                ),
                _ => format!(": {}", i.error.as_deref().unwrap_or("unknown error")),
            };
            writeln!(out, "{:<9} {} -> {}{detail}", i.status, i.source, i.target)?;
        }
    }
    if !settings.output.quiet {
        eprintln!(
            "{} present, {} missing, {} different, {} errors",
            count("present"),
            count("missing"),
            count("different"),
            count("error")
        );
    }
    Ok(if count("present") == states.len() {
        Status::Success
    } else {
        Status::Failed
    })
}
