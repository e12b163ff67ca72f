//! Lists whose entries share manifests, the most common shape of a release list: one image
//! under two tags, the same manifest in two repositories, two indexes sharing a child, and an
//! index listed beside one of its children by digest. Every entry must arrive with its source
//! digest through `mirror sync` and through `bundle create` + `bundle load`; runs are
//! repeated to shake out races between tasks that handle the same manifest.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::support::generator::{self, Arch, ImageSpec, Kind, LayerSpec};
use crate::support::{
    TestRegistry, airlift, assert_exit, describe, digest_of, json_report, run_with_timeout,
    skopeo_copy, skopeo_inspect_raw,
};

const TIMEOUT: Duration = Duration::from_secs(300);
const KIB: u64 = 1024;

/// A source registry with the aliased images, the list naming them, and what each entry's
/// digest must be.
struct Aliases {
    source: TestRegistry,
    list: PathBuf,
    /// (list entry without the registry, expected digest), in list order.
    entries: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Aliases {
    fn new() -> Aliases {
        let source = TestRegistry::start();
        let addr = source.addr();
        let specs = vec![
            ImageSpec::new(
                "team/app",
                "1.4",
                Kind::Docker,
                Arch::Single,
                vec![
                    LayerSpec::base(1, 300 * KIB),
                    LayerSpec::seeded(91, 200 * KIB),
                ],
            ),
            ImageSpec::new(
                "team/multi",
                "2.0",
                Kind::Oci,
                Arch::MultiArch,
                vec![
                    LayerSpec::base(1, 300 * KIB),
                    LayerSpec::seeded(92, 100 * KIB),
                ],
            ),
            ImageSpec::new(
                "team/dlist",
                "3.0",
                Kind::Docker,
                Arch::MultiArch,
                vec![LayerSpec::seeded(93, 150 * KIB)],
            ),
        ];
        let images = generator::push(&addr, &specs);
        let (app, multi, dlist) = (&images[0], &images[1], &images[2]);

        // One image under a second tag, in its own repository and in another one.
        generator::put_manifest(&addr, "team/app", "1.4.2", &app.media_type, &app.manifest);
        skopeo_copy(
            &format!("docker://{addr}/team/app:1.4"),
            &format!("docker://{addr}/alias/app-copy:1.4.2"),
        );
        generator::put_manifest(&addr, "team/dlist", "3", &dlist.media_type, &dlist.manifest);
        // A second index over the same children (an annotation makes it another manifest).
        let mut index: Value = serde_json::from_slice(&multi.manifest).unwrap();
        index["annotations"] = serde_json::json!({"org.example.flavour": "b"});
        let index_b = serde_json::to_vec(&index).unwrap();
        generator::put_manifest(&addr, "team/multi", "2.0-b", &multi.media_type, &index_b);

        let child = &multi.manifests[0];
        let entries: Vec<(String, String)> = vec![
            ("team/app:1.4".into(), app.digest.clone()),
            ("team/app:1.4.2".into(), app.digest.clone()),
            ("alias/app-copy:1.4.2".into(), app.digest.clone()),
            (format!("alias/app-copy@{}", app.digest), app.digest.clone()),
            ("team/multi:2.0".into(), multi.digest.clone()),
            ("team/multi:2.0-b".into(), digest_of(&index_b)),
            (format!("team/multi@{child}"), child.clone()),
            ("team/dlist:3.0".into(), dlist.digest.clone()),
            ("team/dlist:3".into(), dlist.digest.clone()),
        ];
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("aliases.txt");
        let text: String = entries
            .iter()
            .map(|(e, _)| format!("{addr}/{e}\n"))
            .collect();
        std::fs::write(&list, text).unwrap();
        Aliases {
            source,
            list,
            entries,
            dir,
        }
    }

    /// Asserts that every entry is at `registry` under `prefix` with its source digest.
    fn assert_all_at(&self, registry: &TestRegistry, prefix: &str, context: &str) {
        for (entry, digest) in &self.entries {
            let target = format!("{}/{prefix}/{entry}", registry.addr());
            let raw = skopeo_inspect_raw(&target);
            assert_eq!(&digest_of(&raw), digest, "{context}: {target}");
        }
    }
}

/// `airlift ARGS --insecure-registry` for every registry given, `--progress none`.
fn run(args: &[&str], registries: &[&TestRegistry]) -> Output {
    let mut cmd = airlift();
    cmd.args(args).args(["--progress", "none"]);
    for r in registries {
        cmd.args(["--insecure-registry", &r.addr()]);
    }
    run_with_timeout(&mut cmd, TIMEOUT)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Every image of the report is `ok` and the sources are the list's entries.
fn assert_report_ok(report: &Value, fx: &Aliases, out: &Output) {
    let images = report["images"].as_array().expect("images");
    assert_eq!(images.len(), fx.entries.len(), "{}", describe(out));
    for image in images {
        assert_eq!(image["status"], "ok", "{image}\n{}", describe(out));
    }
}

#[test]
fn bundle_carries_every_entry_that_shares_a_manifest() {
    let fx = Aliases::new();
    let site = TestRegistry::start();
    let mut first_images: Option<Value> = None;
    for round in 0..20 {
        let out_path = fx.dir.path().join(format!("round{round}.tar.zst"));
        let staging = fx.dir.path().join(format!("staging{round}"));
        let out = run(
            &[
                "bundle",
                "create",
                "--list",
                path_str(&fx.list),
                "-o",
                path_str(&out_path),
                "--staging-dir",
                path_str(&staging),
                "--json",
            ],
            &[&fx.source],
        );
        assert_exit(&out, 0);
        assert_report_ok(&json_report(&out), &fx, &out);

        let inspected = run_with_timeout(
            airlift().args(["bundle", "inspect", path_str(&out_path), "--json"]),
            TIMEOUT,
        );
        assert_exit(&inspected, 0);
        let summary = json_report(&inspected);
        let sources: Vec<&str> = summary["images"]
            .as_array()
            .expect("images")
            .iter()
            .map(|i| i["source"].as_str().unwrap())
            .collect();
        for (entry, _) in &fx.entries {
            let want = format!("{}/{entry}", fx.source.addr());
            assert!(
                sources.contains(&want.as_str()),
                "round {round}: {want} missing from {sources:?}"
            );
        }
        if let Some(first) = &first_images {
            // Loading every round would only repeat the same check: the content is the same.
            assert_eq!(
                first, &summary["images"],
                "round {round}: other images than round 0"
            );
            continue;
        }
        first_images = Some(summary["images"].clone());
        let state = fx.dir.path().join("state");
        let loaded = run(
            &[
                "bundle",
                "load",
                path_str(&out_path),
                "--to",
                &format!("{}/site", site.addr()),
                "--state-dir",
                path_str(&state),
                "--json",
            ],
            &[&site],
        );
        assert_exit(&loaded, 0);
        assert_report_ok(&json_report(&loaded), &fx, &loaded);
        fx.assert_all_at(&site, "site", "after bundle load");
    }
}

#[test]
fn mirror_sync_carries_every_entry_that_shares_a_manifest() {
    let fx = Aliases::new();
    for round in 0..20 {
        let target = TestRegistry::start();
        let out = run(
            &[
                "mirror",
                "sync",
                "--list",
                path_str(&fx.list),
                "--to",
                &format!("{}/mirror", target.addr()),
                "--json",
            ],
            &[&fx.source, &target],
        );
        assert_exit(&out, 0);
        assert_report_ok(&json_report(&out), &fx, &out);
        if round == 0 || round == 19 {
            fx.assert_all_at(&target, "mirror", &format!("round {round}"));
        }
    }
}
