//! Turns parsed arguments into the library's options, once. Arguments are destructured
//! exhaustively, so a new flag that nobody handles fails to compile.

use std::path::PathBuf;

use anyhow::{Context, Result};

use airlift::Platform;
use airlift::mapping::{Destination, MappingMode};
use airlift::registry::{ClientOptions, RetryPolicy};
use airlift::transfer::TransferOptions;

use crate::cli::{MappingArgs, OutputArgs, ProgressMode, RegistryArgs, SyncArgs, TransferArgs};

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
            client: client_settings(registry),
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
    } = args;
    anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
    Ok(TransferOptions {
        jobs,
        keep_going: !fail_fast,
        blob_retries: retries,
        ..TransferOptions::default()
    })
}

fn client_settings(args: RegistryArgs) -> ClientOptions {
    let RegistryArgs {
        insecure_registries,
    } = args;
    ClientOptions {
        insecure_registries,
        retry: RetryPolicy::default(),
        credentials: None,
        request_timeout: None,
    }
}

fn output_settings(args: OutputArgs, quiet: bool) -> OutputSettings {
    let OutputArgs { json, progress } = args;
    OutputSettings {
        json,
        progress: if quiet { ProgressMode::None } else { progress },
        quiet,
    }
}
