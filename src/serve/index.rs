//! What the served registry holds: the bundle's images under the repository names the mapping
//! gives them, their tags, and the manifests and blobs each repository may answer for.
//!
//! Names come from [`crate::mapping::map_reference`], the mapping `bundle load` uses, so an
//! image served here has the repository path it would have after `bundle load --to
//! HOST/PREFIX` with the same flags. As in a registry, a blob is found only under a repository
//! whose images use it, and a manifest only under a repository whose images hold it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::bundle::{BundleStore, Descriptor, ImageEntry};
use crate::imagelist::check_repository;
use crate::mapping::{Destination, MappingMode, map_reference};
use crate::reference::{Digest, ImageRef};

use super::ServeError;

/// How bundle images are named: the mapping mode and a path prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Naming {
    mode: MappingMode,
    /// Without leading or trailing slashes; empty for none.
    prefix: String,
}

impl Naming {
    /// Checks `prefix` (a repository path, e.g. `mirror/site`; empty for none).
    pub fn new(mode: MappingMode, prefix: &str) -> Result<Naming, ServeError> {
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            check_repository(prefix).map_err(|reason| ServeError::Prefix {
                prefix: prefix.to_owned(),
                reason,
            })?;
        }
        Ok(Naming {
            mode,
            prefix: prefix.to_owned(),
        })
    }

    /// The repository an image with this source reference is served under.
    pub fn repository(&self, source: &ImageRef) -> String {
        // The registry part of the destination is not used: only the path is served.
        let dest = Destination {
            registry: String::new(),
            prefix: self.prefix.clone(),
        };
        map_reference(source, &dest, self.mode)
            .repository()
            .to_owned()
    }
}

/// A manifest that refers to another (a signature, attestation or SBOM), for the referrers API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The manifest it refers to.
    pub subject: Digest,
    /// Its own top manifest.
    pub digest: Digest,
}

/// One served repository.
#[derive(Debug, Default)]
pub struct Repository {
    /// Tag -> top manifest digest.
    pub tags: BTreeMap<String, Digest>,
    /// Every manifest its images hold (index children included).
    pub manifests: HashSet<Digest>,
    /// Every blob its images use.
    pub blobs: HashSet<Digest>,
    /// Its images that refer to another manifest.
    pub referrers: Vec<Referrer>,
}

/// An image of the bundle that is not served, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The image's source reference, as the bundle records it.
    pub source: String,
    /// Why (e.g. `needs volume(s) 2, 3`).
    pub reason: String,
}

/// Everything the server answers for.
#[derive(Debug, Default)]
pub struct Repositories {
    repos: BTreeMap<String, Repository>,
    /// Images served (those from the lists, not their referrers).
    pub images: usize,
    /// Referrers served.
    pub referrers: usize,
    /// Images not served because content is missing.
    pub skipped: Vec<Skipped>,
}

impl Repositories {
    /// Names every image of `store` with `naming`. Images whose manifests or blobs are not all
    /// in the volumes given are left out (listed in `skipped`). Two images that the naming
    /// puts on the same tag of the same repository are an error, as in `mirror sync`.
    pub fn build(store: &BundleStore, naming: &Naming) -> Result<Repositories, ServeError> {
        let descriptor = store.descriptor();
        let mut out = Repositories::default();
        // (repository, tag) -> the source that holds it.
        let mut owners: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut conflicts = Vec::new();
        for image in &descriptor.images {
            let source: ImageRef = image.source.parse().map_err(|e| ServeError::Image {
                source_ref: image.source.clone(),
                reason: format!("{e}"),
            })?;
            if let Some(reason) = missing(store, descriptor, image) {
                out.skipped.push(Skipped {
                    source: image.source.clone(),
                    reason,
                });
                continue;
            }
            let name = naming.repository(&source);
            let repo = out.repos.entry(name.clone()).or_default();
            if let Some(tag) = &image.tag {
                let key = (name.clone(), tag.clone());
                match owners.get(&key) {
                    Some(first) if repo.tags.get(tag) != Some(&image.digest) => {
                        conflicts.push(format!(
                            "{name}:{tag} would serve both `{first}` and `{}`",
                            image.source
                        ));
                        continue;
                    }
                    Some(_) => {}
                    None => {
                        owners.insert(key, image.source.clone());
                        repo.tags.insert(tag.clone(), image.digest.clone());
                    }
                }
            }
            repo.manifests.extend(image.manifests.iter().cloned());
            repo.blobs.extend(image.blobs.iter().cloned());
            if let Some(subject) = &image.subject {
                repo.referrers.push(Referrer {
                    subject: subject.clone(),
                    digest: image.digest.clone(),
                });
            }
            if image.referrer_of.is_some() {
                out.referrers += 1;
            } else {
                out.images += 1;
            }
        }
        if !conflicts.is_empty() {
            return Err(ServeError::Conflicts(conflicts));
        }
        Ok(out)
    }

