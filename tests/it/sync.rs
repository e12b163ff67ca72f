//! Integration tests of `airlift mirror sync` against real registries, judged by skopeo.
//!
//! Each test starts its own source and target `docker-registry`, pushes generated images to
//! the source, runs the `airlift` binary and checks the target through `skopeo inspect --raw`
//! (digests must be byte-for-byte equal), the registry's catalog and storage, and the `--json`
//! report. They are written against the CLI contract of `mirror sync`: list files, `--to
//! REGISTRY[/PREFIX]`, `--flatten`/`--keep-host`, `--platform`, `--jobs`, `--dry-run`,
//! `--json`, `--insecure-registry`, and exit codes 0/1/2/3.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::assert_complete;
use crate::support::generator::{self, Arch, Generated, ImageSpec, Kind, LayerSpec};
use crate::support::{
    TestRegistry, airlift, closed_addr, digest_of, run_with_timeout, skopeo_copy,
    skopeo_inspect_raw, try_skopeo_inspect_raw,
};
use crate::support::{assert_exit, json_report, number};

/// Upper bound for one sync of the small set (debug build, 2 shared cores).
const SYNC_TIMEOUT: Duration = Duration::from_secs(300);

/// A source registry holding generated images, an empty target, and an image list.
struct Fixture {
    source: TestRegistry,
    target: TestRegistry,
    images: Vec<Generated>,
    list: PathBuf,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(specs: &[ImageSpec]) -> Fixture {
        let source = TestRegistry::start();
        let target = TestRegistry::start();
        let images = generator::push(&source.addr(), specs);
        let dir = tempfile::tempdir().expect("tempdir");
        let list = generator::write_list(dir.path(), &images, &source.addr());
        Fixture {
            source,
            target,
            images,
            list,
            dir,
        }
    }

    fn small() -> Fixture {
        Fixture::new(&generator::small_set())
    }

    /// `airlift mirror sync --list LIST --insecure-registry SRC --insecure-registry DST ARGS`.
    fn sync(&self, list: &Path, args: &[&str]) -> Output {
        let mut cmd = airlift();
        cmd.args(["mirror", "sync", "--list"])
            .arg(list)
            .args(["--insecure-registry", &self.source.addr()])
            .args(["--insecure-registry", &self.target.addr()])
            .args(args);
        run_with_timeout(&mut cmd, SYNC_TIMEOUT)
    }

    /// Writes a list file with these lines.
    fn write_list(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write list");
        path
    }

    fn image(&self, repository: &str) -> &Generated {
        self.images
            .iter()
            .find(|i| i.repository == repository)
            .unwrap_or_else(|| panic!("no generated image {repository}"))
    }
}

fn images_of(report: &Value) -> &Vec<Value> {
    report["images"]
        .as_array()
        .unwrap_or_else(|| panic!("report has no images array: {report}"))
}

/// The digest of the manifest stored at `reference`, as skopeo sees it.
fn target_digest(reference: &str) -> String {
    digest_of(skopeo_inspect_raw(reference))
}

/// Checks that every image sits at `target_of(image)` with the source's digest, and every
/// index child is there by digest.
fn assert_mirrored(fx: &Fixture, target_of: impl Fn(&Generated) -> String) {
    for image in &fx.images {
        let target = target_of(image);
        assert_eq!(
            target_digest(&target),
            image.digest,
            "{target} differs from its source"
        );
        let repo = target.rsplit_once(':').expect("tagged reference").0;
        for child in &image.manifests {
            assert_eq!(
                target_digest(&format!("{repo}@{child}")),
                *child,
                "index child {child} of {target}"
            );
        }
    }
}

