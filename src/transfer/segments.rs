//! Large blobs downloaded as parallel `Range` segments, streamed in order within a memory
//! budget shared by the whole run.
//!
//! Segment tasks run ahead of the reader, up to `segment_parallelism` per blob; those ahead of
//! their blob's head take one of `segment_parallelism - 1` slots shared by the run, so a blob
//! alone gets them all and many large blobs at once do not each keep idle connections (and
//! their read buffers) open while the budget is full. The segment being
//! read (the head) streams through a small window of its own ([`HEAD_WINDOW`]); the segments
//! after it keep what they receive only while the run-wide [`MemoryBudget`] has room, and
//! otherwise stop reading (TCP backpressure) until the reader catches up. So memory is
//! bounded by the budget plus a window per job, not by `--jobs` × segments × segment size,
//! and the head never waits for the shared budget, so blobs cannot starve each other. A dropped segment resumes with `Range` from the last byte it
//! received.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::reference::Digest;
use crate::registry::{BlobBody, RegistryError, Repo};
use crate::report::Reporter;

use super::TransferError;
use super::blob::{ByteStream, Ctx, RetryBudget, counted, jitter};

/// Bytes of segment data received ahead of the reader, shared by every blob of a run.
#[derive(Clone)]
pub(crate) struct MemoryBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl MemoryBudget {
    /// A budget of `total` bytes (at least [`HEAD_WINDOW`]).
    pub fn new(total: u64) -> Self {
        let total = (total.max(HEAD_WINDOW) as usize).min(Semaphore::MAX_PERMITS);
        MemoryBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Room for `n` bytes (at most the whole budget), held until the permit is dropped.
    pub(super) async fn reserve(&self, n: usize) -> OwnedSemaphorePermit {
        let n = n.min(self.total).min(u32::MAX as usize) as u32;
        self.bytes
            .clone()
            .acquire_many_owned(n)
            .await
            .expect("the budget semaphore is never closed")
    }
}

/// How far the head segment of a blob may run ahead of its reader.
const HEAD_WINDOW: u64 = 512 << 10;

/// Received bytes and the budget they hold until the reader takes them.
struct Piece {
    bytes: Bytes,
    _held: OwnedSemaphorePermit,
}

/// Aborts its task when dropped (the reader went away).
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One segment in flight.
struct Segment {
    rx: mpsc::UnboundedReceiver<Result<Piece, TransferError>>,
    head: watch::Sender<bool>,
    /// A run-wide slot held while the segment runs ahead of its blob's head.
    slot: Option<OwnedSemaphorePermit>,
    _task: Task,
}

/// What every segment task of one blob needs.
#[derive(Clone)]
struct Shared {
    src: Repo,
    digest: Digest,
    budget: MemoryBudget,
    retries: u32,
    delay: std::time::Duration,
    retry_budget: Arc<RetryBudget>,
    counter: Arc<AtomicU64>,
    reporter: Arc<dyn Reporter>,
}

/// The blob as ordered `Range` segments, `segment_parallelism` in flight. Each segment is
/// retried on its own, resuming where it was cut, so a dropped connection costs only the
/// bytes it lost.
pub(super) async fn segmented(
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
            digest,
            first.stream.map(|r| r.map_err(TransferError::from)).boxed(),
        ));
    }
    let shared = Shared {
        src: src.clone(),
        digest: digest.clone(),
        budget: ctx.budget.clone(),
        retries: ctx.opts.blob_retries,
        delay: ctx.opts.retry_delay,
        retry_budget: ctx.retry_budget.clone(),
        counter: ctx.bytes_read.clone(),
        reporter: ctx.reporter.clone(),
    };
    struct State {
        shared: Shared,
        queue: VecDeque<Segment>,
        opened: Option<BlobBody>,
        next: u64,
        size: u64,
        seg: u64,
        parallel: usize,
        slots: Arc<Semaphore>,
        done: bool,
    }
    let state = State {
        shared,
        queue: VecDeque::new(),
        opened: Some(first),
        next: 0,
        size,
        seg,
        parallel: ctx.opts.segment_parallelism.max(1),
        slots: ctx.segment_slots.clone(),
        done: false,
    };
    let s = stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            while st.queue.len() < st.parallel && st.next < st.size {
                // The head needs no slot; a segment ahead of it opens only when one is free.
                let slot = if st.queue.is_empty() {
                    None
                } else {
                    match st.slots.clone().try_acquire_owned() {
                        Ok(permit) => Some(permit),
                        Err(_) => break,
                    }
                };
                let end = (st.next + st.seg).min(st.size);
                let opened = st.opened.take();
                st.queue
                    .push_back(spawn(st.shared.clone(), st.next, end, opened, slot));
                st.next = end;
            }
            let head = st.queue.front_mut()?;
            head.head.send_if_modified(|h| !std::mem::replace(h, true));
            // Now the head: its slot goes to segments ahead of other blobs.
            head.slot = None;
            match head.rx.recv().await {
                Some(Ok(piece)) => return Some((Ok(piece.bytes), st)),
                Some(Err(e)) => {
                    st.done = true;
                    st.queue.clear();
                    return Some((Err(e), st));
                }
                None => {
                    st.queue.pop_front();
                }
            }
        }
    });
    Ok(s.boxed())
}

