//! [`SmallFs`]: a real file system that fills up, for the disk-full tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small file system mounted on a fresh temporary directory, unmounted (and the directory
/// removed) on drop: a tmpfs, or ext4 on a loop-mounted image file (the filesystem a server
/// runs on, with its own allocation: delayed allocation, extents, a journal). Mounting needs
/// root (CAP_SYS_ADMIN), which this machine and CI have; where it is refused, the constructor
/// panics saying so: a disk-full test that cannot get a disk to fill must fail, not pass
/// without testing anything.
///
/// Drop a process using the mount (a `keten serve` guard) before this guard.
pub struct SmallFs {
    dir: tempfile::TempDir,
    /// The ext4 image, removed after the unmount.
    _image: Option<tempfile::TempDir>,
}

impl SmallFs {
    /// Mounts a tmpfs of `bytes` (rounded up to pages by the kernel).
    pub fn tmpfs(bytes: u64) -> SmallFs {
        let dir = mount_point();
        mount(
            &dir,
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0700"),
                "keten-small-fs",
            ],
            &format!("a {bytes}-byte tmpfs"),
        );
        SmallFs { dir, _image: None }
    }

    /// Makes an ext4 image of `bytes` (no blocks reserved for root, so that the test, run as
    /// root, meets the same full disk a server would) and loop-mounts it.
    pub fn ext4(bytes: u64) -> SmallFs {
        let image_dir = tempfile::tempdir().expect("temp dir for the image");
        let image = image_dir.path().join("ext4.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(bytes))
            .expect("create the image file");
        run(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0"])
                .arg(&image),
            "mkfs.ext4 (e2fsprogs) to make a small file system",
        );
        let dir = mount_point();
        let image_arg = image.display().to_string();
        mount(
            &dir,
            &["-t", "ext4", "-o", "loop", &image_arg],
            &format!("a {bytes}-byte ext4 image"),
        );
        SmallFs {
            dir,
            _image: Some(image_dir),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with files in the directory `name`, then gives back `leave` bytes
    /// of them: the quick way to bring a log to the edge of a full disk. Returns the directory;
    /// [`SmallFs::free`] removes it and frees the space again.
    pub fn fill(&self, name: &str, leave: u64) -> PathBuf {
        let dir = self.path().join(name);
        std::fs::create_dir(&dir).expect("create the filler directory");
        let big = dir.join("big");
        let chunk = vec![0xAAu8; 64 << 10];
        let mut len = 0u64;
        // Round after round until one finds no room at all: ext4 refuses a write while it holds
        // a worst-case reservation for the delayed allocation of earlier ones and gives the
        // unused part back on the flush, and gives back the blocks it preallocated for the file
        // when the file is closed.
        for round in 0.. {
            assert!(round < 1000, "{} keeps growing", big.display());
            let before = len;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&big)
                .expect("open the filler file");
            while let Some(n) = write_or_full(&mut f, &chunk, &big) {
                len += n as u64;
            }
            f.sync_all().expect("sync the filler");
            if len == before {
                break;
            }
        }
        // ext4 still has room for new small files when a large one may not grow (its 2%
        // reserve and the big file's extent tree): take it too, down to single blocks.
        let mut n = 0;
        for size in [16 << 10, 4 << 10, 1 << 10] {
            loop {
                let path = dir.join(format!("small-{n}"));
                n += 1;
                let Ok(mut f) = std::fs::File::create(&path) else {
                    break;
                };
                let written = write_or_full(&mut f, &chunk[..size], &path)
                    .is_some_and(|w| w == size)
                    && f.sync_all().is_ok();
                if !written {
                    drop(f);
                    let _ = std::fs::remove_file(&path);
                    break;
                }
            }
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&big)
            .expect("open the filler file");
        f.set_len(len.saturating_sub(leave))
            .expect("give back part of the filler");
        // ext4 reuses the blocks a transaction freed only once it commits: commit it now.
        f.sync_all().expect("sync the filler");
        dir
    }

    /// Removes a filler directory and commits the removal, so that its space is free at once.
    pub fn free(&self, filler: &Path) {
        std::fs::remove_dir_all(filler).expect("remove the filler");
        std::fs::File::open(self.path())
            .and_then(|d| d.sync_all())
            .expect("sync the file system");
    }
}

/// One `write`: the bytes written, or `None` when the file system is full.
fn write_or_full(f: &mut std::fs::File, buf: &[u8], path: &Path) -> Option<usize> {
    match f.write(buf) {
        Ok(0) => None,
        Ok(n) => Some(n),
        Err(e) if e.raw_os_error() == Some(28) => None,
        Err(e) => panic!("filling {}: {e}", path.display()),
    }
}

fn mount_point() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("keten-small-fs-")
        .tempdir()
        .expect("temp dir for the mount point")
}

fn mount(dir: &tempfile::TempDir, args: &[&str], what: &str) {
    run(
        Command::new("mount").args(args).arg(dir.path()),
        &format!(
            "mount to put {what} on {} for the disk-full test (this needs root, or \
             CAP_SYS_ADMIN)",
            dir.path().display()
        ),
    );
}

fn run(command: &mut Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
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
