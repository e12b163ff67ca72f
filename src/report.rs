//! Progress events and the final run report.
//!
//! The engine calls a [`Reporter`]; the binary decides whether that becomes progress bars, plain
//! log lines or nothing. The [`RunReport`] is what `--json` prints at the end.

use serde::Serialize;

use crate::reference::Digest;

/// Receives progress from the engine. Every method has an empty default so a front end
/// implements only what it shows. Implementations must be cheap: `on_bytes` is called for
/// every chunk.
pub trait Reporter: Send + Sync {
    /// The plan is known: how many blobs and bytes will move, how many are already present.
    fn on_plan(&self, _plan: &PlanSummary) {}
    /// The plan per image: what each image still needs moved (after `on_plan`).
    fn on_images(&self, _images: &[ImagePlan]) {}
    /// A blob transfer starts.
    fn on_blob_start(&self, _digest: &Digest, _size: u64) {}
    /// `n` more bytes of a blob arrived (may go backwards by a retry: see `on_blob_retry`).
    fn on_bytes(&self, _n: u64) {}
    /// `n` more bytes of blob `digest` arrived: [`Reporter::on_bytes`] for displays that show
    /// the run as a whole, per image for those that show images.
    fn on_blob_bytes(&self, _digest: &Digest, n: u64) {
        self.on_bytes(n);
    }
    /// A blob attempt failed and will be retried; `lost` bytes will be transferred again.
    fn on_blob_retry(&self, _digest: &Digest, _lost: u64, _error: &str) {}
    /// A blob moved otherwise than the plan counted: `copied` means its `size` bytes were
    /// copied where the plan counted a cross-repository mount (a registry that ignores or
    /// refuses mounts, or a second target registry): `size` more bytes to transfer than
    /// [`Reporter::on_plan`] said. Otherwise it was mounted where the plan counted a copy:
    /// `size` fewer.
    fn on_blob_replanned(&self, _digest: &Digest, _size: u64, _copied: bool) {}
    /// A blob is done (pushed and verified, or mounted).
    fn on_blob_done(&self, _digest: &Digest, _size: u64) {}
    /// An image is finished (successfully or not).
    fn on_image_done(&self, _image: &ImageReport) {}
    /// A free-form warning, e.g. "index digest changes because of --platform".
    fn on_warning(&self, _message: &str) {}
}

/// A reporter that shows nothing.
pub struct NoReporter;
impl Reporter for NoReporter {}

/// Totals known once planning is done.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PlanSummary {
    /// Images in the plan.
    pub images: usize,
    /// Distinct blobs to transfer.
    pub blobs_to_transfer: usize,
    /// Bytes of those blobs.
    pub bytes_to_transfer: u64,
    /// Distinct blobs already at the destination.
    pub blobs_present: usize,
    /// Bytes of those blobs.
    pub bytes_present: u64,
    /// Manifests (including index children) to write.
    pub manifests: usize,
    /// Signatures, attestations and SBOMs found for the images (planned besides `images`).
    pub referrers: usize,
}

/// What one image of the plan still needs moved, for per-image progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlan {
    /// Source reference (as [`ImageReport::source`]).
    pub source: String,
    /// Target reference (as [`ImageReport::target`]).
    pub target: String,
    /// The blobs to move for it (shared blobs are listed by every image needing them).
    pub blobs: Vec<(Digest, u64)>,
}

/// Outcome of one image.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// Copied this run: its manifests were written at the destination.
    Copied,
    /// The destination already held it at this digest: nothing was written.
    AlreadyPresent,
    /// `bundle load` of some volumes only: it needs volumes not given yet (see
    /// `pending_volumes`). Not a failure: loading those volumes completes it.
    Pending,
    /// Failed; see `error`.
    Failed,
    /// Planned only (`--dry-run`).
    Planned,
}

impl ImageStatus {
    /// Whether the image is at the destination now (copied or already present).
    pub fn is_complete(self) -> bool {
        matches!(self, ImageStatus::Copied | ImageStatus::AlreadyPresent)
    }
}

/// One image in the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImageReport {
    /// Source reference as listed (normalised).
    pub source: String,
    /// Target reference written.
    pub target: String,
    /// Manifest digest written at the target (the source's unless platforms were filtered).
    pub digest: Option<Digest>,
    /// Source manifest digest.
    pub source_digest: Option<Digest>,
    /// Outcome.
    pub status: ImageStatus,
    /// Error message with its causes, when failed.
    pub error: Option<String>,
    /// Volumes of the bundle still to load for this image, when pending.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_volumes: Vec<u32>,
    /// `file:line` of the list entry.
    pub origin: String,
    /// For a signature, attestation or SBOM: the source of the image it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_of: Option<String>,
    /// For a referrer: its artifact type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The failure was a digest or size mismatch (exit code 3).
    #[serde(skip)]
    pub integrity_error: bool,
    /// The failure was the disk filling up: the run stops, nothing more is worth trying.
    #[serde(skip)]
    pub disk_full: bool,
    /// A cause of the whole registry rather than of this image (credentials rejected, a TLS
    /// problem), so that images failing for it are shown together.
    #[serde(skip)]
    pub cause: Option<String>,
    /// The blobs of this image that failed, each with its cause (what follows "cannot copy
    /// blob D from A to B", or the registry-wide cause), so that a summary can say "24
    /// blobs: CAUSE" once. The JSON report keeps the image's `error`.
    #[serde(skip)]
    pub failed_blobs: Vec<(Digest, String)>,
}

/// A list entry a partial bundle does not carry (`bundle create --keep-going` could not
/// fetch it). Recorded in the bundle, shown by `bundle inspect` and reported by `bundle load`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MissingImage {
    /// The reference as listed.
    pub source: String,
    /// `file:line` of the list entry.
    pub origin: String,
    /// Why it could not be fetched.
    pub error: String,
}

/// The whole run, printed by `--json`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RunReport {
    /// Per-image outcomes, in list order.
    pub images: Vec<ImageReport>,
    /// Blobs copied (or mounted) this run.
    pub blobs_transferred: usize,
    /// Blobs that were already at the destination (or mounted there from another of its
    /// repositories), whose bytes were not transferred.
    pub blobs_skipped: usize,
    /// Bytes downloaded from the source and written to the destination this run.
    pub bytes_transferred: u64,
    /// Bytes of the skipped blobs.
    pub bytes_skipped: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// `bundle load` of a partial bundle: the list entries the bundle does not carry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_from_bundle: Vec<MissingImage>,
    /// `bundle create`: the volume files written, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeFile>,
}

/// A volume file written by `bundle create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeFile {
    /// Its path, as given with `-o` (numbered when there are several).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of the file, hex (as `sha256sum` prints it); taken for `--json` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl RunReport {
    /// Number of images with this status.
    pub fn count(&self, status: ImageStatus) -> usize {
        self.images.iter().filter(|i| i.status == status).count()
    }

    /// Number of failed images.
    pub fn failed(&self) -> usize {
        self.count(ImageStatus::Failed)
    }

    /// Every volume some pending image still waits for, ascending.
    pub fn pending_volumes(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .images
            .iter()
            .flat_map(|i| i.pending_volumes.iter().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Volume numbers as a person reads them: `2, 3, 5`.
pub fn volume_list(volumes: &[u32]) -> String {
    volumes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
