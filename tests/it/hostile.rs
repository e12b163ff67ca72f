//! Hostile input (issue 15): crafted bundles, lists and a hostile registry, each run through
//! the real binary under GNU `time` so every case asserts its exit code, its message, the
//! child's peak RSS (under [`MAX_RSS_KIB`]), its wall time, and that nothing reached the
//! target registry or the file system that should not have.
//!
//! Bundles are built here with the tar and zstd crates from a small, valid one-image bundle
//! ([`Bundle::good`]), then broken one way per case; `bundle verify` and `bundle load` must
//! agree on every one. The hostile registry is a few lines of HTTP on loopback, since no real
//! registry misbehaves this way.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TestRegistry, digest_of, require_program, run_with_timeout};

/// Peak resident memory any case may reach (KiB).
const MAX_RSS_KIB: u64 = 100 * 1024;
/// Longest any case may take.
const MAX_WALL: Duration = Duration::from_secs(60);

/// One finished run of the binary.
struct Run {
    out: Output,
    rss_kib: u64,
    wall: Duration,
}

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.out.stdout),
            self.stderr()
        )
    }

    /// Exit code, bounded memory and time, and no raw control character in what it printed.
    fn check(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.out.status.code(),
            Some(code),
            "{what}: exit status {:?}, expected {code}; output:\n{}",
            self.out.status,
            self.text()
        );
        assert!(
            self.rss_kib < MAX_RSS_KIB,
            "{what}: peak RSS {} KiB, limit {MAX_RSS_KIB} KiB",
            self.rss_kib
        );
        assert!(self.wall < MAX_WALL, "{what}: took {:?}", self.wall);
        eprintln!(
            "{what}: exit {:?}, peak RSS {} KiB, {:?}",
            self.out.status.code(),
            self.rss_kib,
            self.wall
        );
        let raw = self
            .text()
            .chars()
            .find(|&c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{2028}');
        assert!(
            raw.is_none(),
            "{what}: raw control character {raw:?} reached the output:\n{}",
            self.text().escape_debug()
        );
        self
    }

    fn says(&self, needle: &str) -> &Self {
        assert!(
            self.text().contains(needle),
            "expected `{needle}` in the output:\n{}",
            self.text()
        );
        self
    }
}

/// Runs `airlift ARGS` under `/usr/bin/time`, which reports the child's peak RSS.
fn measured(args: &[OsString], env: &[(&str, Option<&str>)]) -> Run {
    require_program("time", "time");
    let dir = tempfile::tempdir().expect("tempdir");
    let rss_file = dir.path().join("rss");
    let mut cmd = crate::support::airlift_under_time(&rss_file);
    cmd.args(args);
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let started = Instant::now();
    let out = run_with_timeout(&mut cmd, MAX_WALL * 2);
    let wall = started.elapsed();
    let report = std::fs::read_to_string(&rss_file).unwrap_or_default();
    let rss_kib = report
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no RSS from time: {report}"));
    Run { out, rss_kib, wall }
}

/// An argument vector from strings and paths.
fn argv(parts: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_owned()).collect()
}

// -------------------------------------------------------------------------------------------
// Bundles
// -------------------------------------------------------------------------------------------

/// A one-image, one-volume bundle: its descriptor and its other entries, in volume order.
#[derive(Clone)]
struct Bundle {
    descriptor: Value,
    entries: Vec<(String, Vec<u8>)>,
    /// Raw text appended to the descriptor (unknown fields), before its closing brace.
    padding: usize,
    /// Write the tar end-of-archive marker.
    end_marker: bool,
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

impl Bundle {
    fn good() -> Bundle {
        Bundle::with_layer(b"hostile-input layer bytes".repeat(100))
    }