/// Starts the task fetching bytes `start..end`; `opened` is a response already open for
/// exactly that range (the first segment's, which told us the server honours `Range`).
fn spawn(
    shared: Shared,
    start: u64,
    end: u64,
    opened: Option<BlobBody>,
    slot: Option<OwnedSemaphorePermit>,
) -> Segment {
    let (tx, rx) = mpsc::unbounded_channel();
    let (head_tx, head_rx) = watch::channel(false);
    let task = tokio::spawn(fetch(shared, start, end, opened, tx, head_rx));
    Segment {
        rx,
        head: head_tx,
        slot,
        _task: Task(task),
    }
}

/// Fetches one segment into `tx`, resuming after drops; the bytes it keeps ahead of the
/// reader are reserved in the budget until the reader takes them.
async fn fetch(
    sh: Shared,
    start: u64,
    end: u64,
    mut opened: Option<BlobBody>,
    tx: mpsc::UnboundedSender<Result<Piece, TransferError>>,
    mut head: watch::Receiver<bool>,
) {
    let url = || format!("{}@{}", sh.src.name(), sh.digest);
    // The head segment does not draw on the shared budget (so blobs cannot starve each
    // other), but it runs at most this far ahead of its reader.
    let window = MemoryBudget::new(HEAD_WINDOW);
    let mut offset = start;
    let mut attempt = 0;
    while offset < end {
        let response = match opened.take() {
            Some(b) => Ok(b),
            None => sh.src.get_blob(&sh.digest, offset, Some(end)).await,
        };
        // (error, whether a resume may help)
        let (error, retryable) = match response {
            Ok(b) if b.partial => {
                let mut body = b.stream;
                loop {
                    match body.next().await {
                        Some(Ok(mut bytes)) => {
                            if bytes.len() as u64 > end - offset {
                                bytes.truncate((end - offset) as usize);
                            }
                            let n = bytes.len();
                            sh.counter.fetch_add(n as u64, Ordering::Relaxed);
                            sh.reporter.on_blob_bytes(&sh.digest, n as u64);
                            let held = loop {
                                if *head.borrow() {
                                    break window.reserve(n).await;
                                }
                                tokio::select! {
                                    permit = sh.budget.reserve(n) => {
                                        // Kept a while: a copy of its own, so it does not
                                        // pin the connection's whole read buffer.
                                        bytes = Bytes::copy_from_slice(&bytes);
                                        break permit;
                                    }
                                    became = head.wait_for(|h| *h) => if became.is_err() {
                                        // The reader is gone.
                                        return;
                                    }
                                }
                            };
                            if tx.send(Ok(Piece { bytes, _held: held })).is_err() {
                                return;
                            }
                            offset += n as u64;
                            if offset >= end {
                                return;
                            }
                        }
                        Some(Err(e)) => {
                            let e = TransferError::from(e);
                            let r = e.is_retryable();
                            break (e, r);
                        }
                        // Ended early without an error: resume like after a reset.
                        None => {
                            let e = TransferError::Registry(RegistryError::Protocol {
                                url: url(),
                                reason: format!(
                                    "range response ended at byte {offset}, expected {end}"
                                ),
                            });
                            break (e, true);
                        }
                    }
                }
            }
            Ok(_) => (
                TransferError::Registry(RegistryError::Protocol {
                    url: url(),
                    reason: "server stopped honouring Range mid-blob".into(),
                }),
                false,
            ),
            Err(e) => {
                let e = TransferError::from(e);
                let r = e.is_retryable();
                (e, r)
            }
        };
        if retryable && attempt < sh.retries && sh.retry_budget.take() {
            attempt += 1;
            sh.reporter.on_blob_retry(
                &sh.digest,
                0,
                &format!(
                    "resuming segment at byte {offset}: {}",
                    super::error_chain(&error)
                ),
            );
            tokio::time::sleep(jitter(sh.delay, attempt)).await;
        } else {
            let _ = tx.send(Err(error));
            return;
        }
    }
}
