//! `keten demo`: one family's course through OMPG, published over gRPC by five partner systems,
//! then the coordinated plan as a coordinator reads it.
//!
//! By default it starts a server itself, in this process, on a temporary data directory with a
//! fresh development PKI and the example configuration; with `--server` it talks to a running
//! one using the client certificates of that server's PKI directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use keten::client::{Session, connect, publish_request};
use keten::pki::write_pki;
use keten::{report, scenario};
use keten_domain::FamilyId;
use keten_log::Durability;
use keten_proto::v1;
use keten_server::config::Config;
use tokio::sync::oneshot;

use crate::cli::DemoArgs;
use crate::cmd::serve::{runtime, serve, shutdown_signal};
use crate::settings::{load_config, parse};

/// The example configuration, shipped in `deploy/`; the demo runs on exactly its partners.
pub const EXAMPLE_CONFIG: &str = include_str!("../../../../deploy/keten.example.toml");

pub fn run(args: DemoArgs) -> Result<()> {
    runtime()?.block_on(async move {
        match &args.server {
            Some(url) => {
                let config_path = args.config.as_ref().context("--server needs --config")?;
                let config = load_config(config_path)?;
                let pki = args.pki.clone().unwrap_or_else(|| pki_dir(&config));
                play(url, &pki, &config).await
            }
            None => with_own_server(&args).await,
        }
    })
}

