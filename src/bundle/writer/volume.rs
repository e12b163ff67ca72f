//! One volume being written, on a thread of its own: the fixed entries from memory, then each
//! planned piece as the engine streams it in (see [`PieceMsg`]), then the end marker. The seek
//! index is written later, by [`super::set::VolumeSet::finish`], once the descriptor's part
//! digests are known.
//!
//! An entry counts as written only when its last frame is: a piece's last frame is held back
//! until the piece is committed (its blob's digest checked), so a volume cut short by a kill
//! ends, after its last complete entry, only in frames that resuming throws away.

use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};

use crate::reference::Digest;

use super::super::descriptor::Descriptor;
use super::super::plan::{Piece, TAR_END};
use super::super::seek::{FRAME_BYTES, FrameEntry};
use super::super::{
    BundleError, DESCRIPTOR_NAME, INDEX_NAME, OCI_LAYOUT_NAME, blob_name, part_name,
};
use super::frames::{self, FrameSink, Start};
use super::writeback::Writeback;
use super::{OCI_LAYOUT, header};

/// What the engine sends for one piece.
#[derive(Debug)]
pub(crate) enum PieceMsg {
    /// The next bytes of the piece.
    Data(Bytes),
    /// Forget the bytes sent so far: the blob is being fetched again.
    Restart,
    /// All bytes were sent and the blob matches its digest.
    Commit,
}

/// Bytes a piece's channel holds before its sender waits. Bounded in bytes, not in messages:
/// network chunks range from a few KiB to hundreds, and every blob admitted but not yet
/// written (up to `--jobs`) holds this much.
const PIECE_BUFFER: usize = 256 << 10;

/// The sending side of a piece's channel (see [`piece_channel`]).
pub(crate) struct PieceTx {
    tx: mpsc::Sender<PieceMsg>,
    room: Arc<Semaphore>,
}

/// The receiving side of a piece's channel; dropping it makes every send fail.
pub(crate) struct PieceRx {
    rx: mpsc::Receiver<PieceMsg>,
    room: Arc<Semaphore>,
}

/// A channel for one piece: messages in order, at most [`PIECE_BUFFER`] bytes of data queued.
pub(crate) fn piece_channel() -> (PieceTx, PieceRx) {
    let (tx, rx) = mpsc::channel(1024);
    let room = Arc::new(Semaphore::new(PIECE_BUFFER));
    (
        PieceTx {
            tx,
            room: room.clone(),
        },
        PieceRx { rx, room },
    )
}

fn cost(msg: &PieceMsg) -> u32 {
    match msg {
        PieceMsg::Data(b) => b.len().min(PIECE_BUFFER) as u32,
        _ => 0,
    }
}

impl PieceTx {
    /// Sends `msg` once there is room; `Err` when the volume's writer is gone.
    pub(crate) async fn send(&self, msg: PieceMsg) -> Result<(), ()> {
        let n = cost(&msg);
        if n > 0 {
            self.room.acquire_many(n).await.map_err(drop)?.forget();
        }
        self.tx.send(msg).await.map_err(drop)
    }
}

impl PieceRx {
    fn blocking_recv(&mut self) -> Option<PieceMsg> {
        let msg = self.rx.blocking_recv()?;
        self.room.add_permits(cost(&msg) as usize);
        Some(msg)
    }
}

impl Drop for PieceRx {
    fn drop(&mut self) {
        // A sender waiting for room must not wait forever.
        self.room.close();
    }
}

/// A volume to write: its descriptor and what goes in it.
#[derive(Debug)]
pub(crate) struct VolumeJob {
    /// The descriptor, with placeholder part digests and bundle id.
    pub descriptor: Descriptor,
    /// The descriptor as first written (padded); rewritten in place at the end.
    pub descriptor_bytes: Vec<u8>,
    /// Blobs and parts, in volume order.
    pub pieces: Vec<Piece>,
    /// `index.json` as written (padded).
    pub index: Vec<u8>,
}

