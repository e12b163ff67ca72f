//! Where each source image lands on the destination: `--to REGISTRY[/PREFIX]` plus a mapping
//! mode (strip the source host, keep it, or flatten to the last path component).
//!
//! Resolution is checked as a whole, like list parsing: every entry without a destination and
//! every pair of entries that would overwrite each other's target tag is reported at once, and
//! nothing is copied until the plan is clean. The rules are documented in `docs/lists.md`.
//!
//! CONTRACT: the public signatures below are used by other modules and are fixed.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::imagelist::{ListEntry, ListError, Origin, Problem, TargetSpec, check_repository};
use crate::reference::{ImageRef, Platform};

/// How a source repository path becomes a target repository path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MappingMode {
    /// `REGISTRY/PREFIX/<source repository path>` (the source host is dropped). Default.
    #[default]
    Strip,
    /// `REGISTRY/PREFIX/<source host>/<source repository path>` (Charmed Kubernetes style).
    KeepHost,
    /// `REGISTRY/PREFIX/<last path component>` (a registry "server + account" setup).
    Flatten,
}

/// A destination registry with an optional path prefix, parsed from `REGISTRY[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Registry host with optional port.
    pub registry: String,
    /// Path prefix without leading or trailing slashes; empty for none.
    pub prefix: String,
}

/// One image to copy: where it comes from, where it goes, which platforms to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageJob {
    /// Source reference (tag and/or digest).
    pub source: ImageRef,
    /// Target reference; carries the tag to write (or only a digest when the source had none).
    pub target: ImageRef,
    /// Platforms to keep from a multi-arch index; empty keeps the index whole.
    pub platforms: Vec<Platform>,
    /// Where the image was listed.
    pub origin: Origin,
    /// Which referrers travel with it, when its list says; `None` follows `--referrers`.
    pub referrers: Option<crate::policy::ReferrerPolicy>,
}

impl FromStr for Destination {
    type Err = ListError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |reason: String| ListError::Destination {
            input: s.to_owned(),
            reason,
        };
        let trimmed = s.trim().trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(refuse(
                "expected REGISTRY[/PREFIX], e.g. registry.example.com/mirror".to_owned(),
            ));
        }
        if trimmed.contains("://") {
            return Err(refuse(
                "give REGISTRY[/PREFIX] without a URL scheme".to_owned(),
            ));
        }
        let (registry, prefix) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        // Docker would read a hostless `mirror/foo` as a Docker Hub repository; refusing it
        // avoids pushing to Docker Hub when a private registry was meant.
        if !(registry.contains(['.', ':']) || registry == "localhost") {
            return Err(refuse(format!(
                "`{registry}` is not a registry host: the first component must contain `.` or `:` \
                 or be `localhost` (e.g. docker.io/{trimmed} for Docker Hub)"
            )));
        }
        let host_char =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
        if let Some(bad) = registry.chars().find(|c| !host_char(*c)) {
            return Err(refuse(format!(
                "registry host `{registry}` contains `{bad}`"
            )));
        }
        if !prefix.is_empty() {
            check_repository(prefix).map_err(|why| refuse(format!("prefix {why}")))?;
        }
        Ok(Destination {
            // `host:443` is `host`, as in image references.
            registry: registry.strip_suffix(":443").unwrap_or(registry).to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            f.write_str(&self.registry)
        } else {
            write!(f, "{}/{}", self.registry, self.prefix)
        }
    }
}

/// Maps one source reference onto the destination.
pub fn map_reference(source: &ImageRef, dest: &Destination, mode: MappingMode) -> ImageRef {
    let path = match mode {
        MappingMode::Strip => source.repository().to_owned(),
        MappingMode::KeepHost => format!(
            "{}/{}",
            host_component(source.registry()),
            source.repository()
        ),
        MappingMode::Flatten => source
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or(source.repository())
            .to_owned(),
    };
    ImageRef::new(
        dest.registry.clone(),
        under_prefix(&dest.prefix, &path),
        source.tag().map(str::to_owned),
        source.digest().cloned(),
    )
}

