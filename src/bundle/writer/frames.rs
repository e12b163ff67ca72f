//! Writing a format-2 volume: the tar stream cut into independent zstd frames, compressed on
//! several threads, written in order, and followed by the seek index.
//!
//! Frames are independent, so they are compressed in parallel by a small pool of workers, each
//! with its own zstd context. At most `threads + 1` frames are in flight (read but not yet
//! written), which bounds memory to a few frames of [`FRAME_BYTES`] whatever the blob sizes.
//!
//! The sink can go back to a mark (an entry whose content turned out wrong is cut off the
//! file again), start after frames kept from an earlier run, and write *raw* frames: stored,
//! uncompressed zstd blocks whose size depends only on their length, so the descriptor can be
//! written first with placeholders and rewritten in place once the part digests are known.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use zstd::stream::raw::CParameter;

use super::super::seek::{FRAME_BYTES, FrameEntry, WINDOW_LOG};

/// One compressed frame coming back from a worker: its sequence number, its bytes and its
/// decompressed size.
type Done = (u64, io::Result<Vec<u8>>, u32);

/// Largest block of a raw frame (zstd's `Block_Maximum_Size`).
const RAW_BLOCK: usize = 128 << 10;

/// Frame buffers, input and output, and zstd compression contexts, kept for reuse by every
/// volume of a bundle: the volumes stream through the same few buffers and contexts instead of
/// allocating a MiB per frame and a context per worker and volume, which the allocator would
/// keep, scattered across the arenas of threads long gone.
#[derive(Clone, Default)]
pub(crate) struct Buffers {
    bufs: Arc<Mutex<Vec<Vec<u8>>>>,
    compressors: Arc<Mutex<Vec<(i32, zstd::bulk::Compressor<'static>)>>>,
    /// The compressing workers, started on first use and shared by every sink of these
    /// buffers (so by every volume of a bundle): they stop when the last clone is dropped.
    pool: Arc<Mutex<Option<Workers>>>,
}

/// Running workers: their zstd level and their job queue.
type Workers = (i32, SyncSender<Job>);

/// One frame to compress: its sequence number, its bytes, and where the result goes.
type Job = (u64, Vec<u8>, SyncSender<Done>);

impl Buffers {
    /// Most buffers kept: the frames in flight, in and out, for a few workers.
    const KEEP: usize = 12;

    /// An empty buffer with room for a frame (input) or its compressed form (output).
    pub(crate) fn take(&self) -> Vec<u8> {
        let kept = self.bufs.lock().expect("not poisoned").pop();
        kept.unwrap_or_else(|| {
            Vec::with_capacity(super::super::seek::bound(FRAME_BYTES) as usize + 64)
        })
    }

    /// Gives `buf` back for reuse.
    pub(crate) fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut kept = self.bufs.lock().expect("not poisoned");
        if kept.len() < Self::KEEP && buf.capacity() >= FRAME_BYTES as usize {
            kept.push(buf);
        }
    }

    /// A compression context at `level` with the frames' parameters, reused if one is kept.
    fn compressor(&self, level: i32) -> io::Result<zstd::bulk::Compressor<'static>> {
        let mut kept = self.compressors.lock().expect("not poisoned");
        if let Some(at) = kept.iter().position(|(l, _)| *l == level) {
            return Ok(kept.swap_remove(at).1);
        }
        drop(kept);
        let mut c = zstd::bulk::Compressor::new(level)?;
        c.set_parameter(CParameter::ChecksumFlag(true))?;
        c.set_parameter(CParameter::WindowLog(WINDOW_LOG))?;
        Ok(c)
    }

    /// The job queue of the workers compressing at `level` (`threads` of them, started now
    /// if they are not running yet).
    fn workers(&self, level: i32, threads: usize) -> SyncSender<Job> {
        let mut pool = self.pool.lock().expect("not poisoned");
        if let Some((l, jobs)) = pool.as_ref()
            && *l == level
        {
            return jobs.clone();
        }
        let (jobs, job_rx) = sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            // Not `self`: a worker holding the pool would keep itself running.
            let parts = Buffers {
                bufs: self.bufs.clone(),
                compressors: self.compressors.clone(),
                pool: Arc::default(),
            };
            std::thread::spawn(move || worker(level, &job_rx, &parts));
        }
        *pool = Some((level, jobs.clone()));
        jobs
    }

    fn give_compressor(&self, level: i32, c: zstd::bulk::Compressor<'static>) {
        let mut kept = self.compressors.lock().expect("not poisoned");
        if kept.len() < 8 {
            kept.push((level, c));
        }
    }
}

