//! Streaming, hostile-input-safe reading of one volume.
//!
//! The tar stream is parsed here rather than by `tar::Archive`, so every header is checked
//! before its body is touched: only regular files with the names a bundle may contain (and the
//! `blobs/` directories) are accepted; links, devices, fifos, extension headers, absolute
//! paths, `..`, duplicates, and entries the descriptor does not announce (or announces with
//! another size or in another volume) are refused with an error naming the volume and entry.
//! Every blob, part and manifest is hashed while it is read and a mismatch is reported by the
//! final `read` instead of end-of-file, so a consumer that streams an entry to its end never
//! mistakes corrupt content for good content.
//!
//! A format-2 volume opened from a file is read through its seek index
//! ([`super::seek::FrameReader`]): every frame is checked against the index as it is
//! decompressed, every entry must start with a 512-byte frame of its own holding its header,
//! the end marker must be the last frame, and each blob entry must be at the tar offset the
//! descriptor records. Reading a volume to its end thus checks the index completely.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::reference::Digest;

use super::descriptor::Descriptor;
use super::plan::{BLOCK, TAR_END};
use super::seek::FrameReader;
use super::{
    BundleError, DESCRIPTOR_NAME, EntryName, INDEX_NAME, OCI_LAYOUT_NAME, blob_name, classify_name,
    io_err, part_name,
};

use super::limits::{
    MAX_DESCRIPTOR_BYTES, MAX_INDEX_BYTES, MAX_MANIFEST_BYTES, MAX_OCI_LAYOUT_BYTES,
};

/// What an entry of a volume is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// `oci-layout`.
    OciLayout,
    /// `index.json`.
    Index,
    /// A manifest, `blobs/sha256/<hex>`.
    Manifest {
        /// Its digest.
        digest: Digest,
    },
    /// A whole blob, `blobs/sha256/<hex>`.
    Blob {
        /// Its digest.
        digest: Digest,
    },
    /// Part of a split blob, `blobs/sha256/<hex>.part<N>`.
    BlobPart {
        /// The digest of the whole blob.
        digest: Digest,
        /// The part number, from 1.
        part: u32,
    },
}

/// The decompressed stream of a volume.
enum Stream {
    /// Any zstd stream (a format-1 volume, or a volume read from a pipe).
    Plain(Box<dyn Read + Send>),
    /// A format-2 volume file, read frame by frame against its seek index.
    Framed(Box<FrameReader<fs_err::File>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(r) => r.read(buf),
            Stream::Framed(r) => r.read(buf),
        }
    }
}

/// One volume being read. Obtain entries with [`VolumeReader::next_entry`]; an entry not read
/// to its end is skipped (decompressed and discarded, not hashed) by the next call.
pub struct VolumeReader {
    path: PathBuf,
    stream: Stream,
    /// Tar offset of the current entry's header (format 2 read through the index).
    entry_offset: u64,
    descriptor: Descriptor,
    /// Unread bytes of the current entry's body, then its padding.
    remaining: u64,
    padding: u64,
    current: Option<String>,
    seen: HashSet<String>,
    ended: bool,
}

/// One entry being read; `Read` gives its content, verified against its digest at the end.
pub struct Entry<'a> {
    reader: &'a mut VolumeReader,
    kind: EntryKind,
    name: String,
    size: u64,
    /// Digest the content must have, and what to call it in errors.
    expected: Option<(Digest, String, Digest)>,
    hasher: Sha256,
    read: u64,
    /// The content so far of a manifest, `index.json` or `oci-layout` (bounded by their
    /// limits), checked by [`super::sanity`] at the end.
    content: Option<Vec<u8>>,
}

impl VolumeReader {
    /// Opens the volume at `path` and reads its descriptor (the first entry) only. A
    /// format-2 volume is read through its seek index, which is checked as it is read.
    pub fn open(path: &Path) -> Result<VolumeReader, BundleError> {
        VolumeReader::open_indexed(path).map(|(reader, _)| reader)
    }

