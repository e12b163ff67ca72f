//! The seek index of a format-2 volume, and reading a volume frame by frame against it.
//!
//! A format-2 volume is a sequence of independent zstd frames followed by one zstd skippable
//! frame holding the frame table of the zstd *seekable format* (facebook/zstd
//! `contrib/seekable_format`): for each frame its compressed size, decompressed size and
//! checksum (the low 32 bits of the frame's XXH64, i.e. the frame's own content checksum),
//! then the frame count, a descriptor byte and the seekable magic number. `zstd -d` skips the
//! skippable frame, so the volume still decompresses to the plain tar.
//!
//! The table is written and parsed here on top of the `zstd` crate rather than with a
//! seekable-format crate: the writer compresses frames on several threads and places frame
//! boundaries at tar entries itself, and the reader must bound what a hostile table makes it
//! allocate (frame count checked against the file size and [`MAX_FRAMES`] before anything is
//! kept), which the crates available do not do.
//!
//! [`FrameReader`] decompresses frames from a given one on, checking each against the table
//! as it goes: the frame ends exactly at its compressed size, yields exactly its decompressed
//! size, and ends with the checksum the table records (zstd checks that checksum against the
//! content). Reading a whole volume through it therefore checks every byte of the index.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};

use super::BundleError;

/// Magic number of the skippable frame holding the table (`ZSTD_MAGIC_SKIPPABLE_START | 0xE`).
pub(crate) const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// Magic number ending a seekable-format volume.
pub(crate) const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Descriptor byte: checksums present (bit 7), reserved bits zero.
pub(crate) const DESCRIPTOR_CHECKSUMS: u8 = 0x80;
/// Bytes of one table entry: compressed size, decompressed size, checksum (u32 LE each).
pub(crate) const ENTRY_BYTES: u64 = 12;
/// Bytes of the skippable frame header (magic, frame size).
pub(crate) const HEADER_BYTES: u64 = 8;
/// Bytes of the footer (frame count, descriptor byte, seekable magic).
pub(crate) const FOOTER_BYTES: u64 = 9;
/// Most frames a volume may have: bounds the table kept in memory (20 bytes a frame).
pub const MAX_FRAMES: u64 = 1 << 22;
/// Largest decompressed frame a reader accepts (the writer makes frames of [`FRAME_BYTES`]).
pub const MAX_FRAME_BYTES: u64 = 16 << 20;
/// Uncompressed tar bytes per frame of an entry's content.
pub const FRAME_BYTES: u64 = 1 << 20;
/// zstd window log of the frames (1 MiB): a decoder needs about that much memory, whatever the
/// frame size. A reader refuses frames that need more.
pub const WINDOW_LOG: u32 = 20;
/// Smallest possible zstd frame with a checksum (magic, header byte, block header, checksum).
const MIN_FRAME: u64 = 12;

/// One frame as the writer records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameEntry {
    pub compressed: u32,
    pub decompressed: u32,
    pub checksum: u32,
}

/// The skippable frame holding `frames`, as written at the end of a volume.
pub(crate) fn encode_table(frames: &[FrameEntry]) -> Vec<u8> {
    let n = frames.len() as u64;
    let mut out = Vec::with_capacity((HEADER_BYTES + n * ENTRY_BYTES + FOOTER_BYTES) as usize);
    out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    let size = u32::try_from(n * ENTRY_BYTES + FOOTER_BYTES).expect("frame count is bounded");
    out.extend_from_slice(&size.to_le_bytes());
    for f in frames {
        out.extend_from_slice(&f.compressed.to_le_bytes());
        out.extend_from_slice(&f.decompressed.to_le_bytes());
        out.extend_from_slice(&f.checksum.to_le_bytes());
    }
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.push(DESCRIPTOR_CHECKSUMS);
    out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
    out
}

/// The frame table of a volume, as cumulative offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameIndex {
    /// Compressed offset of each frame, plus the end of the last (`frames + 1` values).
    c_start: Vec<u64>,
    /// Decompressed offset of each frame, plus the end of the last.
    d_start: Vec<u64>,
    checksums: Vec<u32>,
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

