//! The copy engine: plan, then execute.
//!
//! [`plan`] resolves every image to its manifests, walks indexes to their children, collects
//! and deduplicates blobs across all images and asks the destination what it already holds.
//! [`execute`] then moves only what is missing, under one global concurrency limit, verifying
//! every byte while it streams, and writes manifests only once everything they reference is
//! in place (children before indexes, the tag last). Resuming an interrupted run is the same
//! plan computed again: whatever already arrived is found present and skipped.

mod blob;
mod budget;
mod bundle_source;
mod create;
mod execute;
mod feed;
mod plan;
pub mod referrers;
mod resolve;
mod segments;
mod upload;
pub mod walk;
mod window;

use std::sync::Arc;
use std::time::Duration;

pub use bundle_source::BundleSource;
pub use create::{Prepared, prepare_bundle};
pub use execute::{dry_run_report, execute};
pub use plan::{Plan, PlannedBlob, PlannedImage, ReferrerOf, plan};
pub use referrers::{ReferrerMode, ReferrerPolicy};

use crate::reference::Digest;
use crate::registry::{RegistryClient, RegistryError};

/// Tuning of a run. `Default` gives the values the CLI uses when no flag is passed.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// Blobs transferred at once across all images (default 8).
    pub jobs: usize,
    /// Keep copying other images when one fails (default true).
    pub keep_going: bool,
    /// Blobs at least this large are downloaded as parallel `Range` segments (default 32 MiB).
    pub segment_threshold: u64,
    /// Size of one segment (default 8 MiB: segments waiting for their turn hold their bytes
    /// in the memory budget, so smaller ones keep more connections busy within it).
    pub segment_size: u64,
    /// Segments of one blob in flight at once (default 4); the segments ahead of their
    /// blob's head share `segment_parallelism - 1` slots across the run.
    pub segment_parallelism: usize,
    /// Bytes that segments received ahead of the one being read may hold, shared by all
    /// jobs (default 8 MiB). Segments beyond it wait; this, not `--jobs`, bounds the
    /// memory a run uses for blob data. 8 MiB keeps a sync with a 768 MiB layer under 64 MiB
    /// of peak RSS (24 MiB gave 83 MiB: glibc's malloc holds about 1.6 bytes per byte of
    /// budget, pieces of every size freed out of order) at the same speed on loopback and
    /// over the bench's long-haul link, whose total rate is the limit.
    pub memory_budget: u64,
    /// Attempts per blob (and per segment) after the first (default 4).
    pub blob_retries: u32,
    /// First backoff delay between blob attempts (default 500 ms; `AIRLIFT_RETRY_DELAY_MS`
    /// overrides it).
    pub retry_delay: Duration,
    /// Retries allowed in the whole run, across all blobs and segments (default 100).
    pub retry_budget: u64,
    /// Blobs larger than this are uploaded in `PATCH` chunks of this size, each resumable
    /// from what the registry reports after a drop; smaller ones go as one `PUT` (default
    /// 8 MiB; never less than 5 MiB, ECR's minimum part).
    pub upload_chunk_size: u64,
    /// Which signatures, attestations and SBOMs travel with their images (default: all).
    pub referrers: ReferrerPolicy,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            jobs: 8,
            keep_going: true,
            segment_threshold: 32 << 20,
            segment_size: 8 << 20,
            segment_parallelism: 4,
            memory_budget: 8 << 20,
            blob_retries: 4,
            retry_delay: Duration::from_millis(500),
            retry_budget: 100,
            upload_chunk_size: 8 << 20,
            referrers: ReferrerPolicy::default(),
        }
    }
}

/// Where images are read from. Both go through the same planner and executor: a bundle
/// answers manifest and blob requests from its volumes as a registry does from its
/// repositories.
#[derive(Clone)]
pub enum Source {
    /// Registries named by each image's source reference.
    Registry(RegistryClient),
    /// The volumes of a bundle (`bundle load`).
    Bundle(Arc<BundleSource>),
}

/// Where images are written.
#[derive(Clone)]
pub enum Sink {
    /// Registries named by each image's target reference.
    Registry(RegistryClient),
    /// A bundle being created: content goes to its staging directory, from which the volumes
    /// are written once everything is there.
    Bundle(BundleSink),
}

/// The destination side of `bundle create`: the volumes to write, opened by
/// [`prepare_bundle`] once the plan is known.
#[derive(Clone)]
pub struct BundleSink {
    /// The bundle's file (volume names derive from it).
    pub output: std::path::PathBuf,
    /// Volume size, compression.
    pub write: crate::bundle::WriteOptions,
    /// Names of the list files, recorded in the bundle.
    pub lists: Vec<String>,
    /// `REGISTRY/PREFIX` of the inventories behind `excluded`.
    pub inventoried: Vec<String>,
    /// Blobs the site already has (differential bundle): planned as present, never fetched.
    pub excluded: Arc<std::collections::BTreeMap<Digest, u64>>,
    /// Write a bundle without the list entries that cannot be fetched (recorded as missing).
    pub keep_going: bool,
    /// The volumes, once open.
    pub volumes: Arc<std::sync::OnceLock<Arc<crate::bundle::VolumeSet>>>,
}

