//! `bundle create` and the disk: a disk too small for the plan is refused before anything is
//! fetched or written, with a message that says how much is needed; a disk that fills up
//! anyway (another writer) stops the run cleanly, keeps the `.partial` volume, and the same
//! command resumes from it once there is room again. The small disks are real tmpfs mounts (the tests run as root, as CI
//! does); a failure to mount one fails the test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::faults::{MIB, Rig, fault_set};
use crate::support::generator;
use crate::support::proxy::Faults;
use crate::support::{
    TestRegistry, airlift, assert_exit, default_staging, json_report, number, run_with_timeout,
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
    let line = format!("not enough free space in {}: ", disk.path().display());
    assert!(stderr.contains(&line), "no {line:?} in stderr: {stderr}");
    assert!(
        stderr.contains("needed for the volumes"),
        "stderr: {stderr}"
    );
    // Nothing was written: no volume, no `.partial`, and nothing staged anywhere.
    let written = walk(disk.path());
    assert!(
        written
            .iter()
            .all(|p| p.file_name().unwrap() == "lost+found"),
        "written before checking space: {written:?}"
    );
    assert!(!default_staging(&out_path).exists());
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

/// The source is read at 8 MiB/s; once the volume holds 3 MiB another writer fills the
/// disk. The create stops (exit 1, naming the full disk), gives no volume its final name, and
/// keeps its `.partial` volume. With the filler gone the same command resumes from it,
/// fetches only what the `.partial` did not hold, and the bundle verifies.
#[test]
fn bundle_create_stops_cleanly_when_the_disk_fills_and_resumes_after() {
    let rig = Rig::new(&fault_set());
    let proxy = rig.proxy(&rig.source, Faults::default().with_total_rate(8 * MIB));
    let unique = generator::unique_blob_bytes(&rig.images);
    // Room for the plan's check (the blobs plus 16 MiB), not much more.
    let disk = SmallDisk::mount("96m");
    let out_path = disk.path().join("set.tar.zst");
    let partial = disk.path().join("set.tar.zst.partial");
    let list = rig.list_at(&proxy.addr().to_string());
    let create = || {
        let mut cmd = airlift();
        cmd.args(["bundle", "create", "--json", "--progress", "none", "--list"])
            .arg(&list)
            .arg("-o")
            .arg(&out_path);
        cmd
    };

    let child = create()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn airlift");
    let deadline = Instant::now() + Duration::from_secs(60);
    while size_of(std::slice::from_ref(&partial)) < 3 * MIB {
        assert!(
            Instant::now() < deadline,
            "3 MiB were not written within 60 s"
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
        stderr.contains("No space left on device") && stderr.contains("run the same command again"),
        "stderr: {stderr}"
    );
    assert!(
        !out_path.exists(),
        "a volume got its final name on a full disk"
    );
    assert!(partial.exists(), "the .partial volume was thrown away");

    std::fs::remove_file(&filler_path).expect("remove filler");
    let before = proxy.stats().bytes_to_client;
    let out = run_with_timeout(&mut create(), Duration::from_secs(120));
    assert_exit(&out, 0);
    let second = proxy.stats().bytes_to_client - before;
    let report = json_report(&out);
    let kept = number(&report, "bytes_skipped");
    eprintln!("second run fetched {second} bytes; unique {unique}, kept {kept}");
    assert!(kept > 0, "nothing kept from the .partial: {report}");
    assert!(
        second <= unique - kept + 512 * 1024,
        "the second run fetched {second} bytes, more than the {} not kept",
        unique - kept
    );
    assert!(!partial.exists());
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