/// A registry host as a repository path component. `:` is not allowed in a path, so the port
/// separator becomes `_` (`127.0.0.1:5001` -> `127.0.0.1_5001`); host names are
/// case-insensitive and paths must be lowercase. An IPv6 literal becomes its eight groups
/// joined by `-` (`[::1]:5000` -> `0-0-0-0-0-0-0-1_5000`): its colons as `_` could start the
/// component with one or run three together, which no repository name allows.
fn host_component(host: &str) -> String {
    if let Some((ip, port)) = host.strip_prefix('[').and_then(|rest| rest.split_once(']'))
        && let Ok(ip) = ip.parse::<std::net::Ipv6Addr>()
    {
        let groups: Vec<String> = ip.segments().iter().map(|g| format!("{g:x}")).collect();
        let groups = groups.join("-");
        return match port.strip_prefix(':') {
            Some(port) => format!("{groups}_{port}"),
            None => groups,
        };
    }
    host.to_ascii_lowercase().replace(':', "_")
}

fn under_prefix(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_owned()
    } else {
        format!("{prefix}/{path}")
    }
}

/// Resolves list entries into jobs. `dest`/`mode` come from the command line and override a
/// list's own defaults; an entry with an explicit target keeps it. Fails (naming file:line)
/// when an entry has no destination at all, and when two entries map to the same target tag
/// from different sources.
pub fn resolve(
    entries: &[ListEntry],
    dest: Option<&Destination>,
    mode: Option<MappingMode>,
    platforms: &[Platform],
) -> Result<Vec<ImageJob>, ListError> {
    let mut jobs: Vec<ImageJob> = Vec::new();
    let mut problems = Vec::new();
    // What each target would be written as -> index in `jobs`.
    let mut written: HashMap<(String, String), usize> = HashMap::new();
    for entry in entries {
        let Some(target) = target_of(entry, dest, mode) else {
            problems.push(Problem {
                origin: entry.origin.clone(),
                message: format!(
                    "no destination for `{}`: pass --to REGISTRY[/PREFIX] or set target.registry in the list",
                    entry.source
                ),
            });
            continue;
        };
        // Two targets collide when they write the same tag (or, untagged, the same digest)
        // into the same repository, whatever digest they are pinned to.
        let key = (
            target.name(),
            target.tag().unwrap_or(target.locator()).to_owned(),
        );
        if let Some(&first) = written.get(&key) {
            let earlier = &jobs[first];
            if earlier.source != entry.source {
                problems.push(Problem {
                    origin: entry.origin.clone(),
                    message: format!(
                        "target `{target}` would receive both `{}` and `{}` (from {})",
                        entry.source, earlier.source, earlier.origin
                    ),
                });
            }
            // Same source to the same place: a repeat across lists, the first one is kept.
            continue;
        }
        written.insert(key, jobs.len());
        jobs.push(ImageJob {
            source: entry.source.clone(),
            target,
            platforms: if platforms.is_empty() {
                entry.platforms.clone()
            } else {
                platforms.to_vec()
            },
            origin: entry.origin.clone(),
            referrers: entry.referrers.clone(),
        });
    }
    if problems.is_empty() {
        Ok(jobs)
    } else {
        Err(ListError::Invalid(problems))
    }
}