    fn with_layer(layer: Vec<u8>) -> Bundle {
        let (layer_d, layer_n) = (digest_of(&layer), layer.len());
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_d]},
            "config": {}
        }))
        .unwrap();
        let (config_d, config_n) = (digest_of(&config), config.len());
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_d, "size": config_n},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_d, "size": layer_n}]
        }))
        .unwrap();
        let (manifest_d, manifest_n) = (digest_of(&manifest), manifest.len());
        let source = "docker.io/hostile/app:1.0";
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": MANIFEST_TYPE, "digest": manifest_d, "size": manifest_n,
                           "annotations": {"org.opencontainers.image.ref.name": source}}]
        }))
        .unwrap();
        let whole =
            |n: usize| json!({"size": n, "volumes": [{"volume": 1, "offset": 0, "length": n}]});
        let descriptor = json!({
            "format_version": 1,
            "tool_version": "0.1.0",
            "created": "2026-12-01T00:00:00Z",
            "lists": ["list.txt"],
            "bundle_id": "0123456789abcdef0123456789abcdef",
            "volume": 1,
            "volume_count": 1,
            "images": [{
                "source": source, "tag": "1.0", "digest": manifest_d,
                "media_type": MANIFEST_TYPE, "platforms": ["linux/amd64"],
                "size": layer_n + config_n + manifest_n,
                "manifests": [manifest_d], "blobs": [config_d, layer_d]
            }],
            "manifests": {manifest_d.clone(): {"size": manifest_n, "media_type": MANIFEST_TYPE}},
            "blobs": {config_d.clone(): whole(config_n), layer_d.clone(): whole(layer_n)}
        });
        let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        Bundle {
            descriptor,
            entries: vec![
                (
                    "oci-layout".into(),
                    br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
                ),
                ("index.json".into(), index),
                (blob(&manifest_d), manifest),
                (blob(&config_d), config),
                (blob(&layer_d), layer),
            ],
            padding: 0,
            end_marker: true,
        }
    }

    fn manifest_digest(&self) -> String {
        self.descriptor["images"][0]["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn entry_mut(&mut self, name_prefix: &str) -> &mut Vec<u8> {
        &mut self
            .entries
            .iter_mut()
            .find(|(n, _)| n.starts_with(name_prefix))
            .expect("entry")
            .1
    }

    /// Puts `manifest` in place of the image's manifest, renaming it everywhere.
    fn replace_manifest(&mut self, manifest: Vec<u8>) {
        let old = self.manifest_digest();
        let (new, size) = (digest_of(&manifest), manifest.len());
        let text = serde_json::to_string(&self.descriptor)
            .unwrap()
            .replace(&old, &new);
        self.descriptor = serde_json::from_str(&text).unwrap();
        self.descriptor["manifests"][&new]["size"] = json!(size);
        let mut index: Value = serde_json::from_slice(self.entry_mut("index.json")).unwrap();
        index["manifests"][0]["digest"] = json!(new);
        index["manifests"][0]["size"] = json!(size);
        *self.entry_mut("index.json") = serde_json::to_vec(&index).unwrap();
        self.entries[2] = (
            format!("blobs/sha256/{}", new.trim_start_matches("sha256:")),
            manifest,
        );
    }

    /// Writes the volume; `sizes` overrides the size written in an entry's tar header.
    fn write(&self, path: &Path, sizes: &[(&str, u64)]) {
        let mut descriptor = serde_json::to_vec(&self.descriptor).unwrap();
        if self.padding > 0 {
            descriptor.pop();
            descriptor.extend_from_slice(b",\"x-padding\":\"");
            descriptor.extend(std::iter::repeat_n(b'A', self.padding));
            descriptor.extend_from_slice(b"\"}");
        }
        let file = std::fs::File::create(path).unwrap();
        let mut enc = zstd::stream::write::Encoder::new(file, 1).unwrap();
        enc.include_checksum(true).unwrap();
        let all = std::iter::once(("airlift-bundle.json".to_owned(), descriptor))
            .chain(self.entries.iter().cloned());
        for (name, data) in all {
            let size = sizes
                .iter()
                .find(|(n, _)| name.starts_with(n))
                .map_or(data.len() as u64, |(_, s)| *s);
            let mut header = tar::Header::new_gnu();
            header.set_path(&name).unwrap();
            header.set_size(size);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            enc.write_all(header.as_bytes()).unwrap();
            enc.write_all(&data).unwrap();
            let pad = (512 - data.len() % 512) % 512;
            enc.write_all(&vec![0u8; pad]).unwrap();
        }
        if self.end_marker {
            enc.write_all(&[0u8; 1024]).unwrap();
        }
        enc.finish().unwrap();
    }
}

