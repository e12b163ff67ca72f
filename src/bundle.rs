//! Content bundles: images written to compressed files for carrying across an air gap.
//!
//! A bundle is one or more *volume* files, each a zstd-compressed tar holding an OCI image
//! layout plus `airlift-bundle.json`, the [`Descriptor`] that says what the whole bundle holds
//! and which volume holds each blob. The format is specified in `docs/bundle-format.md`; this
//! module is its only implementation.
//!
//! * [`Staging`] is the content-addressed directory a create run downloads into, so an
//!   interrupted run resumes without downloading again.
//! * [`write_bundle`] plans the volumes (splitting blobs larger than a volume) and writes them.
//! * [`VolumeReader`] streams a volume entry by entry, refusing anything unsafe or not announced
//!   by the descriptor, and verifies each entry's digest as it is read.
//! * [`verify()`] and [`inspect()`] check and summarise a set of volumes.
//! * [`PartAssembler`] reassembles blobs that were split across volumes.
//! * [`BundleStore`] reads manifests and blob ranges by digest, the bundle as a *source*, at
//!   random (format 2 through the seek index); [`check_structure`] checks a format-2 volume
//!   through its index without decompressing blob content; [`check_layout`] and [`Cursors`] let
//!   `bundle load` check a format-1 volume in one pass and then read its blobs in volume order.
//!
//! # Load side
//!
//! The reader is synchronous (`Read`), because tar and zstd are. `bundle load` is the copy
//! engine with the bundle as its source (`crate::transfer::BundleSource`): each blob is read on
//! a blocking thread and its bytes sent, in chunks, through a bounded `tokio::sync::mpsc`
//! channel to the async uploader, which checks the digest as they pass; the bound keeps memory
//! flat and lets a slow registry push back on decompression.

mod cursor;
mod descriptor;
mod inspect;
mod layout;
mod parts;
mod plan;
mod private;
mod reader;
mod sanity;
mod seek;
mod staging;
mod store;
mod structure;
#[cfg(test)]
pub(crate) mod testutil;
mod verify;
mod writer;

use std::io;
use std::path::{Path, PathBuf};

pub use cursor::Cursors;
pub use descriptor::{
    BlobEntry, BlobLocation, Descriptor, FORMAT_VERSION, ImageEntry, ManifestEntry,
    OLDEST_FORMAT_VERSION,
};
pub use inspect::{BundleSummary, ImageSummary, VolumeSummary, inspect};
pub use layout::{VolumeLayout, check_layout};
pub use parts::{AssembledBlob, PartAssembler};
pub(crate) use reader::into_bundle_error;
pub use reader::{Entry, EntryKind, VolumeReader};
pub use seek::{FRAME_BYTES, FrameIndex, FrameReader, MAX_FRAME_BYTES, MAX_FRAMES};
pub use staging::{StagedBlob, Staging, staging_key};
pub use store::{BlobReader, BundleStore, StoredManifest};
pub use structure::{Present, check_structure};
pub use verify::{
    ImageCheck, Problem, ProblemKind, VerifyReport, VolumeCheck, verify, verify_structure,
};
pub use writer::{
    BlobWriter, BundleContent, BundleImage, BundleInput, VolumeSet, WriteError, WriteOptions,
    volume_paths, write_bundle,
};

use crate::reference::Digest;

/// Name of the descriptor entry, always the first entry of a volume.
pub const DESCRIPTOR_NAME: &str = "airlift-bundle.json";
/// Name of the OCI layout marker entry.
pub const OCI_LAYOUT_NAME: &str = "oci-layout";
/// Name of the OCI index entry.
pub const INDEX_NAME: &str = "index.json";
/// Directory of blobs (and manifests) inside a volume.
pub const BLOBS_DIR: &str = "blobs/sha256/";

/// Limits on what a volume may declare, checked before anything is allocated from a declared
/// size or count (a volume may come from anyone). Documented in `docs/bundle-format.md`.
pub mod limits {
    /// Largest `airlift-bundle.json` (bytes). It is parsed as it streams, unknown fields
    /// skipped without being kept, so this bounds parsing time and the typed result.
    pub const MAX_DESCRIPTOR_BYTES: u64 = 32 << 20;
    /// Largest manifest (bytes), as registries allow.
    pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
    /// Largest `index.json` (bytes).
    pub const MAX_INDEX_BYTES: u64 = 8 << 20;
    /// Largest `oci-layout` (bytes).
    pub const MAX_OCI_LAYOUT_BYTES: u64 = 4096;
    /// Most volumes a bundle may declare.
    pub const MAX_VOLUMES: u32 = 10_000;
    /// Most images a bundle may hold.
    pub const MAX_IMAGES: usize = 100_000;
    /// Most manifests a bundle may hold.
    pub const MAX_MANIFESTS: usize = 1_000_000;
    /// Most blobs (carried plus expected at the site) a bundle may hold.
    pub const MAX_BLOBS: usize = 1_000_000;
    /// Most references (config plus layers, or index children) in one manifest.
    pub const MAX_MANIFEST_REFERENCES: usize = 10_000;
}

