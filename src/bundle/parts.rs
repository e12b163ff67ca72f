//! Reassembling blobs split across volumes, for loading.
//!
//! Volumes are loaded one at a time (one disc in the drive), so the parts of a split blob
//! arrive in different runs. Each part is verified against its own digest and kept in
//! `<state>/parts/<hex>.part<N>`; once all are there the concatenation is verified against the
//! blob's digest and handed out as one reader.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::reference::Digest;

use super::descriptor::{BlobEntry, BlobLocation};
use super::reader::into_bundle_error;
use super::{BundleError, io_err};

/// Stores parts of split blobs and reassembles them.
#[derive(Debug, Clone)]
pub struct PartAssembler {
    dir: PathBuf,
}

/// A reassembled, verified blob: reads its parts one after the other.
pub struct AssembledBlob {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<io::BufReader<fs_err::File>>,
    size: u64,
}

impl PartAssembler {
    /// Opens (creating) the parts directory under the state directory `state`.
    pub fn open(state: &Path) -> Result<PartAssembler, BundleError> {
        let dir = state.join("parts");
        super::private::private_dir(state)?;
        super::private::private_dir(&dir)?;
        Ok(PartAssembler { dir })
    }

    /// Where part `part` of `digest` is kept.
    pub fn part_path(&self, digest: &Digest, part: u32) -> PathBuf {
        self.dir.join(format!("{}.part{part}", digest.hex()))
    }

    /// Whether part `part` of `digest` is stored.
    pub fn has_part(&self, digest: &Digest, part: u32) -> bool {
        self.part_path(digest, part).is_file()
    }

    /// Stores part `part` of blob `digest` (described by `entry`) from `data` (typically a
    /// volume [`Entry`](super::Entry)), checking its size and part digest; the part gets its
    /// final name only once verified and synced.
    pub fn store_part(
        &self,
        digest: &Digest,
        entry: &BlobEntry,
        part: u32,
        data: &mut dyn Read,
    ) -> Result<(), BundleError> {
        let loc = part_location(digest, entry, part)?;
        let target = self.part_path(digest, part);
        // A temporary file of this writer's own, created exclusively: never a file or link
        // that is already in the state directory.
        let (mut f, partial) = crate::fsutil::create_temp(&target).map_err(io_err(&target))?;
        let result = (|| {
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 << 10];
            let mut read = 0u64;
            loop {
                let n = match data.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(into_bundle_error(e, &partial)),
                };
                read += n as u64;
                if read > loc.length {
                    break;
                }
                hasher.update(&buf[..n]);
                f.write_all(&buf[..n]).map_err(io_err(&partial))?;
            }
            let actual = Digest::from_sha256(&hasher.finalize());
            if read != loc.length || Some(&actual) != loc.digest.as_ref() {
                return Err(BundleError::DigestMismatch(Box::new(super::Mismatch {
                    what: format!("part {part} of blob"),
                    digest: loc.digest.clone().unwrap_or_else(|| digest.clone()),
                    images: Vec::new(),
                    volume: partial.clone(),
                    entry: super::part_name(digest, part),
                    actual,
                    read,
                })));
            }
            f.sync_all().map_err(io_err(&partial))?;
            Ok(())
        })();
        drop(f);
        if let Err(e) = result {
            let _ = fs_err::remove_file(&partial);
            return Err(e);
        }
        fs_err::rename(&partial, &target).map_err(io_err(&target))
    }

    /// Parts of `digest` not stored yet.
    pub fn missing<'e>(&self, digest: &Digest, entry: &'e BlobEntry) -> Vec<&'e BlobLocation> {
        entry
            .volumes
            .iter()
            .filter(|l| l.part.is_none_or(|n| !self.has_part(digest, n)))
            .collect()
    }

    /// When every part is stored: verifies the concatenation against `digest` and returns a
    /// reader of it. Otherwise says which parts, in which volumes, are still needed.
    pub fn assemble(
        &self,
        digest: &Digest,
        entry: &BlobEntry,
    ) -> Result<AssembledBlob, BundleError> {
        if !entry.is_split() {
            return Err(BundleError::InvalidInput(format!(
                "blob {digest} is not split into parts"
            )));
        }
        let missing = self.missing(digest, entry);
        if !missing.is_empty() {
            let mut volumes: Vec<u32> = missing.iter().map(|l| l.volume).collect();
            volumes.dedup();
            return Err(BundleError::PartsMissing {
                digest: digest.clone(),
                missing: missing.iter().filter_map(|l| l.part).collect(),
                volumes,
            });
        }
        let files: Vec<PathBuf> = entry
            .volumes
            .iter()
            .filter_map(|l| l.part)
            .map(|n| self.part_path(digest, n))
            .collect();
        let mut hasher = Sha256::new();
        let mut whole = AssembledBlob::new(files.clone(), entry.size);
        let mut buf = vec![0u8; 256 << 10];
        let mut read = 0u64;
        loop {
            let n = whole.read(&mut buf).map_err(io_err(&self.dir))?;
            if n == 0 {
                break;
            }
            read += n as u64;
            hasher.update(&buf[..n]);
        }
        let actual = Digest::from_sha256(&hasher.finalize());
        if read != entry.size || &actual != digest {
            return Err(BundleError::DigestMismatch(Box::new(super::Mismatch {
                what: "blob reassembled from parts".into(),
                digest: digest.clone(),
                images: Vec::new(),
                volume: self.dir.clone(),
                entry: format!("{}.part*", digest.hex()),
                actual,
                read,
            })));
        }
        Ok(AssembledBlob::new(files, entry.size))
    }

    /// Deletes the stored parts of `digest` (once the blob is uploaded).
    pub fn remove(&self, digest: &Digest, entry: &BlobEntry) -> Result<(), BundleError> {
        for n in entry.volumes.iter().filter_map(|l| l.part) {
            let p = self.part_path(digest, n);
            match fs_err::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(BundleError::Io { path: p, source: e });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn part_location<'e>(
    digest: &Digest,
    entry: &'e BlobEntry,
    part: u32,
) -> Result<&'e BlobLocation, BundleError> {
    entry
        .volumes
        .iter()
        .find(|l| l.part == Some(part))
        .ok_or_else(|| BundleError::InvalidInput(format!("blob {digest} has no part {part}")))
}

