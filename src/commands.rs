//! One file per command; this one dispatches and defines the exit statuses.

mod bundle;
mod config;
mod login;
mod mirror;
mod serve;

use anyhow::Result;

use airlift::report::RunReport;

use crate::cli::{BundleCommand, Cli, Command, MirrorCommand};
use crate::output;
use crate::settings::OutputSettings;

/// What a command ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything worked.
    Success = 0,
    /// Some images failed.
    Failed = 1,
    /// Bad arguments or input.
    Usage = 2,
    /// A digest or size did not match.
    Integrity = 3,
    /// `bundle load --require-complete`: some images wait for volumes not given.
    Incomplete = 4,
    /// Ctrl-C.
    Interrupted = 130,
}

impl From<Status> for std::process::ExitCode {
    fn from(s: Status) -> Self {
        std::process::ExitCode::from(s as u8)
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<Status> {
    match cli.command {
        Command::Mirror(MirrorCommand::Sync(args)) => mirror::sync(args, cli.quiet).await,
        Command::Mirror(MirrorCommand::Config(args)) => config::config(args, cli.quiet).await,
        Command::Mirror(MirrorCommand::Status(args)) => mirror::status(args, cli.quiet).await,
        Command::Bundle(BundleCommand::Create(args)) => bundle::create(args, cli.quiet).await,
        Command::Bundle(BundleCommand::Load(args)) => bundle::load(args, cli.quiet).await,
        Command::Bundle(BundleCommand::Verify(args)) => bundle::verify(args).await,
        Command::Bundle(BundleCommand::Inspect(args)) => bundle::inspect(args).await,
        Command::Bundle(BundleCommand::Serve(args)) => serve::serve(args, cli.quiet).await,
        Command::Inventory(args) => bundle::inventory(args).await,
        Command::Login(args) => login::login(args).await,
        Command::Logout(args) => login::logout(args).await,
        Command::Completions(args) => {
            use std::io::Write;
            // Generated into memory, then written: a closed pipe, as in `completions zsh |
            // head -1`, is then an error main treats as success.
            let script = crate::completions::generate(args.shell);
            let mut out = std::io::stdout().lock();
            out.write_all(&script)?;
            out.flush()?;
            Ok(Status::Success)
        }
    }
}

/// A planned image whose registry did not answer before planning.
fn unreachable_image(
    job: airlift::mapping::ImageJob,
    registry: String,
    message: String,
) -> airlift::transfer::PlannedImage {
    let error = airlift::transfer::TransferError::Unreachable { registry, message };
    airlift::transfer::PlannedImage::failed(job, std::sync::Arc::new(error))
}

/// Whether the command line asked for a JSON report (`--json`).
pub fn wants_json(cli: &Cli) -> bool {
    match &cli.command {
        Command::Mirror(MirrorCommand::Sync(a) | MirrorCommand::Status(a)) => a.output.json,
        Command::Bundle(BundleCommand::Create(a)) => a.output_args.json,
        Command::Bundle(BundleCommand::Load(a)) => a.output.json,
        Command::Bundle(BundleCommand::Verify(a)) => a.json,
        Command::Bundle(BundleCommand::Inspect(a)) => a.json,
        Command::Mirror(MirrorCommand::Config(_))
        | Command::Bundle(BundleCommand::Serve(_))
        | Command::Inventory(_)
        | Command::Login(_)
        | Command::Logout(_)
        | Command::Completions(_) => false,
    }
}

/// Exit code for an error that ended a command: input problems are 2, the rest 1.
pub fn exit_code_for(error: &anyhow::Error) -> Status {
    let input = error.chain().any(|e| {
        e.is::<airlift::imagelist::ListError>()
            || e.is::<airlift::reference::ReferenceError>()
            || e.is::<UsageError>()
            || e.downcast_ref::<airlift::serve::ServeError>()
                .is_some_and(|s| s.is_input())
    });
    let integrity = error.chain().any(|e| {
        e.downcast_ref::<airlift::bundle::BundleError>()
            .is_some_and(|b| b.is_integrity())
    });
    if input {
        Status::Usage
    } else if integrity {
        Status::Integrity
    } else {
        Status::Failed
    }
}

/// A usage problem found after parsing (e.g. a flag value that is checked late).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Prints a finished run (JSON report and/or summary) and turns it into a status.
fn finish_run(report: &RunReport, settings: &OutputSettings, dry_run: bool) -> Result<Status> {
    if settings.json {
        output::print_json(report)?;
    }
    if !dry_run {
        output::print_summary(report, settings.quiet);
    }
    let integrity = report.images.iter().any(|i| i.integrity_error);
    let pending = report.count(airlift::report::ImageStatus::Pending);
    Ok(match report.failed() {
        0 if pending > 0 && settings.require_complete => Status::Incomplete,
        0 => Status::Success,
        _ if integrity => Status::Integrity,
        _ => Status::Failed,
    })
}

/// How a planned run ended.
enum Outcome {
    /// It ran (or was planned only): the plan and the report.
    Done(Box<airlift::transfer::Plan>, RunReport),
    /// Ctrl-C.
    Interrupted,
}

/// Runs the credential helpers the run's registries need, once and up front, and shows
/// their problems as warnings.
pub(crate) async fn prepare_credentials(
    source: &airlift::transfer::Source,
    sink: &airlift::transfer::Sink,
    jobs: &[airlift::mapping::ImageJob],
    settings: &OutputSettings,
) {
    use airlift::transfer::{Sink, Source};
    let mut sides = Vec::new();
    if let Source::Registry(c) = source {
        sides.push((
            c,
            jobs.iter().map(|j| j.source.registry()).collect::<Vec<_>>(),
        ));
    }
    if let Sink::Registry(c) = sink {
        sides.push((c, jobs.iter().map(|j| j.target.registry()).collect()));
    }
    for (client, hosts) in sides {
        let mut hosts: Vec<String> = hosts.into_iter().map(str::to_owned).collect();
        hosts.sort();
        hosts.dedup();
        for warning in client.prepare_credentials(&hosts).await {
            if !settings.quiet {
                eprintln!(
                    "warning: {}",
                    airlift::escape::escape_lines(&warning.to_string())
                );
            }
        }
    }
}

/// Plans `jobs`, then either prints the plan (`dry_run`) or executes it with progress,
/// stopping cleanly on Ctrl-C in every phase. Shared by `mirror sync`, `bundle create` and
/// `bundle load`. Every registry of the run is probed once first ([`check_registries`]).
/// `volumes_dir` is where `bundle create` writes its volumes, for the free-space check.
#[allow(clippy::too_many_arguments)]
async fn plan_and_run(
    source: &airlift::transfer::Source,
    sink: &airlift::transfer::Sink,
    volumes_dir: Option<&std::path::Path>,
    jobs: Vec<airlift::mapping::ImageJob>,
    transfer: &airlift::transfer::TransferOptions,
    client: &airlift::registry::ClientOptions,
    settings: &OutputSettings,
    dry_run: bool,
    started: std::time::Instant,
) -> Result<Outcome> {
    use airlift::transfer;
    // Ctrl-C is watched from before the first line is shown: the handler is in place once
    // `signal` returns (`tokio::signal::ctrl_c` would register it only when first polled, after
    // the progress ticker may already have said "connecting to …").
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| anyhow::anyhow!("cannot watch for Ctrl-C: {e}"))?;
    let progress = output::reporter(settings);
    let reporter = output::as_reporter(&progress);
    progress.start();
    let prepare = async {
        let unreachable = check_registries(source, sink, &jobs, client, &progress).await?;
        prepare_credentials(source, sink, &jobs, settings).await;
        progress.set_phase(&format!("planning {} images", jobs.len()));
        // Images of an unreachable registry are not planned: each fails with the one line
        // the probe gave, at its place in the list.
        let mut failed = Vec::new();
        let mut reachable = Vec::new();
        for (i, job) in jobs.into_iter().enumerate() {
            let dead = [job.source.registry(), job.target.registry()]
                .into_iter()
                .find_map(|r| unreachable.get_key_value(r));
            match dead {
                Some((registry, message)) => {
                    failed.push((i, job, registry.clone(), message.clone()))
                }
                None => reachable.push(job),
            }
        }
        let mut plan = transfer::plan(source, sink, reachable, transfer, &*reporter).await;
        plan.summary.images += failed.len();
        // The unreachable images go back to their list positions; the planned images after
        // them move down, and so must the indexes referrers keep of their images.
        let planned = std::mem::take(&mut plan.images);
        let mut new_index = Vec::with_capacity(planned.len());
        let mut failed = failed.into_iter().peekable();
        for image in planned {
            while let Some((_, job, registry, message)) =
                failed.next_if(|(i, ..)| *i <= plan.images.len())
            {
                plan.images.push(unreachable_image(job, registry, message));
            }
            new_index.push(plan.images.len());
            plan.images.push(image);
        }
        for (_, job, registry, message) in failed {
            plan.images.push(unreachable_image(job, registry, message));
        }
        for image in &mut plan.images {
            if let Some(r) = &mut image.referrer {
                r.parent = new_index[r.parent];
            }
        }
        anyhow::Ok(plan)
    };
    let plan = tokio::select! {
        plan = prepare => match plan {
            Ok(plan) => plan,
            Err(e) => {
                progress.finish();
                return Err(e);
            }
        },
        _ = interrupt.recv() => {
            progress.finish();
            eprintln!("interrupted before anything was copied");
            return Ok(Outcome::Interrupted);
        }
    };
    if dry_run {
        let mut plan = plan;
        check_push(sink, &mut plan).await;
        progress.finish();
        if !settings.json {
            output::print_plan(&plan)?;
        }
        let report = transfer::dry_run_report(&plan, started);
        return Ok(Outcome::Done(Box::new(plan), report));
    }
    let mut plan = plan;
    if let airlift::transfer::Sink::Bundle(b) = sink {
        progress.set_phase("opening the bundle's volumes");
        match transfer::prepare_bundle(source, b, &mut plan, transfer).await {
            Ok(transfer::Prepared::Run) => {}
            Ok(transfer::Prepared::Refused) => {
                progress.finish();
                let report = transfer::dry_run_report(&plan, started);
                return Ok(Outcome::Done(Box::new(plan), report));
            }
            Err(e) => {
                progress.finish();
                return Err(e.into());
            }
        }
        let started =
            check_free_space(volumes_dir, plan.summary.bytes_to_transfer).and_then(|()| {
                b.volumes
                    .get()
                    .expect("prepare_bundle opened the volumes")
                    .start()
                    .map_err(|e| anyhow::Error::new(e).context("cannot start writing the bundle"))
            });
        if let Err(e) = started {
            progress.finish();
            return Err(e);
        }
    }
    let run = transfer::execute(source, sink, plan.clone(), transfer, reporter, started);
    tokio::select! {
        report = run => {
            progress.finish();
            Ok(Outcome::Done(Box::new(plan), report))
        }
        _ = interrupt.recv() => {
            // Dropping the run aborts the transfers in flight; a registry commits a blob only
            // on a complete, verified upload and staging only renames verified files, so
            // nothing half-written is left looking complete.
            progress.finish();
            eprintln!("interrupted: {}", progress.summary());
            eprintln!("what was already copied is kept; run the same command again to finish");
            Ok(Outcome::Interrupted)
        }
    }
}

/// `--dry-run` into a registry: checks the push right on every target repository without
/// writing anything, by opening an upload session and cancelling it. An image whose
/// repository refuses is planned as failed, with the registry's reason.
async fn check_push(sink: &airlift::transfer::Sink, plan: &mut airlift::transfer::Plan) {
    use airlift::transfer::{Sink, TransferError};
    use std::collections::HashMap;
    use std::sync::Arc;
    let Sink::Registry(client) = sink else {
        return;
    };
    let mut repositories: Vec<(String, String)> = plan
        .images
        .iter()
        .filter(|i| i.error.is_none() && !i.complete)
        .map(|i| {
            let t = &i.job.target;
            (t.registry().to_owned(), t.repository().to_owned())
        })
        .collect();
    repositories.sort();
    repositories.dedup();
    let checks = repositories
        .into_iter()
        .map(|(registry, repository)| async move {
            let repo = client.repo(&registry, &repository).for_push();
            let result = match repo.start_upload().await {
                Ok(session) => {
                    // Best effort: a session left open expires on the registry's own schedule.
                    let _ = repo.cancel_upload(&session).await;
                    Ok(())
                }
                Err(source) => Err(Arc::new(TransferError::PushCheck {
                    repository: format!("{registry}/{repository}"),
                    source,
                })),
            };
            ((registry, repository), result)
        });
    let refused: HashMap<_, _> = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .filter_map(|(k, r)| r.err().map(|e| (k, e)))
        .collect();
    for image in plan.images.iter_mut().filter(|i| i.error.is_none()) {
        let t = &image.job.target;
        let key = (t.registry().to_owned(), t.repository().to_owned());
        if let Some(e) = refused.get(&key) {
            image.error = Some(e.clone());
        }
    }
}

/// Probes every registry the run reads from or writes to, once and concurrently, before
/// the plan fans out into one request per image. Retries are shown on the progress display.
/// Returns the registries that are down, each with one line naming it and saying why.
pub(crate) async fn check_registries(
    source: &airlift::transfer::Source,
    sink: &airlift::transfer::Sink,
    jobs: &[airlift::mapping::ImageJob],
    client: &airlift::registry::ClientOptions,
    progress: &output::Progress,
) -> Result<std::collections::HashMap<String, String>> {
    use airlift::transfer::{Sink, Source};
    let mut registries: Vec<String> = Vec::new();
    if let Source::Registry(_) = source {
        registries.extend(jobs.iter().map(|j| j.source.registry().to_owned()));
    }
    if let Sink::Registry(_) = sink {
        registries.extend(jobs.iter().map(|j| j.target.registry().to_owned()));
    }
    registries.sort();
    registries.dedup();
    if registries.is_empty() {
        return Ok(Default::default());
    }
    progress.set_phase(&format!("connecting to {}", registries.join(", ")));
    let unreachable =
        airlift::registry::check_reachable(client, &registries, &|r| progress.note(&r.to_string()))
            .await?;
    Ok(unreachable
        .into_iter()
        .map(|u| (u.registry.clone(), u.to_string()))
        .collect())
}

/// Refuses to start a bundle when its disk cannot hold what is still to be written: the
/// bytes still to fetch (volumes are written in one pass, nothing is staged elsewhere). An
/// estimate: volumes count as uncompressed, plus a margin for descriptors and indexes.
fn check_free_space(volumes: Option<&std::path::Path>, bytes_to_fetch: u64) -> Result<()> {
    use std::path::Path;
    let Some(volumes) = volumes else {
        return Ok(());
    };
    // The nearest existing directory: what will be created there takes its disk's space.
    let dir = volumes
        .ancestors()
        .find(|p| p.exists() && !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let needed = bytes_to_fetch.saturating_add(16 << 20);
    let Ok(stat) = rustix::fs::statvfs(dir) else {
        return Ok(());
    };
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if free < needed {
        anyhow::bail!(
            "not enough free space in {}: {} free, about {} needed for the volumes; free some \
             space or write the bundle elsewhere, then run the same command again",
            dir.display(),
            indicatif::HumanBytes(free),
            indicatif::HumanBytes(needed),
        );
    }
    Ok(())
}
