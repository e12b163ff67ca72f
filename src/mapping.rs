//! Where each source image lands on the destination: `--to REGISTRY[/PREFIX]` plus a mapping
//! mode (strip the source host, keep it, or flatten to the last path component).
//!
//! Resolution is checked as a whole, like list parsing: every entry without a destination and
//! every pair of entries that would overwrite each other's target tag is reported at once, and
//! nothing is copied until the plan is clean. The rules are documented in `docs/lists.md`.
//!
//! CONTRACT: the public signatures below are used by other modules and are fixed.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::imagelist::{ListEntry, ListError, Origin, Problem, TargetSpec, check_repository};
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
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |reason: String| ListError::Destination {
            input: s.to_owned(),
            reason,
        };
        let trimmed = s.trim().trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(refuse(
                "expected REGISTRY[/PREFIX], e.g. registry.example.com/mirror".to_owned(),
            ));
        }
        if trimmed.contains("://") {
            return Err(refuse(
                "give REGISTRY[/PREFIX] without a URL scheme".to_owned(),
            ));
        }
        let (registry, prefix) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        // Docker would read a hostless `mirror/foo` as a Docker Hub repository; refusing it
        // avoids pushing to Docker Hub when a private registry was meant.
        if !(registry.contains(['.', ':']) || registry == "localhost") {
            return Err(refuse(format!(
                "`{registry}` is not a registry host: the first component must contain `.` or `:` \
                 or be `localhost` (e.g. docker.io/{trimmed} for Docker Hub)"
            )));
        }
        let host_char =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
        if let Some(bad) = registry.chars().find(|c| !host_char(*c)) {
            return Err(refuse(format!(
                "registry host `{registry}` contains `{bad}`"
            )));
        }
        if !prefix.is_empty() {
            check_repository(prefix).map_err(|why| refuse(format!("prefix {why}")))?;
        }
        Ok(Destination {
            registry: registry.to_owned(),
            prefix: prefix.to_owned(),
        })
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
pub fn map_reference(source: &ImageRef, dest: &Destination, mode: MappingMode) -> ImageRef {
    let path = match mode {
        MappingMode::Strip => source.repository().to_owned(),
        MappingMode::KeepHost => format!(
            "{}/{}",
            host_component(source.registry()),
            source.repository()
        ),
        MappingMode::Flatten => source
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or(source.repository())
            .to_owned(),
    };
    ImageRef::new(
        dest.registry.clone(),
        under_prefix(&dest.prefix, &path),
        source.tag().map(str::to_owned),
        source.digest().cloned(),
    )
}

/// A registry host as a repository path component. `:` is not allowed in a path, so the port
/// separator becomes `_` (`127.0.0.1:5001` -> `127.0.0.1_5001`); host names are
/// case-insensitive and paths must be lowercase. IPv6 brackets are dropped.
fn host_component(host: &str) -> String {
    host.to_ascii_lowercase()
        .replace(['[', ']'], "")
        .replace(':', "_")
}

fn under_prefix(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_owned()
    } else {
        format!("{prefix}/{path}")
    }
}

/// Resolves list entries into jobs. `dest`/`mode` come from the command line and override a
/// list's own defaults; an entry with an explicit target keeps it. Fails (naming file:line)
/// when an entry has no destination at all, and when two entries map to the same target tag
/// from different sources.
pub fn resolve(
    entries: &[ListEntry],
    dest: Option<&Destination>,
    mode: Option<MappingMode>,
    platforms: &[Platform],
) -> Result<Vec<ImageJob>, ListError> {
    let mut jobs: Vec<ImageJob> = Vec::new();
    let mut problems = Vec::new();
    // What each target would be written as -> index in `jobs`.
    let mut written: HashMap<(String, String), usize> = HashMap::new();
    for entry in entries {
        let Some(target) = target_of(entry, dest, mode) else {
            problems.push(Problem {
                origin: entry.origin.clone(),
                message: format!(
                    "no destination for `{}`: pass --to REGISTRY[/PREFIX] or set target.registry in the list",
                    entry.source
                ),
            });
            continue;
        };
        // Two targets collide when they write the same tag (or, untagged, the same digest)
        // into the same repository, whatever digest they are pinned to.
        let key = (
            target.name(),
            target.tag().unwrap_or(target.locator()).to_owned(),
        );
        if let Some(&first) = written.get(&key) {
            let earlier = &jobs[first];
            if earlier.source != entry.source {
                problems.push(Problem {
                    origin: entry.origin.clone(),
                    message: format!(
                        "target `{target}` would receive both `{}` and `{}` (from {})",
                        entry.source, earlier.source, earlier.origin
                    ),
                });
            }
            // Same source to the same place: a repeat across lists, the first one is kept.
            continue;
        }
        written.insert(key, jobs.len());
        jobs.push(ImageJob {
            source: entry.source.clone(),
            target,
            platforms: if platforms.is_empty() {
                entry.platforms.clone()
            } else {
                platforms.to_vec()
            },
            origin: entry.origin.clone(),
        });
    }
    if problems.is_empty() {
        Ok(jobs)
    } else {
        Err(ListError::Invalid(problems))
    }
}

/// The target of one entry, or `None` when nothing says where it goes.
fn target_of(
    entry: &ListEntry,
    dest: Option<&Destination>,
    mode: Option<MappingMode>,
) -> Option<ImageRef> {
    if let Some(TargetSpec::Full(full)) = &entry.target {
        return Some(full.clone());
    }
    let list_dest;
    let dest = match (dest, &entry.defaults.registry) {
        (Some(dest), _) => dest,
        (None, Some(registry)) => {
            list_dest = Destination {
                registry: registry.clone(),
                prefix: entry.defaults.prefix.clone().unwrap_or_default(),
            };
            &list_dest
        }
        (None, None) => return None,
    };
    let source = &entry.source;
    Some(match &entry.target {
        Some(TargetSpec::Relative { repository, tag }) => {
            let (tag, digest) = match tag {
                Some(tag) => (Some(tag.clone()), None),
                None => (source.tag().map(str::to_owned), source.digest().cloned()),
            };
            ImageRef::new(
                dest.registry.clone(),
                under_prefix(&dest.prefix, repository),
                tag,
                digest,
            )
        }
        _ => map_reference(
            source,
            dest,
            mode.or(entry.defaults.mode).unwrap_or_default(),
        ),
    })
}
