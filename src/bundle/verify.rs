//! `bundle verify`: stream every volume given, check every digest and size, and check that
//! every image is complete across the set.
//!
//! Problems are collected rather than returned as the first error, so one run reports every
//! corrupt blob of every volume; the CLI prints them and exits with code 3.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::reference::Digest;

use super::descriptor::Descriptor;
use super::reader::into_bundle_error;
use super::{BundleError, EntryKind, Present, VolumeReader};

/// What kind of problem verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The volume cannot be opened or read to its end (truncated, not a bundle, I/O error).
    Unreadable,
    /// The volume holds an entry a bundle never contains (link, device, `..`).
    Unsafe,
    /// Content does not match its digest or size.
    Corrupt,
    /// An image lacks content because a volume holding it was not given.
    Incomplete,
    /// Volumes disagree (different bundles, different descriptors, given twice).
    Inconsistent,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Its kind.
    pub kind: ProblemKind,
    /// The volume file concerned, if one.
    pub volume: Option<PathBuf>,
    /// The blob or manifest concerned, if one.
    pub digest: Option<Digest>,
    /// Images affected.
    pub images: Vec<String>,
    /// A complete sentence for humans.
    pub message: String,
}

/// What was checked in one volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeCheck {
    /// The file.
    pub path: PathBuf,
    /// Its volume number, if its descriptor could be read.
    pub volume: Option<u32>,
    /// Entries read.
    pub entries: usize,
    /// Content bytes read.
    pub bytes: u64,
    /// No problem found in it.
    pub ok: bool,
}

/// Whether one image is complete and intact in the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageCheck {
    /// Its source reference.
    pub source: String,
    /// Every manifest and blob was found and verified (blobs expected at the site aside).
    pub complete: bool,
    /// How many of its blobs a differential bundle expects at the site instead of carrying.
    pub site_blobs: usize,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The bundle id of the volumes.
    pub bundle_id: Option<String>,
    /// Volume count the bundle declares.
    pub volume_count: Option<u32>,
    /// Per volume given.
    pub volumes: Vec<VolumeCheck>,
    /// Per image of the bundle.
    pub images: Vec<ImageCheck>,
    /// Blobs the bundle expects at the site (a differential bundle's `excluded_blobs`): not
    /// checked, not a problem, but needed by `bundle load`.
    pub site_blobs: Vec<Digest>,
    /// Everything wrong; empty when the set is good.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Turns an error into a problem, keeping its digest and images when it has them.
fn problem(e: BundleError, volume: &std::path::Path) -> Problem {
    let (kind, digest, images) = match &e {
        BundleError::DigestMismatch(m) => (
            ProblemKind::Corrupt,
            Some(m.digest.clone()),
            m.images.clone(),
        ),
        BundleError::UnexpectedEntry { .. }
        | BundleError::MissingEntries { .. }
        | BundleError::InvalidContent { .. } => (ProblemKind::Corrupt, None, Vec::new()),
        BundleError::UnsafeEntry { .. } | BundleError::DuplicateEntry { .. } => {
            (ProblemKind::Unsafe, None, Vec::new())
        }
        _ => (ProblemKind::Unreadable, None, Vec::new()),
    };
    Problem {
        kind,
        volume: Some(volume.to_owned()),
        digest,
        images,
        message: crate::transfer::error_chain(&e),
    }
}

/// A blob whose parts are being hashed together, in order, across volumes.
struct Reassembly {
    next: u32,
    hasher: Sha256,
}

/// Verifies the volumes at `paths`: every entry's digest and size, that they all belong to
/// one bundle, and that every image is complete across the set (split blobs are hashed part
/// by part and, when their parts are read in order, as a whole). Fails only when `paths` is
/// empty; everything else is a [`Problem`] in the report.
pub fn verify(paths: &[PathBuf]) -> Result<VerifyReport, BundleError> {
    verify_with(paths, false)
}

/// [`verify`] without reading blob content where the format allows: a format-2 volume is
/// checked by [`super::check_structure`] (seek index, small entries in full, every blob entry
/// in place), and its blobs count as present without their digests being checked; a format-1
/// volume is read in full as by [`verify`]. For a loader that checks every blob against its
/// digest as it reads it: the same volumes are refused, minus corrupt blob content.
pub fn verify_structure(paths: &[PathBuf]) -> Result<VerifyReport, BundleError> {
    verify_with(paths, true)
}

