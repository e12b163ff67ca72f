//! A bundle as a source of the engine, like a registry: manifests and blobs by digest (from any
//! byte on), read from the volumes given and, for a blob split across volumes, from the parts
//! earlier runs kept in the load state directory.
//!
//! `bundle load` is then the registry engine ([`super::plan`], [`super::execute`]) with this
//! source: the same upload path, the same verification (a blob's digest and size are checked
//! as it streams, and a wrong blob never completes at the target), the same reporting and
//! manifest writes. Blobs are read concurrently, bounded by `--jobs`, each on a blocking thread
//! that streams it through a bounded channel, so memory stays flat whatever the blob size.
//!
//! Opening refuses volumes that are structurally bad before anything is pushed, without
//! reading blob content twice:
//! * format 1 (one zstd frame per volume) can only be checked by reading it through:
//!   [`crate::bundle::check_layout`] does that once, skipping blob bodies unhashed, and
//!   records where each entry is, so blobs are then read in volume order through
//!   [`crate::bundle::Cursors`] (each volume decompressed once more, not once per blob);
//! * later formats are read at random through [`BundleStore`].
//!
//! Volumes are loaded one at a time (one disc in the drive): the parts of a split blob that the
//! volumes given hold are kept in the state directory ([`PartAssembler`]) until a later run
//! brings the others, and a part kept there counts as available.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::bundle::{
    BlobEntry, BlobLocation, BundleError, BundleStore, Cursors, Descriptor, PartAssembler,
    blob_name, check_layout, part_name,
};
use crate::reference::{Digest, ImageRef};
use crate::registry::Manifest;

use super::TransferError;
use super::blob::ByteStream;

/// Pieces of a format-1 volume up to this size are read whole, so the volume's stream is let
/// go at once and the next blob can be read while this one uploads.
const SMALL_PIECE: u64 = 4 << 20;
/// Size of the chunks a blob streams in.
const CHUNK: usize = 128 << 10;
/// Chunks in flight between a blob's reader thread and its upload.
const CHANNEL: usize = 4;

/// A bundle opened for loading: its descriptor and manifests (every volume carries all of
/// them), and the volumes given.
pub struct BundleSource {
    /// Volume files, in the order given.
    pub volumes: Vec<PathBuf>,
    /// The descriptor (identical image list in every volume).
    pub descriptor: Descriptor,
    /// Volume numbers given, ascending.
    numbers: Vec<u32>,
    store: BundleStore,
    /// Format 1: each volume read in order. `None` for random-access formats.
    cursors: Option<Cursors>,
    manifests: HashMap<Digest, Manifest>,
    /// Index in `descriptor.images` of each image's source reference.
    by_source: HashMap<String, usize>,
    state_dir: PathBuf,
}

/// What a referrer carried by a bundle belongs to.
pub(crate) struct ReferrerLink {
    /// The parent image's source reference in the bundle.
    pub parent: String,
    /// The manifest it refers to.
    pub subject: Digest,
    /// Its artifact type.
    pub artifact_type: Option<String>,
}

