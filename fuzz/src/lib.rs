//! Helpers the fuzz targets share: repairing checksums so that mutated inputs get past them,
//! and laying an input out as a log directory.
//!
//! A CRC stops almost every mutation at the first check, which would leave the code behind it
//! unfuzzed; so the targets let a flag byte in the input ask for the checksums to be repaired.
//! The offsets here follow `crates/keten-log/FORMAT.md`.

use std::path::Path;

const FRAME_HEADER_LEN: usize = 8;
const SEGMENT_HEADER_LEN: usize = 128;
/// Separates the files in a `segment_open` input.
pub const FILE_SEPARATOR: &[u8] = b"--next-file--";

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Writes the CRC the frame at `at` should have (CRC32C of the length field, then the body);
/// returns the offset after the frame, `None` when its length runs past the buffer.
pub fn fix_frame_crc(b: &mut [u8], at: usize) -> Option<usize> {
    let header_end = at.checked_add(FRAME_HEADER_LEN)?;
    if header_end > b.len() {
        return None;
    }
    let len = u32_at(b, at) as usize;
    let end = header_end.checked_add(len)?;
    if len == 0 || end > b.len() {
        return None;
    }
    let mut crc = crc32c::crc32c(&b[at..at + 4]);
    crc = crc32c::crc32c_append(crc, &b[header_end..end]);
    b[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    Some(end)
}

/// Repairs a segment: the header CRC (`header`), and the CRC of every frame that follows
/// (`records`) for as long as the lengths lead to whole frames.
pub fn fix_segment(b: &mut [u8], header: bool, records: bool) {
    if b.len() < SEGMENT_HEADER_LEN {
        return;
    }
    if header {
        let crc = crc32c::crc32c(&b[..124]);
        b[124..128].copy_from_slice(&crc.to_le_bytes());
    }
    if records {
        let mut at = SEGMENT_HEADER_LEN;
        while let Some(next) = fix_frame_crc(b, at) {
            at = next;
        }
    }
}

/// Repairs the CRC of every chunk of an index checkpoint whose lengths lead to a whole chunk.
pub fn fix_checkpoint(b: &mut [u8]) {
    const FIXED: usize = 80;
    let mut at = 0usize;
    loop {
        let c = &b[at..];
        if c.len() < FIXED + 4 {
            return;
        }
        let (from, to) = (u64_at(c, 16), u64_at(c, 24));
        let (k, m) = (u64_at(c, 32), u64_at(c, 40));
        let mut end = (k as usize)
            .checked_mul(32)
            .and_then(|n| n.checked_add(FIXED));
        for _ in 0..m.min(c.len() as u64) {
            end = end.and_then(|e| Some(e + 1 + *c.get(e)? as usize));
        }
        let rows = to
            .checked_sub(from)
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| n.checked_mul(32));
        let Some(end) = end
            .zip(rows)
            .and_then(|(e, r)| e.checked_add(r))
            .filter(|&e| e + 4 <= c.len())
        else {
            return;
        };
        let crc = crc32c::crc32c(&c[..end]);
        b[at + end..at + end + 4].copy_from_slice(&crc.to_le_bytes());
        at += end + 4;
    }
}

/// What a `segment_open` input asks for.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub fix_headers: bool,
    pub fix_records: bool,
    /// The last file of the input is `index.ckpt`, not a segment.
    pub checkpoint: bool,
    pub fix_checkpoint: bool,
}

impl Layout {
    pub fn from_flags(flags: u8) -> Self {
        Self {
            fix_headers: flags & 1 != 0,
            fix_records: flags & 2 != 0,
            checkpoint: flags & 4 != 0,
            fix_checkpoint: flags & 8 != 0,
        }
    }

    pub fn flags(self) -> u8 {
        u8::from(self.fix_headers)
            | u8::from(self.fix_records) << 1
            | u8::from(self.checkpoint) << 2
            | u8::from(self.fix_checkpoint) << 3
    }
}

/// The files of a `segment_open` input: (name, bytes), segments named 0, 1, ... in order.
pub fn files_of(input: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Some((&flags, rest)) = input.split_first() else {
        return Vec::new();
    };
    let layout = Layout::from_flags(flags);
    let mut parts = split(rest);
    let checkpoint = if layout.checkpoint && parts.len() > 1 {
        parts.pop()
    } else {
        None
    };
    let mut files: Vec<(String, Vec<u8>)> = parts
        .into_iter()
        .enumerate()
        .map(|(id, part)| {
            let mut b = part.to_vec();
            fix_segment(&mut b, layout.fix_headers, layout.fix_records);
            (format!("{id:020}.log"), b)
        })
        .collect();
    if let Some(c) = checkpoint {
        let mut b = c.to_vec();
        if layout.fix_checkpoint {
            fix_checkpoint(&mut b);
        }
        files.push(("index.ckpt".into(), b));
    }
    files
}

/// The input for `files` (segments in order, then optionally the checkpoint), the inverse of
/// [`files_of`]; for making seeds.
pub fn input_of(layout: Layout, files: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![layout.flags()];
    for (k, f) in files.iter().enumerate() {
        if k > 0 {
            out.extend_from_slice(FILE_SEPARATOR);
        }
        out.extend_from_slice(f);
    }
    out
}

fn split(b: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = b;
    while let Some(i) = rest
        .windows(FILE_SEPARATOR.len())
        .position(|w| w == FILE_SEPARATOR)
    {
        parts.push(&rest[..i]);
        rest = &rest[i + FILE_SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}

/// Empties `dir` and writes `files` into it.
pub fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    for entry in std::fs::read_dir(dir).expect("read the fuzz directory") {
        let path = entry.expect("a directory entry").path();
        std::fs::remove_file(&path).expect("clear the fuzz directory");
    }
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("write a fuzz file");
    }
}
