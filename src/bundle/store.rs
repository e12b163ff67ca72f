//! Random access to the content of a bundle: a set of volumes read as a store of manifests and
//! blobs addressed by digest, with byte ranges.
//!
//! This is the bundle as a *source*: `bundle serve` answers registry requests from it, and the
//! engine fetches blobs from it the way it fetches them from a registry. Opening reads the
//! descriptors and the manifests (every volume carries all of them), never a blob.
//!
//! How a blob's bytes are found depends on the volume's format:
//! * format 1 (one zstd frame per volume): the volume is decompressed from its start up to the
//!   entry, then read — correct, but the cost grows with the entry's position, so format 1 is
//!   meant for sequential use ([`crate::bundle::VolumeReader`]);
//! * format 2 (frames per entry and a seek index, `docs/bundle-format.md`): the entry's header
//!   frame is checked against the descriptor, then the frames that hold the range are read
//!   and nothing else. Opening reads each volume's index (bounded: checked against the file
//!   size and [`crate::bundle::MAX_FRAMES`] before anything is kept).
//!
//! Reads are blocking (`Read`); async callers run them in `spawn_blocking`. Bytes read here are
//! not checked against the blob digest (a range cannot be): whoever reads a whole blob checks
//! it, as the engine does for every blob it copies.

use std::collections::HashMap;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::reference::Digest;

use super::descriptor::{BlobLocation, Descriptor};
use super::plan::BLOCK;
use super::reader::{EntryKind, VolumeReader};
use super::seek::{FrameIndex, FrameReader};
use super::{BundleError, blob_name, part_name};

/// A volume given: its file and, for format 2, its seek index.
struct Volume {
    path: PathBuf,
    index: Option<Arc<FrameIndex>>,
}

/// A manifest held by the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    /// The raw bytes (their sha256 is the digest; checked when the volume was opened).
    pub bytes: Bytes,
    /// The media type the descriptor records.
    pub media_type: String,
}

/// The volumes of one bundle opened for random access.
pub struct BundleStore {
    descriptor: Descriptor,
    /// Volume number -> file and index.
    volumes: HashMap<u32, Volume>,
    manifests: HashMap<Digest, StoredManifest>,
}

impl BundleStore {
    /// Opens `paths` (volumes of one bundle, any order, any subset): reads each descriptor
    /// and, for format 2, each seek index (checked against the file's size), checks they
    /// belong to one bundle, and reads the manifests of the first volume (each is verified
    /// against its digest as it is read). Blocking.
    pub fn open(paths: &[PathBuf]) -> Result<BundleStore, BundleError> {
        let first = paths.first().ok_or(BundleError::NoVolumes)?;
        let (mut reader, index) = VolumeReader::open_indexed(first)?;
        let descriptor = reader.descriptor().clone();
        let mut volumes = HashMap::new();
        volumes.insert(
            descriptor.volume,
            Volume {
                path: first.clone(),
                index,
            },
        );
        for path in &paths[1..] {
            let (other, index) = VolumeReader::open_indexed(path)?;
            let d = other.descriptor();
            if d.bundle_id != descriptor.bundle_id {
                return Err(BundleError::MixedBundles {
                    volume: path.clone(),
                    found: d.bundle_id.clone(),
                    expected: descriptor.bundle_id.clone(),
                });
            }
            volumes.insert(
                d.volume,
                Volume {
                    path: path.clone(),
                    index,
                },
            );
        }
        let mut manifests = HashMap::new();
        while let Some(mut entry) = reader.next_entry()? {
            match entry.kind().clone() {
                EntryKind::Manifest { digest } => {
                    // Bounded by the manifest size limit the reader enforces.
                    let mut bytes = Vec::with_capacity(entry.size() as usize);
                    entry.copy_to(&mut bytes)?;
                    let media_type = descriptor
                        .manifests
                        .get(&digest)
                        .map(|m| m.media_type.clone())
                        .unwrap_or_default();
                    manifests.insert(
                        digest,
                        StoredManifest {
                            bytes: bytes.into(),
                            media_type,
                        },
                    );
                }
                // Manifests precede blobs: nothing more to learn here.
                EntryKind::Blob { .. } | EntryKind::BlobPart { .. } => break,
                _ => {}
            }
        }
        Ok(BundleStore {
            descriptor,
            volumes,
            manifests,
        })
    }