impl FrameIndex {
    /// Reads the seek index at the end of `file` (`len` bytes long). `Ok(None)` when the file
    /// does not end with the seekable magic number (a format-1 volume); an error when it does
    /// but the table is inconsistent with itself or with the file.
    pub fn read<R: Read + Seek>(
        file: &mut R,
        len: u64,
        volume: &Path,
    ) -> Result<Option<FrameIndex>, BundleError> {
        let bad = |reason: String| BundleError::SeekIndex {
            volume: volume.to_owned(),
            reason,
        };
        let io = |e: io::Error| BundleError::Io {
            path: volume.to_owned(),
            source: e,
        };
        if len < HEADER_BYTES + FOOTER_BYTES {
            return Ok(None);
        }
        let mut footer = [0u8; FOOTER_BYTES as usize];
        file.seek(SeekFrom::Start(len - FOOTER_BYTES)).map_err(io)?;
        file.read_exact(&mut footer).map_err(io)?;
        if le32(&footer[5..]) != SEEKABLE_MAGIC {
            return Ok(None);
        }
        let frames = u64::from(le32(&footer));
        if footer[4] != DESCRIPTOR_CHECKSUMS {
            return Err(bad(format!(
                "descriptor byte is {:#04x}, expected {DESCRIPTOR_CHECKSUMS:#04x} (checksums, \
                 reserved bits zero)",
                footer[4]
            )));
        }
        if frames == 0 || frames > MAX_FRAMES {
            return Err(bad(format!(
                "declares {frames} frames (allowed: 1 to {MAX_FRAMES})"
            )));
        }
        let table = HEADER_BYTES + frames * ENTRY_BYTES + FOOTER_BYTES;
        // Each frame takes at least MIN_FRAME bytes besides its table entry.
        if table + frames * MIN_FRAME > len {
            return Err(bad(format!(
                "declares {frames} frames, more than the {len}-byte file can hold"
            )));
        }
        let table_start = len - table;
        file.seek(SeekFrom::Start(table_start)).map_err(io)?;
        let mut header = [0u8; HEADER_BYTES as usize];
        file.read_exact(&mut header).map_err(io)?;
        if le32(&header) != SKIPPABLE_MAGIC {
            return Err(bad(format!(
                "no skippable frame where the table of {frames} frames must start (offset \
                 {table_start}): magic {:#010x}",
                le32(&header)
            )));
        }
        let size = u64::from(le32(&header[4..]));
        if size != table - HEADER_BYTES {
            return Err(bad(format!(
                "skippable frame size {size} disagrees with {frames} frames ({} bytes)",
                table - HEADER_BYTES
            )));
        }
        // The count was bounded above, so what is kept is bounded too.
        let n = frames as usize;
        let mut index = FrameIndex {
            c_start: Vec::with_capacity(n + 1),
            d_start: Vec::with_capacity(n + 1),
            checksums: Vec::with_capacity(n),
        };
        index.c_start.push(0);
        index.d_start.push(0);
        let mut reader = io::BufReader::with_capacity(64 << 10, file.take(frames * ENTRY_BYTES));
        let mut entry = [0u8; ENTRY_BYTES as usize];
        let (mut c, mut d) = (0u64, 0u64);
        for i in 0..n {
            reader.read_exact(&mut entry).map_err(io)?;
            let (cs, ds) = (u64::from(le32(&entry)), u64::from(le32(&entry[4..])));
            if cs < MIN_FRAME || ds > MAX_FRAME_BYTES || cs > bound(ds) {
                return Err(bad(format!(
                    "frame {i}: {cs} compressed bytes for {ds} decompressed is impossible \
                     (frames hold at most {MAX_FRAME_BYTES} bytes)"
                )));
            }
            c += cs;
            d += ds;
            if c > table_start {
                return Err(bad(format!(
                    "frames end past the table (frame {i} ends at {c}, the table starts at \
                     {table_start})"
                )));
            }
            index.c_start.push(c);
            index.d_start.push(d);
            index.checksums.push(le32(&entry[8..]));
        }
        if c != table_start {
            return Err(bad(format!(
                "frames take {c} bytes but the table starts at {table_start}"
            )));
        }
        Ok(Some(index))
    }

