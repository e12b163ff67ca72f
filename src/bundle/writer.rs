//! Writing a bundle: plan the volumes from sizes up front, build their descriptors, and write
//! format-2 volumes (zstd-compressed tars cut into frames, with a seek index; see [`frames`]
//! and `docs/bundle-format.md`) in one pass as blobs stream in ([`VolumeSet`]).
//!
//! Each volume is written as `<name>.partial`, synced and renamed, so a file with a final name
//! is always complete; an interrupted create resumes from the complete entries of the
//! `.partial` files ([`resume`]). Tar headers are fixed (mode 0644, mtime 0, uid/gid 0, no
//! user names) and frames are cut at fixed places, so the same input gives the same bytes.
//!
//! Every entry's tar offset is known before anything is written: the descriptor and
//! `index.json` are padded with trailing spaces to sizes that are the same in every volume, so
//! the manifests and blobs after them sit where the descriptor says.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::reference::Digest;
use crate::report::Reporter;

use super::descriptor::{
    BlobEntry, BlobLocation, Descriptor, FORMAT_VERSION, ImageEntry, ManifestEntry,
};
use super::plan::{Piece, entry_cost, plan_volumes, tar_entry_size, volume_overhead};
use super::{BundleError, Staging, io_err};

/// Content of `oci-layout`.
pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// One image to put in a bundle; its manifests and blobs must be staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleImage {
    /// Full source reference, e.g. `docker.io/library/nginx:1.27`; becomes the image's ref name.
    pub source: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// Digest of the top manifest.
    pub digest: Digest,
    /// Platforms included, `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// Manifest digests: index children first, the top manifest last.
    pub manifests: Vec<Digest>,
    /// Blob digests (configs and layers) of all its manifests.
    pub blobs: Vec<Digest>,
    /// For a signature, attestation or SBOM: the source of the image it belongs to, which
    /// must come earlier in the list.
    pub referrer_of: Option<String>,
    /// For a referrer: the manifest it refers to.
    pub subject: Option<Digest>,
    /// For a referrer: its artifact type.
    pub artifact_type: Option<String>,
}

/// Everything a bundle is made of besides the staged content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleInput {
    /// Images, in list order.
    pub images: Vec<BundleImage>,
    /// Names of the list files.
    pub lists: Vec<String>,
    /// Creation time, RFC 3339 UTC. Keep it stable across a resumed create
    /// ([`Staging::pinned_created`]) or finished volumes will be written again.
    pub created: String,
    /// Blobs the site already holds, with their sizes (from inventories or older bundles:
    /// [`crate::inventory::exclusions`]). Image blobs found here are not required in staging,
    /// not written to any volume, and recorded in the descriptor's `excluded_blobs`, which
    /// makes the bundle *differential*. Entries no image needs are ignored; manifests are
    /// always carried. Empty for a full bundle.
    pub excluded: BTreeMap<Digest, u64>,
    /// List entries left out because they could not be fetched (a partial bundle, written
    /// only when asked for with `--keep-going`); recorded in the descriptor.
    pub missing: Vec<crate::report::MissingImage>,
    /// `REGISTRY/PREFIX` of the inventories behind `excluded` (recorded in the descriptor).
    pub inventoried: Vec<String>,
}

/// How to write the volumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Maximum size of one volume file in bytes; `None` writes a single volume.
    pub max_volume_size: Option<u64>,
    /// zstd level (default 3: layers are already compressed, higher levels cost time for
    /// nothing).
    pub zstd_level: i32,
    /// zstd worker threads; 0 means one per available core.
    pub threads: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            max_volume_size: None,
            zstd_level: 3,
            threads: 0,
        }
    }
}

