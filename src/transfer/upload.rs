//! Uploading one blob into a registry upload session, verified as it goes and resumable.
//!
//! The body passes through [`Verify`], which hashes it and holds back the last piece until
//! digest and size check out, so a wrong body never completes and the registry commits
//! nothing.
//!
//! A blob of up to one chunk goes as one streaming `PUT`; its caller retries it whole. A
//! larger blob goes as `PATCH` chunks streaming from the source ([`Feed`]). When a chunk fails
//! on the way, the uploader asks the registry how much of the upload it holds (`GET` on the
//! upload URL, its `Range` header) and sends the rest of that chunk from there: read again
//! from the source by range when it can be (a registry, a random-access bundle), else from
//! the copy of the current chunk kept in memory (a source read once, in order). A bundle blob
//! that can be read again goes as one `PATCH` of all but its last chunk (each request costs
//! the registry a session resume and a saved hash state).
//! When the registry no longer knows the session (docker distribution drops one whose last
//! `PATCH` was cut off mid-body), the error goes up and the caller restarts that blob only. A
//! registry that refuses `PATCH` (it does so on the first chunk) gets the blob as one `PUT`,
//! starting over from the bytes of that chunk.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};

use crate::reference::Digest;
use crate::registry::{RegistryError, Repo, UploadSession};
use crate::report::Reporter;

use super::blob::{ByteStream, RetryBudget, jitter};
use super::feed::{Feed, Keep, Refetch};
use super::{TransferError, TransferOptions};

/// The smallest chunk sent: Amazon ECR refuses layer parts under 5 MiB (but the last).
const MIN_CHUNK: u64 = 5 << 20;

/// Statuses with which a registry says it does not do chunked uploads.
const PATCH_REFUSED: [u16; 5] = [400, 405, 415, 416, 501];

/// Uploads blobs for one run: chunk size, retry limits and what it learnt about registries.
pub(crate) struct Uploader {
    chunk_size: u64,
    retries: u32,
    delay: Duration,
    budget: Arc<RetryBudget>,
    reporter: Arc<dyn Reporter>,
    /// Registries that refused a `PATCH` this run: they get whole `PUT`s from then on.
    no_patch: Mutex<HashSet<String>>,
}

impl Uploader {
    /// An uploader sharing the run's retry budget.
    pub fn new(
        opts: &TransferOptions,
        budget: Arc<RetryBudget>,
        reporter: Arc<dyn Reporter>,
    ) -> Self {
        Uploader {
            chunk_size: opts.upload_chunk_size.max(MIN_CHUNK),
            retries: opts.blob_retries,
            delay: opts.retry_delay,
            budget,
            reporter,
            no_patch: Mutex::new(HashSet::new()),
        }
    }

    /// Uploads `body` (`size` bytes of `digest`) into `session` on `dst`. `origin` names
    /// where the bytes came from, for errors. The source cannot be read twice, so a chunked
    /// upload keeps the current chunk in memory to resend it after a drop.
    pub async fn upload(
        &self,
        dst: &Repo,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        body: ByteStream,
        origin: String,
    ) -> Result<(), TransferError> {
        let keep = Keep::Memory(Default::default(), 0);
        self.upload_keeping(dst, session, digest, size, body, origin, keep, false)
            .await
    }

