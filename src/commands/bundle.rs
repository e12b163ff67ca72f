//! `airlift bundle create | load | verify | inspect` and `airlift inventory`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::HumanBytes;

use airlift::bundle::{self, WriteOptions};
use airlift::escape::{escape, escape_lines};
use airlift::imagelist::{self, Origin};
use airlift::mapping::{self, ImageJob};
use airlift::registry::RegistryClient;
use airlift::report::{ImageStatus, MissingImage};
use airlift::transfer::{self, BundleSink, BundleSource, Sink, Source};
use airlift::{Digest, ImageRef};

use super::{Outcome, Status, UsageError};
use crate::cli::{
    BundleCreateArgs, BundleInspectArgs, BundleLoadArgs, BundleVerifyArgs, InventoryArgs,
};
use crate::output;
use crate::settings::{CreateSettings, LoadSettings};

/// `bundle create`: plan, open the volumes (keeping what an interrupted run left in them),
/// and stream every blob still missing into them; then finish the volumes.
pub async fn create(args: BundleCreateArgs, quiet: bool) -> Result<Status> {
    let started = Instant::now();
    let s = CreateSettings::resolve(args, quiet).map_err(|e| UsageError(format!("{e:#}")))?;
    let entries = imagelist::load(&s.lists)?;
    // A bundle records images under their listed names (the job's target); the mapping to
    // the site registry happens at load time. They are fetched from the listed registry, or
    // from the --from mirror.
    let mut jobs: Vec<ImageJob> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        // A set, not a scan of `jobs`: linear in the list.
        if !seen.insert(e.source.clone()) {
            continue;
        }
        let platforms = if s.platforms.is_empty() {
            e.platforms
        } else {
            s.platforms.clone()
        };
        let fetch_from = match &s.from {
            Some((mirror, mode)) => mapping::map_reference(&e.source, mirror, *mode),
            None => e.source.clone(),
        };
        jobs.push(ImageJob {
            source: fetch_from,
            target: e.source,
            platforms,
            origin: e.origin,
            referrers: e.referrers,
        });
    }
    let excluded = exclusions(&s).await?;
    let client =
        RegistryClient::new(s.client.clone()).context("cannot set up the registry client")?;
    let source = Source::Registry(client);
    let bundle_sink = BundleSink {
        output: s.output.clone(),
        write: WriteOptions {
            max_volume_size: s.max_volume_size,
            zstd_level: s.zstd_level,
            ..WriteOptions::default()
        },
        lists: s.lists.iter().map(|p| p.display().to_string()).collect(),
        inventoried: inventoried(&s)?,
        excluded: Arc::new(excluded.clone()),
        keep_going: s.write_partial,
        volumes: Arc::default(),
    };
    let sink = Sink::Bundle(bundle_sink.clone());
    let volumes_dir = s.output.parent().filter(|p| !p.as_os_str().is_empty());
    let outcome = super::plan_and_run(
        &source,
        &sink,
        Some(volumes_dir.unwrap_or(std::path::Path::new("."))),
        jobs,
        &s.transfer,
        &s.client,
        &s.output_settings,
        s.dry_run,
        started,
    )
    .await?;
    let (plan, mut report) = match outcome {
        Outcome::Done(plan, report) => (plan, report),
        Outcome::Interrupted => return Ok(Status::Interrupted),
    };
    if s.dry_run {
        if !s.output_settings.json {
            print_volume_plan(&plan, &excluded, s.max_volume_size)?;
        }
        return super::finish_run(&report, &s.output_settings, true);
    }
    let Some(set) = bundle_sink.volumes.get().cloned() else {
        // Entries that cannot be fetched, and no partial bundle asked for: nothing written.
        let failed = report.failed();
        let status = super::finish_run(&report, &s.output_settings, false)?;
        eprintln!(
            "error: {failed} of {} list entries could not be fetched, so no bundle was written; \
             fix them and run the same command again, or add --keep-going to write a bundle \
             without those entries (it records them as missing)",
            report.images.len(),
        );
        return Ok(status);
    };
    drop(sink);
    // Images left out while planning are recorded as missing; one that failed while the
    // volumes were being written leaves them unfinished (their writers then fail).
    let failed_in_run = plan
        .images
        .iter()
        .zip(&report.images)
        .any(|(p, r)| r.status == ImageStatus::Failed && p.error.is_none());
    let finished = tokio::task::spawn_blocking(move || set.finish())
        .await
        .context("the bundle writer stopped")?;
    let missing = missing_of(&plan, &report);
    match finished {
        Ok(paths) if !failed_in_run => {
            let checksum = s.output_settings.json;
            let volumes =
                tokio::task::spawn_blocking(move || bundle::volume_files(&paths, checksum))
                    .await
                    .context("reading the volumes back stopped")?
                    .with_context(|| format!("cannot read back bundle {}", s.output.display()))?;
            let written: Vec<std::path::PathBuf> =
                volumes.iter().map(|v| v.path.clone().into()).collect();
            for stale in remove_stale_volumes(&s.output, &written)? {
                if !s.output_settings.quiet {
                    eprintln!(
                        "removed {}: a volume of an older bundle of the same name",
                        stale.display()
                    );
                }
            }
            report.seconds = started.elapsed().as_secs_f64();
            if !s.output_settings.quiet {
                for v in &volumes {
                    eprintln!("wrote {} ({})", v.path, HumanBytes(v.size));
                }
            }
            if !missing.is_empty() {
                eprintln!(
                    "warning: the bundle is partial: {} of {} list entries are not in it \
                     (recorded in the bundle; `bundle inspect` and `bundle load` name them)",
                    missing.len(),
                    report.images.len()
                );
            }
            report.volumes = volumes;
            super::finish_run(&report, &s.output_settings, false)
        }
        Err(e) if !failed_in_run => {
            super::finish_run(&report, &s.output_settings, false)?;
            Err(anyhow::Error::new(e).context(format!(
                "cannot write bundle {}: what was written is kept in its .partial files; run \
                 the same command again to resume",
                s.output.display()
            )))
        }
        _ => {
            let status = super::finish_run(&report, &s.output_settings, false)?;
            let why = finished
                .err()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            eprintln!(
                "error: the bundle {} is not finished: blobs failed while the volumes were being \
                 written{why}; what was written is kept in its .partial files: run the same \
                 command again to resume",
                s.output.display()
            );
            Ok(status)
        }
    }
}

