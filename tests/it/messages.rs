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