/// Errors of the engine. Each names the image reference or blob digest concerned; the
/// underlying cause is in `source()`.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A manifest could not be fetched.
    #[error("cannot fetch manifest {reference}{}", misspelled_hint(source))]
    FetchManifest {
        /// The reference asked for.
        reference: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// A manifest could not be written.
    #[error("cannot push manifest {reference}")]
    PushManifest {
        /// The target reference.
        reference: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// The destination could not be queried.
    #[error(
        "cannot query {reference} at the destination{}",
        missing_project_hint(source)
    )]
    Query {
        /// What was asked about.
        reference: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// A manifest of a kind airlift does not copy (e.g. Docker schema 1).
    #[error("{reference}: {}", unsupported_message(media_type))]
    UnsupportedManifest {
        /// The reference.
        reference: String,
        /// Its media type.
        media_type: String,
    },
    /// A manifest that is not valid JSON of its declared kind.
    #[error("{reference}: invalid manifest {digest}: {reason}")]
    InvalidManifest {
        /// The reference.
        reference: String,
        /// Its digest.
        digest: Digest,
        /// Why.
        reason: String,
    },
    /// `--platform` selected nothing from an index.
    #[error("{reference}: no manifest for platform {wanted} (index has: {available})")]
    NoMatchingPlatform {
        /// The reference.
        reference: String,
        /// The platforms asked for.
        wanted: String,
        /// The platforms in the index.
        available: String,
    },
    /// A blob transfer failed.
    #[error("cannot copy blob {digest} from {from} to {to}")]
    Blob {
        /// The blob.
        digest: Digest,
        /// Source repository.
        from: String,
        /// Destination repository.
        to: String,
        /// Why.
        #[source]
        source: Box<TransferError>,
    },
    /// Registry failure while moving a blob.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Bundle (staging, volume) failure.
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    /// Content did not match its digest or declared size; nothing was committed.
    #[error(
        "blob {digest} from {url} failed verification: received {received} bytes with digest {actual}, expected {expected_size} bytes"
    )]
    Integrity {
        /// Expected digest.
        digest: Digest,
        /// Where it came from.
        url: String,
        /// Digest of what arrived (of the bytes received so far when the size was wrong).
        actual: Digest,
        /// Bytes received.
        received: u64,
        /// Size the manifest declares.
        expected_size: u64,
    },
    /// A blob this image needs failed (the cause is reported once, on the blob).
    #[error("blob {digest} failed: {message}")]
    DependencyFailed {
        /// The blob.
        digest: Digest,
        /// The blob's error, rendered with its causes.
        message: String,
        /// The blob failed a digest or size check.
        integrity: bool,
        /// The blob failed because the disk filled up.
        disk_full: bool,
    },
    /// Some of an image's blobs are neither at the destination nor in the volumes loaded.
    #[error(
        "{reference}: {missing} blobs missing at the destination{}{}",
        if volumes.is_empty() { String::new() } else { format!("; load volume(s) {} of the bundle", volumes.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")) },
        if at_site.is_empty() { String::new() } else { format!("; {} of them were left out of this differential bundle and must already be at the site, but {repository} lacks them and no repository of this load could lend them: {}", at_site.len(), at_site.iter().map(Digest::as_str).collect::<Vec<_>>().join(", ")) }
    )]
    Incomplete {
        /// The image.
        reference: String,
        /// How many blobs are missing.
        missing: usize,
        /// Volumes holding them.
        volumes: Vec<u32>,
        /// Those expected at the site (not in the bundle).
        at_site: Vec<Digest>,
        /// The target repository checked for them (`REGISTRY/REPOSITORY`).
        repository: String,
    },
    /// A manifest the bundle should hold is not in it.
    #[error("{reference}: manifest not in the bundle")]
    NotInBundle {
        /// The reference or digest.
        reference: String,
    },
    /// A signature, attestation or SBOM whose image could not be copied is not written.
    #[error("not written: the image it belongs to, {reference}, failed")]
    ParentFailed {
        /// The image it belongs to.
        reference: String,
    },
    /// The image's source or target registry did not answer when the run started (checked
    /// once per registry, before planning: see `registry::check_reachable`).
    #[error("{message}")]
    Unreachable {
        /// The registry.
        registry: String,
        /// One line saying why, naming the registry.
        message: String,
    },
    /// `--dry-run`: the destination repository refused to open an upload (no push right).
    #[error("cannot push to {repository}")]
    PushCheck {
        /// `REGISTRY/REPOSITORY`.
        repository: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// The run was cancelled (fail-fast after another image failed).
    #[error("cancelled after another image failed")]
    Cancelled,
}