/// Errors of bundle creation, reading and checking. Each names the file, entry or digest
/// concerned so the message alone says where to look.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A blob was asked for that the bundle does not carry, or whose volume was not given.
    #[error("blob {digest} is not in the volumes given")]
    BlobNotInVolumes {
        /// The blob.
        digest: Digest,
    },
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading or decompressing a volume failed (zstd frame error, I/O error).
    #[error("cannot read volume {}{}: {source}", volume.display(), at_entry(entry))]
    Read {
        /// The volume file.
        volume: PathBuf,
        /// The entry being read, if any.
        entry: Option<String>,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The volume ends before its content does: the file was cut short.
    #[error("volume {} is truncated{}", volume.display(), at_entry(entry))]
    Truncated {
        /// The volume file.
        volume: PathBuf,
        /// The entry being read, if any.
        entry: Option<String>,
    },
    /// A tar entry that a bundle never contains and that could be harmful to extract.
    #[error("volume {}: refusing entry `{entry}`: {reason}", volume.display())]
    UnsafeEntry {
        /// The volume file.
        volume: PathBuf,
        /// The entry name as found.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// The entry disagrees with the descriptor (unknown blob, wrong size, wrong volume).
    #[error("volume {}: entry `{entry}`: {reason}", volume.display())]
    UnexpectedEntry {
        /// The volume file.
        volume: PathBuf,
        /// The entry name.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The same entry name appears twice in one volume.
    #[error("volume {}: duplicate entry `{entry}`", volume.display())]
    DuplicateEntry {
        /// The volume file.
        volume: PathBuf,
        /// The entry name.
        entry: String,
    },
    /// The first entry is not `airlift-bundle.json`.
    #[error(
        "volume {}: first entry is `{entry}`, expected `airlift-bundle.json` (not an airlift bundle?)",
        volume.display()
    )]
    DescriptorNotFirst {
        /// The volume file.
        volume: PathBuf,
        /// The entry found first (`<end of archive>` if none).
        entry: String,
    },
    /// `airlift-bundle.json` cannot be parsed or is inconsistent.
    #[error("volume {}: invalid airlift-bundle.json: {reason}", volume.display())]
    InvalidDescriptor {
        /// The volume file.
        volume: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The descriptor declares a format version this airlift does not read.
    #[error(
        "volume {}: bundle format version {found} is not supported (this airlift {tool} reads versions 1 to {supported}); use a newer airlift",
        volume.display(), tool = env!("CARGO_PKG_VERSION")
    )]
    UnsupportedFormat {
        /// The volume file.
        volume: PathBuf,
        /// The version found.
        found: u64,
        /// The version this build reads.
        supported: u32,
    },
    /// Content does not match its digest (boxed: the details are large and errors are rare).
    #[error("{0}")]
    DigestMismatch(Box<Mismatch>),
    /// A staged blob did not match what was announced; nothing was committed.
    #[error(
        "staged blob {digest} failed verification: expected {expected_size} bytes, got {actual_size} bytes with digest {actual}"
    )]
    StagingMismatch {
        /// The announced digest.
        digest: Digest,
        /// The announced size.
        expected_size: u64,
        /// Bytes written.
        actual_size: u64,
        /// Digest of the bytes written.
        actual: Digest,
    },
    /// A blob or manifest an image needs is not in the staging directory.
    #[error("{digest} needed by {image} is not in the staging directory {}", staging.display())]
    NotStaged {
        /// The missing digest.
        digest: Digest,
        /// The image needing it.
        image: String,
        /// The staging directory.
        staging: PathBuf,
    },
    /// The maximum volume size cannot hold even the parts repeated in every volume.
    #[error(
        "maximum volume size {limit} bytes is too small: every volume repeats {needed} bytes of descriptor, index and manifests"
    )]
    VolumeTooSmall {
        /// The limit asked for.
        limit: u64,
        /// What every volume needs at least (compressed bound).
        needed: u64,
    },
    /// A size like `4G` could not be parsed.
    #[error(
        "invalid size `{0}`: expected a number with an optional K, M, G or T suffix (binary units, e.g. 700M, 4GiB)"
    )]
    InvalidSize(String),
    /// The inputs of a bundle are inconsistent (duplicate image, manifest list empty...).
    #[error("invalid bundle input: {0}")]
    InvalidInput(String),
    /// Volumes of different bundles were given together.
    #[error(
        "volume {} belongs to bundle {found}, the other volumes to bundle {expected}",
        volume.display()
    )]
    MixedBundles {
        /// The odd volume.
        volume: PathBuf,
        /// Its bundle id.
        found: String,
        /// The bundle id of the first volume.
        expected: String,
    },
    /// Parts of a split blob are still missing.
    #[error(
        "blob {digest} is split across volumes: parts {missing:?} are still missing (in volume(s) {volumes:?})"
    )]
    PartsMissing {
        /// The blob.
        digest: Digest,
        /// Part numbers not yet stored.
        missing: Vec<u32>,
        /// Volumes holding them.
        volumes: Vec<u32>,
    },
    /// Entries the descriptor places in this volume were not found in it.
    #[error("volume {}: entries announced by the descriptor are missing: {}", volume.display(), entries.join(", "))]
    MissingEntries {
        /// The volume file.
        volume: PathBuf,
        /// The missing entry names.
        entries: Vec<String>,
    },
    /// A manifest, `index.json` or `oci-layout` is malformed or names content the bundle
    /// neither holds nor expects at the site.
    #[error("volume {}: entry `{entry}`: {reason}", volume.display())]
    InvalidContent {
        /// The volume file.
        volume: PathBuf,
        /// The entry name.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// `bundle load` refused volumes that `bundle verify` finds problems in (other than
    /// volumes not given): nothing was pushed.
    #[error(
        "the bundle fails the checks of `bundle verify`; nothing was loaded:\n  {}",
        problems.join("\n  ")
    )]
    Refused {
        /// The problems, as `bundle verify` reports them.
        problems: Vec<String>,
    },
    /// The seek index of a format-2 volume is damaged or disagrees with the frames.
    #[error("volume {}: seek index: {reason}", volume.display())]
    SeekIndex {
        /// The volume file.
        volume: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Data follows the end of the tar archive.
    #[error("volume {}: unexpected data after the end of the archive", volume.display())]
    TrailingData {
        /// The volume file.
        volume: PathBuf,
    },
    /// No volume was given.
    #[error("no bundle volume given")]
    NoVolumes,
    /// A volume being written stopped (its own error, reported separately, says why), so a
    /// blob planned in it could not be written.
    #[error("volume {} stopped being written", volume.display())]
    VolumeStopped {
        /// The volume file.
        volume: PathBuf,
    },
    /// A volume could not be finished because a blob planned in it could not be copied.
    #[error("{}: entry {entry} was not written: its blob could not be copied", volume.display())]
    PieceNotWritten {
        /// The volume file (`.partial`).
        volume: PathBuf,
        /// The entry.
        entry: String,
    },
}

