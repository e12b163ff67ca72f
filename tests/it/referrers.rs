//! Signatures, attestations and SBOMs travel with their images, judged by the real tools.
//!
//! Images are signed at the source with cosign 3 (its default sigstore bundles, which are
//! OCI 1.1 referrers, and the legacy `sha256-<hex>.sig` tag schema), attested with an SPDX
//! predicate, signed with notation, given an SBOM with `oras attach`, and that SBOM signed
//! with notation in turn; all from Debian forky's packages in the chroot `scripts/forky.sh`
//! builds, with local keys and no transparency log. Sources and destinations are
//! distribution 2.8 (no referrers API: the `sha256-<hex>` tag schema) and
//! go-containerregistry's registry with the referrers API on (`/opt/airlift-refreg/refreg`
//! in the chroot). The list names only the images; at the destination `cosign verify`,
//! `cosign verify-attestation`, `notation verify` and `oras discover` must all succeed, after
//! `mirror sync` and after `bundle create` + `bundle load`, and a signature the site adds
//! itself must survive a re-sync and a re-load.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::generator::{self, Arch, Generated, ImageSpec, Kind, LayerSpec};
use crate::support::{
    Forky, TestRegistry, airlift, assert_exit, describe, http_get, json_report, run_with_timeout,
};

const TIMEOUT: Duration = Duration::from_secs(300);
const KIB: u64 = 1024;
const SPDX: &str = "application/spdx+json";
const NOTARY: &str = "application/vnd.cncf.notary.signature";

/// go-containerregistry's registry with the referrers API, run from the chroot.
struct RefReg {
    child: Child,
    addr: String,
}