fn verify_with(paths: &[PathBuf], structure_only: bool) -> Result<VerifyReport, BundleError> {
    if paths.is_empty() {
        return Err(BundleError::NoVolumes);
    }
    let mut report = VerifyReport {
        bundle_id: None,
        volume_count: None,
        volumes: Vec::new(),
        images: Vec::new(),
        site_blobs: Vec::new(),
        problems: Vec::new(),
    };
    // Read every descriptor first: they say which bundle this is and in which order to read.
    // Each volume is closed again (only its number kept) and reopened in order below, so
    // memory does not grow with the number of volumes.
    let mut readers: Vec<(u32, PathBuf)> = Vec::new();
    let mut reference: Option<Descriptor> = None;
    for path in paths {
        let check = |volume, ok| VolumeCheck {
            path: path.clone(),
            volume,
            entries: 0,
            bytes: 0,
            ok,
        };
        let reader = match VolumeReader::open(path) {
            Ok(r) => r,
            Err(e) => {
                report.problems.push(problem(e, path));
                report.volumes.push(check(None, false));
                continue;
            }
        };
        let d = reader.descriptor();
        let inconsistent = |message: String| Problem {
            kind: ProblemKind::Inconsistent,
            volume: Some(path.clone()),
            digest: None,
            images: Vec::new(),
            message,
        };
        if let Some(r) = &reference {
            let found = problem_with_reference(r, d, path);
            if let Some(message) = found {
                report.problems.push(inconsistent(message));
                report.volumes.push(check(Some(d.volume), false));
                continue;
            }
            if readers.iter().any(|(v, _)| *v == d.volume) {
                report.problems.push(inconsistent(format!(
                    "volume {} ({}) was given twice",
                    d.volume,
                    path.display()
                )));
                report.volumes.push(check(Some(d.volume), false));
                continue;
            }
        } else {
            reference = Some(d.clone());
        }
        readers.push((d.volume, path.clone()));
    }
    let Some(reference) = reference else {
        return Ok(report);
    };
    report.bundle_id = Some(reference.bundle_id.clone());
    report.volume_count = Some(reference.volume_count);
    report.site_blobs = reference.excluded_blobs.keys().cloned().collect();
    readers.sort_by_key(|(v, _)| *v);

    let mut verified: BTreeSet<Digest> = BTreeSet::new();
    let mut parts: BTreeSet<(Digest, u32)> = BTreeSet::new();
    let mut reassembly: HashMap<Digest, Reassembly> = HashMap::new();
    for (volume, path) in readers {
        let before = report.problems.len();
        if structure_only {
            let check = |entries, ok| VolumeCheck {
                path: path.clone(),
                volume: Some(volume),
                entries,
                bytes: 0,
                ok,
            };
            match super::check_structure(&path) {
                Ok(Some((_, present))) => {
                    report.volumes.push(check(present.len(), true));
                    for p in present {
                        match p {
                            Present::Manifest(d) | Present::Blob(d) => {
                                verified.insert(d);
                            }
                            Present::Part(d, n) => {
                                parts.insert((d, n));
                            }
                        }
                    }
                    continue;
                }
                // Format 1: no index, read in full below.
                Ok(None) => {}
                Err(e) => {
                    report.problems.push(problem(e, &path));
                    report.volumes.push(check(0, false));
                    continue;
                }
            }
        }
        let reader = match VolumeReader::open(&path) {
            Ok(r) => r,
            Err(e) => {
                report.problems.push(problem(e, &path));
                report.volumes.push(VolumeCheck {
                    path,
                    volume: Some(volume),
                    entries: 0,
                    bytes: 0,
                    ok: false,
                });
                continue;
            }
        };
        let (entries, bytes) = check_volume(
            reader,
            &mut verified,
            &mut parts,
            &mut reassembly,
            &mut report.problems,
        );
        let ok = report.problems.len() == before;
        report.volumes.push(VolumeCheck {
            path,
            volume: Some(volume),
            entries,
            bytes,
            ok,
        });
    }

    // Split blobs: all parts verified one by one; if read in order, the whole is checked too.
    for (digest, entry) in reference.blobs.iter().filter(|(_, e)| e.is_split()) {
        let count = entry.volumes.len() as u32;
        if !(1..=count).all(|n| parts.contains(&(digest.clone(), n))) {
            continue;
        }
        match reassembly.remove(digest) {
            Some(r) if r.next == count + 1 => {
                let actual = Digest::from_sha256(&r.hasher.finalize());
                if &actual == digest {
                    verified.insert(digest.clone());
                } else {
                    report.problems.push(Problem {
                        kind: ProblemKind::Corrupt,
                        volume: None,
                        digest: Some(digest.clone()),
                        images: reference.images_using(digest),
                        message: format!(
                            "blob {digest} reassembled from its {count} parts has digest {actual}"
                        ),
                    });
                }
            }
            // Parts were each verified against their own digests, which the writer took from
            // the verified whole.
            _ => {
                verified.insert(digest.clone());
            }
        }
    }

    let given: BTreeSet<u32> = report.volumes.iter().filter_map(|v| v.volume).collect();
    for image in &reference.images {
        let mut missing: Vec<String> = Vec::new();
        let mut needed: BTreeSet<u32> = BTreeSet::new();
        for m in image.manifests.iter().filter(|m| !verified.contains(*m)) {
            missing.push(format!("manifest {m}"));
        }
        let site = reference.site_blobs_of(image).len();
        for b in image
            .blobs
            .iter()
            .filter(|b| !verified.contains(*b) && !reference.excluded_blobs.contains_key(*b))
        {
            let vols = reference.blobs[b].volume_numbers();
            needed.extend(vols.iter().filter(|v| !given.contains(v)));
            missing.push(format!("blob {b} (volume(s) {vols:?})"));
        }
        let complete = missing.is_empty();
        if !complete {
            let hint = if needed.is_empty() {
                String::new()
            } else {
                format!("; volume(s) {needed:?} not given")
            };
            report.problems.push(Problem {
                kind: if needed.is_empty() {
                    ProblemKind::Corrupt
                } else {
                    ProblemKind::Incomplete
                },
                volume: None,
                digest: None,
                images: vec![image.source.clone()],
                message: format!(
                    "image {} is incomplete: {} not verified{hint}",
                    image.source,
                    missing.join(", ")
                ),
            });
        }
        report.images.push(ImageCheck {
            source: image.source.clone(),
            complete,
            site_blobs: site,
        });
    }
    Ok(report)
}

