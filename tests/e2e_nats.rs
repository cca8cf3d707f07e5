//! keten on NATS JetStream end to end: the real `keten serve --store nats://...` on real
//! `nats-server` processes (the test kit's, and the configurations in `deploy/`).

mod util;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use futures::StreamExt;
use keten::client::{Session, publish_request as request};
use keten::scenario::{self, mid};
use keten_domain::{Event, FamilyId, Role};
use keten_proto::v1::{self, expected_version::Kind};
use keten_testkit::{NatsCluster, NatsServer, free_ports};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use util::{Dir, KETEN, Server};

fn today() -> NaiveDate {
    keten_projection::today()
}

fn family(name: &str) -> FamilyId {
    FamilyId::new(name).unwrap()
}

fn expected(kind: Kind) -> Option<v1::ExpectedVersion> {
    Some(v1::ExpectedVersion { kind: Some(kind) })
}

async fn publish(s: &Session, req: v1::PublishRequest) -> Result<v1::PublishResponse, Status> {
    s.gateway()
        .publish(s.request(req))
        .await
        .map(|r| r.into_inner())
}

async fn plan(s: &Session, family: &FamilyId, min: u64) -> v1::GetFamilyPlanResponse {
    s.coordination()
        .get_family_plan(s.request(v1::GetFamilyPlanRequest {
            family_id: family.to_string(),
            min_position: Some(min),
        }))
        .await
        .expect("plan")
        .into_inner()
}

async fn history(auditor: &Session, family: &FamilyId) -> v1::ReadFamilyHistoryResponse {
    auditor
        .audit()
        .read_family_history(auditor.request(v1::ReadFamilyHistoryRequest {
            family_id: family.to_string(),
            from_version: 0,
            max_count: 0,
        }))
        .await
        .expect("history")
        .into_inner()
}

fn actual_version(st: &Status) -> String {
    let info = st
        .get_details_error_info()
        .expect("error info in the details");
    info.metadata["actual_version"].clone()
}

fn coordinator(server: &Server) -> impl Future<Output = Session> {
    let who = scenario::coordinator();
    server.session(who.partner, who.person, who.role)
}

fn police(server: &Server) -> impl Future<Output = Session> {
    let who = scenario::police_system();
    server.session(who.partner, who.person, who.role)
}

fn auditor(server: &Server) -> impl Future<Output = Session> {
    server.session(scenario::MUNICIPALITY, "auditor-1", Role::Auditor)
}

fn contact() -> Event {
    Event::PoliceContactRecorded {
        member_id: Some(mid("c1")),
        occurred_on: today(),
    }
}

