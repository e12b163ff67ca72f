//! The verified source side of a chunked upload: hands out the blob's bytes chunk by chunk,
//! hashing them as they pass, and replays the bytes of a dropped chunk without holding them.
//!
//! A chunk's bytes stream from the source into the `PATCH` body and are gone once sent. When
//! a chunk fails, the registry says how much of it arrived, and the feed hands out the rest
//! again: from the source with `Range` ([`Keep::Refetch`]), starting at the last saved hash
//! state at or below the resume point (one every [`SNAPSHOT`] bytes), so the bytes sent
//! again are hashed again and the digest check at the end covers exactly what the registry
//! received (a bundle reads them again from its volume, see
//! [`super::bundle_source::blob_range`]). A body that cannot be read twice (a blob already
//! held whole, at most one chunk) keeps the current chunk in memory instead
//! ([`Keep::Memory`]). The last bytes of the blob are held back until the digest and size are
//! proven right, so a wrong body never completes.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use sha2::{Digest as _, Sha256};

use crate::reference::Digest;

use super::TransferError;
use super::blob::ByteStream;

/// How far apart saved hash states are: a resume refetches at most this much before the
/// point the registry reports.
const SNAPSHOT: u64 = 256 << 10;

/// Opens bytes `from..to` of the blob again (a ranged `GET` on the source).
pub(crate) type Refetch =
    Arc<dyn Fn(u64, u64) -> BoxFuture<'static, Result<ByteStream, TransferError>> + Send + Sync>;

/// How the bytes of a failed chunk are found again.
pub(crate) enum Keep {
    /// Read again from the source; hash states saved at every multiple of [`SNAPSHOT`] at or
    /// above the current chunk's start (and the last one below it).
    Refetch(Refetch, Vec<(u64, Sha256)>),
    /// Kept in memory since the current chunk's start: pieces and the offset of the first.
    Memory(VecDeque<Bytes>, u64),
    /// Not kept: a failure ends the upload.
    Nothing,
}

/// Bytes being handed out again after a rewind.
struct Replay {
    /// Offset of the next byte from `source`.
    at: u64,
    /// Bytes below this are hashed again but not handed out.
    send_from: u64,
    /// Whether the replayed bytes go through the hasher (refetched ones do).
    rehash: bool,
    source: ReplaySource,
}

enum ReplaySource {
    Opening(BoxFuture<'static, Result<ByteStream, TransferError>>),
    Stream(ByteStream),
    Memory(VecDeque<Bytes>),
}

/// The state shared by the bodies of one blob's upload requests.
pub(crate) struct Feed {
    inner: ByteStream,
    inner_done: bool,
    /// Bytes pulled from `inner`.
    pulled: u64,
    hasher: Sha256,
    /// Bytes handed out (the position the next body continues from).
    given: u64,
    /// Bytes at `given` not handed out yet.
    pending: Bytes,
    /// Start of the current chunk: the registry holds everything below it.
    floor: u64,
    keep: Keep,
    replay: Option<Replay>,
    verified: bool,
    failed: bool,
    /// Bumped by each rewind, so the body of a failed request gives nothing more.
    generation: u64,
    digest: Digest,
    size: u64,
    url: String,
    failure: Arc<Mutex<Option<TransferError>>>,
}

impl Feed {
    /// A feed over `inner` (the `size` bytes of `digest`, from `url`); the first error it
    /// meets (source failure, digest or size mismatch) goes into `failure`.
    pub fn new(
        inner: ByteStream,
        digest: &Digest,
        size: u64,
        url: String,
        keep: Keep,
        failure: Arc<Mutex<Option<TransferError>>>,
    ) -> Self {
        let keep = match keep {
            Keep::Refetch(f, _) => Keep::Refetch(f, vec![(0, Sha256::new())]),
            other => other,
        };
        Feed {
            inner,
            inner_done: false,
            pulled: 0,
            hasher: Sha256::new(),
            given: 0,
            pending: Bytes::new(),
            floor: 0,
            keep,
            replay: None,
            verified: false,
            failed: false,
            generation: 0,
            digest: digest.clone(),
            size,
            url,
            failure,
        }
    }

    /// Bytes handed out so far.
    pub fn given(&self) -> u64 {
        self.given
    }

