//! One step from parsed flags and the configuration file to the settings a command acts on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use keten_server::config::Config;

/// Reads and checks a TOML configuration; relative paths are taken from its directory.
pub fn load_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration {}", path.display()))?;
    let mut config: Config =
        toml::from_str(&text).with_context(|| format!("in configuration {}", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    config.resolve_paths(base);
    config
        .check()
        .with_context(|| format!("in configuration {}", path.display()))?;
    Ok(config)
}

/// The log's directory inside a data directory. `keten verify` also accepts the log directory
/// itself.
pub fn log_dir(data: &Path) -> PathBuf {
    data.join("log")
}

pub fn snapshot_dir(data: &Path) -> PathBuf {
    data.join("projection")
}