/// Details of a [`BundleError::DigestMismatch`].
#[derive(Debug)]
pub struct Mismatch {
    /// "blob", "manifest" or "part 2 of blob".
    pub what: String,
    /// The expected digest (of the blob, or of the part).
    pub digest: Digest,
    /// Images using the blob.
    pub images: Vec<String>,
    /// The volume (or file) it was read from.
    pub volume: PathBuf,
    /// The entry name.
    pub entry: String,
    /// Digest of what was read.
    pub actual: Digest,
    /// Bytes read.
    pub read: u64,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}{} in volume {}{}: content is corrupt: read {} bytes with digest {}",
            self.what,
            self.digest,
            used_by(&self.images),
            self.volume.display(),
            at_entry(&Some(self.entry.clone())),
            self.read,
            self.actual
        )
    }
}

fn at_entry(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|e| format!(" (entry `{e}`)"))
        .unwrap_or_default()
}

fn used_by(images: &[String]) -> String {
    if images.is_empty() {
        String::new()
    } else {
        format!(" (used by {})", images.join(", "))
    }
}

impl BundleError {
    /// Whether this failure is about content integrity (digest or size), i.e. exit code 3.
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            BundleError::DigestMismatch(_)
                | BundleError::StagingMismatch { .. }
                | BundleError::UnexpectedEntry { .. }
                | BundleError::InvalidContent { .. }
                | BundleError::Refused { .. }
                | BundleError::Truncated { .. }
                | BundleError::SeekIndex { .. }
        )
    }
}