    /// Whether a failure of the source or of verification ended the feed.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The registry holds everything below `offset`: what is kept for resends starts there.
    pub fn commit(&mut self, offset: u64) {
        self.floor = offset;
        match &mut self.keep {
            Keep::Refetch(_, snaps) => {
                let keep_from = snaps.iter().rposition(|(o, _)| *o <= offset).unwrap_or(0);
                snaps.drain(..keep_from);
            }
            Keep::Memory(pieces, first) => {
                while let Some(p) = pieces.front() {
                    if *first + p.len() as u64 > offset {
                        break;
                    }
                    *first += p.len() as u64;
                    pieces.pop_front();
                }
            }
            Keep::Nothing => {}
        }
    }

    /// Stops keeping bytes for resends (a whole-blob `PUT` is not resumed).
    pub fn forget(&mut self) {
        self.keep = Keep::Nothing;
    }

    /// The next body continues at `offset` (at least the current chunk's start, at most what
    /// was handed out): what lies between is handed out again. False when it cannot be.
    pub fn rewind(&mut self, offset: u64) -> bool {
        self.generation += 1;
        if offset == self.given {
            return true;
        }
        if offset > self.given || offset < self.floor || self.failed {
            return false;
        }
        // The replay covers `offset..pulled`: everything handed out or pulled since.
        let hashed = match &self.replay {
            Some(r) if r.rehash => r.at,
            _ => self.pulled,
        };
        let replay = match &mut self.keep {
            Keep::Nothing => return false,
            Keep::Memory(pieces, first) => {
                let mut out = VecDeque::new();
                let mut at = *first;
                for p in pieces.iter() {
                    let end = at + p.len() as u64;
                    if end > offset {
                        let skip = offset.saturating_sub(at) as usize;
                        out.push_back(p.slice(skip..));
                    }
                    at = end;
                }
                if let Some(Replay {
                    rehash: true, at, ..
                }) = &self.replay
                {
                    // A refetch cannot be under way in memory mode.
                    debug_assert!(*at == self.pulled);
                }
                Replay {
                    at: offset,
                    send_from: offset,
                    rehash: false,
                    source: ReplaySource::Memory(out),
                }
            }
            Keep::Refetch(refetch, snaps) => {
                let Some(i) = snaps
                    .iter()
                    .rposition(|(o, _)| *o <= offset && *o <= hashed)
                else {
                    return false;
                };
                snaps.truncate(i + 1);
                let (from, state) = snaps[i].clone();
                self.hasher = state;
                self.verified = false;
                Replay {
                    at: from,
                    send_from: offset,
                    rehash: true,
                    source: ReplaySource::Opening(refetch(from, self.pulled)),
                }
            }
        };
        self.pending = Bytes::new();
        self.given = offset;
        self.replay = Some(replay);
        true
    }

    /// A body handing out bytes up to `limit` (exclusive), from where the feed stands.
    pub fn body(feed: &Arc<Mutex<Feed>>, limit: u64) -> BoxStream<'static, std::io::Result<Bytes>> {
        let generation = feed.lock().expect("not poisoned").generation;
        FeedBody {
            feed: feed.clone(),
            limit,
            generation,
        }
        .boxed()
    }

    fn fail(&mut self, e: TransferError) -> Poll<Option<std::io::Result<Bytes>>> {
        let msg = e.to_string();
        self.failed = true;
        let mut slot = self.failure.lock().expect("not poisoned");
        if slot.is_none() {
            *slot = Some(e);
        }
        Poll::Ready(Some(Err(std::io::Error::other(msg))))
    }

    fn integrity_error(&self) -> TransferError {
        TransferError::Integrity {
            digest: self.digest.clone(),
            url: self.url.clone(),
            actual: Digest::from_sha256(&self.hasher.clone().finalize()),
            received: self.pulled,
            expected_size: self.size,
        }
    }

