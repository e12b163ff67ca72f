//! Site integration: the configuration that makes a site's container runtimes pull from the
//! mirror instead of the internet, written from the exact mapping `mirror sync` used.
//!
//! [`plan`] turns the resolved jobs (the same [`ImageJob`]s `mirror sync` copies) into one
//! rule per source registry: a whole-registry rule when every listed repository of that
//! registry lands under one path of the mirror (`--keep-host` and prefix mappings), else one
//! rule per repository (`--flatten`, explicit targets). Each runtime module renders those
//! rules in its own format, refusing what its format cannot express. Nothing here prints:
//! generators return [`Generated`] files and warnings. The formats are documented in
//! `docs/site-config.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::imagelist::Origin;
use crate::mapping::ImageJob;
use crate::registry::SiteConnection;

pub mod containerd;
pub mod containers;
pub mod imagemap;
pub mod k3s;
pub mod openshift;
pub mod pullsecret;

/// Largest CA file copied into a generated configuration.
const MAX_CA_FILE: u64 = 1 << 20;

/// Errors of the generators.
#[derive(Debug, thiserror::Error)]
pub enum SiteConfigError {
    /// The runtime's configuration cannot express the mapping.
    #[error("{runtime} cannot express this mapping: {reason}")]
    Unsupported {
        /// The runtime (`containerd`, ...).
        runtime: &'static str,
        /// Why, and what to use instead.
        reason: String,
    },
    /// A list entry's target is on another registry than the mirror.
    #[error("{origin}: target `{target}` is not on the mirror {mirror}")]
    OtherRegistry {
        /// Where the entry was listed.
        origin: Origin,
        /// Its target.
        target: String,
        /// The mirror.
        mirror: String,
    },
    /// A CA file could not be read.
    #[error("cannot read CA file {}", path.display())]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CA file is implausibly large.
    #[error("CA file {} is larger than {MAX_CA_FILE} bytes", path.display())]
    CaTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A document could not be serialised.
    #[error("cannot write {what}: {reason}")]
    Serialize {
        /// Which document.
        what: &'static str,
        /// The serialiser's message.
        reason: String,
    },
}

impl SiteConfigError {
    /// Whether the error is about the input (the mapping or the lists), not the machine.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            SiteConfigError::Unsupported { .. } | SiteConfigError::OtherRegistry { .. }
        )
    }
}

/// One file to write, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Path under the output directory (`docker.io/hosts.toml`).
    pub path: PathBuf,
    /// The contents.
    pub contents: Vec<u8>,
    /// Holds credentials: written with mode 0600 and never shown on a terminal unasked.
    pub secret: bool,
}

/// What a generator produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generated {
    /// Files to write.
    pub files: Vec<OutputFile>,
    /// Things the operator should know (limits of the format, short-lived tokens).
    pub warnings: Vec<String>,
}

impl Generated {
    fn one(path: &str, contents: String, secret: bool) -> Self {
        Generated {
            files: vec![OutputFile {
                path: PathBuf::from(path),
                contents: contents.into_bytes(),
                secret,
            }],
            warnings: Vec::new(),
        }
    }
}

/// How the repositories of one source registry are found on the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// Every repository `R` is at `MIRROR/PATH/R` (`PATH` empty: at `MIRROR/R`).
    Whole {
        /// The path on the mirror, without slashes at either end.
        path: String,
    },
    /// Only the listed repositories, each at its own place.
    PerRepository(Vec<RepoRule>),
}

/// One repository's place on the mirror.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RepoRule {
    /// Repository path on the source registry (`coredns/coredns`).
    pub source: String,
    /// Repository path on the mirror (`team/coredns`).
    pub target: String,
}

/// The rule for one source registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRegistry {
    /// `host[:port]` as references name it (`docker.io` for Docker Hub).
    pub registry: String,
    /// Where its repositories are on the mirror.
    pub rule: HostRule,
    /// Some listed image gets another tag on the mirror than at the source, so a pull by
    /// that tag through the mirror finds nothing (only the digest matches).
    pub retagged: bool,
}

/// The mirror as the runtimes must reach it, and the rules for every source registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePlan {
    /// How the mirror is reached (scheme, TLS files).
    pub mirror: SiteConnection,
    /// One rule per source registry, sorted by registry.
    pub sources: Vec<SourceRegistry>,
}

impl SitePlan {
    /// `scheme://MIRROR` as runtimes write endpoints.
    pub fn mirror_url(&self) -> String {
        let scheme = if self.mirror.plain_http {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.mirror.registry)
    }