    /// [`VolumeReader::open`], also giving the volume's seek index (format 2).
    pub(crate) fn open_indexed(
        path: &Path,
    ) -> Result<
        (
            VolumeReader,
            Option<std::sync::Arc<super::seek::FrameIndex>>,
        ),
        BundleError,
    > {
        let (file, index) = super::seek::open_index(path)?;
        let Some(index) = index else {
            let reader = VolumeReader::from_reader(path, file)?;
            if reader.descriptor.format_version >= 2 {
                return Err(BundleError::SeekIndex {
                    volume: path.to_owned(),
                    reason: format!(
                        "the descriptor says format {} but the file does not end with a seek index: the volume is truncated or damaged",
                        reader.descriptor.format_version
                    ),
                });
            }
            return Ok((reader, None));
        };
        let index = std::sync::Arc::new(index);
        let reader = VolumeReader::with_index(path, file, index.clone())?;
        Ok((reader, Some(index)))
    }

    /// Reads a format-2 volume from frame 0 through `index`.
    pub(crate) fn with_index(
        path: &Path,
        file: fs_err::File,
        index: std::sync::Arc<super::seek::FrameIndex>,
    ) -> Result<VolumeReader, BundleError> {
        let frames = FrameReader::new(file, index, path, 0)?;
        let reader = VolumeReader::start(path.to_owned(), Stream::Framed(Box::new(frames)))?;
        if reader.descriptor.format_version < 2 {
            return Err(BundleError::SeekIndex {
                volume: path.to_owned(),
                reason: format!(
                    "the file ends with a seek index but the descriptor says format {}",
                    reader.descriptor.format_version
                ),
            });
        }
        Ok(reader)
    }

    /// Reads a volume from any byte stream (e.g. standard input); `volume` names it in errors.
    /// A format-2 volume read this way is decompressed as one stream (its seek index is
    /// skipped, not checked).
    pub fn from_reader(
        volume: impl Into<PathBuf>,
        compressed: impl Read + Send + 'static,
    ) -> Result<VolumeReader, BundleError> {
        let path = volume.into();
        let decoder =
            zstd::stream::read::Decoder::new(compressed).map_err(|source| BundleError::Read {
                volume: path.clone(),
                entry: None,
                source,
            })?;
        VolumeReader::start(path, Stream::Plain(Box::new(decoder)))
    }

    fn start(path: PathBuf, stream: Stream) -> Result<VolumeReader, BundleError> {
        let mut reader = VolumeReader {
            path,
            stream,
            entry_offset: 0,
            descriptor: placeholder_descriptor(),
            remaining: 0,
            padding: 0,
            current: None,
            seen: HashSet::new(),
            ended: false,
        };
        let not_first = |reader: &VolumeReader, entry: &str| BundleError::DescriptorNotFirst {
            volume: reader.path.clone(),
            entry: entry.to_owned(),
        };
        let Some((name, size)) = reader.next_header()? else {
            return Err(not_first(&reader, "<end of archive>"));
        };
        if name != DESCRIPTOR_NAME {
            return Err(not_first(&reader, &name));
        }
        if size > MAX_DESCRIPTOR_BYTES {
            return Err(reader.unexpected(
                &name,
                format!("{size} bytes exceeds the limit of {MAX_DESCRIPTOR_BYTES} bytes"),
            ));
        }
        reader.descriptor = reader.parse_descriptor(size)?;
        reader.seen.insert(name);
        Ok(reader)
    }

    /// Parses the descriptor (`size` bytes) as it streams: only the typed fields are kept.
    fn parse_descriptor(&mut self, size: u64) -> Result<Descriptor, BundleError> {
        let path = self.path.clone();
        let (parsed, consumed) = {
            let mut stream = ReadStream(self);
            let mut counted = Counted {
                inner: (&mut stream).take(size),
                count: 0,
            };
            let parsed = Descriptor::from_reader(
                io::BufReader::with_capacity(64 << 10, &mut counted),
                &path,
            );
            // Whatever the parser left (nothing, unless it failed) is skipped.
            let rest = io::copy(&mut counted.inner, &mut io::sink());
            (parsed, rest.map(|_| counted.count))
        };
        let consumed = match consumed {
            Ok(n) => n,
            Err(e) => return Err(self.wrap_io(e)),
        };
        if consumed < size {
            return Err(self.truncated());
        }
        self.remaining = 0;
        parsed
    }

