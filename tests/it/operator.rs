//! What an operator sees when things are not perfect (issue 13): `-q` runs, re-runs, typos in
//! lists, `--json` in CI, closed pipes. Each test asserts the exit code and the exact
//! user-facing lines, with ports, paths and times filtered ([`filter`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::generator::{self, Generated};
use crate::support::{
    TestRegistry, airlift, assert_exit, default_staging, describe, json_report, run_with_timeout,
    sha256_hex,
};

const TIMEOUT: Duration = Duration::from_secs(300);

/// A source registry with one small image, an empty target, and a scratch directory.
struct Site {
    source: TestRegistry,
    target: TestRegistry,
    image: Generated,
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        Site::with_images(1)
    }

    /// The first `n` images of the small set at the source; `image` is the first.
    fn with_images(n: usize) -> Site {
        let source = TestRegistry::start();
        let target = TestRegistry::start();
        let image = generator::push(&source.addr(), &generator::small_set()[..n]).swap_remove(0);
        Site {
            source,
            target,
            image,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn source_ref(&self) -> String {
        self.image.reference(&self.source.addr())
    }

    fn list(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write list");
        path
    }

    /// `airlift mirror sync --list LIST --to TARGET/m` with both registries insecure.
    fn sync(&self, list: &Path, args: &[&str]) -> Output {
        let mut cmd = airlift();
        cmd.args(["mirror", "sync", "--list"])
            .arg(list)
            .args(["--to", &format!("{}/m", self.target.addr())])
            .args(["--insecure-registry", &self.source.addr()])
            .args(["--insecure-registry", &self.target.addr()])
            .args(args);
        run_with_timeout(&mut cmd, TIMEOUT)
    }

    /// Replaces what changes from run to run: the registries' addresses, the scratch
    /// directory, digests' hex and timings.
    fn filter(&self, text: &str) -> String {
        let text = text
            .replace(&self.source.addr(), "SRC")
            .replace(&self.target.addr(), "DST")
            .replace(&self.dir.path().display().to_string(), "DIR");
        let hex = regex_lite_replace(&text);
        hex.lines()
            .map(|l| {
                // "... in 0.3s (1.2 MiB/s)" varies.
                match l.find(" in ") {
                    Some(i) if l.contains(" blobs transferred ") => format!("{} in TIME", &l[..i]),
                    _ => l.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Replaces every run of 12 or more lowercase hex digits by `HEX`.
fn regex_lite_replace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 12 { "HEX" } else { &run });
        run.clear();
        out.push(c);
    }
    out.push_str(if run.len() >= 12 { "HEX" } else { &run });
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// Item 2: `-q` prints each failure once, and nothing else.
#[test]
fn quiet_prints_each_failure_once_and_nothing_else() {
    let site = Site::new();
    let src = site.source.addr();
    let list = site.list(
        "images.txt",
        &[
            site.source_ref(),
            format!("{src}/harness/missing-a:1"),
            format!("{src}/harness/missing-b:1"),
            format!("{src}/harness/missing-c:1"),
        ],
    );
    let out = site.sync(&list, &["-q"]);
    assert_exit(&out, 1);
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let lines: Vec<String> = site
        .filter(&stderr(&out))
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, x)| {
            format!(
                "failed: SRC/harness/missing-{x}:1 (DIR/images.txt:{}): cannot fetch manifest \
                 SRC/harness/missing-{x}:1: manifest `1` not found at \
                 http://SRC/v2/harness/missing-{x}/manifests/1",
                i + 2
            )
        })
        .collect();
    assert_eq!(lines, expected, "{}", describe(&out));
}

// Item 6: a failure is printed once, not once as it happens and again in the summary; a
// no-op re-run says "already present", not "copied".
#[test]
fn failures_once_and_a_rerun_says_already_present() {
    let site = Site::new();
    let src = site.source.addr();
    let list = site.list(
        "images.txt",
        &[site.source_ref(), format!("{src}/harness/missing:1")],
    );
    let first = site.sync(&list, &["--progress", "plain"]);
    assert_exit(&first, 1);
    let text = site.filter(&stderr(&first));
    let failures: Vec<&str> = text.lines().filter(|l| l.contains("missing")).collect();
    assert_eq!(
        failures,
        [
            "failed: SRC/harness/missing:1 (DIR/images.txt:2): cannot fetch manifest \
             SRC/harness/missing:1: manifest `1` not found at \
             http://SRC/v2/harness/missing/manifests/1"
        ],
        "the failure is printed once: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "copied: SRC/harness/base:1.0 -> DST/m/harness/base:1.0 (HEX)"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l
            == "1 images copied, 0 already present, 1 failed; 3 blobs transferred (583.60 KiB), \
                0 already present (0 B) in TIME"),
        "{text}"
    );

    let only = site.list("base.txt", &[site.source_ref()]);
    let again = site.sync(&only, &["--progress", "plain"]);
    assert_exit(&again, 0);
    let text = site.filter(&stderr(&again));
    assert!(!text.contains("copied:"), "{text}");
    assert!(
        text.lines()
            .any(|l| l == "already present: SRC/harness/base:1.0 -> DST/m/harness/base:1.0 (HEX)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("0 images copied, 1 already present, 0 failed; ")),
        "{text}"
    );
}

// Item 5: `- harness/chaos-exporter 1.47.0` is a typo for a tag, refused with a suggestion
// and the file:line; item 8: with --json the input error is one JSON document.
#[test]
fn a_tag_typed_as_a_target_is_an_input_error_and_json_says_so() {
    let site = Site::new();
    let src = site.source.addr();
    let list = site.list(
        "harness.txt",
        &[
            site.source_ref(),
            format!("- {src}/harness/chaos-exporter 1.47.0"),
        ],
    );
    let expected = "1 invalid image list entry:\n  DIR/harness.txt:2: `SRC/harness/chaos-exporter \
                    1.47.0`: the target `1.47.0` looks like a tag, not a repository; did you mean \
                    `SRC/harness/chaos-exporter:1.47.0`?";

    let out = site.sync(&list, &[]);
    assert_exit(&out, 2);
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    assert_eq!(
        site.filter(&stderr(&out)).trim_end(),
        format!("error: {expected}"),
    );

    let out = site.sync(&list, &["--json"]);
    assert_exit(&out, 2);
    let doc = json_report(&out);
    assert_eq!(doc["exit_code"], 2, "{doc}");
    assert_eq!(
        site.filter(doc["error"].as_str().unwrap_or_default()),
        expected
    );
}

// Item 8: a usage error with --json is still one JSON document on stdout.
#[test]
fn json_usage_errors_are_one_json_document() {
    let out = run_with_timeout(
        airlift().args(["mirror", "sync", "--json", "--no-such-flag"]),
        TIMEOUT,
    );
    assert_exit(&out, 2);
    let doc = json_report(&out);
    assert_eq!(doc["exit_code"], 2, "{doc}");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("usage: ")),
        "{doc}"
    );
}

