//! Interrupted runs resume: `mirror sync`, `bundle create` and `bundle load` are SIGKILLed at
//! several points (measured in bytes crossing a fault proxy whose bandwidth cap makes the kill
//! land mid-transfer), then run again to completion. The result must equal an uninterrupted
//! run's, and the second run may only move what the first one had not committed (plus a
//! small allowance for manifests and response heads). Ctrl-C (SIGINT) must stop a sync
//! promptly with exit 130.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::faults::{
    KIB, MIB, Rig, assert_bytes, assert_mirrored, assert_store_sound, run, sync_cmd,
};
use crate::support::generator::{self, Arch, ImageSpec, Kind, LayerSpec};
use crate::support::proxy::{FaultProxy, Faults, Stats};
use crate::support::{TestRegistry, airlift, sha256_hex};
use crate::support::{assert_exit, json_report, number};

/// Kill points, as fractions of the unique blob bytes seen at the proxy.
const KILL_POINTS: [f64; 3] = [0.1, 0.5, 0.9];
/// Bandwidth cap of the interrupted runs (bytes per second, all connections).
const CAP: u64 = 25_000_000;
/// Upper bound of one airlift run here.
const BOUND: Duration = Duration::from_secs(60);
/// Allowance for what is not blob bodies: manifests, response heads.
const SLACK: u64 = 512 * KIB;

/// A layer of `big_mib` MiB (34: a segmented download), six images of two small layers each
/// (18 MiB), a multi-arch OCI index. No layer is shared, so "committed" is the same per
/// repository and per registry. The bundle tests use a 12 MiB layer to stay fast.
fn kill_set(big_mib: u64) -> Vec<ImageSpec> {
    let mut set = vec![ImageSpec::new(
        "kill/big",
        "1",
        Kind::Docker,
        Arch::Single,
        vec![LayerSpec::seeded(8000, big_mib * MIB)],
    )];
    for i in 0..6u64 {
        set.push(ImageSpec::new(
            &format!("kill/app-{i}"),
            "1",
            if i % 2 == 0 { Kind::Oci } else { Kind::Docker },
            Arch::Single,
            vec![
                LayerSpec::seeded(8100 + i, 2 * MIB),
                LayerSpec::seeded(8200 + i, MIB),
            ],
        ));
    }
    set.push(ImageSpec::new(
        "kill/multi",
        "2",
        Kind::Oci,
        Arch::MultiArch,
        vec![LayerSpec::seeded(8300, MIB)],
    ));
    set
}

fn capped() -> Faults {
    Faults::default().with_total_rate(CAP)
}

