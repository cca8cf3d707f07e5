//! `keten`: the server, the demo and the operator's tools.
//!
//! Parsing (`cli`) is kept apart from acting (`cmd::*`, one module per subcommand); `main` only
//! maps the outcome to an exit code.

mod cli;
mod cmd;
mod settings;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keten::no_huge_pages();
    let cli = cli::Cli::parse();
    // The demo's own server would interleave its log with the plan the demo prints.
    let default_level = match cli.command {
        cli::Command::Demo(_) => "warn",
        _ => "info",
    };
    init_tracing(cli.log_json, default_level);
    let outcome = match cli.command {
        cli::Command::Serve(args) => cmd::serve::run(args),
        cli::Command::DevPki(args) => cmd::dev_pki::run(args),
        cli::Command::Demo(args) => cmd::demo::run(args),
        cli::Command::Verify(args) => cmd::verify::run(args),
        cli::Command::Replay(args) => cmd::replay::run(args),
        cli::Command::AuditExport(args) => cmd::audit::export(args),
        cli::Command::AuditVerify(args) => cmd::audit::verify(args),
        cli::Command::Keygen(args) => cmd::audit::keygen(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keten: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, so that stdout carries only what a caller reads (the listening line, the
/// demo's plan).
fn init_tracing(json: bool, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("KETEN_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