    /// The volume's descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// Format 2 read through the index: the tar offset of the current entry's header.
    pub(crate) fn entry_offset(&self) -> u64 {
        self.entry_offset
    }

    /// The volume's path (or name given to [`VolumeReader::from_reader`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next entry, or `None` at the end of the archive. Directories `blobs/` and
    /// `blobs/sha256/` are passed over.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, BundleError> {
        loop {
            let Some((name, size)) = self.next_header()? else {
                return Ok(None);
            };
            let class = classify_name(&name).expect("checked by next_header");
            if class != EntryName::Dir && self.seen.contains(&name) {
                return Err(BundleError::DuplicateEntry {
                    volume: self.path.clone(),
                    entry: name,
                });
            }
            let kind = match class {
                EntryName::Dir => continue,
                EntryName::Descriptor => {
                    return Err(BundleError::DuplicateEntry {
                        volume: self.path.clone(),
                        entry: name,
                    });
                }
                EntryName::OciLayout => {
                    self.check_small(&name, size, MAX_OCI_LAYOUT_BYTES)?;
                    (EntryKind::OciLayout, None)
                }
                EntryName::Index => {
                    self.check_small(&name, size, MAX_INDEX_BYTES)?;
                    (EntryKind::Index, None)
                }
                EntryName::Blob(digest) => self.check_blob(&name, size, digest)?,
                EntryName::Part(digest, part) => self.check_part(&name, size, digest, part)?,
            };
            if !self.seen.insert(name.clone()) {
                return Err(BundleError::DuplicateEntry {
                    volume: self.path.clone(),
                    entry: name,
                });
            }
            let (kind, expected) = kind;
            // Small structured entries are kept as they are read and checked at their end.
            let content = match kind {
                EntryKind::Manifest { .. } => {
                    self.check_small(&name, size, MAX_MANIFEST_BYTES)?;
                    Some(Vec::new())
                }
                EntryKind::Index | EntryKind::OciLayout => Some(Vec::new()),
                _ => None,
            };
            return Ok(Some(Entry {
                reader: self,
                kind,
                name,
                size,
                expected,
                hasher: Sha256::new(),
                read: 0,
                content,
            }));
        }
    }

    /// Reads entries up to the one named `name` and leaves the reader at its content (read it
    /// with [`VolumeReader::body`]); an error if the volume has no such entry.
    pub(crate) fn seek_entry(&mut self, name: &str) -> Result<u64, BundleError> {
        while let Some(entry) = self.next_entry()? {
            if entry.name() == name {
                return Ok(entry.size());
            }
        }
        Err(BundleError::MissingEntries {
            volume: self.path.clone(),
            entries: vec![name.to_owned()],
        })
    }

    /// The unread content of the current entry, as plain bytes (not hashed: for range reads,
    /// whose reader checks what it needs).
    pub(crate) fn body(&mut self) -> impl Read + '_ {
        Body(self)
    }

    /// Reads every entry with `visit` (which may read or ignore each), then [`finish`]es.
    ///
    /// [`finish`]: VolumeReader::finish
    pub fn for_each_entry(
        mut self,
        mut visit: impl FnMut(&mut Entry<'_>) -> Result<(), BundleError>,
    ) -> Result<(), BundleError> {
        while let Some(mut entry) = self.next_entry()? {
            visit(&mut entry)?;
        }
        self.finish()
    }

    /// Skips what is left, then checks the end of the volume: nothing but zeros after the tar
    /// end marker, a complete zstd frame (its checksum is verified by zstd), and every entry
    /// the descriptor places in this volume present.
    pub fn finish(mut self) -> Result<(), BundleError> {
        while self.next_entry()?.is_some() {}
        self.current = None;
        let mut buf = [0u8; 8192];
        loop {
            let n = self.read_stream(&mut buf)?;
            if n == 0 {
                break;
            }
            if buf[..n].iter().any(|&b| b != 0) {
                return Err(BundleError::TrailingData {
                    volume: self.path.clone(),
                });
            }
        }
        let missing: Vec<String> = expected_entries(&self.descriptor)
            .into_iter()
            .filter(|e| !self.seen.contains(e))
            .collect();
        if !missing.is_empty() {
            return Err(BundleError::MissingEntries {
                volume: self.path.clone(),
                entries: missing,
            });
        }
        Ok(())
    }

    /// Extracts the volume into `dir` as an OCI layout (plus `airlift-bundle.json`), verifying
    /// every digest. Only the allowed names are created, each with `create_new` (which does not
    /// follow a symlink planted at that name), and `blobs/`, `blobs/sha256/` must be real
    /// directories, so nothing can be written outside `dir`.
    pub fn extract_to(mut self, dir: &Path) -> Result<(), BundleError> {
        fs_err::create_dir_all(dir).map_err(io_err(dir))?;
        let blobs = dir.join("blobs/sha256");
        for d in [dir.join("blobs"), blobs.clone()] {
            match std::fs::symlink_metadata(&d) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(_) => {
                    return Err(BundleError::Io {
                        path: d,
                        source: io::Error::other("exists and is not a directory"),
                    });
                }
                Err(_) => fs_err::create_dir(&d).map_err(io_err(&d))?,
            }
        }
        // Written from the parsed descriptor: what was checked is what is written.
        let raw = self.descriptor.to_bytes();
        create_file(&dir.join(DESCRIPTOR_NAME), &mut raw.as_slice())?;
        while let Some(mut entry) = self.next_entry()? {
            let target = dir.join(entry.name());
            if let Err(e) = create_file(&target, &mut entry) {
                let _ = std::fs::remove_file(&target);
                return Err(e);
            }
        }
        self.finish()
    }

    fn unexpected(&self, entry: &str, reason: String) -> BundleError {
        BundleError::UnexpectedEntry {
            volume: self.path.clone(),
            entry: entry.to_owned(),
            reason,
        }
    }

    fn check_small(&self, name: &str, size: u64, max: u64) -> Result<(), BundleError> {
        if size > max {
            return Err(self.unexpected(name, format!("{size} bytes is too large (max {max})")));
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn check_blob(
        &self,
        name: &str,
        size: u64,
        digest: Digest,
    ) -> Result<(EntryKind, Option<(Digest, String, Digest)>), BundleError> {
        let d = &self.descriptor;
        let (what, want) = if let Some(m) = d.manifests.get(&digest) {
            ("manifest", m.size)
        } else if let Some(b) = d.blobs.get(&digest) {
            if let Some(loc) = b.location(d.volume, None) {
                self.check_offset(name, loc.tar_offset)?;
            } else {
                return Err(self.unexpected(
                    name,
                    format!(
                        "the descriptor does not place blob {digest} whole in volume {} (it is in volume(s) {:?})",
                        d.volume,
                        b.volume_numbers()
                    ),
                ));
            }
            ("blob", b.size)
        } else {
            return Err(self.unexpected(name, format!("{digest} is not in the descriptor")));
        };
        if size != want {
            return Err(self.unexpected(
                name,
                format!("size {size} disagrees with the descriptor's {want} for {what} {digest}"),
            ));
        }
        let kind = if what == "manifest" {
            EntryKind::Manifest {
                digest: digest.clone(),
            }
        } else {
            EntryKind::Blob {
                digest: digest.clone(),
            }
        };
        Ok((kind, Some((digest.clone(), what.to_owned(), digest))))
    }

    #[allow(clippy::type_complexity)]
    fn check_part(
        &self,
        name: &str,
        size: u64,
        digest: Digest,
        part: u32,
    ) -> Result<(EntryKind, Option<(Digest, String, Digest)>), BundleError> {
        let d = &self.descriptor;
        let loc = d
            .blobs
            .get(&digest)
            .and_then(|b| b.location(d.volume, Some(part)))
            .ok_or_else(|| {
                self.unexpected(
                    name,
                    format!(
                        "the descriptor has no part {part} of blob {digest} in volume {}",
                        d.volume
                    ),
                )
            })?;
        self.check_offset(name, loc.tar_offset)?;
        if size != loc.length {
            return Err(self.unexpected(
                name,
                format!(
                    "size {size} disagrees with the descriptor's {} for part {part} of blob {digest}",
                    loc.length
                ),
            ));
        }
        let part_digest = loc.digest.clone().expect("checked by Descriptor::parse");
        Ok((
            EntryKind::BlobPart {
                digest: digest.clone(),
                part,
            },
            Some((part_digest, format!("part {part} of blob"), digest)),
        ))
    }

    /// Skips the rest of the current entry, reads the next header and checks it. Returns the
    /// entry name and size, or `None` at the end-of-archive marker.
    fn next_header(&mut self) -> Result<Option<(String, u64)>, BundleError> {
        if self.ended {
            return Ok(None);
        }
        let skip = self.remaining + self.padding;
        if skip > 0 {
            let result = {
                let mut raw = ReadStream(self);
                io::copy(&mut (&mut raw).take(skip), &mut io::sink())
            };
            let copied = result.map_err(|e| self.wrap_io(e))?;
            if copied != skip {
                return Err(self.truncated());
            }
            self.remaining = 0;
            self.padding = 0;
        }
        let previous = self.current.take();
        let mut block = [0u8; BLOCK as usize];
        self.current = previous.map(|p| format!("after {p}"));
        self.check_frame_start()?;
        self.read_exact_stream(&mut block)?;
        if block.iter().all(|&b| b == 0) {
            self.check_end_frame()?;
            self.ended = true;
            self.current = None;
            return Ok(None);
        }
        let header = tar::Header::from_byte_slice(&block);
        let raw_name = header.path_bytes();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let unsafe_entry = |reason: &str| BundleError::UnsafeEntry {
            volume: self.path.clone(),
            entry: name.clone(),
            reason: reason.to_owned(),
        };
        if header.cksum().ok() != Some(checksum(&block)) {
            return Err(unsafe_entry(
                "bad tar header checksum (corrupt or not a tar)",
            ));
        }
        let size = header
            .entry_size()
            .map_err(|_| unsafe_entry("invalid size field"))?;
        let kind = classify_name(&name).map_err(|r| unsafe_entry(&r))?;
        let is_dir = kind == EntryName::Dir;
        match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous if !is_dir => {}
            tar::EntryType::Directory if is_dir && size == 0 => {}
            tar::EntryType::Directory => {
                return Err(unsafe_entry(
                    "directories other than blobs/ and blobs/sha256/ are not allowed",
                ));
            }
            t => {
                let what = match t {
                    tar::EntryType::Symlink => "symbolic links are not allowed",
                    tar::EntryType::Link => "hard links are not allowed",
                    tar::EntryType::Char | tar::EntryType::Block => "devices are not allowed",
                    tar::EntryType::Fifo => "fifos are not allowed",
                    tar::EntryType::Regular => "a regular file cannot have a directory name",
                    _ => "only regular files are allowed (no links, devices or extension headers)",
                };
                return Err(unsafe_entry(what));
            }
        }
        if raw_name.contains(&0) || std::str::from_utf8(&raw_name).is_err() {
            return Err(unsafe_entry("name is not valid UTF-8"));
        }
        self.remaining = size;
        self.padding = size.div_ceil(BLOCK) * BLOCK - size;
        self.current = Some(name.clone());
        Ok(Some((name, size)))
    }

    /// Format 2: the next header must be a frame of its own (512 bytes) or start the end
    /// marker's frame.
    fn check_frame_start(&mut self) -> Result<(), BundleError> {
        let Stream::Framed(frames) = &self.stream else {
            return Ok(());
        };
        let pos = frames.position();
        self.entry_offset = pos;
        let index = frames.index();
        let fail = |reason: String| {
            Err(BundleError::SeekIndex {
                volume: self.path.clone(),
                reason,
            })
        };
        match index.frame_at(pos) {
            None => fail(format!(
                "the frames end at tar offset {pos}, before the tar archive does"
            )),
            Some(i) if index.frame(i).0 != pos => fail(format!(
                "the tar entry at offset {pos} does not start a frame (frame {i} starts at {})",
                index.frame(i).0
            )),
            Some(i) if index.frame(i).1 != BLOCK && index.frame(i).1 != TAR_END => fail(format!(
                "frame {i} at tar offset {pos} holds {} bytes; a tar header is a frame of {BLOCK}",
                index.frame(i).1
            )),
            Some(_) => Ok(()),
        }
    }

    /// Format 2: the end marker is the last frame, of 1024 bytes.
    fn check_end_frame(&self) -> Result<(), BundleError> {
        let Stream::Framed(frames) = &self.stream else {
            return Ok(());
        };
        let index = frames.index();
        let last = index.len() - 1;
        if index.frame(last) != (self.entry_offset, TAR_END) {
            return Err(BundleError::SeekIndex {
                volume: self.path.clone(),
                reason: format!(
                    "the tar end marker at offset {} is not the last frame of {TAR_END} bytes",
                    self.entry_offset
                ),
            });
        }
        Ok(())
    }

    /// Format 2: a blob entry must be where the descriptor says.
    fn check_offset(&self, name: &str, loc: Option<u64>) -> Result<(), BundleError> {
        if !matches!(self.stream, Stream::Framed(_)) || loc == Some(self.entry_offset) {
            return Ok(());
        }
        Err(self.unexpected(
            name,
            format!(
                "found at tar offset {}, the descriptor places it at {}",
                self.entry_offset,
                loc.map_or("no offset".into(), |o| o.to_string())
            ),
        ))
    }

    fn read_exact_stream(&mut self, buf: &mut [u8]) -> Result<(), BundleError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.read_stream(&mut buf[filled..])? {
                0 => return Err(self.truncated()),
                n => filled += n,
            }
        }
        Ok(())
    }

    fn read_stream(&mut self, buf: &mut [u8]) -> Result<usize, BundleError> {
        loop {
            match self.stream.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.wrap_io(e)),
            }
        }
    }

    fn truncated(&self) -> BundleError {
        BundleError::Truncated {
            volume: self.path.clone(),
            entry: self.current.clone(),
        }
    }

    fn wrap_io(&self, e: io::Error) -> BundleError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return self.truncated();
        }
        match e.get_ref().and_then(|i| i.downcast_ref::<BundleError>()) {
            Some(_) => into_bundle_error(e, &self.path),
            None => BundleError::Read {
                volume: self.path.clone(),
                entry: self.current.clone(),
                source: e,
            },
        }
    }
}