#[test]
fn sync_copies_every_image_byte_for_byte() {
    let fx = Fixture::small();
    let to = format!("{}/mirror", fx.target.addr());
    let out = fx.sync(&fx.list, &["--to", &to, "--json"]);
    assert_exit(&out, 0);
    let report = json_report(&out);
    let images = images_of(&report);
    assert_eq!(images.len(), fx.images.len(), "{report}");
    for (i, (entry, image)) in images.iter().zip(&fx.images).enumerate() {
        let target = format!("{to}/{}:{}", image.repository, image.tag);
        assert_eq!(entry["status"], "copied", "{entry}");
        assert_eq!(entry["target"], target.as_str(), "{entry}");
        assert_eq!(entry["digest"], image.digest.as_str(), "{entry}");
        assert_eq!(entry["source_digest"], image.digest.as_str(), "{entry}");
        assert!(
            entry["source"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("{}:{}", image.repository, image.tag))),
            "{entry}"
        );
        assert_eq!(
            entry["origin"],
            format!("{}:{}", fx.list.display(), i + 1).as_str(),
            "{entry}"
        );
    }
    assert_mirrored(&fx, |i| format!("{to}/{}:{}", i.repository, i.tag));
    // The media types the test covers: single Docker and OCI images, a list and an index.
    let kinds: HashSet<&str> = fx.images.iter().map(|i| i.media_type.as_str()).collect();
    assert_eq!(kinds.len(), 4);

    let unique = generator::unique_blob_bytes(&fx.images);
    assert!(
        number(&report, "bytes_transferred") >= unique,
        "bytes_transferred {} < unique blob bytes {unique}: {report}",
        number(&report, "bytes_transferred")
    );
    assert!(number(&report, "blobs_transferred") > 0, "{report}");
    assert!(report["seconds"].as_f64().is_some(), "{report}");

    // A mirrored image is a usable image: skopeo pulls it (checking every blob digest).
    let layout = fx.dir.path().join("pulled");
    skopeo_copy(
        &format!("docker://{to}/harness/multi-oci:3"),
        &format!("oci:{}:pulled", layout.display()),
    );
    assert!(layout.join("index.json").is_file());
}

#[test]
fn second_sync_transfers_nothing() {
    let fx = Fixture::small();
    let to = format!("{}/mirror", fx.target.addr());
    let first = fx.sync(&fx.list, &["--to", &to, "--json"]);
    assert_exit(&first, 0);
    let second = fx.sync(&fx.list, &["--to", &to, "--json"]);
    assert_exit(&second, 0);
    let report = json_report(&second);
    assert_eq!(number(&report, "bytes_transferred"), 0, "{report}");
    assert_eq!(number(&report, "blobs_transferred"), 0, "{report}");
    assert!(number(&report, "blobs_skipped") > 0, "{report}");
    assert!(
        number(&report, "bytes_skipped") >= generator::unique_blob_bytes(&fx.images),
        "{report}"
    );
    for entry in images_of(&report) {
        assert_eq!(entry["status"], "already_present", "{entry}");
    }
    assert_mirrored(&fx, |i| format!("{to}/{}:{}", i.repository, i.tag));
}

/// Source and target in the same registry: every blob is mounted across repositories
/// (`?mount=&from=`), so nothing is downloaded, and the copies are byte-identical.
#[test]
fn same_registry_copies_mount_instead_of_downloading() {
    let fx = Fixture::small();
    let to = format!("{}/copy", fx.source.addr());
    let out = fx.sync(&fx.list, &["--to", &to, "--json"]);
    assert_exit(&out, 0);
    let report = json_report(&out);
    assert_eq!(number(&report, "bytes_transferred"), 0, "{report}");
    for image in &fx.images {
        let target = format!("{to}/{}:{}", image.repository, image.tag);
        assert_eq!(target_digest(&target), image.digest, "{target}");
    }
}

#[test]
fn dry_run_plans_and_copies_nothing() {
    let fx = Fixture::small();
    let to = format!("{}/mirror", fx.target.addr());
    let out = fx.sync(&fx.list, &["--to", &to, "--dry-run", "--json"]);
    assert_exit(&out, 0);
    let report = json_report(&out);
    let images = images_of(&report);
    assert_eq!(images.len(), fx.images.len(), "{report}");
    for (entry, image) in images.iter().zip(&fx.images) {
        assert_eq!(entry["status"], "planned", "{entry}");
        assert_eq!(
            entry["target"],
            format!("{to}/{}:{}", image.repository, image.tag).as_str(),
            "{entry}"
        );
    }
    assert_eq!(number(&report, "bytes_transferred"), 0, "{report}");
    assert_eq!(number(&report, "blobs_transferred"), 0, "{report}");
    assert!(
        fx.target.catalog().is_empty(),
        "a dry run wrote to the target"
    );
    assert!(
        fx.target.stored_blobs().is_empty(),
        "a dry run stored blobs at the target"
    );
}