    /// Hashes `bytes` at `offset`, saving hash states at [`SNAPSHOT`] boundaries.
    fn absorb(&mut self, offset: u64, bytes: &Bytes) {
        let Keep::Refetch(_, snaps) = &mut self.keep else {
            self.hasher.update(bytes);
            return;
        };
        let mut at = offset;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let boundary = (at / SNAPSHOT + 1) * SNAPSHOT;
            let n = ((boundary - at) as usize).min(rest.len());
            self.hasher.update(&rest[..n]);
            at += n as u64;
            rest = &rest[n..];
            if at == boundary && snaps.last().is_none_or(|(o, _)| *o < at) {
                snaps.push((at, self.hasher.clone()));
            }
        }
    }

    /// Makes sure the source is complete and its digest right before the last bytes go out.
    fn poll_verify(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        while !self.inner_done {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(b))) if b.is_empty() => {}
                Poll::Ready(Some(Ok(b))) => {
                    self.pulled += b.len() as u64;
                    let e = self.integrity_error();
                    let _ = self.fail(e);
                    return Poll::Ready(Err(()));
                }
                Poll::Ready(Some(Err(e))) => {
                    let _ = self.fail(e);
                    return Poll::Ready(Err(()));
                }
                Poll::Ready(None) => self.inner_done = true,
            }
        }
        let actual = Digest::from_sha256(&self.hasher.clone().finalize());
        if self.pulled != self.size || actual != self.digest {
            let e = self.integrity_error();
            let _ = self.fail(e);
            return Poll::Ready(Err(()));
        }
        self.verified = true;
        Poll::Ready(Ok(()))
    }

    /// The next bytes below `limit`, or `None` once `limit` is reached.
    fn poll_piece(
        &mut self,
        cx: &mut Context<'_>,
        limit: u64,
    ) -> Poll<Option<std::io::Result<Bytes>>> {
        loop {
            if self.failed {
                return Poll::Ready(Some(Err(std::io::Error::other("blob source failed"))));
            }
            if self.given >= limit {
                return Poll::Ready(None);
            }
            if !self.pending.is_empty() {
                let n = (self.pending.len() as u64).min(limit - self.given) as usize;
                if self.given + n as u64 == self.size
                    && !self.verified
                    && ready!(self.poll_verify(cx)).is_err()
                {
                    continue;
                }
                self.given += n as u64;
                return Poll::Ready(Some(Ok(self.pending.split_to(n))));
            }
            if let Some(replay) = &mut self.replay {
                let next = match &mut replay.source {
                    ReplaySource::Opening(f) => match ready!(f.as_mut().poll(cx)) {
                        Ok(s) => {
                            replay.source = ReplaySource::Stream(s);
                            continue;
                        }
                        Err(e) => Some(Err(e)),
                    },
                    ReplaySource::Stream(s) => ready!(s.as_mut().poll_next(cx)),
                    ReplaySource::Memory(pieces) => pieces.pop_front().map(Ok),
                };
                let mut piece = match next {
                    Some(Ok(p)) => p,
                    Some(Err(e)) => return self.fail(e),
                    None => {
                        let e = TransferError::Registry(crate::registry::RegistryError::Protocol {
                            url: self.url.clone(),
                            reason: format!(
                                "reading bytes {}..{} again ended at {}",
                                replay.send_from, self.pulled, replay.at
                            ),
                        });
                        return self.fail(e);
                    }
                };
                let (at, send_from, rehash) = (replay.at, replay.send_from, replay.rehash);
                piece.truncate(piece.len().min((self.pulled - at) as usize));
                let end = at + piece.len() as u64;
                if end >= self.pulled {
                    self.replay = None;
                } else if let Some(r) = &mut self.replay {
                    r.at = end;
                }
                if rehash {
                    self.absorb(at, &piece);
                }
                if end > send_from {
                    let skip = send_from.saturating_sub(at) as usize;
                    self.pending = piece.slice(skip..);
                }
                continue;
            }
            match ready!(self.inner.as_mut().poll_next(cx)) {
                Some(Ok(piece)) => {
                    if piece.is_empty() {
                        continue;
                    }
                    let at = self.pulled;
                    self.pulled += piece.len() as u64;
                    if self.pulled > self.size {
                        let e = self.integrity_error();
                        return self.fail(e);
                    }
                    self.absorb(at, &piece);
                    if let Keep::Memory(pieces, _) = &mut self.keep {
                        pieces.push_back(piece.clone());
                    }
                    self.pending = piece;
                }
                Some(Err(e)) => return self.fail(e),
                None => {
                    self.inner_done = true;
                    let e = self.integrity_error();
                    return self.fail(e);
                }
            }
        }
    }
}

/// One request's body: bytes from the feed up to `limit`.
struct FeedBody {
    feed: Arc<Mutex<Feed>>,
    limit: u64,
    generation: u64,
}

