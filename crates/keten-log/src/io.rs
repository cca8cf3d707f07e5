//! The writes of the log go through [`LogIo`], so that tests can inject the faults a disk can
//! produce (a full disk, a failing flush) without a special filesystem.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Every write-side file operation of the log. Reads go straight to the file: a fault there is
/// caught by the record checksums anyway.
pub trait LogIo: Send + Sync + std::fmt::Debug + 'static {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }

    /// Makes written data durable (`fdatasync`).
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    /// Makes data and metadata durable (`fsync`): after a size change or a new file.
    fn sync_all(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    /// Reserves blocks up to `len` bytes so that later writes do not grow the file: a flush then
    /// has less metadata to write. Where the filesystem cannot, the file simply grows as written.
    fn preallocate(&self, file: &File, len: u64) -> io::Result<()> {
        match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => Ok(()),
            Err(e)
                if e == rustix::io::Errno::OPNOTSUPP
                    || e == rustix::io::Errno::NOSYS
                    || e == rustix::io::Errno::INVAL =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The real thing.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdIo;

impl LogIo for StdIo {}

/// Syncs a directory so that a created, renamed or removed entry in it is durable.
pub fn sync_dir(dir: &std::path::Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