/// Shorthand: wraps an I/O error with the path it concerns.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Parses a size such as `4G`, `4GiB`, `700M`, `512K` or `1000000` (bytes). Units are binary
/// (K = 1024); a fraction is allowed (`4.5G`). Case does not matter.
pub fn parse_size(s: &str) -> Result<u64, BundleError> {
    let bad = || BundleError::InvalidSize(s.to_owned());
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => return Err(bad()),
    };
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let value = match num.split_once('.') {
        None => num
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1 << shift)),
        Some((int, frac)) => {
            // Exact integer arithmetic: 4.5G must be 4831838208, not a float rounding of it.
            if frac.contains('.') || frac.len() > 9 {
                return Err(bad());
            }
            let int: u64 = int.parse().map_err(|_| bad())?;
            let frac_n: u128 = frac.parse().map_err(|_| bad())?;
            let scale = 10u128.pow(frac.len() as u32);
            let whole = u128::from(int).checked_mul(1 << shift);
            whole
                .map(|w| w + (frac_n << shift) / scale)
                .and_then(|v| u64::try_from(v).ok())
        }
    };
    // A zero size is never meant: no volume can be empty.
    value.filter(|&v| v > 0).ok_or_else(bad)
}

/// What an entry name inside a volume denotes, after checking it against the allowed set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryName {
    Descriptor,
    OciLayout,
    Index,
    /// `blobs/` or `blobs/sha256/` (directories, allowed but ignored).
    Dir,
    /// `blobs/sha256/<hex>`.
    Blob(Digest),
    /// `blobs/sha256/<hex>.part<N>`.
    Part(Digest, u32),
}

/// Classifies `name`, or says why it is not allowed in a bundle.
pub(crate) fn classify_name(name: &str) -> Result<EntryName, String> {
    if name.starts_with('/') {
        return Err("absolute path".into());
    }
    if name.split('/').any(|c| c == "..") {
        return Err("path contains `..`".into());
    }
    match name {
        DESCRIPTOR_NAME => return Ok(EntryName::Descriptor),
        OCI_LAYOUT_NAME => return Ok(EntryName::OciLayout),
        INDEX_NAME => return Ok(EntryName::Index),
        "blobs" | "blobs/" | "blobs/sha256" | "blobs/sha256/" => return Ok(EntryName::Dir),
        _ => {}
    }
    let not_allowed = || {
        "not a bundle entry (allowed: airlift-bundle.json, oci-layout, index.json, \
         blobs/sha256/<64 hex>[.part<N>])"
            .to_string()
    };
    let rest = name.strip_prefix(BLOBS_DIR).ok_or_else(not_allowed)?;
    let (hex, part) = match rest.split_once(".part") {
        Some((hex, n)) => {
            // Canonical decimal only, so one part has exactly one name.
            let valid = !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && !n.starts_with('0')
                && n.len() <= 9;
            if !valid {
                return Err(not_allowed());
            }
            (hex, Some(n.parse::<u32>().map_err(|_| not_allowed())?))
        }
        None => (rest, None),
    };
    let digest: Digest = format!("sha256:{hex}").parse().map_err(|_| not_allowed())?;
    Ok(match part {
        Some(n) => EntryName::Part(digest, n),
        None => EntryName::Blob(digest),
    })
}

/// The entry name of a whole blob or manifest.
pub(crate) fn blob_name(digest: &Digest) -> String {
    format!("{BLOBS_DIR}{}", digest.hex())
}

/// The entry name of part `n` of a split blob.
pub(crate) fn part_name(digest: &Digest, n: u32) -> String {
    format!("{BLOBS_DIR}{}.part{n}", digest.hex())
}

