//! The source's pull budget while planning. Docker Hub counts manifest `GET`s against a limit
//! (100–200 per 6 h) and not `HEAD`s, and states what is left in `RateLimit-Limit` /
//! `RateLimit-Remaining` on every answer, `HEAD`s included. Planning therefore asks the
//! source with `HEAD` first ([`probe`]), learns the budget from those answers, counts the
//! manifest `GET`s the plan needs there, and warns once per registry when they exceed what is
//! left — before spending them ([`PullBudget`]). The run goes on: what fits the budget is
//! copied, and the rest fails with the registry's `429` and is copied by the next run.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use crate::mapping::ImageJob;
use crate::reference::Digest;
use crate::registry::{Manifest, RegistryClient};
use crate::report::Reporter;

use super::walk::{self, Parsed};
use super::{Sink, Source};

/// What the source's `HEAD` (and the target's) said about one image, before any `GET`.
#[derive(Debug, Clone, Default)]
pub(super) struct Probe {
    /// The source's top manifest digest: the reference's own, else the `HEAD`'s.
    pub digest: Option<Digest>,
    /// The target already holds the image at that digest: its manifests are read there.
    pub at_target: bool,
}

/// Asks the source for the image's digest with `HEAD` (which Docker Hub does not count), and
/// the target whether it holds that digest already. Failures leave the answer unknown: the
/// `GET` that follows reports them with their reference.
pub(super) async fn probe(source: &Source, sink: &Sink, job: &ImageJob) -> Probe {
    let Source::Registry(from) = source else {
        return Probe {
            digest: job.source.digest().cloned(),
            at_target: false,
        };
    };
    let src = &job.source;
    let head = from
        .repo(src.registry(), src.repository())
        .head_manifest(src.locator())
        .await;
    let digest = match (src.digest(), head) {
        (Some(d), _) => Some(d.clone()),
        (None, Ok(Some(info))) => Some(info.digest),
        (None, _) => None,
    };
    // With --platform the source's index is needed to filter it, whatever the target holds.
    let at_target = match (&digest, sink) {
        (Some(d), Sink::Registry(_)) if job.platforms.is_empty() => {
            super::plan::target_has(sink, &job.target, d)
                .await
                .unwrap_or(false)
        }
        _ => false,
    };
    Probe { digest, at_target }
}

/// The children of `top` that resolving `job` fetches (all of an index's, or the platforms
/// `--platform` keeps); none for an image manifest or one that does not parse (resolving
/// reports that).
pub(super) fn children(top: &Manifest, job: &ImageJob) -> Vec<Digest> {
    let name = job.source.to_string();
    let children = match walk::parse(top, &name) {
        Ok(Parsed::Index(children))
            if job.platforms.is_empty() || children.iter().all(|c| c.platform.is_none()) =>
        {
            children
        }
        Ok(Parsed::Index(_)) => match walk::filter_index(top, &name, &job.platforms) {
            Ok((_, kept)) => kept,
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    };
    children.into_iter().map(|c| c.digest).collect()
}

/// Manifest `GET`s a step of planning needs, per source registry, counted once per digest.
#[derive(Debug, Default)]
pub(super) struct Needed {
    by_registry: BTreeMap<String, HashSet<String>>,
}

impl Needed {
    /// Counts a `GET` of `what` (a digest, or a reference whose digest is unknown) at
    /// `registry`.
    pub fn add(&mut self, registry: &str, what: String) {
        self.by_registry
            .entry(registry.to_owned())
            .or_default()
            .insert(what);
    }
}

/// Warns, once per registry and run, when the plan needs more manifest `GET`s at a registry
/// than its pull limit has left.
pub(super) struct PullBudget<'a> {
    client: Option<&'a RegistryClient>,
    warned: Mutex<HashSet<String>>,
}

impl<'a> PullBudget<'a> {
    /// The budget of `source` (a bundle has none).
    pub fn new(source: &'a Source) -> Self {
        PullBudget {
            client: match source {
                Source::Registry(c) => Some(c),
                Source::Bundle(_) => None,
            },
            warned: Mutex::new(HashSet::new()),
        }
    }

    /// Checks `needed` against what each registry's last answer said is left. `more` says
    /// the count is of further `GET`s (children of manifests already fetched); otherwise it
    /// is a lower bound (the top manifests, whose children are not known yet).
    pub fn check(&self, needed: &Needed, more: bool, reporter: &dyn Reporter) {
        let Some(client) = self.client else { return };
        for (registry, gets) in &needed.by_registry {
            let Some(limit) = client.rate_limit(registry) else {
                continue;
            };
            let n = gets.len() as u64;
            if n <= limit.remaining {
                continue;
            }
            if !self
                .warned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(registry.clone())
            {
                continue;
            }
            reporter.on_warning(&warning(registry, &limit, n, more));
        }
    }
}

/// The warning for `needed` manifest `GET`s at `registry` beyond `limit`.
fn warning(registry: &str, limit: &crate::registry::RateLimit, needed: u64, more: bool) -> String {
    let count = if more {
        format!("{needed} more")
    } else {
        format!("at least {needed}")
    };
    let reset = limit
        .resets_in()
        .map(|r| format!(" (it resets {r})"))
        .unwrap_or_default();
    format!(
        "pull limit: {registry} allows {} and has {} left, but this run needs {count} manifest \
         GETs there: it goes on, and what is past the limit fails with 429 (Too Many Requests); \
         run it again once the limit resets{reset} to copy the rest",
        limit.describe(),
        limit.remaining,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RateLimit;

    #[test]
    fn the_warning_names_the_limit_what_is_left_and_what_is_needed() {
        let limit = RateLimit {
            limit: 100,
            remaining: 3,
            window_secs: Some(21600),
            reset_secs: None,
        };
        assert_eq!(
            warning("docker.io", &limit, 14, false),
            "pull limit: docker.io allows 100 pulls per 6 h and has 3 left, but this run needs \
             at least 14 manifest GETs there: it goes on, and what is past the limit fails with \
             429 (Too Many Requests); run it again once the limit resets to copy the rest"
        );
        let limit = RateLimit {
            reset_secs: Some(125),
            window_secs: None,
            ..limit
        };
        let w = warning("r.example", &limit, 9, true);
        assert!(w.contains("allows 100 pulls and has 3 left"), "{w}");
        assert!(w.contains("needs 9 more manifest GETs"), "{w}");
        assert!(
            w.contains("once the limit resets (it resets in 3 min) to"),
            "{w}"
        );
    }

    #[test]
    fn needed_gets_count_each_digest_once() {
        let mut n = Needed::default();
        n.add("a", "sha256:1".into());
        n.add("a", "sha256:1".into());
        n.add("a", "x/y:1".into());
        n.add("b", "sha256:1".into());
        assert_eq!(n.by_registry["a"].len(), 2);
        assert_eq!(n.by_registry["b"].len(), 1);
    }
}