impl Stream for FeedBody {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut feed = self.feed.lock().expect("not poisoned");
        if feed.generation != self.generation {
            return Poll::Ready(Some(Err(std::io::Error::other("request superseded"))));
        }
        feed.poll_piece(cx, self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use futures_util::stream;

    const LEN: usize = 1 << 20;

    fn data() -> Vec<u8> {
        (0..LEN).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// `bytes` as a stream of 10,000-byte pieces.
    fn pieces(bytes: &[u8]) -> ByteStream {
        let v: Vec<_> = bytes
            .chunks(10_000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        stream::iter(v).boxed()
    }

    /// A refetch reading from `source`, with the byte at `flip` (if any) changed; counts the
    /// bytes it serves into `served`.
    fn refetch_from(source: Vec<u8>, flip: Option<usize>, served: Arc<Mutex<u64>>) -> Refetch {
        Arc::new(move |from, to| {
            let mut part = source[from as usize..to as usize].to_vec();
            if let Some(i) = flip.filter(|&i| (from as usize..to as usize).contains(&i)) {
                part[i - from as usize] ^= 1;
            }
            *served.lock().unwrap() += part.len() as u64;
            futures_util::future::ready(Ok(pieces(&part))).boxed()
        })
    }

    fn feed(keep: Keep) -> (Arc<Mutex<Feed>>, Arc<Mutex<Option<TransferError>>>) {
        let d = data();
        let failure = Arc::new(Mutex::new(None));
        let f = Feed::new(
            pieces(&d),
            &Digest::of(&d),
            LEN as u64,
            "src/repo@x".into(),
            keep,
            failure.clone(),
        );
        (Arc::new(Mutex::new(f)), failure)
    }

    /// Reads a body up to `limit`, or only `take` bytes of it (a request cut short).
    async fn read(feed: &Arc<Mutex<Feed>>, limit: u64, take: Option<usize>) -> Vec<u8> {
        let mut body = Feed::body(feed, limit);
        let mut out = Vec::new();
        while let Some(item) = body.next().await {
            let Ok(b) = item else { break };
            out.extend_from_slice(&b);
            if take.is_some_and(|t| out.len() >= t) {
                out.truncate(take.unwrap());
                break;
            }
        }
        out
    }

    /// A chunk cut at 700,000 bytes whose registry kept 650,000: the rest is fetched again
    /// from the last hash state below, and the whole blob verifies.
    #[tokio::test]
    async fn rewind_refetches_from_the_last_snapshot_and_verifies() {
        let served = Arc::new(Mutex::new(0));
        let (f, failure) = feed(Keep::Refetch(
            refetch_from(data(), None, served.clone()),
            Vec::new(),
        ));
        f.lock().unwrap().commit(0);
        let first = read(&f, LEN as u64, Some(700_000)).await;
        assert!(f.lock().unwrap().rewind(650_000));
        let rest = read(&f, LEN as u64, None).await;
        let mut all = first[..650_000].to_vec();
        all.extend_from_slice(&rest);
        assert_eq!(all, data());
        assert!(failure.lock().unwrap().is_none());
        // From the snapshot at 512 KiB to what had been pulled (a piece past 700,000).
        let refetched = *served.lock().unwrap();
        assert!((700_000 - 524_288..=710_000 - 524_288).contains(&refetched));
    }

    /// Bytes read again that differ from the first reading fail the digest check: the last
    /// bytes are never handed out.
    #[tokio::test]
    async fn corrupt_refetch_never_completes_the_body() {
        let served = Arc::new(Mutex::new(0));
        let (f, failure) = feed(Keep::Refetch(
            refetch_from(data(), Some(600_000), served),
            Vec::new(),
        ));
        let _ = read(&f, LEN as u64, Some(700_000)).await;
        assert!(f.lock().unwrap().rewind(650_000));
        let rest = read(&f, LEN as u64, None).await;
        assert!(650_000 + (rest.len() as u64) < LEN as u64);
        let e = failure.lock().unwrap().take().expect("a failure");
        assert!(e.is_integrity(), "{e}");
    }

    /// Without a way to read again, the current chunk is kept in memory and replayed.
    #[tokio::test]
    async fn memory_mode_replays_the_current_chunk() {
        let (f, failure) = feed(Keep::Memory(VecDeque::new(), 0));
        let a = read(&f, 400_000, None).await;
        f.lock().unwrap().commit(400_000);
        let _ = read(&f, 800_000, Some(100_000)).await;
        assert!(!f.lock().unwrap().rewind(300_000), "below the chunk start");
        assert!(f.lock().unwrap().rewind(450_000));
        let b = read(&f, LEN as u64, None).await;
        let mut all = a;
        all.extend_from_slice(&data()[400_000..450_000]);
        all.extend_from_slice(&b);
        assert_eq!(all, data());
        assert!(failure.lock().unwrap().is_none());
    }
}