/// Why a volume's descriptor does not belong with the reference one, if it does not.
fn problem_with_reference(
    reference: &Descriptor,
    d: &Descriptor,
    path: &std::path::Path,
) -> Option<String> {
    if d.bundle_id != reference.bundle_id {
        return Some(
            BundleError::MixedBundles {
                volume: path.to_owned(),
                found: d.bundle_id.clone(),
                expected: reference.bundle_id.clone(),
            }
            .to_string(),
        );
    }
    let same = Descriptor {
        volume: reference.volume,
        ..d.clone()
    };
    (same != *reference).then(|| {
        format!(
            "{}: descriptor differs from the other volumes' although the bundle id is the same",
            path.display()
        )
    })
}

/// Reads one volume to its end, recording what verified and every problem.
fn check_volume(
    mut reader: VolumeReader,
    verified: &mut BTreeSet<Digest>,
    parts: &mut BTreeSet<(Digest, u32)>,
    reassembly: &mut HashMap<Digest, Reassembly>,
    problems: &mut Vec<Problem>,
) -> (usize, u64) {
    let path = reader.path().to_owned();
    let (mut entries, mut bytes) = (0usize, 0u64);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let mut entry = match reader.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                problems.push(problem(e, &path));
                return (entries, bytes);
            }
        };
        entries += 1;
        let kind = entry.kind().clone();
        // Feed a split blob's running hash only with the part that comes next.
        let mut whole = match &kind {
            EntryKind::BlobPart { digest, part } => {
                let r = reassembly
                    .entry(digest.clone())
                    .or_insert_with(|| Reassembly {
                        next: 1,
                        hasher: Sha256::new(),
                    });
                (r.next == *part).then_some(r)
            }
            _ => None,
        };
        let result = loop {
            match entry.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    bytes += n as u64;
                    if let Some(r) = whole.as_mut() {
                        r.hasher.update(&buf[..n]);
                    }
                }
                Err(e) => break Err(into_bundle_error(e, &path)),
            }
        };
        match (result, kind) {
            (Ok(()), EntryKind::Manifest { digest } | EntryKind::Blob { digest }) => {
                verified.insert(digest);
            }
            (Ok(()), EntryKind::BlobPart { digest, part }) => {
                if let Some(r) = whole {
                    r.next += 1;
                }
                parts.insert((digest, part));
            }
            (Ok(()), _) => {}
            (Err(e @ BundleError::DigestMismatch(_)), kind) => {
                // The stream is still in step (the whole entry was read): keep going.
                if let EntryKind::BlobPart { digest, .. } = &kind {
                    reassembly.remove(digest);
                }
                let mut p = problem(e, &path);
                if let EntryKind::BlobPart { digest, .. } = kind {
                    p.digest = Some(digest);
                }
                problems.push(p);
            }
            (Err(e), _) => {
                problems.push(problem(e, &path));
                return (entries, bytes);
            }
        }
    }
    if let Err(e) = reader.finish() {
        problems.push(problem(e, &path));
    }
    (entries, bytes)
}

#[cfg(test)]
mod tests;