/// The list entries left out of the bundle.
fn missing_of(plan: &transfer::Plan, report: &airlift::report::RunReport) -> Vec<MissingImage> {
    plan.images
        .iter()
        .zip(&report.images)
        .filter(|(_, r)| r.status == ImageStatus::Failed)
        .map(|(image, r)| MissingImage {
            source: image.job.target.to_string(),
            origin: r.origin.clone(),
            error: r.error.clone().unwrap_or_default(),
        })
        .collect()
}

/// `bundle create --dry-run`: how many volumes the media needs. An estimate from the
/// uncompressed sizes (layers are mostly compressed already; zstd gains little on them).
fn print_volume_plan(
    plan: &transfer::Plan,
    excluded: &BTreeMap<Digest, u64>,
    max_volume_size: Option<u64>,
) -> Result<()> {
    use std::io::Write;
    let blobs: u64 = plan
        .blobs
        .iter()
        .filter(|b| !excluded.contains_key(&b.digest))
        .map(|b| b.size)
        .sum();
    let manifests: u64 = plan
        .images
        .iter()
        .flat_map(|i| &i.manifests)
        .map(|m| m.bytes.len() as u64)
        .sum();
    let total = blobs + manifests;
    let mut out = std::io::stdout().lock();
    match max_volume_size {
        Some(max) if max > 0 => writeln!(
            out,
            "volumes: about {} of at most {} ({} of content before compression)",
            total.div_ceil(max).max(1),
            HumanBytes(max),
            HumanBytes(total)
        )?,
        _ => writeln!(
            out,
            "volumes: 1 ({} of content before compression)",
            HumanBytes(total)
        )?,
    }
    Ok(())
}