/// Starts `cmd` with its output discarded.
fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// SIGKILLs `child` once `counter(proxy stats)` reaches `threshold`; returns the count then.
fn kill_at(
    child: &mut Child,
    proxy: &FaultProxy,
    counter: fn(&Stats) -> u64,
    threshold: u64,
    what: &str,
) -> u64 {
    let deadline = Instant::now() + BOUND;
    loop {
        let seen = counter(&proxy.stats());
        if seen >= threshold {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            settle(proxy, counter);
            return seen;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "{what} finished ({status}) before {threshold} bytes crossed the proxy (saw \
                 {seen}): the set is too small or the cap too high to kill it mid-transfer"
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {seen} of {threshold} bytes within {BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the proxy has forwarded what the killed client had already handed it (it
/// holds bytes in flight under its bandwidth cap), so those bytes are not counted as the
/// next run's: the counter must stay still for 300 ms (at most 10 s).
fn settle(proxy: &FaultProxy, counter: fn(&Stats) -> u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = counter(&proxy.stats());
    let mut still_since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = counter(&proxy.stats());
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= Duration::from_millis(300) {
            return;
        }
    }
}

/// Sum of the sizes of the set's blobs that `present` holds.
fn committed_bytes(sizes: &HashMap<String, u64>, present: &HashSet<String>) -> u64 {
    sizes
        .iter()
        .filter(|(d, _)| present.contains(*d))
        .map(|(_, s)| s)
        .sum()
}

/// Prints and checks the resume bound: the second run moves at most what was not committed.
fn assert_resume_bound(label: &str, unique: u64, committed: u64, second: u64) {
    eprintln!(
        "{label}: unique {unique}, committed before the kill {committed}, second run {second}"
    );
    assert_bytes(
        &format!("{label}: bytes moved by the second run"),
        second,
        unique - committed + SLACK,
    );
}

#[test]
fn killed_sync_resumes_at_several_points() {
    let rig = Rig::new(&kill_set(34));
    let sizes = rig.blob_sizes();
    let unique = generator::unique_blob_bytes(&rig.images);
    for p in KILL_POINTS {
        let label = format!("sync killed at {:.0}%", p * 100.0);
        let target = TestRegistry::start();
        let proxy = rig.proxy(&rig.source, capped());
        let list = rig.list_at(&proxy.addr().to_string());
        let to = format!("{}/m", target.addr());
        let mut child = spawn(&mut sync_cmd(&list, &to, &["--jobs", "2"]));
        let threshold = (unique as f64 * p) as u64;
        kill_at(&mut child, &proxy, |s| s.bytes_to_client, threshold, &label);
        let committed = committed_bytes(&sizes, &target.stored_blobs().into_iter().collect());
        proxy.set_faults(Faults::default());
        let before = proxy.stats().bytes_to_client;
        let (out, elapsed) = run(&mut sync_cmd(&list, &to, &["--jobs", "2"]), BOUND);
        assert_exit(&out, 0);
        eprintln!("{label}: re-run took {elapsed:?}");
        let report = json_report(&out);
        assert_mirrored(&to, &rig.images);
        assert_store_sound(&target, &rig.known_digests());
        let second = proxy.stats().bytes_to_client - before;
        assert!(
            number(&report, "bytes_transferred") <= second,
            "the report claims more than the proxy delivered: {report}"
        );
        assert_resume_bound(&label, unique, committed, second);
    }
}

/// `bundle inspect --json` of `bundle`: (repository:tag without the host, digest) per image.
fn bundle_images(bundle: &Path) -> Vec<(String, String)> {
    let (out, _) = run(
        airlift().args(["bundle", "inspect", "--json"]).arg(bundle),
        BOUND,
    );
    assert_exit(&out, 0);
    let v = json_report(&out);
    let mut images: Vec<(String, String)> = v["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no images in {v}"))
        .iter()
        .map(|i| {
            let source = i["source"].as_str().expect("source");
            let path = source.split_once('/').map_or(source, |(_, p)| p);
            (
                path.to_owned(),
                i["digest"].as_str().expect("digest").to_owned(),
            )
        })
        .collect();
    images.sort();
    images
}

fn assert_verifies(bundle: &Path) {
    let (out, _) = run(
        airlift().args(["bundle", "verify", "--json"]).arg(bundle),
        BOUND,
    );
    assert_exit(&out, 0);
}

/// `bundle create` of `list` into `output`, fetching from `from` when given (the names
/// recorded stay the listed ones), at a fixed creation time so that runs are comparable
/// byte for byte.
fn create_cmd(list: &Path, output: &Path, from: Option<&str>) -> Command {
    let mut cmd = airlift();
    cmd.env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["bundle", "create", "--json", "--jobs", "2", "--list"])
        .arg(list)
        .arg("--output")
        .arg(output);
    if let Some(from) = from {
        cmd.args(["--from", from]);
    }
    cmd
}

/// The sha256 of every volume file of the bundle at `output` (one volume here).
fn volume_bytes(output: &Path) -> String {
    sha256_hex(std::fs::read(output).unwrap_or_else(|e| panic!("{}: {e}", output.display())))
}

/// A create killed at 10, 50 and 90 % resumes from its `.partial` volume without fetching
/// what was committed there, and gives the very bytes of an uninterrupted create.
#[test]
fn killed_bundle_create_resumes_at_several_points() {
    let rig = Rig::new(&kill_set(12));
    let unique = generator::unique_blob_bytes(&rig.images);
    // The reference: an uninterrupted create straight from the source. The killed ones
    // fetch through the proxy (`--from`) but record the same names.
    let list = rig.list_at(&rig.source.addr());
    let reference = rig.dir.path().join("reference.tar.zst");
    let (out, _) = run(&mut create_cmd(&list, &reference, None), BOUND);
    assert_exit(&out, 0);
    let expected = bundle_images(&reference);
    assert_eq!(expected.len(), rig.images.len(), "{expected:?}");
    let reference_bytes = volume_bytes(&reference);
    for p in KILL_POINTS {
        let label = format!("bundle create killed at {:.0}%", p * 100.0);
        let proxy = rig.proxy(&rig.source, capped());
        let from = proxy.addr().to_string();
        let output = rig
            .dir
            .path()
            .join(format!("kill-{}.tar.zst", (p * 100.0) as u32));
        let mut child = spawn(&mut create_cmd(&list, &output, Some(&from)));
        let threshold = (unique as f64 * p) as u64;
        kill_at(&mut child, &proxy, |s| s.bytes_to_client, threshold, &label);
        let partial = rig
            .dir
            .path()
            .join(format!("kill-{}.tar.zst.partial", (p * 100.0) as u32));
        assert!(!output.exists(), "{label}: a volume got its final name");
        assert!(partial.exists(), "{label}: no .partial volume");
        proxy.set_faults(Faults::default());
        let before = proxy.stats().bytes_to_client;
        let (out, elapsed) = run(&mut create_cmd(&list, &output, Some(&from)), BOUND);
        assert_exit(&out, 0);
        eprintln!("{label}: re-run took {elapsed:?}");
        assert!(!partial.exists(), "{label}: the .partial is left");
        assert_verifies(&output);
        assert_eq!(bundle_images(&output), expected, "{label}");
        assert_eq!(
            volume_bytes(&output),
            reference_bytes,
            "{label}: the resumed bundle differs from an uninterrupted one"
        );
        // What the second run says it kept must be true: the proxy saw only the rest.
        let report = json_report(&out);
        let committed = number(&report, "bytes_skipped");
        if p >= 0.5 {
            assert!(committed > 0, "{label}: nothing kept: {report}");
        }
        let second = proxy.stats().bytes_to_client - before;
        assert_resume_bound(&label, unique, committed, second);
    }
}

#[test]
fn killed_bundle_load_resumes_at_several_points() {
    let rig = Rig::new(&kill_set(12));
    let sizes = rig.blob_sizes();
    let unique = generator::unique_blob_bytes(&rig.images);
    let bundle = rig.dir.path().join("load.tar.zst");
    let (out, _) = run(
        &mut create_cmd(&rig.list_at(&rig.source.addr()), &bundle, None),
        BOUND,
    );
    assert_exit(&out, 0);
    for p in KILL_POINTS {
        let label = format!("bundle load killed at {:.0}%", p * 100.0);
        let target = TestRegistry::start();
        let proxy = rig.proxy(&target, capped());
        let state = rig.dir.path().join(format!("state-{}", (p * 100.0) as u32));
        let to = format!("{}/m", proxy.addr());
        let load = || {
            let mut cmd = airlift();
            cmd.args(["bundle", "load", "--json", "--jobs", "2", "--to", &to])
                .arg("--state-dir")
                .arg(&state)
                .arg(&bundle);
            cmd
        };
        let mut child = spawn(&mut load());
        let threshold = (unique as f64 * p) as u64;
        kill_at(
            &mut child,
            &proxy,
            |s| s.bytes_to_upstream,
            threshold,
            &label,
        );
        let committed = committed_bytes(&sizes, &target.stored_blobs().into_iter().collect());
        proxy.set_faults(Faults::default());
        let before = proxy.stats().bytes_to_upstream;
        let (out, elapsed) = run(&mut load(), BOUND);
        assert_exit(&out, 0);
        eprintln!("{label}: re-run took {elapsed:?}");
        assert_mirrored(&format!("{}/m", target.addr()), &rig.images);
        assert_store_sound(&target, &rig.known_digests());
        let second = proxy.stats().bytes_to_upstream - before;
        assert_resume_bound(&label, unique, committed, second);
    }
}

/// Starts `cmd`, sends SIGINT once `progress` has moved `threshold` bytes through the
/// proxy, and checks that airlift stops within 5 s with exit 130 and says so on stderr.
fn interrupt_at(
    cmd: &mut Command,
    proxy: &FaultProxy,
    progress: fn(&Stats) -> u64,
    threshold: u64,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let err_path = dir.path().join("stderr");
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("run airlift");
    let deadline = Instant::now() + BOUND;
    while progress(&proxy.stats()) < threshold {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "airlift ended before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "airlift made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "airlift was still running 5 s after SIGINT; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    eprintln!("stopped {:?} after SIGINT: {status}", sent.elapsed());
    assert_eq!(status.code(), Some(130), "stderr:\n{stderr}");
    assert!(
        stderr.contains("interrupted"),
        "no message on stderr:\n{stderr}"
    );
}

/// Ctrl-C stops a sync within 5 s with exit 130 and a message on stderr; the same command
/// then finishes the job.
#[test]
fn interrupted_sync_exits_130_promptly_and_resumes() {
    let rig = Rig::new(&kill_set(12));
    let unique = generator::unique_blob_bytes(&rig.images);
    let proxy = rig.proxy(&rig.source, capped());
    let list = rig.list_at(&proxy.addr().to_string());
    let to = format!("{}/m", rig.target.addr());
    interrupt_at(
        &mut sync_cmd(&list, &to, &["--jobs", "2"]),
        &proxy,
        |s| s.bytes_to_client,
        unique / 3,
    );
    proxy.set_faults(Faults::default());
    let (out, _) = run(&mut sync_cmd(&list, &to, &["--jobs", "2"]), BOUND);
    assert_exit(&out, 0);
    assert_mirrored(&to, &rig.images);
    assert_store_sound(&rig.target, &rig.known_digests());
}

/// Ctrl-C during `bundle create` and during `bundle load`: exit 130 at once, no bundle file
/// that looks finished, and the same commands then complete (the bundle verifies, every
/// digest arrives).
#[test]
fn interrupted_bundle_create_and_load_exit_130_and_resume() {
    let rig = Rig::new(&kill_set(12));
    let unique = generator::unique_blob_bytes(&rig.images);
    let proxy = rig.proxy(&rig.source, capped());
    let list = rig.list_at(&proxy.addr().to_string());
    let bundle = rig.dir.path().join("ctrl-c.tar.zst");
    interrupt_at(
        &mut create_cmd(&list, &bundle, None),
        &proxy,
        |s| s.bytes_to_client,
        unique / 3,
    );
    assert!(
        !bundle.exists(),
        "an interrupted create left {}",
        bundle.display()
    );
    proxy.set_faults(Faults::default());
    let (out, _) = run(&mut create_cmd(&list, &bundle, None), BOUND);
    assert_exit(&out, 0);
    let (out, _) = run(airlift().args(["bundle", "verify"]).arg(&bundle), BOUND);
    assert_exit(&out, 0);

    let target = TestRegistry::start();
    let site = rig.proxy(&target, capped());
    let to = format!("{}/m", site.addr());
    let state = rig.dir.path().join("ctrl-c-state");
    let load = || {
        let mut cmd = airlift();
        cmd.args(["bundle", "load", "--json", "--jobs", "2", "--to", &to])
            .arg("--state-dir")
            .arg(&state)
            .arg(&bundle);
        cmd
    };
    interrupt_at(&mut load(), &site, |s| s.bytes_to_upstream, unique / 3);
    site.set_faults(Faults::default());
    let (out, _) = run(&mut load(), BOUND);
    assert_exit(&out, 0);
    assert_mirrored(&format!("{}/m", target.addr()), &rig.images);
    assert_store_sound(&target, &rig.known_digests());
}

/// A blob the target registry already holds in another repository is mounted, not fetched
/// from the source again. This is what a resumed run meets when the kill came between a
/// shared blob's upload to its first repository and its mounts into the others.
#[test]
fn resumed_run_mounts_blobs_already_at_the_target() {
    let shared = LayerSpec::base(40, 8 * MIB);
    let specs = vec![
        ImageSpec::new(
            "mount/first",
            "1",
            Kind::Oci,
            Arch::Single,
            vec![shared, LayerSpec::seeded(8400, 256 * KIB)],
        ),
        ImageSpec::new(
            "mount/second",
            "1",
            Kind::Docker,
            Arch::Single,
            vec![shared, LayerSpec::seeded(8401, 256 * KIB)],
        ),
    ];
    let rig = Rig::new(&specs);
    let to = format!("{}/m", rig.target.addr());
    let first = rig.image("mount/first");
    let (out, _) = run(
        &mut sync_cmd(&rig.list_of(&rig.source.addr(), &[first]), &to, &[]),
        BOUND,
    );
    assert_exit(&out, 0);
    let (out, _) = run(
        &mut sync_cmd(&rig.list_at(&rig.source.addr()), &to, &[]),
        BOUND,
    );
    assert_exit(&out, 0);
    assert_mirrored(&to, &rig.images);
    let report: Value = json_report(&out);
    let second = rig.image("mount/second");
    let present: HashSet<&String> = first.blobs.iter().map(|(d, _)| d).collect();
    let own: u64 = second
        .blobs
        .iter()
        .filter(|(d, _)| !present.contains(d))
        .map(|(_, s)| s)
        .sum();
    assert_bytes(
        "bytes fetched for mount/second, whose 8 MiB base layer the target already holds",
        number(&report, "bytes_transferred"),
        own + SLACK,
    );
}

/// Ctrl-C while airlift is still connecting (a registry that accepts the connection but never
/// answers `GET /v2/`): the progress says what it waits for, not `0 B / 0 B`, and SIGINT
/// stops it at once with exit 130 (issue 13, item 3).
#[test]
fn interrupted_while_connecting_exits_130_and_said_what_it_waited_for() {
    use crate::support::proxy::{Action, Matcher, Rule};
    let rig = Rig::new(&kill_set(1));
    let stall = Rule::new(
        Matcher::any().method("GET").path_glob("/v2/"),
        Action::StallHeaders,
    );
    let proxy = rig.proxy(&rig.source, Faults::default().with_rule(stall));
    let addr = proxy.addr().to_string();
    let list = rig.list_at(&addr);
    let to = format!("{}/m", rig.target.addr());
    let dir = tempfile::tempdir().expect("tempdir");
    let err_path = dir.path().join("stderr");
    let mut child = sync_cmd(&list, &to, &["--progress", "plain"])
        .env("AIRLIFT_PROGRESS_INTERVAL", "0.2")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("run airlift");
    let deadline = Instant::now() + BOUND;
    // "progress: connecting to A, B": the registries of the run in sorted order.
    let connecting = |text: String| {
        text.lines()
            .any(|l| l.starts_with("progress: connecting to ") && l.contains(&addr))
    };
    while !connecting(std::fs::read_to_string(&err_path).unwrap_or_default()) {
        assert!(child.try_wait().expect("wait").is_none(), "airlift ended");
        assert!(
            Instant::now() < deadline,
            "no `progress: connecting to ...{addr}...` line"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("airlift was still running 5 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert_eq!(status.code(), Some(130), "stderr:\n{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l == "interrupted before anything was copied"),
        "{stderr}"
    );
    assert!(!stderr.contains("0 B / 0 B"), "{stderr}");
}
