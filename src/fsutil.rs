//! Files that appear whole or not at all, written safely by any number of writers at once.
//!
//! A file is written to a temporary name beside its target, synced, and renamed over the
//! target. Every writer gets its own temporary name (`<target name>.<random>.partial`),
//! created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600): nothing that is already there, a file
//! of another writer or a planted symlink, is ever opened, followed or truncated. Content
//! addressed files (blobs, manifests, parts) can therefore be written by two tasks at once:
//! both renames succeed and the target holds the same verified bytes either way.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// Suffix of every temporary file; a file with it is never complete.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Attempts at finding an unused temporary name before giving up (a collision of 64 random
/// bits means something else is creating names on purpose).
const ATTEMPTS: u32 = 8;

/// A new temporary name beside `target`.
fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(
        "{name}.{:016x}{PARTIAL_SUFFIX}",
        rand::random::<u64>()
    ))
}

fn exclusive() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_EXCL already refuses a link at the name; O_NOFOLLOW says so twice.
        opts.mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    opts
}

/// Creates a new, empty temporary file beside `target` for this writer alone.
pub fn create_temp(target: &Path) -> io::Result<(fs_err::File, PathBuf)> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let path = temp_name(target);
        match exclusive().open(&path) {
            Ok(file) => return Ok((fs_err::File::from_parts(file, &path), path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(with_path(e, &path)),
        }
    }
    Err(with_path(
        last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
        target,
    ))
}

/// [`create_temp`] for async writers.
pub async fn create_temp_async(target: &Path) -> io::Result<(fs_err::tokio::File, PathBuf)> {
    let target = target.to_owned();
    let (file, _) = tokio::task::spawn_blocking(move || create_temp(&target))
        .await
        .map_err(io::Error::other)??;
    let (file, path) = file.into_parts();
    Ok((
        fs_err::tokio::File::from_parts(tokio::fs::File::from_std(file), &path),
        path,
    ))
}

/// Writes `data` to `path` atomically: a temporary file of its own, fsync, rename. Readers
/// see the old content or the new, never a mix, whoever else writes the same path at once.
pub async fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let (mut file, tmp) = create_temp_async(path).await?;
    let written = async {
        file.write_all(data).await?;
        file.sync_all().await
    }
    .await;
    drop(file);
    match written {
        Ok(()) => fs_err::tokio::rename(&tmp, path).await.inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        }),
        Err(e) => {
            let _ = fs_err::tokio::remove_file(&tmp).await;
            Err(e)
        }
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_unique_and_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("abc");
        let (_a, pa) = create_temp(&target).unwrap();
        let (_b, pb) = create_temp(&target).unwrap();
        assert_ne!(pa, pb);
        for p in [&pa, &pb] {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(
                name.starts_with("abc.") && name.ends_with(PARTIAL_SUFFIX),
                "{name}"
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&pa).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_planted_symlink_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = exclusive().open(&link).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[tokio::test]
    async fn concurrent_atomic_writes_of_one_path_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("media-type");
        let writes = (0..32).map(|_| write_atomic(&path, b"application/json"));
        for r in futures_util::future::join_all(writes).await {
            r.unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"application/json");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
