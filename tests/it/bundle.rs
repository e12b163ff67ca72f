//! Integration tests of the content-bundle commands (`airlift bundle create | load | verify |
//! inspect` and `airlift inventory`) against real registries, judged by skopeo, `zstd`, `tar`
//! and the registry's own storage.
//!
//! Each test starts its own `docker-registry` processes, pushes the generator's small set,
//! runs the `airlift` binary and checks what arrives: manifest digests through
//! `skopeo inspect --raw`, blobs through the registry's storage directory, and the `--json`
//! reports. Volumes are read back with the `tar` and `zstd` crates (for the descriptor) and
//! with the real `zstd`/`tar` programs (for the OCI layout round trip). Hostile and corrupted
//! volumes are built by hand from good ones.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::assert_complete;
use crate::support::generator::{self, Generated};
use crate::support::proxy::{FaultProxy, Faults};
use crate::support::{Forky, assert_exit, default_staging, describe, json_report, number};
use crate::support::{
    TestRegistry, airlift, digest_of, require_program, run_with_timeout, skopeo,
    skopeo_inspect_raw, try_skopeo_inspect_raw,
};

/// Upper bound for one bundle command on the small set (debug build, 2 shared cores).
const TIMEOUT: Duration = Duration::from_secs(300);

/// A source registry holding the small set, a list of it, and a scratch directory (also used
/// by the `serve` tests).
pub(crate) struct Fixture {
    pub(crate) source: TestRegistry,
    pub(crate) images: Vec<Generated>,
    pub(crate) list: PathBuf,
    pub(crate) dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn small() -> Fixture {
        Fixture::of(&generator::small_set())
    }

    /// A source registry holding `specs`.
    pub(crate) fn of(specs: &[generator::ImageSpec]) -> Fixture {
        let source = TestRegistry::start();
        let images = generator::push(&source.addr(), specs);
        let dir = tempfile::tempdir().expect("tempdir");
        let list = generator::write_list(dir.path(), &images, &source.addr());
        Fixture {
            source,
            images,
            list,
            dir,
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a list of some of the images (by index), named `name`.
    fn sublist(&self, name: &str, which: &[usize]) -> PathBuf {
        let path = self.path(name);
        let text: String = which
            .iter()
            .map(|&i| self.images[i].reference(&self.source.addr()) + "\n")
            .collect();
        std::fs::write(&path, text).expect("write list");
        path
    }

    /// `airlift bundle create --list LIST -o OUT --insecure-registry SRC --progress none ARGS`.
    fn create(&self, list: &Path, out: &Path, args: &[&str]) -> Output {
        let mut cmd = airlift();
        cmd.args(["bundle", "create", "--list"])
            .arg(list)
            .arg("-o")
            .arg(out)
            .args(["--insecure-registry", &self.source.addr()])
            .args(["--progress", "none"])
            .args(args);
        run_with_timeout(&mut cmd, TIMEOUT)
    }

    /// Creates a bundle of `list` and asserts success; returns its volume files.
    pub(crate) fn create_ok(&self, list: &Path, name: &str, args: &[&str]) -> Vec<PathBuf> {
        let out = self.path(name);
        let result = self.create(list, &out, args);
        assert_exit(&result, 0);
        volumes_of(&out)
    }

    /// The full source reference of an image as the bundle records it.
    fn source_ref(&self, image: &Generated) -> String {
        image.reference(&self.source.addr())
    }

    /// Image by repository.
    fn image(&self, repository: &str) -> &Generated {
        self.images
            .iter()
            .find(|i| i.repository == repository)
            .unwrap_or_else(|| panic!("no generated image {repository}"))
    }
}

/// `airlift bundle load VOLUMES --to TO --state-dir STATE --insecure-registry REG --json`.
fn load(volumes: &[PathBuf], to: &str, registry: &TestRegistry, state: &Path) -> Output {
    let mut cmd = airlift();
    cmd.args(["bundle", "load"])
        .args(volumes)
        .args(["--to", to])
        .arg("--state-dir")
        .arg(state)
        .args(["--insecure-registry", &registry.addr()])
        .args(["--progress", "none", "--json"]);
    run_with_timeout(&mut cmd, TIMEOUT)
}

/// `airlift bundle verify VOLUMES [ARGS]`.
fn verify(volumes: &[PathBuf], args: &[&str]) -> Output {
    let mut cmd = airlift();
    cmd.args(["bundle", "verify"]).args(volumes).args(args);
    run_with_timeout(&mut cmd, TIMEOUT)
}

/// `airlift bundle inspect VOLUMES [ARGS]`.
fn inspect(volumes: &[PathBuf], args: &[&str]) -> Output {
    let mut cmd = airlift();
    cmd.args(["bundle", "inspect"]).args(volumes).args(args);
    run_with_timeout(&mut cmd, TIMEOUT)
}

/// The volume files written for `-o out`: `out` itself, or `stem.NNN.tar.zst`, in order.
fn volumes_of(out: &Path) -> Vec<PathBuf> {
    if out.is_file() {
        return vec![out.to_owned()];
    }
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    let stem = name
        .strip_suffix(".tar.zst")
        .expect("output ends in .tar.zst");
    let mut found: Vec<PathBuf> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.strip_prefix(&format!("{stem}."))
                .and_then(|r| r.strip_suffix(".tar.zst"))
                .is_some_and(|num| num.len() >= 3 && num.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no volume written for {}", out.display());
    found
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The decompressed tar stream of a volume (zstd crate).
fn decompress(volume: &Path) -> Vec<u8> {
    let file = std::fs::File::open(volume).expect("open volume");
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(file)
        .expect("zstd decoder")
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("cannot decompress {}: {e}", volume.display()));
    out
}

/// Compresses a tar stream into a format-2 volume file as airlift writes it: each entry's
/// header a zstd frame of its own, its padded content in frames of 1 MiB, the end marker a
/// frame, then the seek index (the zstd seekable format's table in a skippable frame).
fn compress_to(tar: &[u8], volume: &Path) {
    let mut cuts = Vec::new();
    let mut pos = 0usize;
    while pos + 512 <= tar.len() {
        let block = &tar[pos..pos + 512];
        if block.iter().all(|&b| b == 0) {
            break;
        }
        cuts.push(pos);
        let size = tar::Header::from_byte_slice(block).entry_size().unwrap() as usize;
        pos += 512;
        let end = (pos + size.div_ceil(512) * 512).min(tar.len());
        while pos < end {
            cuts.push(pos);
            pos = (pos + (1 << 20)).min(end);
        }
    }
    cuts.push(pos);
    cuts.push(tar.len());
    cuts.dedup();
    let mut out = Vec::new();
    let mut table = Vec::new();
    let mut compressor = zstd::bulk::Compressor::new(3).unwrap();
    compressor
        .set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))
        .unwrap();
    compressor
        .set_parameter(zstd::stream::raw::CParameter::WindowLog(20))
        .unwrap();
    for w in cuts.windows(2).filter(|w| w[1] > w[0]) {
        let frame = compressor.compress(&tar[w[0]..w[1]]).unwrap();
        table.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        table.extend_from_slice(&((w[1] - w[0]) as u32).to_le_bytes());
        table.extend_from_slice(&frame[frame.len() - 4..]);
        out.extend_from_slice(&frame);
    }
    let frames = (table.len() / 12) as u32;
    out.extend_from_slice(&0x184D_2A5Eu32.to_le_bytes());
    out.extend_from_slice(&(table.len() as u32 + 9).to_le_bytes());
    out.extend_from_slice(&table);
    out.extend_from_slice(&frames.to_le_bytes());
    out.push(0x80);
    out.extend_from_slice(&0x8F92_EAB1u32.to_le_bytes());
    std::fs::write(volume, out).expect("write volume");
}

/// `airlift-bundle.json` of a volume (its first tar entry), as JSON.
fn descriptor(volume: &Path) -> Value {
    let tar = decompress(volume);
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entry = archive
        .entries()
        .expect("tar entries")
        .next()
        .expect("a first entry")
        .expect("readable entry");
    assert_eq!(
        entry.path().unwrap().to_string_lossy(),
        "airlift-bundle.json",
        "the descriptor is the first entry of {}",
        volume.display()
    );
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    serde_json::from_slice(&bytes).expect("descriptor JSON")
}

/// Volume numbers holding each of an image's blobs, per descriptor.
fn image_volumes(desc: &Value, source: &str) -> BTreeSet<u64> {
    let image = desc["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["source"] == source)
        .unwrap_or_else(|| panic!("{source} not in the descriptor"));
    let mut out = BTreeSet::new();
    for b in image["blobs"].as_array().unwrap() {
        for loc in desc["blobs"][b.as_str().unwrap()]["volumes"]
            .as_array()
            .unwrap()
        {
            out.insert(loc["volume"].as_u64().unwrap());
        }
    }
    out
}

/// Blob digests a descriptor carries (`blobs`) and leaves at the site (`excluded_blobs`).
fn carried_and_excluded(desc: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    (keys(&desc["blobs"]), keys(&desc["excluded_blobs"]))
}

fn target_of(to: &str, image: &Generated) -> String {
    format!("{to}/{}:{}", image.repository, image.tag)
}

/// Every image of `images` is at `to` with the source digest, index children by digest too.
fn assert_loaded(images: &[Generated], to: &str) {
    for image in images {
        let target = target_of(to, image);
        assert_eq!(
            digest_of(skopeo_inspect_raw(&target)),
            image.digest,
            "{target} differs from its source"
        );
        for child in &image.manifests {
            let by_digest = format!("{to}/{}@{child}", image.repository);
            assert_eq!(
                digest_of(skopeo_inspect_raw(&by_digest)),
                *child,
                "index child {by_digest}"
            );
        }
    }
}

/// The image and none of its index children is at `to`.
fn assert_absent(image: &Generated, to: &str) {
    let target = target_of(to, image);
    assert!(
        try_skopeo_inspect_raw(&target).is_err(),
        "{target} is at the target although some of its blobs were not loaded"
    );
    for child in &image.manifests {
        let by_digest = format!("{to}/{}@{child}", image.repository);
        assert!(
            try_skopeo_inspect_raw(&by_digest).is_err(),
            "{by_digest} is at the target although some of its blobs were not loaded"
        );
    }
}

/// The `images` entry of a load report for `image` (matched by target).
fn report_entry<'a>(report: &'a Value, to: &str, image: &Generated) -> &'a Value {
    let target = target_of(to, image);
    report["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no images in {report}"))
        .iter()
        .find(|e| e["target"] == target.as_str())
        .unwrap_or_else(|| panic!("{target} not in the report {report}"))
}

