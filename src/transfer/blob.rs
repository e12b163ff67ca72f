//! Moving one blob: stream from the source to the destination, hashing as it flows.
//!
//! The body is verified in flight and the last chunk is held back until the digest and size
//! check out, so the destination never receives a complete body that is wrong: a mismatch
//! aborts the upload and nothing is committed. Large blobs are fetched as parallel `Range`
//! segments and reassembled in order; a server that ignores `Range` gets one plain stream.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use sha2::{Digest as _, Sha256};

use crate::bundle::Staging;
use crate::reference::Digest;
use crate::registry::{MountOutcome, Repo, UploadSession};
use crate::report::Reporter;

use super::{TransferError, TransferOptions};

/// Shared state of one run that blob copies report into.
pub(crate) struct Ctx {
    pub opts: TransferOptions,
    pub reporter: Arc<dyn Reporter>,
    /// Bytes read from sources this run, retries included.
    pub bytes_read: Arc<AtomicU64>,
    /// Retries left for the whole run (`--retry-budget`), shared by blobs and segments.
    pub retry_budget: Arc<RetryBudget>,
}

/// A run-wide cap on retries, so a registry that keeps failing ends the run in bounded time
/// instead of every blob spending its own retries one after another.
#[derive(Debug)]
pub(crate) struct RetryBudget(std::sync::atomic::AtomicU64);

impl RetryBudget {
    /// A budget of `n` retries.
    pub fn new(n: u64) -> Self {
        RetryBudget(std::sync::atomic::AtomicU64::new(n))
    }

