//! Resolving images while planning: each image's manifests (walking indexes, filtering
//! platforms) and blobs, fetched once per registry and digest, with the source's pull budget
//! spared (see [`super::budget`]).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};

use crate::mapping::ImageJob;
use crate::reference::{Digest, ImageRef};
use crate::registry::Manifest;
use crate::report::Reporter;

use super::budget::{self, Needed, Probe, PullBudget};
use super::walk::{self, BlobRef, Parsed};
use super::{SharedError, Sink, Source, TransferError, TransferOptions};

/// A resolved image before the destination is consulted.
pub(super) struct Resolved {
    pub source_digest: Digest,
    pub target_digest: Digest,
    pub manifests: Vec<Manifest>,
    pub blobs: Vec<BlobRef>,
}

/// Manifests fetched while planning, by registry and digest, so a manifest named by several
/// images (two tags of one image, indexes sharing a child, an index beside its child) is
/// fetched once. Content is addressed by digest: whichever repository of the registry it was
/// read from, it is the same verified bytes.
#[derive(Default)]
pub(super) struct Fetched(std::sync::Mutex<HashMap<(String, Digest), FetchCell>>);

type FetchCell = Arc<tokio::sync::OnceCell<Result<Manifest, SharedError>>>;

impl Fetched {
    fn cell(&self, registry: &str, digest: &Digest) -> FetchCell {
        self.0
            .lock()
            .expect("not poisoned")
            .entry((registry.to_owned(), digest.clone()))
            .or_default()
            .clone()
    }

    /// Manifest `digest` of `image`'s repository, fetched once per registry.
    async fn get(
        &self,
        source: &Source,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Manifest, SharedError> {
        self.cell(image.registry(), digest)
            .get_or_init(|| async {
                source
                    .manifest(image, digest.as_str())
                    .await
                    .map_err(Arc::new)
            })
            .await
            .clone()
    }

    /// Whether manifest `digest` of `registry` was fetched (or is being fetched) already.
    fn has(&self, registry: &str, digest: &Digest) -> bool {
        self.0
            .lock()
            .expect("not poisoned")
            .contains_key(&(registry.to_owned(), digest.clone()))
    }

    /// Records a manifest fetched by tag, for images that name it by digest.
    fn remember(&self, registry: &str, manifest: &Manifest) {
        let _ = self
            .cell(registry, &manifest.digest)
            .set(Ok(manifest.clone()));
    }
}

/// What planning shares: the endpoints, the options, the manifests fetched so far and the
/// source's pull budget.
pub(super) struct Planner<'a> {
    pub source: &'a Source,
    pub sink: &'a Sink,
    pub opts: &'a TransferOptions,
    pub reporter: &'a dyn Reporter,
    pub fetched: &'a Fetched,
    pub budget: PullBudget<'a>,
}

/// One image between fetching its top manifest and the rest.
enum Step {
    /// Resolved already (from the target's copy).
    Done(Resolved),
    /// Its top manifest, from the source.
    Top(Result<Manifest, SharedError>),
}

impl Planner<'_> {
    /// Resolves `jobs`, sparing the source's pull budget (see [`super::budget`]): the source
    /// is asked with `HEAD` first, an image the target already holds is read from the
    /// target (so a re-sync that copies nothing makes no manifest `GET` at the source), and
    /// the `GET`s still needed are counted against the registry's stated limit before they
    /// are sent: the top manifests first, then their children.
    pub async fn resolve_all(&self, jobs: &[ImageJob]) -> Vec<Result<Resolved, SharedError>> {
        let width = self.opts.jobs.max(4) * 2;
        let probes: Vec<Probe> = stream::iter(jobs)
            .map(|job| budget::probe(self.source, self.sink, job))
            .buffered(width)
            .collect()
            .await;
        let mut tops = Needed::default();
        for (job, p) in jobs.iter().zip(&probes).filter(|(_, p)| !p.at_target) {
            let what = match &p.digest {
                Some(d) => d.to_string(),
                None => job.source.to_string(),
            };
            tops.add(job.source.registry(), what);
        }
        self.budget.check(&tops, false, self.reporter);

        let steps: Vec<Step> = stream::iter(jobs.iter().zip(&probes))
            .map(|(job, p)| async move {
                if p.at_target
                    && let Some(digest) = &p.digest
                    && let Some(r) = self.resolve_at_target(job, digest).await
                {
                    return Step::Done(r);
                }
                Step::Top(self.fetch_top(job, p.digest.as_ref()).await)
            })
            .buffered(width)
            .collect()
            .await;
        let mut children = Needed::default();
        for (job, step) in jobs.iter().zip(&steps) {
            if let Step::Top(Ok(top)) = step {
                let registry = job.source.registry();
                for d in budget::children(top, job) {
                    if !self.fetched.has(registry, &d) {
                        children.add(registry, d.to_string());
                    }
                }
            }
        }
        self.budget.check(&children, true, self.reporter);

        stream::iter(jobs.iter().zip(steps))
            .map(|(job, step)| async move {
                match step {
                    Step::Done(r) => Ok(r),
                    Step::Top(top) => {
                        resolve(
                            self.source,
                            job,
                            top?,
                            self.opts,
                            self.reporter,
                            self.fetched,
                        )
                        .await
                    }
                }
            })
            .buffered(width)
            .collect()
            .await
    }

    /// The image's top manifest at the source: by the digest its reference or the `HEAD`
    /// gave (fetched once per registry), else by tag.
    async fn fetch_top(
        &self,
        job: &ImageJob,
        digest: Option<&Digest>,
    ) -> Result<Manifest, SharedError> {
        let src = &job.source;
        if let Some(d) = src.digest().or(digest) {
            return self.fetched.get(self.source, src, d).await;
        }
        let top = self
            .source
            .manifest(src, src.locator())
            .await
            .map_err(Arc::new)?;
        self.fetched.remember(src.registry(), &top);
        Ok(top)
    }

    /// The image resolved from the target's copy at `digest`; `None` (resolve from the
    /// source) on any doubt.
    async fn resolve_at_target(&self, job: &ImageJob, digest: &Digest) -> Option<Resolved> {
        let Sink::Registry(to) = self.sink else {
            return None;
        };
        let there = ImageJob {
            source: job.target.with(None, Some(digest.clone())),
            ..job.clone()
        };
        let target = Source::Registry(to.clone());
        let top = self
            .fetched
            .get(&target, &there.source, digest)
            .await
            .ok()?;
        let resolved = resolve(&target, &there, top, self.opts, self.reporter, self.fetched)
            .await
            .ok()?;
        (resolved.source_digest == *digest).then_some(resolved)
    }
}

