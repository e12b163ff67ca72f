//! The structural check of a format-2 volume: everything `bundle verify` checks except the
//! content of blobs, read through the seek index without decompressing a blob.
//!
//! It reads the descriptor, `oci-layout`, `index.json` and every manifest in full (they are
//! small, and their digests and content are checked as usual), then checks through the index
//! that the blob entries the descriptor places in the volume tile the rest of the tar stream
//! exactly: each at its `tar_offset`, with a header frame naming it with its size, its content
//! starting a frame, the next entry right after its padding, and the end marker (all zeros)
//! as the last frame. Nothing can hide between entries, so the volume is the one the
//! descriptor describes; a blob's content is then checked against its digest by whoever reads
//! it (the engine does for every blob it copies). Cost: the index, the small entries, and one
//! 512-byte frame per blob, whatever the blob sizes.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::reference::Digest;

use super::descriptor::Descriptor;
use super::plan::{BLOCK, TAR_END, tar_entry_size};
use super::seek::{FrameIndex, FrameReader};
use super::{BundleError, EntryKind, VolumeReader, blob_name, part_name};

/// An entry the structural check found in place (its content not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Present {
    /// A manifest, read in full and verified.
    Manifest(Digest),
    /// A whole blob, in place (content not checked).
    Blob(Digest),
    /// Part `n` of a split blob, in place (content not checked).
    Part(Digest, u32),
}

/// Checks the structure of the format-2 volume at `path` (see the module documentation).
/// `Ok(None)` for a format-1 volume, which has no index: check it in full with
/// [`super::verify()`].
pub fn check_structure(path: &Path) -> Result<Option<(Descriptor, Vec<Present>)>, BundleError> {
    let (mut reader, index) = VolumeReader::open_indexed(path)?;
    let Some(index) = index else {
        return Ok(None);
    };
    let descriptor = reader.descriptor().clone();
    let mut present = Vec::new();
    // The small entries, in full, up to the first blob entry.
    let mut found_blob = false;
    while let Some(mut entry) = reader.next_entry()? {
        match entry.kind().clone() {
            EntryKind::Blob { .. } | EntryKind::BlobPart { .. } => {
                found_blob = true;
                break;
            }
            EntryKind::Manifest { digest } => {
                entry.verify()?;
                present.push(Present::Manifest(digest));
            }
            _ => entry.verify()?,
        }
    }
    let first_blob = found_blob.then(|| reader.entry_offset());
    let manifests: BTreeSet<&Digest> = present
        .iter()
        .filter_map(|p| match p {
            Present::Manifest(d) => Some(d),
            _ => None,
        })
        .collect();
    let missing: Vec<String> = descriptor
        .manifests
        .keys()
        .filter(|m| !manifests.contains(m))
        .map(blob_name)
        .collect();
    if !missing.is_empty() {
        return Err(BundleError::MissingEntries {
            volume: path.to_owned(),
            entries: missing,
        });
    }
    let Some(mut at) = first_blob else {
        // No blob: the reader saw the end marker and checked it is the last frame.
        reader.finish()?;
        return Ok(Some((descriptor, present)));
    };
    drop(reader);

    let mut locations: Vec<(u64, String, u64, Present)> = Vec::new();
    for (digest, entry) in &descriptor.blobs {
        for loc in entry
            .volumes
            .iter()
            .filter(|l| l.volume == descriptor.volume)
        {
            let (name, what) = match loc.part {
                Some(n) => (part_name(digest, n), Present::Part(digest.clone(), n)),
                None => (blob_name(digest), Present::Blob(digest.clone())),
            };
            let offset = loc.tar_offset.expect("format 2 locations have offsets");
            locations.push((offset, name, loc.length, what));
        }
    }
    locations.sort_by_key(|l| l.0);
    for (offset, name, length, what) in locations {
        let bad = |reason: String| BundleError::UnexpectedEntry {
            volume: path.to_owned(),
            entry: name.clone(),
            reason,
        };
        if offset != at {
            return Err(bad(format!(
                "the descriptor places it at tar offset {offset}, the previous entry ends at {at}"
            )));
        }
        let header = header_frame(path, &index, offset).map_err(|r| bad(r.to_string()))?;
        if header != (name.clone(), length) {
            return Err(bad(format!(
                "the header frame at tar offset {offset} is `{}` of {} bytes, the descriptor \
                 says {length} bytes",
                header.0, header.1
            )));
        }
        if length > 0 && !index.is_frame_start(offset + BLOCK) {
            return Err(bad(format!(
                "its content at tar offset {} does not start a frame",
                offset + BLOCK
            )));
        }
        at = offset + tar_entry_size(length);
        present.push(what);
    }
    // The end marker: the last frame, right after the last entry, all zeros.
    let last = index.len() - 1;
    let seek_err = |reason: String| BundleError::SeekIndex {
        volume: path.to_owned(),
        reason,
    };
    if index.frame(last) != (at, TAR_END) {
        return Err(seek_err(format!(
            "the last entry ends at tar offset {at}, but the last frame (the end marker) is at \
             {} with {} bytes",
            index.frame(last).0,
            index.frame(last).1
        )));
    }
    let file = fs_err::File::open(path).map_err(super::io_err(path))?;
    let mut end = Vec::new();
    FrameReader::new(file, index, path, last)?
        .read_to_end(&mut end)
        .map_err(|e| super::into_bundle_error(e, path))?;
    if end.iter().any(|&b| b != 0) {
        return Err(BundleError::TrailingData {
            volume: path.to_owned(),
        });
    }
    Ok(Some((descriptor, present)))
}

