//! The lines an operator reads when the network or the registry misbehaves (issue 13): blobs
//! failing for one cause are said once, retries of a registry's first request are visible,
//! log lines carry no colour codes outside a terminal, and a name that does not resolve ends
//! the run at once with one line. Each test asserts the exit code and the exact lines, with
//! ports, paths, digests and times filtered.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::generator::{self, Generated};
use crate::support::proxy::{Action, FaultProxy, Faults, Matcher, Rule};
use crate::support::{TestRegistry, airlift, assert_exit, describe, json_report, run_with_timeout};

const TIMEOUT: Duration = Duration::from_secs(120);

/// A source registry with the first `n` images of the small set, a target behind a fault
/// proxy, and a scratch directory.
struct Rig {
    source: TestRegistry,
    _target: TestRegistry,
    proxy: FaultProxy,
    images: Vec<Generated>,
    dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

impl Rig {
    fn new(n: usize, faults: Faults) -> Rig {
        let source = TestRegistry::start();
        let target = TestRegistry::start();
        let images = generator::push(&source.addr(), &generator::small_set()[..n]);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let upstream = target.addr().parse().expect("registry address");
        let proxy = rt.block_on(FaultProxy::start(upstream, faults));
        Rig {
            source,
            _target: target,
            proxy,
            images,
            dir: tempfile::tempdir().expect("tempdir"),
            _rt: rt,
        }
    }

    fn list(&self) -> PathBuf {
        generator::write_list(self.dir.path(), &self.images, &self.source.addr())
    }

    fn proxy(&self) -> String {
        self.proxy.addr().to_string()
    }

    /// `airlift mirror sync --list LIST --to PROXY/m` with both registries insecure.
    fn sync(&self, args: &[&str]) -> Command {
        let mut cmd = airlift();
        cmd.args(["mirror", "sync", "--list"])
            .arg(self.list())
            .args(["--to", &format!("{}/m", self.proxy())])
            .args(["--insecure-registry", &self.source.addr()])
            .args(["--insecure-registry", &self.proxy()])
            .args(args);
        cmd
    }