    /// Whether the runtimes must be told the mirror is insecure: plain HTTP, or a
    /// certificate airlift itself does not check (`--insecure-registry`).
    pub fn mirror_insecure(&self) -> bool {
        self.mirror.plain_http || self.mirror.skip_verify
    }

    /// `MIRROR/PATH` (or `MIRROR`), a repository location without scheme.
    pub fn mirror_location(&self, path: &str) -> String {
        join(&self.mirror.registry, path)
    }
}

/// `a/b`, or `a` when `b` is empty.
fn join(a: &str, b: &str) -> String {
    if b.is_empty() {
        a.to_owned()
    } else {
        format!("{a}/{b}")
    }
}

/// Groups `jobs` by source registry and finds each one's rule. Every target must be on
/// `mirror.registry`.
pub fn plan(jobs: &[ImageJob], mirror: SiteConnection) -> Result<SitePlan, SiteConfigError> {
    let mut by_host: BTreeMap<&str, Vec<&ImageJob>> = BTreeMap::new();
    for job in jobs {
        if job.target.registry() != mirror.registry {
            return Err(SiteConfigError::OtherRegistry {
                origin: job.origin.clone(),
                target: job.target.to_string(),
                mirror: mirror.registry.clone(),
            });
        }
        by_host.entry(job.source.registry()).or_default().push(job);
    }
    let sources = by_host
        .into_iter()
        .map(|(registry, jobs)| SourceRegistry {
            registry: registry.to_owned(),
            rule: host_rule(&jobs),
            retagged: jobs
                .iter()
                .any(|j| j.source.tag().is_some() && j.target.tag() != j.source.tag()),
        })
        .collect();
    Ok(SitePlan { mirror, sources })
}

/// The whole-registry path every job of one source registry agrees on, else per-repository
/// rules.
fn host_rule(jobs: &[&ImageJob]) -> HostRule {
    let path_of = |job: &ImageJob| -> Option<String> {
        let (source, target) = (job.source.repository(), job.target.repository());
        if source == target {
            return Some(String::new());
        }
        target
            .strip_suffix(source)
            .and_then(|p| p.strip_suffix('/'))
            .map(str::to_owned)
    };
    let first = path_of(jobs[0]);
    if first.is_some() && jobs.iter().all(|j| path_of(j) == first) {
        return HostRule::Whole {
            path: first.unwrap_or_default(),
        };
    }
    let mut rules: Vec<RepoRule> = jobs
        .iter()
        .map(|j| RepoRule {
            source: j.source.repository().to_owned(),
            target: j.target.repository().to_owned(),
        })
        .collect();
    rules.sort();
    rules.dedup();
    HostRule::PerRepository(rules)
}

