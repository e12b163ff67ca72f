//! The staging store: a content-addressed directory that a bundle create run downloads into.
//!
//! Layout: `<dir>/blobs/sha256/<hex>` for blobs and manifests alike (as in an OCI layout) and
//! `<dir>/media-types/<hex>` holding the media type of each manifest. A blob is written to a
//! temporary file of its writer's own ([`crate::fsutil`]: `<hex>.<random>.partial`), hashed
//! while written, and renamed to `<hex>` only after its size and digest check out and it is on
//! disk, so a file with a final name is always complete and correct, an interrupted run
//! resumes by skipping what is already there, and any number of tasks may stage the same
//! content at once.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::fsutil;
use crate::reference::Digest;

use super::{BundleError, io_err};

/// The name of the default staging directory of a bundle written to `output`: the output's
/// file name (for a person looking into the cache) and a hash of its absolute path, so two
/// bundles of the same name elsewhere do not share staging while the same command run again
/// finds what it staged. The directory part is resolved (links, `..`) when it exists.
pub fn staging_key(output: &Path) -> String {
    let absolute = std::path::absolute(output).unwrap_or_else(|_| output.to_owned());
    let resolved = match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or_else(|_| absolute.clone()),
        _ => absolute.clone(),
    };
    let hash = Sha256::digest(resolved.as_os_str().as_encoded_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    let name: String = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{name}-{hex}")
}

/// A staging directory.
#[derive(Debug, Clone)]
pub struct Staging {
    dir: PathBuf,
}

/// A blob being written into staging; see [`Staging::begin_blob`].
pub struct StagedBlob {
    file: fs_err::tokio::File,
    partial: PathBuf,
    target: PathBuf,
    digest: Digest,
    expected_size: u64,
    written: u64,
    hasher: Sha256,
    /// Deletes the partial file if the blob is dropped unfinished (a cancelled task, Ctrl-C,
    /// a full disk), so abandoned bytes do not hold space.
    _guard: PartialGuard,
}

/// Removes a path on drop unless disarmed.
struct PartialGuard(Option<PathBuf>);