/// `bundle verify`, `bundle inspect` and `bundle load` of one volume, against a fresh site.
struct Site {
    registry: TestRegistry,
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        Site {
            registry: TestRegistry::start(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn volume(&self, name: &str, bundle: &Bundle, sizes: &[(&str, u64)]) -> PathBuf {
        let path = self.dir.path().join(name);
        bundle.write(&path, sizes);
        path
    }

    fn verify(&self, volume: &Path) -> Run {
        measured(&argv(&[&"bundle", &"verify", &volume]), &[])
    }

    fn inspect(&self, volume: &Path) -> Run {
        measured(&argv(&[&"bundle", &"inspect", &volume]), &[])
    }

    fn load(&self, volume: &Path) -> Run {
        let state = self.dir.path().join("state");
        let to = format!("{}/site", self.registry.addr());
        let args = argv(&[
            &"bundle",
            &"load",
            &volume,
            &"--to",
            &to,
            &"--progress",
            &"none",
            &"--state-dir",
            &state,
        ]);
        measured(&args, &[])
    }

    /// verify and load both refuse (exit 3) saying `needle`, and the site got nothing.
    fn refused(&self, case: &str, bundle: &Bundle, sizes: &[(&str, u64)], needle: &str) {
        let volume = self.volume(&format!("{case}.tar.zst"), bundle, sizes);
        self.verify(&volume)
            .check(3, &format!("{case}: verify"))
            .says(needle);
        self.load(&volume)
            .check(3, &format!("{case}: load"))
            .says(needle);
        assert!(
            self.registry.catalog().is_empty(),
            "{case}: the site holds {:?}",
            self.registry.catalog()
        );
        assert!(
            self.registry.stored_blobs().is_empty(),
            "{case}: blobs reached the site"
        );
    }
}

#[test]
fn the_generated_bundle_is_good_and_loads() {
    let site = Site::new();
    let volume = site.volume("good.tar.zst", &Bundle::good(), &[]);
    site.verify(&volume).check(0, "verify").says("bundle OK");
    site.inspect(&volume).check(0, "inspect");
    site.load(&volume).check(0, "load");
    assert_eq!(site.registry.catalog(), ["site/hostile/app"]);
}

#[test]
fn declared_sizes_and_counts_are_bounded_before_allocating() {
    let site = Site::new();
    // Item 1: a tiny volume declaring a 1 TiB manifest.
    let mut b = Bundle::good();
    let m = b.manifest_digest();
    b.descriptor["manifests"][&m]["size"] = json!(1u64 << 40);
    site.refused(
        "tib-manifest",
        &b,
        &[("blobs/sha256/", 1 << 40)],
        "exceeds the limit of 4194304 bytes",
    );

    // Item 2: four billion volumes declared.
    let mut b = Bundle::good();
    b.descriptor["volume_count"] = json!(u32::MAX);
    site.refused(
        "many-volumes",
        &b,
        &[],
        "exceeds the limit of 10000 volumes",
    );
    let volume = site.volume("many-volumes-inspect.tar.zst", &b, &[]);
    site.inspect(&volume)
        .check(1, "inspect")
        .says("exceeds the limit of 10000 volumes");

    // Item 8: a descriptor over the documented cap is refused from its header alone.
    let mut b = Bundle::good();
    b.padding = 40 << 20;
    site.refused(
        "huge-descriptor",
        &b,
        &[],
        "exceeds the limit of 33554432 bytes",
    );

    // Sizes that add up past 2^64 (inspect would wrap).
    let mut b = Bundle::good();
    for (_, blob) in b.descriptor["blobs"].as_object_mut().unwrap().iter_mut() {
        blob["size"] = json!(u64::MAX / 2 + 1);
        blob["volumes"][0]["length"] = json!(u64::MAX / 2 + 1);
    }
    site.refused("wrapping-sizes", &b, &[], "more than 2^64");
}

#[test]
fn an_unknown_field_is_skipped_without_being_kept() {
    // Item 8: a descriptor padded with 30 MB of an unknown field (under the cap) costs no
    // memory: verify, inspect and load all pass within the RSS limit.
    let site = Site::new();
    let mut b = Bundle::good();
    b.padding = 30 << 20;
    let volume = site.volume("padded.tar.zst", &b, &[]);
    site.verify(&volume).check(0, "verify");
    site.inspect(&volume).check(0, "inspect");
    site.load(&volume).check(0, "load");
}

#[test]
fn verify_and_load_agree_on_broken_bundles() {
    let site = Site::new();
    let good = Bundle::good();

    // Item 9: truncated by one byte, and without the tar end marker.
    let volume = site.volume("cut.tar.zst", &good, &[]);
    let bytes = std::fs::read(&volume).unwrap();
    std::fs::write(&volume, &bytes[..bytes.len() - 1]).unwrap();
    site.verify(&volume).check(3, "cut: verify");
    site.load(&volume).check(3, "cut: load");

    let mut b = good.clone();
    b.end_marker = false;
    site.refused("no-end-marker", &b, &[], "truncated");

    // A manifest naming a blob the bundle lacks.
    let mut b = good.clone();
    let m = b.manifest_digest();
    let layer = b.descriptor["images"][0]["blobs"][1]
        .as_str()
        .unwrap()
        .to_owned();
    let manifest = b.entry_mut(&format!("blobs/sha256/{}", m.trim_start_matches("sha256:")));
    let text = String::from_utf8(manifest.clone()).unwrap();
    let other = digest_of(b"not in the bundle");
    *manifest = text.replace(&layer, &other).into_bytes();
    let new_digest = digest_of(&*manifest);
    let text = serde_json::to_string(&b.descriptor)
        .unwrap()
        .replace(&m, &new_digest);
    b.descriptor = serde_json::from_str(&text).unwrap();
    let index = b.entry_mut("index.json");
    *index = String::from_utf8(index.clone())
        .unwrap()
        .replace(&m, &new_digest)
        .into_bytes();
    b.entries[2].0 = format!("blobs/sha256/{}", new_digest.trim_start_matches("sha256:"));
    site.refused(
        "dangling-reference",
        &b,
        &[],
        "which the bundle neither holds nor expects at the site",
    );

    // Item 5: a manifest with more layers than the limit is refused when read (a million
    // layers would not even fit the manifest size limit), in well under a second.
    let mut b = good.clone();
    let layer = json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": digest_of(b"x"), "size": 1});
    let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                          "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                     "digest": digest_of(b"c"), "size": 1},
                          "layers": vec![layer; 10_001]});
    b.replace_manifest(serde_json::to_vec(&manifest).unwrap());
    site.refused(
        "many-layers",
        &b,
        &[],
        "has 10001 references, more than the limit of 10000",
    );

