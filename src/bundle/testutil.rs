//! Test fixtures: real (minimal, valid) OCI images staged from random data, and hand-made
//! tar volumes for the hostile-input tests.

use std::collections::BTreeMap;
use std::io::Write;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::reference::Digest;

use super::descriptor::{BlobEntry, BlobLocation, Descriptor, ImageEntry, ManifestEntry};
use super::{BundleImage, BundleInput, Staging};

/// Fixed creation time so descriptors are deterministic.
pub(crate) const CREATED: &str = "2025-06-01T12:00:00Z";

/// A staging directory holding a few images.
pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub staging: Staging,
    pub input: BundleInput,
    /// Every staged blob and manifest.
    pub content: BTreeMap<Digest, Vec<u8>>,
    /// The layer shared by two images.
    pub shared: Digest,
    /// The big layer (of image `gamma`).
    pub big: Digest,
}

/// Random bytes (incompressible).
pub(crate) fn random(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    rng.fill_bytes(&mut v);
    v
}

/// A gzip-compressed tar layer holding one file of `n` random bytes; returns the layer and
/// its diff id (digest of the uncompressed tar).
fn layer(rng: &mut StdRng, n: usize) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    let data = random(rng, n);
    let mut h = tar::Header::new_gnu();
    h.set_path("data.bin").unwrap();
    h.set_size(n as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append(&h, data.as_slice()).unwrap();
    let raw = tar.into_inner().unwrap();
    let diff = Digest::of(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff)
}

struct Builder {
    rng: StdRng,
    staged: Vec<(Vec<u8>, Option<&'static str>)>,
    content: BTreeMap<Digest, Vec<u8>>,
}

impl Builder {
    fn add(&mut self, bytes: Vec<u8>, media_type: Option<&'static str>) -> Digest {
        let d = Digest::of(&bytes);
        self.content.insert(d.clone(), bytes.clone());
        self.staged.push((bytes, media_type));
        d
    }

    /// A single-platform image: config, `layers` (given or made of these sizes), manifest.
    /// Returns the manifest digest, its bytes' size and the blobs.
    fn image(&mut self, arch: &str, layers: &[(Vec<u8>, Digest)]) -> (Digest, usize, Vec<Digest>) {
        let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.to_string()).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {},
        }))
        .unwrap();
        let config_size = config.len();
        let config_digest = self.add(config, None);
        let mut blobs = vec![config_digest.clone()];
        let mut layer_descs = Vec::new();
        for (bytes, _) in layers {
            let d = Digest::of(bytes);
            if !self.content.contains_key(&d) {
                self.add(bytes.clone(), None);
            }
            layer_descs.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d, "size": bytes.len(),
            }));
            blobs.push(d);
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": layer_descs,
        }))
        .unwrap();
        let size = manifest.len();
        let d = self.add(manifest, Some("application/vnd.oci.image.manifest.v1+json"));
        (d, size, blobs)
    }
}