/// `Read` over the raw decompressed stream, for skipping.
struct ReadStream<'a>(&'a mut VolumeReader);
impl Read for ReadStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.stream.read(buf)
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    count: u64,
}
impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Turns an I/O error from [`Entry`]'s `Read` back into the [`BundleError`] it carries.
pub(crate) fn into_bundle_error(e: io::Error, volume: &Path) -> BundleError {
    if e.get_ref().is_some_and(|i| i.is::<BundleError>()) {
        let inner = e.into_inner().expect("checked");
        return *inner.downcast::<BundleError>().expect("checked");
    }
    BundleError::Read {
        volume: volume.to_owned(),
        entry: None,
        source: e,
    }
}

/// Every entry name the descriptor says its volume holds.
fn expected_entries(d: &Descriptor) -> Vec<String> {
    let mut names = vec![
        DESCRIPTOR_NAME.to_owned(),
        OCI_LAYOUT_NAME.to_owned(),
        INDEX_NAME.to_owned(),
    ];
    names.extend(d.manifests.keys().map(blob_name));
    for (digest, entry) in &d.blobs {
        for loc in entry.volumes.iter().filter(|l| l.volume == d.volume) {
            names.push(match loc.part {
                Some(n) => part_name(digest, n),
                None => blob_name(digest),
            });
        }
    }
    names
}