/// Resolves an image from its top manifest: walks an index (filtering platforms) and lists
/// its blobs.
async fn resolve(
    source: &Source,
    job: &ImageJob,
    top: Manifest,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
    fetched: &Fetched,
) -> Result<Resolved, SharedError> {
    let src = &job.source;
    let name = src.to_string();
    let (top_out, children) = match walk::parse(&top, &name)? {
        Parsed::Image(blobs) => {
            return Ok(Resolved {
                source_digest: top.digest.clone(),
                target_digest: top.digest.clone(),
                manifests: vec![top],
                blobs,
            });
        }
        // An index of no platforms (a signature or SBOM index) is not a platform index: it
        // is copied as it is whatever --platform says.
        Parsed::Index(children)
            if job.platforms.is_empty() || children.iter().all(|c| c.platform.is_none()) =>
        {
            (top.clone(), children)
        }
        Parsed::Index(_) => {
            let (filtered, kept) = walk::filter_index(&top, &name, &job.platforms)?;
            reporter.on_warning(&format!(
                "{name}: keeping only {} of the index: the target index digest changes from {} to {}",
                job.platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                top.digest,
                filtered.digest
            ));
            (filtered, kept)
        }
    };
    let children_fetched: Vec<Result<Manifest, SharedError>> = stream::iter(children.iter())
        .map(|c| fetched.get(source, src, &c.digest))
        .buffered(opts.jobs.max(4))
        .collect()
        .await;
    let mut manifests = Vec::with_capacity(children.len() + 1);
    let mut blobs = Vec::new();
    for (child, m) in children.iter().zip(children_fetched) {
        let m = m?;
        let child_name = format!("{}@{}", src.name(), child.digest);
        match walk::parse(&m, &child_name)? {
            Parsed::Image(b) => blobs.extend(b),
            Parsed::Index(grandchildren) => {
                nested(source, src, &grandchildren, 2, &mut manifests, &mut blobs).await?;
            }
        }
        manifests.push(m);
    }
    let target_digest = top_out.digest.clone();
    manifests.push(top_out);
    Ok(Resolved {
        source_digest: top.digest,
        target_digest,
        manifests,
        blobs,
    })
}

/// How deep indexes may nest (an index in an index in …): the top is depth 1.
const MAX_INDEX_DEPTH: usize = 4;

/// The manifests (children before their index, for pushing) and blobs under a nested
/// index's `children`, at `depth`.
fn nested<'a>(
    source: &'a Source,
    src: &'a ImageRef,
    children: &'a [walk::ChildRef],
    depth: usize,
    manifests: &'a mut Vec<Manifest>,
    blobs: &'a mut Vec<BlobRef>,
) -> futures_util::future::BoxFuture<'a, Result<(), TransferError>> {
    Box::pin(async move {
        for child in children {
            let m = source.manifest(src, child.digest.as_str()).await?;
            let child_name = format!("{}@{}", src.name(), child.digest);
            match walk::parse(&m, &child_name)? {
                Parsed::Image(b) => blobs.extend(b),
                Parsed::Index(_) if depth >= MAX_INDEX_DEPTH => {
                    return Err(TransferError::UnsupportedManifest {
                        reference: child_name,
                        media_type: format!(
                            "{} (indexes nested more than {MAX_INDEX_DEPTH} deep)",
                            m.media_type
                        ),
                    });
                }
                Parsed::Index(grandchildren) => {
                    nested(source, src, &grandchildren, depth + 1, manifests, blobs).await?;
                }
            }
            manifests.push(m);
        }
        Ok(())
    })
}
