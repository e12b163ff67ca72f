//! `airlift bundle load` as the one engine with a bundle for a source: blobs read concurrently
//! (bounded by `--jobs`), and bundles of the previous release (format 1, kept under
//! `testdata/format1`) loading with every digest kept, all volumes at once or one at a time.
//!
//! Digests are judged by `skopeo inspect --raw` against a real `docker-registry`; concurrency
//! by timing through the fault proxy, whose latency makes every request cost the same wall
//! time whatever the machine's load.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::generator::{self, Arch, Generated, ImageSpec, Kind, LayerSpec};
use crate::support::proxy::{FaultProxy, Faults};
use crate::support::{
    TestRegistry, airlift, assert_complete, assert_exit, describe, digest_of, json_report,
    run_with_timeout, skopeo_inspect_raw,
};

/// Upper bound for one command (debug build, 2 shared cores).
const TIMEOUT: Duration = Duration::from_secs(300);

/// `airlift bundle load VOLUMES --to TO --state-dir STATE --insecure-registry REG --json ARGS`.
fn load(volumes: &[PathBuf], to: &str, state: &Path, args: &[&str]) -> std::process::Output {
    let registry = to.split('/').next().unwrap();
    let mut cmd = airlift();
    cmd.args(["bundle", "load"])
        .args(volumes)
        .args(["--to", to])
        .arg("--state-dir")
        .arg(state)
        .args(["--insecure-registry", registry])
        .args(["--progress", "none", "--json"])
        .args(args);
    run_with_timeout(&mut cmd, TIMEOUT)
}

/// `spec` pushed to a fresh source registry and written into the bundle `name` in a new
/// work directory: the generated images, the directory and the volume.
fn bundled(spec: ImageSpec, name: &str) -> (Vec<Generated>, tempfile::TempDir, PathBuf) {
    let source = TestRegistry::start();
    let images = generator::push(&source.addr(), &[spec]);
    let work = tempfile::tempdir().unwrap();
    let list = generator::write_list(work.path(), &images, &source.addr());
    let out = work.path().join(name);
    let mut cmd = airlift();
    cmd.args(["bundle", "create", "--list"])
        .arg(&list)
        .arg("-o")
        .arg(&out)
        .args(["--insecure-registry", &source.addr()])
        .args(["--progress", "none"]);
    assert_exit(&run_with_timeout(&mut cmd, TIMEOUT), 0);
    (images, work, out)
}

/// The format-1 bundle of the previous release.
fn format1_volumes() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/format1");
    vec![
        dir.join("format1.001.tar.zst"),
        dir.join("format1.002.tar.zst"),
    ]
}

/// (source, top manifest digest) of each image, and every blob, of a volume's descriptor.
fn described(volume: &Path) -> (Vec<(String, String)>, Vec<String>) {
    let bytes = std::fs::read(volume).unwrap();
    let tar = zstd::decode_all(bytes.as_slice()).unwrap();
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(
        entry.path().unwrap().to_string_lossy(),
        "airlift-bundle.json"
    );
    let desc: Value = serde_json::from_reader(&mut entry).unwrap();
    let images = desc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let source = i["source"].as_str().unwrap().to_owned();
            (source, i["digest"].as_str().unwrap().to_owned())
        })
        .collect();
    let blobs = desc["blobs"].as_object().unwrap().keys().cloned().collect();
    (images, blobs)
}