/// The name and size in the header frame at `offset`, which must be a 512-byte frame holding
/// a valid tar header of a regular file.
fn header_frame(
    path: &Path,
    index: &Arc<FrameIndex>,
    offset: u64,
) -> Result<(String, u64), BundleError> {
    let frame = index
        .frame_at(offset)
        .filter(|&i| index.frame(i) == (offset, BLOCK))
        .ok_or_else(|| BundleError::SeekIndex {
            volume: path.to_owned(),
            reason: format!("no 512-byte header frame at tar offset {offset}"),
        })?;
    let file = fs_err::File::open(path).map_err(super::io_err(path))?;
    let mut block = [0u8; BLOCK as usize];
    FrameReader::new(file, index.clone(), path, frame)?
        .read_exact(&mut block)
        .map_err(|e| super::into_bundle_error(e, path))?;
    let header = tar::Header::from_byte_slice(&block);
    let unsafe_entry = |reason: &str| BundleError::UnsafeEntry {
        volume: path.to_owned(),
        entry: String::from_utf8_lossy(&header.path_bytes()).into_owned(),
        reason: reason.to_owned(),
    };
    if header.cksum().ok() != Some(super::reader::checksum(&block)) {
        return Err(unsafe_entry("bad tar header checksum"));
    }
    if header.entry_type() != tar::EntryType::Regular {
        return Err(unsafe_entry("only regular files are allowed"));
    }
    let size = header
        .entry_size()
        .map_err(|_| unsafe_entry("invalid size field"))?;
    let name = std::str::from_utf8(&header.path_bytes())
        .map_err(|_| unsafe_entry("name is not valid UTF-8"))?
        .to_owned();
    Ok((name, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::testutil::{self, rewrite_volume};

    #[test]
    fn an_intact_volume_passes_and_lists_what_it_holds() {
        let f = testutil::fixture(300_000);
        let volumes = f.write("s.tar.zst", Some(128 << 10));
        let mut blobs = BTreeSet::new();
        for v in &volumes {
            let (d, present) = check_structure(v).unwrap().unwrap();
            assert_eq!(
                present
                    .iter()
                    .filter(|p| matches!(p, Present::Manifest(_)))
                    .count(),
                d.manifests.len()
            );
            for p in present {
                if let Present::Blob(b) | Present::Part(b, _) = p {
                    blobs.insert(b);
                }
            }
        }
        let d = VolumeReader::open(&volumes[0])
            .unwrap()
            .descriptor()
            .clone();
        assert_eq!(blobs, d.blobs.keys().cloned().collect());
    }

    #[test]
    fn a_format_1_volume_has_no_structure_check() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/format1");
        assert!(
            check_structure(&dir.join("format1.001.tar.zst"))
                .unwrap()
                .is_none()
        );
    }

    /// A blob's content damaged is not the structural check's business; an entry moved, a
    /// header changed or data after the end marker is.
    #[test]
    fn moved_entries_and_trailing_data_are_caught() {
        let f = testutil::fixture(10_000);
        let v = f.write("s.tar.zst", None).remove(0);
        let d = VolumeReader::open(&v).unwrap().descriptor().clone();
        let loc = d.blobs[&f.shared].volumes[0].clone();
        let content = loc.tar_offset.unwrap() as usize + 512;

        let damaged = f.dir.path().join("content.tar.zst");
        std::fs::copy(&v, &damaged).unwrap();
        rewrite_volume(&damaged, |raw| raw[content + 10] ^= 1);
        assert!(check_structure(&damaged).unwrap().is_some());

        let header = f.dir.path().join("header.tar.zst");
        std::fs::copy(&v, &header).unwrap();
        // The size field of the blob's header (offset 124), checksum left stale.
        rewrite_volume(&header, |raw| raw[content - 512 + 130] ^= 1);
        let err = check_structure(&header).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");

        let trailing = f.dir.path().join("trailing.tar.zst");
        std::fs::copy(&v, &trailing).unwrap();
        rewrite_volume(&trailing, |raw| raw.extend_from_slice(b"junk"));
        let err = check_structure(&trailing).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::SeekIndex { .. } | BundleError::TrailingData { .. }
            ),
            "{err}"
        );
    }
}