/// The file names of a bundle of `count` volumes written to `out`: `out` itself for one
/// volume; otherwise a 3-digit volume number before `.tar.zst` (`release.001.tar.zst`), or
/// appended (`release.bundle.001`) when `out` does not end in `.tar.zst`.
pub fn volume_paths(out: &Path, count: u32) -> Vec<PathBuf> {
    if count <= 1 {
        return vec![out.to_owned()];
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (1..=count)
        .map(|v| {
            let file = match name.strip_suffix(".tar.zst") {
                Some(stem) => format!("{stem}.{v:03}.tar.zst"),
                None => format!("{name}.{v:03}"),
            };
            out.with_file_name(file)
        })
        .collect()
}

pub(crate) mod frames;
mod resume;
mod set;
mod volume;
mod writeback;

pub use set::{BlobWriter, VolumeSet, WriteError};
use volume::VolumeJob;

/// What a bundle's plan needs to know of its content: manifests (written from memory) and
/// blob sizes.
pub trait BundleContent {
    /// A manifest's bytes and media type.
    fn manifest(&self, digest: &Digest) -> Option<(Vec<u8>, String)>;
    /// A blob's size.
    fn blob_size(&self, digest: &Digest) -> Option<u64>;
}

impl BundleContent for Staging {
    fn manifest(&self, digest: &Digest) -> Option<(Vec<u8>, String)> {
        let media_type = self.manifest_media_type(digest)?;
        let bytes = std::fs::read(self.blob_path(digest)).ok()?;
        Some((bytes, media_type))
    }
    fn blob_size(&self, digest: &Digest) -> Option<u64> {
        self.has_blob(digest)
    }
}

/// `bytes` followed by spaces up to `len` (JSON allows trailing whitespace).
fn padded(mut bytes: Vec<u8>, len: u64) -> Vec<u8> {
    debug_assert!(bytes.len() as u64 <= len);
    bytes.resize(len as usize, b' ');
    bytes
}

/// Writes the bundle of `input` from `staging` to `out` (see [`volume_paths`] for the names of
/// several volumes) and returns the volume paths: the staged blobs are streamed in volume
/// order into a [`VolumeSet`]. Blocking; call it from `spawn_blocking` in async code. Progress
/// goes to `reporter` (`on_blob_start`, `on_bytes`, `on_blob_done` per blob written).
pub fn write_bundle(
    staging: &Staging,
    input: &BundleInput,
    out: &Path,
    opts: &WriteOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<PathBuf>, BundleError> {
    let set = VolumeSet::open(input, staging, out, opts)?;
    set.start()?;
    let mut blobs: Vec<(usize, Digest)> = input
        .images
        .iter()
        .flat_map(|i| &i.blobs)
        .filter_map(|d| Some((set.rank(d)?, d.clone())))
        .collect();
    blobs.sort();
    blobs.dedup();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(io_err(out))?;
    let result = runtime.block_on(async {
        for (_, digest) in &blobs {
            let path = staging.blob_path(digest);
            let size = staging.has_blob(digest).unwrap_or(0);
            let mut w = set.writer(digest, size)?;
            reporter.on_blob_start(digest, size);
            let mut f = fs_err::File::open(&path).map_err(io_err(&path))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = std::io::Read::read(&mut f, &mut buf).map_err(io_err(&path))?;
                if n == 0 {
                    break;
                }
                reporter.on_bytes(n as u64);
                w.write(bytes::Bytes::copy_from_slice(&buf[..n]))
                    .await
                    .map_err(|e| staged_error(digest, size, e))?;
            }
            let parts = w
                .finish()
                .await
                .map_err(|e| staged_error(digest, size, e))?;
            set.record_parts(parts);
            reporter.on_blob_done(digest, size);
        }
        Ok::<(), BundleError>(())
    });
    drop(runtime);
    match result {
        // The volumes' own errors say more than a stopped channel.
        Ok(()) | Err(BundleError::VolumeStopped { .. }) => {
            let paths = set.finish()?;
            result.map(|()| paths)
        }
        Err(e) => Err(e),
    }
}

fn staged_error(digest: &Digest, size: u64, e: WriteError) -> BundleError {
    match e {
        WriteError::Stopped(volume) => BundleError::VolumeStopped { volume },
        WriteError::Mismatch { actual, received } => BundleError::StagingMismatch {
            digest: digest.clone(),
            expected_size: size,
            actual_size: received,
            actual,
        },
    }
}

/// Plans the bundle: the descriptors and content of every volume (part digests and bundle id
/// as placeholders of their final length), and the manifests with their bytes, in order.
#[allow(clippy::type_complexity)]
fn prepare(
    content: &dyn BundleContent,
    input: &BundleInput,
    limit: Option<u64>,
) -> Result<(Vec<VolumeJob>, Vec<(Digest, Vec<u8>)>), BundleError> {
    let not_staged = |digest: &Digest, image: &str| {
        BundleError::InvalidInput(format!("{digest} needed by {image} is not known"))
    };
    let mut sources = HashSet::new();
    let mut manifests = BTreeMap::new();
    let mut manifest_order: Vec<(Digest, Vec<u8>)> = Vec::new();
    let mut blobs: BTreeMap<Digest, BlobEntry> = BTreeMap::new();
    let mut blob_order: Vec<(Digest, u64)> = Vec::new();
    let mut excluded_blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut images = Vec::new();
    for image in &input.images {
        if !sources.insert(image.source.as_str()) {
            return Err(BundleError::InvalidInput(format!(
                "image {} listed twice",
                image.source
            )));
        }
        if image.manifests.last() != Some(&image.digest) {
            return Err(BundleError::InvalidInput(format!(
                "{}: the top manifest {} must be the last of its manifests",
                image.source, image.digest
            )));
        }
        let mut size = 0;
        for m in &image.manifests {
            if let Some(entry) = manifests.get(m) {
                let entry: &ManifestEntry = entry;
                size += entry.size;
                continue;
            }
            let (bytes, media_type) = content
                .manifest(m)
                .ok_or_else(|| not_staged(m, &image.source))?;
            let len = bytes.len() as u64;
            size += len;
            manifests.insert(
                m.clone(),
                ManifestEntry {
                    size: len,
                    media_type,
                },
            );
            manifest_order.push((m.clone(), bytes));
        }
        let mut distinct = Vec::new();
        let mut seen = HashSet::new();
        for b in &image.blobs {
            if !seen.insert(b) {
                continue;
            }
            if let Some(&len) = input.excluded.get(b) {
                // Expected at the site: counted in the image's size, carried by no volume.
                size += len;
                distinct.push(b.clone());
                excluded_blobs.insert(b.clone(), len);
                continue;
            }
            let len = content
                .blob_size(b)
                .ok_or_else(|| not_staged(b, &image.source))?;
            size += len;
            distinct.push(b.clone());
            if !blobs.contains_key(b) {
                blobs.insert(
                    b.clone(),
                    BlobEntry {
                        size: len,
                        volumes: Vec::new(),
                    },
                );
                blob_order.push((b.clone(), len));
            }
        }
        images.push(ImageEntry {
            source: image.source.clone(),
            tag: image.tag.clone(),
            digest: image.digest.clone(),
            media_type: manifests[&image.digest].media_type.clone(),
            platforms: image.platforms.clone(),
            size,
            manifests: image.manifests.clone(),
            blobs: distinct,
            referrer_of: image.referrer_of.clone(),
            subject: image.subject.clone(),
            artifact_type: image.artifact_type.clone(),
        });
    }
    if let Some(b) = blobs
        .keys()
        .chain(excluded_blobs.keys())
        .find(|b| manifests.contains_key(*b))
    {
        return Err(BundleError::InvalidInput(format!(
            "{b} is used both as a manifest and as a blob"
        )));
    }
    let base = Descriptor {
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        created: input.created.clone(),
        lists: input.lists.clone(),
        bundle_id: "0".repeat(32),
        volume: 1,
        volume_count: 1,
        images,
        manifests,
        blobs,
        excluded_blobs,
        missing_images: input.missing.clone(),
        inventoried: input.inventoried.clone(),
    };

    // Every volume repeats the descriptor, whose size depends on the plan: plan with a guess,
    // measure, and plan again with more room until the guess holds. Placeholder part digests
    // have the length of real ones, so the measurement stays true once they are computed.
    // The descriptor and index.json are padded to these lengths in every volume, so the
    // entries after them are at the same tar offsets everywhere.
    let full_index = index_json(&base, base.images.iter().collect());
    let index_len = full_index.len() as u64;
    let repeated = entry_cost(OCI_LAYOUT.len() as u64)
        + entry_cost(index_len)
        + base
            .manifests
            .values()
            .map(|m| entry_cost(m.size))
            .sum::<u64>()
        + volume_overhead();
    let before_blobs = |descriptor_len: u64| {
        tar_entry_size(descriptor_len)
            + tar_entry_size(OCI_LAYOUT.len() as u64)
            + tar_entry_size(index_len)
            + base
                .manifests
                .values()
                .map(|m| tar_entry_size(m.size))
                .sum::<u64>()
    };
    let block = |n: u64| n.div_ceil(512) * 512;
    let mut descriptor_len = block(base.to_bytes().len() as u64 + 4096);
    let placeholder = Digest::of(b"");
    let (plan, descriptors) = loop {
        let mut plan = plan_volumes(&blob_order, repeated + entry_cost(descriptor_len), limit)?;
        split_parts_at_the_edges(&mut plan);
        let first = before_blobs(descriptor_len);
        let descriptors = describe(&base, &plan, first, |_| placeholder.clone());
        let needed = descriptors
            .iter()
            .map(|d| d.to_bytes().len() as u64)
            .max()
            .unwrap_or(0);
        if needed <= descriptor_len {
            break (plan, descriptors);
        }
        descriptor_len = block(needed + 4096);
    };
    // Part digests and the bundle id stay placeholders (of their final length) until the
    // volumes are finished: see `set::VolumeSet::finish`.
    let jobs = descriptors
        .into_iter()
        .zip(plan)
        .map(|(descriptor, pieces)| {
            let index = index_json(
                &descriptor,
                descriptor.images_complete_in(descriptor.volume),
            );
            VolumeJob {
                descriptor_bytes: padded(descriptor.to_bytes(), descriptor_len),
                descriptor,
                pieces,
                index: padded(index, index_len),
            }
        })
        .collect();
    Ok((jobs, manifest_order))
}

/// Puts, in every volume, the part continuing a blob of the volume before first and the part
/// continued in the next volume last. A split blob's pieces are then next to each other in
/// volume order, which is the order blobs are streamed in: the writer of one volume never waits
/// for a blob that waits for a later entry of another.
fn split_parts_at_the_edges(plan: &mut [Vec<Piece>]) {
    for pieces in plan {
        pieces.sort_by_key(|p| match p.part {
            Some(n) if n > 1 => 0,
            Some(_) => 2,
            None => 1,
        });
    }
}

/// The descriptor of each volume of `plan`, whose first blob entry is at tar offset
/// `first_blob` in every volume; `part_digest` gives the digest of a part piece.
fn describe(
    base: &Descriptor,
    plan: &[Vec<Piece>],
    first_blob: u64,
    part_digest: impl Fn(&Piece) -> Digest,
) -> Vec<Descriptor> {
    let mut d = base.clone();
    d.volume_count = plan.len() as u32;
    for (i, pieces) in plan.iter().enumerate() {
        let mut tar_offset = first_blob;
        for p in pieces {
            let at = tar_offset;
            tar_offset += tar_entry_size(p.length);
            d.blobs
                .get_mut(&p.digest)
                .expect("planned blobs are described")
                .volumes
                .push(BlobLocation {
                    volume: i as u32 + 1,
                    part: p.part,
                    offset: p.offset,
                    length: p.length,
                    digest: p.part.map(|_| part_digest(p)),
                    tar_offset: Some(at),
                });
        }
    }
    for entry in d.blobs.values_mut() {
        entry.volumes.sort_by_key(|l| (l.offset, l.volume));
    }
    (1..=plan.len() as u32)
        .map(|v| Descriptor {
            volume: v,
            ..d.clone()
        })
        .collect()
}

/// `index.json` listing `images`, named by their source reference (skopeo 1.9 accepts
/// `oci:DIR:docker.io/library/nginx:1.27`).
fn index_json(descriptor: &Descriptor, images: Vec<&ImageEntry>) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = images
        .into_iter()
        .map(|i| {
            serde_json::json!({
                "mediaType": i.media_type,
                "digest": i.digest,
                "size": descriptor.manifests[&i.digest].size,
                "annotations": {
                    "org.opencontainers.image.ref.name": i.source,
                    "io.containerd.image.name": i.source,
                },
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    serde_json::to_vec(&index).expect("index serialises")
}

/// A tar header as airlift writes them: regular file, 0644, mtime 0, owner 0, no names.
fn header(name: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(name)
        .expect("bundle entry names are short and valid");
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    h
}

/// Compression threads for `opts`: one per core unless told otherwise.
fn threads(opts: &WriteOptions) -> usize {
    match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    }
}

#[cfg(test)]
mod tests;