// Item 8: `airlift completions zsh | head -1` is a success, not a panic (exit 101).
#[test]
fn a_closed_pipe_is_success() {
    for shell in ["zsh", "bash", "fish"] {
        let mut child = airlift()
            .args(["completions", shell])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn airlift");
        // The reader goes away before airlift writes: its first write meets a closed pipe.
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("read stderr");
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(0), "{shell}: {err}");
        assert!(err.is_empty(), "{shell}: {err}");
    }
}

// Item 8: `bundle create --json` lists the volume files with sizes and SHA-256; item 6: its
// per-image line does not say `copied: X -> X`.
#[test]
fn bundle_create_json_lists_volumes_with_sha256() {
    let site = Site::new();
    let list = site.list("images.txt", &[site.source_ref()]);
    let mut cmd = airlift();
    cmd.args(["bundle", "create", "--list"])
        .arg(&list)
        .arg("-o")
        .arg(site.path("b.tar.zst"))
        .args(["--insecure-registry", &site.source.addr()])
        .args(["--progress", "plain", "--json"]);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert_exit(&out, 0);
    let report: Value = json_report(&out);
    let volumes = report["volumes"].as_array().expect("volumes listed");
    assert_eq!(volumes.len(), 1, "{report}");
    let path = PathBuf::from(volumes[0]["path"].as_str().unwrap());
    assert_eq!(path, site.path("b.tar.zst"));
    let bytes = std::fs::read(&path).expect("volume");
    assert_eq!(volumes[0]["size"], bytes.len() as u64, "{report}");
    assert_eq!(volumes[0]["sha256"], sha256_hex(&bytes), "{report}");
    let text = site.filter(&stderr(&out));
    assert!(
        text.lines()
            .any(|l| l == "copied: SRC/harness/base:1.0 (HEX)"),
        "{text}"
    );
}