fn pki_dir(config: &Config) -> PathBuf {
    config
        .tls
        .ca
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

async fn with_own_server(args: &DemoArgs) -> Result<()> {
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let pki = tmp.path().join("pki");
    let (config, _, web_config) =
        parse(EXAMPLE_CONFIG, tmp.path()).context("the example configuration")?;
    // Served after the scenario when asked, or when a person watches (a terminal); a script
    // that reads the output gets the old behaviour: play, print, exit.
    let keep_serving =
        args.serve || (!args.exit && std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let clients: Vec<(String, String)> = config
        .partners
        .iter()
        .map(|p| (p.id.to_string(), p.certificate.clone()))
        .collect();
    write_pki(&pki, &clients)?;
    let web = match (keep_serving, web_config) {
        (true, Some(web_config)) => Some(demo_web(web_config, args.web_listen, &config)?),
        _ => None,
    };
    let web_addr = web.as_ref().map(keten_web::Prepared::addr);
    println!(
        "Starting keten on a temporary data directory ({}) with a development PKI.",
        tmp.path().display()
    );
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server_config = config.clone();
    let data = tmp.path().join("data");
    let server = tokio::spawn(async move {
        serve(
            server_config,
            data,
            ("127.0.0.1:0".parse().expect("valid"), None),
            (Durability::Fsync, std::time::Duration::from_secs(5)),
            web,
            move |bound, _| {
                let _ = ready_tx.send(bound.grpc);
            },
            async move {
                let _ = stop_rx.await;
            },
        )
        .await
    });
    let addr = match ready_rx.await {
        Ok(addr) => addr,
        Err(_) => {
            return match server.await {
                Ok(Err(e)) => Err(e.context("the demo server did not start")),
                _ => bail!("the demo server did not start"),
            };
        }
    };
    let url = format!("https://{addr}");
    println!("keten listening on {addr}\n");
    let played = play(&url, &pki, &config).await;
    if played.is_ok() {
        match web_addr {
            Some(addr) => {
                let shutdown = shutdown_signal();
                // The last line: where to look, and how.
                println!(
                    "\nDashboard: https://{addr}/ (sign in as coordinator, auditor, agent or \
                     manager; the browser must trust {}; Ctrl-C stops)",
                    pki.join("ca.pem").display()
                );
                shutdown.await;
            }
            None if !keep_serving => println!(
                "\nThe coordinator's screen stays open with `keten demo --serve` (or run it in a terminal)."
            ),
            None => {}
        }
    }
    let _ = stop_tx.send(());
    let stopped = server.await.context("the demo server task")?;
    played?;
    stopped
}

async fn play(url: &str, pki: &Path, config: &Config) -> Result<()> {
    let mut channels = HashMap::new();
    for p in &config.partners {
        channels.insert(p.id.to_string(), connect(url, pki, p.id.as_str()).await?);
    }
    let session = |who: &scenario::Who| -> Result<Session> {
        let ch = channels
            .get(who.partner)
            .with_context(|| format!("partner `{}` is not in the configuration", who.partner))?;
        Ok(Session::new(ch.clone(), who.person, who.role))
    };
    let today = keten_projection::today();
    let family = FamilyId::new(format!(
        "gezin-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ))?;
    println!("The chain works on family {family} (a pseudonym; no BSN leaves a partner).\n");

    let mut version: Option<u64> = None;
    let mut last_position = 0;
    for step in scenario::steps(&family, today) {
        let s = session(&step.who)?;
        let request = publish_request(&family, Some(expected(version)), &step.events);
        let answer = s
            .gateway()
            .publish(s.request(request))
            .await
            .map_err(|st| anyhow::anyhow!("{}: {} {}", step.label, st.code(), st.message()))?
            .into_inner();
        version = Some(answer.version);
        last_position = answer.last_position;
        println!(
            "  {:<17} {:<15} {} ({} event(s), family at version {})",
            step.who.partner,
            step.who.role.as_str(),
            step.label,
            step.events.len(),
            answer.version
        );
    }

    // One refusal, to show what a partner system hears when the rules say no.
    let police = session(&scenario::police_system())?;
    let refused = police
        .gateway()
        .publish(police.request(publish_request(
            &family,
            Some(expected(version)),
            &[keten_domain::Event::GoalAchieved {
                goal_id: scenario::gid("g-overlast"),
                occurred_on: today,
            }],
        )))
        .await;
    match refused {
        Err(st) => println!(
            "\n  politie tries to mark a goal achieved, which is for the family manager or the coordinator:\n    refused: {:?}: {}",
            st.code(),
            st.message()
        ),
        Ok(_) => println!("\n  (the police were allowed to mark a goal achieved)"),
    }

    let coordinator = session(&scenario::coordinator())?;
    let plan = coordinator
        .coordination()
        .get_family_plan(coordinator.request(v1::GetFamilyPlanRequest {
            family_id: family.to_string(),
            min_position: Some(last_position),
        }))
        .await
        .map_err(|st| anyhow::anyhow!("reading the plan: {} {}", st.code(), st.message()))?
        .into_inner();
    println!(
        "\nThe coordinated plan, as the municipality's coordinator reads it (version {}):\n",
        plan.version
    );
    print!(
        "{}",
        report::plan_text(plan.plan.as_ref().context("the answer has no plan")?)
    );
    Ok(())
}

/// The demo's web screen on the example's address, or on a free port when that one is taken
/// (another demo running, say).
fn demo_web(
    web: keten_web::WebConfig,
    flag: Option<std::net::SocketAddr>,
    config: &Config,
) -> Result<keten_web::Prepared> {
    let wanted = flag
        .or(web.listen)
        .unwrap_or_else(|| "127.0.0.1:8443".parse().expect("valid"));
    match keten_web::Prepared::new(web.clone(), wanted, &config.tls, &config.partners) {
        Ok(p) => Ok(p),
        Err(keten_web::Error::Io { .. }) if flag.is_none() => {
            let any = std::net::SocketAddr::new(wanted.ip(), 0);
            keten_web::Prepared::new(web, any, &config.tls, &config.partners)
                .context("the demo's web screen")
        }
        Err(e) => Err(e).context("the demo's web screen"),
    }
}

fn expected(version: Option<u64>) -> v1::ExpectedVersion {
    use v1::expected_version::Kind;
    v1::ExpectedVersion {
        kind: Some(match version {
            None => Kind::NoStream(v1::Empty {}),
            Some(v) => Kind::Exact(v),
        }),
    }
}