    /// Replaces what changes from run to run: addresses, the scratch directory, digests.
    fn filter(&self, text: &str) -> String {
        hex_filtered(
            &text
                .replace(&self.source.addr(), "SRC")
                .replace(&self.proxy(), "DST")
                .replace(&self.dir.path().display().to_string(), "DIR"),
        )
    }
}

/// Replaces every run of 12 or more lowercase hex digits by `HEX`.
fn hex_filtered(text: &str) -> String {
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

/// A docker config granting `user:password` at `registry`.
fn authfile(dir: &Path, registry: &str) -> PathBuf {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("robot:wrong-password");
    let path = dir.join("auth.json");
    let doc = serde_json::json!({ "auths": { registry: { "auth": auth } } });
    std::fs::write(&path, doc.to_string()).expect("write authfile");
    path
}

/// A wrong password at the target: every blob upload of every image is refused with the same
/// cause. `-q` says it once, counting the blobs, not once per blob or image; `--json` keeps
/// each image's own error.
#[test]
fn blobs_failing_for_one_cause_are_said_once() {
    // The target takes the reads; every upload start is answered 401 with a Basic challenge,
    // whatever the credentials (as a registry does to a wrong password).
    let refuse = Rule::new(
        Matcher::any()
            .method("POST")
            .path_contains("/blobs/uploads/"),
        Action::Rewrite {
            status: Some(401),
            headers: vec![(
                "www-authenticate".to_owned(),
                Some("Basic realm=\"registry\"".to_owned()),
            )],
        },
    );
    let rig = Rig::new(3, Faults::default().with_rule(refuse));
    let auth = authfile(rig.dir.path(), &rig.proxy());
    let auth = auth.to_str().unwrap();
    let out = run_with_timeout(
        rig.sync(&["-q", "--authfile", auth])
            .arg("--retries")
            .arg("0"),
        TIMEOUT,
    );
    assert_exit(&out, 1);
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    // Blobs are counted as they failed: those still queued when every image had failed are
    // not tried (how many that is depends on timing).
    let total: std::collections::BTreeSet<_> = rig
        .images
        .iter()
        .flat_map(|i| &i.blobs)
        .map(|(d, _)| d)
        .collect();
    let text = rig.filter(&stderr(&out));
    let (head, tail) = text.split_once(" blobs: ").unwrap_or_default();
    let (head, count) = head.rsplit_once(": ").unwrap_or_default();
    let count: usize = count.parse().unwrap_or_default();
    assert_eq!(
        (head, tail),
        (
            "failed: 3 images (SRC/harness/base:1.0 (DIR/images.txt:1), SRC/harness/app-oci:2.1 \
             and 1 more)",
            "credentials for DST were rejected: check them, or run `airlift login DST`\n"
        ),
        "{}",
        describe(&out)
    );
    assert!(
        (2..=total.len()).contains(&count),
        "{count} of {} blobs: {}",
        total.len(),
        describe(&out)
    );

    let out = run_with_timeout(
        &mut rig.sync(&["--json", "--progress", "none", "--authfile", auth]),
        TIMEOUT,
    );
    assert_exit(&out, 1);
    let report = json_report(&out);
    let errors: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["error"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(errors.len(), 3, "{report:#}");
    for e in errors {
        assert!(
            e.starts_with("blob sha256:") && e.contains("were rejected"),
            "{e}"
        );
    }
}

/// A target whose first two probes time out (starting up, overloaded): the probe's retries
/// are shown, one line each with the wait (`AIRLIFT_RETRY_DELAY_MS` pins it to 1 s), and the
/// progress says what it is waiting for, before the run goes ahead and copies.
#[test]
fn retries_of_a_registry_are_visible() {
    let busy = Rule::new(
        Matcher::any().method("GET").path_glob("/v2/"),
        Action::StallHeaders,
    )
    .times(2);
    let rig = Rig::new(1, Faults::default().with_rule(busy));
    let mut cmd = rig.sync(&["--progress", "plain", "--timeout", "2"]);
    cmd.env("AIRLIFT_RETRY_DELAY_MS", "1000");
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert_exit(&out, 0);
    let text = rig.filter(&stderr(&out));
    let retries: Vec<&str> = text.lines().filter(|l| l.starts_with("retrying")).collect();
    assert_eq!(
        retries,
        [
            "retrying DST in 1 s (attempt 2/6): cannot reach http://DST/v2/: error sending \
             request: operation timed out",
            "retrying DST in 1 s (attempt 3/6): cannot reach http://DST/v2/: error sending \
             request: operation timed out",
        ],
        "{}",
        describe(&out)
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("progress: connecting to ") && l.contains("DST")),
        "{}",
        describe(&out)
    );
    assert!(!text.contains("0 B / 0 B"), "{}", describe(&out));
    assert!(text.contains("1 images copied"), "{}", describe(&out));
}

/// Log lines (`-vv`) and error lines carry no colour codes when stderr is not a terminal, even
/// without `NO_COLOR`; on a terminal (a pty from `script`) the log levels are coloured.
#[test]
fn log_lines_carry_no_colour_codes_outside_a_terminal() {
    let rig = Rig::new(1, Faults::default());
    let mut cmd = rig.sync(&["-vv", "--progress", "plain"]);
    cmd.env_remove("NO_COLOR");
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert_exit(&out, 0);
    let text = stderr(&out);
    assert!(text.contains(" DEBUG "), "{}", describe(&out));
    assert!(!text.contains('\x1b'), "{}", describe(&out));

    // An error line: a list that does not exist.
    let mut cmd = airlift();
    cmd.env_remove("NO_COLOR")
        .args(["mirror", "sync", "--list"])
        .arg(rig.dir.path().join("missing.txt"))
        .args(["--to", &rig.proxy()]);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert_exit(&out, 2);
    let text = stderr(&out);
    assert!(text.starts_with("error: "), "{}", describe(&out));
    assert!(!text.contains('\x1b'), "{}", describe(&out));

    // The same -vv run on a terminal is coloured: the check above can see colour codes.
    crate::support::require_program("script", "bsdutils");
    let airlift = env!("CARGO_BIN_EXE_airlift");
    let line = format!(
        "'{airlift}' -vv mirror sync --list '{}' --to '{}/m' --insecure-registry '{}' \
         --insecure-registry '{}' --progress plain",
        rig.list().display(),
        rig.proxy(),
        rig.source.addr(),
        rig.proxy()
    );
    let out = run_with_timeout(
        Command::new("script")
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .env("XDG_CACHE_HOME", crate::support::test_cache_dir())
            .env_remove("NO_COLOR"),
        TIMEOUT,
    );
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DEBUG"), "{}", describe(&out));
    assert!(text.contains('\x1b'), "{}", describe(&out));
}

/// A registry whose name does not resolve (`.invalid` never does, RFC 2606: no network
/// needed) is not retried: the run ends within a few seconds, default retry delays, with one
/// line naming it.
#[test]
fn a_name_that_does_not_resolve_ends_the_run_with_one_line() {
    let rig = Rig::new(1, Faults::default());
    let list = rig.dir.path().join("dns.txt");
    std::fs::write(
        &list,
        "nonexistent.invalid/harness/a:1\nnonexistent.invalid/harness/b:1\n\
         nonexistent.invalid/harness/c:1\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut cmd = airlift();
    cmd.env_remove("AIRLIFT_RETRY_DELAY_MS")
        .args(["-q", "mirror", "sync", "--list"])
        .arg(&list)
        .args(["--to", &format!("{}/m", rig.proxy())])
        .args(["--insecure-registry", &rig.proxy()]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let elapsed = started.elapsed();
    assert_exit(&out, 1);
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(
        rig.filter(&stderr(&out)),
        "failed: 3 images (nonexistent.invalid/harness/a:1 (DIR/dns.txt:1), \
         nonexistent.invalid/harness/b:1 and 1 more): cannot reach registry \
         nonexistent.invalid: its host name does not resolve (DNS lookup failed)\n",
        "{}",
        describe(&out)
    );
}

/// On a terminal (a pty from `script`) each finished image is one line above the bars, and
/// the run ends with the summary.
#[test]
fn a_terminal_shows_one_line_per_finished_image() {
    crate::support::require_program("script", "bsdutils");
    let rig = Rig::new(3, Faults::default());
    let airlift = env!("CARGO_BIN_EXE_airlift");
    let line = format!(
        "'{airlift}' mirror sync --list '{}' --to '{}/m' --insecure-registry '{}' \
         --insecure-registry '{}'",
        rig.list().display(),
        rig.proxy(),
        rig.source.addr(),
        rig.proxy()
    );
    let out = run_with_timeout(
        Command::new("script")
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .env("XDG_CACHE_HOME", crate::support::test_cache_dir())
            .env("NO_COLOR", "1"),
        TIMEOUT,
    );
    assert_exit(&out, 0);
    let text = rig.filter(&String::from_utf8_lossy(&out.stdout));
    for image in &rig.images {
        let copied = format!(
            "copied: SRC/{repo}:{tag} -> DST/m/{repo}:{tag} (",
            repo = image.repository,
            tag = image.tag
        );
        assert_eq!(text.matches(&copied).count(), 1, "{copied:?} in {text}");
    }
    assert!(
        text.contains("3 images copied, 0 already present"),
        "{text}"
    );
}
