//! YAML lists: images plus the defaults that say where they go.
//!
//! The document is read in two passes. serde-saphyr first checks the shape (unknown keys, wrong
//! types, YAML syntax) and stops at the first such error, reporting the parser's line. The
//! values are then checked one by one with the line of the entry or field they came from
//! (kept through [`Spanned`]), so every bad reference in the list is reported at once. The
//! schema is documented in `docs/lists.md`.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};

use super::{
    ListDefaults, ListEntry, ListError, Origin, Problem, TargetSpec, names_tag_or_digest,
    parse_source, parse_target,
};
use crate::mapping::{Destination, MappingMode};
use crate::policy::ReferrerPolicy;
use crate::reference::{Digest, ImageRef, Platform};

/// The only schema version so far.
const VERSION: u32 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    version: Option<Spanned<u32>>,
    target: Option<Spanned<RawTarget>>,
    platforms: Option<Vec<Spanned<String>>>,
    referrers: Option<Spanned<String>>,
    #[serde(rename = "referrer-types")]
    referrer_types: Option<Vec<String>>,
    images: Vec<Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    registry: Option<String>,
    prefix: Option<String>,
    mode: Option<MappingMode>,
}

/// An `images` item: a reference string or a mapping. Deserialized by hand rather than as an
/// untagged enum, which would lose both the entry's location and serde's precise messages
/// (an unknown key would become "did not match any variant").
enum RawEntry {
    Plain(String),
    Detailed(Box<RawDetailed>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetailed {
    source: Option<String>,
    name: Option<String>,
    tags: Option<Vec<String>>,
    digest: Option<Spanned<String>>,
    target: Option<String>,
    platforms: Option<Vec<Spanned<String>>>,
    referrers: Option<Spanned<String>>,
    #[serde(rename = "referrer-types")]
    referrer_types: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = RawEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an image reference or a mapping with `source` or `name`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawEntry, E> {
                Ok(RawEntry::Plain(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawEntry, A::Error> {
                RawDetailed::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|d| RawEntry::Detailed(Box::new(d)))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

/// Parses a whole YAML list; see the module documentation.
pub(super) fn parse(text: &str, file: &Path) -> Result<Vec<ListEntry>, ListError> {
    let origin = |line: u64| Origin {
        file: file.to_path_buf(),
        line: usize::try_from(line).unwrap_or(usize::MAX),
    };
    let raw: RawList = serde_saphyr::from_str(text).map_err(|e| {
        ListError::Invalid(vec![Problem {
            origin: origin(e.location().map_or(1, |l| l.line())),
            message: message_of(&e),
        }])
    })?;

    let mut problems = Vec::new();
    let mut report = |line: u64, message: String| {
        problems.push(Problem {
            origin: origin(line),
            message,
        })
    };

    if let Some(version) = &raw.version
        && version.value != VERSION
    {
        report(
            version.referenced.line(),
            format!(
                "unsupported list version {}: this airlift reads version {VERSION}",
                version.value
            ),
        );
    }
    let defaults = match &raw.target {
        Some(target) => list_defaults(&target.value).unwrap_or_else(|message| {
            report(target.referenced.line(), message);
            ListDefaults::default()
        }),
        None => ListDefaults::default(),
    };
    let global_platforms = raw
        .platforms
        .as_deref()
        .map(|p| platforms(p, &mut report))
        .unwrap_or_default();

    let global_referrers = referrers(
        raw.referrers.as_ref(),
        raw.referrer_types.as_deref(),
        None,
        &mut report,
    );

    let mut entries: Vec<ListEntry> = Vec::new();
    // Repeats are found by hash, so a long list stays linear.
    let mut repeats = super::Repeats::default();
    for item in &raw.images {
        let line = item.referenced.line();
        let expanded = match &item.value {
            RawEntry::Plain(text) => parse_source(text).map(|source| vec![(source, None)]),
            RawEntry::Detailed(detailed) => expand(detailed, &mut report),
        };
        let pairs = match expanded {
            Ok(pairs) => pairs,
            Err(message) => {
                report(line, message);
                continue;
            }
        };
        let own_platforms = match &item.value {
            RawEntry::Detailed(d) => d.platforms.as_ref().map(|p| platforms(p, &mut report)),
            RawEntry::Plain(_) => None,
        };
        let own_referrers = match &item.value {
            RawEntry::Detailed(d) => referrers(
                d.referrers.as_ref(),
                d.referrer_types.as_deref(),
                global_referrers.as_ref(),
                &mut report,
            ),
            RawEntry::Plain(_) => global_referrers.clone(),
        };
        for (source, target) in pairs {
            // Same merge rule as text lists: a repeat adds nothing.
            if repeats.is_repeat(&entries, &source, &target) {
                continue;
            }
            entries.push(ListEntry {
                source,
                target,
                platforms: own_platforms
                    .clone()
                    .unwrap_or_else(|| global_platforms.clone()),
                referrers: own_referrers.clone(),
                defaults: defaults.clone(),
                origin: origin(line),
            });
        }
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(ListError::Invalid(problems))
    }
}

/// The parser's message without its "at line X" suffix: [`Origin`] already carries the line.
fn message_of(error: &serde_saphyr::Error) -> String {
    let message = serde_saphyr::DefaultMessageFormatter.format_message(error.without_snippet());
    // The formatter may return raw control characters; a problem is rendered on one line.
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Checks `target:` by the same rules as `--to REGISTRY[/PREFIX]`.
fn list_defaults(target: &RawTarget) -> Result<ListDefaults, String> {
    let (registry, prefix) = match (&target.registry, &target.prefix) {
        (None, Some(_)) => {
            return Err("`target.prefix` needs `target.registry`".to_owned());
        }
        (None, None) => (None, None),
        (Some(registry), prefix) => {
            if registry.contains('/') {
                return Err(format!(
                    "`target.registry` is a host, not a path: put `{}` under `target.prefix`",
                    registry.split_once('/').map_or("", |(_, p)| p)
                ));
            }
            let whole = match prefix {
                Some(prefix) => format!("{registry}/{prefix}"),
                None => registry.clone(),
            };
            let dest: Destination = whole.parse().map_err(|e: ListError| e.to_string())?;
            let prefix = (!dest.prefix.is_empty()).then_some(dest.prefix);
            (Some(dest.registry), prefix)
        }
    };
    Ok(ListDefaults {
        registry,
        prefix,
        mode: target.mode,
    })
}

/// The referrers policy of `referrers:` and `referrer-types:` (each falling back to
/// `inherited`'s); `None` when neither the keys nor `inherited` say anything.
fn referrers(
    mode: Option<&Spanned<String>>,
    types: Option<&[String]>,
    inherited: Option<&ReferrerPolicy>,
    report: &mut impl FnMut(u64, String),
) -> Option<ReferrerPolicy> {
    if mode.is_none() && types.is_none() {
        return inherited.cloned();
    }
    let base = inherited.cloned().unwrap_or_default();
    let mode = match mode {
        Some(m) => m.value.parse().unwrap_or_else(|e: String| {
            report(m.referenced.line(), format!("`referrers`: {e}"));
            base.mode
        }),
        None => base.mode,
    };
    Some(ReferrerPolicy {
        mode,
        artifact_types: types.map_or(base.artifact_types, <[String]>::to_vec),
    })
}

/// Parses platform selectors, reporting each bad one at its own line.
fn platforms(raw: &[Spanned<String>], report: &mut impl FnMut(u64, String)) -> Vec<Platform> {
    raw.iter()
        .filter_map(|p| {
            p.value
                .parse()
                .map_err(|e: crate::reference::ReferenceError| {
                    report(p.referenced.line(), e.to_string())
                })
                .ok()
        })
        .collect()
}

/// Turns a mapping entry into its (source, target) pairs: one, or one per tag.
fn expand(
    entry: &RawDetailed,
    report: &mut impl FnMut(u64, String),
) -> Result<Vec<(ImageRef, Option<TargetSpec>)>, String> {
    let sources = match (&entry.source, &entry.name, &entry.tags) {
        (Some(_), Some(_), _) => return Err("give either `source` or `name`, not both".to_owned()),
        (Some(_), None, Some(_)) => {
            return Err("`tags` go with `name`; `source` names one image".to_owned());
        }
        (None, None, _) => return Err("an entry needs `source` (or `name` with `tags`)".to_owned()),
        (None, Some(_), None) => return Err("`name` needs `tags`".to_owned()),
        (Some(source), None, None) => vec![pinned(parse_source(source)?, entry, report)?],
        (None, Some(name), Some(tags)) => {
            if entry.digest.is_some() {
                return Err(
                    "`digest` pins one image: use `source` with it, not `name` and `tags`"
                        .to_owned(),
                );
            }
            if names_tag_or_digest(name) {
                return Err(format!(
                    "`name` takes a repository without tag or digest: put the tag of `{name}` under `tags`"
                ));
            }
            if tags.is_empty() {
                return Err("`tags` is empty".to_owned());
            }
            tags.iter()
                .map(|tag| parse_source(&format!("{name}:{tag}")))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let Some(target) = &entry.target else {
        return Ok(sources.into_iter().map(|s| (s, None)).collect());
    };
    if sources.len() > 1 && names_tag_or_digest(target) {
        return Err(format!(
            "`target` `{target}` names a tag or digest, so all {} `tags` would land on it: leave it out to keep each tag",
            sources.len()
        ));
    }
    sources
        .into_iter()
        .map(|source| {
            let target = parse_target(target, &source)?;
            Ok((source, Some(target)))
        })
        .collect()
}

/// Applies `digest:` to a `source`, refusing a source that already names another digest.
fn pinned(
    source: ImageRef,
    entry: &RawDetailed,
    report: &mut impl FnMut(u64, String),
) -> Result<ImageRef, String> {
    let Some(raw) = &entry.digest else {
        return Ok(source);
    };
    let digest: Digest = match raw.value.parse() {
        Ok(digest) => digest,
        Err(e) => {
            report(raw.referenced.line(), e.to_string());
            // Reported at the digest's own line. The list is refused as a whole anyway, so
            // going on unpinned only serves to find the entry's other problems.
            return Ok(source);
        }
    };
    match source.digest() {
        Some(own) if *own != digest => Err(format!(
            "`source` `{source}` is pinned to another digest than `digest` {digest}"
        )),
        _ => Ok(source.with(source.tag().map(str::to_owned), Some(digest))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(usize, String)> {
        match parse(text, Path::new("bad.yaml")) {
            Err(ListError::Invalid(p)) => {
                p.into_iter().map(|p| (p.origin.line, p.message)).collect()
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn parse_ok(text: &str) -> Vec<ListEntry> {
        parse(text, Path::new("list.yaml")).unwrap()
    }

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn referrers_global_and_per_image() {
        use crate::policy::ReferrerMode;
        let entries = parse_ok(
            "referrers: signatures\n\
             images:\n\
             \x20 - example.com/a:1\n\
             \x20 - source: example.com/b:1\n\
             \x20   referrers: none\n\
             \x20 - source: example.com/c:1\n\
             \x20   referrer-types: [application/spdx+json]\n",
        );
        let modes: Vec<_> = entries
            .iter()
            .map(|e| e.referrers.as_ref().unwrap().mode)
            .collect();
        assert_eq!(
            modes,
            [
                ReferrerMode::Signatures,
                ReferrerMode::None,
                ReferrerMode::Signatures
            ]
        );
        assert_eq!(
            entries[2].referrers.as_ref().unwrap().artifact_types,
            ["application/spdx+json"]
        );
        // Without the keys, the command line decides.
        assert_eq!(parse_ok("images: [example.com/a:1]\n")[0].referrers, None);
        assert_eq!(
            problems("images:\n  - source: example.com/a:1\n    referrers: some\n"),
            [(
                3,
                "`referrers`: `some` is not a referrers policy: use none, signatures or all"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn the_documented_example_parses() {
        let text = format!(
            "version: 1\n\
             target:\n\
             \x20 registry: registry.example.com:5000\n\
             \x20 prefix: mirror/\n\
             \x20 mode: keep-host\n\
             platforms: [linux/amd64, linux/arm64]\n\
             images:\n\
             \x20 - registry.k8s.io/kube-apiserver:v1.34.2\n\
             \x20 - source: registry.k8s.io/pause:3.10\n\
             \x20   digest: {}\n\
             \x20   target: infra/pause:3.10\n\
             \x20   platforms: [linux/amd64]\n\
             \x20 - name: registry.k8s.io/etcd\n\
             \x20   tags: [\"3.5.21-0\", 3.6.4-0]\n",
            digest('a')
        );
        let entries = parse_ok(&text);
        let shown: Vec<String> = entries.iter().map(|e| e.source.to_string()).collect();
        assert_eq!(
            shown,
            [
                "registry.k8s.io/kube-apiserver:v1.34.2".to_owned(),
                format!("registry.k8s.io/pause:3.10@{}", digest('a')),
                "registry.k8s.io/etcd:3.5.21-0".to_owned(),
                "registry.k8s.io/etcd:3.6.4-0".to_owned(),
            ]
        );
        let lines: Vec<usize> = entries.iter().map(|e| e.origin.line).collect();
        assert_eq!(lines, [8, 9, 13, 13]);
        let defaults = ListDefaults {
            registry: Some("registry.example.com:5000".into()),
            prefix: Some("mirror".into()),
            mode: Some(MappingMode::KeepHost),
        };
        assert!(entries.iter().all(|e| e.defaults == defaults));
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(entries[0].platforms, [amd64.clone(), arm64.clone()]);
        // The entry's own platforms replace the global ones.
        assert_eq!(entries[1].platforms, std::slice::from_ref(&amd64));
        assert_eq!(entries[3].platforms, [amd64, arm64]);
        assert_eq!(
            entries[1].target,
            Some(TargetSpec::Relative {
                repository: "infra/pause".into(),
                tag: Some("3.10".into())
            })
        );
        assert_eq!(entries[0].target, None);
    }

    #[test]
    fn numeric_looking_tags_stay_text() {
        // Unquoted `3.10` is a float in YAML; as a tag it must not become `3.1`.
        let entries = parse_ok("images:\n  - name: registry.k8s.io/pause\n    tags: [3.10, 1]\n");
        assert_eq!(entries[0].source.tag(), Some("3.10"));
        assert_eq!(entries[1].source.tag(), Some("1"));
    }

    #[test]
    fn minimal_list_has_no_defaults() {
        let entries = parse_ok("images:\n  - nginx\n  - nginx\n");
        assert_eq!(entries.len(), 1, "repeats are merged");
        assert_eq!(
            entries[0].source.to_string(),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(entries[0].defaults, ListDefaults::default());
        assert!(entries[0].platforms.is_empty());
        assert!(parse_ok("images: []\n").is_empty());
    }

    #[test]
    fn full_target_without_tag_keeps_each_tag() {
        let entries = parse_ok(
            "images:\n  - name: registry.k8s.io/etcd\n    tags: [3.5.21-0, 3.6.4-0]\n    target: reg.example.com/etcd\n",
        );
        let targets: Vec<String> = entries
            .iter()
            .map(|e| match &e.target {
                Some(TargetSpec::Full(r)) => r.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            targets,
            [
                "reg.example.com/etcd:3.5.21-0",
                "reg.example.com/etcd:3.6.4-0"
            ]
        );
    }

    #[test]
    fn bad_entries_are_reported_at_their_own_lines() {
        let text = format!(
            "images:\n\
             \x20 - nginx\n\
             \x20 - Foo:1\n\
             \x20 - source: alpine\n\
             \x20   target: Team/alpine\n\
             \x20 - source: redis:7\n\
             \x20   digest: sha256:abc\n\
             \x20 - name: registry.k8s.io/etcd:3.6.4-0\n\
             \x20   tags: [x]\n\
             \x20 - source: busybox\n\
             \x20   platforms: [linux]\n\
             \x20 - source: redis@{}\n\
             \x20   digest: {}\n",
            digest('a'),
            digest('b')
        );
        let p = problems(&text);
        let lines: Vec<usize> = p.iter().map(|(l, _)| *l).collect();
        // Entry problems point at the entry, value problems (digest, platform) at the value.
        assert_eq!(lines, [3, 4, 7, 8, 11, 12], "{p:?}");
        assert!(
            p[0].1.starts_with("invalid image reference `Foo:1`"),
            "{}",
            p[0].1
        );
        assert!(
            p[1].1.starts_with("invalid target `Team/alpine`"),
            "{}",
            p[1].1
        );
        assert!(
            p[2].1.starts_with("invalid digest `sha256:abc`"),
            "{}",
            p[2].1
        );
        assert!(
            p[3].1.starts_with("`name` takes a repository"),
            "{}",
            p[3].1
        );
        assert!(p[4].1.starts_with("invalid platform `linux`"), "{}", p[4].1);
        assert!(p[5].1.contains("pinned to another digest"), "{}", p[5].1);
    }

    #[test]
    fn conflicting_keys_are_refused() {
        let cases = [
            (
                "images:\n  - source: a\n    name: b\n",
                "either `source` or `name`",
            ),
            (
                "images:\n  - source: a\n    tags: [x]\n",
                "`tags` go with `name`",
            ),
            ("images:\n  - name: a\n", "`name` needs `tags`"),
            ("images:\n  - name: a\n    tags: []\n", "`tags` is empty"),
            ("images:\n  - target: a\n", "needs `source`"),
            (
                "images:\n  - name: a\n    tags: [1, 2]\n    target: b:x\n",
                "would land on it",
            ),
        ];
        for (text, expected) in cases {
            let p = problems(text);
            assert_eq!(p.len(), 1, "{text}");
            assert_eq!(p[0].0, 2, "{text}");
            assert!(p[0].1.contains(expected), "{text}: {}", p[0].1);
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let p = problems("images:\n  - nginx\n  - source: alpine\n    platform: [linux/amd64]\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 4);
        assert!(p[0].1.starts_with("unknown field `platform`"), "{}", p[0].1);
        let p = problems("images: []\ntarget:\n  registry: r.example.com\n  path: x\n");
        assert_eq!(p[0].0, 4);
        assert!(p[0].1.starts_with("unknown field `path`"), "{}", p[0].1);
        let p = problems("image:\n  - nginx\n");
        assert_eq!(p[0].0, 1);
        assert!(p[0].1.starts_with("unknown field `image`"), "{}", p[0].1);
    }

    #[test]
    fn syntax_errors_report_the_parser_line() {
        let p = problems("images:\n  - nginx\n  - source: alpine\n   bad indent: [\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].0 >= 3, "{p:?}");
        assert!(
            !p[0].1.contains("line"),
            "location is not repeated: {}",
            p[0].1
        );
        let p = problems("images:\n  - nginx\n  - [a]\n");
        assert_eq!(p[0].0, 3);
        assert!(
            p[0].1.contains("expected an image reference or a mapping"),
            "{}",
            p[0].1
        );
    }

    #[test]
    fn version_and_target_are_checked() {
        let p = problems("version: 2\nimages: []\n");
        assert_eq!(
            p,
            [(
                1,
                "unsupported list version 2: this airlift reads version 1".to_owned()
            )]
        );
        let p = problems("images: []\ntarget:\n  mode: sideways\n");
        assert_eq!(p[0].0, 3);
        assert!(
            p[0].1.starts_with("unknown variant `sideways`"),
            "{}",
            p[0].1
        );
        let p = problems("images: []\ntarget:\n  prefix: mirror\n");
        assert_eq!(
            p,
            [(3, "`target.prefix` needs `target.registry`".to_owned())]
        );
        let p = problems("images: []\ntarget:\n  registry: mirror\n");
        assert_eq!(p[0].0, 3);
        assert!(
            p[0].1.contains("`mirror` is not a registry host"),
            "{}",
            p[0].1
        );
        let p = problems("images: []\ntarget:\n  registry: r.example.com/mirror\n");
        assert!(
            p[0].1.contains("put `mirror` under `target.prefix`"),
            "{}",
            p[0].1
        );
    }

    #[test]
    fn mode_alone_is_a_default() {
        let entries = parse_ok("target:\n  mode: flatten\nimages: [nginx]\n");
        assert_eq!(
            entries[0].defaults,
            ListDefaults {
                registry: None,
                prefix: None,
                mode: Some(MappingMode::Flatten)
            }
        );
    }
}
