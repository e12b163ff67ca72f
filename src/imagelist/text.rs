//! Plain-text lists: one `SOURCE [TARGET]` per line, as vendors publish them.
//!
//! Besides Kubernetes' `container-images.txt` (one reference per line) this accepts the
//! markdown bullet lists found in release notes (`- harness/chaos-ddcr:1.47.0`), so a list can
//! be pasted as published. Comments start with `#` at the beginning of a line or after
//! whitespace; a `#` glued to a word is left in place so that the reference check refuses it
//! instead of silently truncating the word.
//!
//! Lines are lines: a line ends at `\n` only (a final `\r` of a CRLF ending is dropped), and a
//! line holding any other control character (`\r`, VT, FF, NEL...) or a Unicode line or
//! paragraph separator is refused, since a terminal would show it as something else than what
//! is read. Fields are separated by ASCII spaces and tabs only. A UTF-8 byte order mark at the
//! start of the file is ignored.

use std::path::Path;

use super::{
    ListDefaults, ListEntry, ListError, MAX_LINE_BYTES, Origin, Problem, Repeats, parse_source,
    parse_target,
};

/// Parses a whole text list; see the module documentation for the syntax.
pub(super) fn parse(text: &str, file: &Path) -> Result<Vec<ListEntry>, ListError> {
    let mut entries: Vec<ListEntry> = Vec::new();
    // Repeats are found by hash: a list of 100,000 lines stays linear.
    let mut repeats = Repeats::default();
    let mut problems = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.strip_suffix('\n').unwrap_or(text);
    let lines = text.split('\n').filter(|_| !text.is_empty());
    for (index, raw) in lines.enumerate() {
        let origin = Origin {
            file: file.to_path_buf(),
            line: index + 1,
        };
        let mut report = |message: String| {
            problems.push(Problem {
                origin: origin.clone(),
                message,
            })
        };
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(message) = line_problem(raw) {
            report(message);
            continue;
        }
        let fields: Vec<&str> = strip_bullet(strip_comment(raw).trim_matches(FIELD_SEPARATORS))
            .split(FIELD_SEPARATORS)
            .filter(|f| !f.is_empty())
            .collect();
        let (source, target) = match fields.as_slice() {
            [] => continue,
            [source] => (*source, None),
            [source, target] => (*source, Some(*target)),
            more => {
                report(format!(
                    "expected `SOURCE [TARGET]`, found {} fields in `{}`",
                    more.len(),
                    more.join(" ")
                ));
                continue;
            }
        };
        if let Some(message) = target.and_then(|t| tag_as_target(source, t)) {
            report(message);
            continue;
        }
        let source = match parse_source(source) {
            Ok(source) => source,
            Err(message) => {
                report(message);
                continue;
            }
        };
        let target = match target.map(|t| parse_target(t, &source)).transpose() {
            Ok(target) => target,
            Err(message) => {
                report(message);
                continue;
            }
        };
        // Published lists repeat images (the Harness 1.47 list names chaos-log-watcher twice);
        // a repeat adds nothing, so it is merged rather than refused.
        if repeats.is_repeat(&entries, &source, &target) {
            continue;
        }
        entries.push(ListEntry {
            source,
            target,
            platforms: Vec::new(),
            referrers: None,
            defaults: ListDefaults::default(),
            origin,
        });
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(ListError::Invalid(problems))
    }
}

/// What separates fields: ASCII space and tab, nothing else.
const FIELD_SEPARATORS: [char; 2] = [' ', '\t'];

/// Why a line cannot be read as one line of fields, if it cannot.
fn line_problem(line: &str) -> Option<String> {
    if line.len() > MAX_LINE_BYTES {
        return Some(format!(
            "line is {} bytes long, more than the limit of {MAX_LINE_BYTES}",
            line.len()
        ));
    }
    let bad = line
        .chars()
        .find(|&c| (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}'))?;
    Some(format!(
        "line contains the control character `{}`: a line holds one `SOURCE [TARGET]` \
         separated by spaces or tabs (the line reads `{}`)",
        crate::escape::escape(&bad.to_string()),
        crate::escape::clip(line, 200)
    ))
}

/// A `SOURCE TARGET` line whose TARGET has no `/` and reads like a version (`1.47.0`,
/// `v2`, `latest`) is almost always a tag typed with a space instead of `:`; taken as a
/// target it would mirror `SOURCE:latest` into a repository named after the version.
fn tag_as_target(source: &str, target: &str) -> Option<String> {
    if target.contains(['/', ':', '@']) {
        return None;
    }
    let digits = target.strip_prefix('v').unwrap_or(target);
    let versionish = digits.starts_with(|c: char| c.is_ascii_digit());
    if !versionish && target != "latest" {
        return None;
    }
    // The suggestion drops the source's own tag or digest.
    let name = source.split_once('@').map_or(source, |(n, _)| n);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let name = name[slash..]
        .rfind(':')
        .map_or(name, |i| &name[..slash + i]);
    Some(format!(
        "`{source} {target}`: the target `{target}` looks like a tag, not a repository; \
         did you mean `{name}:{target}`?"
    ))
}

/// Cuts a `#` comment that starts the line or follows a space or tab.
fn strip_comment(line: &str) -> &str {
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        if c == '#' && FIELD_SEPARATORS.contains(&previous) {
            return &line[..i];
        }
        previous = c;
    }
    line
}

