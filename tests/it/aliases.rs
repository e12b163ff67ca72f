//! Lists whose entries share manifests, the most common shape of a release list: one image
//! under two tags, the same manifest in two repositories, two indexes sharing a child, and an
//! index listed beside one of its children by digest. Every entry must arrive with its source
//! digest through `mirror sync` and through `bundle create` + `bundle load`; runs are
//! repeated to shake out races between tasks that handle the same manifest.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::support::assert_complete;
use crate::support::generator::{self, Arch, ImageSpec, Kind, LayerSpec};
use crate::support::proxy::{FaultProxy, Faults};
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

/// `airlift bundle load BUNDLE --to SITE/site --state-dir STATE --json`.
fn load_into(site: &TestRegistry, bundle: &Path, state: &Path) -> Output {
    run(
        &[
            "bundle",
            "load",
            path_str(bundle),
            "--to",
            &format!("{}/site", site.addr()),
            "--state-dir",
            path_str(state),
            "--json",
        ],
        &[site],
    )
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Every image of the report is `ok` and the sources are the list's entries.
fn assert_report_ok(report: &Value, fx: &Aliases, out: &Output) {
    let images = report["images"].as_array().expect("images");
    assert_eq!(images.len(), fx.entries.len(), "{}", describe(out));
    for image in images {
        assert_complete(&image["status"], format!("{image}\n{}", describe(out)));
    }
}

#[test]
fn bundle_carries_every_entry_that_shares_a_manifest() {
    let fx = Aliases::new();
    let site = TestRegistry::start();
    let mut first_images: Option<Value> = None;
    for round in 0..20 {
        let out_path = fx.dir.path().join(format!("round{round}.tar.zst"));
        let out = run(
            &[
                "bundle",
                "create",
                "--list",
                path_str(&fx.list),
                "-o",
                path_str(&out_path),
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
        let loaded = load_into(&site, &out_path, &fx.dir.path().join("state"));
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

#[test]
fn each_shared_manifest_is_fetched_once() {
    let fx = Aliases::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let upstream = fx.source.addr().parse().expect("registry address");
    let proxy = rt.block_on(FaultProxy::start(upstream, Faults::default()));
    let via = proxy.addr().to_string();
    let list = fx.dir.path().join("via-proxy.txt");
    let text = std::fs::read_to_string(&fx.list)
        .unwrap()
        .replace(&fx.source.addr(), &via);
    std::fs::write(&list, text).unwrap();
    let out_path = fx.dir.path().join("once.tar.zst");
    let mut cmd = airlift();
    cmd.args([
        "bundle",
        "create",
        "--list",
        path_str(&list),
        "-o",
        path_str(&out_path),
    ])
    .args(["--progress", "none", "--insecure-registry", &via]);
    assert_exit(&run_with_timeout(&mut cmd, TIMEOUT), 0);

    let stats = proxy.stats();
    let mut by_digest: std::collections::BTreeMap<&str, u64> = Default::default();
    let mut by_tag = 0;
    for (path, gets) in stats
        .gets_by_path
        .iter()
        .filter(|(p, _)| p.contains("/manifests/"))
    {
        match path.rsplit_once("/manifests/") {
            Some((_, d)) if d.starts_with("sha256:") => *by_digest.entry(d).or_default() += gets,
            _ => by_tag += gets,
        }
    }
    // Seven entries name a tag, but planning asks the source for their digests with HEAD and
    // fetches each manifest by digest once: the tags (two naming one image), the four index
    // children (one also listed by digest) and the image listed by digest in another
    // repository are eight manifests, and no GET names a tag.
    assert_eq!(by_tag, 0, "{stats}\n{:?}", stats.gets_by_path);
    for (digest, gets) in &by_digest {
        assert_eq!(
            *gets, 1,
            "{digest} fetched {gets} times: {:?}",
            stats.gets_by_path
        );
    }
    assert_eq!(by_digest.len(), 8, "{:?}", stats.gets_by_path);
}

#[test]
fn a_failed_entry_writes_no_bundle_unless_keep_going() {
    let fx = Aliases::new();
    let addr = fx.source.addr();
    let list = fx.dir.path().join("with-missing.txt");
    let mut text = std::fs::read_to_string(&fx.list).unwrap();
    text.push_str(&format!("{addr}/team/gone:9.9\n"));
    std::fs::write(&list, text).unwrap();
    let gone = format!("{addr}/team/gone:9.9");
    let origin = format!("{}:{}", list.display(), fx.entries.len() + 1);
    let out_path = fx.dir.path().join("partial.tar.zst");
    let create = |extra: &[&str]| {
        let mut args = vec![
            "bundle",
            "create",
            "--list",
            path_str(&list),
            "-o",
            path_str(&out_path),
        ];
        args.extend_from_slice(extra);
        run(&args, &[&fx.source])
    };

    // By default: exit 1, no bundle (nothing written at all), and the reason said.
    let out = create(&[]);
    assert_exit(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&gone), "{}", describe(&out));
    assert!(
        stderr.contains("no bundle was written") && stderr.contains("--keep-going"),
        "{}",
        describe(&out)
    );
    assert!(
        !out_path.exists(),
        "a bundle was written: {}",
        describe(&out)
    );
    assert!(
        !fx.dir.path().join("partial.tar.zst.partial").exists(),
        "a .partial volume was written: {}",
        describe(&out)
    );

    // --keep-going: a partial bundle (still exit 1), which says what it lacks.
    let out = create(&["--keep-going", "--json"]);
    assert_exit(&out, 1);
    assert!(out_path.is_file(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the bundle is partial"),
        "{}",
        describe(&out)
    );
    let inspected = run_with_timeout(
        airlift().args(["bundle", "inspect", path_str(&out_path), "--json"]),
        TIMEOUT,
    );
    assert_exit(&inspected, 0);
    let summary = json_report(&inspected);
    let missing = summary["missing_images"]
        .as_array()
        .expect("missing_images");
    assert_eq!(missing.len(), 1, "{summary}");
    assert_eq!(missing[0]["source"], gone.as_str());
    assert_eq!(missing[0]["origin"], origin.as_str());
    assert!(
        missing[0]["error"].as_str().unwrap().contains("gone"),
        "{summary}"
    );
    assert_eq!(
        summary["images"].as_array().unwrap().len(),
        fx.entries.len(),
        "{summary}"
    );
    let text = run_with_timeout(
        airlift().args(["bundle", "inspect", path_str(&out_path)]),
        TIMEOUT,
    );
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(&format!("missing: {gone} ({origin})")),
        "{}",
        describe(&text)
    );

    // Loading it completes every carried entry and names the missing one.
    let site = TestRegistry::start();
    let loaded = load_into(&site, &out_path, &fx.dir.path().join("partial-state"));
    assert_exit(&loaded, 0);
    let report = json_report(&loaded);
    assert_eq!(
        report["missing_from_bundle"][0]["source"],
        gone.as_str(),
        "{report}"
    );
    assert!(
        String::from_utf8_lossy(&loaded.stderr).contains(&format!("missing: {gone}")),
        "{}",
        describe(&loaded)
    );
    fx.assert_all_at(&site, "site", "partial bundle");
}
