//! The volumes of a bundle being created in one pass: planned from sizes up front, each
//! written on its own thread as the engine streams blobs in ([`BlobWriter`]), resumed from
//! `.partial` files an interrupted run left, and finished together once every blob is in.
//!
//! Finishing rewrites each descriptor in place with the digests of the parts of split blobs
//! and the bundle id (both same-length placeholders until then), appends the seek index,
//! syncs, and renames `NAME.partial` to `NAME`: a file with a final name is always complete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::reference::Digest;

use super::super::descriptor::Descriptor;
use super::super::seek::{FrameIndex, FrameReader, encode_table};
use super::super::{BundleError, VolumeReader, io_err};
use super::frames::{Start, entry_of, raw_frame};
use super::resume::{self, Kept, normalized};
use super::volume::{self, PieceMsg, PieceRx, PieceTx, VolumeJob, Written, piece_channel};
use super::{BundleContent, BundleInput, WriteOptions, padded, prepare, threads, volume_paths};

/// One piece of a blob, as the blob's writer sends it.
struct Route {
    volume: usize,
    offset: u64,
    length: u64,
    part: Option<u32>,
    /// `None` for a piece in a volume finished by an earlier run: its bytes are only hashed.
    tx: Option<PieceTx>,
}

/// A volume of the set.
enum Slot {
    /// Complete under its final name from an earlier run.
    Final,
    /// To be written after what an earlier run left ([`VolumeSet::start`]).
    Pending(Kept, Vec<Option<PieceRx>>),
    /// Being written.
    Writing(JoinHandle<Result<Written, BundleError>>),
}