// -------------------------------------------------------------------------------------------
// 1. create from a registry, load into an empty one
// -------------------------------------------------------------------------------------------

#[test]
fn create_then_load_into_empty_registry_keeps_every_digest() {
    let fx = Fixture::small();
    let volumes = fx.create_ok(&fx.list, "release.tar.zst", &[]);
    assert_eq!(volumes.len(), 1, "no --max-volume-size: one volume");
    // One pass: nothing is staged, in the user's cache or next to the volumes, and no
    // `.partial` is left.
    let staging = default_staging(&fx.path("release.tar.zst"));
    assert!(
        !staging.exists(),
        "a staging directory {} was made",
        staging.display()
    );
    let names: Vec<String> = std::fs::read_dir(fx.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("staging") || n.ends_with(".partial")),
        "left next to the output: {names:?}"
    );

    let site = TestRegistry::start();
    assert!(site.catalog().is_empty());
    let to = format!("{}/site", site.addr());
    let state = fx.path("state");
    let out = load(&volumes, &to, &site, &state);
    assert_exit(&out, 0);
    let report = json_report(&out);
    assert_eq!(
        report["images"].as_array().map(Vec::len),
        Some(fx.images.len()),
        "{report}"
    );
    for image in &fx.images {
        let entry = report_entry(&report, &to, image);
        assert_eq!(entry["status"], "copied", "{entry}");
        assert_eq!(entry["digest"], image.digest.as_str(), "{entry}");
        assert_eq!(entry["source"], fx.source_ref(image).as_str(), "{entry}");
    }
    let unique = generator::unique_blob_bytes(&fx.images);
    assert!(
        number(&report, "bytes_transferred") >= unique,
        "bytes_transferred < unique blob bytes {unique}: {report}"
    );
    assert_loaded(&fx.images, &to);
    // Every blob of every image was committed at the site.
    let stored: HashSet<String> = site.stored_blobs().into_iter().collect();
    for image in &fx.images {
        for (blob, _) in &image.blobs {
            assert!(
                stored.contains(blob),
                "{blob} of {} not stored",
                image.repository
            );
        }
    }

    let again = load(&volumes, &to, &site, &state);
    assert_exit(&again, 0);
    let report = json_report(&again);
    assert_eq!(number(&report, "bytes_transferred"), 0, "{report}");
    assert_eq!(number(&report, "blobs_transferred"), 0, "{report}");
    for entry in report["images"].as_array().unwrap() {
        assert_eq!(entry["status"], "already_present", "{entry}");
    }
    assert_loaded(&fx.images, &to);
}

// -------------------------------------------------------------------------------------------
// 2. a volume is an OCI layout skopeo can read
// -------------------------------------------------------------------------------------------