    /// The descriptor (of the first volume given; the image list is the same in all).
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The file of volume `n`, if it was given.
    pub fn volume_path(&self, n: u32) -> Option<&Path> {
        self.volumes.get(&n).map(|v| v.path.as_path())
    }

    /// A manifest by digest.
    pub fn manifest(&self, digest: &Digest) -> Option<&StoredManifest> {
        self.manifests.get(digest)
    }

    /// Every manifest of the bundle.
    pub fn manifests(&self) -> impl Iterator<Item = (&Digest, &StoredManifest)> {
        self.manifests.iter()
    }

    /// The size of a blob whose every part is in the volumes given; `None` when the bundle does
    /// not carry it or a volume holding part of it was not given.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        let entry = self.descriptor.blobs.get(digest)?;
        entry
            .volumes
            .iter()
            .all(|l| self.volumes.contains_key(&l.volume))
            .then_some(entry.size)
    }

    /// The seek index of volume `n` (format 2), if it was given.
    pub fn frame_index(&self, n: u32) -> Option<&FrameIndex> {
        self.volumes.get(&n).and_then(|v| v.index.as_deref())
    }

    /// Reads bytes `range` of blob `digest` (clamped to its size). Blocking; the reader reads
    /// lazily, one stored piece after another, so memory does not grow with the range. In a
    /// format-2 volume only the frames holding the range are read (after the entry's header
    /// frame, checked against the descriptor).
    ///
    /// Only the volumes holding the bytes of `range` need to have been given: a range within
    /// one part of a split blob is read from that part's volume alone.
    pub fn read_blob(&self, digest: &Digest, range: Range<u64>) -> Result<BlobReader, BundleError> {
        let not_here = || BundleError::BlobNotInVolumes {
            digest: digest.clone(),
        };
        let entry = self.descriptor.blobs.get(digest).ok_or_else(not_here)?;
        let range = range.start.min(entry.size)..range.end.min(entry.size);
        let given = entry
            .volumes
            .iter()
            .filter(|l| l.offset < range.end && l.offset + l.length > range.start)
            .all(|l| self.volumes.contains_key(&l.volume));
        if !given {
            return Err(not_here());
        }
        let mut pieces: Vec<Piece> = entry
            .volumes
            .iter()
            .filter(|l| l.offset < range.end && l.offset + l.length > range.start)
            .map(|l| Piece::new(digest, l, &range, &self.volumes[&l.volume]))
            .collect();
        pieces.sort_by_key(|p| p.blob_offset);
        pieces.reverse();
        Ok(BlobReader {
            pieces,
            current: None,
        })
    }
}

/// One stored piece (a whole blob or one part) and the bytes of it wanted.
struct Piece {
    volume: PathBuf,
    /// Format 2: the volume's index and the entry's tar offset.
    indexed: Option<(Arc<FrameIndex>, u64)>,
    entry: String,
    /// Bytes of the whole entry.
    length: u64,
    /// Offset of the piece in the blob (for ordering).
    blob_offset: u64,
    /// Bytes of the piece's entry to skip, then to read.
    skip: u64,
    take: u64,
}

impl Piece {
    fn new(digest: &Digest, loc: &BlobLocation, range: &Range<u64>, volume: &Volume) -> Piece {
        let start = range.start.max(loc.offset);
        let end = range.end.min(loc.offset + loc.length);
        Piece {
            volume: volume.path.clone(),
            indexed: volume.index.clone().zip(loc.tar_offset),
            length: loc.length,
            entry: match loc.part {
                Some(n) => part_name(digest, n),
                None => blob_name(digest),
            },
            blob_offset: loc.offset,
            skip: start - loc.offset,
            take: end - start,
        }
    }

    /// Positions a reader at the wanted bytes of this piece.
    fn open(&self) -> Result<(PieceReader, u64), BundleError> {
        if let Some((index, tar_offset)) = &self.indexed {
            return self.open_frames(index, *tar_offset);
        }
        let mut reader = VolumeReader::open(&self.volume)?;
        reader.seek_entry(&self.entry)?;
        let skipped = io::copy(
            &mut io::Read::take(reader.body(), self.skip),
            &mut io::sink(),
        )
        .map_err(|e| BundleError::Read {
            volume: self.volume.clone(),
            entry: Some(self.entry.clone()),
            source: e,
        })?;
        if skipped != self.skip {
            return Err(BundleError::Truncated {
                volume: self.volume.clone(),
                entry: Some(self.entry.clone()),
            });
        }
        Ok((PieceReader::Scan(Box::new(reader)), self.take))
    }