/// The tar header checksum: the sum of all bytes, the checksum field counted as spaces.
pub(crate) fn checksum(block: &[u8; BLOCK as usize]) -> u32 {
    block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum()
}

fn create_file(path: &Path, content: &mut dyn Read) -> Result<(), BundleError> {
    let mut f = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err(path))?;
    match io::copy(content, &mut f) {
        Ok(_) => Ok(()),
        Err(e) if e.get_ref().is_some_and(|i| i.is::<BundleError>()) => {
            Err(into_bundle_error(e, path))
        }
        Err(e) => Err(BundleError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// The unread content of the current entry (see [`VolumeReader::body`]).
struct Body<'a>(&'a mut VolumeReader);

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.0;
        let want = buf
            .len()
            .min(usize::try_from(r.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = r
            .read_stream(&mut buf[..want])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, r.truncated()));
        }
        r.remaining -= n as u64;
        Ok(n)
    }
}

/// A descriptor-shaped value used only until the real one is read.
fn placeholder_descriptor() -> Descriptor {
    Descriptor {
        format_version: super::FORMAT_VERSION,
        tool_version: String::new(),
        created: String::new(),
        lists: Vec::new(),
        bundle_id: String::new(),
        volume: 1,
        volume_count: 1,
        images: Vec::new(),
        manifests: Default::default(),
        blobs: Default::default(),
        excluded_blobs: Default::default(),
        missing_images: Vec::new(),
        inventoried: Vec::new(),
    }
}

