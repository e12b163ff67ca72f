//! Resilience of `airlift mirror sync` under injected faults.
//!
//! Every test puts a [`FaultProxy`] in front of the source registry (sync reads through it)
//! or the target registry (uploads go through it), runs the `airlift` binary once, and then
//! judges the outcome on three axes:
//! - the exit code (and the `--json` report);
//! - correctness: every target manifest has the source's digest (`skopeo inspect --raw`), and
//!   every blob committed to the target's storage hashes to the digest it is stored under;
//! - waste: bytes the proxy delivered from the source, against the unique blob bytes of the
//!   set plus a bound stated per test (a fault may cost the bytes it cut off, not a restart).
//!
//! The set has one layer above the 32 MiB segmentation threshold (fetched as parallel `Range`
//! segments of 8 MiB) and small blobs fetched as one resumable stream.
//!
//! Uploads through a proxy in front of the target: a chunk dropped before its body resumes
//! from the registry's offset; one cut mid-body (which docker distribution cannot resume)
//! restarts that blob only; a registry refusing `PATCH` gets whole `PUT`s.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::assert_complete;
use crate::support::generator::{self, Arch, Generated, ImageSpec, Kind, LayerSpec};
use crate::support::proxy::{Action, FaultProxy, Faults, Matcher, Rule};
use crate::support::{TestRegistry, airlift, digest_of, sha256_hex, try_skopeo_inspect_raw};
use crate::support::{assert_exit, json_report, number};

pub(crate) const KIB: u64 = 1024;
pub(crate) const MIB: u64 = 1024 * KIB;

/// Upper bound of one sync of the fault set (debug build, 2 shared cores).
const SYNC_BOUND: Duration = Duration::from_secs(60);

/// Allowance for what is not blob bodies: response heads, manifests, retried small requests.
const SLACK: u64 = 512 * KIB;

/// The fault set: a 36 MiB layer (segmented download), a 3 MiB layer, a multi-arch OCI index
/// and a tiny Docker image; base layer 1 is shared by two images.
pub(crate) fn fault_set() -> Vec<ImageSpec> {
    use Arch::*;
    use Kind::*;
    vec![
        ImageSpec::new(
            "faults/big",
            "1",
            Docker,
            Single,
            vec![
                LayerSpec::base(1, 512 * KIB),
                LayerSpec::seeded(7001, 36 * MIB),
            ],
        ),
        ImageSpec::new(
            "faults/app",
            "2",
            Oci,
            Single,
            vec![
                LayerSpec::base(1, 512 * KIB),
                LayerSpec::seeded(7002, 3 * MIB),
            ],
        ),
        ImageSpec::new(
            "faults/multi",
            "3",
            Oci,
            MultiArch,
            vec![LayerSpec::seeded(7003, MIB)],
        ),
        ImageSpec::new(
            "faults/tiny",
            "4",
            Docker,
            Single,
            vec![LayerSpec::seeded(7004, 256 * KIB)],
        ),
    ]
}

/// A source registry holding generated images, an empty target and a tokio runtime for the
/// proxies.
pub(crate) struct Rig {
    pub rt: tokio::runtime::Runtime,
    pub source: TestRegistry,
    pub target: TestRegistry,
    pub images: Vec<Generated>,
    pub dir: tempfile::TempDir,
}

