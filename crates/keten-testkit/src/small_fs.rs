//! [`SmallFs`]: a real file system that fills up, for the disk-full tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a fixed size mounted on a fresh temporary directory, unmounted (and the directory
/// removed) on drop. Mounting needs root (CAP_SYS_ADMIN), which this machine and CI have; where
/// it is refused, [`SmallFs::mount`] panics saying so: a disk-full test that cannot get a disk to
/// fill must fail, not pass without testing anything.
///
/// Drop a process using the mount (a `keten serve` guard) before this guard.
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `bytes` (rounded up to pages by the kernel).
    pub fn mount(bytes: u64) -> SmallFs {
        let dir = tempfile::Builder::new()
            .prefix("keten-small-fs-")
            .tempdir()
            .expect("temp dir for the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("keten-small-fs")
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `mount` to make a small file system: {e}"));
        assert!(
            out.status.success(),
            "cannot mount a {bytes}-byte tmpfs on {} for the disk-full test (this needs root, \
             or CAP_SYS_ADMIN): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        SmallFs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the file `name` until the file system is full, then gives back `leave` bytes of
    /// it: the quick way to bring a log to the edge of a full disk. Returns the file's path;
    /// removing it frees the space again.
    pub fn fill(&self, name: &str, leave: u64) -> PathBuf {
        let path = self.path().join(name);
        let mut f = std::fs::File::create(&path).expect("create the filler file");
        let chunk = vec![0xAAu8; 64 << 10];
        let mut len = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => len += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        f.set_len(len.saturating_sub(leave))
            .expect("give back part of the filler");
        path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a child that outlived its guard): detach it, so that the directory
            // goes and the memory is freed once the last user is gone.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}