// Item 3: a registry that is down is probed once, not retried per image: the run ends
// within 20 s (default retry delays) with one line naming it.
#[test]
fn a_stopped_registry_fails_fast_with_one_line_naming_it() {
    let site = Site::new();
    let closed = crate::support::closed_addr();
    let list = site.list(
        "dead.txt",
        &["a", "b", "c"].map(|x| format!("{closed}/harness/{x}:1")),
    );
    let started = std::time::Instant::now();
    let mut cmd = airlift();
    cmd.env_remove("AIRLIFT_RETRY_DELAY_MS")
        .args(["-q", "mirror", "sync", "--list"])
        .arg(&list)
        .args(["--to", &format!("{}/m", site.target.addr())])
        .args(["--insecure-registry", &closed])
        .args(["--insecure-registry", &site.target.addr()]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    assert_exit(&out, 1);
    assert_eq!(
        site.filter(&stderr(&out)).replace(&closed, "CLOSED"),
        "failed: 3 images (CLOSED/harness/a:1 (DIR/dead.txt:1), CLOSED/harness/b:1 and 1 more): \
         cannot reach registry CLOSED: connection refused (is it running, and is the port \
         right?)",
        "{}",
        describe(&out)
    );

    // A stopped target: the same, once, whatever the number of images.
    let list = site.list("base.txt", &[site.source_ref()]);
    let started = std::time::Instant::now();
    let mut cmd = airlift();
    cmd.env_remove("AIRLIFT_RETRY_DELAY_MS")
        .args(["mirror", "sync", "--progress", "plain", "--list"])
        .arg(&list)
        .args(["--to", &format!("{closed}/m")])
        .args(["--insecure-registry", &closed])
        .args(["--insecure-registry", &site.source.addr()]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{}",
        describe(&out)
    );
    assert_exit(&out, 1);
    let text = site.filter(&stderr(&out)).replace(&closed, "CLOSED");
    let failures: Vec<&str> = text.lines().filter(|l| l.contains("CLOSED")).collect();
    assert_eq!(
        failures,
        [
            "failed: SRC/harness/base:1.0 (DIR/base.txt:1): cannot reach registry CLOSED: \
          connection refused (is it running, and is the port right?)"
        ],
        "{text}"
    );
    assert!(!text.contains("0 B / 0 B"), "{text}");
}

// Item 7: re-creating a bundle over an older one of the same name removes the older
// bundle's extra volumes, naming them.
#[test]
fn recreating_a_bundle_removes_stale_volumes_of_the_older_one() {
    let site = Site::new();
    let list = site.list("images.txt", &[site.source_ref()]);
    let create = |extra: &[&str]| {
        let mut cmd = airlift();
        cmd.args(["bundle", "create", "--list"])
            .arg(&list)
            .arg("-o")
            .arg(site.path("b.tar.zst"))
            .args(["--insecure-registry", &site.source.addr()])
            .args(["--progress", "none"])
            .args(extra);
        run_with_timeout(&mut cmd, TIMEOUT)
    };
    let out = create(&["--max-volume-size", "256K"]);
    assert_exit(&out, 0);
    let numbered: Vec<PathBuf> = (1..=999)
        .map(|n| site.path(&format!("b.{n:03}.tar.zst")))
        .filter(|p| p.exists())
        .collect();
    assert!(numbered.len() >= 3, "{}", describe(&out));

    let out = create(&[]);
    assert_exit(&out, 0);
    assert!(site.path("b.tar.zst").is_file());
    let text = site.filter(&stderr(&out));
    for (n, old) in numbered.iter().enumerate() {
        assert!(!old.exists(), "{} is left behind", old.display());
        let line = format!(
            "removed DIR/b.{:03}.tar.zst: a volume of an older bundle of the same name",
            n + 1
        );
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}

// Item 9: `mirror status` says per image what is present, missing or different at the
// target, and exits 0 only when everything is present.
#[test]
fn mirror_status_shows_present_missing_and_different() {
    let site = Site::with_images(2);
    let (src, dst) = (site.source.addr(), site.target.addr());
    let base = site.list("base.txt", &[site.source_ref()]);
    assert_exit(&site.sync(&base, &[]), 0);
    crate::support::skopeo_copy(
        &format!("docker://{src}/harness/app-oci:2.1"),
        &format!("docker://{dst}/m/harness/base:2.0"),
    );
    let list = site.list(
        "status.txt",
        &[
            site.source_ref(),
            format!("{src}/harness/app-oci:2.1"),
            format!("{src}/harness/base:1.0 {dst}/m/harness/base:2.0"),
        ],
    );
    let status = |list: &Path, extra: &[&str]| {
        let mut cmd = airlift();
        cmd.args(["mirror", "status", "--list"])
            .arg(list)
            .args(["--to", &format!("{dst}/m")])
            .args(["--insecure-registry", &src])
            .args(["--insecure-registry", &dst])
            .args(["--progress", "none"])
            .args(extra);
        run_with_timeout(&mut cmd, TIMEOUT)
    };
    let out = status(&list, &[]);
    assert_exit(&out, 1);
    assert_eq!(
        site.filter(&String::from_utf8_lossy(&out.stdout)),
        "present   SRC/harness/base:1.0 -> DST/m/harness/base:1.0\n\
         missing   SRC/harness/app-oci:2.1 -> DST/m/harness/app-oci:2.1 (4 blobs to copy, 907.78 KiB)\n\
         different SRC/harness/base:1.0 -> DST/m/harness/base:2.0 (holds HEX, the list's is HEX)",
        "{}",
        describe(&out)
    );
    assert_eq!(
        stderr(&out).trim_end(),
        "1 present, 1 missing, 1 different, 0 errors"
    );
    let out = status(&list, &["--json"]);
    assert_exit(&out, 1);
    let doc = json_report(&out);
    let statuses: Vec<&str> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["present", "missing", "different"], "{doc}");

    let out = status(&base, &[]);
    assert_exit(&out, 0);
}

// Item 7: `bundle create --dry-run` creates nothing on disk and says how many volumes the
// media needs.
#[test]
fn bundle_create_dry_run_creates_nothing_and_plans_the_volumes() {
    let site = Site::new();
    let list = site.list("images.txt", &[site.source_ref()]);
    let mut cmd = airlift();
    cmd.args(["bundle", "create", "--dry-run", "--list"])
        .arg(&list)
        .arg("-o")
        .arg(site.path("b.tar.zst"))
        .args(["--max-volume-size", "256K"])
        .args(["--insecure-registry", &site.source.addr()])
        .args(["--progress", "none"]);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        stdout.lines().last().unwrap_or_default(),
        "volumes: about 3 of at most 256.00 KiB (584.29 KiB of content before compression)",
        "{}",
        describe(&out)
    );
    let left: Vec<_> = std::fs::read_dir(site.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["images.txt"], "a dry run left files behind");
    let staging = default_staging(&site.path("b.tar.zst"));
    assert!(!staging.exists(), "a dry run left {}", staging.display());
}