impl VolumeJob {
    /// Every entry of the volume in order, with its content where it is fixed.
    pub(crate) fn entries<'a>(&'a self, manifests: &'a [(Digest, Vec<u8>)]) -> Vec<Entry<'a>> {
        let mut out = vec![
            Entry::fixed(DESCRIPTOR_NAME.to_owned(), &self.descriptor_bytes, true),
            Entry::fixed(OCI_LAYOUT_NAME.to_owned(), OCI_LAYOUT, false),
            Entry::fixed(INDEX_NAME.to_owned(), &self.index, false),
        ];
        out.extend(
            manifests
                .iter()
                .map(|(d, bytes)| Entry::fixed(blob_name(d), bytes, false)),
        );
        out.extend(self.pieces.iter().enumerate().map(|(i, p)| {
            let name = match p.part {
                None => blob_name(&p.digest),
                Some(n) => part_name(&p.digest, n),
            };
            Entry {
                name,
                size: p.length,
                content: Content::Piece(i),
            }
        }));
        out
    }
}

/// One tar entry of a volume.
pub(crate) struct Entry<'a> {
    pub name: String,
    pub size: u64,
    pub content: Content<'a>,
}

/// Where an entry's bytes come from.
pub(crate) enum Content<'a> {
    /// Known now; `raw` for the descriptor (written as raw frames, rewritten at the end).
    Fixed { bytes: &'a [u8], raw: bool },
    /// Piece number N of the volume, streamed in.
    Piece(usize),
}

impl<'a> Entry<'a> {
    fn fixed(name: String, bytes: &'a [u8], raw: bool) -> Self {
        Entry {
            name,
            size: bytes.len() as u64,
            content: Content::Fixed { bytes, raw },
        }
    }
}

/// A volume whose entries are all written, seek index still to come.
pub(crate) struct Written {
    /// The `.partial` file, positioned at its end.
    pub file: fs_err::File,
    /// Its frames so far.
    pub table: Vec<FrameEntry>,
    /// File offset of the descriptor's first raw frame, and that frame's table index.
    pub descriptor_at: (u64, usize),
}

/// When a volume writer may start, and how it lets the next one start: volumes are written
/// about one at a time (their blobs arrive in volume order), so a writer starts only once the
/// one before it has reached its last piece, and its buffers and compression contexts exist
/// only while it writes. Memory then stays flat however many volumes a bundle has.
#[derive(Default)]
pub(crate) struct Turn {
    /// Returns (a message or the sender gone) when this writer may start.
    pub wait: Option<std::sync::mpsc::Receiver<()>>,
    /// Dropped when the next writer may start.
    pub next: Option<std::sync::mpsc::Sender<()>>,
    /// Buffers and compression contexts shared by the volumes of a bundle.
    pub buffers: frames::Buffers,
}

/// Writes the entries of `job` after the first `kept` (already in `file`, whose frames are
/// `start`), receiving piece N's bytes on `pieces[N]`, once `turn` says so.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write(
    job: &VolumeJob,
    manifests: &[(Digest, Vec<u8>)],
    partial: PathBuf,
    mut file: fs_err::File,
    kept: usize,
    start: Start,
    mut pieces: Vec<Option<PieceRx>>,
    level: i32,
    threads: usize,
    mut turn: Turn,
) -> Result<Written, BundleError> {
    if let Some(wait) = &turn.wait {
        let _ = wait.recv();
    }
    let mut next = turn.next.take();
    let last_piece = job.pieces.len().checked_sub(1);
    let io = |e: io::Error| BundleError::Io {
        path: partial.clone(),
        source: e,
    };
    let end: u64 = start.table.iter().map(|f| u64::from(f.compressed)).sum();
    file.set_len(end).map_err(io)?;
    file.seek(SeekFrom::Start(end)).map_err(io)?;
    // The descriptor's raw frames follow its header frame.
    let mut descriptor_at = (
        start.table.first().map_or(0, |f| u64::from(f.compressed)),
        1,
    );
    // Frames are written whole (a MiB each): the buffer only gathers the small ones.
    let out = io::BufWriter::with_capacity(128 << 10, Writeback::new(file, &partial));
    let entries = job.entries(manifests);
    let (at, out, table) =
        frames::run_frame_sink(out, start, level, threads, &turn.buffers, &io, |sink| {
            let mut at = None;
            for entry in entries.iter().skip(kept) {
                match &entry.content {
                    Content::Fixed { bytes, raw: true } => {
                        sink.frame(header(&entry.name, entry.size).as_bytes().to_vec())
                            .map_err(io)?;
                        at = Some(sink.raw(bytes).map_err(io)?);
                    }
                    Content::Fixed { bytes, raw: false } => sink
                        .entry(&header(&entry.name, entry.size), entry.size, &mut &**bytes)
                        .map_err(io)?,
                    Content::Piece(i) => {
                        let rx = pieces[*i].as_mut().ok_or_else(|| {
                            BundleError::InvalidInput(format!(
                                "{}: piece {} has no sender",
                                partial.display(),
                                entry.name
                            ))
                        })?;
                        // The next volume starts once this one's last piece has all its bytes: its
                        // first piece may be the continuation of this one.
                        let last = (Some(*i) == last_piece).then_some(&mut next);
                        piece(sink, &entry.name, entry.size, rx, &partial, last)?;
                        // Its sender has nothing more to say; dropping the receiver now frees the
                        // channel's memory.
                        pieces[*i] = None;
                    }
                }
            }
            sink.frame(vec![0; TAR_END as usize]).map_err(io)?;
            Ok::<_, BundleError>(at)
        })?;
    if let Some(at) = at {
        descriptor_at = (at, 1);
    }
    let mut file = out
        .into_inner()
        .map_err(|e| io(e.into_error()))?
        .into_inner();
    file.flush().map_err(io)?;
    Ok(Written {
        file,
        table,
        descriptor_at,
    })
}