    /// [`Uploader::upload`], always in chunks, even a blob of one chunk: no request is cut
    /// off when the body turns out wrong (the last chunk goes once the digest is proven), so
    /// the session is given up cleanly. A streaming `PUT` cut off mid-body leaves docker
    /// distribution an upload it no longer lets anyone cancel. For sources whose content may
    /// be corrupt at rest (a bundle), where nothing verified it before. Nothing is held for
    /// resends: the bytes of a dropped chunk are read again through `refetch`, and all but
    /// the last chunk goes as one `PATCH`.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_in_chunks(
        &self,
        dst: &Repo,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        body: ByteStream,
        origin: String,
        refetch: Refetch,
    ) -> Result<(), TransferError> {
        let keep = Keep::Refetch(refetch, Vec::new());
        self.upload_keeping(dst, session, digest, size, body, origin, keep, true)
            .await
    }

    /// [`Self::upload`] from a source that `refetch` reads again by range: the bytes of a
    /// dropped chunk are fetched again instead of held.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_refetching(
        &self,
        dst: &Repo,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        body: ByteStream,
        origin: String,
        refetch: Refetch,
    ) -> Result<(), TransferError> {
        let keep = Keep::Refetch(refetch, Vec::new());
        self.upload_keeping(dst, session, digest, size, body, origin, keep, false)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_keeping(
        &self,
        dst: &Repo,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        body: ByteStream,
        origin: String,
        keep: Keep,
        in_chunks: bool,
    ) -> Result<(), TransferError> {
        let failure = Arc::new(Mutex::new(None));
        let chunked = (in_chunks || size > self.chunk_size)
            && !self
                .no_patch
                .lock()
                .expect("not poisoned")
                .contains(dst.registry());
        let one_patch = in_chunks && matches!(keep, Keep::Refetch(..));
        let result = if chunked {
            let feed = Feed::new(body, digest, size, origin, keep, failure.clone());
            let feed = Arc::new(Mutex::new(feed));
            self.chunked(dst, session, digest, size, feed, one_patch)
                .await
        } else {
            let verified = Verify {
                inner: body,
                hasher: Sha256::new(),
                received: 0,
                held: None,
                digest: digest.clone(),
                size,
                url: origin,
                failure: failure.clone(),
                finished: false,
            };
            let open = session.clone();
            let result = dst
                .put_blob(session, digest, size, verified.boxed())
                .await
                .map_err(TransferError::from);
            if result.is_err() {
                // Best effort: a failed blob leaves no upload session behind.
                let _ = dst.cancel_upload(&open).await;
            }
            result
        };
        // A verification failure surfaces to reqwest as a body error; report the real cause.
        if let Some(e) = failure.lock().expect("not poisoned").take() {
            return Err(e);
        }
        result
    }

    /// The chunked upload: each chunk's `PATCH` body streams from the feed. With `one_patch`,
    /// everything but the last chunk goes as the first.
    async fn chunked(
        &self,
        dst: &Repo,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        feed: Arc<Mutex<Feed>>,
        one_patch: bool,
    ) -> Result<(), TransferError> {
        let mut session = session;
        let mut start = 0u64;
        while start < size {
            let end = match start + self.chunk_size {
                _ if one_patch && start == 0 && size > self.chunk_size => size - self.chunk_size,
                end => end.min(size),
            };
            let last = end == size;
            feed.lock().expect("not poisoned").commit(start);
            match self
                .send(dst, &mut session, &feed, start, end, last, digest, size)
                .await
            {
                Ok(()) => {}
                Err(Refused(e)) if start == 0 => {
                    tracing::info!(
                        registry = dst.registry(),
                        "chunked upload refused ({e}); sending whole blobs"
                    );
                    self.no_patch
                        .lock()
                        .expect("not poisoned")
                        .insert(dst.registry().to_owned());
                    let _ = dst.cancel_upload(&session).await;
                    let session = dst.start_upload().await?;
                    {
                        let mut f = feed.lock().expect("not poisoned");
                        if !f.rewind(0) {
                            return Err(e);
                        }
                        f.forget();
                    }
                    let body = Feed::body(&feed, size);
                    return dst
                        .put_blob(session, digest, size, body)
                        .await
                        .map_err(TransferError::from);
                }
                Err(Refused(e)) | Err(Failed(e)) => {
                    // The next attempt opens a new session: give this one up.
                    let _ = dst.cancel_upload(&session).await;
                    return Err(e);
                }
            }
            start = end;
        }
        Ok(())
    }

    /// Sends bytes `start..end` of the blob into `session`, resuming from what the registry
    /// reports after a failure. The final chunk is the body of the closing `PUT`.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        dst: &Repo,
        session: &mut UploadSession,
        feed: &Arc<Mutex<Feed>>,
        start: u64,
        end: u64,
        last: bool,
        digest: &Digest,
        size: u64,
    ) -> Result<(), SendError> {
        let mut attempt = 0;
        loop {
            let from = session.offset;
            let rewound = feed.lock().expect("not poisoned").rewind(from);
            if !rewound {
                let given = feed.lock().expect("not poisoned").given();
                return Err(Failed(TransferError::Registry(RegistryError::Protocol {
                    url: session.location.to_string(),
                    reason: format!(
                        "cannot resume the upload at byte {from} (bytes up to {given} were sent)"
                    ),
                })));
            }
            let body = Feed::body(feed, end);
            let len = end - from;
            let result = if last {
                dst.finish_upload_stream(session.clone(), digest, len, body)
                    .await
            } else {
                match dst.patch_chunk_stream(session.clone(), len, body).await {
                    Ok(next) => {
                        // Registries differ in how they report the `Range` of a fresh chunk
                        // (distribution's `0-0`); a short upload fails the digest check of
                        // the closing PUT anyway, so our count is the offset.
                        *session = UploadSession {
                            offset: end,
                            ..next
                        };
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            };
            if feed.lock().expect("not poisoned").failed() {
                // The source or the verification failed: the caller reports the cause.
                return Err(Failed(TransferError::Registry(RegistryError::Protocol {
                    url: session.location.to_string(),
                    reason: "the blob's source failed".to_owned(),
                })));
            }
            let error = match result {
                Ok(()) => return Ok(()),
                Err(RegistryError::Status { status, .. })
                    if start == 0 && PATCH_REFUSED.contains(&status) && !last =>
                {
                    return Err(Refused(result.unwrap_err().into()));
                }
                Err(e) => e,
            };
            if !error.is_retryable() || attempt >= self.retries || !self.budget.take() {
                return Err(Failed(error.into()));
            }
            attempt += 1;
            tokio::time::sleep(jitter(self.delay, attempt)).await;
            match dst.upload_status(session).await {
                Ok(status) if (start..=end).contains(&status.offset) => {
                    self.reporter.on_blob_retry(
                        digest,
                        0,
                        &format!(
                            "resuming upload at byte {} of {size}: {}",
                            status.offset,
                            super::error_chain(&error)
                        ),
                    );
                    *session = status;
                    if session.offset == end && !last {
                        // The chunk arrived; only the answer was lost.
                        return Ok(());
                    }
                }
                other => {
                    // The closing PUT may have gone through with only its answer lost.
                    if last && matches!(dst.blob_size(digest).await, Ok(Some(n)) if n == size) {
                        return Ok(());
                    }
                    let why = match other {
                        Ok(s) => format!("it holds {} bytes, expected {start}..={end}", s.offset),
                        Err(e) => e.to_string(),
                    };
                    tracing::info!(%digest, "upload cannot resume ({why}); restarting the blob");
                    // The original error is retryable: the caller starts the blob over.
                    return Err(Failed(error.into()));
                }
            }
        }
    }
}

/// Why a chunk could not be sent.
enum SendError {
    /// The registry refused `PATCH` itself.
    Refused(TransferError),
    /// Anything else, after the retries.
    Failed(TransferError),
}
use SendError::{Failed, Refused};

/// Hashes and counts a body as it passes, holding back the last chunk until the digest and
/// size are proven right.
struct Verify {
    inner: ByteStream,
    hasher: Sha256,
    received: u64,
    held: Option<Bytes>,
    digest: Digest,
    size: u64,
    url: String,
    failure: Arc<Mutex<Option<TransferError>>>,
    finished: bool,
}

impl Verify {
    fn fail(&mut self, e: TransferError) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        let msg = e.to_string();
        self.finished = true;
        *self.failure.lock().expect("not poisoned") = Some(e);
        Poll::Ready(Some(Err(std::io::Error::other(msg))))
    }

    fn integrity_error(&self) -> TransferError {
        TransferError::Integrity {
            digest: self.digest.clone(),
            url: self.url.clone(),
            actual: Digest::from_sha256(&self.hasher.clone().finalize()),
            received: self.received,
            expected_size: self.size,
        }
    }
}

