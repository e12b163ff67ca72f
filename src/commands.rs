//! One file per command; this one dispatches and defines the exit statuses.

mod mirror;

use anyhow::Result;

use crate::cli::{Cli, Command, MirrorCommand};

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
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(args.shell, &mut cmd, "airlift", &mut std::io::stdout());
            Ok(Status::Success)
        }
    }
}

/// Exit code for an error that ended a command: input problems are 2, the rest 1.
pub fn exit_code_for(error: &anyhow::Error) -> Status {
    let input = error.chain().any(|e| {
        e.is::<airlift::imagelist::ListError>()
            || e.is::<airlift::reference::ReferenceError>()
            || e.is::<UsageError>()
    });
    if input { Status::Usage } else { Status::Failed }
}

/// A usage problem found after parsing (e.g. a flag value that is checked late).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