impl Rig {
    pub fn new(specs: &[ImageSpec]) -> Rig {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let source = TestRegistry::start();
        let target = TestRegistry::start();
        let images = generator::push(&source.addr(), specs);
        Rig {
            rt,
            source,
            target,
            images,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A proxy in front of `upstream`.
    pub fn proxy(&self, upstream: &TestRegistry, faults: Faults) -> FaultProxy {
        let addr = upstream.addr().parse().expect("registry address");
        self.rt.block_on(FaultProxy::start(addr, faults))
    }

    /// A list naming every image at `registry` (e.g. a proxy's address).
    pub fn list_at(&self, registry: &str) -> PathBuf {
        self.list_of(registry, &self.images.iter().collect::<Vec<_>>())
    }

    /// A list naming `images` at `registry`.
    pub fn list_of(&self, registry: &str, images: &[&Generated]) -> PathBuf {
        let name = format!("list-{}.txt", registry.replace([':', '.', '/'], "_"));
        let path = self.dir.path().join(name);
        let text: String = images
            .iter()
            .map(|i| i.reference(registry) + "\n")
            .collect();
        std::fs::write(&path, text).expect("write list");
        path
    }

    pub fn image(&self, repository: &str) -> &Generated {
        self.images
            .iter()
            .find(|i| i.repository == repository)
            .unwrap_or_else(|| panic!("no generated image {repository}"))
    }

    /// Sizes of every generated blob (configs and layers).
    pub fn blob_sizes(&self) -> HashMap<String, u64> {
        self.images
            .iter()
            .flat_map(|i| i.blobs.iter().cloned())
            .collect()
    }

    /// The one blob of at least `min` bytes that `repository` has and no other image has.
    pub fn own_layer(&self, repository: &str, min: u64) -> (String, u64) {
        let others: HashSet<&String> = self
            .images
            .iter()
            .filter(|i| i.repository != repository)
            .flat_map(|i| i.blobs.iter().map(|(d, _)| d))
            .collect();
        let own: Vec<_> = self
            .image(repository)
            .blobs
            .iter()
            .filter(|(d, s)| *s >= min && !others.contains(d))
            .cloned()
            .collect();
        assert_eq!(own.len(), 1, "{repository}: {own:?}");
        own[0].clone()
    }

    /// Every digest the target may legitimately hold: blobs and manifests of the set.
    pub fn known_digests(&self) -> HashSet<String> {
        let mut all = HashSet::new();
        for image in &self.images {
            all.insert(image.digest.clone());
            all.extend(image.manifests.iter().cloned());
            all.extend(image.blobs.iter().map(|(d, _)| d.clone()));
        }
        all
    }
}

/// `airlift mirror sync --list LIST --to TO --json ARGS`.
pub(crate) fn sync_cmd(list: &Path, to: &str, args: &[&str]) -> Command {
    let mut cmd = airlift();
    cmd.args(["mirror", "sync", "--list"])
        .arg(list)
        .args(["--to", to, "--json"])
        .args(args);
    cmd
}

/// Runs `cmd` to completion or kills it at `bound`: `Err` then says how long it ran and what
/// it printed.
pub(crate) fn run_bounded(
    cmd: &mut Command,
    bound: Duration,
) -> Result<(Output, Duration), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let started = Instant::now();
    let mut child = cmd
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "still running after {bound:?}: killed. stderr so far:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let out = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    };
    Ok((out, elapsed))
}

/// [`run_bounded`] that panics when the bound is hit.
pub(crate) fn run(cmd: &mut Command, bound: Duration) -> (Output, Duration) {
    run_bounded(cmd, bound).unwrap_or_else(|e| panic!("airlift hung: {e}"))
}

/// The report entry whose target names `repository`.
fn entry<'a>(report: &'a Value, repository: &str) -> &'a Value {
    report["images"]
        .as_array()
        .expect("images array")
        .iter()
        .find(|e| {
            e["target"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("/{repository}:")))
        })
        .unwrap_or_else(|| panic!("no report entry for {repository}: {report}"))
}

/// Every image (and index child) sits at `to/<repository>:<tag>` with the source's digest.
pub(crate) fn assert_mirrored<'a>(to: &str, images: impl IntoIterator<Item = &'a Generated>) {
    for image in images {
        let repo = format!("{to}/{}", image.repository);
        let reference = format!("{repo}:{}", image.tag);
        let raw = try_skopeo_inspect_raw(&reference)
            .unwrap_or_else(|e| panic!("{reference} is not at the target: {e}"));
        assert_eq!(
            digest_of(raw),
            image.digest,
            "{reference} differs from its source"
        );
        for child in &image.manifests {
            let raw = try_skopeo_inspect_raw(&format!("{repo}@{child}"))
                .unwrap_or_else(|e| panic!("index child {child} of {reference} missing: {e}"));
            assert_eq!(digest_of(raw), *child, "index child of {reference}");
        }
    }
}

/// Every blob the registry committed hashes to the digest it is stored under, and is one of
/// `known` (nothing foreign, nothing corrupted). Returns the committed digests.
pub(crate) fn assert_store_sound(reg: &TestRegistry, known: &HashSet<String>) -> HashSet<String> {
    let root = reg.storage_dir().join("docker/registry/v2/blobs/sha256");
    let mut found = HashSet::new();
    for digest in reg.stored_blobs() {
        let hex = digest.trim_start_matches("sha256:");
        let data = root.join(&hex[..2]).join(hex).join("data");
        let bytes = std::fs::read(&data).unwrap_or_else(|e| panic!("{}: {e}", data.display()));
        assert_eq!(
            sha256_hex(&bytes),
            hex,
            "the target committed corrupted content under {digest} ({} bytes)",
            bytes.len()
        );
        assert!(
            known.contains(&digest),
            "the target holds {digest}, which is no blob or manifest of the source"
        );
        found.insert(digest);
    }
    found
}

