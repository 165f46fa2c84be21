//! A small filesystem of the test's own, to fill (a tmpfs; CI runs as root).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size`, unmounted when dropped.
pub struct Mount {
    dir: tempfile::TempDir,
}

impl Mount {
    pub fn new(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills it with a ballast file; the file's path, to free the space.
    pub fn fill(&self) -> PathBuf {
        let path = self.path().join("ballast");
        let mut f = std::fs::File::create(&path).expect("ballast");
        let block = vec![0u8; 64 << 10];
        while f.write_all(&block).is_ok() {}
        // Then byte by byte, so not even a small page is left.
        while f.write_all(&[0]).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
