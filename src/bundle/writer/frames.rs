//! Writing a format-2 volume: the tar stream cut into independent zstd frames, compressed on
//! several threads, written in order, and followed by the seek index.
//!
//! Frames are independent, so they are compressed in parallel by a small pool of workers, each
//! with its own zstd context. At most `threads + 2` frames are in flight (read but not yet
//! written), which bounds memory to a few frames of [`FRAME_BYTES`] whatever the blob sizes.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use zstd::stream::raw::CParameter;

use super::super::seek::{FRAME_BYTES, FrameEntry, WINDOW_LOG, encode_table};

/// One compressed frame coming back from a worker: its sequence number, its bytes and its
/// decompressed size.
type Done = (u64, io::Result<Vec<u8>>, u32);

/// Receives the tar stream frame by frame (see [`with_frame_sink`]).
pub(crate) struct FrameSink<W: Write> {
    out: W,
    table: Vec<FrameEntry>,
    jobs: SyncSender<(u64, Vec<u8>)>,
    results: Receiver<Done>,
    pending: BTreeMap<u64, (Vec<u8>, u32)>,
    submitted: u64,
    written: u64,
    max_in_flight: u64,
    /// Decompressed bytes submitted so far: the tar offset of the next frame.
    position: u64,
}

/// Runs `f` with a [`FrameSink`] writing to `out` through `threads` compressing workers at
/// zstd `level`; afterwards writes the remaining frames and the seek index, and returns `f`'s
/// result and `out`. I/O errors of that last part go through `io_error`.
pub(crate) fn with_frame_sink<W: Write, T, E>(
    out: W,
    level: i32,
    threads: usize,
    io_error: impl Fn(io::Error) -> E,
    f: impl FnOnce(&mut FrameSink<W>) -> Result<T, E>,
) -> Result<(T, W), E> {
    let threads = threads.max(1);
    let (jobs, job_rx) = sync_channel::<(u64, Vec<u8>)>(threads);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, results) = sync_channel::<Done>(threads + 2);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || worker(level, &job_rx, &done_tx));
        }
        drop(done_tx);
        let mut sink = FrameSink {
            out,
            table: Vec::new(),
            jobs,
            results,
            pending: BTreeMap::new(),
            submitted: 0,
            written: 0,
            max_in_flight: threads as u64 + 2,
            position: 0,
        };
        let value = f(&mut sink);
        // Closing the job channel stops the workers, whatever happened.
        let FrameSink {
            mut out,
            mut table,
            jobs,
            results,
            mut pending,
            submitted,
            mut written,
            ..
        } = sink;
        drop(jobs);
        let value = value?;
        while written < submitted {
            drain_one(&results, &mut pending, &mut out, &mut table, &mut written)
                .map_err(&io_error)?;
        }
        out.write_all(&encode_table(&table)).map_err(&io_error)?;
        Ok((value, out))
    })
}

fn worker(level: i32, jobs: &Mutex<Receiver<(u64, Vec<u8>)>>, done: &SyncSender<Done>) {
    let mut compressor = zstd::bulk::Compressor::new(level).and_then(|mut c| {
        c.set_parameter(CParameter::ChecksumFlag(true))?;
        c.set_parameter(CParameter::WindowLog(WINDOW_LOG))?;
        Ok(c)
    });
    loop {
        let job = jobs.lock().map(|rx| rx.recv());
        let Ok(Ok((seq, data))) = job else { return };
        let result = match &mut compressor {
            Ok(c) => c.compress(&data),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        if done.send((seq, result, data.len() as u32)).is_err() {
            return;
        }
    }
}

/// Waits for one compressed frame and writes every frame now ready in order.
fn drain_one<W: Write>(
    results: &Receiver<Done>,
    pending: &mut BTreeMap<u64, (Vec<u8>, u32)>,
    out: &mut W,
    table: &mut Vec<FrameEntry>,
    written: &mut u64,
) -> io::Result<()> {
    let (seq, bytes, len) = results
        .recv()
        .map_err(|_| io::Error::other("the compression workers stopped"))?;
    pending.insert(seq, (bytes?, len));
    while let Some((bytes, len)) = pending.remove(written) {
        out.write_all(&bytes)?;
        let checksum = bytes
            .len()
            .checked_sub(4)
            .map(|at| u32::from_le_bytes(bytes[at..].try_into().expect("4 bytes")))
            .unwrap_or(0);
        table.push(FrameEntry {
            compressed: u32::try_from(bytes.len()).expect("frames are a few MiB"),
            decompressed: len,
            checksum,
        });
        *written += 1;
    }
    Ok(())
}

impl<W: Write> FrameSink<W> {
    /// Tar offset of the next byte submitted.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// Submits one frame's uncompressed bytes (at most [`FRAME_BYTES`]).
    pub(crate) fn frame(&mut self, data: Vec<u8>) -> io::Result<()> {
        debug_assert!(data.len() as u64 <= FRAME_BYTES);
        while self.submitted - self.written >= self.max_in_flight {
            drain_one(
                &self.results,
                &mut self.pending,
                &mut self.out,
                &mut self.table,
                &mut self.written,
            )?;
        }
        self.position += data.len() as u64;
        self.jobs
            .send((self.submitted, data))
            .map_err(|_| io::Error::other("the compression workers stopped"))?;
        self.submitted += 1;
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
            let mut buf = Vec::with_capacity(chunk as usize);
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