    /// The index of frames as the writer recorded them (a volume still being written).
    pub(crate) fn from_entries(frames: &[FrameEntry]) -> FrameIndex {
        let mut index = FrameIndex {
            c_start: Vec::with_capacity(frames.len() + 1),
            d_start: Vec::with_capacity(frames.len() + 1),
            checksums: Vec::with_capacity(frames.len()),
        };
        let (mut c, mut d) = (0u64, 0u64);
        index.c_start.push(0);
        index.d_start.push(0);
        for f in frames {
            c += u64::from(f.compressed);
            d += u64::from(f.decompressed);
            index.c_start.push(c);
            index.d_start.push(d);
            index.checksums.push(f.checksum);
        }
        index
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.checksums.len()
    }

    /// Whether there is no frame (never true of an index read from a volume).
    pub fn is_empty(&self) -> bool {
        self.checksums.is_empty()
    }

    /// Total decompressed bytes (the tar stream's length).
    pub fn total(&self) -> u64 {
        *self.d_start.last().expect("one value at least")
    }

    /// The frame holding decompressed offset `pos`, if `pos` is inside the stream.
    pub fn frame_at(&self, pos: u64) -> Option<usize> {
        if pos >= self.total() {
            return None;
        }
        // The last start <= pos.
        Some(self.d_start.partition_point(|&s| s <= pos) - 1)
    }

    /// Whether a frame starts at decompressed offset `pos`.
    pub fn is_frame_start(&self, pos: u64) -> bool {
        self.d_start[..self.len()].binary_search(&pos).is_ok()
    }

    /// Decompressed start and length of frame `i`.
    pub fn frame(&self, i: usize) -> (u64, u64) {
        (self.d_start[i], self.d_start[i + 1] - self.d_start[i])
    }
}

/// zstd's worst case for `n` bytes in one frame (`ZSTD_compressBound`).
pub(crate) fn bound(n: u64) -> u64 {
    n + (n >> 8)
        + if n < (128 << 10) {
            ((128 << 10) - n) >> 11
        } else {
            0
        }
}

/// Opens the volume at `path` and reads its seek index, if it has one.
pub(crate) fn open_index(path: &Path) -> Result<(fs_err::File, Option<FrameIndex>), BundleError> {
    let mut file = fs_err::File::open(path).map_err(super::io_err(path))?;
    let len = file.metadata().map_err(super::io_err(path))?.len();
    let index = FrameIndex::read(&mut file, len, path)?;
    file.seek(SeekFrom::Start(0)).map_err(super::io_err(path))?;
    Ok((file, index))
}

/// Decompresses the frames of a format-2 volume from a given frame on, each checked against
/// the index (see the module documentation). `Read` gives the decompressed bytes; a
/// disagreement with the index is an `InvalidData` error carrying a
/// [`BundleError::SeekIndex`].
pub struct FrameReader<R> {
    src: R,
    index: Arc<FrameIndex>,
    volume: PathBuf,
    /// The frame being decoded (== `index.len()` at the end).
    frame: usize,
    /// Compressed bytes of the frame not yet read from `src`.
    in_left: u64,
    in_buf: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    out_buf: Box<[u8]>,
    out_pos: usize,
    out_len: usize,
    /// Decompressed bytes of the frame so far.
    produced: u64,
    /// The frame's decoding ended (its last byte was decoded).
    done: bool,
    /// The last 4 compressed bytes read (the frame's checksum at its end).
    tail: [u8; 4],
    decoder: Decoder<'static>,
    /// Decompressed offset of the next byte `read` returns.
    pos: u64,
}

impl<R: Read + Seek> FrameReader<R> {
    /// A reader of `src` (the volume file) from frame `frame` on.
    pub fn new(
        mut src: R,
        index: Arc<FrameIndex>,
        volume: &Path,
        frame: usize,
    ) -> Result<FrameReader<R>, BundleError> {
        let io = |e: io::Error| BundleError::Io {
            path: volume.to_owned(),
            source: e,
        };
        let start = index.c_start[frame.min(index.len())];
        src.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut decoder = Decoder::new().map_err(io)?;
        decoder
            .set_parameter(DParameter::WindowLogMax(WINDOW_LOG))
            .map_err(io)?;
        let mut r = FrameReader {
            src,
            volume: volume.to_owned(),
            frame,
            in_left: 0,
            in_buf: vec![0u8; 64 << 10].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            out_buf: vec![0u8; 128 << 10].into_boxed_slice(),
            out_pos: 0,
            out_len: 0,
            produced: 0,
            done: false,
            tail: [0; 4],
            decoder,
            pos: index.d_start[frame.min(index.len())],
            index,
        };
        r.start_frame();
        Ok(r)
    }
}

