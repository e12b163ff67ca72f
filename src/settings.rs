//! Turns parsed arguments into the library's options, once. Arguments are destructured
//! exhaustively, so a new flag that nobody handles fails to compile.

use std::path::PathBuf;

use anyhow::{Context, Result};

use airlift::Platform;
use airlift::mapping::{Destination, MappingMode};
use airlift::registry::{ClientOptions, RetryPolicy};
use airlift::transfer::TransferOptions;

use crate::cli::{MappingArgs, OutputArgs, ProgressMode, RegistryArgs, SyncArgs, TransferArgs};
use crate::config::Config;

/// Everything `mirror sync` needs.
pub struct SyncSettings {
    pub lists: Vec<PathBuf>,
    pub dest: Option<Destination>,
    pub mode: Option<MappingMode>,
    pub platforms: Vec<Platform>,
    pub transfer: TransferOptions,
    pub client: ClientOptions,
    pub output: OutputSettings,
    pub dry_run: bool,
}

/// How results are shown.
#[derive(Debug, Clone, Copy)]
pub struct OutputSettings {
    pub json: bool,
    pub progress: ProgressMode,
    pub quiet: bool,
    /// `bundle load --require-complete`: images waiting for volumes make the exit code 4.
    pub require_complete: bool,
}

impl SyncSettings {
    pub fn resolve(args: SyncArgs, quiet: bool) -> Result<Self> {
        let SyncArgs {
            lists,
            to,
            mapping,
            transfer,
            registry,
            output,
            dry_run,
        } = args;
        let (timeout, min_rate) = (transfer.timeout, min_rate(&transfer.min_rate)?);
        let dest = to
            .map(|t| t.parse::<Destination>())
            .transpose()
            .context("invalid --to")?;
        let (mode, platforms) = mapping_settings(mapping)?;
        Ok(SyncSettings {
            lists,
            dest,
            mode,
            platforms,
            transfer: transfer_settings(transfer)?,
            client: ClientOptions {
                min_rate,
                ..client_settings(registry, Some(timeout))?
            },
            output: output_settings(output, quiet),
            dry_run,
        })
    }
}

fn mapping_settings(args: MappingArgs) -> Result<(Option<MappingMode>, Vec<Platform>)> {
    let MappingArgs {
        keep_host,
        flatten,
        platforms,
    } = args;
    let mode = match (keep_host, flatten) {
        (true, _) => Some(MappingMode::KeepHost),
        (_, true) => Some(MappingMode::Flatten),
        _ => None,
    };
    let platforms = platforms
        .iter()
        .map(|p| p.parse::<Platform>())
        .collect::<Result<Vec<_>, _>>()
        .context("invalid --platform")?;
    Ok((mode, platforms))
}

fn transfer_settings(args: TransferArgs) -> Result<TransferOptions> {
    let TransferArgs {
        jobs,
        fail_fast,
        keep_going: _, // the default; accepted so scripts can say it explicitly
        retries,
        retry_budget,
        timeout: _,  // a client option: see `request_timeout`
        min_rate: _, // a client option: see `min_rate`
        referrers,
        referrer_types,
    } = args;
    let config = Config::get()?;
    let jobs = jobs.or(config.jobs).unwrap_or(8);
    let retries = retries.or(config.retries).unwrap_or(4);
    anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
    Ok(TransferOptions {
        jobs,
        keep_going: !fail_fast,
        blob_retries: retries,
        retry_budget,
        referrers: airlift::transfer::ReferrerPolicy {
            mode: referrers
                .parse()
                .map_err(|e: String| anyhow::anyhow!("invalid --referrers: {e}"))?,
            artifact_types: referrer_types,
        },
        ..TransferOptions::default()
    })
}

/// `--min-rate`: a size per second (`4K`), or `0` for no minimum.
fn min_rate(text: &str) -> Result<Option<airlift::registry::MinRate>> {
    if text.trim() == "0" {
        return Ok(None);
    }
    let rate = airlift::bundle::parse_size(text).context("invalid --min-rate")?;
    Ok(Some(airlift::registry::MinRate::per_second(rate)))
}