impl RefReg {
    fn start(forky: &Forky) -> RefReg {
        let bin = forky.root().join("opt/airlift-refreg/refreg");
        assert!(
            bin.is_file(),
            "no {}: run scripts/forky.sh (scripts/test.sh does)",
            bin.display()
        );
        // It binds port 0 itself and says which port it got: no window in which another
        // test's server could take the port picked for it.
        let mut child = forky
            .program("/opt/airlift-refreg/refreg")
            .arg("127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start refreg");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = line.split("serving on ").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("refreg did not say where it listens");
        let reg = RefReg { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(&format!("http://{}/v2/", reg.addr)).is_err() {
            assert!(
                Instant::now() < deadline,
                "refreg on {} did not start",
                reg.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }
}

impl Drop for RefReg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The signing and verifying tools, with their keys and configuration in a directory inside
/// the chroot.
pub(crate) struct Tools {
    forky: Forky,
    dir: tempfile::TempDir,
    inside: String,
}

impl Tools {
    pub(crate) fn new() -> Tools {
        let forky = Forky::get();
        let dir = tempfile::tempdir_in(forky.root().join("tmp")).expect("tempdir in the chroot");
        let inside = forky.inside(dir.path());
        let tools = Tools { forky, dir, inside };
        tools.ok(&["cosign", "generate-key-pair"]);
        tools.ok(&[
            "notation",
            "cert",
            "generate-test",
            "--default",
            "airlift-test",
        ]);
        let policy = r#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:airlift-test"],"trustedIdentities":["*"]}]}"#;
        std::fs::write(tools.path(".config/notation/trustpolicy.json"), policy).unwrap();
        let predicate = r#"{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"app","documentNamespace":"https://example.invalid/app","creationInfo":{"created":"2026-01-01T00:00:00Z","creators":["Tool: airlift-test"]},"packages":[]}"#;
        std::fs::write(tools.path("sbom.spdx.json"), predicate).unwrap();
        tools
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs a tool in the work directory, with its keys and configuration there.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd: Command = self.forky.program("env");
        cmd.arg(format!("--chdir={}", self.inside))
            .arg(format!("HOME={}", self.inside))
            .arg(format!("XDG_CONFIG_HOME={}/.config", self.inside))
            .arg("COSIGN_PASSWORD=")
            .args(args);
        run_with_timeout(&mut cmd, Duration::from_secs(120))
    }

    pub(crate) fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        out
    }

    const COSIGN: &[&str] = &[
        "--key",
        "cosign.key",
        "--tlog-upload=false",
        "--use-signing-config=false",
        "--allow-http-registry",
        "--allow-insecure-registry",
        "-y",
    ];
    const COSIGN_VERIFY: &[&str] = &[
        "--key",
        "cosign.pub",
        "--insecure-ignore-tlog=true",
        "--allow-http-registry",
        "--allow-insecure-registry",
    ];

    /// Signs and attests `image` (`HOST/REPO@DIGEST`) every way the tools offer; returns the
    /// digest of the SBOM attached to it.
    fn sign_all(&self, image: &str) -> String {
        let cosign = |cmd: &str, extra: &[&str]| {
            let mut args = vec!["cosign", cmd];
            args.extend_from_slice(Self::COSIGN);
            args.extend_from_slice(extra);
            args.push(image);
            self.ok(&args);
        };
        cosign("sign", &[]);
        cosign("sign", &["--new-bundle-format=false"]);
        cosign(
            "attest",
            &["--type", "spdxjson", "--predicate", "sbom.spdx.json"],
        );
        self.ok(&["notation", "sign", "--insecure-registry", image]);
        let out = self.ok(&[
            "oras",
            "attach",
            "--plain-http",
            "--artifact-type",
            SPDX,
            image,
            "sbom.spdx.json",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let sbom = text
            .lines()
            .find_map(|l| l.strip_prefix("Digest: "))
            .unwrap_or_else(|| panic!("no digest from oras attach: {text}"))
            .trim()
            .to_owned();
        let repo = image.split('@').next().unwrap();
        self.ok(&[
            "notation",
            "sign",
            "--insecure-registry",
            &format!("{repo}@{sbom}"),
        ]);
        sbom
    }

    /// Every verification the site would run on `image` (`HOST/REPO@DIGEST`) and its SBOM.
    pub(crate) fn verify_all(&self, image: &str, sbom: &str, context: &str) {
        let check = |args: Vec<&str>| {
            let out = self.run(&args);
            assert!(
                out.status.success(),
                "{context}: {args:?}: {}",
                describe(&out)
            );
        };
        fn cosign<'a>(cmd: &'a str, extra: &[&'a str], image: &'a str) -> Vec<&'a str> {
            let mut args = vec!["cosign", cmd];
            args.extend_from_slice(Tools::COSIGN_VERIFY);
            args.extend_from_slice(extra);
            args.push(image);
            args
        }
        check(cosign("verify", &[], image));
        check(cosign("verify", &["--new-bundle-format=false"], image));
        check(cosign("verify-attestation", &["--type", "spdxjson"], image));
        check(vec!["notation", "verify", "--insecure-registry", image]);
        let repo = image.split('@').next().unwrap();
        let sbom_ref = format!("{repo}@{sbom}");
        check(vec!["notation", "verify", "--insecure-registry", &sbom_ref]);
        let tree = self.discover(image);
        let sbom_node = tree["referrers"]
            .as_array()
            .into_iter()
            .flatten()
            // By digest: go-containerregistry's referrers API reports the config's media type
            // as every referrer's artifact type, so an SBOM there shows as the empty type.
            .find(|r| r["digest"] == sbom)
            .unwrap_or_else(|| {
                panic!("{context}: the SBOM {sbom} is not listed for {image}: {tree}")
            });
        assert!(
            sbom_node["referrers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["artifactType"] == NOTARY),
            "{context}: the SBOM's signature is not listed: {tree}"
        );
    }

    /// `oras discover --format json` of `image`.
    fn discover(&self, image: &str) -> Value {
        let out = self.ok(&[
            "oras",
            "discover",
            "--plain-http",
            "--format",
            "json",
            image,
        ]);
        serde_json::from_slice(&out.stdout).expect("oras discover --format json")
    }

    /// Digests of the notation signatures listed for `image`.
    fn notation_signatures(&self, image: &str) -> Vec<String> {
        self.discover(image)["referrers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["artifactType"] == NOTARY)
            .map(|r| r["digest"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Pushes two images to `addr` and signs them every way: (app, multi, app's SBOM digest).
pub(crate) fn signed_source(tools: &Tools, addr: &str) -> (Generated, Generated, String) {
    let specs = vec![
        ImageSpec::new(
            "team/app",
            "1.0",
            Kind::Oci,
            Arch::Single,
            vec![LayerSpec::seeded(71, 200 * KIB)],
        ),
        ImageSpec::new(
            "team/multi",
            "2.0",
            Kind::Oci,
            Arch::MultiArch,
            vec![LayerSpec::seeded(72, 100 * KIB)],
        ),
    ];
    let mut images = generator::push(addr, &specs);
    let multi = images.pop().unwrap();
    let app = images.pop().unwrap();
    let sbom = tools.sign_all(&format!("{addr}/team/app@{}", app.digest));
    tools.ok(&[
        "notation",
        "sign",
        "--insecure-registry",
        &format!("{addr}/team/multi@{}", multi.digest),
    ]);
    (app, multi, sbom)
}

pub(crate) fn write_list(dir: &Path, name: &str, addr: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("{addr}/team/app:1.0\n{addr}/team/multi:2.0\n"),
    )
    .unwrap();
    path
}

fn sync(list: &Path, to: &str, insecure: &[&str], extra: &[&str]) -> Output {
    let mut cmd = airlift();
    cmd.args(["mirror", "sync", "--list"])
        .arg(list)
        .args(["--to", to, "--progress", "none", "--json"])
        .args(extra);
    for i in insecure {
        cmd.args(["--insecure-registry", i]);
    }
    run_with_timeout(&mut cmd, TIMEOUT)
}

fn sync_ok(list: &Path, to: &str, insecure: &[&str]) -> Value {
    let out = sync(list, to, insecure, &[]);
    assert_exit(&out, 0);
    json_report(&out)
}

/// Referrers in a report (entries with `referrer_of`).
fn referrer_count(report: &Value) -> usize {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i.get("referrer_of").is_some())
        .count()
}

#[test]
fn signatures_attestations_and_sboms_travel_with_mirror_sync() {
    let tools = Tools::new();
    let dist = TestRegistry::start();
    let refreg = RefReg::start(&tools.forky);
    let work = tempfile::tempdir().unwrap();
    for (name, source) in [
        ("distribution", dist.addr()),
        ("referrers API", refreg.addr.clone()),
    ] {
        let (app, multi, sbom) = signed_source(&tools, &source);
        let list = write_list(
            work.path(),
            &format!("{}.txt", name.replace(' ', "-")),
            &source,
        );
        // Into a registry without the referrers API and into one with it.
        let dist_target = TestRegistry::start();
        let ref_target = RefReg::start(&tools.forky);
        for target in [dist_target.addr(), ref_target.addr.clone()] {
            let context = format!("{name} -> {target}");
            let to = format!("{target}/mirror");
            let report = sync_ok(&list, &to, &[&source, &target]);
            // Six referrers of app (two cosign signatures, an attestation, a notation
            // signature, the SBOM and its signature) and multi's notation signature.
            assert_eq!(referrer_count(&report), 7, "{context}: {report:#}");
            let image = format!("{to}/team/app@{}", app.digest);
            tools.verify_all(&image, &sbom, &context);
            let multi_ref = format!("{to}/team/multi@{}", multi.digest);
            tools.ok(&["notation", "verify", "--insecure-registry", &multi_ref]);

            // A signature the site adds survives a re-sync, which copies nothing.
            tools.ok(&["notation", "sign", "--insecure-registry", &image]);
            let before = tools.notation_signatures(&image);
            assert_eq!(before.len(), 2, "{context}: {before:?}");
            let report = sync_ok(&list, &to, &[&source, &target]);
            assert_eq!(report["blobs_transferred"], 0, "{context}: {report:#}");
            let mut after = tools.notation_signatures(&image);
            after.sort();
            let mut before = before;
            before.sort();
            assert_eq!(before, after, "{context}: the site's signature was dropped");
            tools.verify_all(&image, &sbom, &format!("{context}, re-synced"));
        }
    }
}

#[test]
fn signatures_travel_through_a_bundle_and_a_site_signature_survives_a_reload() {
    let tools = Tools::new();
    let source = TestRegistry::start();
    let (app, _multi, sbom) = signed_source(&tools, &source.addr());
    let work = tempfile::tempdir().unwrap();
    let list = write_list(work.path(), "images.txt", &source.addr());
    let bundle = work.path().join("signed.tar.zst");
    let mut cmd = airlift();
    cmd.args(["bundle", "create", "--list"])
        .arg(&list)
        .arg("-o")
        .arg(&bundle)
        .args(["--insecure-registry", &source.addr(), "--progress", "none"]);
    assert_exit(&run_with_timeout(&mut cmd, TIMEOUT), 0);

    // inspect names each image's signatures and SBOMs.
    let out = run_with_timeout(airlift().args(["bundle", "inspect"]).arg(&bundle), TIMEOUT);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("+ {SPDX}")), "{text}");
    assert!(text.contains(&format!("+ {NOTARY}")), "{text}");

    // Unpacked as a user would (`zstd -d | tar -x`), the layout lists the referrers in its
    // index.json, so `oras discover --oci-layout` finds the SBOM and its signature.
    let layout = tools.path("layout");
    std::fs::create_dir(&layout).unwrap();
    let mut unpack = Command::new("sh");
    unpack
        .arg("-c")
        .arg(r#"zstd -q -d < "$1" | tar -x -C "$2""#)
        .arg("sh")
        .arg(&bundle)
        .arg(&layout);
    assert_exit(&run_with_timeout(&mut unpack, TIMEOUT), 0);
    let inside = format!("{}/layout@{}", tools.inside, app.digest);
    let out = tools.ok(&[
        "oras",
        "discover",
        "--oci-layout",
        "--format",
        "json",
        &inside,
    ]);
    let tree: Value = serde_json::from_slice(&out.stdout).expect("oras discover --format json");
    let listed = tree["referrers"].to_string();
    assert!(listed.contains(&sbom), "{tree:#}");
    assert!(listed.contains(NOTARY), "{tree:#}");

    let site = TestRegistry::start();
    let state = work.path().join("state");
    let load = || {
        let mut cmd = airlift();
        cmd.args(["bundle", "load"])
            .arg(&bundle)
            .args(["--to", &format!("{}/site", site.addr())])
            .arg("--state-dir")
            .arg(&state)
            .args([
                "--insecure-registry",
                &site.addr(),
                "--progress",
                "none",
                "--json",
            ]);
        run_with_timeout(&mut cmd, TIMEOUT)
    };
    let out = load();
    assert_exit(&out, 0);
    assert_eq!(referrer_count(&json_report(&out)), 7, "{}", describe(&out));
    let image = format!("{}/site/team/app@{}", site.addr(), app.digest);
    tools.verify_all(&image, &sbom, "after bundle load");

    tools.ok(&["notation", "sign", "--insecure-registry", &image]);
    let mut before = tools.notation_signatures(&image);
    assert_eq!(before.len(), 2, "{before:?}");
    assert_exit(&load(), 0);
    let mut after = tools.notation_signatures(&image);
    before.sort();
    after.sort();
    assert_eq!(
        before, after,
        "the site's signature was dropped by a re-load"
    );
}

#[test]
fn referrers_none_copies_images_only_and_signatures_copies_no_sbom() {
    let tools = Tools::new();
    let source = TestRegistry::start();
    let (app, _multi, _sbom) = signed_source(&tools, &source.addr());
    let work = tempfile::tempdir().unwrap();
    let list = write_list(work.path(), "images.txt", &source.addr());

    let none = TestRegistry::start();
    let out = sync(
        &list,
        &format!("{}/m", none.addr()),
        &[&source.addr(), &none.addr()],
        &["--referrers", "none"],
    );
    assert_exit(&out, 0);
    assert_eq!(referrer_count(&json_report(&out)), 0);
    let tags = http_get(&format!("http://{}/v2/m/team/app/tags/list", none.addr())).unwrap();
    let tags: Value = serde_json::from_slice(&tags).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1.0"]), "{tags}");

    let sigs = TestRegistry::start();
    let out = sync(
        &list,
        &format!("{}/m", sigs.addr()),
        &[&source.addr(), &sigs.addr()],
        &["--referrers", "signatures"],
    );
    assert_exit(&out, 0);
    let report = json_report(&out);
    let types: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["artifact_type"].as_str())
        .collect();
    assert!(!types.contains(&SPDX), "{report:#}");
    // cosign's signature, attestation and legacy signature, notation's, and multi's.
    assert_eq!(referrer_count(&report), 5, "{report:#}");
    let image = format!("{}/m/team/app@{}", sigs.addr(), app.digest);
    tools.ok(&["notation", "verify", "--insecure-registry", &image]);

    // A YAML list's policy, global and per image, wins over the command line's default.
    let yaml = work.path().join("images.yaml");
    let addr = source.addr();
    std::fs::write(
        &yaml,
        format!(
            "referrers: none\nimages:\n  - {addr}/team/app:1.0\n  - source: {addr}/team/multi:2.0\n    referrers: signatures\n"
        ),
    )
    .unwrap();
    let listed = TestRegistry::start();
    let out = sync(
        &yaml,
        &format!("{}/m", listed.addr()),
        &[&source.addr(), &listed.addr()],
        &[],
    );
    assert_exit(&out, 0);
    let report = json_report(&out);
    let of: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["referrer_of"].as_str())
        .collect();
    assert_eq!(of, [format!("{addr}/team/multi:2.0")], "{report:#}");
}

/// buildx-style attestation manifests (platform `unknown/unknown`, naming the child they
/// attest) in an index: `--platform` keeps those of the kept platforms and drops the others.
/// No buildx here, so the index and attestations are made by hand in buildx's shape.
#[test]
fn platform_filter_keeps_the_attestations_of_kept_platforms() {
    let source = TestRegistry::start();
    let addr = source.addr();
    let multi = generator::push(
        &addr,
        &[ImageSpec::new(
            "team/built",
            "1",
            Kind::Oci,
            Arch::MultiArch,
            vec![LayerSpec::seeded(73, 50 * KIB)],
        )],
    )
    .pop()
    .unwrap();
    let config = generator::push_blob(&addr, "team/built", b"{}");
    let mut index: Value = serde_json::from_slice(&multi.manifest).unwrap();
    let mut attestations = Vec::new();
    for (child, platform) in multi.manifests.iter().zip(&multi.platforms) {
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[{{"name":"{platform}","digest":{{"sha256":"{}"}}}}],"predicate":{{}}}}"#,
            child.trim_start_matches("sha256:")
        );
        let layer = generator::push_blob(&addr, "team/built", statement.as_bytes());
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer, "size": statement.len(),
                        "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}],
        }))
        .unwrap();
        let digest = crate::support::digest_of(&manifest);
        generator::put_manifest(
            &addr,
            "team/built",
            &digest,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        );
        index["manifests"].as_array_mut().unwrap().push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": manifest.len(),
            "annotations": {"vnd.docker.reference.digest": child, "vnd.docker.reference.type": "attestation-manifest"},
            "platform": {"architecture": "unknown", "os": "unknown"},
        }));
        attestations.push(digest);
    }
    let index = serde_json::to_vec(&index).unwrap();
    generator::put_manifest(&addr, "team/built", "1-att", &multi.media_type, &index);

    let work = tempfile::tempdir().unwrap();
    let list = work.path().join("built.txt");
    std::fs::write(&list, format!("{addr}/team/built:1-att\n")).unwrap();
    let target = TestRegistry::start();
    let out = sync(
        &list,
        &format!("{}/m", target.addr()),
        &[&addr, &target.addr()],
        &["--platform", "linux/amd64"],
    );
    assert_exit(&out, 0);
    let copied: Value = serde_json::from_slice(&crate::support::skopeo_inspect_raw(&format!(
        "{}/m/team/built:1-att",
        target.addr()
    )))
    .unwrap();
    let digests: Vec<&str> = copied["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    // amd64 is the generator's first platform.
    assert_eq!(
        digests,
        [multi.manifests[0].as_str(), attestations[0].as_str()],
        "{copied}"
    );
    assert!(
        crate::support::try_skopeo_inspect_raw(&format!(
            "{}/m/team/built@{}",
            target.addr(),
            attestations[0]
        ))
        .is_ok(),
        "the kept attestation manifest is not at the target"
    );
    assert!(
        crate::support::try_skopeo_inspect_raw(&format!(
            "{}/m/team/built@{}",
            target.addr(),
            attestations[1]
        ))
        .is_err(),
        "the dropped platform's attestation was copied"
    );
}