    // Garbage index.json and oci-layout.
    let mut b = good.clone();
    *b.entry_mut("index.json") = b"{\"garbage\": true}".to_vec();
    site.refused("bad-index", &b, &[], "not a valid OCI index");
    let mut b = good.clone();
    *b.entry_mut("oci-layout") = b"[]".to_vec();
    site.refused("bad-layout", &b, &[], "not a valid OCI layout marker");

    // An image whose source is no reference.
    let mut b = good.clone();
    b.descriptor["images"][0]["source"] = json!("Not A Reference!");
    site.refused("bad-source", &b, &[], "invalid image reference");

    // Escape sequences in tar entry names reach no terminal (item 6).
    let mut b = good.clone();
    b.entries.insert(
        2,
        (
            "\u{1b}[2J\u{1b}]0;owned\u{7}bundle OK".into(),
            b"x".to_vec(),
        ),
    );
    site.refused(
        "escape-entry",
        &b,
        &[],
        "\\x1b[2J\\x1b]0;owned\\x07bundle OK",
    );

    // Escape sequences in descriptor strings reach no terminal (item 6).
    let mut b = good.clone();
    b.descriptor["images"][0]["source"] = json!("docker.io/x/\u{1b}[2Jbundle-OK:1");
    b.descriptor["tool_version"] = json!("\u{1b}]0;owned\u{7}");
    let volume = site.volume("escapes.tar.zst", &b, &[]);
    site.verify(&volume)
        .check(3, "escapes: verify")
        .says("\\x1b[2J");
    site.inspect(&volume).check(1, "escapes: inspect");
    site.load(&volume).check(3, "escapes: load");