#[test]
fn volume_unpacked_with_zstd_and_tar_is_an_oci_layout_for_skopeo() {
    require_program("zstd", "zstd");
    require_program("tar", "tar");
    let fx = Fixture::small();
    let volumes = fx.create_ok(&fx.list, "layout.tar.zst", &[]);
    assert_eq!(volumes.len(), 1);
    // Format 2: frames and a seek index (the seekable format's magic last), which the host's
    // zstd skips when it unpacks the volume below.
    let bytes = std::fs::read(&volumes[0]).unwrap();
    assert_eq!(bytes[bytes.len() - 4..], 0x8F92_EAB1u32.to_le_bytes());
    let layout = fx.path("layout");
    std::fs::create_dir(&layout).unwrap();
    unpack(&volumes[0], &layout);
    assert!(layout.join("oci-layout").is_file());

    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2, "{index}");
    let listed: BTreeMap<String, String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap_or_else(|| panic!("no ref.name annotation: {m}"));
            assert_eq!(
                m["annotations"]["io.containerd.image.name"], name,
                "both annotations name the image: {m}"
            );
            (name.to_owned(), m["digest"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        listed.len(),
        fx.images.len(),
        "a single-volume bundle lists every image in index.json: {index}"
    );

    let other = TestRegistry::start();
    let mut docker_not_found = Vec::new();
    for (i, image) in fx.images.iter().enumerate() {
        let reference = fx.source_ref(image);
        assert_eq!(
            listed.get(&reference).map(String::as_str),
            Some(image.digest.as_str()),
            "index.json entry of {reference}: {index}"
        );
        // The layout holds the manifest under its digest, byte for byte.
        let stored = std::fs::read(
            layout
                .join("blobs/sha256")
                .join(image.digest.trim_start_matches("sha256:")),
        )
        .unwrap();
        assert_eq!(stored, image.manifest, "{reference} in the layout");
        let oci = format!("oci:{}:{reference}", layout.display());
        let out = run_with_timeout(skopeo().args(["inspect", &oci]), TIMEOUT);
        if image.media_type.starts_with("application/vnd.docker.") && !out.status.success() {
            // skopeo 1.9.3 (containers/image 5.23) looks a name up only among index.json
            // descriptors with OCI media types, so Docker-format images, listed correctly,
            // are not found by name (newer skopeo versions do find them). Anything else is
            // a failure.
            assert!(
                stderr(&out).contains("no descriptor found for reference"),
                "{}",
                describe(&out)
            );
            docker_not_found.push(reference);
            continue;
        }
        assert_exit(&out, 0);
        let dest = format!("{}/x{i}:tag", other.addr());
        round_trip(skopeo, &oci, &dest, image);
    }
    // The OCI-format images (single, index) all made the round trip.
    let oci_images = fx
        .images
        .iter()
        .filter(|i| i.media_type.starts_with("application/vnd.oci."))
        .count();
    assert!(oci_images >= 2);
    if !docker_not_found.is_empty() {
        eprintln!(
            "skopeo 1.9.3 did not find these Docker-format images by name: {docker_not_found:?}"
        );
    }

    // A current skopeo (containers/image 5.35 or later) finds every image by name, the
    // Docker-format ones (a schema 2 manifest and a manifest list) included, and copies each
    // to a registry with its digest unchanged.
    let modern = Forky::get();
    let inside_root = tempfile::tempdir_in(modern.root().join("tmp")).unwrap();
    unpack(&volumes[0], inside_root.path());
    let dir = modern.inside(inside_root.path());
    let docker_images = fx
        .images
        .iter()
        .filter(|i| i.media_type.starts_with("application/vnd.docker."))
        .count();
    assert!(docker_images >= 2, "the set has Docker-format images");
    for (i, image) in fx.images.iter().enumerate() {
        let oci = format!("oci:{dir}:{}", fx.source_ref(image));
        let dest = format!("{}/modern{i}:tag", other.addr());
        round_trip(|| modern.command(), &oci, &dest, image);
    }
}

/// `zstd -d < volume | tar -x -C dir`, as a user would unpack a volume.
fn unpack(volume: &Path, dir: &Path) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"zstd -q -d < "$1" | tar -x -C "$2""#)
        .arg("sh")
        .arg(volume)
        .arg(dir);
    assert_exit(&run_with_timeout(&mut cmd, TIMEOUT), 0);
}

/// With the skopeo `skopeo()` makes: `inspect --raw` of the layout reference `oci` gives the
/// image's digest, and `copy --all --preserve-digests` to `docker://dest` lands it there with
/// that digest.
fn round_trip(skopeo: impl Fn() -> Command, oci: &str, dest: &str, image: &Generated) {
    let raw = run_with_timeout(skopeo().args(["inspect", "--raw", oci]), TIMEOUT);
    assert_exit(&raw, 0);
    assert_eq!(
        digest_of(&raw.stdout),
        image.digest,
        "raw manifest of {oci}"
    );
    let out = run_with_timeout(
        skopeo().args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            oci,
            &format!("docker://{dest}"),
        ]),
        TIMEOUT,
    );
    assert_exit(&out, 0);
    assert_eq!(
        digest_of(skopeo_inspect_raw(dest)),
        image.digest,
        "skopeo copy {oci} -> {dest} ({})",
        image.media_type
    );
}

