//! Deterministic generator of real container images, pushed with plain HTTP calls.
//!
//! Every byte comes from a seeded splitmix64 stream, so the same [`ImageSpec`]s always produce
//! the same digests. Layers are gzip tar archives holding a few files of random
//! (incompressible) bytes, encoded as deflate stored blocks; configs carry `architecture`,
//! `os` and `rootfs.diff_ids`; manifests come in Docker v2 schema 2 and OCI flavours, and multi-arch images become a Docker manifest
//! list or an OCI index with linux/amd64 and linux/arm64/v8 children. Pushing uses `ureq`
//! directly against the distribution API (never airlift's own client), so the generator can
//! judge airlift instead of sharing its bugs. This file is also compiled into
//! `examples/seed.rs` through `#[path]`, so it depends on nothing else in the test harness.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

/// Docker v2 schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

/// Manifest flavour of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Docker v2 schema 2 manifests (and a Docker manifest list when multi-arch).
    Docker,
    /// OCI manifests (and an OCI index when multi-arch).
    Oci,
}

/// Whether an image is one manifest or an index of per-platform manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// One linux/amd64 manifest.
    Single,
    /// An index with linux/amd64 and linux/arm64/v8 children.
    MultiArch,
}

/// Where a layer's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerContent {
    /// Bytes from this seed; equal seeds (and sizes) give equal layers.
    Seed(u64),
    /// A shared base layer: every image naming the same id (and size) gets the same blob for
    /// the same platform.
    Base(u32),
}

/// One layer of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// Where the bytes come from.
    pub content: LayerContent,
    /// Payload bytes inside the tar (the compressed blob is slightly larger: random data does
    /// not compress).
    pub size: u64,
}

impl LayerSpec {
    /// A layer of its own, from `seed`.
    pub fn seeded(seed: u64, size: u64) -> Self {
        LayerSpec {
            content: LayerContent::Seed(seed),
            size,
        }
    }

    /// A shared base layer.
    pub fn base(id: u32, size: u64) -> Self {
        LayerSpec {
            content: LayerContent::Base(id),
            size,
        }
    }
}

/// What to generate and push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Repository path, e.g. `harness/app`.
    pub repository: String,
    /// Tag to push the top manifest under.
    pub tag: String,
    /// Manifest flavour.
    pub kind: Kind,
    /// Single manifest or multi-arch index.
    pub arch: Arch,
    /// Layers, bottom first (for a multi-arch image, each platform gets its own variant).
    pub layers: Vec<LayerSpec>,
}

impl ImageSpec {
    /// Shorthand constructor.
    pub fn new(
        repository: &str,
        tag: &str,
        kind: Kind,
        arch: Arch,
        layers: Vec<LayerSpec>,
    ) -> Self {
        ImageSpec {
            repository: repository.to_string(),
            tag: tag.to_string(),
            kind,
            arch,
            layers,
        }
    }
}

/// What was pushed for one [`ImageSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Repository path.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Digest of the top manifest (`sha256:...`).
    pub digest: String,
    /// Media type of the top manifest.
    pub media_type: String,
    /// Raw bytes of the top manifest.
    pub manifest: Vec<u8>,
    /// Every blob (configs and layers, children's included) as (digest, size), each once.
    pub blobs: Vec<(String, u64)>,
    /// The layer blobs among `blobs` (digests).
    pub layers: Vec<String>,
    /// Digests of the index children (empty for a single image).
    pub manifests: Vec<String>,
    /// Platforms of the index children, parallel to `manifests` (`linux/arm64/v8`).
    pub platforms: Vec<String>,
}

impl Generated {
    /// `REGISTRY/REPOSITORY:TAG`.
    pub fn reference(&self, registry: &str) -> String {
        format!("{registry}/{}:{}", self.repository, self.tag)
    }

    /// Sum of the sizes of `blobs`.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, s)| s).sum()
    }
}

/// Sum of the sizes of the distinct blobs of `images` (shared layers counted once).
pub fn unique_blob_bytes(images: &[Generated]) -> u64 {
    let mut seen = HashMap::new();
    for image in images {
        for (d, s) in &image.blobs {
            seen.insert(d.clone(), *s);
        }
    }
    seen.values().sum()
}