    // A corrupt layer large enough to be streamed: verification finds it, so load fails its
    // image without uploading it, and no upload session is left in the registry.
    let layer: Vec<u8> = (0..6u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut b = Bundle::with_layer(layer);
    let last = b.entries.len() - 1;
    b.entries[last].1[4096] ^= 1;
    let volume = site.volume("corrupt-layer.tar.zst", &b, &[]);
    site.verify(&volume)
        .check(3, "corrupt layer: verify")
        .says("content is corrupt");
    site.load(&volume)
        .check(3, "corrupt layer: load")
        .says("content is corrupt");
    let uploads: Vec<PathBuf> = walk(site.registry.storage_dir())
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "_uploads"))
        .filter(|p| p.is_file())
        .collect();
    assert!(
        uploads.is_empty(),
        "upload sessions left: {uploads:?}\n{}",
        site.registry
            .log()
            .lines()
            .filter(|l| l.contains("PATCH")
                || l.contains("PUT")
                || l.contains("DELETE")
                || l.contains("POST")
                || l.contains("level=error"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let layer = b.descriptor["images"][0]["blobs"][1].as_str().unwrap();
    assert!(
        !site.registry.stored_blobs().iter().any(|d| d == layer),
        "the corrupt layer was stored"
    );
}

/// The good bundle as two volumes, its layer split into a part in each.
fn split_bundle() -> (Bundle, Bundle) {
    let mut one = Bundle::good();
    let layer_name = one.entries[4].0.clone();
    let layer = one.entries[4].1.clone();
    let digest = format!("sha256:{}", layer_name.trim_start_matches("blobs/sha256/"));
    let (a, b) = layer.split_at(layer.len() / 2);
    one.descriptor["volume_count"] = json!(2);
    one.descriptor["blobs"][&digest]["volumes"] = json!([
        {"volume": 1, "part": 1, "offset": 0, "length": a.len(), "digest": digest_of(a)},
        {"volume": 2, "part": 2, "offset": a.len(), "length": b.len(), "digest": digest_of(b)},
    ]);
    // No image is complete in either volume alone.
    let mut index: Value = serde_json::from_slice(one.entry_mut("index.json")).unwrap();
    index["manifests"] = json!([]);
    *one.entry_mut("index.json") = serde_json::to_vec(&index).unwrap();
    let mut two = one.clone();
    two.descriptor["volume"] = json!(2);
    one.entries[4] = (format!("{layer_name}.part1"), a.to_vec());
    two.entries.truncate(3);
    two.entries
        .push((format!("{layer_name}.part2"), b.to_vec()));
    (one, two)
}

#[test]
fn planted_links_in_the_state_directory_are_not_followed() {
    // Item 7: a link planted where a split blob's part is written points at another file;
    // loading overwrites the link, never the file.
    let site = Site::new();
    let (one, two) = split_bundle();
    let v1 = site.volume("split.001.tar.zst", &one, &[]);
    let v2 = site.volume("split.002.tar.zst", &two, &[]);
    // One volume alone verifies (its content is intact); what it lacks is information.
    let alone = site.verify(&v1);
    alone.check(0, "volume 1 alone: verify");
    assert!(
        alone.text().contains("not complete yet"),
        "{}",
        alone.text()
    );
    let both = measured(&argv(&[&"bundle", &"verify", &v1, &v2]), &[]);
    both.check(0, "both volumes: verify");

    let state = site.dir.path().join("state");
    let parts = state.join("parts");
    std::fs::create_dir_all(&parts).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&parts, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let victim = site.dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let part1 = one.entries[4]
        .0
        .trim_start_matches("blobs/sha256/")
        .to_owned();
    std::os::unix::fs::symlink(&victim, parts.join(format!("{part1}.partial"))).unwrap();

    // Volume 1 alone: its image is pending (exit 0), the part kept for volume 2.
    let first = site.load(&v1);
    first.check(0, "volume 1: load");
    assert!(first.text().contains("1 pending"), "{}", first.text());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(parts.join(&part1).is_file(), "part 1 was not kept");
    site.load(&v2).check(0, "volume 2: load");
    assert_eq!(site.registry.catalog(), ["site/hostile/app"]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

    // A state directory that is a link, or writable by others, is refused.
    let elsewhere = site.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let linked = site.dir.path().join("linked-state");
    std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
    let to = format!("{}/other", site.registry.addr());
    let run = measured(
        &argv(&[
            &"bundle",
            &"load",
            &v1,
            &"--to",
            &to,
            &"--state-dir",
            &linked,
        ]),
        &[],
    );
    run.check(1, "linked state").says("not a directory");
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
}

#[test]
fn load_state_needs_a_private_directory() {
    // Item 7: without HOME and XDG_CACHE_HOME there is no shared /tmp fallback.
    let site = Site::new();
    let volume = site.volume("good.tar.zst", &Bundle::good(), &[]);
    let to = format!("{}/site", site.registry.addr());
    let args = argv(&[&"bundle", &"load", &volume, &"--to", &to]);
    measured(&args, &[("HOME", None), ("XDG_CACHE_HOME", None)])
        .check(2, "no home")
        .says("--state-dir");
    assert!(site.registry.catalog().is_empty());
}

/// Every file and directory under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

// -------------------------------------------------------------------------------------------
// Lists
// -------------------------------------------------------------------------------------------

fn sync_list(list: &Path, to: &str) -> Run {
    let args = argv(&[
        &"mirror",
        &"sync",
        &"--list",
        &list,
        &"--to",
        &to,
        &"--progress",
        &"none",
    ]);
    measured(&args, &[])
}

#[test]
fn hostile_lists_are_refused_fast_and_nothing_is_pushed() {
    let site = TestRegistry::start();
    let to = format!("{}/mirror", site.addr());
    let dir = tempfile::tempdir().unwrap();

    // Item 10: an endless list.
    sync_list(Path::new("/dev/zero"), &to)
        .check(2, "/dev/zero")
        .says("larger than the limit of 16777216 bytes");

    // Item 4: characters a terminal does not show as they are read.
    let other = format!("{}/prod/web:stable", site.addr());
    for (name, sep) in [
        ("cr", "\r"),
        ("vt", "\u{b}"),
        ("ff", "\u{c}"),
        ("nel", "\u{85}"),
        ("ls", "\u{2028}"),
        ("esc", "\u{1b}[2J"),
    ] {
        let list = dir.path().join(format!("{name}.txt"));
        std::fs::write(&list, format!("docker.io/library/busybox:1{sep}{other}\n")).unwrap();
        sync_list(&list, &to).check(2, name).says(&format!(
            "{name}.txt:1: line contains the control character"
        ));
    }

    // A byte order mark is not an error (the image just does not exist here).
    let list = dir.path().join("bom.txt");
    std::fs::write(&list, "\u{feff}Bad Ref\n").unwrap();
    sync_list(&list, &to)
        .check(2, "bom")
        .says("bom.txt:1: invalid image reference `Bad`");

    // Item 10: a 10 MB reference is not echoed whole.
    let list = dir.path().join("long.txt");
    std::fs::write(&list, format!("{}\n", "a".repeat(10 << 20))).unwrap();
    let run = sync_list(&list, &to);
    run.check(2, "long").says("limit of 4096");
    assert!(run.text().len() < 4096, "echoed {} bytes", run.text().len());

    // Item 5: 100,000 lines and one bad one, reported in seconds.
    let list = dir.path().join("long-list.txt");
    let mut text = String::new();
    for i in 0..100_000 {
        text.push_str(&format!("registry.example/team/app{i}:1\n"));
    }
    text.push_str("Bad Ref\n");
    std::fs::write(&list, text).unwrap();
    let run = sync_list(&list, &to);
    run.check(2, "100k lines").says("long-list.txt:100001:");
    assert!(run.wall < Duration::from_secs(30), "took {:?}", run.wall);

    assert!(site.catalog().is_empty(), "pushed {:?}", site.catalog());
}

// -------------------------------------------------------------------------------------------
// A hostile registry
// -------------------------------------------------------------------------------------------

/// Answers every request on loopback with `respond(path, stream)` (one thread per connection).
fn hostile_registry(
    respond: impl Fn(&str, &mut std::net::TcpStream, u16) + Send + Sync + 'static,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let respond = std::sync::Arc::new(respond);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let respond = respond.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        // A TLS ClientHello (the client trying HTTPS first): plain HTTP only.
                        Ok(1) if head.is_empty() && byte[0] == 0x16 => return,
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                respond(&path, &mut stream, port);
            });
        }
    });
    port
}