impl TransferError {
    /// Whether this failure is about content integrity (exit code 3).
    pub fn is_integrity(&self) -> bool {
        match self {
            TransferError::Integrity { .. } => true,
            TransferError::Registry(RegistryError::DigestMismatch { .. }) => true,
            TransferError::FetchManifest { source, .. } => {
                matches!(source, RegistryError::DigestMismatch { .. })
            }
            TransferError::Blob { source, .. } => source.is_integrity(),
            TransferError::Bundle(e) => e.is_integrity(),
            TransferError::DependencyFailed { integrity, .. } => *integrity,
            _ => false,
        }
    }

    /// Whether this failure is the disk filling up (no space, or a quota): a condition of
    /// the whole run, not of one image.
    pub fn is_disk_full(&self) -> bool {
        if let TransferError::DependencyFailed { disk_full, .. } = self {
            return *disk_full;
        }
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                )
            {
                return true;
            }
            cur = e.source();
        }
        false
    }

    /// Whether this is a blob the volumes of a bundle given do not hold (the image waits for
    /// another volume, or for the site to have it).
    pub(crate) fn is_not_in_volumes(&self) -> bool {
        match self {
            TransferError::Bundle(crate::bundle::BundleError::BlobNotInVolumes { .. }) => true,
            TransferError::Blob { source, .. } => source.is_not_in_volumes(),
            _ => false,
        }
    }

    /// Whether trying the same blob again may help.
    fn is_retryable(&self) -> bool {
        match self {
            TransferError::Registry(e) => e.is_retryable(),
            // A corrupted or truncated body is worth fetching again.
            TransferError::Integrity { .. } => true,
            TransferError::Bundle(crate::bundle::BundleError::StagingMismatch { .. }) => true,
            _ => false,
        }
    }
}

/// Docker Hub and others answer an anonymous pull of a misspelled repository exactly as one
/// of a private repository: say so before the "requires authentication" that follows.
fn misspelled_hint(source: &RegistryError) -> &'static str {
    match source {
        RegistryError::Auth { kind, .. } if **kind == crate::registry::AuthFailure::Missing => {
            " (check the name: registries such as Docker Hub answer a pull of a repository \
             that does not exist as one that needs credentials)"
        }
        _ => "",
    }
}

/// A destination that grants not even pull on the repository to be written usually has no
/// such repository or project: Harbor, Quay and Docker Hub answer a missing one so (a token
/// with no access, a 403). Say so before the "ask for access" that follows.
fn missing_project_hint(source: &RegistryError) -> String {
    use crate::registry::AuthFailure;
    match source {
        RegistryError::Auth { kind, .. } => match &**kind {
            AuthFailure::InsufficientScope { repository, .. }
            | AuthFailure::Denied { repository, .. } => format!(
                " (no access at all usually means the repository or its project `{}` does not \
                 exist: create the project/repository there first)",
                repository.split('/').next().unwrap_or(repository)
            ),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// The part of `error` that concerns a whole registry and not the image (credentials it
/// rejects, a TLS problem), rendered with its causes; `None` otherwise.
pub fn registry_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<RegistryError>()
            && matches!(r, RegistryError::Auth { kind, .. } if **kind == crate::registry::AuthFailure::Rejected)
                | matches!(r, RegistryError::Tls { .. })
        {
            return Some(error_chain(r));
        }
        cur = e.source();
    }
    None
}

/// The cause of a failed blob copy, without the blob's own header ("cannot copy blob D from
/// A to B"): the registry-wide cause if there is one, else the rest of the chain. Blobs
/// failing for one reason (credentials rejected at the target, a full quota) share it.
pub fn blob_cause(error: &TransferError) -> String {
    if let Some(cause) = registry_cause(error) {
        return cause;
    }
    match error {
        TransferError::Blob { source, .. } => error_chain(&**source),
        other => error_chain(other),
    }
}

/// Renders an error with its whole `source()` chain on one line, for reports.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cur = error.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// Convenience for shared error values.
pub(crate) type SharedError = Arc<TransferError>;

/// Why a manifest of `media_type` is not copied.
fn unsupported_message(media_type: &str) -> String {
    if media_type.starts_with("application/vnd.docker.distribution.manifest.v1+") {
        format!(
            "schema 1 manifests are deprecated and not supported (`{media_type}`): push the \
             image again with a current client to convert it to schema 2"
        )
    } else {
        format!("unsupported manifest type `{media_type}`")
    }
}
