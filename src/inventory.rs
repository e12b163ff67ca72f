//! Inventories: what a (site) registry already holds, so a differential bundle can leave it
//! out.
//!
//! [`take`] lists the repositories under a prefix, their tags, fetches every tagged manifest
//! (and the children of indexes) and records every manifest and blob digest they reference.
//! The result is written as a small versioned JSON file ([`Inventory::write`]) that is carried
//! out of the disconnected site; `bundle create --exclude-from` reads it back
//! ([`Inventory::read`], [`exclusions`]). `bundle create --since OLD_BUNDLE` gets the same kind
//! of map from an older bundle's descriptors instead ([`exclusions_from_bundles`]).
//!
//! An inventory errs on the side of listing too little: a tag that disappears while it is
//! taken, or a manifest airlift cannot read, is left out (with a warning) rather than failing
//! the run, because a missing entry only makes a bundle larger, while a wrong one would make
//! it incomplete. Failures to reach or authenticate to the registry do fail the run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::bundle::{BundleError, VolumeReader};
use crate::reference::Digest;
use crate::registry::{RegistryClient, RegistryError, Repo};
use crate::transfer::walk::{self, Parsed};

/// The `format` field of an inventory file.
pub const INVENTORY_FORMAT: &str = "airlift-inventory";
/// The inventory file version this build writes and reads.
pub const INVENTORY_VERSION: u32 = 1;

/// What a registry holds under a prefix. Serialised as the inventory file; it never contains
/// credentials, only names, tags, digests and sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Always [`INVENTORY_FORMAT`].
    pub format: String,
    /// [`INVENTORY_VERSION`].
    pub version: u32,
    /// The registry inventoried (`host[:port]`).
    pub registry: String,
    /// The repository prefix inventoried; empty for the whole registry.
    pub prefix: String,
    /// When the inventory was taken (RFC 3339, UTC).
    pub created: String,
    /// Repositories, by name, with their tags.
    pub repositories: BTreeMap<String, RepositoryInventory>,
    /// Every blob (config or layer) referenced by a manifest found, with its size as the
    /// manifest declares it.
    pub blobs: BTreeMap<Digest, u64>,
    /// Every manifest found: tagged manifests and the children of tagged indexes.
    pub manifests: BTreeSet<Digest>,
}

/// One repository of an [`Inventory`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryInventory {
    /// Tag → digest of the manifest it points at.
    pub tags: BTreeMap<String, Digest>,
}

/// Errors of taking, reading and writing inventories.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// Talking to the registry failed.
    #[error("{what}")]
    Registry {
        /// What was being done, e.g. "listing the repositories of reg.lan:5000".
        what: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an inventory (not JSON, not of this format, fields missing).
    #[error("{path}: not a valid airlift inventory: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file is an inventory of a version this build does not read.
    #[error(
        "{path}: inventory version {found} is not supported (this airlift {tool} reads version {supported}); use a newer airlift",
        tool = env!("CARGO_PKG_VERSION")
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u64,
        /// The version this build reads.
        supported: u32,
    },
}

impl Inventory {
    /// An empty inventory of `registry` under `prefix`, dated `created`.
    pub fn new(registry: &str, prefix: &str, created: &str) -> Inventory {
        Inventory {
            format: INVENTORY_FORMAT.to_owned(),
            version: INVENTORY_VERSION,
            registry: registry.to_owned(),
            prefix: prefix.to_owned(),
            created: created.to_owned(),
            repositories: BTreeMap::new(),
            blobs: BTreeMap::new(),
            manifests: BTreeSet::new(),
        }
    }