    /// Takes one retry; false when none is left.
    pub fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A blob body on its way.
pub(crate) type ByteStream = BoxStream<'static, Result<Bytes, TransferError>>;

/// Where a blob is written.
#[derive(Clone)]
pub(crate) enum Dest {
    /// A repository of a registry.
    Registry(Repo),
    /// A bundle's staging directory.
    Staging(Staging),
}

impl Dest {
    fn name(&self) -> String {
        match self {
            Dest::Registry(r) => r.name(),
            Dest::Staging(s) => s.dir().display().to_string(),
        }
    }
}

/// Copies `digest` (of `size` bytes) from `src` to `dst`, retrying the whole blob on failures
/// worth retrying. When `mount_from` names a repository of the destination registry that
/// holds the blob, a cross-repository mount is tried first.
pub(crate) async fn copy(
    ctx: &Ctx,
    src: &Repo,
    dst: &Dest,
    digest: &Digest,
    size: u64,
    mount_from: Option<&str>,
) -> Result<(), TransferError> {
    let mut attempt = 0;
    loop {
        let result = match dst {
            Dest::Registry(repo) => copy_once(ctx, src, repo, digest, size, mount_from).await,
            Dest::Staging(staging) => match open(ctx, src, digest, size).await {
                Ok(body) => stage(staging, digest, size, body).await,
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e)
                if e.is_retryable()
                    && attempt < ctx.opts.blob_retries
                    && ctx.retry_budget.take() =>
            {
                attempt += 1;
                ctx.reporter
                    .on_blob_retry(digest, 0, &super::error_chain(&e));
                tokio::time::sleep(jitter(ctx.opts.retry_delay, attempt)).await;
            }
            Err(e) => {
                return Err(TransferError::Blob {
                    digest: digest.clone(),
                    from: src.name(),
                    to: dst.name(),
                    source: Box::new(e),
                });
            }
        }
    }
}

async fn copy_once(
    ctx: &Ctx,
    src: &Repo,
    dst: &Repo,
    digest: &Digest,
    size: u64,
    mount_from: Option<&str>,
) -> Result<(), TransferError> {
    let session = match mount_from {
        Some(from) => match dst.mount_blob(digest, from).await? {
            MountOutcome::Mounted => return Ok(()),
            MountOutcome::Upload(s) => s,
        },
        None => dst.start_upload().await?,
    };
    let body = open(ctx, src, digest, size).await?;
    upload(
        dst,
        session,
        digest,
        size,
        body,
        format!("{}@{}", src.name(), digest),
    )
    .await
}

/// Opens the source side of a blob: parallel segments for large blobs, else one resumable
/// stream.
async fn open(
    ctx: &Ctx,
    src: &Repo,
    digest: &Digest,
    size: u64,
) -> Result<ByteStream, TransferError> {
    if size >= ctx.opts.segment_threshold {
        segmented(ctx, src, digest, size).await
    } else {
        whole(ctx, src, digest, size).await
    }
}

/// Uploads `body` into an open session through the verifier: a body whose digest or size is
/// wrong never completes, so the registry commits nothing. `origin` names where the bytes
/// came from, for the error.
pub(crate) async fn upload(
    dst: &Repo,
    session: UploadSession,
    digest: &Digest,
    size: u64,
    body: ByteStream,
    origin: String,
) -> Result<(), TransferError> {
    let failure = Arc::new(Mutex::new(None));
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
    let result = dst.put_blob(session, digest, size, verified.boxed()).await;
    // A verification failure surfaces to reqwest as a body error; report the real cause.
    if let Some(e) = failure.lock().expect("not poisoned").take() {
        return Err(e);
    }
    result.map_err(TransferError::from)
}

/// Writes `body` into the staging directory, which verifies digest and size before the blob
/// gets its final name. Chunks are coalesced so the file sees few, large writes.
async fn stage(
    staging: &Staging,
    digest: &Digest,
    size: u64,
    mut body: ByteStream,
) -> Result<(), TransferError> {
    const COALESCE: usize = 1 << 20;
    let mut file = staging.begin_blob(digest, size).await?;
    let mut buf = BytesMut::with_capacity(COALESCE);
    loop {
        match body.next().await {
            Some(Ok(chunk)) => {
                buf.extend_from_slice(&chunk);
                if buf.len() >= COALESCE {
                    if let Err(e) = file.write(&buf).await {
                        file.abort().await;
                        return Err(e.into());
                    }
                    buf.clear();
                }
            }
            Some(Err(e)) => {
                file.abort().await;
                return Err(e);
            }
            None => break,
        }
    }
    if !buf.is_empty()
        && let Err(e) = file.write(&buf).await
    {
        file.abort().await;
        return Err(e.into());
    }
    file.commit().await?;
    Ok(())
}

/// The whole blob as one response that survives connection drops: after an error mid-body it
/// asks again with `Range` from the last byte received, so the hash state in [`Verify`]
/// carries on. A server that ignores `Range` resends from zero and the bytes already seen are
/// skipped.
async fn whole(
    ctx: &Ctx,
    src: &Repo,
    digest: &Digest,
    size: u64,
) -> Result<ByteStream, TransferError> {
    let first = src.get_blob(digest, 0, None).await?;
    let state = Resume {
        src: src.clone(),
        digest: digest.clone(),
        size,
        offset: 0,
        skip: 0,
        current: Some(first.stream),
        attempts: 0,
        max_attempts: ctx.opts.blob_retries,
        budget: ctx.retry_budget.clone(),
        delay: ctx.opts.retry_delay,
        reporter: ctx.reporter.clone(),
        done: false,
    };
    let s = stream::unfold(state, |mut st| async move {
        let item = st.next_chunk().await?;
        Some((item, st))
    });
    Ok(counted(ctx, s.boxed()))
}

struct Resume {
    src: Repo,
    digest: Digest,
    size: u64,
    offset: u64,
    /// Bytes still to drop from a response that restarted at zero.
    skip: u64,
    current: Option<BoxStream<'static, Result<Bytes, crate::registry::RegistryError>>>,
    attempts: u32,
    max_attempts: u32,
    budget: Arc<RetryBudget>,
    delay: Duration,
    reporter: Arc<dyn Reporter>,
    done: bool,
}

impl Resume {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransferError>> {
        if self.done {
            return None;
        }
        loop {
            let Some(current) = self.current.as_mut() else {
                match self.src.get_blob(&self.digest, self.offset, None).await {
                    Ok(body) => {
                        self.skip = if body.partial { 0 } else { self.offset };
                        self.current = Some(body.stream);
                    }
                    Err(e) => {
                        let e = TransferError::from(e);
                        if !self.retry(&e).await {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
                continue;
            };
            match current.next().await {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let drop = self.skip.min(chunk.len() as u64);
                        self.skip -= drop;
                        let _ = chunk.split_to(drop as usize);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    self.offset += chunk.len() as u64;
                    return Some(Ok(chunk));
                }
                Some(Err(e)) => {
                    self.current = None;
                    let e = TransferError::from(e);
                    if !self.retry(&e).await {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                None if self.offset >= self.size => {
                    self.done = true;
                    return None;
                }
                None => {
                    // The body ended early without an error: resume like after a reset.
                    self.current = None;
                    let e = TransferError::Registry(crate::registry::RegistryError::Protocol {
                        url: format!("{}@{}", self.src.name(), self.digest),
                        reason: format!("body ended at byte {} of {}", self.offset, self.size),
                    });
                    if !self.retry(&e).await {
                        self.done = true;
                        // Let the verifier report the short body with its digest.
                        return None;
                    }
                }
            }
        }
    }

    /// Waits before resuming; false when the error is final or attempts are used up.
    async fn retry(&mut self, e: &TransferError) -> bool {
        if !e.is_retryable() || self.attempts >= self.max_attempts || !self.budget.take() {
            return false;
        }
        self.attempts += 1;
        self.reporter.on_blob_retry(
            &self.digest,
            0,
            &format!(
                "resuming at byte {}: {}",
                self.offset,
                super::error_chain(e)
            ),
        );
        tokio::time::sleep(jitter(self.delay, self.attempts)).await;
        true
    }
}

/// Counts bytes into the run total and the reporter as they arrive.
fn counted(ctx: &Ctx, s: ByteStream) -> ByteStream {
    let (reporter, total) = (ctx.reporter.clone(), ctx.bytes_read.clone());
    s.inspect(move |r| {
        if let Ok(b) = r {
            total.fetch_add(b.len() as u64, Ordering::Relaxed);
            reporter.on_bytes(b.len() as u64);
        }
    })
    .boxed()
}

/// The blob as ordered `Range` segments, `segment_parallelism` in flight. Each segment is
/// retried on its own, so a dropped connection costs one segment, not the blob.
async fn segmented(
    ctx: &Ctx,
    src: &Repo,
    digest: &Digest,
    size: u64,
) -> Result<ByteStream, TransferError> {
    let seg = ctx.opts.segment_size.max(1);
    let first = src.get_blob(digest, 0, Some(seg.min(size))).await?;
    if !first.partial {
        // The server ignored Range and is sending everything: use it as a plain stream.
        return Ok(counted(
            ctx,
            first.stream.map(|r| r.map_err(TransferError::from)).boxed(),
        ));
    }
    let counter = ctx.bytes_read.clone();
    let reporter = ctx.reporter.clone();
    let mut futures = Vec::new();
    // The first segment's response is already open; it is the first attempt of segment 0.
    let mut opened = Some(first);
    let mut start = 0;
    while start < size {
        let end = (start + seg).min(size);
        let (src, digest, counter, reporter) = (
            src.clone(),
            digest.clone(),
            counter.clone(),
            reporter.clone(),
        );
        let retries = ctx.opts.blob_retries;
        let delay = ctx.opts.retry_delay;
        let budget = ctx.retry_budget.clone();
        let mut opened = opened.take();
        futures.push(
            async move {
                let mut attempt = 0;
                loop {
                    let response = match opened.take() {
                        Some(b) => Ok(b),
                        None => src.get_blob(&digest, start, Some(end)).await,
                    };
                    let r = match response {
                        Ok(b) if b.partial => {
                            collect(b.stream, end - start, &counter, &*reporter).await
                        }
                        Ok(_) => Err(TransferError::Registry(
                            crate::registry::RegistryError::Protocol {
                                url: format!("{}@{}", src.name(), digest),
                                reason: "server stopped honouring Range mid-blob".into(),
                            },
                        )),
                        Err(e) => Err(e.into()),
                    };
                    match r {
                        Ok(b) => return Ok(b),
                        Err(e) if e.is_retryable() && attempt < retries && budget.take() => {
                            attempt += 1;
                            reporter.on_blob_retry(&digest, 0, &super::error_chain(&e));
                            tokio::time::sleep(jitter(delay, attempt)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            .boxed(),
        );
        start = end;
    }
    Ok(stream::iter(futures)
        .buffered(ctx.opts.segment_parallelism.max(1))
        .boxed())
}

/// Delay before attempt `attempt` (1-based): exponential with full jitter.
/// `AIRLIFT_RETRY_DELAY_MS` overrides the base (tests set 0).
fn jitter(base: Duration, attempt: u32) -> Duration {
    let base = std::env::var("AIRLIFT_RETRY_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(base);
    base.saturating_mul(1 << attempt.min(6))
        .mul_f64(rand::random::<f64>().max(0.1))
}

/// Reads one segment fully into memory (bounded by the segment size).
async fn collect(
    mut s: BoxStream<'static, Result<Bytes, crate::registry::RegistryError>>,
    len: u64,
    counter: &AtomicU64,
    reporter: &dyn Reporter,
) -> Result<Bytes, TransferError> {
    let mut buf = BytesMut::with_capacity(len as usize);
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        reporter.on_bytes(chunk.len() as u64);
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 > len {
            break;
        }
    }
    if buf.len() as u64 != len {
        return Err(TransferError::Registry(
            crate::registry::RegistryError::Protocol {
                url: String::new(),
                reason: format!("range response of {} bytes, expected {len}", buf.len()),
            },
        ));
    }
    Ok(buf.freeze())
}

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