/// Format 2 from a real registry: volumes packed to within a few percent of the limit, each
/// with a seek index, each unpacked by the host's `zstd -d | tar -x`; the split blob read
/// back through `BundleStore` by ranges across part and frame boundaries, byte for byte the
/// registry's; a flipped byte in an index caught by `bundle verify` naming the volume.
#[test]
fn format_2_volumes_are_packed_tight_seekable_and_checked() {
    use airlift::bundle::BundleStore;
    require_program("zstd", "zstd");
    require_program("tar", "tar");
    let fx = Fixture::small();
    let limit: u64 = 2 << 20;
    let volumes = fx.create_ok(&fx.list, "f2.tar.zst", &["--max-volume-size", "2M"]);
    assert!(volumes.len() >= 2, "{volumes:?}");
    let sizes: Vec<u64> = volumes
        .iter()
        .map(|v| std::fs::metadata(v).unwrap().len())
        .collect();
    for (i, size) in sizes.iter().enumerate() {
        assert!(*size <= limit, "volume {} is {size} bytes", i + 1);
        if i + 1 < sizes.len() {
            assert!(
                *size > limit / 100 * 95,
                "volume {} holds only {size} of {limit} bytes: {sizes:?}",
                i + 1
            );
        }
    }
    let store = BundleStore::open(&volumes).unwrap();
    assert_eq!(store.descriptor().format_version, 2);
    let storage = fx
        .source
        .storage_dir()
        .join("docker/registry/v2/blobs/sha256");
    let content = |digest: &str| {
        let hex = digest.trim_start_matches("sha256:");
        std::fs::read(storage.join(&hex[..2]).join(hex).join("data")).unwrap()
    };
    let (digest, entry) = store
        .descriptor()
        .blobs
        .iter()
        .find(|(_, e)| e.is_split())
        .expect("a blob split across volumes");
    let bytes = content(digest.as_str());
    let read = |a: u64, b: u64| {
        let mut out = Vec::new();
        store
            .read_blob(digest, a..b)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    assert_eq!(read(0, u64::MAX), bytes);
    for loc in &entry.volumes {
        assert!(store.frame_index(loc.volume).is_some());
        let (a, b) = (loc.offset.saturating_sub(777), loc.offset + 5000);
        let b = b.min(entry.size);
        assert_eq!(read(a, b), bytes[a as usize..b as usize], "{a}..{b}");
    }
    // Every whole blob too, from whichever volume holds it.
    for (d, e) in &store.descriptor().blobs {
        if !e.is_split() {
            assert_eq!(read_blob_all(&store, d), content(d.as_str()), "{d}");
        }
    }
    // Each volume unpacks with the host's zstd and tar, parts included.
    for (i, volume) in volumes.iter().enumerate() {
        let dir = fx.path(&format!("unpacked{i}"));
        std::fs::create_dir(&dir).unwrap();
        unpack(volume, &dir);
        assert!(dir.join("oci-layout").is_file());
        for loc in entry.volumes.iter().filter(|l| l.volume == i as u32 + 1) {
            let part = dir.join(format!(
                "blobs/sha256/{}.part{}",
                digest.hex(),
                loc.part.unwrap()
            ));
            let got = std::fs::read(&part).unwrap();
            let at = loc.offset as usize;
            assert_eq!(got, bytes[at..at + loc.length as usize]);
        }
    }
    // A byte of the first volume's index flipped: verify exits 3 naming the volume.
    let len = sizes[0] as usize;
    let mut damaged = std::fs::read(&volumes[0]).unwrap();
    let frames = u32::from_le_bytes(damaged[len - 9..len - 5].try_into().unwrap()) as usize;
    let third_checksum = len - 9 - 12 * frames + 2 * 12 + 8;
    damaged[third_checksum] ^= 0x10;
    std::fs::write(&volumes[0], &damaged).unwrap();
    let out = verify(&volumes, &[]);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(err.contains("seek index"), "{}", describe(&out));
    assert!(
        err.contains(&volumes[0].display().to_string()),
        "{}",
        describe(&out)
    );
}

fn read_blob_all(store: &airlift::bundle::BundleStore, digest: &airlift::Digest) -> Vec<u8> {
    let mut out = Vec::new();
    store
        .read_blob(digest, 0..u64::MAX)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The previous release's format-1 bundle (testdata/format1) still verifies and inspects.
#[test]
fn a_format_1_bundle_still_verifies_and_inspects() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/format1");
    let volumes = vec![
        dir.join("format1.001.tar.zst"),
        dir.join("format1.002.tar.zst"),
    ];
    let out = verify(&volumes, &[]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("bundle OK"), "{}", describe(&out));
    let out = inspect(&volumes, &["--json"]);
    assert_exit(&out, 0);
    let summary = json_report(&out);
    assert_eq!(summary["format_version"], 1, "{summary}");
    assert!(
        summary["images"].as_array().is_some_and(|i| !i.is_empty()),
        "{summary}"
    );
}

// -------------------------------------------------------------------------------------------
// 3. several volumes, a split blob, loaded one at a time in reverse order
// -------------------------------------------------------------------------------------------

#[test]
fn volumes_loaded_one_at_a_time_in_reverse_order() {
    let fx = Fixture::small();
    const LIMIT: u64 = 2 << 20;
    let volumes = fx.create_ok(&fx.list, "vols.tar.zst", &["--max-volume-size", "2M"]);
    assert_eq!(volumes.len(), 5, "2 MiB volumes: {volumes:?}");
    for v in &volumes {
        let size = std::fs::metadata(v).unwrap().len();
        assert!(size <= LIMIT, "{} is {size} bytes > {LIMIT}", v.display());
    }
    let desc = descriptor(&volumes[0]);
    assert_eq!(desc["volume_count"], volumes.len() as u64, "{desc}");
    let big = fx.image("harness/tools/big");
    let big_layer = big
        .blobs
        .iter()
        .find(|(_, s)| *s > LIMIT)
        .expect("the ~6 MiB layer")
        .0
        .clone();
    let parts = desc["blobs"][&big_layer]["volumes"].as_array().unwrap();
    assert!(
        parts.len() >= 3 && parts.iter().all(|p| p["part"].is_u64()),
        "the 6 MiB layer is split into parts: {}",
        desc["blobs"][&big_layer]
    );

    let site = TestRegistry::start();
    let to = format!("{}/site", site.addr());
    let state = fx.path("state");

    // --require-complete makes waiting for volumes an error of its own (exit 4).
    let mut cmd = airlift();
    cmd.args(["bundle", "load", "--require-complete", "--progress", "none"])
        .arg(&volumes[4])
        .args(["--to", &format!("{}/strict", site.addr())])
        .arg("--state-dir")
        .arg(fx.path("strict-state"))
        .args(["--insecure-registry", &site.addr()]);
    let strict = run_with_timeout(&mut cmd, TIMEOUT);
    assert_exit(&strict, 4);
    let last_line = stderr(&strict)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last_line.contains(" images complete, ") && last_line.contains(" pending: load volume(s) "),
        "{}",
        describe(&strict)
    );

    // An operator's script under `set -e`: one volume at a time, as the media arrives, in
    // reverse order. Every step succeeds and says what is pending.
    let mut script = String::from("set -e\n");
    for (n, volume) in volumes.iter().enumerate().rev() {
        script.push_str(&format!(
            "\"$AIRLIFT\" bundle load '{}' --to '{to}' --state-dir '{}' --insecure-registry '{}' \
             --progress plain --json >'{dir}/step{n}.json' 2>'{dir}/step{n}.err'\n",
            volume.display(),
            state.display(),
            site.addr(),
            dir = fx.dir.path().display(),
        ));
    }
    script.push_str("echo all-steps-done\n");
    let mut sh = Command::new("sh");
    sh.args(["-c", &script])
        .env("AIRLIFT", env!("CARGO_BIN_EXE_airlift"))
        .env("AIRLIFT_RETRY_DELAY_MS", "0")
        .env("NO_COLOR", "1")
        .env("AIRLIFT_PROGRESS_INTERVAL", "3600");
    let run = run_with_timeout(&mut sh, TIMEOUT * 5);
    let step_err =
        |n: usize| std::fs::read_to_string(fx.path(&format!("step{n}.err"))).unwrap_or_default();
    assert_exit(&run, 0);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "all-steps-done",
        "{}",
        (0..volumes.len()).map(step_err).collect::<String>()
    );

    let mut loaded: BTreeSet<u64> = BTreeSet::new();
    let mut complete: HashSet<String> = HashSet::new();
    for (n, volume) in volumes.iter().enumerate().rev() {
        let number = n as u64 + 1;
        assert_eq!(descriptor(volume)["volume"], number);
        loaded.insert(number);
        let err = step_err(n);
        let report: Value = serde_json::from_slice(
            &std::fs::read(fx.path(&format!("step{n}.json"))).expect("step report"),
        )
        .unwrap_or_else(|e| panic!("step {number}: not JSON ({e}): {err}"));
        let mut pending_volumes: BTreeSet<u64> = BTreeSet::new();
        let mut pending = 0;
        for image in &fx.images {
            let needs = image_volumes(&desc, &fx.source_ref(image));
            let still: Vec<u64> = needs.difference(&loaded).copied().collect();
            let entry = report_entry(&report, &to, image);
            let source = fx.source_ref(image);
            if still.is_empty() {
                let status = if complete.insert(source.clone()) {
                    "copied"
                } else {
                    "already_present"
                };
                assert_eq!(entry["status"], status, "after volume {number}: {entry}");
            } else {
                pending += 1;
                pending_volumes.extend(&still);
                assert_eq!(entry["status"], "pending", "after volume {number}: {entry}");
                assert_eq!(
                    entry["pending_volumes"],
                    serde_json::json!(still),
                    "{entry}"
                );
                assert!(entry["error"].is_null(), "{entry}");
                let wanted = still
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let line = format!("pending: {source}: waiting for volume(s) {wanted}");
                assert!(
                    err.lines().any(|l| l == line),
                    "after volume {number}: no line `{line}` in:\n{err}"
                );
            }
        }
        assert!(!err.contains("failed:"), "after volume {number}:\n{err}");
        let last_line = err.lines().last().unwrap_or_default();
        if pending > 0 {
            let wanted = pending_volumes
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            assert_eq!(
                last_line,
                format!(
                    "{} images complete, {pending} pending: load volume(s) {wanted}",
                    complete.len()
                ),
                "after volume {number}:\n{err}"
            );
        } else {
            assert_eq!(
                number, 1,
                "everything is complete only with the last volume"
            );
            let count = |status: &str| {
                report["images"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["status"] == status)
                    .count()
            };
            let (copied, present) = (count("copied"), count("already_present"));
            assert_eq!(copied + present, fx.images.len(), "{report}");
            assert!(
                last_line.starts_with(&format!(
                    "{copied} images copied, {present} already present, 0 failed; "
                )),
                "{err}"
            );
        }
    }
    assert_eq!(complete.len(), fx.images.len());
    assert_loaded(&fx.images, &to);
    assert!(site.stored_blobs().contains(&big_layer));
    // The parts of the split layer are not kept once it is at the site.
    let left: Vec<_> = std::fs::read_dir(state.join("parts"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "parts left in the state directory: {left:?}"
    );
}