#[test]
fn flatten_and_strip_mappings_name_targets() {
    let fx = Fixture::small();
    // Strip (the default) with no prefix: the source repository path as is.
    let out = fx.sync(&fx.list, &["--to", &fx.target.addr(), "--json"]);
    assert_exit(&out, 0);
    assert_mirrored(&fx, |i| {
        format!("{}/{}:{}", fx.target.addr(), i.repository, i.tag)
    });
    // Strip under a two-level prefix.
    let nested = format!("{}/a/b", fx.target.addr());
    let out = fx.sync(&fx.list, &["--to", &nested, "--json"]);
    assert_exit(&out, 0);
    assert_mirrored(&fx, |i| format!("{nested}/{}:{}", i.repository, i.tag));
    // Flatten: only the last path component.
    let flat = format!("{}/flat", fx.target.addr());
    let out = fx.sync(&fx.list, &["--to", &flat, "--flatten", "--json"]);
    assert_exit(&out, 0);
    let last = |i: &Generated| i.repository.rsplit('/').next().unwrap().to_string();
    assert_mirrored(&fx, |i| format!("{flat}/{}:{}", last(i), i.tag));
    assert_eq!(
        target_digest(&format!("{flat}/big:v6")),
        fx.image("harness/tools/big").digest
    );
    let report = json_report(&out);
    for (entry, image) in images_of(&report).iter().zip(&fx.images) {
        assert_eq!(
            entry["target"],
            format!("{flat}/{}:{}", last(image), image.tag).as_str()
        );
    }
    // Keep-host: the source host becomes the first component under the prefix (how a port
    // is spelled is the mapping's business; the report says where each image went).
    let kept = format!("{}/kh", fx.target.addr());
    let out = fx.sync(&fx.list, &["--to", &kept, "--keep-host", "--json"]);
    assert_exit(&out, 0);
    let report = json_report(&out);
    for (entry, image) in images_of(&report).iter().zip(&fx.images) {
        let target = entry["target"].as_str().expect("target");
        assert!(target.starts_with(&format!("{kept}/127.0.0.1")), "{target}");
        assert!(
            target.ends_with(&format!("/{}:{}", image.repository, image.tag)),
            "{target}"
        );
        assert_eq!(target_digest(target), image.digest, "{target}");
    }
    // Nothing landed outside the requested prefixes.
    for repo in fx.target.catalog() {
        assert!(
            fx.images.iter().any(|i| repo == i.repository)
                || ["a/b/", "flat/", "kh/"].iter().any(|p| repo.starts_with(p)),
            "unexpected target repository {repo}"
        );
    }
}