    /// A repository by name.
    pub fn get(&self, name: &str) -> Option<&Repository> {
        self.repos.get(name)
    }

    /// Repository names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.repos.keys().map(String::as_str)
    }
}

/// Why `image` cannot be served from the volumes of `store`, if it cannot.
fn missing(store: &BundleStore, descriptor: &Descriptor, image: &ImageEntry) -> Option<String> {
    if let Some(m) = image.manifests.iter().find(|m| store.manifest(m).is_none()) {
        return Some(format!("manifest {m} is not in the bundle"));
    }
    let absent: Vec<&Digest> = image
        .blobs
        .iter()
        .filter(|b| store.blob_size(b).is_none())
        .collect();
    if absent.is_empty() {
        return None;
    }
    let volumes: BTreeSet<u32> = absent
        .iter()
        .filter_map(|b| descriptor.blobs.get(*b))
        .flat_map(|entry| entry.volume_numbers())
        .filter(|n| store.volume_path(*n).is_none())
        .collect();
    let left_out = absent
        .iter()
        .filter(|b| !descriptor.blobs.contains_key(**b))
        .count();
    let mut why = Vec::new();
    if !volumes.is_empty() {
        let list: Vec<String> = volumes.iter().map(u32::to_string).collect();
        why.push(format!("needs volume(s) {}", list.join(", ")));
    }
    if left_out > 0 {
        why.push(format!(
            "{left_out} of its blobs are not in this differential bundle (expected at the site)"
        ));
    }
    Some(why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::testutil;

    fn naming(mode: MappingMode, prefix: &str) -> Naming {
        Naming::new(mode, prefix).unwrap()
    }

    #[test]
    fn names_follow_the_load_mapping() {
        let r: ImageRef = "reg.example:5000/team/app:1".parse().unwrap();
        assert_eq!(naming(MappingMode::Strip, "").repository(&r), "team/app");
        assert_eq!(
            naming(MappingMode::Strip, "/site/m/").repository(&r),
            "site/m/team/app"
        );
        assert_eq!(
            naming(MappingMode::KeepHost, "").repository(&r),
            "reg.example_5000/team/app"
        );
        assert_eq!(naming(MappingMode::Flatten, "x").repository(&r), "x/app");
        assert!(matches!(
            Naming::new(MappingMode::Strip, "Bad/Prefix"),
            Err(ServeError::Prefix { .. })
        ));
    }

    #[test]
    fn images_missing_a_volume_are_skipped_and_the_rest_served() {
        let f = testutil::fixture(300_000);
        let volumes = f.write("release.tar.zst", Some(128 << 10));
        let all = BundleStore::open(&volumes).unwrap();
        let repos = Repositories::build(&all, &Naming::default()).unwrap();
        assert!(repos.skipped.is_empty(), "{:?}", repos.skipped);
        assert_eq!(repos.images, all.descriptor().images.len());
        for image in &all.descriptor().images {
            let source: ImageRef = image.source.parse().unwrap();
            let repo = repos.get(source.repository()).expect("served");
            assert!(repo.manifests.contains(&image.digest));
            assert!(image.blobs.iter().all(|b| repo.blobs.contains(b)));
            if let Some(tag) = &image.tag {
                assert_eq!(repo.tags[tag], image.digest);
            }
        }

        let first = BundleStore::open(&volumes[..1]).unwrap();
        let repos = Repositories::build(&first, &Naming::default()).unwrap();
        assert!(!repos.skipped.is_empty());
        assert!(
            repos
                .skipped
                .iter()
                .all(|s| s.reason.starts_with("needs volume(s) ")),
            "{:?}",
            repos.skipped
        );
        assert_eq!(
            repos.images + repos.skipped.len(),
            first.descriptor().images.len()
        );
    }

    #[test]
    fn two_images_on_one_tag_are_a_conflict() {
        let mut f = testutil::fixture(10_000);
        // gamma flattened lands on alpha's name and tag with another digest.
        f.input.images[2].source = "quay.io/other/alpha:1.0".into();
        f.input.images[2].tag = Some("1.0".into());
        let volumes = f.write("release.tar.zst", None);
        let store = BundleStore::open(&volumes).unwrap();
        assert!(Repositories::build(&store, &naming(MappingMode::Strip, "")).is_ok());
        let Err(ServeError::Conflicts(c)) =
            Repositories::build(&store, &naming(MappingMode::Flatten, "m"))
        else {
            panic!("no conflict")
        };
        assert_eq!(
            c,
            [
                "m/alpha:1.0 would serve both `docker.io/library/alpha:1.0` and \
              `quay.io/other/alpha:1.0`"
            ]
        );
    }
}