/// Three images: `alpha` (two layers, one shared with `beta`), `beta` (an index of amd64 and
/// arm64), and `gamma` with one layer of about `big` bytes.
pub(crate) fn fixture(big: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let staging = Staging::open(dir.path().join("staging")).unwrap();
    let mut b = Builder {
        rng: StdRng::seed_from_u64(7),
        staged: Vec::new(),
        content: BTreeMap::new(),
    };
    let shared = layer(&mut b.rng, 30_000);
    let own = layer(&mut b.rng, 20_000);
    let (alpha, _, alpha_blobs) = b.image("amd64", &[own, shared.clone()]);
    let arm_layer = layer(&mut b.rng, 25_000);
    let (amd, amd_size, amd_blobs) = b.image("amd64", std::slice::from_ref(&shared));
    let (arm, arm_size, arm_blobs) = b.image("arm64", &[arm_layer]);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd,
             "size": amd_size, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm,
             "size": arm_size, "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    }))
    .unwrap();
    let beta = b.add(index, Some("application/vnd.oci.image.index.v1+json"));
    let big_layer = layer(&mut b.rng, big);
    let big_digest = Digest::of(&big_layer.0);
    let (gamma, _, gamma_blobs) = b.image("amd64", &[big_layer]);

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for (bytes, media_type) in &b.staged {
            match media_type {
                Some(mt) => {
                    staging.put_manifest(bytes, mt).await.unwrap();
                }
                None => {
                    let d = Digest::of(bytes);
                    let mut w = staging.begin_blob(&d, bytes.len() as u64).await.unwrap();
                    for chunk in bytes.chunks(7000) {
                        w.write(chunk).await.unwrap();
                    }
                    w.commit().await.unwrap();
                }
            }
        }
    });
    let mut beta_blobs = amd_blobs;
    beta_blobs.extend(arm_blobs);
    let images = vec![
        BundleImage {
            source: "docker.io/library/alpha:1.0".into(),
            tag: Some("1.0".into()),
            digest: alpha.clone(),
            platforms: vec!["linux/amd64".into()],
            manifests: vec![alpha],
            blobs: alpha_blobs,
            referrer_of: None,
            subject: None,
            artifact_type: None,
        },
        BundleImage {
            source: "docker.io/acme/beta:2.0".into(),
            tag: Some("2.0".into()),
            digest: beta.clone(),
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            manifests: vec![amd, arm, beta],
            blobs: beta_blobs,
            referrer_of: None,
            subject: None,
            artifact_type: None,
        },
        BundleImage {
            source: "registry.example.com:5000/big/gamma:3".into(),
            tag: Some("3".into()),
            digest: gamma.clone(),
            platforms: vec!["linux/amd64".into()],
            manifests: vec![gamma],
            blobs: gamma_blobs,
            referrer_of: None,
            subject: None,
            artifact_type: None,
        },
    ];
    Fixture {
        dir,
        staging,
        input: BundleInput {
            images,
            lists: vec!["images.txt".into()],
            created: CREATED.into(),
            excluded: BTreeMap::new(),
            missing: Vec::new(),
            inventoried: Vec::new(),
        },
        content: b.content,
        shared: Digest::of(&shared.0),
        big: big_digest,
    }
}

/// A small consistent descriptor: volume 1 of 2, one image, one whole blob, one split blob.
pub(crate) fn sample_descriptor() -> Descriptor {
    let m = Digest::of(b"manifest");
    let (a, b) = (Digest::of(b"a"), Digest::of(b"bb"));
    let mut manifests = BTreeMap::new();
    manifests.insert(
        m.clone(),
        ManifestEntry {
            size: 8,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        },
    );
    let loc = |volume, part: Option<u32>, offset, length, digest: Option<Digest>| BlobLocation {
        volume,
        part,
        offset,
        length,
        digest,
        tar_offset: None,
    };
    let mut blobs = BTreeMap::new();
    blobs.insert(
        a.clone(),
        BlobEntry {
            size: 1,
            volumes: vec![loc(1, None, 0, 1, None)],
        },
    );
    blobs.insert(
        b.clone(),
        BlobEntry {
            size: 2,
            volumes: vec![
                loc(1, Some(1), 0, 1, Some(Digest::of(b"b"))),
                loc(2, Some(2), 1, 1, Some(Digest::of(b"b"))),
            ],
        },
    );
    Descriptor {
        format_version: 1,
        tool_version: "0.1.0".into(),
        created: CREATED.into(),
        lists: vec!["list.txt".into()],
        bundle_id: "0123456789abcdef0123456789abcdef".into(),
        volume: 1,
        volume_count: 2,
        images: vec![ImageEntry {
            source: "docker.io/library/x:1".into(),
            tag: Some("1".into()),
            digest: m.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            platforms: vec!["linux/amd64".into()],
            size: 11,
            manifests: vec![m],
            blobs: vec![a, b],
            referrer_of: None,
            subject: None,
            artifact_type: None,
        }],
        manifests,
        blobs,
        excluded_blobs: BTreeMap::new(),
        missing_images: Vec::new(),
        inventoried: Vec::new(),
    }
}

