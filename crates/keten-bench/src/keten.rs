//! keten's embedded file log.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::stats::Measured;

pub struct BigLog {
    pub events: u64,
    pub fill: Duration,
    pub open_clean: Duration,
    pub open_rebuild: Option<Duration>,
    pub scan: Duration,
}

pub async fn write(_dir: &Path, _writers: usize, _batch: usize, _d: Duration) -> Result<Measured> {
    bail!("FileLog has not landed yet")
}

pub async fn read_stream(
    _dir: &Path,
    _stream: &str,
    _events: u64,
    _reads: usize,
) -> Result<Measured> {
    bail!("FileLog has not landed yet")
}

pub async fn big_log(_dir: &Path, _events: u64) -> Result<BigLog> {
    bail!("FileLog has not landed yet")
}