/// Registry client options: flags, then the config file, then the usual credential files.
/// `timeout_secs` is `--timeout` (per request, and the stall limit); `None` keeps the default.
pub fn client_settings(args: RegistryArgs, timeout_secs: Option<u64>) -> Result<ClientOptions> {
    let RegistryArgs {
        mut insecure_registries,
        ca_files,
        authfiles,
    } = args;
    let config = Config::get()?;
    insecure_registries.extend(config.insecure_registries().cloned());
    Ok(ClientOptions {
        insecure_registries,
        tls: config.tls(ca_files),
        retry: RetryPolicy::default(),
        credentials: Some(config.credentials(authfiles)?),
        request_timeout: timeout_secs.map(|t| std::time::Duration::from_secs(t.max(1))),
        // Set by the commands that take `--min-rate`.
        min_rate: None,
    })
}

fn output_settings(args: OutputArgs, quiet: bool) -> OutputSettings {
    let OutputArgs { json, progress } = args;
    OutputSettings {
        json,
        progress: if quiet { ProgressMode::None } else { progress },
        quiet,
        require_complete: false,
    }
}

/// Everything `bundle create` needs.
pub struct CreateSettings {
    pub lists: Vec<PathBuf>,
    pub output: PathBuf,
    pub max_volume_size: Option<u64>,
    pub zstd_level: i32,
    pub exclude_from: Vec<PathBuf>,
    pub since: Vec<PathBuf>,
    /// A mirror to fetch from instead of each image's own registry, and how to map onto it.
    pub from: Option<(Destination, MappingMode)>,
    pub platforms: Vec<Platform>,
    pub transfer: TransferOptions,
    pub client: ClientOptions,
    pub output_settings: OutputSettings,
    pub dry_run: bool,
    /// Write a bundle even when some entries failed (`--keep-going`), recording them as
    /// missing; by default no bundle is written then.
    pub write_partial: bool,
}

impl CreateSettings {
    pub fn resolve(args: crate::cli::BundleCreateArgs, quiet: bool) -> Result<Self> {
        let crate::cli::BundleCreateArgs {
            lists,
            output,
            max_volume_size,
            zstd_level,
            exclude_from,
            since,
            staging_dir,
            from,
            mapping,
            transfer,
            registry,
            output_args,
            dry_run,
        } = args;
        // --keep-going (explicit) also writes a bundle without the entries that failed.
        let write_partial = transfer.keep_going;
        let (timeout, min_rate) = (transfer.timeout, min_rate(&transfer.min_rate)?);
        let max_volume_size = max_volume_size
            .map(|s| airlift::bundle::parse_size(&s))
            .transpose()
            .context("invalid --max-volume-size")?;
        let (mode, platforms) = mapping_settings(mapping)?;
        let from = from
            .map(|f| f.parse::<Destination>())
            .transpose()
            .context("invalid --from")?
            .map(|d| (d, mode.unwrap_or_default()));
        if staging_dir.is_some() && !quiet {
            // Volumes are written in one pass now: nothing is staged.
            eprintln!(
                "warning: --staging-dir is no longer used: bundle create writes the volumes in \
                 one pass, resuming from their .partial files"
            );
        }
        Ok(CreateSettings {
            lists,
            output,
            max_volume_size,
            zstd_level,
            exclude_from,
            since,
            from,
            platforms,
            transfer: transfer_settings(transfer)?,
            client: ClientOptions {
                min_rate,
                ..client_settings(registry, Some(timeout))?
            },
            output_settings: output_settings(output_args, quiet),
            dry_run,
            write_partial,
        })
    }
}

/// Everything `bundle load` needs.
pub struct LoadSettings {
    pub volumes: Vec<PathBuf>,
    pub dest: Destination,
    pub mode: MappingMode,
    pub platforms: Vec<Platform>,
    pub transfer: TransferOptions,
    pub client: ClientOptions,
    pub output: OutputSettings,
    pub state_dir: PathBuf,
    pub dry_run: bool,
}