/// The target of one entry, or `None` when nothing says where it goes.
fn target_of(
    entry: &ListEntry,
    dest: Option<&Destination>,
    mode: Option<MappingMode>,
) -> Option<ImageRef> {
    if let Some(TargetSpec::Full(full)) = &entry.target {
        return Some(full.clone());
    }
    let list_dest;
    let dest = match (dest, &entry.defaults.registry) {
        (Some(dest), _) => dest,
        (None, Some(registry)) => {
            list_dest = Destination {
                registry: registry.clone(),
                prefix: entry.defaults.prefix.clone().unwrap_or_default(),
            };
            &list_dest
        }
        (None, None) => return None,
    };
    let source = &entry.source;
    Some(match &entry.target {
        Some(TargetSpec::Relative { repository, tag }) => {
            let (tag, digest) = match tag {
                Some(tag) => (Some(tag.clone()), None),
                None => (source.tag().map(str::to_owned), source.digest().cloned()),
            };
            ImageRef::new(
                dest.registry.clone(),
                under_prefix(&dest.prefix, repository),
                tag,
                digest,
            )
        }
        _ => map_reference(
            source,
            dest,
            mode.or(entry.defaults.mode).unwrap_or_default(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::imagelist::ListDefaults;

    fn dest(s: &str) -> Destination {
        s.parse().unwrap()
    }

    fn image(s: &str) -> ImageRef {
        s.parse().unwrap()
    }

    fn mapped(source: &str, to: &str, mode: MappingMode) -> String {
        map_reference(&image(source), &dest(to), mode).to_string()
    }

    fn entry(source: &str, line: usize) -> ListEntry {
        ListEntry {
            source: image(source),
            target: None,
            platforms: Vec::new(),
            referrers: None,
            defaults: ListDefaults::default(),
            origin: Origin {
                file: PathBuf::from("list.txt"),
                line,
            },
        }
    }

    fn problems(result: Result<Vec<ImageJob>, ListError>) -> Vec<(usize, String)> {
        match result {
            Err(ListError::Invalid(p)) => {
                p.into_iter().map(|p| (p.origin.line, p.message)).collect()
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn targets(jobs: &[ImageJob]) -> Vec<String> {
        jobs.iter().map(|j| j.target.to_string()).collect()
    }

    fn digest() -> String {
        format!("sha256:{}", "c".repeat(64))
    }

    #[test]
    fn destination_parsing() {
        let d = dest("127.0.0.1:5002/mirror");
        assert_eq!(
            (d.registry.as_str(), d.prefix.as_str()),
            ("127.0.0.1:5002", "mirror")
        );
        let d = dest("reg.example.com");
        assert_eq!(
            (d.registry.as_str(), d.prefix.as_str()),
            ("reg.example.com", "")
        );
        let d = dest("localhost:5000/a/b//");
        assert_eq!(
            (d.registry.as_str(), d.prefix.as_str()),
            ("localhost:5000", "a/b")
        );
        assert_eq!(dest("localhost/x").registry, "localhost");
        assert_eq!(
            dest("reg.example.com/team/mirror/").to_string(),
            "reg.example.com/team/mirror"
        );
    }

    #[test]
    fn bad_destinations_are_refused() {
        let reason = |s: &str| match s.parse::<Destination>() {
            Err(ListError::Destination { input, reason }) => {
                assert_eq!(input, s);
                reason
            }
            other => panic!("{s}: {other:?}"),
        };
        assert!(reason("mirror/foo").starts_with("`mirror` is not a registry host"));
        assert!(reason("mirror").starts_with("`mirror` is not a registry host"));
        assert!(reason("").starts_with("expected REGISTRY[/PREFIX]"));
        assert!(reason("https://reg.example.com/x").contains("without a URL scheme"));
        assert_eq!(
            reason("reg.example.com/Mirror"),
            "prefix path component `Mirror` must be lowercase"
        );
        assert_eq!(
            reason("reg.example.com/a//b"),
            "prefix path component is empty (`//` or a leading `/`)"
        );
        assert!(reason("reg.example.com/a:1").contains("contains `:`"));
        assert!(reason("reg_x.example.com/a").contains("contains `_`"));
    }

    #[test]
    fn strip_mode() {
        let to = "127.0.0.1:5002/mirror";
        assert_eq!(
            mapped(
                "127.0.0.1:5001/harness/chaos-ddcr:1.47.0",
                to,
                MappingMode::Strip
            ),
            "127.0.0.1:5002/mirror/harness/chaos-ddcr:1.47.0"
        );
        assert_eq!(
            mapped("nginx", to, MappingMode::Strip),
            "127.0.0.1:5002/mirror/library/nginx:latest"
        );
        assert_eq!(
            mapped("localhost:5000/x", to, MappingMode::Strip),
            "127.0.0.1:5002/mirror/x:latest"
        );
        assert_eq!(
            mapped(
                "registry.k8s.io/pause:3.10",
                "reg.example.com",
                MappingMode::Strip
            ),
            "reg.example.com/pause:3.10"
        );
    }

    #[test]
    fn keep_host_mode() {
        let to = "reg.example.com/mirror";
        assert_eq!(
            mapped(
                "k8s.gcr.io/defaultbackend-amd64:1.5",
                to,
                MappingMode::KeepHost
            ),
            "reg.example.com/mirror/k8s.gcr.io/defaultbackend-amd64:1.5"
        );
        assert_eq!(
            mapped("localhost:5000/x", to, MappingMode::KeepHost),
            "reg.example.com/mirror/localhost_5000/x:latest"
        );
        // The default HTTPS port names the same host: a containerd mirror for it matches.
        assert_eq!(
            mapped(
                "quay.io:443/org/app:1",
                "reg.example.com:443/m",
                MappingMode::KeepHost
            ),
            "reg.example.com/m/quay.io/org/app:1"
        );
        assert_eq!(
            mapped(
                "127.0.0.1:5001/a/b:v1",
                "reg.example.com",
                MappingMode::KeepHost
            ),
            "reg.example.com/127.0.0.1_5001/a/b:v1"
        );
        assert_eq!(
            mapped("nginx:1.27", to, MappingMode::KeepHost),
            "reg.example.com/mirror/docker.io/library/nginx:1.27"
        );
        // The mapped path must itself be a valid reference.
        let back = mapped("localhost:5000/x", to, MappingMode::KeepHost);
        assert_eq!(image(&back).repository(), "mirror/localhost_5000/x");
        // IPv6 literals: the eight groups, `-`-joined, whatever the compression.
        for (source, component) in [
            ("[::1]:5000/x", "0-0-0-0-0-0-0-1_5000"),
            ("[FD00::1]:5000/app:1", "fd00-0-0-0-0-0-0-1_5000"),
            ("[fd00::]/x", "fd00-0-0-0-0-0-0-0"),
            ("[2001:db8::a:0:1]:443/x", "2001-db8-0-0-0-a-0-1"),
        ] {
            let back = mapped(source, to, MappingMode::KeepHost);
            let repository = image(&back).repository().to_owned();
            assert!(
                repository.starts_with(&format!("mirror/{component}/")),
                "{source} -> {back}"
            );
        }
    }

    #[test]
    fn flatten_mode() {
        let to = "reg.example.com/team";
        assert_eq!(
            mapped(
                "registry.k8s.io/coredns/coredns:v1.12.1",
                to,
                MappingMode::Flatten
            ),
            "reg.example.com/team/coredns:v1.12.1"
        );
        assert_eq!(
            mapped("nginx", to, MappingMode::Flatten),
            "reg.example.com/team/nginx:latest"
        );
        assert_eq!(
            mapped("localhost:5000/x", to, MappingMode::Flatten),
            "reg.example.com/team/x:latest"
        );
    }

    #[test]
    fn tags_and_digests_are_kept() {
        let d = digest();
        for mode in [
            MappingMode::Strip,
            MappingMode::KeepHost,
            MappingMode::Flatten,
        ] {
            let only = map_reference(
                &image(&format!("registry.k8s.io/pause@{d}")),
                &dest("r.example.com"),
                mode,
            );
            assert_eq!(
                (only.tag(), only.digest().map(|d| d.as_str())),
                (None, Some(d.as_str())),
                "{mode:?}"
            );
            let both = map_reference(
                &image(&format!("registry.k8s.io/pause:3.10@{d}")),
                &dest("r.example.com"),
                mode,
            );
            assert_eq!(
                (both.tag(), both.digest().map(|d| d.as_str())),
                (Some("3.10"), Some(d.as_str())),
                "{mode:?}"
            );
        }
    }

    #[test]
    fn resolve_maps_with_the_cli_destination() {
        let entries = [entry("registry.k8s.io/pause:3.10", 1), entry("nginx", 2)];
        let jobs = resolve(&entries, Some(&dest("r.example.com/m")), None, &[]).unwrap();
        assert_eq!(
            targets(&jobs),
            [
                "r.example.com/m/pause:3.10",
                "r.example.com/m/library/nginx:latest"
            ]
        );
        assert_eq!(jobs[1].source, image("nginx"));
        assert_eq!(jobs[1].origin.line, 2);
    }

    #[test]
    fn explicit_targets() {
        let mut full = entry("registry.k8s.io/pause:3.10", 1);
        full.target = Some(TargetSpec::Full(image("other.example.com/p:1")));
        let mut relative = entry("registry.k8s.io/pause:3.10", 2);
        relative.target = Some(TargetSpec::Relative {
            repository: "infra/pause".into(),
            tag: None,
        });
        let mut retagged = entry("registry.k8s.io/pause:3.10", 3);
        retagged.target = Some(TargetSpec::Relative {
            repository: "infra/pause".into(),
            tag: Some("stable".into()),
        });
        let mut pinned = entry(&format!("registry.k8s.io/pause@{}", digest()), 4);
        pinned.target = Some(TargetSpec::Relative {
            repository: "infra/pause".into(),
            tag: None,
        });
        let entries = [full.clone(), relative, retagged, pinned];
        let jobs = resolve(&entries, Some(&dest("r.example.com/m")), None, &[]).unwrap();
        assert_eq!(
            targets(&jobs),
            [
                "other.example.com/p:1".to_owned(),
                "r.example.com/m/infra/pause:3.10".to_owned(),
                "r.example.com/m/infra/pause:stable".to_owned(),
                format!("r.example.com/m/infra/pause@{}", digest()),
            ]
        );
        // A full target needs no destination at all.
        let jobs = resolve(&[full], None, None, &[]).unwrap();
        assert_eq!(targets(&jobs), ["other.example.com/p:1"]);
    }

    #[test]
    fn entries_without_destination_are_all_reported() {
        let mut relative = entry("alpine", 3);
        relative.target = Some(TargetSpec::Relative {
            repository: "a".into(),
            tag: None,
        });
        let mut full = entry("busybox", 2);
        full.target = Some(TargetSpec::Full(image("r.example.com/busybox:1")));
        let p = problems(resolve(
            &[entry("nginx", 1), full, relative],
            None,
            None,
            &[],
        ));
        assert_eq!(
            p,
            [
                (1, "no destination for `docker.io/library/nginx:latest`: pass --to REGISTRY[/PREFIX] or set target.registry in the list".to_owned()),
                (3, "no destination for `docker.io/library/alpine:latest`: pass --to REGISTRY[/PREFIX] or set target.registry in the list".to_owned()),
            ]
        );
    }

    #[test]
    fn collisions_name_both_origins() {
        let entries = [
            entry("a/x:1", 1),
            entry("b/x:1", 2),
            entry("a/x:1", 3),
            entry("c/x:2", 4),
        ];
        let p = problems(resolve(
            &entries,
            Some(&dest("r.example.com")),
            Some(MappingMode::Flatten),
            &[],
        ));
        assert_eq!(
            p,
            [(2, "target `r.example.com/x:1` would receive both `docker.io/b/x:1` and `docker.io/a/x:1` (from list.txt:1)".to_owned())]
        );
        // The same two entries are fine when the paths are kept.
        let jobs = resolve(
            &entries,
            Some(&dest("r.example.com")),
            Some(MappingMode::Strip),
            &[],
        )
        .unwrap();
        assert_eq!(
            targets(&jobs),
            [
                "r.example.com/a/x:1",
                "r.example.com/b/x:1",
                "r.example.com/c/x:2"
            ]
        );
        assert_eq!(
            jobs[0].origin.line, 1,
            "the first of a repeated pair is kept"
        );
    }

    #[test]
    fn a_pinned_and_an_unpinned_source_collide() {
        let entries = [entry("a/x:1", 1), entry(&format!("a/x:1@{}", digest()), 2)];
        let p = problems(resolve(&entries, Some(&dest("r.example.com")), None, &[]));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 2);
    }

    #[test]
    fn cli_overrides_list_defaults() {
        let mut e = entry("registry.k8s.io/etcd:3.6.4-0", 1);
        e.defaults = ListDefaults {
            registry: Some("list.example.com".into()),
            prefix: Some("fromlist".into()),
            mode: Some(MappingMode::KeepHost),
        };
        let entries = [e];
        let list_only = resolve(&entries, None, None, &[]).unwrap();
        assert_eq!(
            targets(&list_only),
            ["list.example.com/fromlist/registry.k8s.io/etcd:3.6.4-0"]
        );
        // --to replaces registry and prefix together; the list's mode still applies.
        let cli_dest = resolve(&entries, Some(&dest("cli.example.com")), None, &[]).unwrap();
        assert_eq!(
            targets(&cli_dest),
            ["cli.example.com/registry.k8s.io/etcd:3.6.4-0"]
        );
        let cli_mode = resolve(&entries, None, Some(MappingMode::Flatten), &[]).unwrap();
        assert_eq!(
            targets(&cli_mode),
            ["list.example.com/fromlist/etcd:3.6.4-0"]
        );
    }

    #[test]
    fn cli_platforms_override_entry_platforms() {
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let arm64: Platform = "linux/arm64".parse().unwrap();
        let mut e = entry("nginx", 1);
        e.platforms = vec![amd64.clone()];
        let entries = [e];
        let to = dest("r.example.com");
        let kept = resolve(&entries, Some(&to), None, &[]).unwrap();
        assert_eq!(kept[0].platforms, std::slice::from_ref(&amd64));
        let overridden = resolve(&entries, Some(&to), None, std::slice::from_ref(&arm64)).unwrap();
        assert_eq!(overridden[0].platforms, [arm64]);
    }
}