impl AssembledBlob {
    fn new(files: Vec<PathBuf>, size: u64) -> Self {
        AssembledBlob {
            files: files.into_iter(),
            current: None,
            size,
        }
    }

    /// Size of the whole blob.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for AssembledBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                match self.files.next() {
                    Some(p) => self.current = Some(io::BufReader::new(fs_err::File::open(p)?)),
                    None => return Ok(0),
                }
            }
            let n = self.current.as_mut().expect("set above").read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(data: &[u8], cut: usize) -> BlobEntry {
        let loc = |part, offset: usize, bytes: &[u8], volume| BlobLocation {
            volume,
            part: Some(part),
            offset: offset as u64,
            length: bytes.len() as u64,
            digest: Some(Digest::of(bytes)),
            tar_offset: None,
        };
        BlobEntry {
            size: data.len() as u64,
            volumes: vec![loc(1, 0, &data[..cut], 2), loc(2, cut, &data[cut..], 3)],
        }
    }

    #[test]
    fn parts_are_verified_and_reassembled() {
        let tmp = tempfile::tempdir().unwrap();
        let a = PartAssembler::open(tmp.path()).unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let digest = Digest::of(&data);
        let entry = split(&data, 4000);

        // Part 2 first (volumes can be loaded in any order).
        a.store_part(&digest, &entry, 2, &mut &data[4000..])
            .unwrap();
        let err = a.assemble(&digest, &entry).err().unwrap();
        assert!(
            matches!(&err, BundleError::PartsMissing { missing, volumes, .. }
            if missing == &[1] && volumes == &[2]),
            "{err}"
        );
        assert!(err.to_string().contains(digest.as_str()), "{err}");

        // A wrong part is refused and not kept.
        let mut bad = data[..4000].to_vec();
        bad[10] ^= 1;
        assert!(
            a.store_part(&digest, &entry, 1, &mut bad.as_slice())
                .is_err()
        );
        assert!(!a.has_part(&digest, 1));
        assert!(
            a.store_part(&digest, &entry, 1, &mut &data[..3999])
                .is_err()
        );
        assert!(a.store_part(&digest, &entry, 3, &mut &data[..1]).is_err());

        a.store_part(&digest, &entry, 1, &mut &data[..4000])
            .unwrap();
        let mut whole = Vec::new();
        a.assemble(&digest, &entry)
            .unwrap()
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(whole, data);

        // A part damaged on disk after it was stored is caught on assembly.
        let p = a.part_path(&digest, 2);
        let mut stored = std::fs::read(&p).unwrap();
        stored[0] ^= 1;
        std::fs::write(&p, stored).unwrap();
        let err = a.assemble(&digest, &entry).err().unwrap();
        assert!(matches!(err, BundleError::DigestMismatch(_)), "{err}");

        a.remove(&digest, &entry).unwrap();
        assert!(!a.has_part(&digest, 1) && !a.has_part(&digest, 2));
    }
}