// -------------------------------------------------------------------------------------------
// 4. differential bundles: --exclude-from an inventory, --since an older bundle
// -------------------------------------------------------------------------------------------

#[test]
fn differential_bundle_carries_only_what_the_site_lacks() {
    let fx = Fixture::small();
    let subset = [0usize, 1, 2];
    let a_list = fx.sublist("a.txt", &subset);
    let a = fx.create_ok(&a_list, "a.tar.zst", &[]);
    let full = fx.create_ok(&fx.list, "full.tar.zst", &[]);

    let site = TestRegistry::start();
    let to = format!("{}/site", site.addr());
    let out = load(&a, &to, &site, &fx.path("state"));
    assert_exit(&out, 0);

    let inv = fx.path("inv.json");
    let mut cmd = airlift();
    cmd.args(["inventory", "--registry", &to, "-o"])
        .arg(&inv)
        .args(["--insecure-registry", &site.addr()]);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert_exit(&out, 0);
    let inventory: Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    let a_blobs: BTreeSet<String> = subset
        .iter()
        .flat_map(|&i| fx.images[i].blobs.iter().map(|(d, _)| d.clone()))
        .collect();
    let a_bytes: u64 = generator::unique_blob_bytes(&fx.images[..3]);
    for blob in &a_blobs {
        assert!(
            inventory["blobs"][blob].is_u64(),
            "{blob} not in {inventory}"
        );
    }

    let b = fx.create_ok(
        &fx.list,
        "b.tar.zst",
        &["--exclude-from", inv.to_str().unwrap()],
    );
    let b_desc = descriptor(&b[0]);
    let (carried, excluded) = carried_and_excluded(&b_desc);
    assert_eq!(excluded, a_blobs, "B leaves out exactly A's blobs");
    assert!(carried.is_disjoint(&a_blobs), "B carries a blob of A");
    let size =
        |v: &[PathBuf]| -> u64 { v.iter().map(|p| std::fs::metadata(p).unwrap().len()).sum() };
    let (b_size, full_size) = (size(&b), size(&full));
    assert!(
        b_size + a_bytes * 9 / 10 <= full_size,
        "B ({b_size} bytes) is not smaller than the full bundle ({full_size}) by about A's \
         {a_bytes} blob bytes"
    );
    let out = inspect(&b, &["--json"]);
    assert_exit(&out, 0);
    let summary = json_report(&out);
    assert_eq!(
        number(&summary, "site_blobs"),
        a_blobs.len() as u64,
        "{summary}"
    );
    for &i in &subset {
        let image = &fx.images[i];
        let entry = summary["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["source"] == fx.source_ref(image).as_str())
            .unwrap();
        assert_eq!(entry["bundle_blobs"], 0, "{entry}");
        assert_eq!(entry["site_blobs"], image.blobs.len() as u64, "{entry}");
        assert_eq!(entry["site_bytes"], image.blob_bytes(), "{entry}");
    }
    assert_exit(&verify(&b, &[]), 0);

    // --since A gives the same exclusions without an inventory.
    let c = fx.create_ok(&fx.list, "c.tar.zst", &["--since", a[0].to_str().unwrap()]);
    let c_desc = descriptor(&c[0]);
    assert_eq!(carried_and_excluded(&c_desc), (carried, excluded));

    // The bundle records where its inventory was taken; loading it there warns of nothing.
    assert_eq!(descriptor(&b[0])["inventoried"], serde_json::json!([to]));
    let out = load(&b, &to, &site, &fx.path("state"));
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("warning:"), "{}", describe(&out));
    for entry in json_report(&out)["images"].as_array().unwrap() {
        assert_complete(&entry["status"], format!("{entry}"));
    }
    assert_loaded(&fx.images, &to);

    // A second site that holds A takes C.
    let site2 = TestRegistry::start();
    let to2 = format!("{}/site", site2.addr());
    assert_exit(&load(&a, &to2, &site2, &fx.path("state2")), 0);
    let out = load(&c, &to2, &site2, &fx.path("state2"));
    assert_exit(&out, 0);
    assert_loaded(&fx.images, &to2);

    // A site without A cannot complete the images that need A's blobs, and says so.
    let empty = TestRegistry::start();
    let to3 = format!("{}/site", empty.addr());
    let out = load(&b, &to3, &empty, &fx.path("state3"));
    assert_exit(&out, 1);
    let warning = format!(
        "warning: this differential bundle leaves out the blobs an inventory of {to} holds, but \
         it is loaded into {to3}: images whose left-out blobs {to3} lacks will fail (load it \
         where the inventory was taken, or make a full bundle)"
    );
    assert!(
        stderr(&out).lines().any(|l| l == warning),
        "no `{warning}` in:\n{}",
        describe(&out)
    );
    let report = json_report(&out);
    let busy = fx.image("library/busy");
    assert_complete(
        &report_entry(&report, &to3, busy)["status"],
        format!("{report}"),
    );
    let base = fx.image("harness/base");
    let entry = report_entry(&report, &to3, base);
    assert_eq!(entry["status"], "failed", "{entry}");
    // The error names every blob expected at the site and the repository checked.
    let error = entry["error"].as_str().unwrap_or_default();
    for (blob, _) in &base.blobs {
        assert!(error.contains(blob.as_str()), "{blob} not named: {error}");
    }
    assert!(
        error.contains(&format!("{to3}/{}", base.repository)),
        "repository not named: {error}"
    );
    assert_absent(base, &to3);
}

