//! Writing a bundle: plan the volumes, build their descriptors, stream staged blobs into
//! format-2 volumes (zstd-compressed tars cut into frames, with a seek index; see
//! [`frames`] and `docs/bundle-format.md`).
//!
//! Each volume is written as `<name>.partial`, synced and renamed, so a file with a final name
//! is always complete. A volume whose final file already holds the same descriptor is left
//! alone, which makes an interrupted create resumable. Tar headers are fixed (mode 0644, mtime
//! 0, uid/gid 0, no user names) so the same input gives the same tar stream.
//!
//! Every entry's tar offset is known before anything is written: the descriptor and
//! `index.json` are padded with trailing spaces to sizes that are the same in every volume, so
//! the manifests and blobs after them sit where the descriptor says.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::reference::Digest;
use crate::report::Reporter;

use super::descriptor::{
    BlobEntry, BlobLocation, Descriptor, FORMAT_VERSION, ImageEntry, ManifestEntry,
};
use super::plan::{Piece, TAR_END, entry_cost, plan_volumes, tar_entry_size, volume_overhead};
use super::{
    BundleError, DESCRIPTOR_NAME, INDEX_NAME, OCI_LAYOUT_NAME, Staging, VolumeReader, blob_name,
    io_err, part_name,
};

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

/// A volume to write: its descriptor and what goes in it.
struct VolumeJob {
    descriptor: Descriptor,
    /// The descriptor as written (padded).
    descriptor_bytes: Vec<u8>,
    pieces: Vec<Piece>,
    /// `index.json` as written (padded).
    index: Vec<u8>,
}

/// `bytes` followed by spaces up to `len` (JSON allows trailing whitespace).
fn padded(mut bytes: Vec<u8>, len: u64) -> Vec<u8> {
    debug_assert!(bytes.len() as u64 <= len);
    bytes.resize(len as usize, b' ');
    bytes
}