#[test]
fn platform_filter_rewrites_the_index() {
    let fx = Fixture::small();
    let multi: Vec<&Generated> = fx
        .images
        .iter()
        .filter(|i| !i.manifests.is_empty())
        .collect();
    assert_eq!(multi.len(), 2, "a Docker list and an OCI index");
    let lines: Vec<String> = multi
        .iter()
        .map(|i| i.reference(&fx.source.addr()))
        .collect();
    let list = fx.write_list("multi.txt", &lines);
    let to = format!("{}/arm", fx.target.addr());
    let out = fx.sync(&list, &["--to", &to, "--platform", "linux/arm64", "--json"]);
    assert_exit(&out, 0);
    let report = json_report(&out);
    for (entry, image) in images_of(&report).iter().zip(&multi) {
        let target = format!("{to}/{}:{}", image.repository, image.tag);
        let raw = skopeo_inspect_raw(&target);
        let digest = digest_of(&raw);
        assert_ne!(digest, image.digest, "{target} kept the unfiltered index");
        assert_complete(&entry["status"], format!("{entry}"));
        assert_eq!(entry["digest"], digest.as_str(), "{entry}");
        assert_eq!(entry["source_digest"], image.digest.as_str(), "{entry}");
        let index: Value = serde_json::from_slice(&raw).expect("index JSON");
        assert_eq!(index["mediaType"], image.media_type.as_str(), "{index}");
        let children = index["manifests"].as_array().expect("manifests");
        assert_eq!(children.len(), 1, "only arm64 is kept: {index}");
        assert_eq!(children[0]["platform"]["architecture"], "arm64", "{index}");
        assert_eq!(children[0]["platform"]["os"], "linux", "{index}");
        // The kept child is the source's arm64 manifest, unchanged, and present.
        let arm = image
            .platforms
            .iter()
            .position(|p| p.starts_with("linux/arm64"))
            .unwrap();
        assert_eq!(children[0]["digest"], image.manifests[arm].as_str());
        let repo = format!("{to}/{}", image.repository);
        assert_eq!(
            target_digest(&format!("{repo}@{}", image.manifests[arm])),
            image.manifests[arm]
        );
        let amd = &image.manifests[1 - arm];
        assert!(
            try_skopeo_inspect_raw(&format!("{repo}@{amd}")).is_err(),
            "the amd64 child was copied although filtered out"
        );
    }
}

#[test]
fn bad_list_lines_are_all_reported_and_nothing_syncs() {
    let fx = Fixture::small();
    let src = fx.source.addr();
    let lines = vec![
        format!("{src}/harness/base:1.0"),
        format!("{src}/Harness/UpperCase:1.0"),
        format!("{src}/harness/app-oci:2.1"),
        format!("{src}/harness/base@sha256:not-a-digest"),
    ];
    let list = fx.write_list("bad.txt", &lines);
    let to = format!("{}/mirror", fx.target.addr());
    let out = fx.sync(&list, &["--to", &to, "--json"]);
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [2, 4] {
        let origin = format!("{}:{line}", list.display());
        assert!(stderr.contains(&origin), "stderr lacks {origin}:\n{stderr}");
    }
    for line in [1, 3] {
        let origin = format!("{}:{line}:", list.display());
        assert!(
            !stderr.contains(&origin),
            "good line reported as bad:\n{stderr}"
        );
    }
    assert!(fx.target.catalog().is_empty(), "something was synced");
    assert!(fx.target.stored_blobs().is_empty(), "something was synced");

    // Bad flags are a usage error too.
    let out = fx.sync(&fx.list, &["--to", &to, "--flatten", "--keep-host"]);
    assert_exit(&out, 2);
    let out = fx.sync(&fx.list, &["--to", &to, "--platform", "not-a-platform"]);
    assert_exit(&out, 2);
    assert!(fx.target.catalog().is_empty(), "something was synced");
}

#[test]
fn unknown_image_fails_alone() {
    let fx = Fixture::small();
    let src = fx.source.addr();
    let mut lines: Vec<String> = fx.images[..3].iter().map(|i| i.reference(&src)).collect();
    lines.insert(1, format!("{src}/harness/base:does-not-exist"));
    let list = fx.write_list("unknown.txt", &lines);
    let to = format!("{}/mirror", fx.target.addr());
    let out = fx.sync(&list, &["--to", &to, "--json"]);
    assert_exit(&out, 1);
    let report = json_report(&out);
    let entries = images_of(&report);
    assert_eq!(entries.len(), 4, "{report}");
    let failed = &entries[1];
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("harness/base") && error.contains("does-not-exist"),
        "the error does not name the image: {failed}"
    );
    for (entry, image) in [&entries[0], &entries[2], &entries[3]]
        .into_iter()
        .zip(&fx.images[..3])
    {
        assert_complete(&entry["status"], format!("{entry}"));
        let target = format!("{to}/{}:{}", image.repository, image.tag);
        assert_eq!(target_digest(&target), image.digest, "{target}");
    }
    assert!(
        try_skopeo_inspect_raw(&format!("{to}/harness/base:does-not-exist")).is_err(),
        "a tag appeared for an image that does not exist"
    );
}