/// Asserts `got <= bound` and prints both, so a passing run still shows the numbers.
pub(crate) fn assert_bytes(what: &str, got: u64, bound: u64) {
    eprintln!("{what}: {got} bytes (bound {bound})");
    assert!(
        got <= bound,
        "{what}: {got} bytes exceeds the bound of {bound} bytes by {}",
        got - bound
    );
}

/// The common end of a successful faulted sync: exit 0, every image ok and mirrored, the
/// target store sound, and source bytes at most `unique + allowance + SLACK`.
fn assert_recovered(rig: &Rig, proxy: &FaultProxy, out: &Output, to: &str, allowance: u64) {
    assert_exit(out, 0);
    let report = json_report(out);
    for e in report["images"].as_array().expect("images") {
        assert_complete(&e["status"], format!("{e}"));
    }
    assert_mirrored(to, &rig.images);
    assert_store_sound(&rig.target, &rig.known_digests());
    let unique = generator::unique_blob_bytes(&rig.images);
    let stats = proxy.stats();
    eprintln!("proxy: {stats}");
    eprintln!(
        "report: bytes_transferred={} unique={unique}",
        number(&report, "bytes_transferred")
    );
    assert_bytes(
        "bytes the source proxy delivered",
        stats.bytes_to_client,
        unique + allowance + SLACK,
    );
}

fn blob_get(digest: &str) -> Matcher {
    Matcher::any().method("GET").path_contains(digest)
}

// ---------------------------------------------------------------------------------------------
// 1-2: throttling and server errors
// ---------------------------------------------------------------------------------------------

/// Three `429 Retry-After: 1` on one blob's GET: the sync succeeds and waits them out (the
/// jittered backoff alone would be at most 0.25 + 0.5 + 1 s). `AIRLIFT_RETRY_DELAY_MS` is
/// removed: it caps `Retry-After` too (registry/retry.rs), so with it the header is ignored.
#[test]
fn retry_after_on_blob_gets_is_honoured() {
    let rig = Rig::new(&fault_set());
    let (layer, _) = rig.own_layer("faults/app", MIB);
    let proxy = rig.proxy(
        &rig.source,
        Faults::default()
            .with_rule(Rule::new(blob_get(&layer), Action::too_many_requests(1)).times(3)),
    );
    let to = format!("{}/m", rig.target.addr());
    let mut cmd = sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]);
    cmd.env_remove("AIRLIFT_RETRY_DELAY_MS");
    let (out, elapsed) = run(&mut cmd, SYNC_BOUND);
    eprintln!("sync took {elapsed:?}");
    assert_eq!(proxy.stats().faults_injected, 3, "{}", proxy.stats());
    assert_recovered(&rig, &proxy, &out, &to, 0);
    assert!(
        elapsed >= Duration::from_secs(3),
        "three `Retry-After: 1` answers on one blob, yet the sync took only {elapsed:?}"
    );
}