    /// Format 2: checks the entry's header frame, then starts at the frame holding the first
    /// wanted byte.
    fn open_frames(
        &self,
        index: &Arc<FrameIndex>,
        tar_offset: u64,
    ) -> Result<(PieceReader, u64), BundleError> {
        let read_err = |e: io::Error| super::into_bundle_error(e, &self.volume);
        let bad = |reason: String| BundleError::UnexpectedEntry {
            volume: self.volume.clone(),
            entry: self.entry.clone(),
            reason,
        };
        let open = || fs_err::File::open(&self.volume).map_err(super::io_err(&self.volume));
        let header_frame = index
            .frame_at(tar_offset)
            .filter(|&i| index.frame(i) == (tar_offset, BLOCK))
            .ok_or_else(|| {
                bad(format!(
                    "no header frame at tar offset {tar_offset}, where the descriptor places it"
                ))
            })?;
        let mut frames = FrameReader::new(open()?, index.clone(), &self.volume, header_frame)?;
        let mut block = [0u8; BLOCK as usize];
        frames.read_exact(&mut block).map_err(read_err)?;
        let header = tar::Header::from_byte_slice(&block);
        let name_ok = header.path_bytes().as_ref() == self.entry.as_bytes();
        let size = header.entry_size().ok();
        if !name_ok || size != Some(self.length) {
            return Err(bad(format!(
                "the tar header at offset {tar_offset} is `{}` of {size:?} bytes, the \
                 descriptor says {} bytes",
                String::from_utf8_lossy(&header.path_bytes()),
                self.length
            )));
        }
        let from = tar_offset + BLOCK + self.skip;
        let mut frames = match index.frame_at(from) {
            Some(i) if i > header_frame + 1 => {
                FrameReader::new(open()?, index.clone(), &self.volume, i)?
            }
            _ => frames,
        };
        let skip = from - frames.position();
        let skipped = io::copy(&mut (&mut frames).take(skip), &mut io::sink()).map_err(read_err)?;
        if skipped != skip {
            return Err(BundleError::Truncated {
                volume: self.volume.clone(),
                entry: Some(self.entry.clone()),
            });
        }
        Ok((PieceReader::Frames(Box::new(frames)), self.take))
    }
}

/// Reads one piece: by scanning (format 1) or through the seek index (format 2).
enum PieceReader {
    Scan(Box<VolumeReader>),
    Frames(Box<FrameReader<fs_err::File>>),
}

impl PieceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            PieceReader::Scan(r) => r.body().read(buf),
            PieceReader::Frames(r) => r.read(buf),
        }
    }
}