impl<R> FrameReader<R> {
    /// Decompressed offset of the next byte `read` returns.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The index read against.
    pub fn index(&self) -> &FrameIndex {
        &self.index
    }

    fn start_frame(&mut self) {
        if self.frame < self.index.len() {
            self.in_left = self.index.c_start[self.frame + 1] - self.index.c_start[self.frame];
        }
        self.produced = 0;
        self.done = false;
        self.in_pos = 0;
        self.in_len = 0;
    }

    fn fail(&self, reason: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            BundleError::SeekIndex {
                volume: self.volume.clone(),
                reason: format!("frame {}: {reason}", self.frame),
            },
        )
    }

    /// Checks the frame just decoded against the table.
    fn check_frame(&self) -> io::Result<()> {
        let (_, want) = self.index.frame(self.frame);
        if self.in_left != 0 || self.in_pos != self.in_len {
            let left = self.in_left + (self.in_len - self.in_pos) as u64;
            return Err(self.fail(format!(
                "the zstd frame ends {left} bytes before the compressed size the index records"
            )));
        }
        if self.produced != want {
            return Err(self.fail(format!(
                "holds {} bytes, the index records {want}",
                self.produced
            )));
        }
        let checksum = u32::from_le_bytes(self.tail);
        if checksum != self.index.checksums[self.frame] {
            return Err(self.fail(format!(
                "checksum {checksum:#010x}, the index records {:#010x}",
                self.index.checksums[self.frame]
            )));
        }
        Ok(())
    }
}

impl<R: Read> Read for FrameReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.out_len {
                let n = buf.len().min(self.out_len - self.out_pos);
                buf[..n].copy_from_slice(&self.out_buf[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                self.pos += n as u64;
                return Ok(n);
            }
            if buf.is_empty() || self.frame >= self.index.len() {
                return Ok(0);
            }
            if self.done {
                self.check_frame()?;
                self.frame += 1;
                self.start_frame();
                self.decoder.reinit()?;
                continue;
            }
            if self.in_pos == self.in_len && self.in_left > 0 {
                let want = self.in_buf.len().min(self.in_left as usize);
                let n = self.src.read(&mut self.in_buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("volume ends inside frame {}", self.frame),
                    ));
                }
                self.in_left -= n as u64;
                self.in_pos = 0;
                self.in_len = n;
                // Keep the last 4 bytes read: at the frame's end, its checksum.
                let got = &self.in_buf[..n];
                if n >= 4 {
                    self.tail.copy_from_slice(&got[n - 4..]);
                } else {
                    let mut t = [0u8; 8];
                    t[..4].copy_from_slice(&self.tail);
                    t[4..4 + n].copy_from_slice(got);
                    self.tail.copy_from_slice(&t[n..n + 4]);
                }
            }
            let mut input = InBuffer::around(&self.in_buf[self.in_pos..self.in_len]);
            let mut output = OutBuffer::around(&mut self.out_buf[..]);
            let ran = self.decoder.run(&mut input, &mut output);
            let (consumed, made) = (input.pos(), output.pos());
            let hint = ran.map_err(|e| self.fail(format!("cannot decompress: {e}")))?;
            self.in_pos += consumed;
            self.out_pos = 0;
            self.out_len = made;
            self.produced += made as u64;
            if self.produced > MAX_FRAME_BYTES {
                return Err(self.fail(format!("decompresses to more than {MAX_FRAME_BYTES} bytes")));
            }
            if hint == 0 {
                self.done = true;
            } else if consumed == 0 && made == 0 && self.in_pos == self.in_len && self.in_left == 0
            {
                return Err(self.fail(
                    "the zstd frame is longer than the compressed size the index records".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