impl Drop for PartialGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Staging {
    /// Opens (creating if needed) the staging directory `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Staging, BundleError> {
        let dir = dir.into();
        for sub in ["", "blobs", "blobs/sha256", "media-types"] {
            super::private::private_dir(&dir.join(sub))?;
        }
        Ok(Staging { dir })
    }

    /// The staging directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the complete blob (or manifest) `digest` is stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    /// The size of `digest` if it is completely staged.
    pub fn has_blob(&self, digest: &Digest) -> Option<u64> {
        std::fs::metadata(self.blob_path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Starts writing blob `digest` of `expected_size` bytes, into a temporary file of this
    /// writer's own: another task staging the same blob at the same time is no conflict.
    pub async fn begin_blob(
        &self,
        digest: &Digest,
        expected_size: u64,
    ) -> Result<StagedBlob, BundleError> {
        let target = self.blob_path(digest);
        let (file, partial) = fsutil::create_temp_async(&target)
            .await
            .map_err(io_err(&target))?;
        Ok(StagedBlob {
            file,
            _guard: PartialGuard(Some(partial.clone())),
            partial,
            target,
            digest: digest.clone(),
            expected_size,
            written: 0,
            hasher: Sha256::new(),
        })
    }

    /// Stores a manifest (its raw bytes, whose sha256 is its digest) with its media type, and
    /// returns its digest.
    pub async fn put_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, BundleError> {
        let digest = Digest::of(bytes);
        // The media type is written first: a manifest with a final name always has one.
        let mt = self.dir.join("media-types").join(digest.hex());
        if self.manifest_media_type(&digest).as_deref() != Some(media_type) {
            fsutil::write_atomic(&mt, media_type.as_bytes())
                .await
                .map_err(io_err(&mt))?;
        }
        if self.has_blob(&digest) != Some(bytes.len() as u64) {
            let mut blob = self.begin_blob(&digest, bytes.len() as u64).await?;
            blob.write(bytes).await?;
            blob.commit().await?;
        }
        Ok(digest)
    }

    /// The media type of a staged manifest.
    pub fn manifest_media_type(&self, digest: &Digest) -> Option<String> {
        std::fs::read_to_string(self.dir.join("media-types").join(digest.hex())).ok()
    }

    /// The creation time of the bundle being staged: `now` the first time, the stored value
    /// afterwards. Descriptors include the creation time, so a resumed run must reuse it for
    /// the volumes already written to be recognised as finished.
    pub async fn pinned_created(&self, now: &str) -> Result<String, BundleError> {
        let p = self.dir.join("created");
        match fs_err::tokio::read_to_string(&p).await {
            Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            _ => {
                fsutil::write_atomic(&p, now.as_bytes())
                    .await
                    .map_err(io_err(&p))?;
                Ok(now.to_owned())
            }
        }
    }
}

impl StagedBlob {
    /// Appends bytes. Writing more than the expected size fails at once rather than filling
    /// the disk with a runaway body.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), BundleError> {
        self.written += data.len() as u64;
        if self.written > self.expected_size {
            return Err(self.mismatch());
        }
        self.hasher.update(data);
        self.file
            .write_all(data)
            .await
            .map_err(io_err(&self.partial))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn mismatch(&self) -> BundleError {
        BundleError::StagingMismatch {
            digest: self.digest.clone(),
            expected_size: self.expected_size,
            actual_size: self.written,
            actual: Digest::from_sha256(&self.hasher.clone().finalize()),
        }
    }

    /// Checks size and digest, syncs and gives the blob its final name. On a mismatch the
    /// partial file is deleted and nothing is committed. Another writer having committed the
    /// same blob first is no error: the rename replaces it with the same verified bytes.
    pub async fn commit(mut self) -> Result<PathBuf, BundleError> {
        let actual = Digest::from_sha256(&self.hasher.clone().finalize());
        if self.written != self.expected_size || actual != self.digest {
            let err = self.mismatch();
            drop(self.file);
            let _ = fs_err::tokio::remove_file(&self.partial).await;
            return Err(err);
        }
        self.file.flush().await.map_err(io_err(&self.partial))?;
        self.file.sync_all().await.map_err(io_err(&self.partial))?;
        drop(self.file);
        fs_err::tokio::rename(&self.partial, &self.target)
            .await
            .map_err(io_err(&self.target))?;
        self._guard.0 = None;
        Ok(self.target)
    }

    /// Abandons the blob, deleting the partial file.
    pub async fn abort(self) {
        drop(self.file);
        let _ = fs_err::tokio::remove_file(&self.partial).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_key_is_stable_per_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("release.tar.zst");
        let key = staging_key(&out);
        assert!(key.starts_with("release.tar.zst-"), "{key}");
        assert_eq!(key.len(), "release.tar.zst-".len() + 16);
        // The same file named another way is the same key.
        let other = dir.path().join("sub/../release.tar.zst");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(staging_key(&other), key);
        // Another directory, same file name: another key.
        let elsewhere = tempfile::tempdir().unwrap();
        assert_ne!(staging_key(&elsewhere.path().join("release.tar.zst")), key);
        // Odd characters do not reach the directory name.
        assert!(staging_key(Path::new("/x/a b\nc")).starts_with("a_b_c-"));
    }

    #[tokio::test]
    async fn commit_verifies_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let s = Staging::open(dir.path()).unwrap();
        let data = b"hello blob".repeat(100);
        let d = Digest::of(&data);
        assert_eq!(s.has_blob(&d), None);
        let mut b = s.begin_blob(&d, data.len() as u64).await.unwrap();
        b.write(&data[..10]).await.unwrap();
        // Not complete yet: only the partial exists.
        assert_eq!(s.has_blob(&d), None);
        b.write(&data[10..]).await.unwrap();
        b.commit().await.unwrap();
        assert_eq!(s.has_blob(&d), Some(data.len() as u64));
        assert_eq!(std::fs::read(s.blob_path(&d)).unwrap(), data);
    }

    #[tokio::test]
    async fn wrong_digest_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Staging::open(dir.path()).unwrap();
        let d = Digest::of(b"expected");
        let mut b = s.begin_blob(&d, 8).await.unwrap();
        b.write(b"tampered").await.unwrap();
        let err = b.commit().await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(d.as_str()), "{msg}");
        assert!(msg.contains(Digest::of(b"tampered").as_str()), "{msg}");
        assert!(msg.contains("8 bytes"), "{msg}");
        assert_eq!(s.has_blob(&d), None);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn wrong_size_fails() {
        let dir = tempfile::tempdir().unwrap();
        let s = Staging::open(dir.path()).unwrap();
        let d = Digest::of(b"abc");
        let mut b = s.begin_blob(&d, 3).await.unwrap();
        assert!(b.write(b"abcd").await.is_err());
        let mut b = s.begin_blob(&d, 3).await.unwrap();
        b.write(b"ab").await.unwrap();
        assert!(matches!(
            b.commit().await,
            Err(BundleError::StagingMismatch { actual_size: 2, .. })
        ));
        assert_eq!(s.has_blob(&d), None);
    }

    #[tokio::test]
    async fn many_writers_of_one_blob_and_manifest_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Staging::open(dir.path()).unwrap();
        let data = b"shared layer".repeat(1000);
        let d = Digest::of(&data);
        let stage = |s: Staging, data: Vec<u8>, d: Digest| async move {
            let mut b = s.begin_blob(&d, data.len() as u64).await?;
            for chunk in data.chunks(997) {
                b.write(chunk).await?;
                tokio::task::yield_now().await;
            }
            b.commit().await
        };
        let blobs = (0..16).map(|_| tokio::spawn(stage(s.clone(), data.clone(), d.clone())));
        for r in futures_util::future::join_all(blobs).await {
            r.unwrap().unwrap();
        }
        let m = br#"{"schemaVersion":2,"mediaType":"x"}"#;
        let puts = (0..16).map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.put_manifest(m, "x").await })
        });
        for r in futures_util::future::join_all(puts).await {
            r.unwrap().unwrap();
        }
        assert_eq!(std::fs::read(s.blob_path(&d)).unwrap(), data);
        assert_eq!(s.manifest_media_type(&Digest::of(m)).as_deref(), Some("x"));
        for sub in ["blobs/sha256", "media-types"] {
            for e in std::fs::read_dir(dir.path().join(sub)).unwrap() {
                let name = e.unwrap().file_name();
                assert!(
                    !name.to_string_lossy().ends_with(".partial"),
                    "{name:?} left"
                );
            }
        }
    }

    #[tokio::test]
    async fn manifests_and_created() {
        let dir = tempfile::tempdir().unwrap();
        let s = Staging::open(dir.path()).unwrap();
        let m = br#"{"schemaVersion":2}"#;
        let d = s
            .put_manifest(m, "application/vnd.oci.image.manifest.v1+json")
            .await
            .unwrap();
        assert_eq!(d, Digest::of(m));
        assert_eq!(s.has_blob(&d), Some(m.len() as u64));
        assert_eq!(
            s.manifest_media_type(&d).as_deref(),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        assert_eq!(
            s.pinned_created("2025-01-01T00:00:00Z").await.unwrap(),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            s.pinned_created("2026-01-01T00:00:00Z").await.unwrap(),
            "2025-01-01T00:00:00Z"
        );
    }
}