/// The volumes of a bundle being written (see the module documentation).
pub struct VolumeSet {
    paths: Vec<PathBuf>,
    jobs: Arc<Vec<VolumeJob>>,
    slots: Mutex<Vec<Option<Slot>>>,
    routes: Mutex<HashMap<Digest, Vec<Route>>>,
    ranks: HashMap<Digest, usize>,
    written: HashSet<Digest>,
    parts: Mutex<BTreeMap<(Digest, u32), Digest>>,
    limit: Option<u64>,
    level: i32,
    threads: usize,
    manifests: Arc<Vec<(Digest, Vec<u8>)>>,
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// The descriptor at the start of `path` (a finished or partial volume), if it reads.
fn descriptor_of(path: &Path) -> Option<Descriptor> {
    let file = std::fs::File::open(path).ok()?;
    VolumeReader::from_reader(path, file)
        .ok()
        .map(|r| r.descriptor().clone())
}

impl VolumeSet {
    /// Plans the volumes of `input` (sizes and manifests from `content`) at `out`, keeps what
    /// an earlier run of the same plan left, and starts a writer thread per unfinished volume.
    /// The `created` time of an earlier run is kept, so resuming gives the same bytes.
    pub fn open(
        input: &BundleInput,
        content: &dyn BundleContent,
        out: &Path,
        opts: &WriteOptions,
    ) -> Result<VolumeSet, BundleError> {
        let (mut jobs, mut manifests) = prepare(content, input, opts.max_volume_size)?;
        let mut paths = volume_paths(out, jobs.len() as u32);
        let timeless = |d: &Descriptor| Descriptor {
            created: String::new(),
            ..normalized(d)
        };
        let earlier = paths
            .iter()
            .flat_map(|p| [p.clone(), partial_path(p)])
            .find_map(|p| descriptor_of(&p));
        if let Some(d) = earlier {
            let job = jobs.iter().find(|j| j.descriptor.volume == d.volume);
            if job.is_some_and(|j| timeless(&j.descriptor) == timeless(&d))
                && d.created != input.created
            {
                let input = BundleInput {
                    created: d.created.clone(),
                    ..input.clone()
                };
                (jobs, manifests) = prepare(content, &input, opts.max_volume_size)?;
                paths = volume_paths(out, jobs.len() as u32);
            }
        }

        // What each volume keeps.
        let mut kept: Vec<Option<Kept>> = Vec::with_capacity(jobs.len());
        for (job, path) in jobs.iter().zip(&paths) {
            let done = descriptor_of(path)
                .is_some_and(|d| normalized(&d) == normalized(&job.descriptor))
                && VolumeReader::open(path).is_ok();
            if done {
                kept.push(None);
                continue;
            }
            let partial = partial_path(path);
            let k = if partial.exists() {
                resume::scan(&partial, &job.entries(&manifests), &job.descriptor)?
            } else {
                Kept::default()
            };
            kept.push(Some(k));
        }
        // Where each blob's pieces are, and whether each is kept.
        let fixed = 3 + manifests.len();
        let mut pieces_of: BTreeMap<&Digest, Vec<(usize, usize, bool)>> = BTreeMap::new();
        let mut order: Vec<&Digest> = Vec::new();
        for (v, job) in jobs.iter().enumerate() {
            for (i, p) in job.pieces.iter().enumerate() {
                let here = match &kept[v] {
                    None => true,
                    Some(k) => k.entries > fixed + i,
                };
                let list = pieces_of.entry(&p.digest).or_default();
                if list.is_empty() {
                    order.push(&p.digest);
                }
                list.push((v, i, here));
            }
        }
        // A split blob is kept only whole: a volume keeping a part of one that is not written
        // everywhere is cut before that part (the last entry of its volume, or the first).
        for list in pieces_of.values() {
            if list.iter().all(|&(_, _, here)| here) {
                continue;
            }
            for &(v, i, _) in list {
                if let Some(Some(k)) = kept.get_mut(v)
                    && k.entries > fixed + i
                {
                    k.entries = fixed + i;
                }
            }
        }
        let mut written = HashSet::new();
        let mut ranks = HashMap::new();
        let mut routes: HashMap<Digest, Vec<Route>> = HashMap::new();
        let mut receivers: Vec<Vec<Option<PieceRx>>> = jobs
            .iter()
            .map(|j| (0..j.pieces.len()).map(|_| None).collect())
            .collect();
        for d in order {
            let list = &pieces_of[d];
            let whole = list.iter().all(|&(v, i, _)| match &kept[v] {
                None => true,
                Some(k) => k.entries > fixed + i,
            });
            if whole {
                written.insert(d.clone());
                continue;
            }
            ranks.insert(d.clone(), ranks.len());
            let mut r = Vec::new();
            for &(v, i, _) in list {
                let p = &jobs[v].pieces[i];
                let tx = kept[v].is_some().then(|| {
                    let (tx, rx) = piece_channel();
                    receivers[v][i] = Some(rx);
                    tx
                });
                r.push(Route {
                    volume: v,
                    offset: p.offset,
                    length: p.length,
                    part: p.part,
                    tx,
                });
            }
            r.sort_by_key(|r| r.offset);
            routes.insert(d.clone(), r);
        }

        let jobs = Arc::new(jobs);
        let manifests = Arc::new(manifests);
        let slots = kept
            .into_iter()
            .zip(receivers)
            .map(|(k, rx)| match k {
                None => Some(Slot::Final),
                Some(mut k) => {
                    k.entries = k.entries.min(k.ends.len());
                    k.start.table.truncate(k.frames_after());
                    Some(Slot::Pending(k, rx))
                }
            })
            .collect();
        Ok(VolumeSet {
            paths,
            jobs,
            slots: Mutex::new(slots),
            routes: Mutex::new(routes),
            ranks,
            written,
            parts: Mutex::new(BTreeMap::new()),
            limit: opts.max_volume_size,
            level: opts.zstd_level,
            threads: threads(opts),
            manifests,
        })
    }

