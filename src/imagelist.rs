//! Image lists: plain text (`container-images.txt` style) and YAML with mapping rules.
//!
//! Lists are validated as a whole: every problem in every file is collected and reported at
//! once with its `file:line`, and a single bad line means no entry is returned, so a typo never
//! leads to a partial sync. The formats are described in `docs/lists.md`; the two parsers live
//! in the `text` and `yaml` submodules, the reference checks they share stay here.
//!
//! CONTRACT: the public signatures below are used by other modules and are fixed.

mod text;
mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::mapping::MappingMode;
use crate::reference::{ImageRef, Platform};

/// Largest list file read (bytes); checked while reading, so `--list /dev/zero` stops here.
pub const MAX_LIST_BYTES: u64 = 16 << 20;
/// Longest line of a text list (bytes).
pub const MAX_LINE_BYTES: usize = 4096;

/// Where a list entry came from, for error messages and reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The list file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// An explicit target written in a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetSpec {
    /// A full reference with a registry host: used as is.
    Full(ImageRef),
    /// A repository path (and optional tag) placed under the destination registry and prefix.
    Relative {
        /// Repository path, e.g. `team/app`.
        repository: String,
        /// Tag; when absent the source tag is kept.
        tag: Option<String>,
    },
}

/// Per-list defaults from a YAML list (`registry`, `prefix`, `mode`, `platforms`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListDefaults {
    /// Target registry.
    pub registry: Option<String>,
    /// Target path prefix.
    pub prefix: Option<String>,
    /// Mapping mode.
    pub mode: Option<MappingMode>,
}

/// One image named by a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Normalised source reference.
    pub source: ImageRef,
    /// Explicit target, if the list gave one.
    pub target: Option<TargetSpec>,
    /// Platforms to keep (entry's own, else the list's global ones); empty keeps all.
    pub platforms: Vec<Platform>,
    /// Which referrers travel with it (entry's own, else the list's global `referrers:`);
    /// `None` leaves it to `--referrers`.
    pub referrers: Option<crate::policy::ReferrerPolicy>,
    /// The defaults of the list this entry came from.
    pub defaults: ListDefaults,
    /// File and line.
    pub origin: Origin,
}

/// One problem found in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File and line.
    pub origin: Origin,
    /// What is wrong, e.g. "invalid image reference `Foo:bar`: ...".
    pub message: String,
}

/// Errors of this module and of [`crate::mapping`].
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The list could not be read.
    #[error("cannot read image list {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The list is larger than [`MAX_LIST_BYTES`].
    #[error("image list {} is larger than the limit of {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// One or more entries are invalid; all of them are listed.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
    /// A `--to` value that is not `REGISTRY[/PREFIX]`.
    #[error("invalid destination `{input}`: {reason}")]
    Destination {
        /// The text.
        input: String,
        /// Why.
        reason: String,
    },
}

fn render_problems(problems: &[Problem]) -> String {
    let mut s = format!(
        "{} invalid image list entr{}:",
        problems.len(),
        if problems.len() == 1 { "y" } else { "ies" }
    );
    for p in problems {
        s.push_str(&format!("\n  {}: {}", p.origin, p.message));
    }
    s
}

/// Reads and parses every list (YAML by `.yaml`/`.yml` extension, text otherwise), returning
/// all entries in order, or every problem in every file.
pub fn load(paths: &[PathBuf]) -> Result<Vec<ListEntry>, ListError> {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let text = read_list(path)?;
        let parsed = if is_yaml(path) {
            parse_yaml(&text, path)
        } else {
            parse_text(&text, path)
        };
        match parsed {
            Ok(mut found) => entries.append(&mut found),
            Err(ListError::Invalid(mut found)) => problems.append(&mut found),
            Err(other) => return Err(other),
        }
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(ListError::Invalid(problems))
    }
}

/// Finds repeated `(source, target)` pairs among the entries read so far in linear time,
/// without copying them: entries are found by hash, then compared.
#[derive(Default)]
pub(crate) struct Repeats {
    by_hash: std::collections::HashMap<u64, Vec<usize>>,
}