/// Removes the volumes an older bundle written to the same `-o` left beyond the ones just
/// written (a bundle re-created with fewer or unsplit volumes), so the media never carries
/// volumes that do not belong together. Returns what was removed.
fn remove_stale_volumes(
    out: &std::path::Path,
    written: &[std::path::PathBuf],
) -> Result<Vec<std::path::PathBuf>> {
    const MAX_VOLUMES: u32 = 999;
    let mut removed = Vec::new();
    let candidates = std::iter::once(out.to_owned()).chain(bundle::volume_paths(out, MAX_VOLUMES));
    for path in candidates {
        if written.contains(&path) || !path.is_file() {
            continue;
        }
        fs_err::remove_file(&path)?;
        removed.push(path);
    }
    Ok(removed)
}

/// `REGISTRY/PREFIX` of each inventory given with `--exclude-from`, for the descriptor.
fn inventoried(s: &CreateSettings) -> Result<Vec<String>> {
    let mut places = Vec::new();
    for path in &s.exclude_from {
        let inv = airlift::inventory::Inventory::read(path)?;
        places.push(place(&inv.registry, &inv.prefix));
    }
    places.sort();
    places.dedup();
    Ok(places)
}

/// `REGISTRY/PREFIX`, or `REGISTRY` without a prefix.
fn place(registry: &str, prefix: &str) -> String {
    match prefix.trim_matches('/') {
        "" => registry.to_owned(),
        p => format!("{registry}/{p}"),
    }
}

/// Blobs to leave out: those in the inventories and old bundles given.
async fn exclusions(s: &CreateSettings) -> Result<BTreeMap<Digest, u64>> {
    let mut inventories = Vec::new();
    for path in &s.exclude_from {
        inventories.push(airlift::inventory::Inventory::read(path)?);
    }
    let mut excluded = airlift::inventory::exclusions(&inventories);
    if !s.since.is_empty() {
        let since = s.since.clone();
        let old = tokio::task::spawn_blocking(move || {
            airlift::inventory::exclusions_from_bundles(&since)
        })
        .await
        .context("reading the older bundle stopped")??;
        excluded.extend(old);
    }
    Ok(excluded)
}

/// `bundle load`: the bundle as a source, the site registry as the sink.
pub async fn load(args: BundleLoadArgs, quiet: bool) -> Result<Status> {
    let started = Instant::now();
    let s = LoadSettings::resolve(args, quiet).map_err(|e| UsageError(format!("{e:#}")))?;
    let (volumes, state_dir) = (s.volumes.clone(), s.state_dir.clone());
    let bundle = tokio::task::spawn_blocking(move || BundleSource::open(&volumes, state_dir))
        .await
        .context("opening the bundle stopped")??;
    let missing = bundle.missing_volumes();
    if !missing.is_empty() && !s.output.quiet {
        eprintln!(
            "note: volume(s) {} of {} not given; images that need them are loaded once they are",
            missing
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            bundle.descriptor.volume_count
        );
    }
    if !s.output.quiet {
        warn_partial(&bundle.descriptor.missing_images);
        let here = place(&s.dest.registry, &s.dest.prefix);
        let taken = &bundle.descriptor.inventoried;
        if !taken.is_empty() && !taken.contains(&here) {
            eprintln!(
                "warning: this differential bundle leaves out the blobs an inventory of {} \
                 holds, but it is loaded into {here}: images whose left-out blobs {here} \
                 lacks will fail (load it where the inventory was taken, or make a full bundle)",
                taken.join(", ")
            );
        }
    }
    let first = s.volumes[0].clone();
    let mut jobs = Vec::new();
    for (i, image) in bundle.descriptor.images.iter().enumerate() {
        if image.referrer_of.is_some()
            && !s
                .transfer
                .referrers
                .wants(image.artifact_type.as_deref(), image.tag.as_deref())
        {
            continue;
        }
        let source: ImageRef = image
            .source
            .parse()
            .with_context(|| format!("bundle {} names an invalid image", first.display()))?;
        jobs.push(ImageJob {
            target: mapping::map_reference(&source, &s.dest, s.mode),
            source,
            platforms: s.platforms.clone(),
            origin: Origin {
                file: first.clone(),
                line: i + 1,
            },
            referrers: None,
        });
    }
    let client =
        RegistryClient::new(s.client.clone()).context("cannot set up the registry client")?;
    let source = Source::Bundle(Arc::new(bundle));
    let sink = Sink::Registry(client);
    match super::plan_and_run(
        &source,
        &sink,
        None,
        jobs,
        &s.transfer,
        &s.client,
        &s.output,
        s.dry_run,
        started,
    )
    .await?
    {
        Outcome::Done(_, report) => super::finish_run(&report, &s.output, s.dry_run),
        Outcome::Interrupted => Ok(Status::Interrupted),
    }
}