/// Receives one piece into `sink` as tar entry `name` of `size` bytes. Full frames are
/// submitted as more bytes follow them; the last is submitted on [`PieceMsg::Commit`].
fn piece(
    sink: &mut FrameSink<io::BufWriter<Writeback>>,
    name: &str,
    size: u64,
    rx: &mut PieceRx,
    partial: &std::path::Path,
    mut next: Option<&mut Option<std::sync::mpsc::Sender<()>>>,
) -> Result<(), BundleError> {
    let io = |e: io::Error| BundleError::Io {
        path: partial.to_owned(),
        source: e,
    };
    let cut = |w: &mut io::BufWriter<Writeback>, len: u64| {
        w.flush()?;
        let f = w.get_mut().file_mut();
        f.set_len(len)?;
        f.seek(SeekFrom::Start(len))?;
        Ok(())
    };
    let mark = sink.mark();
    let frame_len = FRAME_BYTES as usize;
    let mut buf: Vec<u8> = Vec::new();
    let mut received = 0u64;
    let mut started = false;
    loop {
        let Some(msg) = rx.blocking_recv() else {
            // The blob's copy gave up: what was written of it goes.
            sink.rewind(mark, cut).map_err(io)?;
            return Err(BundleError::PieceNotWritten {
                volume: partial.to_owned(),
                entry: name.to_owned(),
            });
        };
        match msg {
            PieceMsg::Data(mut bytes) => {
                received += bytes.len() as u64;
                if received > size {
                    sink.rewind(mark, cut).map_err(io)?;
                    return Err(BundleError::InvalidInput(format!(
                        "{}: entry {name} got more than its {size} bytes",
                        partial.display()
                    )));
                }
                if !started {
                    sink.frame(header(name, size).as_bytes().to_vec())
                        .map_err(io)?;
                    started = true;
                }
                while !bytes.is_empty() {
                    if buf.len() == frame_len {
                        sink.frame(std::mem::take(&mut buf)).map_err(io)?;
                    }
                    if buf.capacity() == 0 {
                        buf = sink.buffer();
                    }
                    let n = (frame_len - buf.len()).min(bytes.len());
                    buf.extend_from_slice(&bytes.split_to(n));
                }
                if received == size {
                    // All bytes are in; the commit may be long in coming (a blob split over
                    // volumes commits once all its parts are sent): write what is compressed
                    // so that only the held-back last frame waits in memory.
                    sink.drain_all().map_err(io)?;
                    if let Some(next) = next.as_mut() {
                        drop(next.take());
                    }
                }
            }
            PieceMsg::Restart => {
                sink.rewind(mark, cut).map_err(io)?;
                buf = Vec::new();
                received = 0;
                started = false;
            }
            PieceMsg::Commit => {
                if received != size {
                    sink.rewind(mark, cut).map_err(io)?;
                    return Err(BundleError::InvalidInput(format!(
                        "{}: entry {name} committed after {received} of {size} bytes",
                        partial.display()
                    )));
                }
                if let Some(next) = next.as_mut() {
                    drop(next.take());
                }
                if !started {
                    sink.frame(header(name, size).as_bytes().to_vec())
                        .map_err(io)?;
                }
                if size > 0 {
                    let padded = buf.len().div_ceil(512) * 512;
                    buf.resize(padded, 0);
                    sink.frame(buf).map_err(io)?;
                }
                return Ok(());
            }
        }
    }
}