/// `sha256` of `bytes` as lowercase hex (no `sha256:` prefix).
pub fn sha256_hex(bytes: &[u8]) -> String {
    // aws-lc-rs hashes in assembly, fast even in debug builds (sha2 is ~25 MB/s there).
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut s = String::with_capacity(64);
    for b in hash.as_ref() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// The set the integration tests use: six small images (a few MiB in all) covering a Docker
/// single image with a ~6 MiB layer, an OCI single image, a Docker manifest list, an OCI
/// index and a `library/` repository; base layer 1 is shared by four images.
pub fn small_set() -> Vec<ImageSpec> {
    use Arch::*;
    use Kind::*;
    vec![
        ImageSpec::new(
            "harness/base",
            "1.0",
            Docker,
            Single,
            vec![
                LayerSpec::base(1, 512 * KIB),
                LayerSpec::seeded(101, 64 * KIB),
            ],
        ),
        ImageSpec::new(
            "harness/app-oci",
            "2.1",
            Oci,
            Single,
            vec![
                LayerSpec::base(1, 512 * KIB),
                LayerSpec::base(2, 256 * KIB),
                LayerSpec::seeded(102, 128 * KIB),
            ],
        ),
        ImageSpec::new(
            "harness/multi-docker",
            "1.0",
            Docker,
            MultiArch,
            vec![
                LayerSpec::base(1, 512 * KIB),
                LayerSpec::seeded(103, 96 * KIB),
            ],
        ),
        ImageSpec::new(
            "harness/multi-oci",
            "3",
            Oci,
            MultiArch,
            vec![
                LayerSpec::base(1, 512 * KIB),
                LayerSpec::seeded(104, 160 * KIB),
            ],
        ),
        ImageSpec::new(
            "harness/tools/big",
            "v6",
            Docker,
            Single,
            vec![
                LayerSpec::base(2, 256 * KIB),
                LayerSpec::seeded(105, 6 * MIB),
            ],
        ),
        ImageSpec::new(
            "library/busy",
            "latest",
            Oci,
            Single,
            vec![LayerSpec::seeded(106, 200 * KIB)],
        ),
    ]
}

/// A release-sized set for the benchmark: 15 images, about 600 MB of unique blobs at
/// `scale` 1.0 (sizes are multiplied by `scale`): three shared base layers, one image with a
/// ~200 MB layer, three multi-arch images (two Docker lists, one OCI index).
pub fn release_set(scale: f64) -> Vec<ImageSpec> {
    use Arch::*;
    use Kind::*;
    let mb = |n: f64| -> u64 { ((n * 1_000_000.0 * scale) as u64).max(KIB) };
    let mut set = vec![ImageSpec::new(
        "release/model-server",
        "1.0",
        Docker,
        Single,
        vec![
            LayerSpec::base(10, mb(40.0)),
            LayerSpec::seeded(1000, mb(200.0)),
        ],
    )];
    for i in 0..6u64 {
        set.push(ImageSpec::new(
            &format!("release/service-{i}"),
            "1.0",
            if i % 2 == 0 { Docker } else { Oci },
            Single,
            vec![
                LayerSpec::base(10, mb(40.0)),
                LayerSpec::base(11, mb(20.0)),
                LayerSpec::seeded(1100 + i, mb(20.0)),
            ],
        ));
    }
    for i in 0..3u64 {
        set.push(ImageSpec::new(
            &format!("release/platform/multi-{i}"),
            "2.0",
            if i == 2 { Oci } else { Docker },
            MultiArch,
            vec![
                LayerSpec::base(10, mb(40.0)),
                LayerSpec::base(12, mb(10.0)),
                LayerSpec::seeded(1200 + i, mb(20.0)),
            ],
        ));
    }
    for i in 0..4u64 {
        set.push(ImageSpec::new(
            &format!("release/addons/addon-{i}"),
            "0.9",
            Oci,
            Single,
            vec![
                LayerSpec::base(11, mb(20.0)),
                LayerSpec::seeded(1300 + i, mb(10.0)),
            ],
        ));
    }
    set.push(ImageSpec::new(
        "library/pause",
        "3.9",
        Docker,
        Single,
        vec![LayerSpec::seeded(1400, mb(0.3))],
    ));
    set
}

/// A set shaped like a product release with little layer sharing, for the benchmark: 14
/// images, about 650 MB of unique blobs at `scale` 1.0. Each image has its own large layer
/// (5 to 120 MB) and a small one; one 30 MB base layer is shared by four images; two small
/// images are multi-arch.
pub fn release_like_set(scale: f64) -> Vec<ImageSpec> {
    use Arch::*;
    use Kind::*;
    let mb = |n: f64| -> u64 { ((n * 1_000_000.0 * scale) as u64).max(KIB) };
    let own = [
        120.0, 90.0, 70.0, 60.0, 50.0, 45.0, 40.0, 35.0, 30.0, 25.0, 20.0, 15.0, 10.0, 5.0,
    ];
    own.iter()
        .enumerate()
        .map(|(i, &size)| {
            let i = i as u64;
            let mut layers = Vec::new();
            if i.is_multiple_of(3) {
                layers.push(LayerSpec::base(20, mb(30.0)));
            }
            layers.push(LayerSpec::seeded(3000 + i, mb(size)));
            layers.push(LayerSpec::seeded(3100 + i, mb(1.0)));
            ImageSpec::new(
                &format!("product/component-{i:02}"),
                "5.2",
                if i.is_multiple_of(2) { Oci } else { Docker },
                if i >= 12 { MultiArch } else { Single },
                layers,
            )
        })
        .collect()
}

/// One image with a single layer of `mib` MiB (and nothing shared), to measure memory with a
/// large blob in the set.
pub fn big_layer_image(mib: u64) -> ImageSpec {
    ImageSpec::new(
        "release/big-layer",
        "1.0",
        Kind::Docker,
        Arch::Single,
        vec![LayerSpec::seeded(4000, mib * MIB)],
    )
}

/// Writes a plain-text image list (`REGISTRY/REPO:TAG` per line) to `dir/images.txt`.
pub fn write_list(dir: &Path, images: &[Generated], registry: &str) -> PathBuf {
    let path = dir.join("images.txt");
    let mut text = String::new();
    for image in images {
        text.push_str(&image.reference(registry));
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Generates every image of `specs` and pushes it to the registry at `registry_addr`
/// (`HOST:PORT`, plain HTTP). Blobs already present (HEAD) are not uploaded again.
pub fn push(registry_addr: &str, specs: &[ImageSpec]) -> Vec<Generated> {
    let pusher = Pusher::new(registry_addr);
    let mut cache: HashMap<(u64, u64), Layer> = HashMap::new();
    specs
        .iter()
        .map(|spec| pusher.push_image(spec, &mut cache))
        .collect()
}

/// Puts `body` as manifest `repository:reference` (a tag or digest) of type `media_type` at
/// the registry at `registry_addr` (plain HTTP); its blobs and children must be there.
pub fn put_manifest(
    registry_addr: &str,
    repository: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) {
    Pusher::new(registry_addr).put_manifest(repository, reference, media_type, body);
}

/// Uploads `data` as a blob of `repository` at the registry at `registry_addr` (plain HTTP)
/// unless it is there; returns its digest.
pub fn push_blob(registry_addr: &str, repository: &str, data: &[u8]) -> String {
    let digest = digest_of(data);
    Pusher::new(registry_addr).push_blob(repository, &digest, data);
    digest
}

/// A layer blob and what the config needs to know about it.
#[derive(Clone)]
struct Layer {
    gz: Vec<u8>,
    digest: String,
    diff_id: String,
}

/// The splitmix64 generator: tiny, fast, and good enough for incompressible test data.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Mixes two numbers into one seed.
fn mix(a: u64, b: u64) -> u64 {
    SplitMix(a ^ b.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

/// Builds one layer: a tar with up to three random files (plus a small text file naming the
/// seed), gzip-compressed, everything with fixed metadata so the output is reproducible.
fn build_layer(seed: u64, size: u64) -> Layer {
    let mut rng = SplitMix(seed);
    let files = if size >= 3 * 64 * KIB { 3 } else { 1 };
    let mut tar = tar::Builder::new(Vec::with_capacity(size as usize + 8 * KIB as usize));
    tar.mode(tar::HeaderMode::Deterministic);
    let append = |tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, data)
            .expect("tar append");
    };
    append(
        &mut tar,
        &format!("opt/airlift-test/{seed:016x}/SEED"),
        format!("{seed}\n").as_bytes(),
    );
    let mut left = size;
    for i in 0..files {
        let n = if i + 1 == files { left } else { size / files };
        left -= n;
        let mut data = vec![0u8; n as usize];
        rng.fill(&mut data);
        append(
            &mut tar,
            &format!("opt/airlift-test/{seed:016x}/data-{i}.bin"),
            &data,
        );
    }
    let tar = tar.into_inner().expect("tar finish");
    let diff_id = digest_of(&tar);
    let gz = gzip_stored(&tar);
    let digest = digest_of(&gz);
    Layer {
        gz,
        digest,
        diff_id,
    }
}

/// Gzip-compresses `data` the way deflate encodes incompressible input: stored blocks (at
/// most 65535 bytes each) in a standard gzip member (fixed header with mtime 0, CRC-32 and
/// length trailer). flate2's own encoder emits the same kind of blocks for random bytes but is
/// far slower in debug builds; the harness checks that flate2 decodes these layers.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 65535;
    let mut out = Vec::with_capacity(data.len() + data.len() / BLOCK * 5 + 32);
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=3 (Unix).
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    let mut chunks = data.chunks(BLOCK).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(last)); // BFINAL, BTYPE=00 (stored)
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A platform of a multi-arch image: (architecture, variant).
const PLATFORMS: [(&str, Option<&str>); 2] = [("amd64", None), ("arm64", Some("v8"))];

/// Tag mixed into shared base layer seeds so they never collide with `LayerContent::Seed`.
const BASE_SALT: u64 = 0xBA5E_0000_0000_0000;

struct Pusher {
    base: String,
    agent: ureq::Agent,
}

/// One platform manifest ready to push: its blobs and its bytes.
struct Built {
    config: Vec<u8>,
    layers: Vec<Layer>,
    manifest: Vec<u8>,
}

impl Pusher {
    fn new(registry_addr: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Pusher {
            base: format!("http://{registry_addr}"),
            agent,
        }
    }

    fn push_image(&self, spec: &ImageSpec, cache: &mut HashMap<(u64, u64), Layer>) -> Generated {
        let platforms: &[(&str, Option<&str>)] = match spec.arch {
            Arch::Single => &PLATFORMS[..1],
            Arch::MultiArch => &PLATFORMS[..],
        };
        let mut blobs: Vec<(String, u64)> = Vec::new();
        let mut layer_digests = Vec::new();
        let mut children = Vec::new();
        for (index, (arch, variant)) in platforms.iter().enumerate() {
            let built = self.build_platform(spec, index as u64, arch, *variant, cache);
            for layer in &built.layers {
                self.push_blob(&spec.repository, &layer.digest, &layer.gz);
                if !blobs.iter().any(|(d, _)| d == &layer.digest) {
                    blobs.push((layer.digest.clone(), layer.gz.len() as u64));
                    layer_digests.push(layer.digest.clone());
                }
            }
            let config_digest = digest_of(&built.config);
            self.push_blob(&spec.repository, &config_digest, &built.config);
            if !blobs.iter().any(|(d, _)| d == &config_digest) {
                blobs.push((config_digest, built.config.len() as u64));
            }
            children.push((built.manifest, *arch, *variant));
        }
        let (child_type, top_type) = match spec.kind {
            Kind::Docker => (DOCKER_MANIFEST, DOCKER_LIST),
            Kind::Oci => (OCI_MANIFEST, OCI_INDEX),
        };
        let (manifest, media_type, manifests, platform_names) = match spec.arch {
            Arch::Single => {
                let (manifest, _, _) = children.pop().expect("one platform");
                self.put_manifest(&spec.repository, &spec.tag, child_type, &manifest);
                (manifest, child_type, Vec::new(), Vec::new())
            }
            Arch::MultiArch => {
                let mut entries = Vec::new();
                let mut digests = Vec::new();
                let mut names = Vec::new();
                for (manifest, arch, variant) in &children {
                    let digest = digest_of(manifest);
                    self.put_manifest(&spec.repository, &digest, child_type, manifest);
                    let mut platform = json!({"architecture": arch, "os": "linux"});
                    if let Some(v) = variant {
                        platform["variant"] = json!(v);
                    }
                    entries.push(json!({
                        "mediaType": child_type,
                        "size": manifest.len(),
                        "digest": digest,
                        "platform": platform,
                    }));
                    names.push(match variant {
                        Some(v) => format!("linux/{arch}/{v}"),
                        None => format!("linux/{arch}"),
                    });
                    digests.push(digest);
                }
                let index = serde_json::to_vec_pretty(&json!({
                    "schemaVersion": 2,
                    "mediaType": top_type,
                    "manifests": entries,
                }))
                .expect("json");
                self.put_manifest(&spec.repository, &spec.tag, top_type, &index);
                (index, top_type, digests, names)
            }
        };
        Generated {
            repository: spec.repository.clone(),
            tag: spec.tag.clone(),
            digest: digest_of(&manifest),
            media_type: media_type.to_string(),
            manifest,
            blobs,
            layers: layer_digests,
            manifests,
            platforms: platform_names,
        }
    }

    fn build_platform(
        &self,
        spec: &ImageSpec,
        platform_index: u64,
        arch: &str,
        variant: Option<&str>,
        cache: &mut HashMap<(u64, u64), Layer>,
    ) -> Built {
        let mut layers = Vec::new();
        for layer in &spec.layers {
            let (seed, shared) = match layer.content {
                LayerContent::Seed(s) => (mix(s, platform_index), false),
                LayerContent::Base(id) => (mix(BASE_SALT | u64::from(id), platform_index), true),
            };
            let key = (seed, layer.size);
            let built = match cache.get(&key) {
                Some(l) => l.clone(),
                None => {
                    let l = build_layer(seed, layer.size);
                    if shared {
                        cache.insert(key, l.clone());
                    }
                    l
                }
            };
            layers.push(built);
        }
        let mut config = json!({
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Labels": {"org.airlift.test.image": format!("{}:{}", spec.repository, spec.tag)},
            },
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
            },
            // One entry per layer, as builders write: converting to schema 1 needs them.
            "history": layers.iter().enumerate().map(|(i, _)| json!({
                "created": "2024-01-01T00:00:00Z",
                "created_by": format!("layer {i}"),
            })).collect::<Vec<_>>(),
        });
        if let Some(v) = variant {
            config["variant"] = json!(v);
        }
        let config = serde_json::to_vec(&config).expect("json");
        let (manifest_type, config_type, layer_type) = match spec.kind {
            Kind::Docker => (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER),
            Kind::Oci => (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
        };
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "size": config.len(), "digest": digest_of(&config)},
            "layers": layers.iter().map(|l| json!({
                "mediaType": layer_type,
                "size": l.gz.len(),
                "digest": l.digest,
            })).collect::<Vec<_>>(),
        }))
        .expect("json");
        Built {
            config,
            layers,
            manifest,
        }
    }

    /// Uploads a blob unless HEAD says the repository has it: POST to open an upload, then one
    /// monolithic PUT with the digest.
    fn push_blob(&self, repository: &str, digest: &str, data: &[u8]) {
        let head_url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let head = self
            .agent
            .head(&head_url)
            .call()
            .unwrap_or_else(|e| panic!("HEAD {head_url}: {e}"));
        if head.status() == 200 {
            return;
        }
        let post_url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let post = self
            .agent
            .post(&post_url)
            .send_empty()
            .unwrap_or_else(|e| panic!("POST {post_url}: {e}"));
        assert_eq!(
            post.status(),
            202,
            "POST {post_url} returned {}",
            post.status()
        );
        let location = post
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("POST {post_url}: no Location header"))
            .to_string();
        let mut put_url = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str("digest=");
        put_url.push_str(digest);
        let mut put = self
            .agent
            .put(&put_url)
            .header("content-type", "application/octet-stream")
            .send(data)
            .unwrap_or_else(|e| panic!("PUT {put_url}: {e}"));
        if put.status() != 201 {
            let body = put.body_mut().read_to_string().unwrap_or_default();
            panic!(
                "PUT blob {digest} to {repository} returned {}: {body}",
                put.status()
            );
        }
    }

    fn put_manifest(&self, repository: &str, reference: &str, media_type: &str, body: &[u8]) {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let mut put = self
            .agent
            .put(&url)
            .header("content-type", media_type)
            .send(body)
            .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        if put.status() != 201 {
            let text = put.body_mut().read_to_string().unwrap_or_default();
            panic!("PUT {url} returned {}: {text}", put.status());
        }
    }
}