/// Receives the tar stream frame by frame (see [`with_frame_sink`]).
pub(crate) struct FrameSink<W: Write> {
    out: W,
    table: Vec<FrameEntry>,
    jobs: SyncSender<Job>,
    results: Receiver<Done>,
    /// Where this sink's jobs send their results.
    reply: SyncSender<Done>,
    pending: BTreeMap<u64, (Vec<u8>, u32)>,
    submitted: u64,
    written: u64,
    max_in_flight: u64,
    /// Decompressed bytes submitted so far: the tar offset of the next frame.
    position: u64,
    /// Compressed bytes written to `out` so far (frames kept from an earlier run included).
    out_bytes: u64,
    buffers: Buffers,
}

/// Where a sink was: [`FrameSink::mark`], for [`FrameSink::rewind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    frames: u64,
    position: u64,
}

/// Frames already in the file when a sink starts (a resumed volume).
#[derive(Debug, Clone, Default)]
pub(crate) struct Start {
    /// Their table entries.
    pub table: Vec<FrameEntry>,
}

impl Start {
    fn position(&self) -> u64 {
        self.table.iter().map(|f| u64::from(f.decompressed)).sum()
    }
    fn out_bytes(&self) -> u64 {
        self.table.iter().map(|f| u64::from(f.compressed)).sum()
    }
}

/// Runs `f` with a [`FrameSink`] writing to `out` through `threads` compressing workers at
/// zstd `level`; afterwards writes the remaining frames and the seek index, and returns `f`'s
/// result and `out`. I/O errors of that last part go through `io_error`.
#[cfg(test)]
pub(crate) fn with_frame_sink<W: Write, T, E>(
    out: W,
    level: i32,
    threads: usize,
    io_error: impl Fn(io::Error) -> E,
    f: impl FnOnce(&mut FrameSink<W>) -> Result<T, E>,
) -> Result<(T, W), E> {
    let (value, mut out, table) = run_frame_sink(
        out,
        Start::default(),
        level,
        threads,
        &Buffers::default(),
        &io_error,
        f,
    )?;
    out.write_all(&super::super::seek::encode_table(&table))
        .map_err(&io_error)?;
    Ok((value, out))
}

/// As [`with_frame_sink`], after the frames of `start` (which `out` already holds and is
/// positioned after), and without writing the seek index: the table is returned.
pub(crate) fn run_frame_sink<W: Write, T, E>(
    out: W,
    start: Start,
    level: i32,
    threads: usize,
    buffers: &Buffers,
    io_error: &impl Fn(io::Error) -> E,
    f: impl FnOnce(&mut FrameSink<W>) -> Result<T, E>,
) -> Result<(T, W, Vec<FrameEntry>), E> {
    let threads = threads.max(1);
    let jobs = buffers.workers(level, threads);
    let (reply, results) = sync_channel::<Done>(threads + 1);
    let frames = start.table.len() as u64;
    let mut sink = FrameSink {
        out,
        position: start.position(),
        out_bytes: start.out_bytes(),
        table: start.table,
        jobs,
        results,
        reply,
        pending: BTreeMap::new(),
        submitted: frames,
        written: frames,
        max_in_flight: threads as u64 + 1,
        buffers: buffers.clone(),
    };
    let value = f(&mut sink);
    let drained = value.is_ok().then(|| sink.drain_all());
    let FrameSink { out, table, .. } = sink;
    let value = value?;
    drained
        .expect("drained when f succeeded")
        .map_err(io_error)?;
    Ok((value, out, table))
}