impl Stream for Verify {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        loop {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return self.fail(e),
                Poll::Ready(Some(Ok(chunk))) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    self.hasher.update(&chunk);
                    self.received += chunk.len() as u64;
                    if self.received > self.size {
                        let e = self.integrity_error();
                        return self.fail(e);
                    }
                    if let Some(prev) = self.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(prev)));
                    }
                }
                Poll::Ready(None) => {
                    self.finished = true;
                    let actual = Digest::from_sha256(&self.hasher.clone().finalize());
                    if self.received != self.size || actual != self.digest {
                        let e = self.integrity_error();
                        return self.fail(e);
                    }
                    // Verified: release the last chunk; the next poll ends the stream.
                    return Poll::Ready(self.held.take().map(Ok));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn verify_over(
        chunks: Vec<&'static [u8]>,
        digest: Digest,
        size: u64,
    ) -> (Verify, Arc<Mutex<Option<TransferError>>>) {
        let failure = Arc::new(Mutex::new(None));
        let inner = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed();
        let v = Verify {
            inner,
            hasher: Sha256::new(),
            received: 0,
            held: None,
            digest,
            size,
            url: "src/repo@x".into(),
            failure: failure.clone(),
            finished: false,
        };
        (v, failure)
    }

    async fn drain(v: Verify) -> (Vec<u8>, Option<std::io::Error>) {
        let mut out = Vec::new();
        let mut s = v.boxed();
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn correct_body_passes_through_whole() {
        let data: &[u8] = b"hello world, this is a blob";
        let (v, failure) = verify_over(
            vec![&data[..5], &data[5..11], &data[11..]],
            Digest::of(data),
            data.len() as u64,
        );
        let (out, err) = drain(v).await;
        assert!(err.is_none());
        assert_eq!(out, data);
        assert!(failure.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn wrong_digest_never_releases_the_last_chunk() {
        let data: &[u8] = b"corrupted!";
        let (v, failure) = verify_over(
            vec![&data[..4], &data[4..]],
            Digest::of(b"original!!"),
            data.len() as u64,
        );
        let (out, err) = drain(v).await;
        assert!(err.is_some());
        // Only the first chunk went out: the body is incomplete, so nothing can be committed.
        assert_eq!(out, &data[..4]);
        let e = failure.lock().unwrap().take().unwrap();
        assert!(
            matches!(
                e,
                TransferError::Integrity {
                    received: 10,
                    expected_size: 10,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.is_integrity());
    }

    #[tokio::test]
    async fn oversized_body_fails_as_soon_as_it_exceeds() {
        let data: &[u8] = b"0123456789";
        let (v, failure) = verify_over(vec![&data[..6], &data[6..]], Digest::of(&data[..6]), 6);
        let (out, err) = drain(v).await;
        assert!(err.is_some());
        assert!(out.len() < 6);
        assert!(matches!(
            failure.lock().unwrap().take(),
            Some(TransferError::Integrity { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_body_is_an_integrity_error() {
        let data: &[u8] = b"0123456789";
        let (v, failure) = verify_over(vec![&data[..4]], Digest::of(data), 10);
        let (_, err) = drain(v).await;
        assert!(err.is_some());
        let e = failure.lock().unwrap().take().unwrap();
        assert!(
            matches!(e, TransferError::Integrity { received: 4, .. }),
            "{e}"
        );
    }

    #[tokio::test]
    async fn empty_blob_verifies() {
        let (v, failure) = verify_over(vec![], Digest::of(b""), 0);
        let (out, err) = drain(v).await;
        assert!(err.is_none() && out.is_empty());
        assert!(failure.lock().unwrap().is_none());
    }
}