/// Bursts of 503 on manifest requests and on blob GETs: retried, the sync succeeds.
#[test]
fn service_unavailable_bursts_are_retried() {
    let rig = Rig::new(&fault_set());
    let faults = Faults::default()
        .with_rule(
            Rule::new(
                Matcher::any().path_contains("/manifests/"),
                Action::status(503),
            )
            .times(4),
        )
        .with_rule(
            Rule::new(
                Matcher::any().method("GET").path_contains("/blobs/sha256:"),
                Action::status(503),
            )
            .times(6),
        );
    let proxy = rig.proxy(&rig.source, faults);
    let to = format!("{}/m", rig.target.addr());
    let (out, _) = run(
        &mut sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    assert_eq!(proxy.stats().faults_injected, 10, "{}", proxy.stats());
    assert_recovered(&rig, &proxy, &out, &to, 0);
}

// ---------------------------------------------------------------------------------------------
// 3, 5: cut-off bodies (reset, truncation) — resumed, not restarted
// ---------------------------------------------------------------------------------------------

/// The first GET of the 36 MiB layer (its first `Range` segment) is reset after 4 MiB: the
/// blob must cost at most its size plus those 4 MiB (the segment refetched), not a restart of
/// the whole blob with the other segments thrown away.
#[test]
fn reset_in_first_segment_of_large_blob_costs_only_the_cut_bytes() {
    let rig = Rig::new(&fault_set());
    let (layer, size) = rig.own_layer("faults/big", 32 * MIB);
    let n = 4 * MIB;
    let proxy = rig.proxy(
        &rig.source,
        Faults::default().with_rule(Rule::new(blob_get(&layer), Action::ResetAfter(n)).times(1)),
    );
    let to = format!("{}/m", rig.target.addr());
    let (out, _) = run(
        &mut sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    eprintln!("large layer {layer}: {size} bytes, reset after {n}");
    assert_eq!(proxy.stats().faults_by_action.get("reset"), Some(&1));
    assert_recovered(&rig, &proxy, &out, &to, n);
}

/// A later segment of the 36 MiB layer (the second GET) is reset after 4 MiB: that segment
/// alone is fetched again.
#[test]
fn reset_in_later_segment_of_large_blob_costs_only_the_cut_bytes() {
    let rig = Rig::new(&fault_set());
    let (layer, _) = rig.own_layer("faults/big", 32 * MIB);
    let n = 4 * MIB;
    let proxy = rig.proxy(
        &rig.source,
        Faults::default().with_rule(
            Rule::new(blob_get(&layer), Action::ResetAfter(n))
                .skip(1)
                .times(1),
        ),
    );
    let to = format!("{}/m", rig.target.addr());
    let (out, _) = run(
        &mut sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    assert_eq!(proxy.stats().faults_by_action.get("reset"), Some(&1));
    assert_recovered(&rig, &proxy, &out, &to, n);
}

/// The 3 MiB layer (one streamed GET) is reset after 1 MiB: airlift resumes with `Range` from
/// the last byte received, so the blob costs its size plus nothing (the cut bytes were kept).
/// The bound allows the 1 MiB once, for a client that restarts the blob.
#[test]
fn reset_in_streamed_blob_resumes_with_range() {
    let rig = Rig::new(&fault_set());
    let (layer, size) = rig.own_layer("faults/app", MIB);
    let n = MIB;
    let proxy = rig.proxy(
        &rig.source,
        Faults::default().with_rule(Rule::new(blob_get(&layer), Action::ResetAfter(n)).times(1)),
    );
    let to = format!("{}/m", rig.target.addr());
    let (out, _) = run(
        &mut sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    eprintln!("layer {layer}: {size} bytes, reset after {n}");
    assert_eq!(proxy.stats().faults_by_action.get("reset"), Some(&1));
    assert_recovered(&rig, &proxy, &out, &to, n);
}

/// 4: a server that ignores `Range` (the proxy drops the header, so the registry answers
/// 200 with the whole body). A reset after 1 MiB of the 3 MiB layer: the re-request comes
/// back from byte 0, airlift skips what it already has and carries on, so the blob costs its
/// size plus the 1 MiB prefix once; the large layer, whose first Range request gets a full
/// 200, is fetched as one plain stream instead of segments.
#[test]
fn server_ignoring_range_restarts_the_blob_once() {
    let rig = Rig::new(&fault_set());
    let (layer, size) = rig.own_layer("faults/app", MIB);
    let n = MIB;
    let proxy = rig.proxy(
        &rig.source,
        Faults::default()
            .with_range_ignored()
            .with_rule(Rule::new(blob_get(&layer), Action::ResetAfter(n)).times(1)),
    );
    let to = format!("{}/m", rig.target.addr());
    let (out, _) = run(
        &mut sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    eprintln!("layer {layer}: {size} bytes, reset after {n}, Range ignored");
    assert_eq!(proxy.stats().faults_by_action.get("reset"), Some(&1));
    assert_recovered(&rig, &proxy, &out, &to, n);
    // The restart really happened: the prefix was delivered twice.
    let unique = generator::unique_blob_bytes(&rig.images);
    assert!(
        proxy.stats().bytes_to_client >= unique + n - SLACK,
        "expected the {n}-byte prefix to be fetched again"
    );
}

/// A truncated body (full `Content-Length`, then FIN after 1 MiB) on the 3 MiB layer and on
/// the large layer: detected as a short body and fetched again.
#[test]
fn truncated_bodies_are_detected_and_retried() {
    let rig = Rig::new(&fault_set());
    let (app, _) = rig.own_layer("faults/app", MIB);
    let (big, _) = rig.own_layer("faults/big", 32 * MIB);
    let n = MIB;
    let faults = Faults::default()
        .with_rule(Rule::new(blob_get(&app), Action::TruncateAfter(n)).times(1))
        .with_rule(
            Rule::new(blob_get(&big), Action::TruncateAfter(n))
                .skip(1)
                .times(1),
        );
    let proxy = rig.proxy(&rig.source, faults);
    let to = format!("{}/m", rig.target.addr());
    let (out, _) = run(
        &mut sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    assert_eq!(proxy.stats().faults_by_action.get("truncate"), Some(&2));
    assert_recovered(&rig, &proxy, &out, &to, 2 * n);
}

// ---------------------------------------------------------------------------------------------
// 6-7: corruption
// ---------------------------------------------------------------------------------------------

/// One flipped byte in the 3 MiB layer and one in the large layer (first attempt each): the
/// digest check catches both, the blobs are fetched again, and nothing corrupted is committed.
/// A corrupted blob can only be re-fetched whole, so the allowance is both blobs once more.
#[test]
fn flipped_byte_is_caught_and_never_committed() {
    let rig = Rig::new(&fault_set());
    let (app, app_size) = rig.own_layer("faults/app", MIB);
    let (big, big_size) = rig.own_layer("faults/big", 32 * MIB);
    let faults = Faults::default()
        .with_rule(Rule::new(blob_get(&app), Action::FlipByte(MIB + 7)).times(1))
        .with_rule(Rule::new(blob_get(&big), Action::FlipByte(5 * MIB + 3)).times(1));
    let proxy = rig.proxy(&rig.source, faults);
    let to = format!("{}/m", rig.target.addr());
    let (out, _) = run(
        &mut sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    assert_eq!(proxy.stats().faults_by_action.get("flip"), Some(&2));
    assert_recovered(&rig, &proxy, &out, &to, app_size + big_size);
}

/// A byte of the 3 MiB layer is flipped on every attempt: `faults/app` fails with an integrity
/// error (exit 3) naming the digest, where it came from and the bytes received; the other
/// images are copied; the corrupted blob is not at the target.
#[test]
fn blob_corrupted_on_every_attempt_fails_its_image_with_exit_3() {
    let rig = Rig::new(&fault_set());
    let (app, app_size) = rig.own_layer("faults/app", MIB);
    let proxy = rig.proxy(
        &rig.source,
        Faults::default().with_rule(Rule::new(blob_get(&app), Action::FlipByte(MIB + 7))),
    );
    let to = format!("{}/m", rig.target.addr());
    let (out, _) = run(
        &mut sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    eprintln!("proxy: {}", proxy.stats());
    assert_exit(&out, 3);
    let report = json_report(&out);
    let failed = entry(&report, "faults/app");
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    for needle in [
        app.clone(),
        format!("{}/faults/app", proxy.addr()),
        format!("received {app_size} bytes"),
    ] {
        assert!(
            error.contains(&needle),
            "the error lacks `{needle}`: {error}"
        );
    }
    let others: Vec<&Generated> = rig
        .images
        .iter()
        .filter(|i| i.repository != "faults/app")
        .collect();
    for i in &others {
        assert_complete(
            &entry(&report, &i.repository)["status"],
            format!("{report}"),
        );
    }
    assert_mirrored(&to, others);
    let stored = assert_store_sound(&rig.target, &rig.known_digests());
    assert!(
        !stored.contains(&app),
        "the corrupted blob {app} reached the target"
    );
    assert!(
        try_skopeo_inspect_raw(&format!("{to}/faults/app:2")).is_err(),
        "faults/app was tagged although a blob failed"
    );
    // Bounded retries: 1 + 4 attempts of the blob.
    let flips = proxy
        .stats()
        .faults_by_action
        .get("flip")
        .copied()
        .unwrap_or(0);
    assert!(
        (2..=5).contains(&flips),
        "{flips} attempts on the corrupted blob"
    );
}

// ---------------------------------------------------------------------------------------------
// 8: stalls
// ---------------------------------------------------------------------------------------------

/// How long a stalled transfer may hold up a sync of the fault set.
const STALL_BOUND: Duration = Duration::from_secs(30);

/// `--timeout`: the per-request limit, which is also how long a body may stall.
const TIMEOUT_SECS: &str = "3";

fn assert_no_hang(rig: &Rig, proxy: &FaultProxy, what: &str) {
    let to = format!("{}/m", rig.target.addr());
    let mut cmd = sync_cmd(
        &rig.list_at(&proxy.addr().to_string()),
        &to,
        &["--timeout", TIMEOUT_SECS],
    );
    match run_bounded(&mut cmd, STALL_BOUND) {
        Ok((out, elapsed)) => {
            eprintln!("sync with {what} ended after {elapsed:?}");
            assert_recovered(rig, proxy, &out, &to, 2 * MIB);
        }
        Err(e) => panic!(
            "{what}: airlift neither failed nor recovered within {STALL_BOUND:?} \
             (proxy: {}): {e}",
            proxy.stats()
        ),
    }
}

/// A blob body that stops after 1 MiB with the connection left open: detected as stalled and
/// resumed within the bound.
#[test]
fn stalled_blob_body_does_not_hang_the_sync() {
    let rig = Rig::new(&fault_set());
    let (app, _) = rig.own_layer("faults/app", MIB);
    let proxy = rig.proxy(
        &rig.source,
        Faults::default().with_rule(Rule::new(blob_get(&app), Action::StallAfter(MIB)).times(1)),
    );
    assert_no_hang(&rig, &proxy, "a blob body stalled after 1 MiB");
}

/// A blob GET whose response head never comes (connection open, silent).
#[test]
fn stalled_blob_response_head_does_not_hang_the_sync() {
    let rig = Rig::new(&fault_set());
    let (app, _) = rig.own_layer("faults/app", MIB);
    let proxy = rig.proxy(
        &rig.source,
        Faults::default().with_rule(Rule::new(blob_get(&app), Action::StallHeaders).times(1)),
    );
    assert_no_hang(&rig, &proxy, "a blob GET without a response head");
}

// ---------------------------------------------------------------------------------------------
// 9: uploads
// ---------------------------------------------------------------------------------------------

/// Uploads go in 8 MiB `PATCH` chunks (the 36 MiB layer: 4 chunks and a closing `PUT` that
/// carries the last 4 MiB).
const UPLOAD_CHUNK: u64 = 8 * MIB;

/// The `PATCH` requests of the big layer's upload into `m/faults/big` (the only blob of that
/// repository above one chunk).
fn big_patch() -> Matcher {
    Matcher::any()
        .method("PATCH")
        .path_contains("/v2/m/faults/big/blobs/uploads/")
}

/// Syncs the fault set through a source proxy into the target behind `dst_faults`; returns
/// the output and both proxies.
fn sync_into_faulty_target(rig: &Rig, dst_faults: Faults) -> (Output, FaultProxy, FaultProxy) {
    let src_proxy = rig.proxy(&rig.source, Faults::default());
    let dst_proxy = rig.proxy(&rig.target, dst_faults);
    let to = format!("{}/m", dst_proxy.addr());
    let (out, _) = run(
        &mut sync_cmd(&rig.list_at(&src_proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    eprintln!("target proxy: {}", dst_proxy.stats());
    (out, src_proxy, dst_proxy)
}

/// The second chunk's connection and the closing PUT's each drop before their body reaches
/// the registry: airlift asks the registry where the upload stands (`GET` on the upload URL,
/// `Range: 0-8388607`, then `0-33554431`) and carries on from there, in the same session.
/// Nothing is uploaded twice. The chunks are not held in memory: what a dropped request had
/// taken from the source is read again with `Range`, at most one chunk per drop.
#[test]
fn upload_drop_resumes_from_the_offset_the_registry_reports() {
    let rig = Rig::new(&fault_set());
    let (big, _) = rig.own_layer("faults/big", 32 * MIB);
    let closing_put = Matcher::any()
        .method("PUT")
        .path_contains(big.trim_start_matches("sha256:"));
    let (out, src_proxy, dst_proxy) = sync_into_faulty_target(
        &rig,
        Faults::default()
            .with_rule(
                Rule::new(big_patch(), Action::ResetRequestAfter(0))
                    .skip(1)
                    .times(1),
            )
            .with_rule(Rule::new(closing_put, Action::ResetRequestAfter(0)).times(1)),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        dst_proxy.stats().faults_by_action.get("reset-request"),
        Some(&2),
        "{}",
        dst_proxy.stats()
    );
    for offset in [UPLOAD_CHUNK, 4 * UPLOAD_CHUNK] {
        assert!(
            stderr.contains(&format!("resuming upload at byte {offset} of ")),
            "no resume at byte {offset} reported:\n{stderr}"
        );
    }
    // From the source: the set, plus at most one chunk read again per drop.
    let to = format!("{}/m", dst_proxy.addr());
    assert_recovered(&rig, &src_proxy, &out, &to, 2 * UPLOAD_CHUNK);
    assert_mirrored(&format!("{}/m", rig.target.addr()), &rig.images);
    // Nor towards the target: the dropped requests carried no body.
    assert_bytes(
        "bytes uploaded through the target proxy",
        dst_proxy.stats().bytes_to_upstream,
        generator::unique_blob_bytes(&rig.images) + SLACK,
    );
}

/// The second chunk is cut after 1 MiB of its body. docker distribution then forgets the
/// session (its upload state no longer matches the bytes it holds) and answers the status
/// query with `BLOB_UPLOAD_INVALID`: airlift starts that blob over, and only that blob, and
/// the target commits nothing corrupt.
#[test]
fn upload_cut_mid_chunk_restarts_only_that_blob() {
    let rig = Rig::new(&fault_set());
    let (_, big_size) = rig.own_layer("faults/big", 32 * MIB);
    let (out, src_proxy, dst_proxy) = sync_into_faulty_target(
        &rig,
        Faults::default().with_rule(
            Rule::new(big_patch(), Action::ResetRequestAfter(MIB))
                .skip(1)
                .times(1),
        ),
    );
    assert_eq!(
        dst_proxy.stats().faults_by_action.get("reset-request"),
        Some(&1),
        "{}",
        dst_proxy.stats()
    );
    // The restarted blob is read once more from the source, nothing else.
    let to = format!("{}/m", dst_proxy.addr());
    assert_recovered(&rig, &src_proxy, &out, &to, big_size);
    assert_mirrored(&format!("{}/m", rig.target.addr()), &rig.images);
    let unique = generator::unique_blob_bytes(&rig.images);
    assert_bytes(
        "bytes uploaded through the target proxy",
        dst_proxy.stats().bytes_to_upstream,
        unique + UPLOAD_CHUNK + MIB + SLACK,
    );
}

/// `bundle load` streams the big layer out of the volume once, all but its last chunk as one
/// `PATCH`; when that request's connection drops on its way to the site registry, the upload
/// resumes from the registry's offset with the bytes read again from the volume (format 2 is
/// read at random; nothing is held in memory for it), so the blob lands in the same run.
#[test]
fn bundle_load_resumes_a_dropped_upload_in_the_same_pass() {
    load_resumes_a_dropped_upload(false);
}

/// The same from a format-1 volume (one zstd frame, read in order): the dropped bytes are read
/// again from a second pass over the volume, not kept in memory.
#[test]
fn format1_bundle_load_resumes_a_dropped_upload_in_the_same_pass() {
    load_resumes_a_dropped_upload(true);
}

fn load_resumes_a_dropped_upload(format1: bool) {
    let rig = Rig::new(&fault_set());
    let mut bundle = rig.dir.path().join("set.tar.zst");
    let out = airlift()
        .args(["bundle", "create", "--list"])
        .arg(rig.list_at(&rig.source.addr()))
        .arg("-o")
        .arg(&bundle)
        .output()
        .expect("run airlift");
    assert_exit(&out, 0);
    if format1 {
        let old = rig.dir.path().join("set-format1.tar.zst");
        crate::support::to_format1(&bundle, &old);
        bundle = old;
    }
    let dst_proxy = rig.proxy(
        &rig.target,
        Faults::default().with_rule(Rule::new(big_patch(), Action::ResetRequestAfter(0)).times(1)),
    );
    let to = format!("{}/m", dst_proxy.addr());
    let (out, _) = run(
        airlift()
            .args(["bundle", "load", "--json", "-vv", "--to", &to])
            .arg(&bundle),
        SYNC_BOUND,
    );
    assert_exit(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("resuming upload at byte 0 of "),
        "no resume reported:\n{stderr}"
    );
    // One PATCH for all but the last chunk (36 MiB: one request, not four), sent again.
    let patches = stderr
        .lines()
        .filter(|l| l.contains("method=PATCH") && l.contains("/v2/m/faults/big/blobs/uploads/"))
        .filter(|l| l.contains("status=202"))
        .count();
    assert_eq!(patches, 1, "{stderr}");
    assert_eq!(
        dst_proxy.stats().faults_by_action.get("reset-request"),
        Some(&1),
        "{}",
        dst_proxy.stats()
    );
    assert_mirrored(&format!("{}/m", rig.target.addr()), &rig.images);
    assert_store_sound(&rig.target, &rig.known_digests());
    assert_bytes(
        "bytes uploaded through the target proxy",
        dst_proxy.stats().bytes_to_upstream,
        generator::unique_blob_bytes(&rig.images) + SLACK,
    );
}

/// A registry that refuses `PATCH` (405) gets the large blob as one `PUT`: what the refused
/// `PATCH` took from the source (at most a chunk) is read again with `Range`, the rest
/// follows from the source stream.
#[test]
fn registry_refusing_patch_gets_whole_uploads() {
    let rig = Rig::new(&fault_set());
    let (out, src_proxy, dst_proxy) = sync_into_faulty_target(
        &rig,
        Faults::default().with_rule(Rule::new(
            Matcher::any().method("PATCH"),
            Action::status(405),
        )),
    );
    assert!(
        dst_proxy.stats().faults_injected >= 1,
        "{}",
        dst_proxy.stats()
    );
    let to = format!("{}/m", dst_proxy.addr());
    assert_recovered(&rig, &src_proxy, &out, &to, UPLOAD_CHUNK);
    assert_mirrored(&format!("{}/m", rig.target.addr()), &rig.images);
}

// ---------------------------------------------------------------------------------------------
// 10: a registry that stays down
// ---------------------------------------------------------------------------------------------

/// Every request for `faults/tiny` answers 503, forever, with airlift's real retry delays: that
/// image fails with an error naming the status and the URL, the others are copied, and the
/// run ends (exit 1) in bounded time.
#[test]
fn repository_that_stays_down_fails_in_bounded_time() {
    let rig = Rig::new(&fault_set());
    let proxy = rig.proxy(
        &rig.source,
        Faults::default().with_rule(Rule::new(
            Matcher::any().path_contains("/v2/faults/tiny/"),
            Action::status(503),
        )),
    );
    let to = format!("{}/m", rig.target.addr());
    let mut cmd = sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]);
    cmd.env_remove("AIRLIFT_RETRY_DELAY_MS");
    let (out, elapsed) = run(&mut cmd, Duration::from_secs(40));
    eprintln!("ended after {elapsed:?}; proxy: {}", proxy.stats());
    assert_exit(&out, 1);
    let report = json_report(&out);
    let failed = entry(&report, "faults/tiny");
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("503") && error.contains(&format!("{}/v2/faults/tiny/", proxy.addr())),
        "the error does not name the status and URL: {error}"
    );
    let others: Vec<&Generated> = rig
        .images
        .iter()
        .filter(|i| i.repository != "faults/tiny")
        .collect();
    assert_mirrored(&to, others);
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    assert!(proxy.stats().faults_injected <= 12, "{}", proxy.stats());
}

/// One blob's GET answers 503 forever (no retry delay): its image fails after a bounded number
/// of attempts, exit 1; the others are copied.
#[test]
fn blob_that_stays_unavailable_fails_after_bounded_attempts() {
    let rig = Rig::new(&fault_set());
    let (app, _) = rig.own_layer("faults/app", MIB);
    let proxy = rig.proxy(
        &rig.source,
        Faults::default().with_rule(Rule::new(blob_get(&app), Action::status(503))),
    );
    let to = format!("{}/m", rig.target.addr());
    let (out, elapsed) = run(
        &mut sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    let attempts = proxy.stats().faults_injected;
    eprintln!("ended after {elapsed:?}; {attempts} GETs of the unavailable blob");
    assert_exit(&out, 1);
    let report = json_report(&out);
    let failed = entry(&report, "faults/app");
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains(&app) && error.contains("503"), "{error}");
    assert_mirrored(
        &to,
        rig.images.iter().filter(|i| i.repository != "faults/app"),
    );
    assert!(!rig.target.stored_blobs().contains(&app));
    // (1 + 5 request retries) x (1 + 4 blob attempts) at most.
    assert!(attempts <= 30, "{attempts} attempts");
}

// ---------------------------------------------------------------------------------------------
// 11: long haul
// ---------------------------------------------------------------------------------------------

/// 20 ms each way, 10 MB/s per connection, 80 MB/s in all: the sync completes and is exact.
#[test]
fn long_haul_link_sync_completes_and_is_exact() {
    let rig = Rig::new(&fault_set());
    let faults = Faults::default()
        .with_latency(Duration::from_millis(20))
        .with_conn_rate(10_000_000)
        .with_total_rate(80_000_000);
    let proxy = rig.proxy(&rig.source, faults);
    let to = format!("{}/m", rig.target.addr());
    let (out, elapsed) = run(
        &mut sync_cmd(&rig.list_at(&proxy.addr().to_string()), &to, &[]),
        SYNC_BOUND,
    );
    let unique = generator::unique_blob_bytes(&rig.images);
    eprintln!(
        "long haul: {unique} bytes in {elapsed:?} ({:.1} MB/s)",
        unique as f64 / elapsed.as_secs_f64() / 1e6
    );
    assert_recovered(&rig, &proxy, &out, &to, 0);
}