fn worker(level: i32, jobs: &Mutex<Receiver<Job>>, buffers: &Buffers) {
    let mut compressor = buffers.compressor(level);
    loop {
        let job = jobs.lock().map(|rx| rx.recv());
        let Ok(Ok((seq, data, done))) = job else {
            if let Ok(c) = compressor {
                buffers.give_compressor(level, c);
            }
            return;
        };
        let result = match &mut compressor {
            Ok(c) => {
                let mut out = buffers.take();
                out.reserve(zstd::zstd_safe::compress_bound(data.len()));
                c.compress_to_buffer(&data, &mut out).map(|_| out)
            }
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        let len = data.len() as u32;
        buffers.give(data);
        // A sink that went away (an error) no longer wants its frames.
        let _ = done.send((seq, result, len));
    }
}

/// The table entry of a compressed frame: its sizes and its trailing content checksum.
pub(crate) fn entry_of(bytes: &[u8], decompressed: u32) -> FrameEntry {
    let checksum = bytes
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes(bytes[at..].try_into().expect("4 bytes")))
        .unwrap_or(0);
    FrameEntry {
        compressed: u32::try_from(bytes.len()).expect("frames are a few MiB"),
        decompressed,
        checksum,
    }
}

/// The size of [`raw_frame`] of `n` bytes.
pub(crate) fn raw_frame_len(n: usize) -> usize {
    9 + 3 * n.div_ceil(RAW_BLOCK).max(1) + n + 4
}

/// `data` as one zstd frame of raw (stored) blocks with a content checksum. Its size depends
/// only on `data.len()`, so a frame of other bytes of the same length can replace it in place.
///
/// Written by hand (RFC 8878 §3.1.1: frame header with a 4-byte content size and the single
/// segment flag, raw blocks of at most 128 KiB, the low 32 bits of XXH64 at the end): zstd's
/// API cannot be told to store. The checksum is taken from a compressed frame of the same
/// bytes, which carries the same one, so no XXH64 implementation is needed here.
pub(crate) fn raw_frame(data: &[u8]) -> io::Result<Vec<u8>> {
    let len = u32::try_from(data.len()).map_err(|_| io::Error::other("raw frame too large"))?;
    let mut c = zstd::bulk::Compressor::new(1)?;
    c.set_parameter(CParameter::ChecksumFlag(true))?;
    let compressed = c.compress(data)?;
    let checksum = &compressed[compressed.len() - 4..];
    let blocks = data.len().div_ceil(RAW_BLOCK).max(1);
    let mut out = Vec::with_capacity(data.len() + 9 + 3 * blocks + 4);
    out.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Frame_Header_Descriptor: FCS field of 4 bytes, single segment, checksum, no dictionary.
    out.push(0b1010_0100);
    out.extend_from_slice(&len.to_le_bytes());
    let mut chunks: Vec<&[u8]> = data.chunks(RAW_BLOCK).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        // Block_Header: Last_Block bit, Block_Type 0 (raw), Block_Size.
        let header = (chunk.len() as u32) << 3 | u32::from(i == last);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(checksum);
    Ok(out)
}

impl<W: Write> FrameSink<W> {
    /// An empty buffer to fill with a frame's bytes (then [`FrameSink::frame`]).
    pub(crate) fn buffer(&self) -> Vec<u8> {
        self.buffers.take()
    }

    /// Compressed bytes in the file once every frame submitted so far is written.
    fn written_bytes(&self) -> u64 {
        self.out_bytes
    }

    /// Waits for one compressed frame and writes every frame now ready in order.
    fn drain_one(&mut self) -> io::Result<()> {
        let (seq, bytes, len) = self
            .results
            .recv()
            .map_err(|_| io::Error::other("the compression workers stopped"))?;
        self.pending.insert(seq, (bytes?, len));
        while let Some((bytes, len)) = self.pending.remove(&self.written) {
            self.out.write_all(&bytes)?;
            self.out_bytes += bytes.len() as u64;
            self.table.push(entry_of(&bytes, len));
            self.written += 1;
            self.buffers.give(bytes);
        }
        Ok(())
    }

    /// Writes every frame submitted so far.
    pub(crate) fn drain_all(&mut self) -> io::Result<()> {
        while self.written < self.submitted {
            self.drain_one()?;
        }
        Ok(())
    }

