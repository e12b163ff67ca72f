//! Admission in order: blobs going into a bundle's volumes start in volume order, at most
//! `jobs` ahead of the first one not done. A volume takes its pieces one after the other, so a
//! blob started out of order could only wait for one before it; with admission by rank the
//! first blob not done has always started, and the run cannot deadlock however the tasks are
//! scheduled.

use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio::sync::Notify;

/// See the module documentation.
pub(crate) struct Window {
    jobs: usize,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    /// Every rank below this one is done.
    frontier: usize,
    /// Ranks at or above the frontier that are done.
    done: BTreeSet<usize>,
}

/// A blob's place in the window; its rank counts as done when this is dropped.
pub(crate) struct Admitted<'a> {
    window: &'a Window,
    rank: usize,
}

impl Window {
    pub(crate) fn new(jobs: usize) -> Window {
        Window {
            jobs: jobs.max(1),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    /// Waits until `rank` is fewer than `jobs` ranks after the first one not done.
    pub(crate) async fn enter(&self, rank: usize) -> Admitted<'_> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if rank < self.state.lock().expect("not poisoned").frontier + self.jobs {
                return Admitted { window: self, rank };
            }
            changed.await;
        }
    }

    fn done(&self, rank: usize) {
        let mut s = self.state.lock().expect("not poisoned");
        s.done.insert(rank);
        loop {
            let next = s.frontier;
            if !s.done.remove(&next) {
                break;
            }
            s.frontier += 1;
        }
        drop(s);
        self.changed.notify_waiters();
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.window.done(self.rank);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ranks_start_in_order_and_never_more_than_jobs_ahead() {
        let window = Arc::new(Window::new(3));
        let active = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        // Spawned in reverse: admission must not depend on the order tasks are polled in.
        let tasks: Vec<_> = (0..20)
            .rev()
            .map(|rank| {
                let (window, active, most) = (window.clone(), active.clone(), most.clone());
                tokio::spawn(async move {
                    let _in = window.enter(rank).await;
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    active.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(window.state.lock().unwrap().frontier, 20);
    }
}