/// One entry of a hand-made tar: raw name bytes, type, content, and the size to declare.
pub(crate) struct RawEntry {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub size: Option<u64>,
    pub link: Option<&'static str>,
}

impl RawEntry {
    /// A regular file.
    pub fn file(name: &str, data: &[u8]) -> RawEntry {
        RawEntry {
            name: name.as_bytes().to_vec(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            size: None,
            link: None,
        }
    }
}

/// A zstd-compressed tar of `entries`, names written raw (no validation), as an attacker would.
pub(crate) fn raw_volume(entries: &[RawEntry]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let name = &mut h.as_old_mut().name;
        name[..e.name.len()].copy_from_slice(&e.name);
        h.set_entry_type(e.kind);
        h.set_size(e.size.unwrap_or(e.data.len() as u64));
        h.set_mode(0o644);
        if let Some(l) = e.link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        tar.append(&h, e.data.as_slice()).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    zstd::encode_all(raw.as_slice(), 3).unwrap()
}

/// Decompresses a volume, applies `edit` to the tar bytes, and compresses it again. A
/// format-2 volume keeps its frame boundaries (bytes added go into the last frame, frames past
/// a shortened end are dropped) and gets a seek index matching the new frames.
pub(crate) fn rewrite_volume(path: &std::path::Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let compressed = std::fs::read(path).unwrap();
    let index = super::seek::FrameIndex::read(
        &mut std::io::Cursor::new(&compressed),
        compressed.len() as u64,
        path,
    )
    .unwrap();
    let mut raw = zstd::decode_all(compressed.as_slice()).unwrap();
    edit(&mut raw);
    let Some(index) = index else {
        std::fs::write(path, zstd::encode_all(raw.as_slice(), 3).unwrap()).unwrap();
        return;
    };
    std::fs::write(path, reframe(&raw, &index)).unwrap();
}

/// `raw` compressed as a format-2 volume with the frame boundaries of `index`.
pub(crate) fn reframe(raw: &[u8], index: &super::seek::FrameIndex) -> Vec<u8> {
    let mut chunks = Vec::new();
    for i in 0..index.len() {
        let (start, len) = index.frame(i);
        let start = start as usize;
        if start >= raw.len() {
            break;
        }
        let end = if i + 1 == index.len() {
            raw.len()
        } else {
            (start + len as usize).min(raw.len())
        };
        chunks.push(raw[start..end].to_vec());
    }
    frames_of(chunks)
}

/// A format-2 volume made of exactly these uncompressed frames.
pub(crate) fn frames_of(chunks: Vec<Vec<u8>>) -> Vec<u8> {
    super::writer::frames::with_frame_sink(
        Vec::new(),
        3,
        1,
        |e| e,
        |sink| {
            for c in chunks {
                sink.frame(c)?;
            }
            Ok::<(), std::io::Error>(())
        },
    )
    .unwrap()
    .1
}

/// Offset in an uncompressed volume tar of the content of entry `name`.
pub(crate) fn entry_offset(raw: &[u8], name: &str) -> u64 {
    let mut archive = tar::Archive::new(raw);
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        if e.path_bytes().as_ref() == name.as_bytes() {
            return e.raw_file_position();
        }
    }
    panic!("no entry {name}");
}

impl Fixture {
    /// Writes the fixture's bundle as `name` in its directory, volumes at most `limit` bytes.
    pub(crate) fn write(&self, name: &str, limit: Option<u64>) -> Vec<std::path::PathBuf> {
        let opts = crate::bundle::WriteOptions {
            max_volume_size: limit,
            ..crate::bundle::WriteOptions::default()
        };
        crate::bundle::write_bundle(
            &self.staging,
            &self.input,
            &self.dir.path().join(name),
            &opts,
            &crate::report::NoReporter,
        )
        .unwrap()
    }
}