/// Two keten servers on one three-node cluster serve the same families: a change made through
/// one reaches a watcher on the other, a race between them on one expected version has exactly
/// one winner, and after concurrent load both answer the same plans and histories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_cluster_serve_the_same_families() {
    let cluster = NatsCluster::start();
    let monitors = cluster.monitor_urls().join(",");
    let store = cluster.urls();
    let args = [
        "--store",
        &store,
        "--nats-replicas",
        "3",
        "--nats-monitor",
        &monitors,
    ];
    // Two directories: each server has its own data directory (its projection snapshot).
    let (dir_a, dir_b) = (Dir::new(), Dir::new());
    let a = dir_a.serve_with(&args);
    let b = dir_b.serve_with(&args);
    let (coord_a, coord_b) = (coordinator(&a).await, coordinator(&b).await);
    let (police_a, police_b) = (police(&a).await, police(&b).await);

    // A family registered through A; B answers for it once its projection has the position.
    let fam = family("gezin-nats-twee");
    let steps = scenario::steps(&fam, today());
    let reg = publish(
        &coord_a,
        request(
            &fam,
            expected(Kind::NoStream(v1::Empty {})),
            &steps[0].events,
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        plan(&coord_b, &fam, reg.last_position).await.version,
        reg.version
    );

    // A watcher on B sees every publish made through A, in order.
    let mut watch = coord_b
        .coordination()
        .watch_family_plan(coord_b.request(v1::WatchFamilyPlanRequest {
            family_id: fam.to_string(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().version, reg.version);
    let mut v = reg.version;
    for step in &steps[1..4] {
        let who = &step.who;
        let s = a.session(who.partner, who.person, who.role).await;
        v = publish(&s, request(&fam, expected(Kind::Exact(v)), &step.events))
            .await
            .unwrap()
            .version;
    }
    let mut seen = Vec::new();
    while seen.last() != Some(&v) {
        let item = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("B's watcher sees A's publish within 10 s")
            .unwrap()
            .unwrap();
        seen.push(item.version);
    }
    assert_eq!(seen, ((reg.version + 1)..=v).collect::<Vec<_>>());

    // The same expected version through both servers at once: one wins, the other is ABORTED
    // with the winner's version as the actual one.
    for _ in 0..10 {
        let (ra, rb) = tokio::join!(
            publish(
                &police_a,
                request(&fam, expected(Kind::Exact(v)), &[contact()])
            ),
            publish(
                &police_b,
                request(&fam, expected(Kind::Exact(v)), &[contact()])
            ),
        );
        let (won, lost) = match (ra, rb) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            other => panic!("exactly one must win: {other:?}"),
        };
        assert_eq!(won.version, v + 1);
        assert_eq!(lost.code(), Code::Aborted, "{lost:?}");
        assert_eq!(actual_version(&lost), (v + 1).to_string());
        v += 1;
    }

    // Load through both servers at once: four more families, each registered through one
    // server, then contacts through both with "any".
    let mut families = vec![fam.clone()];
    for i in 0..4 {
        let f = family(&format!("gezin-nats-last-{i}"));
        let via = if i % 2 == 0 { &coord_a } else { &coord_b };
        publish(
            via,
            request(
                &f,
                expected(Kind::NoStream(v1::Empty {})),
                &scenario::steps(&f, today())[0].events,
            ),
        )
        .await
        .unwrap();
        let joins = &scenario::steps(&f, today())[2].events[..1];
        publish(
            if i % 2 == 0 { &police_b } else { &police_a },
            request(&f, expected(Kind::Any(v1::Empty {})), joins),
        )
        .await
        .unwrap();
        families.push(f);
    }
    let load = families.iter().flat_map(|f| {
        [&police_a, &police_b].map(|p| async move {
            let mut last = 0;
            for _ in 0..10 {
                last = publish(
                    p,
                    request(f, expected(Kind::Any(v1::Empty {})), &[contact()]),
                )
                .await
                .unwrap()
                .last_position;
            }
            last
        })
    });
    let head = futures::future::join_all(load)
        .await
        .into_iter()
        .max()
        .unwrap();

    // Both projections agree, event for event, once each has reached the last position.
    let (aud_a, aud_b) = (auditor(&a).await, auditor(&b).await);
    let mut events = 0;
    for f in &families {
        let (pa, pb) = (plan(&coord_a, f, head).await, plan(&coord_b, f, head).await);
        assert_eq!(
            (&pa.plan, pa.version, pa.last_position),
            (&pb.plan, pb.version, pb.last_position),
            "plans of {f} differ"
        );
        let (ha, hb) = (history(&aud_a, f).await, history(&aud_b, f).await);
        assert_eq!(ha, hb, "histories of {f} differ");
        assert_eq!(ha.events.len() as u64, pa.version + 1);
        events += ha.events.len();
    }
    // 10 races + 5 families × 20 contacts at least.
    assert!(events > 110, "{events} events");
}

/// A server that acknowledges before fsync (the default `sync_interval`) is refused, with the
/// setting to change in the message; the explicitly named flag accepts it.
#[test]
fn a_server_that_acknowledges_before_fsync_is_refused_plainly() {
    let nats = NatsServer::start_without_sync_always();
    let dir = Dir::new();
    let url = nats.url();
    let monitor = nats.monitor_url();
    let err = dir
        .try_serve(&["--store", &url, "--nats-monitor", &monitor])
        .err()
        .expect("keten must refuse a server without sync_interval: always");
    assert!(
        err.contains("does not fsync before acknowledging")
            && err.contains("sync_interval: always"),
        "{err}"
    );
    // Without a monitoring URL keten cannot check, and says so.
    let err = dir
        .try_serve(&["--store", &url])
        .err()
        .expect("keten must refuse to start unchecked");
    assert!(err.contains("no monitoring URL"), "{err}");
    let server = dir.serve_with(&["--store", &url, "--nats-accept-ack-before-fsync"]);
    assert!(
        server.terminate(),
        "keten accepted the flag but did not stop cleanly"
    );
}

/// `keten verify nats://...` walks the stream, and names a foreign message in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_walks_a_jetstream_stream_and_names_the_break() {
    let nats = NatsServer::start();
    let dir = Dir::new();
    let (url, monitor) = (nats.url(), nats.monitor_url());
    let server = dir.serve_with(&["--store", &url, "--nats-monitor", &monitor]);
    let coord = coordinator(&server).await;
    let fam = family("gezin-nats-verify");
    let steps = scenario::steps(&fam, today());
    let reg = publish(
        &coord,
        request(
            &fam,
            expected(Kind::NoStream(v1::Empty {})),
            &steps[0].events,
        ),
    )
    .await
    .unwrap();
    let events = reg.last_position + 1;
    let out = dir.run_ok(&["verify", &url]);
    assert!(out.contains(&format!("ok: {events} events")), "{out}");
    assert!(server.terminate());

    // A message published straight to the log's subjects, past keten: JetStream stores it.
    let client = keten_nats::NatsLog::connect(
        &url,
        keten_nats::NatsLogOptions {
            fsync: keten_nats::FsyncCheck::AcceptAckBeforeFsync,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .client()
    .clone();
    client
        .request("keten.e.gezin-nats-verify", "not an event".into())
        .await
        .expect("JetStream acknowledges the foreign message");
    let out = dir.run(&["verify", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("is damaged") && err.contains(&format!("stream sequence {}", events + 1)),
        "{err}"
    );
}

/// The three nodes of `deploy/nats/`, each on its configuration file unchanged, with free ports
/// and temporary stores through the variables the files name.
struct DeployCluster {
    nodes: Vec<NatsServer>,
    ports: Vec<(u16, u16)>,
    /// Dropped after the nodes (fields drop in order): the stores outlive the servers.
    _stores: tempfile::TempDir,
}

impl DeployCluster {
    fn start() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats");
        let p = free_ports(9);
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|i| (p[3 * i], p[3 * i + 1], p[3 * i + 2]))
            .collect();
        let mut nodes = Vec::new();
        let stores = tempfile::tempdir().unwrap();
        for (i, &(port, monitor, cport)) in ports.iter().enumerate() {
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, r)| format!("nats-route://127.0.0.1:{}", r.2))
                .collect();
            let store = stores.path().join(format!("node-{}", i + 1));
            let env = [
                ("KETEN_NATS_HOST", "127.0.0.1".to_string()),
                ("KETEN_NATS_PORT", port.to_string()),
                ("KETEN_NATS_MONITOR", format!("127.0.0.1:{monitor}")),
                ("KETEN_NATS_CLUSTER_PORT", cport.to_string()),
                ("KETEN_NATS_STORE_DIR", store.display().to_string()),
                ("KETEN_NATS_ROUTE_A", routes[0].clone()),
                ("KETEN_NATS_ROUTE_B", routes[1].clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            nodes.push(NatsServer::start_with_config(
                &format!("keten-nats-{}", i + 1),
                &root.join(format!("node-{}.conf", i + 1)),
                env,
                (port, monitor),
            ));
        }
        for n in &mut nodes {
            n.wait_ready();
        }
        let ports = ports.iter().map(|&(c, m, _)| (c, m)).collect();
        Self {
            nodes,
            ports,
            _stores: stores,
        }
    }

    /// `deploy/keten.nats.toml` with the cluster's hosts, the test's PKI and free listeners in
    /// place of the production names: every other line as shipped.
    fn keten_config(&self, dir: &Dir) -> std::path::PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let mut text = std::fs::read_to_string(root.join("keten.nats.toml")).unwrap();
        for (i, (port, monitor)) in self.ports.iter().enumerate() {
            let host = format!("nats-{}.keten.internal", i + 1);
            text = text
                .replace(&format!("{host}:4222"), &format!("127.0.0.1:{port}"))
                .replace(&format!("{host}:8222"), &format!("127.0.0.1:{monitor}"));
        }
        assert!(
            !text.contains("keten.internal"),
            "a host left unsubstituted"
        );
        text = text
            .replace("/etc/keten/pki", &dir.pki.display().to_string())
            .replace("0.0.0.0:50051", "127.0.0.1:0")
            .replace("127.0.0.1:9464", "127.0.0.1:0");
        let path = dir.tmp.path().join("keten.nats.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.log_tail())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Registers a family through `server` and reads its plan back with read-your-writes.
async fn register_and_read(server: &Server, name: &str) {
    let coord = coordinator(server).await;
    let fam = family(name);
    let r = publish(
        &coord,
        request(
            &fam,
            expected(Kind::NoStream(v1::Empty {})),
            &scenario::steps(&fam, today())[0].events,
        ),
    )
    .await
    .unwrap();
    assert_eq!(plan(&coord, &fam, r.last_position).await.version, r.version);
}

/// `deploy/nats/node-{1,2,3}.conf` form a cluster, and `deploy/keten.nats.toml` serves on it with
/// a three-replica stream whose nodes all fsync before acknowledging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_cluster_and_keten_configuration_serve() {
    let cluster = DeployCluster::start();
    let dir = Dir::new();
    let config = cluster.keten_config(&dir);
    let data = dir.tmp.path().join("state");
    let args: Vec<String> = [
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let server = dir
        .try_launch(KETEN, &args)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails()));
    register_and_read(&server, "gezin-deploy").await;
    // The stream keten created has the three replicas the configuration asks for.
    let leader = cluster.nodes[0]
        .monitor_json("/jsz?streams=true&config=true")
        .expect("jsz");
    let replicas =
        leader["account_details"][0]["stream_detail"][0]["config"]["num_replicas"].as_u64();
    assert_eq!(replicas, Some(3), "{leader}");
    assert!(server.terminate());
}

/// `deploy/systemd/keten.service`: its `ExecStart=` line, with the binary's and configuration's
/// paths substituted, serves and stops cleanly on the unit's `KillSignal`; and systemd itself
/// accepts the unit where `systemd-analyze` exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_systemd_unit_serves_and_stops_on_sigterm() {
    let unit_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd/keten.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let directive = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(directive("KillSignal"), ["SIGTERM"]);
    for key in [
        "NoNewPrivileges",
        "ProtectSystem",
        "StateDirectory",
        "TimeoutStopSec",
        "LimitNOFILE",
        "Restart",
    ] {
        assert_eq!(directive(key).len(), 1, "{key}= missing");
    }
    assert_eq!(directive("ProtectSystem"), ["strict"]);
    assert_eq!(directive("Restart"), ["on-failure"]);
    let exec = directive("ExecStart");
    assert_eq!(exec.len(), 1);
    let state = directive("StateDirectory")[0].clone();

    let cluster = DeployCluster::start();
    let dir = Dir::new();
    let config = cluster.keten_config(&dir);
    let data = dir.tmp.path().join("state");
    let line = exec[0]
        .replace("/usr/local/bin/keten", KETEN)
        .replace("/etc/keten/keten.toml", config.to_str().unwrap())
        .replace(&format!("/var/lib/{state}"), data.to_str().unwrap());
    let mut words = line.split_whitespace().map(String::from);
    let program = words.next().unwrap();
    assert_eq!(program, KETEN, "ExecStart= runs another binary: {line}");
    let args: Vec<String> = words.collect();
    let server = dir
        .try_launch(&program, &args)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails()));
    register_and_read(&server, "gezin-systemd").await;
    let stop = Instant::now();
    assert!(server.terminate(), "keten did not exit cleanly on SIGTERM");
    let timeout: u64 = directive("TimeoutStopSec")[0].parse().unwrap();
    assert!(
        stop.elapsed() < Duration::from_secs(timeout),
        "slower than TimeoutStopSec"
    );

    match std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    {
        Err(_) => println!("note: systemd-analyze is not installed; `verify` of the unit skipped"),
        Ok(_) => {
            // systemd checks that the ExecStart= binary exists: point it at the built one.
            let tmp = tempfile::tempdir().unwrap();
            let copy = tmp.path().join("keten.service");
            std::fs::write(&copy, unit.replace("/usr/local/bin/keten", KETEN)).unwrap();
            let out = std::process::Command::new("systemd-analyze")
                .arg("verify")
                .arg(&copy)
                .output()
                .unwrap();
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "systemd-analyze verify: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