/// The bytes of a blob range, read piece by piece (see [`BundleStore::read_blob`]).
pub struct BlobReader {
    /// Pieces still to read, last first.
    pieces: Vec<Piece>,
    /// The piece being read and how many of its bytes are left.
    current: Option<(PieceReader, u64)>,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((reader, left)) = &mut self.current {
                if *left == 0 {
                    self.current = None;
                    continue;
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = reader.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "volume entry ended early",
                    ));
                }
                *left -= n as u64;
                return Ok(n);
            }
            let Some(piece) = self.pieces.pop() else {
                return Ok(0);
            };
            self.current = Some(
                piece
                    .open()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::testutil;
    use sha2::Digest as _;

    #[test]
    fn reads_whole_blobs_ranges_and_split_parts() {
        let f = testutil::fixture(300_000);
        let volumes = f.write("release.tar.zst", Some(128 << 10));
        assert!(volumes.len() > 1);
        let store = BundleStore::open(&volumes).unwrap();
        assert!(store.descriptor().blobs[&f.big].is_split());
        for (digest, entry) in &store.descriptor().blobs {
            let content = &f.content[digest];
            assert_eq!(entry.size, content.len() as u64);
            assert_eq!(store.blob_size(digest), Some(entry.size));
            let mut all = Vec::new();
            store
                .read_blob(digest, 0..u64::MAX)
                .unwrap()
                .read_to_end(&mut all)
                .unwrap();
            assert_eq!(&all, content, "{digest}");
            let len = content.len() as u64;
            let (a, b) = (len / 3, len - len / 5);
            let mut part = Vec::new();
            store
                .read_blob(digest, a..b)
                .unwrap()
                .read_to_end(&mut part)
                .unwrap();
            assert_eq!(part, content[a as usize..b as usize], "{digest} {a}..{b}");
        }
        for (digest, m) in store.manifests() {
            assert_eq!(
                Digest::from_sha256(&sha2::Sha256::digest(&m.bytes)),
                *digest
            );
            assert!(!m.media_type.is_empty());
        }
    }

    /// A format-1 bundle written by the previous release (testdata/format1, two volumes): every blob reads back whole and by ranges, by scanning.
    #[test]
    fn reads_a_format_1_bundle() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/format1");
        let volumes = vec![
            dir.join("format1.001.tar.zst"),
            dir.join("format1.002.tar.zst"),
        ];
        let store = BundleStore::open(&volumes).unwrap();
        assert_eq!(store.descriptor().format_version, 1);
        assert!(store.frame_index(1).is_none());
        for (digest, entry) in &store.descriptor().blobs {
            let mut all = Vec::new();
            store
                .read_blob(digest, 0..u64::MAX)
                .unwrap()
                .read_to_end(&mut all)
                .unwrap();
            assert_eq!(all.len() as u64, entry.size);
            assert_eq!(Digest::from_sha256(&sha2::Sha256::digest(&all)), *digest);
            let (a, b) = (entry.size / 3, entry.size - entry.size / 5);
            let mut part = Vec::new();
            store
                .read_blob(digest, a..b)
                .unwrap()
                .read_to_end(&mut part)
                .unwrap();
            assert_eq!(part, all[a as usize..b as usize], "{digest}");
        }
        assert!(crate::bundle::verify(&volumes).unwrap().is_ok());
        assert_eq!(crate::bundle::inspect(&volumes).unwrap().format_version, 1);
    }

    /// Format 2: a range read touches only the frames holding it; a descriptor offset that
    /// points elsewhere is caught at the header frame.
    #[test]
    fn format_2_ranges_read_only_their_frames() {
        let f = testutil::fixture(9 << 20);
        let volumes = f.write("release.tar.zst", Some(4 << 20));
        let store = BundleStore::open(&volumes).unwrap();
        let entry = &store.descriptor().blobs[&f.big];
        assert!(entry.is_split() && entry.volumes.len() >= 3);
        let content = &f.content[&f.big];
        // Ranges crossing part and frame boundaries.
        for loc in &entry.volumes {
            let index = store.frame_index(loc.volume).unwrap();
            assert!(index.is_frame_start(loc.tar_offset.unwrap()));
            for (a, b) in [
                (loc.offset, loc.offset + 1),
                (loc.offset + loc.length - 10, loc.offset + loc.length + 10),
                (loc.offset + 3_000_000, loc.offset + 3_000_100),
            ] {
                let (a, b) = (a.min(entry.size), b.min(entry.size));
                let mut got = Vec::new();
                store
                    .read_blob(&f.big, a..b)
                    .unwrap()
                    .read_to_end(&mut got)
                    .unwrap();
                assert_eq!(got, content[a as usize..b as usize], "{a}..{b}");
            }
        }
        // The descriptor moved to another entry: the header frame does not match.
        let mut store = store;
        let loc = &mut store.descriptor.blobs.get_mut(&f.big).unwrap().volumes[1];
        *loc.tar_offset.as_mut().unwrap() += 512;
        let at = loc.offset;
        let err = store
            .read_blob(&f.big, at..at + 1)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("header frame"), "{err}");
    }

    #[test]
    fn a_blob_in_a_volume_not_given_is_not_there() {
        let f = testutil::fixture(300_000);
        let volumes = f.write("release.tar.zst", Some(128 << 10));
        let store = BundleStore::open(&volumes[..1]).unwrap();
        assert_eq!(store.blob_size(&f.big), None);
        assert!(matches!(
            store.read_blob(&f.big, 0..u64::MAX),
            Err(BundleError::BlobNotInVolumes { .. })
        ));
        // A part in the volume given is readable on its own; one elsewhere is not.
        for l in &store.descriptor().blobs[&f.big].volumes {
            let read = store.read_blob(&f.big, l.offset..l.offset + l.length);
            if l.volume == 1 {
                let mut part = Vec::new();
                read.unwrap().read_to_end(&mut part).unwrap();
                let at = l.offset as usize;
                assert_eq!(part, f.content[&f.big][at..at + l.length as usize]);
            } else {
                assert!(matches!(read, Err(BundleError::BlobNotInVolumes { .. })));
            }
        }
    }
}
