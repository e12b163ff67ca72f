//! The `airlift` binary: parse arguments, run the command, map the outcome to an exit code.
//!
//! Exit codes: 0 success, 1 some images failed (or another runtime error), 2 usage or input
//! error, 3 integrity error, 4 images pending (`bundle load --require-complete` without every
//! volume), 130 interrupted (`bundle serve` runs until SIGINT or SIGTERM and then exits 0).
//! `-v` logs airlift's info, `-vv` its debug lines, `-vvv` every crate's.

mod cli;
mod commands;
mod completions;
mod config;
mod malloc;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    malloc::tune();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--json` promises one JSON document on stdout, whatever happens.
            if e.use_stderr() && std::env::args().any(|a| a == "--json") {
                let message = e.kind().as_str().unwrap_or("invalid arguments");
                output::print_json_error(&format!("usage: {message} (see --help)"), 2);
            }
            e.exit()
        }
    };
    let json = commands::wants_json(&cli);
    init_tracing(cli.verbose, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(status) => status.into(),
        // `airlift ... --json | head` closing the pipe is not a failure (as in ripgrep).
        Err(error)
            if error.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            // Errors quote lists, bundles and registries: escaped before the terminal.
            use airlift::escape::escape_lines;
            eprintln!("error: {}", escape_lines(&error.to_string()));
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {}", escape_lines(&cause.to_string()));
            }
            let status = commands::exit_code_for(&error);
            if json && !output::json_printed() {
                output::print_json_error(&format!("{error:#}"), status as u8);
            }
            status.into()
        }
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,airlift=info",
        (false, 2) => "warn,airlift=debug",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour codes only for a person at a terminal: logs and CI get plain `ERROR` lines.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