/// At a registry with the referrers API the signatures have no tags: the inventory finds them
/// through the API, so a differential bundle against it leaves their blobs out.
#[test]
fn inventory_includes_referrers_listed_by_the_referrers_api() {
    let tools = Tools::new();
    let source = RefReg::start(&tools.forky);
    let (app, _multi, sbom) = signed_source(&tools, &source.addr);
    let work = tempfile::tempdir().unwrap();
    let list = write_list(work.path(), "images.txt", &source.addr);
    let site = RefReg::start(&tools.forky);
    sync_ok(
        &list,
        &format!("{}/m", site.addr),
        &[&source.addr, &site.addr],
    );

    let inventory = work.path().join("inventory.json");
    let mut cmd = airlift();
    cmd.args(["inventory", "--registry", &format!("{}/m", site.addr), "-o"])
        .arg(&inventory)
        .args(["--insecure-registry", &site.addr]);
    assert_exit(&run_with_timeout(&mut cmd, TIMEOUT), 0);
    let inv: Value = serde_json::from_slice(&std::fs::read(&inventory).unwrap()).unwrap();
    let manifests = inv["manifests"].to_string();
    assert!(manifests.contains(&app.digest), "{inv:#}");
    assert!(
        manifests.contains(&sbom),
        "the SBOM is not in the inventory: {inv:#}"
    );

    // A differential bundle against that inventory carries no blob of the signed image and
    // its referrers (they are all at the site), only their manifests.
    let bundle = work.path().join("diff.tar.zst");
    let mut cmd = airlift();
    cmd.args(["bundle", "create", "--list"])
        .arg(&list)
        .arg("-o")
        .arg(&bundle)
        .arg("--exclude-from")
        .arg(&inventory)
        .args(["--insecure-registry", &source.addr, "--progress", "none"]);
    assert_exit(&run_with_timeout(&mut cmd, TIMEOUT), 0);
    let out = run_with_timeout(
        airlift().args(["bundle", "inspect", "--json"]).arg(&bundle),
        TIMEOUT,
    );
    assert_exit(&out, 0);
    let summary = json_report(&out);
    for image in summary["images"].as_array().unwrap() {
        assert_eq!(image["bundle_blobs"], 0, "{image}");
    }
}
