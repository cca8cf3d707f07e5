//! Crash test: a child process creates (four tasks at once) and destroys keys on a
//! FileKeyStore and is killed with SIGKILL after a random number of acknowledgements, again and
//! again on one directory. After each kill the parent opens the store and checks that every key
//! the child reported created (a line on its stdout, written only after `create` returned) is
//! there with the same bytes, and every key it reported destroyed is destroyed at the reported
//! time with its bytes in no file. The approach is keten-log's crash test: the child is this test binary run again with
//! `--exact crash_child --ignored`; `KETEN_CRASH_SEED=<seed>` replays the kill points.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use keten_keys::chrono::DateTime;
use keten_keys::{FileKeyStore, KeyId, KeyState, KeyStore};

const CHILD_TEST: &str = "crash_child";
const ENV_DIR: &str = "KETEN_KEYS_CRASH_DIR";
const ENV_ROUND: &str = "KETEN_KEYS_CRASH_ROUND";
const ENV_SEED: &str = "KETEN_CRASH_SEED";
const ROUNDS: u64 = 12;
/// Concurrent creators in the child.
const WORKERS: u64 = 4;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| out.flush())
        .expect("child: stdout");
}

#[test]
#[ignore = "the child half of sigkill_loses_no_created_key, which starts it"]
fn crash_child() {
    let Some(dir) = std::env::var_os(ENV_DIR) else {
        return;
    };
    let round: u64 = std::env::var(ENV_ROUND).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = FileKeyStore::open(PathBuf::from(dir))
            .await
            .expect("child: open");
        say("READY");
        // Creators at once, so that kills land amid group-committed flushes of the key
        // table shared by several creates, and in destroys between them.
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0u64.. {
                        let id = KeyId::new(format!("k-{round}-{w}-{n}")).unwrap();
                        let k = store.create(&id).await.expect("child: create");
                        say(&format!("CREATED {id} {}", hex(k.expose_bytes())));
                        // A create from the pool returns without waiting: let the other
                        // workers (the destroying one among them) take turns.
                        tokio::task::yield_now().await;
                        if w == 0 && n % 4 == 3 {
                            // Destroy one created two steps back, at a time that names it.
                            let old = KeyId::new(format!("k-{round}-0-{}", n - 2)).unwrap();
                            let at =
                                DateTime::from_timestamp_micros((round * 1_000_000 + n) as i64)
                                    .unwrap();
                            store.destroy(&old, at).await.expect("child: destroy");
                            say(&format!("DESTROYED {old} {}", at.timestamp_micros()));
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.expect("child: worker");
        }
    });
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the child acknowledged: created keys, and destruction times.
#[derive(Default)]
struct Acked {
    created: BTreeMap<String, Vec<u8>>,
    destroyed: BTreeMap<String, i64>,
}

/// When the parent kills the child: after this many acknowledgements, of any kind or of
/// destroys only.
struct KillAt {
    acks: usize,
    destroys_only: bool,
}

fn run_child(dir: &Path, round: u64, kill: KillAt, acked: &mut Acked) {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_DIR, dir)
        .env(ENV_ROUND, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut child = ChildGuard(child);
    let mut stderr = child.0.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let (mut acks, mut killed, mut line) = (0usize, false, String::new());
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read child stdout");
        // EOF, or a last line cut by the kill: not an acknowledgement.
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = f.iter().position(|w| *w == "CREATED") {
            acked.created.insert(f[i + 1].to_string(), unhex(f[i + 2]));
            acks += usize::from(!kill.destroys_only);
        } else if let Some(i) = f.iter().position(|w| *w == "DESTROYED") {
            acked
                .destroyed
                .insert(f[i + 1].to_string(), f[i + 2].parse().unwrap());
            acks += 1;
        }
        if !killed && acks >= kill.acks {
            child.0.kill().expect("SIGKILL the child");
            killed = true;
            // Lines already in the pipe are acknowledgements too: read on.
        }
    }
    let status = child.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(
        killed && status.signal() == Some(9),
        "round {round}: the child ended on its own ({status}); stderr:\n{}",
        stderr.join().unwrap_or_default()
    );
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let b = std::fs::read(p).unwrap();
            b.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

#[test]
fn sigkill_loses_no_created_key() {
    let seed: u64 = std::env::var(ENV_SEED)
        .ok()
        .map(|s| s.parse().expect("KETEN_CRASH_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (replay with {ENV_SEED}={seed})");
    // xorshift: enough for kill points.
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut acked = Acked::default();
    for round in 0..ROUNDS {
        // Creates from the pool take microseconds and a destroy milliseconds (its tombstone and
        // zeros are flushed): every other round is killed after a few destroys, so that kills
        // land amid destroys too and some destroys are acknowledged.
        let kill = if round % 2 == 0 {
            KillAt {
                acks: 1 + (next() % 120) as usize,
                destroys_only: false,
            }
        } else {
            KillAt {
                acks: 1 + (next() % 4) as usize,
                destroys_only: true,
            }
        };
        run_child(dir.path(), round, kill, &mut acked);
        rt.block_on(async {
            let store = FileKeyStore::open(dir.path())
                .await
                .unwrap_or_else(|e| panic!("seed {seed} round {round}: reopen: {e}"));
            for (id, key) in &acked.created {
                let state = store.get(&KeyId::new(id.as_str()).unwrap()).await.unwrap();
                match (state, acked.destroyed.get(id)) {
                    (KeyState::Live(k), None) => {
                        assert_eq!(&k.expose_bytes()[..], &key[..], "seed {seed}: {id} changed");
                    }
                    (KeyState::Destroyed { destroyed_at }, Some(&at)) => {
                        assert_eq!(destroyed_at.timestamp_micros(), at);
                        assert!(
                            files_containing(dir.path(), key).is_empty(),
                            "seed {seed}: destroyed {id}'s bytes are on disk"
                        );
                    }
                    // Destroyed but the child died before saying so: allowed.
                    (KeyState::Destroyed { .. }, None) => {}
                    (other, d) => {
                        panic!("seed {seed} round {round}: {id} is {other:?} (destroyed: {d:?})")
                    }
                }
            }
        });
    }
    assert!(
        acked.created.len() >= ROUNDS as usize && !acked.destroyed.is_empty(),
        "seed {seed}: too little happened to test anything ({} created, {} destroyed)",
        acked.created.len(),
        acked.destroyed.len()
    );
    eprintln!(
        "{ROUNDS} rounds: {} created and {} destroyed keys checked",
        acked.created.len(),
        acked.destroyed.len()
    );
}
