//! Where each source image lands on the destination: `--to REGISTRY[/PREFIX]` plus a mapping
//! mode (strip the source host, keep it, or flatten to the last path component).
//!
//! CONTRACT (filled in by the image-list work): signatures below are fixed; bodies may change.

use std::fmt;
use std::str::FromStr;

use crate::imagelist::{ListEntry, ListError, Origin};
use crate::reference::{ImageRef, Platform};

/// How a source repository path becomes a target repository path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MappingMode {
    /// `REGISTRY/PREFIX/<source repository path>` (the source host is dropped). Default.
    #[default]
    Strip,
    /// `REGISTRY/PREFIX/<source host>/<source repository path>` (Charmed Kubernetes style).
    KeepHost,
    /// `REGISTRY/PREFIX/<last path component>` (a registry "server + account" setup).
    Flatten,
}

/// A destination registry with an optional path prefix, parsed from `REGISTRY[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Registry host with optional port.
    pub registry: String,
    /// Path prefix without leading or trailing slashes; empty for none.
    pub prefix: String,
}

/// One image to copy: where it comes from, where it goes, which platforms to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageJob {
    /// Source reference (tag and/or digest).
    pub source: ImageRef,
    /// Target reference; carries the tag to write (or only a digest when the source had none).
    pub target: ImageRef,
    /// Platforms to keep from a multi-arch index; empty keeps the index whole.
    pub platforms: Vec<Platform>,
    /// Where the image was listed.
    pub origin: Origin,
}

impl FromStr for Destination {
    type Err = ListError;
    fn from_str(_s: &str) -> Result<Self, Self::Err> {
        unimplemented!("filled in by the image-list work")
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            f.write_str(&self.registry)
        } else {
            write!(f, "{}/{}", self.registry, self.prefix)
        }
    }
}

/// Maps one source reference onto the destination.
pub fn map_reference(_source: &ImageRef, _dest: &Destination, _mode: MappingMode) -> ImageRef {
    unimplemented!("filled in by the image-list work")
}

/// Resolves list entries into jobs. `dest`/`mode` come from the command line and override a
/// list's own defaults; an entry with an explicit target keeps it. Fails (naming file:line)
/// when an entry has no destination at all, and when two entries map to the same target tag
/// from different sources.
pub fn resolve(
    _entries: &[ListEntry],
    _dest: Option<&Destination>,
    _mode: Option<MappingMode>,
    _platforms: &[Platform],
) -> Result<Vec<ImageJob>, ListError> {
    unimplemented!("filled in by the image-list work")
}