/// Where some bytes of a blob are read from.
enum Piece<'a> {
    /// A part kept in the state directory by an earlier run.
    Kept(PathBuf, &'a BlobLocation),
    /// A whole blob or a part in a volume given.
    Volume(&'a BlobLocation),
}

impl BundleSource {
    /// Opens the volumes (blocking): checks them (see the module doc; a problem refuses the
    /// load before anything is pushed), then reads the descriptors and manifests, no blobs.
    /// All volumes must belong to one bundle. A volume not given is no problem: its images
    /// wait for it.
    pub fn open(volumes: &[PathBuf], state_dir: PathBuf) -> Result<BundleSource, BundleError> {
        let layout = check_layout(volumes)?;
        let store = BundleStore::open(volumes)?;
        let descriptor = store.descriptor().clone();
        let layout = (descriptor.format_version == 1).then_some(layout);
        let numbers: Vec<u32> = (1..=descriptor.volume_count)
            .filter(|n| store.volume_path(*n).is_some())
            .collect();
        let cursors = layout.map(|layout| {
            let paths = numbers
                .iter()
                .filter_map(|n| Some((*n, store.volume_path(*n)?.to_owned())))
                .collect();
            Cursors::new(paths, layout)
        });
        let manifests = store
            .manifests()
            .map(|(digest, m)| {
                let manifest = Manifest {
                    bytes: m.bytes.clone(),
                    media_type: m.media_type.clone(),
                    digest: digest.clone(),
                };
                (digest.clone(), manifest)
            })
            .collect();
        let by_source = descriptor
            .images
            .iter()
            .enumerate()
            .map(|(n, i)| (i.source.clone(), n))
            .collect();
        Ok(BundleSource {
            volumes: volumes.to_vec(),
            descriptor,
            numbers,
            store,
            cursors,
            manifests,
            by_source,
            state_dir,
        })
    }

    /// What the bundle is called in errors: its first volume.
    pub(crate) fn name(&self) -> String {
        format!("bundle {}", self.volumes[0].display())
    }

    /// A manifest of the bundle by digest, or by the image's source reference.
    pub(crate) fn manifest(&self, image: &ImageRef, locator: &str) -> Option<Manifest> {
        let digest = match locator.parse::<Digest>() {
            Ok(d) => d,
            Err(_) => {
                let n = *self.by_source.get(&image.to_string())?;
                self.descriptor.images[n].digest.clone()
            }
        };
        self.manifests.get(&digest).cloned()
    }

    /// For a signature, attestation or SBOM the bundle carries: the image it belongs to.
    pub(crate) fn referrer_of(&self, image: &ImageRef) -> Option<ReferrerLink> {
        let entry = &self.descriptor.images[*self.by_source.get(&image.to_string())?];
        Some(ReferrerLink {
            parent: entry.referrer_of.clone()?,
            subject: entry.subject.clone()?,
            artifact_type: entry.artifact_type.clone(),
        })
    }

    /// Whether any byte range of a blob can be read without reading what comes before it
    /// (format 2 and later, through the seek index); format-1 volumes are read in order.
    pub(crate) fn random_access(&self) -> bool {
        self.cursors.is_none()
    }

    /// Volumes of the bundle not among those given.
    pub fn missing_volumes(&self) -> Vec<u32> {
        (1..=self.descriptor.volume_count)
            .filter(|n| !self.numbers.contains(n))
            .collect()
    }

    /// Whether volume `n` was given.
    pub(crate) fn has_volume(&self, n: u32) -> bool {
        self.numbers.contains(&n)
    }

    /// The order blobs are best read in. A format-1 volume is read through in order (each
    /// volume decompressed once): (volume, position in it) of the blob's first piece. A
    /// random-access bundle is read largest blob first: the longest single upload (a blob
    /// goes up as one stream) starts at once and the small ones fill in around it, where
    /// volume order could leave a large blob late in the volume uploading alone at the end.
    /// Blobs the bundle does not hold come last.
    pub(crate) fn read_order(&self, digest: &Digest) -> (u32, usize, Reverse<u64>) {
        let Some((entry, first)) = self
            .descriptor
            .blobs
            .get(digest)
            .and_then(|e| Some((e, e.volumes.first()?)))
        else {
            return (u32::MAX, usize::MAX, Reverse(0));
        };
        match &self.cursors {
            Some(c) => {
                let position = c.position(first.volume, &entry_name(digest, first));
                (first.volume, position.unwrap_or(0), Reverse(0))
            }
            None => (0, 0, Reverse(entry.size)),
        }
    }

    fn parts(&self) -> Result<PartAssembler, BundleError> {
        PartAssembler::open(&self.state_dir)
    }

    /// The pieces blob `digest` is read from, when every byte of it can be read now.
    fn pieces(&self, digest: &Digest) -> Result<Vec<Piece<'_>>, BundleError> {
        let not_here = || BundleError::BlobNotInVolumes {
            digest: digest.clone(),
        };
        let entry = self.descriptor.blobs.get(digest).ok_or_else(not_here)?;
        let parts = if entry.is_split() {
            Some(self.parts()?)
        } else {
            None
        };
        entry
            .volumes
            .iter()
            .map(|l| match (&parts, l.part) {
                (Some(p), Some(n)) if p.has_part(digest, n) => {
                    Ok(Piece::Kept(p.part_path(digest, n), l))
                }
                _ if self.has_volume(l.volume) => Ok(Piece::Volume(l)),
                _ => Err(not_here()),
            })
            .collect()
    }

    /// Fails with [`BundleError::BlobNotInVolumes`] unless every byte of `digest` can be
    /// read now.
    pub(crate) fn check_available(&self, digest: &Digest) -> Result<(), BundleError> {
        self.pieces(digest).map(drop)
    }

    /// The volumes still to load for blob `digest` (parts kept in the state directory need
    /// none); empty when the bundle does not carry it (a differential bundle leaves it at the
    /// site).
    pub(crate) fn volumes_needed(&self, digest: &Digest) -> Vec<u32> {
        let Some(entry) = self.descriptor.blobs.get(digest) else {
            return Vec::new();
        };
        let parts = entry.is_split().then(|| self.parts().ok()).flatten();
        let mut volumes: Vec<u32> = entry
            .volumes
            .iter()
            .filter(|l| match (&parts, l.part) {
                (Some(p), Some(n)) => !p.has_part(digest, n),
                _ => true,
            })
            .map(|l| l.volume)
            .collect();
        if volumes.is_empty() {
            volumes = entry.volume_numbers();
        }
        volumes.sort_unstable();
        volumes.dedup();
        volumes
    }

    /// For a blob split across volumes: keeps the parts the volumes given hold in the state
    /// directory (each verified against its own digest) when the blob cannot be read whole now,
    /// or when an earlier run already began keeping its parts. Blocking.
    pub(crate) fn keep_parts(&self, digest: &Digest) -> Result<(), BundleError> {
        let Some(entry) = self.descriptor.blobs.get(digest).filter(|e| e.is_split()) else {
            return Ok(());
        };
        let parts = self.parts()?;
        let kept = entry
            .volumes
            .iter()
            .any(|l| l.part.is_some_and(|n| parts.has_part(digest, n)));
        if !kept && self.check_available(digest).is_ok() {
            return Ok(());
        }
        for l in &entry.volumes {
            let Some(n) = l.part else { continue };
            if parts.has_part(digest, n) || !self.has_volume(l.volume) {
                continue;
            }
            self.with_piece(digest, l, 0, false, &mut |r| {
                parts
                    .store_part(digest, entry, n, r)
                    .map_err(std::io::Error::other)
            })?;
        }
        Ok(())
    }

    /// Once a split blob is at every target that lacked it, its kept parts go: they would
    /// otherwise stay in the state directory (up to a whole layer) for good.
    pub(crate) fn forget_parts(&self, digest: &Digest) {
        if let Some(entry) = self.descriptor.blobs.get(digest).filter(|e| e.is_split())
            && let Ok(parts) = self.parts()
        {
            // Best effort: a part left behind costs disk space, not correctness.
            let _ = parts.remove(digest, entry);
        }
    }

    /// Runs `read` on bytes `skip..` of one stored piece (a volume entry). A format-1 volume
    /// is read through its shared in-order stream, held meanwhile, unless `apart`: then on a
    /// stream of its own, decompressed from the volume's start (a re-read after an upload
    /// dropped, rare, which must not wait for the shared stream its own upload holds).
    fn with_piece(
        &self,
        digest: &Digest,
        loc: &BlobLocation,
        skip: u64,
        apart: bool,
        read: &mut dyn FnMut(&mut dyn Read) -> std::io::Result<()>,
    ) -> Result<(), BundleError> {
        let path = self.store.volume_path(loc.volume).unwrap_or(Path::new(""));
        match self.cursors.as_ref().filter(|_| !apart) {
            Some(cursors) => cursors.with_entry(loc.volume, &entry_name(digest, loc), |body| {
                let skipped = std::io::copy(&mut body.take(skip), &mut std::io::sink())?;
                if skipped != skip {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                read(body)
            }),
            None => {
                let mut body = self
                    .store
                    .read_blob(digest, loc.offset + skip..loc.offset + loc.length)?;
                read(&mut body).map_err(|e| crate::bundle::into_bundle_error(e, path))
            }
        }
    }

    /// Sends bytes `start..` of blob `digest` into `tx`, in chunks (`apart`: see
    /// [`Self::with_piece`]). Blocking; stops quietly when the receiver is gone. The bytes are
    /// not checked here: the upload checks the blob's digest as they pass.
    fn send_blob(
        &self,
        digest: &Digest,
        start: u64,
        apart: bool,
        tx: &mpsc::Sender<Result<Bytes, TransferError>>,
    ) {
        if let Err(e) = self.try_send_blob(digest, start, apart, tx) {
            let _ = tx.blocking_send(Err(TransferError::Bundle(e)));
        }
    }

    fn try_send_blob(
        &self,
        digest: &Digest,
        start: u64,
        apart: bool,
        tx: &mpsc::Sender<Result<Bytes, TransferError>>,
    ) -> Result<(), BundleError> {
        let pieces = self.pieces(digest)?;
        for piece in pieces {
            let loc = match &piece {
                Piece::Kept(_, l) | Piece::Volume(l) => *l,
            };
            if loc.offset + loc.length <= start {
                continue;
            }
            let skip = start.saturating_sub(loc.offset);
            let result = match piece {
                Piece::Kept(path, _) => {
                    let mut file =
                        fs_err::File::open(&path).map_err(crate::bundle::io_err(&path))?;
                    std::io::copy(&mut (&mut file).take(skip), &mut std::io::sink())
                        .map_err(crate::bundle::io_err(&path))?;
                    stream(&mut file, tx).map_err(crate::bundle::io_err(&path))
                }
                // A small piece of a sequential volume is read whole, and the volume let go.
                Piece::Volume(l)
                    if self.cursors.is_some() && !apart && l.length - skip <= SMALL_PIECE =>
                {
                    let mut whole = Vec::with_capacity((l.length - skip) as usize);
                    self.with_piece(digest, l, skip, false, &mut |r| {
                        r.read_to_end(&mut whole).map(drop)
                    })?;
                    for chunk in whole.chunks(CHUNK) {
                        if tx.blocking_send(Ok(Bytes::copy_from_slice(chunk))).is_err() {
                            return Ok(());
                        }
                    }
                    Ok(())
                }
                Piece::Volume(l) => self.with_piece(digest, l, skip, apart, &mut |r| stream(r, tx)),
            };
            match result {
                Ok(()) => {}
                Err(BundleError::Read { source, .. } | BundleError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Streams `r` into `tx` in chunks; `BrokenPipe` when the receiver is gone.
fn stream(
    r: &mut dyn Read,
    tx: &mpsc::Sender<Result<Bytes, TransferError>>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if tx
            .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
            .is_err()
        {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
    }
}

/// The volume entry holding `loc` of blob `digest`.
fn entry_name(digest: &Digest, loc: &BlobLocation) -> String {
    match loc.part {
        Some(n) => part_name(digest, n),
        None => blob_name(digest),
    }
}

/// Bytes `start..` of blob `digest` of `bundle`, read on a blocking thread and streamed
/// through a bounded channel.
pub(crate) fn blob_stream(bundle: &Arc<BundleSource>, digest: &Digest, start: u64) -> ByteStream {
    stream_from(bundle, digest, start, false)
}

fn stream_from(bundle: &Arc<BundleSource>, digest: &Digest, start: u64, apart: bool) -> ByteStream {
    let (tx, mut rx) = mpsc::channel(CHANNEL);
    let (bundle, digest) = (bundle.clone(), digest.clone());
    tokio::task::spawn_blocking(move || bundle.send_blob(&digest, start, apart, &tx));
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// Bytes `range` of blob `digest` of `bundle` read again, for an upload resuming after a drop:
/// from a random-access bundle only the frames that hold them are decompressed; a format-1
/// volume is read apart from the shared in-order stream, from its start (slow, but a drop is
/// rare, and nothing is held in memory for it).
pub(crate) fn blob_range(
    bundle: &Arc<BundleSource>,
    digest: &Digest,
    range: std::ops::Range<u64>,
) -> ByteStream {
    let left = range.end.saturating_sub(range.start);
    stream_from(bundle, digest, range.start, true)
        .scan(left, |left, item| {
            let item = match item {
                Ok(_) if *left == 0 => None,
                Ok(mut bytes) => {
                    bytes.truncate(
                        bytes
                            .len()
                            .min(usize::try_from(*left).unwrap_or(usize::MAX)),
                    );
                    *left -= bytes.len() as u64;
                    Some(Ok(bytes))
                }
                Err(e) => Some(Err(e)),
            };
            futures_util::future::ready(item)
        })
        .boxed()
}

/// The error a blob of `bundle` whose content did not match its digest is reported with:
/// where it is in the bundle, and which images use it.
pub(crate) fn corrupt(
    bundle: &BundleSource,
    digest: &Digest,
    actual: Digest,
    read: u64,
) -> BundleError {
    let entry: Option<&BlobEntry> = bundle.descriptor.blobs.get(digest);
    let (volume, name) = entry
        .and_then(|e| e.volumes.first())
        .map(|l| {
            let path = bundle.store.volume_path(l.volume).map_or_else(
                || PathBuf::from(format!("volume {}", l.volume)),
                Path::to_owned,
            );
            let name = if entry.is_some_and(BlobEntry::is_split) {
                format!("{}.part*", blob_name(digest))
            } else {
                blob_name(digest)
            };
            (path, name)
        })
        .unwrap_or_else(|| (bundle.volumes[0].clone(), blob_name(digest)));
    BundleError::DigestMismatch(Box::new(crate::bundle::Mismatch {
        what: "blob".into(),
        digest: digest.clone(),
        images: bundle.descriptor.images_using(digest),
        volume,
        entry: name,
        actual,
        read,
    }))
}