impl Entry<'_> {
    /// What the entry is.
    pub fn kind(&self) -> &EntryKind {
        &self.kind
    }

    /// The entry name in the tar (`blobs/sha256/<hex>`...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size of the content.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The volume it is read from.
    pub fn volume(&self) -> &Path {
        &self.reader.path
    }

    /// Reads the content to its end into `sink`, returning the bytes copied; the digest is
    /// checked at the end.
    pub fn copy_to(&mut self, sink: &mut dyn io::Write) -> Result<u64, BundleError> {
        let volume = self.reader.path.clone();
        io::copy(self, sink).map_err(|e| into_bundle_error(e, &volume))
    }

    /// Reads the content to its end, discarding it, to check its digest.
    pub fn verify(&mut self) -> Result<(), BundleError> {
        self.copy_to(&mut io::sink()).map(|_| ())
    }

    fn mismatch(&self, digest: &Digest, what: &str, blob: &Digest) -> BundleError {
        BundleError::DigestMismatch(Box::new(super::Mismatch {
            what: what.to_owned(),
            digest: digest.clone(),
            images: self.reader.descriptor.images_using(blob),
            volume: self.reader.path.clone(),
            entry: self.name.clone(),
            actual: Digest::from_sha256(&self.hasher.clone().finalize()),
            read: self.read,
        }))
    }
}

