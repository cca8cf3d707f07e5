//! Architecture invariant: the domain is pure. It depends on no async runtime, no IO crate and
//! no clock, and its source reads no time, files, network or randomness. Checked here rather
//! than trusted, in the manner of rust-analyzer's tidy tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The host target triple: the metadata is filtered to it, because dependencies that exist
/// only for other targets (wasm's `js-sys`) are never built here.
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .trim()
        .to_owned()
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--filter-platform"])
        .arg(host_triple())
        .arg("--manifest-path")
        .arg(crate_dir().join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Package ids of keten-domain's transitive normal (non-dev, non-build) dependencies, with
/// the resolved node of each.
fn normal_closure(meta: &Value) -> BTreeMap<String, Value> {
    let nodes: BTreeMap<String, Value> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve.nodes")
        .iter()
        .map(|n| (n["id"].as_str().unwrap().to_owned(), n.clone()))
        .collect();
    let root = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "keten-domain")
        .expect("keten-domain in metadata")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut seen = BTreeMap::new();
    let mut todo = vec![root.clone()];
    while let Some(id) = todo.pop() {
        let node = &nodes[&id];
        for dep in node["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            let pkg = dep["pkg"].as_str().unwrap().to_owned();
            if normal && !seen.contains_key(&pkg) {
                seen.insert(pkg.clone(), nodes[&pkg].clone());
                todo.push(pkg);
            }
        }
    }
    seen
}

fn package_name<'a>(meta: &'a Value, id: &str) -> &'a str {
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .and_then(|p| p["name"].as_str())
        .expect("package for id")
}

#[test]
fn no_async_runtime_io_or_clock_crate_among_normal_dependencies() {
    let meta = metadata();
    let closure = normal_closure(&meta);
    let names: BTreeSet<&str> = closure.keys().map(|id| package_name(&meta, id)).collect();
    assert!(
        names.contains("chrono"),
        "sanity: the walk found chrono in {names:?}"
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
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|f| names.contains(**f)).collect();
    assert!(
        found.is_empty(),
        "keten-domain depends on {found:?}; it must stay pure"
    );
}

#[test]
fn chrono_is_resolved_without_a_clock() {
    let meta = metadata();
    let closure = normal_closure(&meta);
    let (_, chrono) = closure
        .iter()
        .find(|(id, _)| package_name(&meta, id) == "chrono")
        .expect("chrono among keten-domain's dependencies");
    let features: Vec<&str> = chrono["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Cargo metadata unifies features over the whole workspace: if this fails because another
    // crate turned on chrono's clock, give that crate its own time source instead.
    for f in ["clock", "now", "wasmbind"] {
        assert!(
            !features.contains(&f),
            "chrono is resolved with feature {f:?}: {features:?}"
        );
    }

    // And keten-domain itself asks for no clock, whatever the workspace does.
    let own = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "keten-domain")
        .unwrap();
    let chrono_dep = own["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "chrono")
        .unwrap();
    assert_eq!(chrono_dep["uses_default_features"], false);
    let asked: Vec<&str> = chrono_dep["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        !asked.contains(&"clock") && !asked.contains(&"now"),
        "{asked:?}"
    );
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
