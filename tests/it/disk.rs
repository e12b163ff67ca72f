//! `bundle create` on a disk too small for the bundle: refused before anything is fetched,
//! with a message that says how much is needed. The small disk is a real 4 MiB tmpfs (the
//! tests run as root, as CI does); a failure to mount it fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::generator;
use crate::support::{TestRegistry, airlift, run_with_timeout};

/// A tmpfs of a fixed size, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs at {} (these tests need root): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn bundle_create_refuses_a_disk_too_small_for_the_plan() {
    let source = TestRegistry::start();
    let images = generator::push(&source.addr(), &generator::small_set());
    let work = tempfile::tempdir().expect("tempdir");
    let list = generator::write_list(work.path(), &images, &source.addr());
    let disk = SmallDisk::mount("4m");
    let out_path: PathBuf = disk.path().join("release.tar.zst");

    let out = run_with_timeout(
        airlift()
            .args(["bundle", "create", "--list"])
            .arg(&list)
            .arg("-o")
            .arg(&out_path)
            .args(["--progress", "none"]),
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("not enough free space"), "stderr: {stderr}");
    assert!(stderr.contains("needed"), "stderr: {stderr}");
    // Nothing was fetched: the staging directory holds no blob, and no volume exists.
    let staged: Vec<_> = walk(&disk.path().join("release.tar.zst.staging/blobs"));
    assert!(
        staged.is_empty(),
        "fetched before checking space: {staged:?}"
    );
    assert!(!out_path.exists());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}
