//! One step from parsed flags and the configuration file to the settings a command acts on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use keten_server::config::Config;
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
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("in configuration {}", path.display()))?;
    let mut store_table = toml::Table::new();
    for key in ["store", "nats"] {
        if let Some(v) = table.remove(key) {
            store_table.insert(key.into(), v);
        }
    }
    let store: StoreConfig = toml::Value::Table(store_table)
        .try_into()
        .with_context(|| format!("in configuration {}", path.display()))?;
    let mut config: Config = toml::Value::Table(table)
        .try_into()
        .with_context(|| format!("in configuration {}", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    config.resolve_paths(base);
    config
        .check()
        .with_context(|| format!("in configuration {}", path.display()))?;
    Ok((config, store))
}

/// The log's directory inside a data directory. `keten verify` also accepts the log directory
/// itself.
pub fn log_dir(data: &Path) -> PathBuf {
    data.join("log")
}

pub fn snapshot_dir(data: &Path) -> PathBuf {
    data.join("projection")
}
