//! `bundle create` and the disk: a disk too small for the plan is refused before anything is
//! fetched, with a message that says how much is needed; a disk that fills up anyway (another
//! writer) stops the run cleanly, keeps what was staged, and the same command completes once
//! there is room again. The small disks are real tmpfs mounts (the tests run as root, as CI
//! does); a failure to mount one fails the test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::faults::{MIB, Rig, fault_set};
use crate::support::generator;
use crate::support::proxy::Faults;
use crate::support::{
    TestRegistry, airlift, assert_exit, default_staging, run_with_timeout, sha256_hex,
};

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
    // Staging is in the cache (a big disk); the volumes' disk is the one too small.
    let staging = default_staging(&out_path);
    let line = format!("not enough free space in {}: ", disk.path().display());
    assert!(stderr.contains(&line), "no {line:?} in stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "needed (blobs to fetch are staged in {}",
            staging.display()
        )),
        "stderr: {stderr}"
    );
    // Private, like the load state directory.
    use std::os::unix::fs::PermissionsExt;
    for dir in [&staging, staging.parent().unwrap()] {
        let mode = std::fs::metadata(dir)
            .expect("staging")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    }
    // Nothing was fetched: the staging directory holds no blob, and no volume exists.
    let staged: Vec<_> = walk(&staging.join("blobs"));
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

/// The source is read at 8 MiB/s; once 3 MiB are staged another writer fills the
/// disk. The create stops at the first blob it cannot write (exit 1, saying the disk filled
/// up), writes no bundle, leaves no `.partial` file, and keeps only whole, verified staged
/// blobs. With the filler gone the same command completes and fetches only what was not
/// staged; the bundle verifies.
#[test]
fn bundle_create_stops_cleanly_when_the_disk_fills_and_resumes_after() {
    let rig = Rig::new(&fault_set());
    let proxy = rig.proxy(&rig.source, Faults::default().with_total_rate(8 * MIB));
    let unique = generator::unique_blob_bytes(&rig.images);
    // Room for the plan's check (twice the blobs plus 64 MiB), not much more.
    let disk = SmallDisk::mount("160m");
    let out_path = disk.path().join("set.tar.zst");
    // Staging on the small disk too (by default it is in the cache, on another disk).
    let staging = disk.path().join("staging");
    let staged_dir = staging.join("blobs/sha256");
    let list = rig.list_at(&proxy.addr().to_string());
    let create = || {
        let mut cmd = airlift();
        cmd.args(["bundle", "create", "--json", "--progress", "none", "--list"])
            .arg(&list)
            .arg("-o")
            .arg(&out_path)
            .arg("--staging-dir")
            .arg(&staging);
        cmd
    };

    let child = create()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn airlift");
    let deadline = Instant::now() + Duration::from_secs(60);
    // Wait for more than the small blobs: the 3 MiB layer.
    while size_of(&staged(&staged_dir)) < 3 * MIB {
        assert!(
            Instant::now() < deadline,
            "3 MiB were not staged within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let filler_path = disk.path().join("filler");
    let mut filler = std::fs::File::create(&filler_path).expect("create filler");
    let block = vec![0u8; 256 * 1024];
    let filled = loop {
        if let Err(e) = filler.write_all(&block).and_then(|()| filler.flush()) {
            break e;
        }
    };
    assert_eq!(
        filled.raw_os_error(),
        Some(28),
        "filler stopped with {filled}"
    );
    drop(filler);
    let out = child.wait_with_output().expect("wait for airlift");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("the disk filled up while staging")
            && stderr.contains("run the same command again"),
        "stderr: {stderr}"
    );
    assert!(!out_path.exists(), "a bundle was written on a full disk");
    let partial_volumes: Vec<_> = walk(disk.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "partial"))
        .collect();
    assert!(
        partial_volumes.is_empty(),
        "left behind: {partial_volumes:?}"
    );
    let kept = staged(&staged_dir);
    assert!(!kept.is_empty(), "the staged blobs were thrown away");
    let mut kept_bytes = 0;
    for path in &kept {
        let bytes = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        assert_eq!(
            sha256_hex(&bytes),
            name,
            "a staged blob is not what its name says"
        );
        kept_bytes += bytes.len() as u64;
    }
    eprintln!(
        "stopped with {} blobs ({kept_bytes} bytes) staged",
        kept.len()
    );

    std::fs::remove_file(&filler_path).expect("remove filler");
    let before = proxy.stats().bytes_to_client;
    let out = run_with_timeout(&mut create(), Duration::from_secs(120));
    assert_exit(&out, 0);
    let second = proxy.stats().bytes_to_client - before;
    eprintln!("second run fetched {second} bytes; unique {unique}, staged {kept_bytes}");
    assert!(
        second <= unique - kept_bytes + 512 * 1024,
        "the second run fetched {second} bytes, more than the {} not staged",
        unique - kept_bytes
    );
    let verify = run_with_timeout(
        airlift().args(["bundle", "verify"]).arg(&out_path),
        Duration::from_secs(120),
    );
    assert_exit(&verify, 0);
}

fn size_of(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Whole staged blobs (not `.partial`) under `dir`.
fn staged(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_none())
        .collect()
}
