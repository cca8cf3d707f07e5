//! Offline verification of a data directory, for `keten verify`.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::format::{SEGMENT_HEADER_LEN, io_err};
use crate::recovery::{
    Chain, check_contiguous, check_header_chain, list_segments, open_segment_file, read_header,
    scan_segment,
};
use crate::types::GlobalPosition;

/// What a full walk of a data directory found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: u64,
    /// Events in complete appends, all with valid checksums and chain links.
    pub events: u64,
    pub head: Option<GlobalPosition>,
    /// BLAKE3 of the last record, hex: the value a later walk must reach again.
    pub head_hash: String,
    /// A torn write at the end of the last segment, which the next open would cut off.
    pub torn_tail: Option<TornTail>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    pub offset: u64,
    pub bytes: u64,
}

/// Walks every segment of `dir`: headers, every record's CRC, the hash chain, positions and
/// appends. Changes nothing and takes no lock, so on a live directory the tail being written may
/// show up as torn. The first damage is an [`crate::Error::Corrupt`] naming file, offset and
/// position.
pub fn verify_dir(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let ids = list_segments(dir, false)?;
    check_contiguous(dir, &ids)?;
    let mut chain = Chain::start();
    let mut torn_tail = None;
    for (k, &id) in ids.iter().enumerate() {
        let f = open_segment_file(dir, id, false)?;
        let header = read_header(&f.path, &f.file, id)?;
        check_header_chain(&f.path, &header, &chain)?;
        let len = f.file.metadata().map_err(io_err(&f.path))?.len();
        let last = k + 1 == ids.len();
        let scanned = scan_segment(
            &f.path,
            &f.file,
            SEGMENT_HEADER_LEN as u64,
            len,
            &mut chain,
            last,
            &mut |_, _| {},
        )?;
        if let Some(t) = scanned.torn {
            torn_tail = Some(TornTail {
                file: f.path.clone(),
                offset: t.cut,
                bytes: t.dropped,
            });
        }
    }
    Ok(VerifyReport {
        segments: ids.len() as u64,
        events: chain.next_position,
        head: chain.next_position.checked_sub(1).map(GlobalPosition),
        head_hash: chain.prev_hash.iter().map(|b| format!("{b:02x}")).collect(),
        torn_tail,
    })
}