impl Repeats {
    /// Whether `entries` already holds `(source, target)`. When it does not, the caller is
    /// about to push it: it is recorded as `entries[entries.len()]`.
    pub(crate) fn is_repeat(
        &mut self,
        entries: &[ListEntry],
        source: &ImageRef,
        target: &Option<TargetSpec>,
    ) -> bool {
        use std::hash::{Hash, Hasher};
        let key = {
            let mut h = std::hash::DefaultHasher::new();
            (source, target).hash(&mut h);
            h.finish()
        };
        let slot = self.by_hash.entry(key).or_default();
        if slot
            .iter()
            .any(|&i| entries[i].source == *source && entries[i].target == *target)
        {
            return true;
        }
        slot.push(entries.len());
        false
    }
}

/// Reads a list file whole, refusing one larger than [`MAX_LIST_BYTES`] before reading past
/// the limit (a device or a pipe has no size to check first).
fn read_list(path: &Path) -> Result<String, ListError> {
    use std::io::Read as _;
    let read_err = |source| ListError::Read {
        path: path.to_path_buf(),
        source,
    };
    // `std::fs` rather than `fs_err`: `ListError::Read` already names the path, and fs_err
    // would repeat it inside the source error's message.
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_LIST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Err(ListError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_LIST_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text: {}", e.utf8_error()),
        ))
    })
}

/// Parses a plain-text list.
pub fn parse_text(text: &str, file: &Path) -> Result<Vec<ListEntry>, ListError> {
    text::parse(text, file)
}

/// Parses a YAML list.
pub fn parse_yaml(text: &str, file: &Path) -> Result<Vec<ListEntry>, ListError> {
    yaml::parse(text, file)
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Whether the first component of a `/`-separated name is a registry host, by docker's rule: it
/// contains `.` or `:`, or is `localhost`. A name without `/` has no host (`app:1` is a tag).
pub(crate) fn has_host(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

/// Whether a reference as written names a tag or a digest. Needed because [`ImageRef`] adds
/// `latest` to a bare name, and an explicit target without a tag must keep the source's tag.
pub(crate) fn names_tag_or_digest(reference: &str) -> bool {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    reference.contains('@') || last.contains(':')
}

/// Checks one repository path component against the distribution grammar
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub(crate) fn check_path_component(component: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("path component `{component}` {why}"));
    if component.is_empty() {
        return Err("path component is empty (`//` or a leading `/`)".to_owned());
    }
    let mut separator = String::new();
    for (i, c) in component.chars().enumerate() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if !separator.is_empty() {
                let ok = matches!(separator.as_str(), "." | "_" | "__")
                    || separator.chars().all(|s| s == '-');
                if !ok || i == separator.len() {
                    return bad(
                        "has a misplaced separator (`.`, `_`, `__` or `-` go between letters or digits)",
                    );
                }
                separator.clear();
            }
        } else if matches!(c, '.' | '_' | '-') {
            separator.push(c);
        } else if c.is_ascii_uppercase() {
            return bad("must be lowercase");
        } else {
            return bad(&format!(
                "contains `{c}` (allowed: a-z, 0-9, `.`, `_`, `-`)"
            ));
        }
    }
    if separator.is_empty() {
        Ok(())
    } else {
        bad("has a misplaced separator (`.`, `_`, `__` or `-` go between letters or digits)")
    }
}

/// Checks a `/`-separated repository path (or prefix) component by component.
pub(crate) fn check_repository(path: &str) -> Result<(), String> {
    path.split('/').try_for_each(check_path_component)
}

/// Checks a tag against `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn check_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let ok = chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-')
        && tag.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag `{tag}` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
        ))
    }
}

/// Parses a source reference as written in a list.
pub(crate) fn parse_source(text: &str) -> Result<ImageRef, String> {
    let source = text.parse::<ImageRef>().map_err(|e| e.to_string())?;
    // oci-spec takes an uppercase first component for a registry host (`Harness/app` parses
    // as `docker.io/Harness/app`, a name no registry accepts), so the path is checked again.
    check_repository(source.repository())
        .map_err(|why| format!("invalid image reference `{text}`: {why}"))?;
    Ok(source)
}