/// Every image of the report is at its target with the bundle's digest, as skopeo reads it.
fn assert_digests_kept(report: &Value, images: &[(String, String)], registry: &TestRegistry) {
    for (source, digest) in images {
        let entry = report["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["source"] == source.as_str())
            .unwrap_or_else(|| panic!("{source} not in the report: {report}"));
        assert_complete(&entry["status"], format!("{entry}"));
        let target = entry["target"].as_str().unwrap();
        let raw = skopeo_inspect_raw(target);
        assert_eq!(&digest_of(&raw), digest, "{target} (from {source})");
    }
    let stored = registry.stored_blobs();
    assert!(!stored.is_empty());
}

#[test]
fn format1_bundle_of_the_previous_release_loads_with_every_digest() {
    let volumes = format1_volumes();
    let (images, blobs) = described(&volumes[0]);
    assert_eq!(images.len(), 3, "{images:?}");
    let work = tempfile::tempdir().unwrap();

    // Both volumes at once.
    let site = TestRegistry::start();
    let to = format!("{}/f1", site.addr());
    let out = load(&volumes, &to, &work.path().join("state-both"), &[]);
    assert_exit(&out, 0);
    let report = json_report(&out);
    assert_digests_kept(&report, &images, &site);
    let stored = site.stored_blobs();
    for b in &blobs {
        assert!(stored.contains(b), "blob {b} not at the site");
    }

    // One volume at a time, the second first: what needs the missing volume waits for it.
    let site = TestRegistry::start();
    let to = format!("{}/f1", site.addr());
    let state = work.path().join("state-one");
    let out = load(&volumes[1..], &to, &state, &[]);
    assert_exit(&out, 0);
    let first = json_report(&out);
    let pending: Vec<&Value> = first["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "pending")
        .collect();
    assert!(!pending.is_empty(), "{first}");
    for e in &pending {
        assert_eq!(e["pending_volumes"], serde_json::json!([1]), "{e}");
    }
    let out = load(&volumes[..1], &to, &state, &[]);
    assert_exit(&out, 0);
    let second = json_report(&out);
    assert_digests_kept(&second, &images, &site);
    let stored = site.stored_blobs();
    for b in &blobs {
        assert!(
            stored.contains(b),
            "blob {b} not at the site after both volumes"
        );
    }
}

#[test]
fn load_reads_blobs_concurrently_up_to_jobs() {
    // One image of many small layers: with every request delayed by the proxy, a load that
    // moves blobs one at a time takes several times longer than one moving eight at a time.
    let layers = (0..24)
        .map(|i| LayerSpec::seeded(900 + i, 48 << 10))
        .collect();
    let spec = ImageSpec::new("many/layers", "1", Kind::Oci, Arch::Single, layers);
    let (images, work, out) = bundled(spec, "many.tar.zst");
    let blobs = images[0].blobs.len();
    assert!(blobs >= 25, "{blobs} blobs");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut elapsed = Vec::new();
    for jobs in ["1", "8"] {
        let site = TestRegistry::start();
        let upstream: std::net::SocketAddr = site.addr().parse().unwrap();
        let proxy = rt.block_on(FaultProxy::start(
            upstream,
            Faults::default().with_latency(Duration::from_millis(150)),
        ));
        let to = format!("{}/site", proxy.addr());
        let started = Instant::now();
        let run = load(
            std::slice::from_ref(&out),
            &to,
            &work.path().join(format!("state-{jobs}")),
            &["--jobs", jobs],
        );
        elapsed.push(started.elapsed());
        assert_exit(&run, 0);
        let report = json_report(&run);
        assert_eq!(
            report["blobs_transferred"],
            blobs as u64,
            "{}",
            describe(&run)
        );
        let raw = skopeo_inspect_raw(&format!("{}/site/many/layers:1", site.addr()));
        assert_eq!(digest_of(&raw), images[0].digest);
        drop(proxy);
    }
    let (one, eight) = (elapsed[0], elapsed[1]);
    assert!(
        eight * 2 < one,
        "--jobs 8 took {eight:?}, --jobs 1 {one:?}: blobs are not read and uploaded concurrently"
    );
}

#[test]
fn random_access_bundle_uploads_its_largest_blobs_first() {
    // A large blob read late (volume order) uploads alone at the end while the rest of the
    // machine idles: a format-2 bundle is loaded largest blob first. With --jobs 1 the blobs
    // go up one after another, so the order of their closing PUTs is the order they were read.
    let sizes: [u64; 5] = [64 << 10, 3 << 20, 256 << 10, 1 << 20, 2 << 20];
    let layers = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| LayerSpec::seeded(950 + i as u64, size))
        .collect();
    let spec = ImageSpec::new("sized/layers", "1", Kind::Oci, Arch::Single, layers);
    let (images, work, out) = bundled(spec, "sized.tar.zst");

    let site = TestRegistry::start();
    let to = format!("{}/site", site.addr());
    let run = load(
        std::slice::from_ref(&out),
        &to,
        &work.path().join("state"),
        &["--jobs", "1", "-vv"],
    );
    assert_exit(&run, 0);
    let log = String::from_utf8_lossy(&run.stderr);
    let committed: Vec<String> = log
        .lines()
        .filter(|l| l.contains("method=PUT") && l.contains("/blobs/uploads/"))
        .filter_map(|l| l.split("digest=sha256%3A").nth(1))
        .map(|rest| format!("sha256:{}", &rest[..64]))
        .collect();
    let mut expected = images[0].blobs.clone();
    expected.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
    let expected: Vec<String> = expected.into_iter().map(|(d, _)| d).collect();
    assert_eq!(committed, expected, "{}", describe(&run));
    let raw = skopeo_inspect_raw(&format!("{}/site/sized/layers:1", site.addr()));
    assert_eq!(digest_of(&raw), images[0].digest);
}

#[test]
fn corrupt_large_blob_of_a_random_access_bundle_commits_nothing() {
    // A layer over one upload chunk goes up as one PATCH (all but its last chunk) and a
    // closing PUT, read from the volume as it goes: a flipped byte fails the digest check
    // before the PUT completes, and nothing is committed. (The session is not always gone:
    // docker distribution keeps the data of a PUT cut off mid-body, as it did with 8 MiB
    // PATCH chunks before.)
    let layers = vec![
        LayerSpec::seeded(960, 64 << 10),
        LayerSpec::seeded(961, 20 << 20),
    ];
    let spec = ImageSpec::new("corrupt/big", "1", Kind::Oci, Arch::Single, layers);
    let (images, work, out) = bundled(spec, "big.tar.zst");
    let (big, _) = images[0]
        .blobs
        .iter()
        .max_by_key(|(_, size)| *size)
        .unwrap()
        .clone();
    crate::bundle::corrupt_blob(&out, &big);

    let site = TestRegistry::start();
    let to = format!("{}/site", site.addr());
    let run = load(
        std::slice::from_ref(&out),
        &to,
        &work.path().join("state"),
        &[],
    );
    assert_exit(&run, 3);
    assert!(
        !site.stored_blobs().contains(&big),
        "the corrupt blob {big} was committed"
    );
}