#[test]
fn a_hostile_registry_cannot_exhaust_memory_or_the_terminal() {
    let site = TestRegistry::start();
    let to = format!("{}/mirror", site.addr());
    let dir = tempfile::tempdir().unwrap();

    // Item 3: a token endpoint that streams forever.
    let port = hostile_registry(|path, s, port| {
        if path.starts_with("/token") {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"token\":\"");
            let chunk = vec![b'A'; 64 << 10];
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until && s.write_all(&chunk).is_ok() {}
        } else {
            let _ = write!(
                s,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    let list = dir.path().join("token.txt");
    std::fs::write(&list, format!("127.0.0.1:{port}/app:1\n")).unwrap();
    sync_list(&list, &to)
        .check(1, "endless token")
        .says("token response exceeds the limit of 65536 bytes");

    // Item 6: escape sequences in a registry's error body are shown escaped.
    let port = hostile_registry(|_, s, _| {
        let body =
            r#"{"errors":[{"code":"DENIED","message":"\u001b[2J\u001b]0;owned\u0007bundle OK"}]}"#;
        let _ = write!(
            s,
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let list = dir.path().join("escape.txt");
    std::fs::write(&list, format!("127.0.0.1:{port}/app:1\n")).unwrap();
    sync_list(&list, &to)
        .check(1, "escapes in an error body")
        .says("\\x1b[2J");

    // Item 10: a blob sent a byte at a time is never silent, but is too slow.
    let good = Bundle::good();
    let manifest = good.entries[2].1.clone();
    let blobs: Vec<(String, Vec<u8>)> = good.entries[3..]
        .iter()
        .map(|(n, b)| (n.trim_start_matches("blobs/sha256/").to_owned(), b.clone()))
        .collect();
    let port = hostile_registry(move |path, s, _| {
        let head = |s: &mut std::net::TcpStream, kind: &str, len: usize| {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            )
        };
        if path.contains("/manifests/") {
            let _ = head(s, MANIFEST_TYPE, manifest.len()).and_then(|()| s.write_all(&manifest));
        } else if let Some((_, data)) = blobs.iter().find(|(hex, _)| path.ends_with(hex.as_str())) {
            let _ = head(s, "application/octet-stream", data.len());
            for byte in data {
                if s.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        } else {
            let _ = head(s, "application/json", 2).and_then(|()| s.write_all(b"{}"));
        }
    });
    let list = dir.path().join("slow.txt");
    std::fs::write(&list, format!("127.0.0.1:{port}/app:1\n")).unwrap();
    let args = argv(&[
        &"mirror",
        &"sync",
        &"--list",
        &list,
        &"--to",
        &to,
        &"--progress",
        &"none",
        &"--retries",
        &"0",
        &"--min-rate",
        &"1K",
    ]);
    let run = measured(&args, &[("AIRLIFT_MIN_RATE_WINDOW_SECS", Some("2"))]);
    run.check(1, "a byte at a time").says("transfer too slow");
    assert!(run.wall < Duration::from_secs(20), "took {:?}", run.wall);

    assert!(site.catalog().is_empty());
}