// Item 7: `--since old.*.tar.zst` (a shell glob: every volume of the old bundle) is accepted.
#[test]
fn since_takes_every_volume_of_the_old_bundle() {
    let site = Site::with_images(2);
    let src = site.source.addr();
    let create = |list: &Path, out: &str, extra: &[&str]| {
        let mut cmd = airlift();
        cmd.args(["bundle", "create"])
            .args(extra)
            .arg("--list")
            .arg(list)
            .arg("-o")
            .arg(site.path(out))
            .args(["--insecure-registry", &src])
            .args(["--progress", "none", "--json"]);
        run_with_timeout(&mut cmd, TIMEOUT)
    };
    let old_list = site.list("old.txt", &[site.source_ref()]);
    assert_exit(
        &create(&old_list, "old.tar.zst", &["--max-volume-size", "256K"]),
        0,
    );
    let old: Vec<String> = (1..=999)
        .map(|n| site.path(&format!("old.{n:03}.tar.zst")))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    assert!(old.len() >= 3, "{old:?}");
    let new_list = site.list(
        "new.txt",
        &[site.source_ref(), format!("{src}/harness/app-oci:2.1")],
    );
    let mut extra = vec!["--since"];
    extra.extend(old.iter().map(String::as_str));
    let out = create(&new_list, "new.tar.zst", &extra);
    assert_exit(&out, 0);
    // Every blob of the old bundle is left out: only app-oci's own layers travel.
    let report = json_report(&out);
    let base_bytes = site.image.blob_bytes();
    assert!(
        report["bytes_skipped"].as_u64().unwrap_or(0) >= base_bytes,
        "{report}"
    );

    // `inspect` of the differential bundle says what it carries and what the site must hold.
    let out = run_with_timeout(
        airlift()
            .args(["bundle", "inspect"])
            .arg(site.path("new.tar.zst")),
        TIMEOUT,
    );
    assert_exit(&out, 0);
    let text = site.filter(&String::from_utf8_lossy(&out.stdout));
    // The compressed size of a volume may vary by a few bytes (its descriptor has a time).
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("bundle "))
        .map(|l| match (l.find(" ("), l.find("), ")) {
            (Some(a), Some(b)) if l.starts_with("  volume ") => {
                format!("{} (SIZE{}", &l[..a], &l[b..])
            }
            _ => l.to_owned(),
        })
        .collect();
    assert_eq!(
        lines,
        [
            "differential: 3 blobs (583.60 KiB) are not carried and must already be at the site",
            "  volume 1: DIR/new.tar.zst (SIZE), 3 blobs (391.22 KiB)",
            // The platform is read from the config before the volumes are planned, even
            // when the config itself is left at the site.
            "  SRC/harness/base:1.0 HEX [linux/amd64] 584.29 KiB (697 B carried, 583.60 KiB at \
             the site) manifests only",
            "  SRC/harness/app-oci:2.1 HEX [linux/amd64] 908.62 KiB (392.06 KiB carried, 516.56 \
             KiB at the site) in volume(s) 1",
        ],
        "{text}"
    );
}