/// Removes a markdown bullet (`- ` or `* `) from a trimmed line.
fn strip_bullet(line: &str) -> &str {
    for bullet in ['-', '*'] {
        if let Some(rest) = line.strip_prefix(bullet)
            && rest.starts_with(FIELD_SEPARATORS)
        {
            return rest.trim_start_matches(FIELD_SEPARATORS);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::imagelist::TargetSpec;
    use crate::reference::ImageRef;

    fn parse_ok(text: &str) -> Vec<ListEntry> {
        parse(text, Path::new("list.txt")).unwrap()
    }

    fn problems(text: &str) -> Vec<(usize, String)> {
        match parse(text, Path::new("bad.txt")) {
            Err(ListError::Invalid(p)) => {
                p.into_iter().map(|p| (p.origin.line, p.message)).collect()
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn sources(entries: &[ListEntry]) -> Vec<String> {
        entries.iter().map(|e| e.source.to_string()).collect()
    }

    #[test]
    fn one_reference_per_line_with_comments_and_blanks() {
        let entries = parse_ok(
            "# Kubernetes images\n\
             \n\
             registry.k8s.io/pause:3.10   # sandbox\n\
             \tnginx  \n\
             # ghcr.io/not/listed:1\n",
        );
        assert_eq!(
            sources(&entries),
            [
                "registry.k8s.io/pause:3.10",
                "docker.io/library/nginx:latest"
            ]
        );
        assert_eq!(entries[0].origin.line, 3);
        assert_eq!(entries[1].origin.line, 4);
        assert_eq!(entries[1].origin.file, PathBuf::from("list.txt"));
        assert!(
            entries
                .iter()
                .all(|e| e.target.is_none() && e.platforms.is_empty())
        );
    }

    #[test]
    fn a_hash_glued_to_a_word_is_not_a_comment() {
        let p = problems("nginx#latest\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].1.contains("`nginx#latest`"), "{}", p[0].1);
    }

    #[test]
    fn markdown_bullets_are_accepted() {
        let entries =
            parse_ok("- harness/chaos-ddcr:1.47.0\n* docker.io/harness/chaos-runner:1.47.0\n");
        assert_eq!(
            sources(&entries),
            [
                "docker.io/harness/chaos-ddcr:1.47.0",
                "docker.io/harness/chaos-runner:1.47.0"
            ]
        );
    }

    #[test]
    fn prose_bullets_are_refused() {
        let p = problems("- Harness Delegate / DDCR\n");
        assert_eq!(
            p,
            [(
                1,
                "expected `SOURCE [TARGET]`, found 4 fields in `Harness Delegate / DDCR`"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn repeated_lines_are_merged_but_different_targets_are_kept() {
        let entries = parse_ok(
            "harness/chaos-log-watcher:1.47.0\n\
             harness/chaos-log-watcher:1.47.0\n\
             docker.io/harness/chaos-log-watcher:1.47.0\n\
             nginx:1.27 web/nginx:1.27\n\
             nginx:1.27 edge/nginx:1.27\n\
             nginx:1.27 edge/nginx:1.27\n",
        );
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].origin.line, 1);
        assert_eq!(entries[1].origin.line, 4);
        assert_eq!(entries[2].origin.line, 5);
    }

    #[test]
    fn explicit_targets_full_and_relative() {
        let entries = parse_ok(
            "registry.k8s.io/pause:3.10 registry.example.com:5000/infra/pause:v3.10\n\
             registry.k8s.io/pause:3.10 localhost/pause\n\
             registry.k8s.io/pause:3.10 infra/pause:stable\n\
             registry.k8s.io/pause:3.10 infra/pause\n",
        );
        let full: ImageRef = "registry.example.com:5000/infra/pause:v3.10"
            .parse()
            .unwrap();
        assert_eq!(entries[0].target, Some(TargetSpec::Full(full)));
        // A full target without a tag keeps the source's tag instead of becoming `latest`.
        let keep: ImageRef = "localhost/pause:3.10".parse().unwrap();
        assert_eq!(entries[1].target, Some(TargetSpec::Full(keep)));
        assert_eq!(
            entries[2].target,
            Some(TargetSpec::Relative {
                repository: "infra/pause".into(),
                tag: Some("stable".into())
            })
        );
        assert_eq!(
            entries[3].target,
            Some(TargetSpec::Relative {
                repository: "infra/pause".into(),
                tag: None
            })
        );
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let p = problems(
            "nginx\n\
             Foo Bar\n\
             \n\
             alpine:3.20 team/Alpine\n\
             a b c\n\
             busybox:1.37 team/busybox:.bad\n\
             redis@sha256:abc\n\
             redis:7 team/redis@sha256:0000000000000000000000000000000000000000000000000000000000000000\n",
        );
        let lines: Vec<usize> = p.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 4, 5, 6, 7, 8]);
        assert!(
            p[0].1.starts_with("invalid image reference `Foo`: "),
            "{}",
            p[0].1
        );
        assert_eq!(
            p[1].1,
            "invalid target `team/Alpine`: path component `Alpine` must be lowercase"
        );
        assert_eq!(
            p[2].1,
            "expected `SOURCE [TARGET]`, found 3 fields in `a b c`"
        );
        assert!(
            p[3].1
                .starts_with("invalid target `team/busybox:.bad`: tag `.bad`"),
            "{}",
            p[3].1
        );
        assert!(
            p[4].1
                .starts_with("invalid image reference `redis@sha256:abc`"),
            "{}",
            p[4].1
        );
        assert!(p[5].1.ends_with("takes a tag, not a digest"), "{}", p[5].1);
    }

    #[test]
    fn uppercase_repositories_are_refused() {
        let p = problems("docker.io/Harness/chaos-ddcr:1.47.0\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 1);
        assert!(
            p[0].1
                .starts_with("invalid image reference `docker.io/Harness/chaos-ddcr:1.47.0`"),
            "{}",
            p[0].1
        );
    }

    #[test]
    fn a_tag_typed_as_a_target_is_refused_with_a_suggestion() {
        let text = "- harness/chaos-exporter 1.47.0\nbusybox v1.36\nalpine:3.19 latest\nbusybox mirror/busybox\nbusybox box\n";
        assert_eq!(
            problems(text),
            [
                (
                    1,
                    "`harness/chaos-exporter 1.47.0`: the target `1.47.0` looks like a tag, not a \
                     repository; did you mean `harness/chaos-exporter:1.47.0`?"
                        .to_owned()
                ),
                (
                    2,
                    "`busybox v1.36`: the target `v1.36` looks like a tag, not a repository; did \
                     you mean `busybox:v1.36`?"
                        .to_owned()
                ),
                (
                    3,
                    "`alpine:3.19 latest`: the target `latest` looks like a tag, not a \
                     repository; did you mean `alpine:latest`?"
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn an_empty_list_is_empty() {
        assert!(parse_ok("").is_empty());
        assert!(parse_ok("# only a comment\n\n   \n").is_empty());
    }

    #[test]
    fn lines_are_lines() {
        // Each would show on a terminal as one image but be read as two fields.
        for text in [
            "nginx:1\rotherhost.example/prod/web:stable\n",
            "nginx:1\x0botherhost.example/prod/web:stable\n",
            "nginx:1\x0cotherhost.example/prod/web:stable\n",
            "nginx:1\u{85}otherhost.example/prod/web:stable\n",
            "nginx:1\u{2028}otherhost.example/prod/web:stable\n",
            "nginx:1\u{2029}x\n",
            "nginx:1\u{a0}otherhost.example/prod/web:stable\n",
            "\x1b[2Jnginx:1\n",
        ] {
            let p = problems(text);
            assert_eq!(p.len(), 1, "{text:?}");
            assert_eq!(p[0].0, 1);
            assert!(
                !p[0].1.contains('\x1b') && !p[0].1.contains('\r'),
                "{}",
                p[0].1
            );
        }
        let p = problems("nginx:1\rotherhost.example/prod/web:stable\n");
        assert!(p[0].1.contains("`\\r`"), "{}", p[0].1);
        // A byte order mark at the start is not part of line 1.
        assert_eq!(
            sources(&parse_ok("\u{feff}nginx:1.27\n")),
            ["docker.io/library/nginx:1.27"]
        );
        assert!(
            problems(&format!("{}\n", "a".repeat(5000)))[0]
                .1
                .contains("limit")
        );
    }

    #[test]
    fn a_hundred_thousand_lines_are_linear() {
        let mut text = String::new();
        for i in 0..100_000 {
            text.push_str(&format!("registry.example/team/app{i}:1\n"));
        }
        text.push_str("Bad Line\n");
        let started = std::time::Instant::now();
        let p = problems(&text);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 100_001);
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }

    #[test]
    fn crlf_line_endings() {
        let entries = parse_ok("nginx:1.27\r\nalpine:3.20 # x\r\n");
        assert_eq!(
            sources(&entries),
            [
                "docker.io/library/nginx:1.27",
                "docker.io/library/alpine:3.20"
            ]
        );
    }
}
