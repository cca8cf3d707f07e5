//! One step from parsed flags and the configuration file to the settings a command acts on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use keten_server::config::Config;
use keten_web::WebConfig;
use serde::Deserialize;

/// Reads and checks a TOML configuration; relative paths are taken from its directory.
pub fn load_config(path: &Path) -> Result<Config> {
    Ok(load(path)?.0)
}

/// Where the log lives. The server's `Config` knows nothing of it: the store is chosen here,
/// in the binary, and everything above the log stays the same.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `nats://host:port[,host:port...]`; absent means the embedded log in the data directory.
    pub store: Option<String>,
    #[serde(default)]
    pub nats: NatsConfig,
}

/// The `[nats]` table: the JetStream options an operator decides.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    pub stream: Option<String>,
    pub replicas: Option<usize>,
    /// Every node's monitoring URL (`http://host:8222`), where keten checks `sync_always`.
    #[serde(default)]
    pub monitor_urls: Vec<String>,
    /// Starts without checking that the servers fsync before they acknowledge.
    #[serde(default)]
    pub accept_ack_before_fsync: bool,
}

/// The configuration file split into the server's part and the store's part (`store` and
/// `[nats]`).
pub fn load(path: &Path) -> Result<(Config, StoreConfig)> {
    let (config, store, _) = load_all(path)?;
    Ok((config, store))
}

/// The configuration file in three parts: the server's, the store's and the web screen's
/// (`[web]`, absent when the file has none).
pub fn load_all(path: &Path) -> Result<(Config, StoreConfig, Option<WebConfig>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration {}", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (config, store, web) =
        parse(&text, base).with_context(|| format!("in configuration {}", path.display()))?;
    Ok((config, store, web))
}

/// Parses and checks a configuration's text; relative paths are taken from `base`.
pub fn parse(text: &str, base: &Path) -> Result<(Config, StoreConfig, Option<WebConfig>)> {
    let mut table: toml::Table = toml::from_str(text)?;
    let web: Option<WebConfig> = table
        .remove("web")
        .map(|v| v.try_into().context("in [web]"))
        .transpose()?;
    let mut store_table = toml::Table::new();
    for key in ["store", "nats"] {
        if let Some(v) = table.remove(key) {
            store_table.insert(key.into(), v);
        }
    }
    let store: StoreConfig = toml::Value::Table(store_table).try_into()?;
    let mut config: Config = toml::Value::Table(table).try_into()?;
    config.resolve_paths(base);
    config.check()?;
    let web = web.map(|mut w| {
        w.resolve_paths(base);
        w
    });
    if let Some(w) = &web {
        w.check(&keten_server::auth::Directory::new(&config.partners))?;
    }
    Ok((config, store, web))
}

/// The log's directory inside a data directory. `keten verify` also accepts the log directory
/// itself.
pub fn log_dir(data: &Path) -> PathBuf {
    data.join("log")
}

pub fn snapshot_dir(data: &Path) -> PathBuf {
    data.join("projection")
}

/// The families' keys: beside the log, never in it. Keep it out of the log's backups (or back it
/// up on its own terms), or an erased family's key lives on in a backup.
pub fn keys_dir(data: &Path) -> PathBuf {
    data.join("keys")
}

/// The access log: a log of its own, with its own chain.
pub fn access_dir(data: &Path) -> PathBuf {
    data.join("access")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::StoreArgs;
    use crate::cmd::serve::nats_store;
    use keten_nats::FsyncCheck;

    const BASE: &str = "[tls]\nca = \"ca.pem\"\ncert = \"s.pem\"\nkey = \"s.key\"\n";

    fn load_text(text: &str) -> Result<(Config, StoreConfig)> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("keten.toml");
        std::fs::write(&path, text)?;
        load(&path)
    }

    #[test]
    fn the_store_is_read_apart_from_the_server_configuration() {
        let (config, store) = load_text(&format!(
            "store = \"nats://a:4222,b:4222\"\n{BASE}[nats]\nstream = \"S\"\nreplicas = 3\n\
             monitor_urls = [\"http://a:8222\"]\n"
        ))
        .unwrap();
        assert!(config.data_dir.is_none());
        assert_eq!(store.store.as_deref(), Some("nats://a:4222,b:4222"));
        assert_eq!(store.nats.replicas, Some(3));
        // Unknown keys stay errors, in either part.
        assert!(load_text(&format!("{BASE}[nats]\nreplica = 3\n")).is_err());
        assert!(load_text(&format!("stor = \"nats://a\"\n{BASE}")).is_err());
        // No store: the embedded log.
        let (_, store) = load_text(BASE).unwrap();
        assert!(nats_store(&StoreArgs::default(), store).unwrap().is_none());
    }

    #[test]
    fn flags_override_the_file_and_every_host_gets_the_scheme() {
        let (_, file) = load_text(&format!(
            "store = \"nats://file:4222\"\n{BASE}[nats]\nreplicas = 3\n\
             monitor_urls = [\"http://file:8222\"]\n"
        ))
        .unwrap();
        let args = StoreArgs {
            store: Some("nats://a:4222, b:4223".into()),
            nats_monitor: vec!["http://a:8222".into(), "http://b:8222".into()],
            ..Default::default()
        };
        let (url, opts) = nats_store(&args, file).unwrap().unwrap();
        assert_eq!(url, "nats://a:4222,nats://b:4223");
        assert_eq!(opts.replicas, 3);
        assert_eq!(opts.stream, "KETEN");
        match opts.fsync {
            FsyncCheck::Verify { monitor_urls } => {
                assert_eq!(monitor_urls, ["http://a:8222", "http://b:8222"])
            }
            other => panic!("{other:?}"),
        }
        let unsafe_args = StoreArgs {
            store: Some("nats://a:4222".into()),
            nats_accept_ack_before_fsync: true,
            ..Default::default()
        };
        let (_, opts) = nats_store(&unsafe_args, StoreConfig::default())
            .unwrap()
            .unwrap();
        assert!(matches!(opts.fsync, FsyncCheck::AcceptAckBeforeFsync));
        for bad in ["postgres://x", "nats://", "nats://,"] {
            let args = StoreArgs {
                store: Some(bad.into()),
                ..Default::default()
            };
            assert!(nats_store(&args, StoreConfig::default()).is_err(), "{bad}");
        }
    }
}
