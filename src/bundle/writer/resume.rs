//! Resuming a volume: which of its planned entries an interrupted run left complete in the
//! `.partial` file.
//!
//! The file is read frame by frame from the start. Every frame must decompress (which checks
//! its content checksum) to the size the plan gives it; tar headers, `oci-layout`,
//! `index.json` and manifests must be the planned bytes, and the descriptor must be the planned
//! one (part digests and bundle id aside: they are filled in at the end). The first entry that
//! is incomplete or different ends what is kept; the file is cut there and writing goes on.
//! Blob content needs no second hash: the writer writes an entry's last frame only once its
//! blob matched its digest.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::super::descriptor::Descriptor;
use super::super::seek::{FRAME_BYTES, FrameEntry, bound};
use super::super::{BundleError, io_err};
use super::frames::{Start, entry_of, raw_frame_len};
use super::header;
use super::volume::{Content, Entry};

/// What a `.partial` file holds of its plan.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// Leading entries complete.
    pub entries: usize,
    /// Their frames (the file is to be cut after them).
    pub start: Start,
    /// The number of frames up to the end of each entry kept.
    pub ends: Vec<usize>,
}

impl Kept {
    /// Frames of the first `entries` entries.
    pub(crate) fn frames_after(&self) -> usize {
        match self.entries {
            0 => 0,
            n => self.ends[n - 1],
        }
    }
}

/// The descriptor as compared on resume: part digests and bundle id, which are written last,
/// left out.
pub(crate) fn normalized(d: &Descriptor) -> Descriptor {
    let mut d = d.clone();
    d.bundle_id = "0".repeat(32);
    for b in d.blobs.values_mut() {
        for l in &mut b.volumes {
            l.digest = None;
        }
    }
    d
}

/// Reads `path` against `entries` (the volume's plan, whose descriptor is `descriptor`).
pub(crate) fn scan(
    path: &Path,
    entries: &[Entry<'_>],
    descriptor: &Descriptor,
) -> Result<Kept, BundleError> {
    let mut file = fs_err::File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    let mut frames = Frames {
        file: &mut file,
        len,
        buf: Vec::new(),
        buf_at: 0,
        pos: 0,
    };
    let want = normalized(descriptor);
    let mut kept = Kept::default();
    let mut table: Vec<FrameEntry> = Vec::new();
    'entries: for entry in entries {
        let mark = (table.len(), frames.pos);
        let ok = (|| -> io::Result<bool> {
            let Some(h) = frames.next(512, &mut table)? else {
                return Ok(false);
            };
            if h != header(&entry.name, entry.size).as_bytes() {
                return Ok(false);
            }
            let padded = entry.size.div_ceil(512) * 512;
            let mut content = Vec::new();
            let mut at = 0u64;
            while at < padded {
                let n = FRAME_BYTES.min(padded - at);
                // The descriptor is rewritten in place at the end: its frames must be raw.
                let raw = matches!(entry.content, Content::Fixed { raw: true, .. })
                    .then(|| raw_frame_len(n as usize));
                let Some(bytes) = frames.next_sized(n, raw, &mut table)? else {
                    return Ok(false);
                };
                if let Content::Fixed { bytes: fixed, raw } = &entry.content {
                    if *raw {
                        content.extend_from_slice(&bytes);
                    } else {
                        let end = (at + n).min(entry.size) as usize;
                        let want = &fixed[(at as usize).min(end)..end];
                        if bytes[..want.len()] != *want
                            || bytes[want.len()..].iter().any(|&b| b != 0)
                        {
                            return Ok(false);
                        }
                    }
                }
                at += n;
            }
            if let Content::Fixed { raw: true, .. } = &entry.content {
                let found = Descriptor::parse(&content, path)
                    .ok()
                    .map(|d| normalized(&d));
                return Ok(found.as_ref() == Some(&want));
            }
            Ok(true)
        })()
        .map_err(|e| BundleError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        if !ok {
            table.truncate(mark.0);
            break 'entries;
        }
        kept.entries += 1;
        kept.ends.push(table.len());
    }
    kept.start = Start { table };
    Ok(kept)
}

/// Reads a volume file frame by frame, through a buffer of a few MiB.
struct Frames<'a> {
    file: &'a mut fs_err::File,
    len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_at: u64,
    /// File offset of the next frame.
    pos: u64,
}

impl Frames<'_> {
    /// The next frame, decompressed, if it is complete, sound and `size` bytes long; its table
    /// entry is pushed onto `table`.
    fn next(&mut self, size: u64, table: &mut Vec<FrameEntry>) -> io::Result<Option<Vec<u8>>> {
        self.next_sized(size, None, table)
    }

    /// [`Frames::next`], also requiring a compressed size of `compressed` when given.
    fn next_sized(
        &mut self,
        size: u64,
        compressed: Option<usize>,
        table: &mut Vec<FrameEntry>,
    ) -> io::Result<Option<Vec<u8>>> {
        let most = (bound(size) + 64).min(self.len.saturating_sub(self.pos)) as usize;
        if most == 0 {
            return Ok(None);
        }
        let have_from = (self.pos - self.buf_at) as usize;
        if self.pos < self.buf_at || have_from + most > self.buf.len() {
            let want = most.max(8 << 20).min((self.len - self.pos) as usize);
            self.buf.resize(want, 0);
            self.file.seek(SeekFrom::Start(self.pos))?;
            self.file.read_exact(&mut self.buf)?;
            self.buf_at = self.pos;
        }
        let at = (self.pos - self.buf_at) as usize;
        let window = &self.buf[at..at + most];
        let Ok(n) = zstd::zstd_safe::find_frame_compressed_size(window) else {
            return Ok(None);
        };
        if compressed.is_some_and(|c| c != n) {
            return Ok(None);
        }
        let frame = &window[..n];
        let Ok(bytes) = zstd::bulk::decompress(frame, size as usize) else {
            return Ok(None);
        };
        if bytes.len() as u64 != size || frame.len() < 4 {
            return Ok(None);
        }
        table.push(entry_of(frame, size as u32));
        self.pos += n as u64;
        Ok(Some(bytes))
    }
}