    /// Starts writing: a thread per unfinished volume, which first cuts its `.partial` file
    /// after what is kept. Nothing is written before this.
    pub fn start(&self) -> Result<(), BundleError> {
        let mut slots = self.slots.lock().expect("not poisoned");
        // Each writer starts when the one before it reaches its last piece.
        let mut wait: Option<std::sync::mpsc::Receiver<()>> = None;
        let buffers = super::frames::Buffers::default();
        for (v, slot) in slots.iter_mut().enumerate() {
            let Some(Slot::Pending(..)) = slot else {
                continue;
            };
            let (next, next_wait) = std::sync::mpsc::channel();
            let turn = volume::Turn {
                wait: wait.replace(next_wait),
                next: Some(next),
                buffers: buffers.clone(),
            };
            let Some(Slot::Pending(k, rx)) = slot.take() else {
                unreachable!("checked above")
            };
            let partial = partial_path(&self.paths[v]);
            if let Some(dir) = partial.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs_err::create_dir_all(dir).map_err(io_err(dir))?;
            }
            let file = fs_err::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&partial)
                .map_err(io_err(&partial))?;
            let (jobs, manifests) = (self.jobs.clone(), self.manifests.clone());
            let (level, threads) = (self.level, self.threads);
            let handle = std::thread::Builder::new()
                .name(format!("volume-{}", v + 1))
                .spawn(move || {
                    volume::write(
                        &jobs[v],
                        &manifests,
                        partial,
                        file,
                        k.entries,
                        Start {
                            table: k.start.table,
                        },
                        rx,
                        level,
                        threads,
                        turn,
                    )
                })
                .map_err(io_err(&self.paths[v]))?;
            *slot = Some(Slot::Writing(handle));
        }
        Ok(())
    }

    /// The volume files, in order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Whether `digest` is in the volumes already (kept from an earlier run).
    pub fn is_written(&self, digest: &Digest) -> bool {
        self.written.contains(digest)
    }

    /// The blobs kept from an earlier run.
    pub fn written(&self) -> &HashSet<Digest> {
        &self.written
    }

    /// The place of `digest` among the blobs still to write, in volume order: blobs must
    /// start in this order (each volume takes its pieces in turn).
    pub fn rank(&self, digest: &Digest) -> Option<usize> {
        self.ranks.get(digest).copied()
    }

    /// The writer of blob `digest` (once: the first caller takes it). Dropping it before
    /// [`BlobWriter::finish`] succeeded stops the volumes it was to go into.
    pub fn writer(&self, digest: &Digest, size: u64) -> Result<BlobWriter, BundleError> {
        let routes = self
            .routes
            .lock()
            .expect("not poisoned")
            .remove(digest)
            .ok_or_else(|| BundleError::BlobNotInVolumes {
                digest: digest.clone(),
            })?;
        Ok(BlobWriter {
            digest: digest.clone(),
            size,
            paths: routes
                .iter()
                .map(|r| self.paths[r.volume].clone())
                .collect(),
            routes,
            hasher: Sha256::new(),
            part: None,
            received: 0,
            current: 0,
            parts: Vec::new(),
        })
    }

    /// Records the part digests a [`BlobWriter`] computed.
    pub fn record_parts(&self, parts: Vec<((Digest, u32), Digest)>) {
        self.parts.lock().expect("not poisoned").extend(parts);
    }

    /// Waits for every volume, and when all were written, finishes them (see the module
    /// documentation); returns the volume paths. After an error the `.partial` files stay for
    /// the next run to resume.
    pub fn finish(&self) -> Result<Vec<PathBuf>, BundleError> {
        // Unused writers (blobs no task took) stop their volumes now rather than never.
        self.routes.lock().expect("not poisoned").clear();
        let slots = std::mem::take(&mut *self.slots.lock().expect("not poisoned"));
        let mut done: Vec<Option<Written>> = Vec::with_capacity(slots.len());
        let mut first_error = None;
        for (v, slot) in slots.into_iter().enumerate() {
            match slot {
                Some(Slot::Writing(h)) => match h.join() {
                    Ok(Ok(w)) => done.push(Some(w)),
                    Ok(Err(e)) => {
                        // A volume whose own writing failed says more than one that stopped
                        // because a blob could not be copied.
                        let secondary =
                            |e: &BundleError| matches!(e, BundleError::PieceNotWritten { .. });
                        let better = match &first_error {
                            None => true,
                            Some(f) => secondary(f) && !secondary(&e),
                        };
                        if better {
                            first_error = Some(e);
                        }
                        done.push(None);
                    }
                    Err(_) => {
                        first_error.get_or_insert(BundleError::InvalidInput(format!(
                            "the writer of {} stopped",
                            self.paths[v].display()
                        )));
                        done.push(None);
                    }
                },
                Some(Slot::Pending(..)) => {
                    first_error.get_or_insert(BundleError::InvalidInput(format!(
                        "{} was never started",
                        self.paths[v].display()
                    )));
                    done.push(None);
                }
                _ => done.push(None),
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let parts = self.part_digests(&done)?;
        let descriptors = final_descriptors(&self.jobs, &parts);
        for (v, w) in done.into_iter().enumerate() {
            let Some(w) = w else { continue };
            let len = self.jobs[v].descriptor_bytes.len() as u64;
            finish_volume(
                &self.paths[v],
                w,
                padded(descriptors[v].to_bytes(), len),
                self.limit,
            )?;
        }
        Ok(self.paths.clone())
    }

    /// The digest of every part of every split blob: as computed while streaming, else read
    /// back from the volumes (parts kept from an earlier run).
    fn part_digests(
        &self,
        done: &[Option<Written>],
    ) -> Result<BTreeMap<(Digest, u32), Digest>, BundleError> {
        let mut parts = std::mem::take(&mut *self.parts.lock().expect("not poisoned"));
        for (v, job) in self.jobs.iter().enumerate() {
            for p in &job.pieces {
                let Some(n) = p.part else { continue };
                if parts.contains_key(&(p.digest.clone(), n)) {
                    continue;
                }
                let loc = job.descriptor.blobs[&p.digest]
                    .location(job.descriptor.volume, Some(n))
                    .and_then(|l| l.tar_offset)
                    .expect("planned pieces are described");
                let path = match &done[v] {
                    Some(_) => partial_path(&self.paths[v]),
                    None => self.paths[v].clone(),
                };
                let index = match &done[v] {
                    Some(w) => FrameIndex::from_entries(&w.table),
                    None => {
                        let (_, index) = super::super::seek::open_index(&path)?;
                        index.ok_or_else(|| BundleError::SeekIndex {
                            volume: path.clone(),
                            reason: "no seek index".into(),
                        })?
                    }
                };
                let d = hash_entry(&path, Arc::new(index), loc + 512, p.length)?;
                parts.insert((p.digest.clone(), n), d);
            }
        }
        Ok(parts)
    }
}

/// sha256 of `length` bytes at tar offset `at` of the volume at `path`.
fn hash_entry(
    path: &Path,
    index: Arc<FrameIndex>,
    at: u64,
    length: u64,
) -> Result<Digest, BundleError> {
    let frame = index.frame_at(at).ok_or_else(|| BundleError::SeekIndex {
        volume: path.to_owned(),
        reason: format!("no frame holds tar offset {at}"),
    })?;
    let skip = at - index.frame(frame).0;
    let file = fs_err::File::open(path).map_err(io_err(path))?;
    let mut r = FrameReader::new(file, index, path, frame)?;
    std::io::copy(&mut (&mut r).take(skip), &mut std::io::sink()).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = length;
    while left > 0 {
        let n = r
            .read(&mut buf[..left.min(1 << 20) as usize])
            .map_err(io_err(path))?;
        if n == 0 {
            return Err(BundleError::Truncated {
                volume: path.to_owned(),
                entry: None,
            });
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(Digest::from_sha256(&hasher.finalize()))
}

/// Each volume's descriptor with its part digests and the bundle id, derived from the content
/// so that a resumed create computes the same one.
fn final_descriptors(
    jobs: &[VolumeJob],
    parts: &BTreeMap<(Digest, u32), Digest>,
) -> Vec<Descriptor> {
    let mut descriptors: Vec<Descriptor> = jobs
        .iter()
        .map(|j| {
            let mut d = j.descriptor.clone();
            for (digest, b) in &mut d.blobs {
                for l in &mut b.volumes {
                    if let Some(n) = l.part {
                        l.digest = parts.get(&(digest.clone(), n)).cloned();
                    }
                }
            }
            d
        })
        .collect();
    let mut hasher = Sha256::new();
    hasher.update(descriptors[0].to_bytes());
    let id = hex::encode(hasher.finalize())[..32].to_owned();
    for d in &mut descriptors {
        d.bundle_id = id.clone();
    }
    descriptors
}

/// Rewrites the descriptor of a written volume, appends its seek index, syncs it and gives it
/// its final name.
fn finish_volume(
    path: &Path,
    w: Written,
    descriptor: Vec<u8>,
    limit: Option<u64>,
) -> Result<(), BundleError> {
    let partial = partial_path(path);
    let io = |e: std::io::Error| BundleError::Io {
        path: partial.clone(),
        source: e,
    };
    let Written {
        mut file,
        mut table,
        descriptor_at: (at, first),
    } = w;
    file.seek(SeekFrom::Start(at)).map_err(&io)?;
    for (i, chunk) in descriptor
        .chunks(super::super::seek::FRAME_BYTES as usize)
        .enumerate()
    {
        let frame = raw_frame(chunk).map_err(&io)?;
        let entry = &mut table[first + i];
        if frame.len() != entry.compressed as usize {
            return Err(BundleError::InvalidInput(format!(
                "{}: the descriptor changed size",
                partial.display()
            )));
        }
        entry.checksum = entry_of(&frame, entry.decompressed).checksum;
        file.write_all(&frame).map_err(&io)?;
    }
    let end: u64 = table.iter().map(|f| u64::from(f.compressed)).sum();
    file.seek(SeekFrom::Start(end)).map_err(&io)?;
    file.write_all(&encode_table(&table)).map_err(&io)?;
    let size = end + encode_table(&[]).len() as u64 + 12 * table.len() as u64;
    file.set_len(size).map_err(&io)?;
    file.sync_all().map_err(&io)?;
    if let Some(limit) = limit
        && size > limit
    {
        // The planner's bound makes this impossible; checked anyway because a volume that
        // does not fit its medium is discovered far too late.
        return Err(BundleError::InvalidInput(format!(
            "volume {} came out at {size} bytes, over the {limit} byte limit",
            path.display()
        )));
    }
    fs_err::rename(&partial, path).map_err(io_err(path))?;
    // The rename itself must survive a crash for the resume logic to be right.
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Streams one blob into the pieces the plan gave it (see [`VolumeSet::writer`]).
pub struct BlobWriter {
    digest: Digest,
    size: u64,
    routes: Vec<Route>,
    /// The volume of each route, for errors.
    paths: Vec<PathBuf>,
    hasher: Sha256,
    /// The hash of the current part, for a split blob.
    part: Option<Sha256>,
    received: u64,
    current: usize,
    parts: Vec<((Digest, u32), Digest)>,
}

/// Why a blob did not go into its volumes.
#[derive(Debug)]
pub enum WriteError {
    /// A volume stopped (its own error says why): named.
    Stopped(PathBuf),
    /// The bytes were more than, or did not match, the announced size and digest.
    Mismatch {
        /// Digest of the bytes received.
        actual: Digest,
        /// Bytes received.
        received: u64,
    },
}

impl BlobWriter {
    /// Sends the next bytes of the blob.
    pub async fn write(&mut self, mut chunk: Bytes) -> Result<(), WriteError> {
        while !chunk.is_empty() {
            let Some(route) = self.routes.get(self.current) else {
                return Err(self.mismatch(chunk.len() as u64));
            };
            let end = route.offset + route.length;
            if self.received == end {
                self.next_part();
                continue;
            }
            let n = ((end - self.received) as usize).min(chunk.len());
            let bytes = chunk.split_to(n);
            self.hasher.update(&bytes);
            if route.part.is_some() {
                self.part.get_or_insert_with(Sha256::new).update(&bytes);
            }
            if let Some(tx) = &route.tx
                && tx.send(PieceMsg::Data(bytes)).await.is_err()
            {
                return Err(WriteError::Stopped(self.paths[self.current].clone()));
            }
            self.received += n as u64;
        }
        Ok(())
    }

    /// Done with the current part: its digest is recorded, the next part is current.
    fn next_part(&mut self) {
        if let (Some(h), Some(n)) = (self.part.take(), self.routes[self.current].part) {
            self.parts
                .push(((self.digest.clone(), n), Digest::from_sha256(&h.finalize())));
        }
        self.current += 1;
    }

    fn mismatch(&self, extra: u64) -> WriteError {
        WriteError::Mismatch {
            actual: Digest::from_sha256(&self.hasher.clone().finalize()),
            received: self.received + extra,
        }
    }

    /// Forgets what was sent: the blob is read again from its start.
    pub async fn restart(&mut self) {
        let touched = self.current.min(self.routes.len().saturating_sub(1));
        for tx in self.routes[..=touched].iter().filter_map(|r| r.tx.as_ref()) {
            let _ = tx.send(PieceMsg::Restart).await;
        }
        self.hasher = Sha256::new();
        self.part = None;
        self.received = 0;
        self.current = 0;
        self.parts.clear();
    }

    /// Checks size and digest; when they hold, commits every piece and returns the digests of
    /// its parts (for [`VolumeSet::record_parts`]). When they do not, the pieces are forgotten
    /// as by [`BlobWriter::restart`].
    pub async fn finish(&mut self) -> Result<Vec<((Digest, u32), Digest)>, WriteError> {
        let actual = Digest::from_sha256(&self.hasher.clone().finalize());
        if self.received != self.size || actual != self.digest {
            let e = WriteError::Mismatch {
                actual,
                received: self.received,
            };
            self.restart().await;
            return Err(e);
        }
        while self.current < self.routes.len() {
            self.next_part();
        }
        for (i, r) in self.routes.iter().enumerate() {
            if let Some(tx) = &r.tx
                && tx.send(PieceMsg::Commit).await.is_err()
            {
                return Err(WriteError::Stopped(self.paths[i].clone()));
            }
        }
        Ok(std::mem::take(&mut self.parts))
    }
}