/// Writes the bundle of `input` from `staging` to `out` (see [`volume_paths`] for the names of
/// several volumes) and returns the volume paths. Blocking: it streams every blob through zstd;
/// call it from `spawn_blocking` in async code. Progress goes to `reporter` (`on_blob_start`,
/// `on_bytes`, `on_blob_done` per blob or part written).
pub fn write_bundle(
    staging: &Staging,
    input: &BundleInput,
    out: &Path,
    opts: &WriteOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<PathBuf>, BundleError> {
    let (jobs, manifest_order) = prepare(staging, input, opts.max_volume_size)?;
    let paths = volume_paths(out, jobs.len() as u32);
    for (job, path) in jobs.iter().zip(&paths) {
        if already_written(path, &job.descriptor) {
            continue;
        }
        write_volume(staging, job, &manifest_order, path, opts, reporter)?;
    }
    Ok(paths)
}

/// A finished volume with the same descriptor is the same volume: it was renamed into place
/// only after being written completely.
fn already_written(path: &Path, descriptor: &Descriptor) -> bool {
    VolumeReader::open(path).is_ok_and(|r| r.descriptor() == descriptor)
}

/// Plans the bundle: the descriptors and content of every volume, and the manifest order.
fn prepare(
    staging: &Staging,
    input: &BundleInput,
    limit: Option<u64>,
) -> Result<(Vec<VolumeJob>, Vec<Digest>), BundleError> {
    let not_staged = |digest: &Digest, image: &str| BundleError::NotStaged {
        digest: digest.clone(),
        image: image.to_owned(),
        staging: staging.dir().to_owned(),
    };
    let mut sources = HashSet::new();
    let mut manifests = BTreeMap::new();
    let mut manifest_order = Vec::new();
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
            let len = staging
                .has_blob(m)
                .ok_or_else(|| not_staged(m, &image.source))?;
            let media_type = staging
                .manifest_media_type(m)
                .ok_or_else(|| not_staged(m, &image.source))?;
            size += len;
            if manifests
                .insert(
                    m.clone(),
                    ManifestEntry {
                        size: len,
                        media_type,
                    },
                )
                .is_none()
            {
                manifest_order.push(m.clone());
            }
        }
        let mut distinct = Vec::new();
        for b in &image.blobs {
            if distinct.contains(b) {
                continue;
            }
            if let Some(&len) = input.excluded.get(b) {
                // Expected at the site: counted in the image's size, carried by no volume.
                size += len;
                distinct.push(b.clone());
                excluded_blobs.insert(b.clone(), len);
                continue;
            }
            let len = staging
                .has_blob(b)
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
    let (plan, mut descriptors) = loop {
        let plan = plan_volumes(&blob_order, repeated + entry_cost(descriptor_len), limit)?;
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
    let first_blob = before_blobs(descriptor_len);

    // Real part digests, hashed from the staged files.
    if plan.iter().flatten().any(|p| p.part.is_some()) {
        let mut part_digests = BTreeMap::new();
        for p in plan.iter().flatten().filter(|p| p.part.is_some()) {
            let d = hash_range(&staging.blob_path(&p.digest), p.offset, p.length)?;
            part_digests.insert((p.digest.clone(), p.part), d);
        }
        descriptors = describe(&base, &plan, first_blob, |p| {
            part_digests[&(p.digest.clone(), p.part)].clone()
        });
    }
    // The bundle id is derived from the content, so a resumed create recomputes the same one.
    let mut hasher = Sha256::new();
    hasher.update(descriptors[0].to_bytes());
    let id = hex::encode(hasher.finalize())[..32].to_owned();
    let jobs = descriptors
        .into_iter()
        .zip(plan)
        .map(|(mut descriptor, pieces)| {
            descriptor.bundle_id = id.clone();
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

/// sha256 of `length` bytes at `offset` of `path`.
fn hash_range(path: &Path, offset: u64, length: u64) -> Result<Digest, BundleError> {
    let mut f = fs_err::File::open(path).map_err(io_err(path))?;
    f.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let n = io::copy(&mut f.take(length), &mut HashWriter(&mut hasher)).map_err(io_err(path))?;
    if n != length {
        return Err(BundleError::Io {
            path: path.to_owned(),
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "staged blob is shorter than announced",
            ),
        });
    }
    Ok(Digest::from_sha256(&hasher.finalize()))
}

struct HashWriter<'a>(&'a mut Sha256);
impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads staged content, hashing, counting and reporting it as it goes.
struct Counted<'a, R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    reporter: &'a dyn Reporter,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        self.reporter.on_bytes(n as u64);
        Ok(n)
    }
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

fn write_volume(
    staging: &Staging,
    job: &VolumeJob,
    manifest_order: &[Digest],
    path: &Path,
    opts: &WriteOptions,
    reporter: &dyn Reporter,
) -> Result<(), BundleError> {
    let partial = {
        let mut name = path.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    };
    let result = write_partial(staging, job, manifest_order, &partial, opts, reporter);
    let result = result.and_then(|()| {
        let size = fs_err::metadata(&partial).map_err(io_err(&partial))?.len();
        match opts.max_volume_size {
            // The planner's bound makes this impossible; checked anyway because a volume that
            // does not fit its medium is discovered far too late.
            Some(limit) if size > limit => Err(BundleError::InvalidInput(format!(
                "volume {} came out at {size} bytes, over the {limit} byte limit",
                path.display()
            ))),
            _ => Ok(()),
        }
    });
    if let Err(e) = result {
        let _ = fs_err::remove_file(&partial);
        return Err(e);
    }
    fs_err::rename(&partial, path).map_err(io_err(path))?;
    // The rename itself must survive a crash for the resume logic to be right.
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Compression threads for `opts`: one per core unless told otherwise.
fn threads(opts: &WriteOptions) -> usize {
    match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    }
}

fn write_partial(
    staging: &Staging,
    job: &VolumeJob,
    manifest_order: &[Digest],
    partial: &Path,
    opts: &WriteOptions,
    reporter: &dyn Reporter,
) -> Result<(), BundleError> {
    let werr = io_err(partial);
    let file = fs_err::File::create(partial).map_err(io_err(partial))?;
    let out = io::BufWriter::with_capacity(1 << 20, file);
    let level = opts.zstd_level;
    let ((), out) = frames::with_frame_sink(
        out,
        level,
        threads(opts),
        |e| io_err(partial)(e),
        |sink| {
            for (name, data) in [
                (DESCRIPTOR_NAME, job.descriptor_bytes.as_slice()),
                (OCI_LAYOUT_NAME, OCI_LAYOUT),
                (INDEX_NAME, job.index.as_slice()),
            ] {
                let size = data.len() as u64;
                sink.entry(&header(name, size), size, &mut &*data)
                    .map_err(io_err(partial))?;
            }
            for m in manifest_order {
                let size = job.descriptor.manifests[m].size;
                copy_staged(sink, staging, m, &blob_name(m), 0, size, m, reporter)?;
            }
            for p in &job.pieces {
                let loc = job.descriptor.blobs[&p.digest]
                    .location(job.descriptor.volume, p.part)
                    .expect("planned pieces are described");
                let (name, expected) = match p.part {
                    None => (blob_name(&p.digest), p.digest.clone()),
                    Some(n) => (
                        part_name(&p.digest, n),
                        loc.digest.clone().expect("parts have digests"),
                    ),
                };
                debug_assert_eq!(loc.tar_offset, Some(sink.position()));
                if loc.tar_offset != Some(sink.position()) {
                    return Err(BundleError::InvalidInput(format!(
                        "{name} planned at tar offset {:?}, written at {}",
                        loc.tar_offset,
                        sink.position()
                    )));
                }
                reporter.on_blob_start(&p.digest, p.length);
                copy_staged(
                    sink, staging, &p.digest, &name, p.offset, p.length, &expected, reporter,
                )?;
                reporter.on_blob_done(&p.digest, p.length);
            }
            sink.frame(vec![0; TAR_END as usize])
                .map_err(io_err(partial))?;
            Ok::<(), BundleError>(())
        },
    )?;
    let file = out.into_inner().map_err(|e| werr(e.into_error()))?;
    file.sync_all().map_err(io_err(partial))?;
    Ok(())
}

/// Appends `length` bytes at `offset` of staged `digest` as entry `name`, checking they hash
/// to `expected`: a staged file damaged since it was verified must not reach the medium.
#[allow(clippy::too_many_arguments)]
fn copy_staged<W: Write>(
    sink: &mut frames::FrameSink<W>,
    staging: &Staging,
    digest: &Digest,
    name: &str,
    offset: u64,
    length: u64,
    expected: &Digest,
    reporter: &dyn Reporter,
) -> Result<(), BundleError> {
    let path = staging.blob_path(digest);
    let mut f = fs_err::File::open(&path).map_err(io_err(&path))?;
    f.seek(SeekFrom::Start(offset)).map_err(io_err(&path))?;
    let mut src = Counted {
        inner: io::BufReader::with_capacity(1 << 20, f).take(length),
        hasher: Sha256::new(),
        read: 0,
        reporter,
    };
    let written = sink.entry(&header(name, length), length, &mut src);
    let actual = Digest::from_sha256(&src.hasher.finalize());
    if src.read != length || &actual != expected {
        return Err(BundleError::StagingMismatch {
            digest: expected.clone(),
            expected_size: length,
            actual_size: src.read,
            actual,
        });
    }
    written.map_err(io_err(&path))
}

#[cfg(test)]
mod tests;
