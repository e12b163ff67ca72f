//! `bundle load`'s cross-repository mounts: blobs the destination already holds in another
//! repository are mounted instead of read from the volumes.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::StreamExt;

use crate::reference::Digest;
use crate::registry::{MountOutcome, RegistryClient};

use super::super::plan::{BlobTarget, Plan, PlannedBlob};
use super::{LoadState, mark_done};

/// Blobs the destination already holds in another repository (an earlier load, an image
/// already complete there, or the site blobs a differential bundle leaves out) are mounted
/// instead of read from the volumes. What cannot be mounted is read from the volumes, or
/// reported by [`super::finish`] as missing at the site. Returns the blobs the plan counted
/// as present (every target lacking them could mount them) that some target did not mount:
/// the registry ignored or refused the mount, so their bytes must move after all.
pub(super) async fn mount_present(
    client: &RegistryClient,
    plan: &Plan,
    state: &LoadState,
    jobs: usize,
) -> HashMap<Digest, u64> {
    // (blob, repository holding it, target lacking it)
    let mounts: Vec<(&PlannedBlob, &str, &BlobTarget)> = plan
        .blobs
        .iter()
        .filter(|b| !b.present_everywhere())
        .filter_map(|b| Some((b, b.targets.iter().find(|t| t.present)?)))
        .flat_map(|(b, from)| {
            b.targets
                .iter()
                .filter(move |t| !t.present && t.registry == from.registry)
                .map(move |t| (b, from.repository.as_str(), t))
        })
        .collect();
    let unmounted = Mutex::new(HashMap::new());
    futures_util::stream::iter(mounts)
        .for_each_concurrent(jobs.max(1), |(blob, from, t)| {
            let unmounted = &unmounted;
            async move {
                let repo = client.repo(&t.registry, &t.repository).for_push();
                // A refused mount opens an upload session that is simply left to expire.
                match repo.mount_blob(&blob.digest, from).await {
                    Ok(MountOutcome::Mounted) => mark_done(
                        state,
                        &blob.digest,
                        &(t.registry.clone(), t.repository.clone()),
                    ),
                    // The plan counted it as present only when every target could mount it.
                    _ if blob.mountable() => {
                        unmounted
                            .lock()
                            .expect("not poisoned")
                            .insert(blob.digest.clone(), blob.size);
                    }
                    _ => {}
                }
            }
        })
        .await;
    unmounted.into_inner().expect("not poisoned")
}