/// Names the list entries a partial bundle does not carry.
fn warn_partial(missing: &[MissingImage]) {
    if missing.is_empty() {
        return;
    }
    eprintln!(
        "warning: this bundle is partial: {} list entries are not in it (bundle create \
         --keep-going could not fetch them):",
        missing.len()
    );
    for m in missing {
        eprintln!(
            "  missing: {} ({}): {}",
            escape(&m.source),
            escape(&m.origin),
            escape(&m.error)
        );
    }
}

/// `bundle verify`: every volume given is checked (content, digests, consistency with the
/// others); whether the images are complete without the volumes not given is reported
/// separately, as information: one volume that just arrived verifies on its own.
pub async fn verify(args: BundleVerifyArgs) -> Result<Status> {
    use airlift::bundle::ProblemKind;
    let BundleVerifyArgs { volumes, json } = args;
    let report = tokio::task::spawn_blocking(move || bundle::verify(&volumes))
        .await
        .context("verification stopped")??;
    let (incomplete, problems): (Vec<_>, Vec<_>) = report
        .problems
        .iter()
        .partition(|p| p.kind == ProblemKind::Incomplete);
    if json {
        output::print_json_value(&report)?;
    } else {
        for v in &report.volumes {
            eprintln!("checked {}", escape(&v.path.display().to_string()));
        }
        for p in &problems {
            eprintln!("problem: {}", escape_lines(&p.message));
        }
        for p in &incomplete {
            // "image X is incomplete: <what> not verified; volume(s) [2, 3] not given"
            let needs = p
                .message
                .rsplit_once("; volume(s) ")
                .map(|(_, v)| v.trim_end_matches(" not given"))
                .unwrap_or_default()
                .trim_matches(['[', ']', '{', '}']);
            for image in &p.images {
                eprintln!(
                    "not complete yet: {} also needs volume(s) {}",
                    escape(image),
                    escape(needs)
                );
            }
        }
        if problems.is_empty() {
            let images = report.images.len();
            if incomplete.is_empty() {
                eprintln!("bundle OK: {images} images, every digest verified");
            } else {
                eprintln!(
                    "volume(s) OK: every digest in the {} volume(s) given verified; {} of {images} \
                     images complete with them (the others need volumes not given)",
                    report.volumes.len(),
                    report.images.iter().filter(|i| i.complete).count()
                );
            }
        }
    }
    Ok(if problems.is_empty() {
        Status::Success
    } else {
        Status::Integrity
    })
}