/// Reads a CA file, bounded.
fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, SiteConfigError> {
    use std::io::Read;
    let read_error = |source| SiteConfigError::ReadCa {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut data = Vec::new();
    file.take(MAX_CA_FILE + 1)
        .read_to_end(&mut data)
        .map_err(read_error)?;
    if data.len() as u64 > MAX_CA_FILE {
        return Err(SiteConfigError::CaTooLarge {
            path: path.to_owned(),
        });
    }
    Ok(data)
}

/// All CA files of the mirror in one PEM bundle, or `None` when it has none.
fn ca_bundle(mirror: &SiteConnection) -> Result<Option<Vec<u8>>, SiteConfigError> {
    if mirror.ca_files.is_empty() {
        return Ok(None);
    }
    let mut bundle = Vec::new();
    for path in &mirror.ca_files {
        let data = read_ca(path)?;
        bundle.extend_from_slice(&data);
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    Ok(Some(bundle))
}

/// A warning for sources whose images were retagged on the mirror.
fn retag_warnings(plan: &SitePlan, runtime: &str) -> Vec<String> {
    plan.sources
        .iter()
        .filter(|s| s.retagged)
        .map(|s| {
            format!(
                "some images of {} have another tag on the mirror than at the source: {runtime} pulls them by their source tag, which the mirror does not have (pull by digest, or use --for image-map)",
                s.registry
            )
        })
        .collect()
}

/// A `toml` serialisation error as [`SiteConfigError::Serialize`].
fn toml_error(what: &'static str) -> impl FnOnce(toml::ser::Error) -> SiteConfigError {
    move |e| SiteConfigError::Serialize {
        what,
        reason: e.to_string(),
    }
}

/// A YAML serialisation error as [`SiteConfigError::Serialize`].
fn yaml_error(what: &'static str) -> impl FnOnce(serde_saphyr::SerializeError) -> SiteConfigError {
    move |e| SiteConfigError::Serialize {
        what,
        reason: e.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Jobs and plans for the generators' tests.

    use std::path::PathBuf;

    use crate::imagelist::Origin;
    use crate::mapping::{Destination, ImageJob, MappingMode, map_reference};
    use crate::registry::SiteConnection;

    /// Jobs for `sources` mapped onto `to` with `mode`.
    pub fn jobs(sources: &[&str], to: &str, mode: MappingMode) -> Vec<ImageJob> {
        let dest: Destination = to.parse().unwrap();
        sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let source = s.parse().unwrap();
                ImageJob {
                    target: map_reference(&source, &dest, mode),
                    source,
                    platforms: Vec::new(),
                    origin: Origin {
                        file: PathBuf::from("list.txt"),
                        line: i + 1,
                    },
                    referrers: None,
                }
            })
            .collect()
    }

    /// A mirror reached over HTTPS with the system's trust.
    pub fn mirror(registry: &str) -> SiteConnection {
        SiteConnection {
            registry: registry.to_owned(),
            plain_http: false,
            skip_verify: false,
            ca_files: Vec::new(),
            client_identity: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{jobs, mirror};
    use super::*;
    use crate::mapping::MappingMode;

    #[test]
    fn prefix_and_keep_host_are_whole_registry_rules() {
        let list = [
            "registry.k8s.io/pause:3.10",
            "registry.k8s.io/coredns/coredns:v1",
            "nginx",
        ];
        let p = plan(
            &jobs(&list, "m.example.com:5000/mirror", MappingMode::Strip),
            mirror("m.example.com:5000"),
        )
        .unwrap();
        let rules: Vec<(&str, &HostRule)> = p
            .sources
            .iter()
            .map(|s| (s.registry.as_str(), &s.rule))
            .collect();
        let whole = |p: &str| HostRule::Whole { path: p.to_owned() };
        assert_eq!(
            rules,
            [
                ("docker.io", &whole("mirror")),
                ("registry.k8s.io", &whole("mirror"))
            ]
        );
        let p = plan(
            &jobs(&list, "m.example.com:5000/mirror", MappingMode::KeepHost),
            mirror("m.example.com:5000"),
        )
        .unwrap();
        assert_eq!(p.sources[0].rule, whole("mirror/docker.io"));
        assert_eq!(p.sources[1].rule, whole("mirror/registry.k8s.io"));
        let p = plan(
            &jobs(&list, "m.example.com", MappingMode::Strip),
            mirror("m.example.com"),
        )
        .unwrap();
        assert_eq!(p.sources[1].rule, whole(""));
        assert!(!p.sources[1].retagged);
    }

    #[test]
    fn flatten_is_per_repository() {
        let list = [
            "registry.k8s.io/pause:3.10",
            "registry.k8s.io/coredns/coredns:v1",
        ];
        let p = plan(
            &jobs(&list, "m.example.com/team", MappingMode::Flatten),
            mirror("m.example.com"),
        )
        .unwrap();
        assert_eq!(
            p.sources[0].rule,
            HostRule::PerRepository(vec![
                RepoRule {
                    source: "coredns/coredns".into(),
                    target: "team/coredns".into()
                },
                RepoRule {
                    source: "pause".into(),
                    target: "team/pause".into()
                },
            ])
        );
    }

    #[test]
    fn targets_elsewhere_are_refused() {
        let j = jobs(&["nginx"], "other.example.com", MappingMode::Strip);
        let err = plan(&j, mirror("m.example.com")).unwrap_err();
        assert!(err.is_usage());
        assert_eq!(
            err.to_string(),
            "list.txt:1: target `other.example.com/library/nginx:latest` is not on the mirror m.example.com"
        );
    }

    #[test]
    fn retagged_images_are_noticed() {
        let mut j = jobs(
            &["registry.k8s.io/pause:3.10"],
            "m.example.com",
            MappingMode::Strip,
        );
        j[0].target = j[0].target.with(Some("stable".into()), None);
        let p = plan(&j, mirror("m.example.com")).unwrap();
        assert!(p.sources[0].retagged);
        assert_eq!(retag_warnings(&p, "containerd").len(), 1);
    }

    #[test]
    fn urls_and_locations() {
        let mut m = mirror("m.example.com:5000");
        let p = plan(&[], m.clone()).unwrap();
        assert_eq!(p.mirror_url(), "https://m.example.com:5000");
        assert!(!p.mirror_insecure());
        assert_eq!(p.mirror_location("a/b"), "m.example.com:5000/a/b");
        assert_eq!(p.mirror_location(""), "m.example.com:5000");
        m.plain_http = true;
        let p = plan(&[], m).unwrap();
        assert_eq!(p.mirror_url(), "http://m.example.com:5000");
        assert!(p.mirror_insecure());
    }
}
