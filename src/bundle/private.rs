//! The state and staging directories are private to the user who runs airlift, and the
//! temporary files in them are created fresh: a directory is created with mode 0700 and must
//! be a real directory owned by the user and writable by no one else. Temporary files in them
//! come from [`crate::fsutil`]: a name of the writer's own, created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW`, so a link planted there (by another user of a shared machine,
//! or left behind) is never followed and nothing is written outside.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use super::{BundleError, io_err};

/// Creates `dir` (and missing parents) with mode 0700 and checks it is safe to write in.
pub(crate) fn private_dir(dir: &Path) -> Result<(), BundleError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    let refuse = |why: String| BundleError::Io {
        path: dir.to_owned(),
        source: io::Error::new(io::ErrorKind::PermissionDenied, why),
    };
    let meta = std::fs::symlink_metadata(dir).map_err(io_err(dir))?;
    if !meta.file_type().is_dir() {
        return Err(refuse(
            "is not a directory (a symbolic link?): refusing to write through it".to_owned(),
        ));
    }
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(format!(
            "is owned by uid {}, not by the current user (uid {me}): refusing to use it",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "is writable by other users (mode {:o}): make it private (chmod 700) or choose \
             another directory",
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_private_and_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state/parts");
        private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);

        // A directory that is a link is refused.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(private_dir(&link).is_err());

        // A world-writable one too.
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        assert!(private_dir(&open).is_err());
    }
}