// -------------------------------------------------------------------------------------------
// 5. verify, and a corrupted blob
// -------------------------------------------------------------------------------------------

/// Flips one byte in the middle of entry `blobs/sha256/<hex>` of `volume`, in place.
pub(crate) fn corrupt_blob(volume: &Path, digest: &str) {
    corrupt_entry(
        volume,
        &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
    );
}

/// Flips one byte in the middle of entry `name` of `volume`, in place.
fn corrupt_entry(volume: &Path, name: &str) {
    let mut tar = decompress(volume);
    let (pos, size) = {
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries = archive.entries().unwrap();
        let mut found = None;
        for entry in entries {
            let entry = entry.unwrap();
            if entry.path().unwrap().to_string_lossy() == name {
                found = Some((entry.raw_file_position(), entry.size()));
                break;
            }
        }
        found.unwrap_or_else(|| panic!("{name} not in {}", volume.display()))
    };
    assert!(size > 0);
    tar[(pos + size / 2) as usize] ^= 0xff;
    compress_to(&tar, volume);
}

#[test]
fn verify_finds_a_flipped_byte_and_load_refuses_the_blob() {
    let fx = Fixture::small();
    let volumes = fx.create_ok(&fx.list, "v.tar.zst", &[]);
    let out = verify(&volumes, &[]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("bundle OK"), "{}", describe(&out));
    let out = verify(&volumes, &["--json"]);
    assert_exit(&out, 0);
    assert_eq!(json_report(&out)["problems"], serde_json::json!([]));

    // A layer only harness/base uses, early in the volume (base is the first image).
    let base = fx.image("harness/base");
    let victim = base
        .layers
        .iter()
        .find(|l| {
            fx.images
                .iter()
                .filter(|i| i.blobs.iter().any(|(d, _)| d == *l))
                .count()
                == 1
        })
        .expect("a layer of its own")
        .clone();
    corrupt_blob(&volumes[0], &victim);

    let out = verify(&volumes, &[]);
    assert_exit(&out, 3);
    let text = stderr(&out);
    let vol = volumes[0].display().to_string();
    let base_ref = fx.source_ref(base);
    assert!(
        text.contains(&victim) && text.contains(&base_ref) && text.contains(&vol),
        "verify names the blob {victim}, the image {base_ref} and the volume {vol}:\n{text}"
    );
    let out = verify(&volumes, &["--json"]);
    assert_exit(&out, 3);
    let report = json_report(&out);
    let problem = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["digest"] == victim.as_str())
        .unwrap_or_else(|| panic!("no problem names {victim}: {report}"));
    assert_eq!(problem["kind"], "corrupt", "{problem}");
    assert_eq!(problem["volume"], vol.as_str(), "{problem}");
    assert!(
        problem["images"]
            .as_array()
            .unwrap()
            .contains(&Value::from(base_ref.as_str())),
        "{problem}"
    );
    for image in report["images"].as_array().unwrap() {
        let complete = image["source"] != base_ref.as_str();
        assert_eq!(image["complete"], complete, "{image}");
    }

    let site = TestRegistry::start();
    let to = format!("{}/site", site.addr());
    let out = load(&volumes, &to, &site, &fx.path("state"));
    // A digest mismatch is an integrity error: exit code 3.
    assert_exit(&out, 3);
    let report = json_report(&out);
    assert!(
        !site.stored_blobs().contains(&victim),
        "the corrupt blob {victim} was committed at the site"
    );
    let entry = report_entry(&report, &to, base);
    assert_eq!(entry["status"], "failed", "{entry}");
    assert!(
        entry["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&victim),
        "{entry}"
    );
    assert_absent(base, &to);
    let others: Vec<Generated> = fx
        .images
        .iter()
        .filter(|i| i.repository != base.repository)
        .cloned()
        .collect();
    for image in &others {
        let entry = report_entry(&report, &to, image);
        assert_complete(&entry["status"], format!("{entry}"));
    }
    assert_loaded(&others, &to);
}

#[test]
fn corrupt_part_of_a_split_blob_fails_only_its_image() {
    let fx = Fixture::small();
    let volumes = fx.create_ok(&fx.list, "p.tar.zst", &["--max-volume-size", "2M"]);
    let desc = descriptor(&volumes[0]);
    let big = fx.image("harness/tools/big");
    let (layer, entry) = big
        .blobs
        .iter()
        .find_map(|(d, _)| {
            let e = &desc["blobs"][d];
            e["volumes"]
                .as_array()?
                .iter()
                .find(|l| l["part"] == 2)
                .map(|l| (d.clone(), l.clone()))
        })
        .expect("a split layer with a part 2");
    let n = entry["volume"].as_u64().unwrap() as usize;
    let name = format!("blobs/sha256/{}.part2", layer.trim_start_matches("sha256:"));
    corrupt_entry(&volumes[n - 1], &name);

    let out = verify(&volumes, &["--json"]);
    assert_exit(&out, 3);
    let report = json_report(&out);
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["digest"] == layer.as_str()
                && p["message"].as_str().unwrap_or_default().contains("part 2")),
        "{report}"
    );

    let site = TestRegistry::start();
    let to = format!("{}/site", site.addr());
    let state = fx.path("state");
    let out = load(&volumes, &to, &site, &state);
    assert_exit(&out, 3);
    let report = json_report(&out);
    assert_eq!(
        report_entry(&report, &to, big)["status"],
        "failed",
        "{report}"
    );
    assert_absent(big, &to);
    assert!(
        !site.stored_blobs().contains(&layer),
        "the corrupt layer was committed"
    );
    let others: Vec<Generated> = fx
        .images
        .iter()
        .filter(|i| i.repository != big.repository)
        .cloned()
        .collect();
    assert_loaded(&others, &to);
    // No corrupt part is kept for a later run to trust.
    assert!(
        !state
            .join("parts")
            .join(format!("{}.part2", layer.trim_start_matches("sha256:")))
            .exists(),
        "the corrupt part was kept in the state directory"
    );
}

// -------------------------------------------------------------------------------------------
// 6. hostile tar entries
// -------------------------------------------------------------------------------------------