    /// Serialises the inventory as written to a file (pretty JSON, trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("inventory serialises");
        v.push(b'\n');
        v
    }

    /// Parses an inventory read from `path` (used in errors). The format and version are
    /// checked before anything else, so a future version gives a version error.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Inventory, InventoryError> {
        let invalid = |reason: String| InventoryError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(INVENTORY_FORMAT) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "`format` is `{other}`, expected `{INVENTORY_FORMAT}`"
                )));
            }
            None => return Err(invalid("missing `format`".into())),
        }
        let found = value
            .get("version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| invalid("missing or non-numeric `version`".into()))?;
        if found != u64::from(INVENTORY_VERSION) {
            return Err(InventoryError::UnsupportedVersion {
                path: path.to_owned(),
                found,
                supported: INVENTORY_VERSION,
            });
        }
        serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
    }

    /// Reads the inventory file at `path`.
    pub fn read(path: &Path) -> Result<Inventory, InventoryError> {
        let bytes = std::fs::read(path).map_err(|source| InventoryError::Io {
            path: path.to_owned(),
            source,
        })?;
        Inventory::parse(&bytes, path)
    }

    /// Writes the inventory to `path` atomically: a temporary file in the same directory,
    /// synced, then renamed over `path`.
    pub fn write(&self, path: &Path) -> Result<(), InventoryError> {
        let io = |source| InventoryError::Io {
            path: path.to_owned(),
            source,
        };
        let (mut f, tmp) = crate::fsutil::create_temp(path).map_err(io)?;
        let result = (|| {
            use std::io::Write;
            f.write_all(&self.to_bytes())?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// The blobs the sites described by `inventories` hold: the union of their `blobs`, each with
/// its size. Manifests are not included: bundles always carry them.
pub fn exclusions(inventories: &[Inventory]) -> BTreeMap<Digest, u64> {
    let mut out = BTreeMap::new();
    for inv in inventories {
        for (digest, size) in &inv.blobs {
            out.entry(digest.clone()).or_insert(*size);
        }
    }
    out
}

/// The blobs an older bundle delivered to the site, read from the descriptors of `volumes`
/// alone (any volume of a bundle describes all of it; volumes of several bundles may be
/// mixed): the blobs it carries, plus the blobs it itself expected at the site (a site that
/// loaded a differential bundle holds those too).
pub fn exclusions_from_bundles(volumes: &[PathBuf]) -> Result<BTreeMap<Digest, u64>, BundleError> {
    if volumes.is_empty() {
        return Err(BundleError::NoVolumes);
    }
    let mut out = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for path in volumes {
        let reader = VolumeReader::open(path)?;
        let d = reader.descriptor();
        // Volumes of one bundle describe the same blobs: read each bundle once.
        if !seen.insert(d.bundle_id.clone()) {
            continue;
        }
        for (digest, entry) in &d.blobs {
            out.entry(digest.clone()).or_insert(entry.size);
        }
        for (digest, size) in &d.excluded_blobs {
            out.entry(digest.clone()).or_insert(*size);
        }
    }
    Ok(out)
}

/// Whether `repository` is under `prefix`: equal to it or below it (`team` matches `team` and
/// `team/app`, not `teamwork`). An empty prefix matches everything.
pub fn under_prefix(repository: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_matches('/');
    prefix.is_empty()
        || repository == prefix
        || repository
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// What one manifest references, remembered by digest so a manifest shared by many tags or
/// repositories is fetched once.
#[derive(Debug, Clone)]
enum Known {
    Index(Vec<Digest>),
    Image(Vec<(Digest, u64)>),
    /// Not readable as an image or index (artifact of an unknown type, invalid JSON).
    Opaque,
}

type Cache = Arc<Mutex<HashMap<Digest, Known>>>;

/// Whether the registry has the referrers API: unknown until its first answer.
type ReferrersApi = Arc<Mutex<Option<bool>>>;

/// What one tag contributed.
struct TagResult {
    repository: String,
    tag: String,
    digest: Digest,
    manifests: Vec<Digest>,
    blobs: Vec<(Digest, u64)>,
}

fn registry_err(what: String) -> impl FnOnce(RegistryError) -> InventoryError {
    move |source| InventoryError::Registry { what, source }
}

/// Classifies a fetched manifest; unreadable ones are remembered as opaque.
fn classify(manifest: &crate::registry::Manifest, reference: &str) -> Known {
    match walk::parse(manifest, reference) {
        Ok(Parsed::Index(children)) => {
            Known::Index(children.into_iter().map(|c| c.digest).collect())
        }
        Ok(Parsed::Image(blobs)) => {
            Known::Image(blobs.into_iter().map(|b| (b.digest, b.size)).collect())
        }
        Err(e) => {
            tracing::warn!(
                "{reference}: {}; its blobs are left out of the inventory",
                crate::transfer::error_chain(&e)
            );
            Known::Opaque
        }
    }
}

/// Fetches `locator` (unless its digest is known) and classifies it. `None` when the registry
/// no longer has it.
async fn fetch(
    repo: &Repo,
    locator: &str,
    cache: &Cache,
) -> Result<Option<(Digest, Known)>, InventoryError> {
    if let Ok(d) = locator.parse::<Digest>()
        && let Some(k) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&d)
    {
        return Ok(Some((d, k.clone())));
    }
    let reference = format!("{}:{locator}", repo.name());
    let manifest = match repo.get_manifest(locator).await {
        Ok(m) => m,
        Err(RegistryError::NotFound { .. }) => {
            tracing::warn!("{reference} disappeared while the inventory was taken; left out");
            return Ok(None);
        }
        Err(e) => return Err(registry_err(format!("fetching manifest {reference}"))(e)),
    };
    let known = {
        let cached = cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&manifest.digest)
            .cloned();
        match cached {
            Some(k) => k,
            None => {
                let k = classify(&manifest, &reference);
                cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(manifest.digest.clone(), k.clone());
                k
            }
        }
    };
    Ok(Some((manifest.digest, known)))
}

/// Resolves one tag: its manifest, the children of an index, and every blob.
async fn inventory_tag(
    repo: Repo,
    tag: String,
    cache: Cache,
    api: ReferrersApi,
) -> Result<Option<TagResult>, InventoryError> {
    let Some((digest, known)) = fetch(&repo, &tag, &cache).await? else {
        return Ok(None);
    };
    let mut result = TagResult {
        repository: repo.repository().to_owned(),
        tag,
        digest: digest.clone(),
        manifests: vec![digest],
        blobs: Vec::new(),
    };
    match known {
        Known::Image(blobs) => result.blobs = blobs,
        Known::Opaque => {}
        Known::Index(children) => {
            for child in children {
                // Nested indexes are not followed: registries and airlift copy one level.
                match fetch(&repo, child.as_str(), &cache).await? {
                    Some((d, Known::Image(blobs))) => {
                        result.manifests.push(d);
                        result.blobs.extend(blobs);
                    }
                    Some((d, _)) => result.manifests.push(d),
                    None => {}
                }
            }
        }
    }
    add_referrers(&repo, &mut result, &cache, &api).await?;
    Ok(Some(result))
}

/// Adds the signatures, attestations and SBOMs of the tag's manifests (and theirs, as deep as
/// airlift copies them) that the registry lists through the referrers API. Where there is no
/// such API they live under `sha256-<hex>` tags, which the inventory walks anyway.
async fn add_referrers(
    repo: &Repo,
    result: &mut TagResult,
    cache: &Cache,
    api: &ReferrersApi,
) -> Result<(), InventoryError> {
    let mut frontier = result.manifests.clone();
    let mut seen: std::collections::HashSet<Digest> = frontier.iter().cloned().collect();
    for _ in 0..crate::transfer::referrers::MAX_DEPTH {
        let mut next = Vec::new();
        for subject in frontier {
            if *api.lock().unwrap_or_else(|p| p.into_inner()) == Some(false) {
                return Ok(());
            }
            let listed = match repo.referrers(&subject).await {
                Ok(listed) => listed,
                Err(e) => {
                    // Referrers only make a differential bundle smaller: not worth failing.
                    tracing::warn!(
                        "{}@{subject}: cannot list its referrers: {}",
                        repo.name(),
                        crate::transfer::error_chain(&e)
                    );
                    continue;
                }
            };
            *api.lock().unwrap_or_else(|p| p.into_inner()) = Some(listed.is_some());
            for r in listed.into_iter().flatten() {
                if !seen.insert(r.digest.clone()) {
                    continue;
                }
                match fetch(repo, r.digest.as_str(), cache).await? {
                    Some((d, Known::Image(blobs))) => {
                        result.manifests.push(d.clone());
                        result.blobs.extend(blobs);
                        next.push(d);
                    }
                    Some((d, _)) => {
                        result.manifests.push(d.clone());
                        next.push(d);
                    }
                    None => {}
                }
            }
        }
        frontier = next;
    }
    Ok(())
}

/// Takes the inventory of the repositories of `registry` under `prefix` (empty: all), with
/// at most `jobs` requests in flight (at least one).
///
/// Needs the catalog (`registry:catalog:*`) and pull access to the repositories. Tagged
/// manifests, the children of tagged indexes and, where the registry has the referrers API,
/// their signatures, attestations and SBOMs are found: the distribution API cannot list other
/// untagged manifests.
pub async fn take(
    client: &RegistryClient,
    registry: &str,
    prefix: &str,
    jobs: usize,
) -> Result<Inventory, InventoryError> {
    take_paged(client, registry, prefix, jobs, None).await
}

/// [`take`] with the catalog and tag listings asking for `page_size` entries per page
/// (registry default when `None`).
pub async fn take_paged(
    client: &RegistryClient,
    registry: &str,
    prefix: &str,
    jobs: usize,
    page_size: Option<usize>,
) -> Result<Inventory, InventoryError> {
    let catalog = match page_size {
        Some(n) => client.catalog_paged(registry, n).await,
        None => client.catalog(registry).await,
    }
    .map_err(registry_err(format!(
        "listing the repositories of {registry}"
    )))?;
    take_from(client, registry, prefix, &catalog, jobs, page_size).await
}

/// [`take`] without the catalog (for accounts without catalog rights, such as Harbor robot
/// accounts): the tags and digests of `repositories`, those under `prefix`. A repository that
/// does not exist is listed empty.
pub async fn take_repositories(
    client: &RegistryClient,
    registry: &str,
    prefix: &str,
    repositories: &[String],
    jobs: usize,
) -> Result<Inventory, InventoryError> {
    take_from(client, registry, prefix, repositories, jobs, None).await
}

async fn take_from(
    client: &RegistryClient,
    registry: &str,
    prefix: &str,
    repositories: &[String],
    jobs: usize,
    page_size: Option<usize>,
) -> Result<Inventory, InventoryError> {
    let jobs = jobs.max(1);
    let prefix = prefix.trim_matches('/');
    let created = rfc3339(SystemTime::now());
    let repos: Vec<Repo> = repositories
        .iter()
        .filter(|r| under_prefix(r, prefix))
        .map(|r| client.repo(registry, r))
        .collect();

    let tagged: Vec<(Repo, Vec<String>)> = futures_util::stream::iter(repos)
        .map(|repo| async move {
            let tags = match page_size {
                Some(n) => repo.tags_paged(n).await,
                None => repo.tags().await,
            }
            .map_err(registry_err(format!("listing the tags of {}", repo.name())))?;
            Ok::<_, InventoryError>((repo, tags))
        })
        .buffer_unordered(jobs)
        .try_collect()
        .await?;

    let mut inv = Inventory::new(registry, prefix, &created);
    for (repo, _) in &tagged {
        inv.repositories
            .insert(repo.repository().to_owned(), RepositoryInventory::default());
    }
    let cache: Cache = Arc::default();
    let api: ReferrersApi = Arc::default();
    let work: Vec<(Repo, String)> = tagged
        .into_iter()
        .flat_map(|(repo, tags)| tags.into_iter().map(move |t| (repo.clone(), t)))
        .collect();
    let results: Vec<Option<TagResult>> = futures_util::stream::iter(work)
        .map(|(repo, tag)| inventory_tag(repo, tag, cache.clone(), api.clone()))
        .buffer_unordered(jobs)
        .try_collect()
        .await?;
    for r in results.into_iter().flatten() {
        inv.repositories
            .entry(r.repository)
            .or_default()
            .tags
            .insert(r.tag, r.digest);
        inv.manifests.extend(r.manifests);
        for (digest, size) in r.blobs {
            inv.blobs.entry(digest).or_insert(size);
        }
    }
    Ok(inv)
}

/// `t` as RFC 3339 UTC with whole seconds (`2025-06-01T12:00:00Z`).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's `civil_from_days`.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests;