impl LoadSettings {
    pub fn resolve(args: crate::cli::BundleLoadArgs, quiet: bool) -> Result<Self> {
        let crate::cli::BundleLoadArgs {
            volumes,
            to,
            mapping,
            transfer,
            registry,
            output,
            state_dir,
            dry_run,
            require_complete,
        } = args;
        let (timeout, min_rate) = (transfer.timeout, min_rate(&transfer.min_rate)?);
        let dest = to.parse::<Destination>().context("invalid --to")?;
        let (mode, platforms) = mapping_settings(mapping)?;
        // Volumes often sit on read-only media: split-blob parts wait in the user's cache.
        // Never a shared directory such as /tmp: the state holds parts another user could
        // plant or read there.
        let state_dir = match state_dir {
            Some(dir) => dir,
            None => user_cache_dir()
                .map(|base| base.join("airlift").join("load"))
                .context(
                    "no directory for the load state: neither XDG_CACHE_HOME nor HOME is set; \
                     pass --state-dir DIR (a private directory, not a shared one like /tmp)",
                )?,
        };
        Ok(LoadSettings {
            volumes,
            dest,
            mode: mode.unwrap_or_default(),
            platforms,
            transfer: transfer_settings(transfer)?,
            client: ClientOptions {
                min_rate,
                ..client_settings(registry, Some(timeout))?
            },
            output: OutputSettings {
                require_complete,
                ..output_settings(output, quiet)
            },
            state_dir,
            dry_run,
        })
    }
}

/// The user's cache directory: `$XDG_CACHE_HOME`, else `~/.cache`. Never a shared directory
/// such as /tmp, where another user could plant or read what airlift keeps.
fn user_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
}

/// Everything `mirror config` needs.
pub struct SiteConfigSettings {
    pub runtime: crate::cli::SiteRuntime,
    pub lists: Vec<PathBuf>,
    pub dest: Option<Destination>,
    pub mode: Option<MappingMode>,
    pub platforms: Vec<Platform>,
    pub client: ClientOptions,
    /// `--authfile`s, for looking the mirror's credential up.
    pub authfiles: Vec<PathBuf>,
    /// The output directory; `None` is stdout.
    pub output_dir: Option<PathBuf>,
    /// `-o -` was given: stdout even for a secret on a terminal.
    pub stdout_asked: bool,
    pub mirror_by_digest_only: bool,
    pub with_credentials: bool,
    pub tags: bool,
    pub digests: bool,
    pub name: String,
    pub namespace: Option<String>,
}

impl SiteConfigSettings {
    pub fn resolve(args: crate::cli::MirrorConfigArgs) -> Result<Self> {
        let crate::cli::MirrorConfigArgs {
            runtime,
            lists,
            to,
            mapping,
            registry,
            output,
            mirror_by_digest_only,
            with_credentials,
            tags,
            digests,
            name,
            namespace,
        } = args;
        let dest = to
            .map(|t| t.parse::<Destination>())
            .transpose()
            .context("invalid --to")?;
        let (mode, platforms) = mapping_settings(mapping)?;
        let authfiles = registry.authfiles.clone();
        let stdout_asked = output.as_deref() == Some(std::path::Path::new("-"));
        Ok(SiteConfigSettings {
            runtime,
            lists,
            dest,
            mode,
            platforms,
            client: client_settings(registry, None)?,
            authfiles,
            output_dir: output.filter(|_| !stdout_asked),
            stdout_asked,
            mirror_by_digest_only,
            with_credentials,
            tags,
            digests,
            name: name.unwrap_or_else(|| "airlift-mirror".to_owned()),
            namespace,
        })
    }
}

/// Everything `bundle serve` needs.
pub struct ServeSettings {
    pub volumes: Vec<PathBuf>,
    pub options: airlift::serve::ServeOptions,
}

impl ServeSettings {
    pub fn resolve(args: crate::cli::BundleServeArgs) -> Result<Self> {
        let crate::cli::BundleServeArgs {
            volumes,
            listen,
            tls_cert,
            tls_key,
            prefix,
            keep_host,
            flatten,
        } = args;
        let mode = match (keep_host, flatten) {
            (true, _) => MappingMode::KeepHost,
            (_, true) => MappingMode::Flatten,
            _ => MappingMode::Strip,
        };
        let naming = airlift::serve::Naming::new(mode, prefix.as_deref().unwrap_or(""))?;
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(airlift::serve::TlsFiles { cert, key }),
            // clap requires both or neither.
            _ => None,
        };
        Ok(ServeSettings {
            volumes,
            options: airlift::serve::ServeOptions {
                naming,
                listen,
                tls,
            },
        })
    }
}