/// Parses an explicit target as written in a list. A target with a registry host is a full
/// reference; without a tag or digest it takes the source's, as a mapped target would.
/// Anything else is a repository path (and tag) relative to the destination.
pub(crate) fn parse_target(text: &str, source: &ImageRef) -> Result<TargetSpec, String> {
    let invalid = |why: String| format!("invalid target `{text}`: {why}");
    if has_host(text) {
        let full: ImageRef =
            text.parse()
                .map_err(|e: crate::reference::ReferenceError| match e {
                    crate::reference::ReferenceError::Reference { reason, .. } => invalid(reason),
                    other => invalid(other.to_string()),
                })?;
        if names_tag_or_digest(text) {
            Ok(TargetSpec::Full(full))
        } else {
            Ok(TargetSpec::Full(full.with(
                source.tag().map(str::to_owned),
                source.digest().cloned(),
            )))
        }
    } else {
        if text.contains('@') {
            return Err(invalid(
                "a target without a registry host takes a tag, not a digest".to_owned(),
            ));
        }
        let (repository, tag) = match text.rsplit_once(':') {
            Some((repository, tag)) => (repository, Some(tag)),
            None => (text, None),
        };
        check_repository(repository).map_err(invalid)?;
        if let Some(tag) = tag {
            check_tag(tag).map_err(invalid)?;
        }
        Ok(TargetSpec::Relative {
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    fn sources(entries: &[ListEntry]) -> Vec<String> {
        entries.iter().map(|e| e.source.to_string()).collect()
    }

    fn problems(result: Result<Vec<ListEntry>, ListError>) -> Vec<Problem> {
        match result {
            Err(ListError::Invalid(p)) => p,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn lines_of(problems: &[Problem], file: &str) -> Vec<usize> {
        problems
            .iter()
            .filter(|p| p.origin.file.ends_with(file))
            .map(|p| p.origin.line)
            .collect()
    }

    const HARNESS: [&str; 12] = [
        "docker.io/harness/chaos-ddcr:1.47.0",
        "docker.io/harness/chaos-log-watcher:1.47.0",
        "docker.io/harness/service-discovery-collector:0.27.0",
        "docker.io/harness/chaos-ddcr-faults:1.47.0",
        "docker.io/harness/chaos-workflow-controller:v3.4.16",
        "docker.io/harness/chaos-argoexec:v3.4.16",
        "docker.io/harness/chaos-exporter:1.47.0",
        "docker.io/harness/chaos-operator:1.47.0",
        "docker.io/harness/chaos-runner:1.47.0",
        "docker.io/harness/chaos-subscriber:1.47.0",
        "docker.io/harness/chaos-go-runner:1.47.0",
        "docker.io/harness/k8s-chaos-infrastructure-upgrader:1.47.0",
    ];

    const KUBERNETES: [&str; 7] = [
        "registry.k8s.io/kube-apiserver:v1.34.0",
        "registry.k8s.io/kube-controller-manager:v1.34.0",
        "registry.k8s.io/kube-scheduler:v1.34.0",
        "registry.k8s.io/kube-proxy:v1.34.0",
        "registry.k8s.io/coredns/coredns:v1.12.1",
        "registry.k8s.io/pause:3.10.1",
        "registry.k8s.io/etcd:3.6.4-0",
    ];

    #[test]
    fn harness_list_as_published() {
        // 13 image lines, chaos-log-watcher twice: 12 images.
        let entries = load(&[root("manifests/harness-chaos-1.47.txt")]).unwrap();
        assert_eq!(sources(&entries), HARNESS);
        assert_eq!(entries[0].origin.line, 10);
        assert_eq!(entries[11].origin.line, 22);
        assert!(entries.iter().all(|e| e.target.is_none()));
        let yaml = load(&[root("manifests/harness-chaos-1.47.yaml")]).unwrap();
        assert_eq!(sources(&yaml), HARNESS);
    }

    #[test]
    fn kubernetes_lists_agree() {
        for file in [
            "manifests/kubernetes-v1.34.txt",
            "manifests/kubernetes-v1.34.yaml",
        ] {
            let entries = load(&[root(file)]).unwrap();
            assert_eq!(sources(&entries), KUBERNETES, "{file}");
            assert!(
                entries
                    .iter()
                    .all(|e| e.platforms.is_empty() && e.target.is_none())
            );
        }
    }

    #[test]
    fn every_manifest_loads() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root("manifests"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        assert_eq!(
            paths.len(),
            4,
            "update the expectations for new manifests: {paths:?}"
        );
        let entries = load(&paths).unwrap();
        assert_eq!(entries.len(), 2 * HARNESS.len() + 2 * KUBERNETES.len());
    }

    #[test]
    fn good_fixtures() {
        let text = load(&[root("testdata/lists/good.txt")]).unwrap();
        assert_eq!(
            sources(&text),
            [
                "registry.k8s.io/pause:3.10.1",
                "docker.io/library/nginx:1.27",
                "docker.io/harness/chaos-ddcr:1.47.0",
                "docker.io/harness/chaos-runner:1.47.0",
                "registry.k8s.io/etcd:3.6.4-0",
                "registry.k8s.io/etcd:3.6.4-0",
            ]
        );
        let lines: Vec<usize> = text.iter().map(|e| e.origin.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 7, 8]);
        let full: ImageRef = "registry.example.com:5000/backup/etcd:3.6.4"
            .parse()
            .unwrap();
        assert_eq!(text[5].target, Some(TargetSpec::Full(full)));

        let yaml = load(&[root("testdata/lists/good.yaml")]).unwrap();
        assert_eq!(yaml.len(), 4);
        assert_eq!(
            yaml[1].source.digest().map(|d| d.short()),
            Some("000000000000")
        );
        assert_eq!(yaml[3].source.to_string(), "registry.k8s.io/etcd:3.6.4-0");
        assert_eq!(yaml[3].origin.line, 14);
        assert_eq!(yaml[0].defaults.mode, Some(MappingMode::KeepHost));
        assert_eq!(yaml[0].platforms.len(), 2);
        assert_eq!(yaml[1].platforms.len(), 1);
    }

    #[test]
    fn problems_of_all_files_are_reported_together() {
        let files = [
            root("testdata/lists/bad.txt"),
            root("testdata/lists/good.txt"),
            root("testdata/lists/bad.yaml"),
            root("testdata/lists/unknown-key.yaml"),
        ];
        let found = problems(load(&files));
        assert_eq!(lines_of(&found, "bad.txt"), [3, 4, 5, 6]);
        assert_eq!(lines_of(&found, "bad.yaml"), [3, 6, 7, 9]);
        assert_eq!(lines_of(&found, "unknown-key.yaml"), [5]);
        assert_eq!(found.len(), 9);
        let rendered = ListError::Invalid(found).to_string();
        let bad_txt = root("testdata/lists/bad.txt");
        assert!(
            rendered.starts_with("9 invalid image list entries:\n"),
            "{rendered}"
        );
        assert!(
            rendered.contains(&format!(
                "{}:3: invalid image reference `Foo`: ",
                bad_txt.display()
            )),
            "{rendered}"
        );
        assert!(
            rendered.contains(&format!(
                "{}:5: expected `SOURCE [TARGET]`, found 4 fields in `Harness Delegate / DDCR`",
                bad_txt.display()
            )),
            "{rendered}"
        );
        assert!(
            rendered.contains("unknown-key.yaml:5: unknown field `platform`"),
            "{rendered}"
        );
    }

    #[test]
    fn unreadable_list_names_the_path_once() {
        let missing = root("testdata/lists/missing.txt");
        match load(&[root("testdata/lists/good.txt"), missing.clone()]) {
            Err(ListError::Read { path, source }) => {
                assert_eq!(path, missing);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                assert!(!source.to_string().contains("missing.txt"), "{source}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn format_follows_the_extension() {
        let dir = tempfile::tempdir().unwrap();
        // The same text read as YAML is a one-element sequence at the top: not a list document.
        let body = "- nginx\n";
        for (name, ok) in [
            ("a.yml", false),
            ("a.YAML", false),
            ("a.txt", true),
            ("images", true),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            assert_eq!(load(&[path]).is_ok(), ok, "{name}");
        }
    }

    #[test]
    fn reference_checks() {
        assert!(has_host("reg.example.com/a"));
        assert!(has_host("host:5000/a"));
        assert!(has_host("localhost/a"));
        assert!(!has_host("team/app"));
        assert!(!has_host("app:1"));
        assert!(!has_host("localhost"));
        assert!(names_tag_or_digest("reg.example.com:5000/a:1"));
        assert!(!names_tag_or_digest("reg.example.com:5000/a"));
        assert!(names_tag_or_digest("a@sha256:00"));
        for good in ["a", "a0", "a.b", "a_b", "a__b", "a---b", "0"] {
            assert_eq!(check_path_component(good), Ok(()), "{good}");
        }
        for bad in ["", "-a", "a-", "a..b", "a___b", "a._b", "A", "a:b", "_a"] {
            assert!(check_path_component(bad).is_err(), "{bad}");
        }
        assert!(check_tag("v1.34.0").is_ok());
        assert!(check_tag("_x").is_ok());
        assert!(check_tag(&"a".repeat(128)).is_ok());
        for bad in ["", ".a", "-a", "a/b", "a:b"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        assert!(check_tag(&"a".repeat(129)).is_err());
    }
}