/// A GNU header for `name` (written raw: the tar crate refuses `..` in `set_path`).
fn raw_header(name: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// Rebuilds `good` (a one-volume bundle) with `extra` entries inserted before the entry at
/// position `at` (0: before the descriptor; past the last entry: at the end), writing `out`.
fn hostile_volume(good: &Path, out: &Path, at: usize, extra: &[(tar::Header, Vec<u8>)]) {
    let tar = decompress(good);
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut builder = tar::Builder::new(Vec::new());
    for (i, entry) in archive.entries().unwrap().enumerate() {
        if i == at {
            for (h, data) in extra {
                builder.append(h, data.as_slice()).unwrap();
            }
        }
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        builder.append(&header, data.as_slice()).unwrap();
    }
    if at == usize::MAX {
        for (h, data) in extra {
            builder.append(h, data.as_slice()).unwrap();
        }
    }
    compress_to(&builder.into_inner().unwrap(), out);
}

#[test]
fn hostile_entries_are_refused_and_nothing_is_written_outside() {
    let fx = Fixture::small();
    let good = fx.create_ok(&fx.list, "good.tar.zst", &[]);
    let work = fx.path("work");
    let cwd = work.join("cwd");
    let marker = work.join("marker");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&marker).unwrap();
    let desc = descriptor(&good[0]);
    // A blob the descriptor announces, to name a symlink after.
    let blob = desc["blobs"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let payload = b"escaped\n".to_vec();
    let escape = raw_header(
        "../escape",
        tar::EntryType::Regular,
        payload.len() as u64,
        None,
    );
    let deep = raw_header(
        "blobs/../../../escape",
        tar::EntryType::Regular,
        payload.len() as u64,
        None,
    );
    let link_name = format!("blobs/sha256/{blob}");
    let target = marker.join("pwned");
    let symlink = raw_header(
        &link_name,
        tar::EntryType::Symlink,
        0,
        Some(target.to_str().unwrap()),
    );
    let absolute = format!("{}/abs", marker.display());
    let abs = raw_header(
        &absolute,
        tar::EntryType::Regular,
        payload.len() as u64,
        None,
    );

    // (name, insert before entry #, entries inserted, the entry the error must name)
    type Case<'a> = (&'a str, usize, Vec<(tar::Header, Vec<u8>)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "dotdot",
            1,
            vec![(escape.clone(), payload.clone())],
            "../escape",
        ),
        (
            "deep",
            3,
            vec![(deep, payload.clone())],
            "blobs/../../../escape",
        ),
        ("symlink", 1, vec![(symlink, Vec::new())], &link_name),
        ("absolute", 1, vec![(abs, payload.clone())], &absolute),
        (
            "first",
            0,
            vec![(escape.clone(), payload.clone())],
            "../escape",
        ),
        // After every blob: a loader that pushed images as their blobs went by would have
        // published them before meeting it.
        (
            "last",
            usize::MAX,
            vec![(escape, payload.clone())],
            "../escape",
        ),
    ];
    let site = TestRegistry::start();
    let to = format!("{}/site", site.addr());
    for (name, at, extra, entry) in cases {
        let volume = work.join(format!("{name}.tar.zst"));
        hostile_volume(&good[0], &volume, at, &extra);
        let state = work.join(format!("state-{name}"));
        let mut runs: Vec<(&str, Output)> = Vec::new();
        let mut cmd = airlift();
        cmd.current_dir(&cwd)
            .args(["bundle", "load"])
            .arg(&volume)
            .args(["--to", &to, "--insecure-registry", &site.addr()])
            .arg("--state-dir")
            .arg(&state)
            .args(["--progress", "none"]);
        runs.push(("load", run_with_timeout(&mut cmd, TIMEOUT)));
        let mut cmd = airlift();
        cmd.current_dir(&cwd)
            .args(["bundle", "verify"])
            .arg(&volume);
        runs.push(("verify", run_with_timeout(&mut cmd, TIMEOUT)));
        let mut cmd = airlift();
        cmd.current_dir(&cwd)
            .args(["bundle", "inspect"])
            .arg(&volume);
        let inspected = run_with_timeout(&mut cmd, TIMEOUT);
        if at == 0 {
            // Before the descriptor, even `inspect` (which reads only the descriptor) meets it.
            runs.push(("inspect", inspected));
        } else {
            // `inspect` reads the descriptor only (docs/bundle-format.md), so an entry after it
            // goes unseen; it must still not write anything.
            assert_exit(&inspected, 0);
        }
        for (command, out) in &runs {
            assert_ne!(
                out.status.code(),
                Some(0),
                "{name}: bundle {command} accepted a hostile volume:\n{}",
                describe(out)
            );
            let text = stderr(out);
            assert!(
                text.contains(entry) && text.contains(volume.to_str().unwrap()),
                "{name}: bundle {command} does not name the entry `{entry}` and the volume:\n{}",
                describe(out)
            );
        }
        assert!(
            !work.join("escape").exists(),
            "{name}: ../escape was written"
        );
        assert!(
            !fx.dir.path().join("escape").exists(),
            "{name}: escape written"
        );
        assert_eq!(
            std::fs::read_dir(&marker).unwrap().count(),
            0,
            "{name}: something was written into the marker directory"
        );
        assert_eq!(
            std::fs::read_dir(&cwd).unwrap().count(),
            0,
            "{name}: cwd written"
        );
    }
    // Blobs may have been uploaded as they streamed by (they are verified and harmless), but
    // no image of a hostile volume is published.
    for image in &fx.images {
        assert_absent(image, &to);
    }
}

// -------------------------------------------------------------------------------------------
// 7. an interrupted create resumes
// -------------------------------------------------------------------------------------------