    /// Submits one frame's uncompressed bytes (at most [`FRAME_BYTES`]).
    pub(crate) fn frame(&mut self, data: Vec<u8>) -> io::Result<()> {
        debug_assert!(data.len() as u64 <= FRAME_BYTES);
        while self.submitted - self.written >= self.max_in_flight {
            self.drain_one()?;
        }
        self.position += data.len() as u64;
        self.jobs
            .send((self.submitted, data, self.reply.clone()))
            .map_err(|_| io::Error::other("the compression workers stopped"))?;
        self.submitted += 1;
        Ok(())
    }

    /// Writes `data` as raw frames of at most [`FRAME_BYTES`] (see [`raw_frame`]), after every
    /// frame submitted before; returns the file offset of the first.
    pub(crate) fn raw(&mut self, data: &[u8]) -> io::Result<u64> {
        self.drain_all()?;
        let at = self.written_bytes();
        for chunk in data.chunks(FRAME_BYTES as usize) {
            let bytes = raw_frame(chunk)?;
            self.out.write_all(&bytes)?;
            self.out_bytes += bytes.len() as u64;
            self.table.push(entry_of(&bytes, chunk.len() as u32));
            self.position += chunk.len() as u64;
            self.submitted += 1;
            self.written += 1;
        }
        Ok(at)
    }

    /// Where the sink is now, to come back to with [`FrameSink::rewind`].
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            frames: self.submitted,
            position: self.position,
        }
    }

    /// Drops every frame after `mark`: waits for those in flight, then lets `cut` shorten the
    /// file to the returned compressed length (and seek there).
    pub(crate) fn rewind(
        &mut self,
        mark: Mark,
        cut: impl FnOnce(&mut W, u64) -> io::Result<()>,
    ) -> io::Result<()> {
        self.drain_all()?;
        let keep = mark.frames as usize;
        let len: u64 = self.table[..keep]
            .iter()
            .map(|f| u64::from(f.compressed))
            .sum();
        cut(&mut self.out, len)?;
        self.table.truncate(keep);
        self.out_bytes = len;
        self.submitted = mark.frames;
        self.written = mark.frames;
        self.position = mark.position;
        Ok(())
    }

    /// Appends a tar entry: its 512-byte header as a frame of its own, then `size` bytes read
    /// from `content` plus the padding to 512, in frames of [`FRAME_BYTES`].
    pub(crate) fn entry(
        &mut self,
        header: &tar::Header,
        size: u64,
        content: &mut dyn Read,
    ) -> io::Result<()> {
        self.frame(header.as_bytes().to_vec())?;
        let padded = size.div_ceil(512) * 512;
        let mut left = size;
        let mut framed = 0u64;
        while framed < padded {
            let chunk = FRAME_BYTES.min(padded - framed);
            let mut buf = self.buffers.take();
            let data = chunk.min(left);
            let n = content.take(data).read_to_end(&mut buf)? as u64;
            if n != data {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("content ended after {} of {size} bytes", size - left + n),
                ));
            }
            left -= n;
            buf.resize(chunk as usize, 0);
            framed += chunk;
            self.frame(buf)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_frame_decompresses_to_its_bytes_and_has_a_size_fixed_by_its_length() {
        for n in [0usize, 1, 511, 128 << 10, (128 << 10) + 1, 300_000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let frame = raw_frame(&data).unwrap();
            let back = zstd::bulk::decompress(&frame, n.max(1)).unwrap();
            assert_eq!(back, data, "{n} bytes");
            let other = raw_frame(&vec![b' '; n]).unwrap();
            assert_eq!(frame.len(), other.len(), "{n} bytes");
            assert_eq!(frame.len(), raw_frame_len(n), "{n} bytes");
            assert!(frame.len() as u64 <= super::super::super::seek::bound(n as u64) + 32);
            // A flipped content byte fails the checksum.
            if n > 0 {
                let mut bad = frame.clone();
                bad[9 + 3] ^= 1;
                assert!(zstd::bulk::decompress(&bad, n).is_err(), "{n} bytes");
            }
        }
    }
}