/// `bundle inspect`: what is in it, from the descriptors alone.
pub async fn inspect(args: BundleInspectArgs) -> Result<Status> {
    let BundleInspectArgs { volumes, json } = args;
    let summary = tokio::task::spawn_blocking(move || bundle::inspect(&volumes))
        .await
        .context("inspection stopped")??;
    if json {
        output::print_json_value(&summary)?;
        return Ok(Status::Success);
    }
    // Written, not println!-ed: `bundle inspect | head` must not panic on the closed pipe.
    // Every string here comes from the descriptors: escaped, one line each.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "bundle {} (format {}, airlift {}), created {}, {} volume(s), {}",
        escape(&summary.bundle_id),
        summary.format_version,
        escape(&summary.tool_version),
        escape(&summary.created),
        summary.volume_count,
        HumanBytes(summary.total_size)
    )?;
    if summary.site_blobs > 0 {
        writeln!(
            out,
            "differential: {} blobs ({}) are not carried and must already be at the site",
            summary.site_blobs,
            HumanBytes(summary.site_size)
        )?;
    }
    if !summary.missing_volumes.is_empty() {
        writeln!(
            out,
            "volumes not given: {}",
            summary
                .missing_volumes
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    for v in &summary.volumes {
        writeln!(
            out,
            "  volume {}: {} ({}), {} blobs ({})",
            v.volume,
            escape(&v.path.display().to_string()),
            HumanBytes(v.file_size),
            v.blobs,
            HumanBytes(v.blob_bytes)
        )?;
    }
    if !summary.missing_images.is_empty() {
        writeln!(
            out,
            "partial bundle: {} list entries are not in it (bundle create --keep-going could not fetch them):",
            summary.missing_images.len()
        )?;
        for m in &summary.missing_images {
            writeln!(
                out,
                "  missing: {} ({}): {}",
                escape(&m.source),
                escape(&m.origin),
                escape(&m.error)
            )?;
        }
    }
    // Each image, then its signatures, attestations and SBOMs below it.
    let mut children: BTreeMap<&str, Vec<&airlift::bundle::ImageSummary>> = BTreeMap::new();
    for i in &summary.images {
        if let Some(parent) = &i.referrer_of {
            children.entry(parent.as_str()).or_default().push(i);
        }
    }
    fn print_referrers(
        out: &mut impl Write,
        of: &str,
        depth: usize,
        children: &BTreeMap<&str, Vec<&airlift::bundle::ImageSummary>>,
    ) -> std::io::Result<()> {
        // Referrers nest a few levels; a descriptor whose links loop stops here.
        if depth > airlift::transfer::referrers::MAX_DEPTH + 1 {
            return Ok(());
        }
        for r in children.get(of).into_iter().flatten() {
            writeln!(
                out,
                "  {}+ {} {} ({})",
                "  ".repeat(depth),
                escape(r.artifact_type.as_deref().unwrap_or("referrer")),
                r.digest.short(),
                HumanBytes(r.size)
            )?;
            print_referrers(out, &r.source, depth + 1, children)?;
        }
        Ok(())
    }
    for i in summary.images.iter().filter(|i| i.referrer_of.is_none()) {
        // A differential bundle carries part of an image: say how much, and what the site
        // must already hold.
        let carried = if i.site_blobs > 0 {
            format!(
                " ({} carried, {} at the site)",
                HumanBytes(i.bundle_bytes),
                HumanBytes(i.site_bytes)
            )
        } else {
            String::new()
        };
        let volumes = if i.volumes.is_empty() {
            "manifests only".to_owned()
        } else {
            format!("in volume(s) {}", airlift::report::volume_list(&i.volumes))
        };
        writeln!(
            out,
            "  {} {} [{}] {}{carried} {volumes}",
            escape(&i.source),
            i.digest.short(),
            escape(&i.platforms.join(", ")),
            HumanBytes(i.size),
        )?;
        print_referrers(&mut out, &i.source, 1, &children)?;
    }
    Ok(Status::Success)
}

/// `inventory`: what a site registry holds, for differential bundles.
pub async fn inventory(args: InventoryArgs) -> Result<Status> {
    let InventoryArgs {
        registry,
        output: out,
        lists,
        registry_args,
    } = args;
    let dest: mapping::Destination = registry.parse().context("invalid --registry")?;
    let client = RegistryClient::new(crate::settings::client_settings(registry_args, None)?)?;
    let inv = if lists.is_empty() {
        airlift::inventory::take(&client, &dest.registry, &dest.prefix, 8).await?
    } else {
        // Without catalog rights: the repositories the lists' images land in.
        let entries = imagelist::load(&lists)?;
        let jobs = mapping::resolve(&entries, Some(&dest), None, &[])?;
        let mut repositories: Vec<String> = jobs
            .iter()
            .map(|j| j.target.repository().to_owned())
            .collect();
        repositories.sort();
        repositories.dedup();
        airlift::inventory::take_repositories(
            &client,
            &dest.registry,
            &dest.prefix,
            &repositories,
            8,
        )
        .await?
    };
    inv.write(&out)?;
    eprintln!(
        "{}: {} blobs, {} manifests -> {}",
        dest,
        inv.blobs.len(),
        inv.manifests.len(),
        out.display()
    );
    Ok(Status::Success)
}