#[test]
fn unreachable_source_fails_in_bounded_time() {
    let fx = Fixture::small();
    let closed = closed_addr();
    let lines = vec![
        fx.images[0].reference(&fx.source.addr()),
        format!("{closed}/harness/unreachable:1.0"),
    ];
    let list = fx.write_list("unreachable.txt", &lines);
    let to = format!("{}/mirror", fx.target.addr());
    let started = Instant::now();
    let mut cmd = airlift();
    cmd.args(["mirror", "sync", "--list"])
        .arg(&list)
        .args(["--to", &to, "--json"])
        .args(["--insecure-registry", &fx.source.addr()])
        .args(["--insecure-registry", &fx.target.addr()])
        .args(["--insecure-registry", &closed]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert_exit(&out, 1);
    let report = json_report(&out);
    let entries = images_of(&report);
    assert_complete(&entries[0]["status"], format!("{report}"));
    assert_eq!(entries[1]["status"], "failed", "{report}");
    let error = entries[1]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&closed),
        "the error does not name the unreachable host {closed}: {error}"
    );
}

#[test]
fn killed_sync_resumes_and_transfers_only_what_is_missing() {
    const MIB: u64 = 1024 * 1024;
    let specs: Vec<ImageSpec> = (0..8u64)
        .map(|i| {
            ImageSpec::new(
                &format!("resume/image-{i}"),
                "1",
                if i % 2 == 0 { Kind::Docker } else { Kind::Oci },
                Arch::Single,
                (0..4u64)
                    .map(|l| LayerSpec::seeded(5000 + i * 10 + l, 4 * MIB))
                    .collect(),
            )
        })
        .collect();
    let fx = Fixture::new(&specs);
    let layers: HashSet<String> = fx
        .images
        .iter()
        .flat_map(|i| i.layers.iter().cloned())
        .collect();
    let unique = generator::unique_blob_bytes(&fx.images);
    let to = format!("{}/resume", fx.target.addr());

    let mut cmd = airlift();
    cmd.args(["mirror", "sync", "--list"])
        .arg(&fx.list)
        .args(["--to", &to, "--jobs", "2"])
        .args(["--insecure-registry", &fx.source.addr()])
        .args(["--insecure-registry", &fx.target.addr()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("run airlift");
    let deadline = Instant::now() + SYNC_TIMEOUT;
    let committed = loop {
        let committed = fx
            .target
            .stored_blobs()
            .into_iter()
            .filter(|d| layers.contains(d))
            .count();
        if committed > 0 {
            break committed;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("airlift exited ({status}) before any layer blob reached the target");
        }
        assert!(
            Instant::now() < deadline,
            "no layer blob reached the target within {SYNC_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let still_running = child.try_wait().expect("wait").is_none();
    child.kill().expect("SIGKILL airlift");
    child.wait().expect("reap airlift");
    assert!(
        still_running,
        "the sync finished before it could be killed; the test set is too small to test resuming"
    );
    assert!(committed < layers.len(), "everything was already committed");

    let out = fx.sync(&fx.list, &["--to", &to, "--jobs", "2", "--json"]);
    assert_exit(&out, 0);
    let report = json_report(&out);
    for entry in images_of(&report) {
        assert_complete(&entry["status"], format!("{entry}"));
    }
    assert_mirrored(&fx, |i| format!("{to}/{}:{}", i.repository, i.tag));
    let transferred = number(&report, "bytes_transferred");
    assert!(
        transferred < unique,
        "the resumed run transferred {transferred} bytes, not less than the {unique} bytes of all blobs: {report}"
    );
    assert!(
        transferred > 0,
        "the resumed run transferred nothing: {report}"
    );
    assert!(
        number(&report, "blobs_skipped") >= committed as u64,
        "{report}"
    );
    // Every generated blob is at the target now.
    let stored: HashSet<String> = fx.target.stored_blobs().into_iter().collect();
    let sizes: HashMap<&String, u64> = fx
        .images
        .iter()
        .flat_map(|i| i.blobs.iter().map(|(d, s)| (d, *s)))
        .collect();
    for digest in sizes.keys() {
        assert!(stored.contains(*digest), "{digest} missing at the target");
    }
}