/// The written volume files as `bundle create` lists them: path and size, and with
/// `checksum` (for `--json`) the SHA-256 of each, read back in 1 MiB chunks (memory stays
/// flat whatever the volume's size), the volumes split over one thread per core. The checksum
/// costs a read of the whole bundle (a volume's descriptor is patched when it is finished, so
/// it cannot be hashed as it is written): 0.77 s of a 2.9 s create of 706 MB here, which is
/// why it is only taken when asked for.
pub fn volume_files(
    paths: &[PathBuf],
    checksum: bool,
) -> Result<Vec<crate::report::VolumeFile>, BundleError> {
    if !checksum {
        return paths
            .iter()
            .map(|path| {
                let size = fs_err::metadata(path).map_err(io_err(path))?.len();
                Ok(crate::report::VolumeFile {
                    path: path.display().to_string(),
                    size,
                    sha256: None,
                })
            })
            .collect();
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = paths.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(per_thread)
            .map(|some| {
                scope.spawn(|| {
                    some.iter()
                        .map(|p| hashed_volume_file(p))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a hashing thread panicked"))
            .collect()
    })
}

fn hashed_volume_file(path: &Path) -> Result<crate::report::VolumeFile, BundleError> {
    use sha2::{Digest as _, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(crate::report::VolumeFile {
        path: path.display().to_string(),
        size,
        sha256: Some(hex::encode(hasher.finalize())),
    })
}

/// The current time as RFC 3339 UTC (`2026-11-21T19:20:05Z`), for `created`.
pub fn now_rfc3339() -> String {
    crate::inventory::rfc3339(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000000").unwrap(), 1_000_000);
        assert_eq!(parse_size("512K").unwrap(), 512 * 1024);
        assert_eq!(parse_size("700M").unwrap(), 700 << 20);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("4gib").unwrap(), 4 << 30);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        assert_eq!(parse_size("4.5G").unwrap(), (4 << 30) + (1 << 29));
        assert_eq!(parse_size("0.5K").unwrap(), 512);
        assert_eq!(parse_size(" 10 M ").unwrap(), 10 << 20);
        for bad in [
            "",
            "G",
            "4X",
            "4GB",
            "-1",
            "1.2.3G",
            ".5G",
            "4.G",
            "99999999999T",
            "0G",
            "0",
        ] {
            assert!(parse_size(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn entry_names() {
        let hex = "ab".repeat(32);
        assert_eq!(
            classify_name(&format!("blobs/sha256/{hex}")),
            Ok(EntryName::Blob(format!("sha256:{hex}").parse().unwrap()))
        );
        assert_eq!(
            classify_name(&format!("blobs/sha256/{hex}.part12")),
            Ok(EntryName::Part(
                format!("sha256:{hex}").parse().unwrap(),
                12
            ))
        );
        assert_eq!(classify_name("index.json"), Ok(EntryName::Index));
        assert_eq!(classify_name("blobs/"), Ok(EntryName::Dir));
        for bad in [
            "../evil",
            "/etc/passwd",
            "./index.json",
            "blobs/sha256/../../x",
            &format!("blobs/sha256/{hex}.part0"),
            &format!("blobs/sha256/{hex}.part01"),
            &format!("blobs/sha256/{hex}.partx"),
            &format!("blobs/sha256/{}", "AB".repeat(32)),
            &format!("blobs/sha512/{hex}"),
            "blobs/sha256/abc",
            "other",
        ] {
            assert!(classify_name(bad).is_err(), "{bad} allowed");
        }
        assert!(classify_name("../evil").unwrap_err().contains(".."));
        assert!(
            classify_name("/etc/passwd")
                .unwrap_err()
                .contains("absolute")
        );
    }

    #[test]
    fn volume_files_are_listed_in_order_with_their_sha256_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..7)
            .map(|i| {
                let path = dir.path().join(format!("b.{i:03}.tar.zst"));
                std::fs::write(&path, vec![i as u8; 1000 + i * (1 << 20)]).unwrap();
                path
            })
            .collect();
        let files = volume_files(&paths, true).unwrap();
        assert_eq!(files.len(), paths.len());
        for (file, path) in files.iter().zip(&paths) {
            let bytes = std::fs::read(path).unwrap();
            assert_eq!(file.path, path.display().to_string());
            assert_eq!(file.size, bytes.len() as u64);
            assert_eq!(file.sha256.as_deref(), Some(Digest::of(&bytes).hex()));
        }
        let listed = volume_files(&paths, false).unwrap();
        assert!(listed.iter().all(|f| f.sha256.is_none()));
        let sizes: Vec<u64> = listed.iter().map(|f| f.size).collect();
        assert_eq!(sizes, files.iter().map(|f| f.size).collect::<Vec<_>>());
        // A volume gone between writing and listing is an error naming it.
        std::fs::remove_file(&paths[3]).unwrap();
        let err = volume_files(&paths, true).unwrap_err().to_string();
        assert!(err.contains("b.003.tar.zst"), "{err}");
    }
}