impl Read for Entry<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.reader.remaining == 0 {
            // The end: report corruption instead of end-of-file.
            if let Some((digest, what, blob)) = &self.expected
                && Digest::from_sha256(&self.hasher.clone().finalize()) != *digest
            {
                let err = self.mismatch(digest, what, blob);
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
            // Verified once; later reads are plain end-of-file.
            self.expected = None;
            if let Some(content) = self.content.take() {
                let d = &self.reader.descriptor;
                let checked = match &self.kind {
                    EntryKind::Manifest { digest } => super::sanity::manifest(d, digest, &content),
                    EntryKind::Index => super::sanity::index_json(d, &content),
                    EntryKind::OciLayout => super::sanity::oci_layout(&content),
                    _ => Ok(()),
                };
                if let Err(reason) = checked {
                    let err = BundleError::InvalidContent {
                        volume: self.reader.path.clone(),
                        entry: self.name.clone(),
                        reason,
                    };
                    return Err(io::Error::new(io::ErrorKind::InvalidData, err));
                }
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.reader.remaining).unwrap_or(usize::MAX));
        let n = match self.reader.stream.read(&mut buf[..want]) {
            Ok(0) => {
                let err = self.reader.truncated();
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let err = self.reader.wrap_io(e);
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
        };
        self.reader.remaining -= n as u64;
        self.read += n as u64;
        self.hasher.update(&buf[..n]);
        if let Some(content) = &mut self.content {
            content.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
