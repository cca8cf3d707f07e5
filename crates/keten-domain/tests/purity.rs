//! Architecture invariant: the domain is pure. It depends on no async runtime, no IO crate and
//! no clock, and its source reads no time, files, network or randomness. Checked here rather
//! than trusted, in the manner of rust-analyzer's tidy tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// keten-domain's normal (non-dev, non-build) dependency closure as keten-domain alone resolves
/// it: crate name to its enabled features.
///
/// `cargo tree -p keten-domain` resolves features for this package on its own, which is what
/// matters: other crates of the workspace may turn on `uuid/v4` or a clock for themselves
/// without the domain being able to reach them, and `cargo build -p keten-domain` proves it.
/// `cargo tree` shows the host's dependencies only, leaving out wasm's `js-sys` and the like.
fn normal_closure() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["tree", "-p", "keten-domain", "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}|{f}"])
        .arg("--manifest-path")
        .arg(crate_dir().join("Cargo.toml"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut closure = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        let name = package.split_whitespace().next().unwrap_or_default();
        if name.is_empty() || name == "keten-domain" {
            continue;
        }
        let entry: &mut BTreeSet<String> = closure.entry(name.to_owned()).or_default();
        entry.extend(
            features
                .trim_end_matches(" (*)")
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned),
        );
    }
    closure
}

#[test]
fn no_async_runtime_io_or_clock_crate_among_normal_dependencies() {
    let closure = normal_closure();
    assert!(
        closure.contains_key("chrono"),
        "sanity: the walk found chrono in {closure:?}"
    );

    const FORBIDDEN: &[&str] = &[
        "tokio",
        "mio",
        "async-std",
        "smol",
        "async-io",
        "futures",
        "futures-io",
        "tempfile",
        "fs-err",
        "fs_extra",
        "walkdir",
        "memmap2",
        "rustix",
        "socket2",
        "rand",
        "getrandom",
        "iana-time-zone",
        "js-sys",
        "windows-sys",
    ];
    let found: Vec<&&str> = FORBIDDEN
        .iter()
        .filter(|f| closure.contains_key(**f))
        .collect();
    assert!(
        found.is_empty(),
        "keten-domain depends on {found:?}; it must stay pure"
    );
}

#[test]
fn chrono_and_uuid_are_resolved_without_a_clock_or_randomness() {
    let closure = normal_closure();
    let chrono = closure
        .get("chrono")
        .expect("chrono among keten-domain's dependencies");
    for f in ["clock", "now", "wasmbind"] {
        assert!(
            !chrono.contains(f),
            "chrono is resolved with feature {f:?}: {chrono:?}"
        );
    }
    let uuid = closure
        .get("uuid")
        .expect("uuid among keten-domain's dependencies");
    for f in ["v4", "v7", "rng", "fast-rng"] {
        assert!(
            !uuid.contains(f),
            "uuid is resolved with feature {f:?}: {uuid:?}"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn tidy_source_reads_no_time_files_network_or_randomness() {
    const FORBIDDEN: &[&str] = &[
        "std::fs",
        "std::net",
        "std::env",
        "std::process",
        "std::thread",
        "SystemTime",
        "Instant::now",
        "Utc::now",
        "Local::now",
        "thread_rng",
        "rand::",
        "tokio",
        "async fn",
        ".await",
        "HashMap",
        "HashSet",
    ];
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    assert!(!files.is_empty());
    let mut hits = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for f in FORBIDDEN {
                if line.contains(f) {
                    hits.push(format!("{}:{}: {f}", file.display(), n + 1));
                }
            }
        }
    }
    // HashMap/HashSet are here because their iteration order would make the plan
    // nondeterministic; the domain uses BTreeMap.
    assert!(
        hits.is_empty(),
        "impure or nondeterministic code in the domain:\n{}",
        hits.join("\n")
    );
}