#[test]
fn interrupted_create_resumes_without_downloading_again() {
    let fx = Fixture::small();
    // A slow link (2 MB/s) to the source, so the create can be caught half-way.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream: std::net::SocketAddr = fx.source.addr().parse().unwrap();
    let proxy = rt.block_on(FaultProxy::start(
        upstream,
        Faults {
            total_rate: Some(2_000_000),
            ..Faults::default()
        },
    ));
    let proxy_addr = proxy.addr().to_string();
    let list = fx.path("slow.txt");
    let text: String = fx
        .images
        .iter()
        .map(|i| i.reference(&proxy_addr) + "\n")
        .collect();
    std::fs::write(&list, text).unwrap();
    let blobs: BTreeMap<String, u64> = fx
        .images
        .iter()
        .flat_map(|i| i.blobs.iter().cloned())
        .collect();
    let unique: u64 = blobs.values().sum();

    let out = fx.path("resumed.tar.zst");
    let partial = fx.path("resumed.tar.zst.partial");
    let args = |cmd: &mut Command| {
        cmd.args(["bundle", "create", "--list"])
            .arg(&list)
            .arg("-o")
            .arg(&out)
            .args(["--insecure-registry", &proxy_addr])
            .args(["--progress", "none", "--json", "--jobs", "2"]);
    };
    let mut cmd = airlift();
    args(&mut cmd);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn airlift");
    let deadline = Instant::now() + TIMEOUT;
    let killed_at = loop {
        let have = std::fs::metadata(&partial).map_or(0, |m| m.len());
        if have >= 3 << 20 {
            break have;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "create finished before 3 MiB were written: the throttle did not hold"
        );
        assert!(Instant::now() < deadline, "nothing written in {TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        child.try_wait().unwrap().is_none(),
        "create finished before it could be interrupted"
    );
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert!(killed_at < unique, "everything was written before the kill");
    assert!(!out.exists(), "a volume got its final name before the kill");

    let mut cmd = airlift();
    args(&mut cmd);
    let second = run_with_timeout(&mut cmd, TIMEOUT);
    assert_exit(&second, 0);
    let report = json_report(&second);
    let transferred = number(&report, "bytes_transferred");
    let kept = number(&report, "bytes_skipped");
    // The .partial held 3 MiB when the first run was killed: the complete entries in it
    // (all but at most the frames of blobs still arriving) are kept, the rest fetched.
    assert!(kept > 0, "nothing kept from the .partial: {report}");
    assert_eq!(transferred + kept, unique, "{report}");
    assert!(!partial.exists(), "the .partial is left");
    let resumed = volumes_of(&out);
    assert_exit(&verify(&resumed, &[]), 0);

    drop(proxy);

    // The same bundle, uninterrupted, straight from the registry (not through the proxy,
    // where each airlift process first waits out its 30 s HTTPS probe: the proxy never
    // answers a TLS ClientHello). Only the source host differs.
    let whole = fx.path("whole.tar.zst");
    let out = fx.create(&fx.list, &whole, &[]);
    assert_exit(&out, 0);
    let (a, b) = (descriptor(&resumed[0]), descriptor(&whole));
    let images = a["images"]
        .to_string()
        .replace(&proxy_addr, &fx.source.addr());
    assert_eq!(images, b["images"].to_string(), "image lists differ");
    assert_eq!(a["blobs"], b["blobs"], "blob placement differs");
    assert_eq!(a["manifests"], b["manifests"]);
}

// -------------------------------------------------------------------------------------------
// 8. inspect
// -------------------------------------------------------------------------------------------

#[test]
fn inspect_lists_images_platforms_sizes_and_volumes() {
    let fx = Fixture::small();
    let volumes = fx.create_ok(&fx.list, "i.tar.zst", &["--max-volume-size", "2M"]);
    assert!(volumes.len() >= 3);
    let desc = descriptor(&volumes[0]);
    let out = inspect(&volumes, &["--json"]);
    assert_exit(&out, 0);
    let summary = json_report(&out);
    assert_eq!(summary["format_version"], 2, "{summary}");
    assert_eq!(summary["volume_count"], volumes.len() as u64, "{summary}");
    assert_eq!(
        summary["missing_volumes"],
        serde_json::json!([]),
        "{summary}"
    );
    assert_eq!(summary["site_blobs"], 0, "{summary}");

    let vols = summary["volumes"].as_array().unwrap();
    assert_eq!(vols.len(), volumes.len());
    for (n, (v, path)) in vols.iter().zip(&volumes).enumerate() {
        assert_eq!(v["volume"], n as u64 + 1, "{v}");
        assert_eq!(v["path"], path.to_str().unwrap(), "{v}");
        assert_eq!(
            v["file_size"],
            std::fs::metadata(path).unwrap().len(),
            "{v}"
        );
        assert!(v["blobs"].as_u64().unwrap() > 0, "{v}");
    }
    let total_blob_bytes: u64 = vols.iter().map(|v| v["blob_bytes"].as_u64().unwrap()).sum();
    let unique = generator::unique_blob_bytes(&fx.images);
    assert_eq!(
        total_blob_bytes, unique,
        "blob bytes over all volumes: {summary}"
    );

    let images = summary["images"].as_array().unwrap();
    assert_eq!(images.len(), fx.images.len());
    let mut manifest_bytes = 0u64;
    for (entry, image) in images.iter().zip(&fx.images) {
        let source = fx.source_ref(image);
        assert_eq!(entry["source"], source.as_str(), "{entry}");
        assert_eq!(entry["tag"], image.tag.as_str(), "{entry}");
        assert_eq!(entry["digest"], image.digest.as_str(), "{entry}");
        assert_eq!(entry["media_type"], image.media_type.as_str(), "{entry}");
        let platforms: Vec<&str> = entry["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        if image.manifests.is_empty() {
            assert_eq!(platforms, ["linux/amd64"], "{entry}");
        } else {
            assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"], "{entry}");
        }
        let mut manifests = image.manifest.len() as u64;
        for child in &image.manifests {
            manifests += skopeo_inspect_raw(&format!(
                "{}/{}@{child}",
                fx.source.addr(),
                image.repository
            ))
            .len() as u64;
        }
        manifest_bytes += manifests;
        assert_eq!(
            entry["size"],
            image.blob_bytes() + manifests,
            "size = distinct blobs + manifests: {entry}"
        );
        assert_eq!(entry["bundle_bytes"], entry["size"], "{entry}");
        assert_eq!(entry["bundle_blobs"], image.blobs.len() as u64, "{entry}");
        let want: Vec<u64> = image_volumes(&desc, &source).into_iter().collect();
        assert_eq!(entry["volumes"], serde_json::json!(want), "{entry}");
        assert_eq!(entry["available"], true, "{entry}");
    }
    assert_eq!(summary["total_size"], unique + manifest_bytes, "{summary}");
    let big = images
        .iter()
        .zip(&fx.images)
        .find(|(_, i)| i.repository == "harness/tools/big")
        .unwrap()
        .0;
    assert!(
        big["volumes"].as_array().unwrap().len() >= 3,
        "the split layer spans volumes: {big}"
    );

    // One volume alone: the others are reported missing, images needing them unavailable.
    let out = inspect(&volumes[..1], &["--json"]);
    assert_exit(&out, 0);
    let one = json_report(&out);
    let missing: Vec<u64> = (2..=volumes.len() as u64).collect();
    assert_eq!(one["missing_volumes"], serde_json::json!(missing), "{one}");
    assert!(!images_available(&one, &fx, "harness/tools/big"), "{one}");

    // Verify agrees: every volume given verifies; one volume alone verifies too (its
    // content is intact), and what is not complete without the others is information.
    assert_exit(&verify(&volumes, &[]), 0);
    let out = verify(&volumes[..1], &[]);
    assert_exit(&out, 0);
    let text = stderr(&out);
    let big_needs: Vec<String> =
        image_volumes(&desc, &fx.source_ref(fx.image("harness/tools/big")))
            .into_iter()
            .filter(|v| *v != 1)
            .map(|v| v.to_string())
            .collect();
    let line = format!(
        "not complete yet: {} also needs volume(s) {}",
        fx.source_ref(fx.image("harness/tools/big")),
        big_needs.join(", ")
    );
    assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    assert!(
        text.lines().last().is_some_and(
            |l| l.starts_with("volume(s) OK: every digest in the 1 volume(s) given verified; ")
        ),
        "{text}"
    );
    assert!(!text.contains("problem:"), "{text}");

    // The text form names every image and volume.
    let out = inspect(&volumes, &[]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    for image in &fx.images {
        assert!(text.contains(&fx.source_ref(image)), "{text}");
    }
    for v in &volumes {
        assert!(text.contains(v.to_str().unwrap()), "{text}");
    }
    assert!(text.contains("linux/arm64/v8"), "{text}");
}

fn images_available(summary: &Value, fx: &Fixture, repository: &str) -> bool {
    let source = fx.source_ref(fx.image(repository));
    summary["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == source.as_str())
        .unwrap()["available"]
        .as_bool()
        .unwrap()
}
