//! The worked example of PROOFS.md, recomputed: the document stays true because this test reads
//! it. `cargo test -p keten-proof --test worked_example -- --ignored --nocapture` prints the
//! values to paste when the example changes.

use keten_log::{
    CommitTime, EventId, EventType, GlobalPosition, RecordedEvent, StreamId, StreamVersion,
};
use keten_proof::{
    Bundle, SigningKey, TreeBuilder, leaf_bytes, leaf_hash, to_hex, verify_bundle,
    verifying_key_to_pem,
};

const PROOFS_MD: &str = include_str!("../PROOFS.md");

fn event(
    position: u64,
    stream: &str,
    version: u64,
    event_type: &str,
    payload: &[u8],
) -> RecordedEvent {
    RecordedEvent {
        stream: StreamId::new(stream).unwrap(),
        id: EventId(uuid::Uuid::from_u128(position as u128 + 1)),
        event_type: EventType::new(event_type).unwrap(),
        version: StreamVersion(version),
        position: GlobalPosition(position),
        committed_at: CommitTime(1_764_000_000_000_000 + position * 1_000_000),
        metadata: b"{}".to_vec(),
        payload: payload.to_vec(),
    }
}

struct Example {
    log: [RecordedEvent; 3],
    tree: TreeBuilder,
    bundle: Bundle,
    key: SigningKey,
}

fn build() -> Example {
    let log = [
        event(0, "family-1", 0, "FamilyRegistered", &[0xc0, 0xff, 0xee]),
        event(1, "family-2", 0, "FamilyRegistered", &[0x01, 0x02]),
        event(2, "family-1", 1, "PlanAgreed", &[0xca, 0xfe]),
    ];
    let mut tree = TreeBuilder::new();
    for e in &log {
        tree.append(e).unwrap();
    }
    // The example key: a seed of 32 bytes 0x11. Never use it for anything real.
    let key = SigningKey::from_bytes(&[0x11; 32]);
    let checkpoint = tree
        .checkpoint("keten.example/log", CommitTime(1_764_000_060_000_000))
        .sign(&key)
        .unwrap();
    let bundle = Bundle::build(
        &tree,
        checkpoint,
        &StreamId::new("family-1").unwrap(),
        &[log[0].clone(), log[2].clone()],
    )
    .unwrap();
    Example {
        log,
        tree,
        bundle,
        key,
    }
}

/// The independent verifier beside PROOFS.md agrees with this crate, when Python and its
/// `cryptography` package are installed (it is the auditor's tool, not a build dependency).
#[test]
fn the_python_verifier_agrees() {
    let python = |args: &[&str]| std::process::Command::new("python3").args(args).output();
    match python(&["-c", "import cryptography"]) {
        Ok(out) if out.status.success() => {}
        _ => {
            eprintln!("python3 with `cryptography` not installed: verify_bundle.py not run");
            return;
        }
    }
    let Example { bundle, key, .. } = build();
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/verify_bundle.py");
    let public = dir.path().join("log.pub");
    keten_proof::save_verifying_key(&public, &key.verifying_key()).unwrap();
    let run = |bundle: &Bundle| {
        let path = dir.path().join("bundle.json");
        std::fs::write(&path, bundle.to_json()).unwrap();
        let out = python(&[script, path.to_str().unwrap(), public.to_str().unwrap()]).unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, stdout) = run(&bundle);
    assert!(ok && stdout.contains("the bundle holds"), "{stdout}");
    let mut tampered = bundle.clone();
    tampered.events[1].payload[1] ^= 1;
    let (ok, stdout) = run(&tampered);
    assert!(
        !ok && stdout.contains("FAILS inclusion: event #1"),
        "{stdout}"
    );
    let mut swapped = bundle;
    swapped.events.swap(0, 1);
    let (ok, stdout) = run(&swapped);
    assert!(!ok && stdout.contains("FAILS order"), "{stdout}");
}

/// (name, value) pairs, each of which PROOFS.md must show verbatim.
fn example() -> Vec<(&'static str, String)> {
    let Example {
        log,
        tree,
        bundle,
        key,
    } = build();
    let checkpoint = bundle.checkpoint.clone();
    let report = verify_bundle(&bundle, &key.verifying_key());
    assert!(report.holds());
    let mut out = vec![
        ("leaf bytes of event 0", to_hex(&leaf_bytes(&log[0]))),
        (
            "public key (PEM)",
            verifying_key_to_pem(&key.verifying_key()),
        ),
        ("checkpoint note", checkpoint.to_note()),
        ("bundle JSON", bundle.to_json()),
        ("report", report.to_string()),
        ("root", to_hex(&tree.root())),
    ];
    for (i, e) in log.iter().enumerate() {
        out.push((
            ["leaf hash 0", "leaf hash 1", "leaf hash 2"][i],
            to_hex(&leaf_hash(e)),
        ));
    }
    out.push((
        "node over leaves 0 and 1",
        to_hex(&keten_proof::hash_children(
            &leaf_hash(&log[0]),
            &leaf_hash(&log[1]),
        )),
    ));
    out
}

#[test]
fn proofs_md_shows_the_values_this_code_computes() {
    for (name, value) in example() {
        // Multi-line values are shown in fenced blocks; compare line by line, trimmed.
        let shown = value
            .lines()
            .all(|line| PROOFS_MD.contains(line.trim_end()));
        assert!(shown, "PROOFS.md does not show the {name}:\n{value}");
    }
}

#[test]
#[ignore = "prints the example for PROOFS.md"]
fn print_the_example() {
    for (name, value) in example() {
        println!("===== {name}\n{value}");
    }
}
