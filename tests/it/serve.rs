//! `airlift bundle serve` against real clients: a bundle made by `bundle create` from a real
//! registry is served, and skopeo 1.22 and podman (Debian forky) pull from it into a real
//! `docker-registry` or their own store, digests checked; ranges, writes, errors and paging are
//! checked over HTTP with ureq; the server's peak RSS (`VmHWM`) is read from `/proc` while it
//! serves a 100 MiB blob; SIGTERM must end it with exit 0.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bundle::Fixture;
use crate::siteconfig::{chroot_tempdir, podman_pull};
use crate::support::generator::{self, Arch, Generated, ImageSpec, Kind, LayerSpec};
use crate::support::{Forky, TestRegistry, airlift, describe, run_with_timeout};
use crate::support::{digest_of, skopeo_inspect_raw};
use crate::tls::Certs;

/// Upper bound for one client run against the server (debug build, shared cores).
const TIMEOUT: Duration = Duration::from_secs(300);
const MIB: u64 = 1024 * 1024;

/// A running `airlift bundle serve VOLUMES --listen 127.0.0.1:0 ARGS`, in a working directory
/// and `TMPDIR` of its own (both must stay empty); killed on drop unless stopped.
struct Served {
    child: Option<Child>,
    /// `http(s)://127.0.0.1:PORT`.
    url: String,
    dir: tempfile::TempDir,
}

impl Served {
    fn start(volumes: &[PathBuf], args: &[&str]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        for d in ["cwd", "tmp"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let log = dir.path().join("stderr");
        let child = airlift()
            .args(["bundle", "serve"])
            .args(volumes)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir.path().join("cwd"))
            .env("TMPDIR", dir.path().join("tmp"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("run airlift bundle serve");
        let mut served = Served {
            child: Some(child),
            url: String::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = served.log();
            if let Some(line) = text.lines().find(|l| l.starts_with("serving ")) {
                let url = line
                    .split_once(" on ")
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .unwrap_or_else(|| panic!("no address in {line:?}"));
                served.url = url.to_owned();
                return served;
            }
            if let Some(status) = served.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("bundle serve exited with {status} before serving:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "bundle serve did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `127.0.0.1:PORT`.
    fn addr(&self) -> &str {
        self.url.split_once("://").unwrap().1
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// What the server printed so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Peak RSS of the server so far, in KiB (`VmHWM`).
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in /proc/{}/status", self.pid()))
    }

    /// Files the server created in its working directory and `TMPDIR`.
    fn files_created(&self) -> Vec<PathBuf> {
        ["cwd", "tmp"]
            .iter()
            .flat_map(|d| std::fs::read_dir(self.dir.path().join(d)).unwrap())
            .map(|e| e.unwrap().path())
            .collect()
    }

    /// Sends SIGTERM and waits; returns the exit status and everything printed.
    fn stop(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("bundle serve did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.log())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// A response: status, headers we look at, body.
struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The code of the first OCI error of the body.
    fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// `METHOD url` with `headers`, body read in full (bounded).
fn call(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let request = ureq::http::Request::builder().method(method).uri(url);
    let request = headers
        .iter()
        .fold(request, |r, (k, v)| r.header(*k, *v))
        .body(())
        .unwrap();
    let mut response = agent()
        .run(request)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .body_mut()
        .with_config()
        .limit(256 * MIB)
        .read_to_vec()
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// forky's `skopeo` (1.22) with `ARGS`, to completion.
fn forky_skopeo(forky: &Forky, args: &[&str]) -> std::process::Output {
    run_with_timeout(forky.command().args(args), TIMEOUT)
}

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(out.status.success(), "{what}:\n{}", describe(out));
}

/// `skopeo copy --all` of `image` from the served bundle into `target` under `prefix/`.
fn copy_all(
    forky: &Forky,
    served: &Served,
    image: &Generated,
    target: &TestRegistry,
    prefix: &str,
) -> std::process::Output {
    forky_skopeo(
        forky,
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{}", image.reference(served.addr())),
            &format!(
                "docker://{}/{prefix}/{}:{}",
                target.addr(),
                image.repository,
                image.tag
            ),
        ],
    )
}

/// Files under `dir` with their sizes.
fn tree(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            out.extend(tree(&e.path()));
        } else {
            out.push((e.path(), meta.len()));
        }
    }
    out.sort();
    out
}

#[test]
fn skopeo_copies_every_image_from_the_served_bundle_with_digests_kept() {
    let forky = Forky::get();
    let f = Fixture::small();
    let volumes = f.create_ok(&f.list, "release.tar.zst", &[]);
    let before = tree(f.dir.path());
    let served = Served::start(&volumes, &[]);
    let url = served.url.clone();
    assert!(
        served.log().contains(&format!(
            "serving {} images from 1 volume on http://127.0.0.1:",
            f.images.len()
        )),
        "{}",
        served.log()
    );

    // The API version check, the catalog and the tags, as a registry answers them.
    let base = call("GET", &format!("{url}/v2/"), &[]);
    assert_eq!(base.status, 200);
    assert_eq!(
        base.header("docker-distribution-api-version"),
        "registry/2.0"
    );
    let mut repos: Vec<&str> = f.images.iter().map(|i| i.repository.as_str()).collect();
    repos.sort();
    let catalog = call("GET", &format!("{url}/v2/_catalog"), &[]).json();
    assert_eq!(catalog["repositories"], serde_json::json!(repos));
    let page = call("GET", &format!("{url}/v2/_catalog?n=2"), &[]);
    assert_eq!(page.json()["repositories"], serde_json::json!(repos[..2]));
    let next = format!(
        "</v2/_catalog?n=2&last={}>; rel=\"next\"",
        repos[1].replace('/', "%2F")
    );
    assert_eq!(page.header("link"), next);
    let page2 = call(
        "GET",
        &format!("{url}/v2/_catalog?n=2&last={}", repos[1]),
        &[],
    );
    assert_eq!(page2.json()["repositories"], serde_json::json!(repos[2..4]));
    for image in &f.images {
        let tags = call(
            "GET",
            &format!("{url}/v2/{}/tags/list", image.repository),
            &[],
        );
        assert_eq!(
            tags.json(),
            serde_json::json!({"name": image.repository, "tags": [image.tag]})
        );
    }

    // skopeo reads every manifest as stored, by tag and by digest.
    for image in &f.images {
        let by_tag = forky_skopeo(
            &forky,
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{}", image.reference(served.addr())),
            ],
        );
        assert_ok(&by_tag, "skopeo inspect --raw");
        assert_eq!(by_tag.stdout, image.manifest, "{}", image.repository);
        let head = call(
            "HEAD",
            &format!("{url}/v2/{}/manifests/{}", image.repository, image.digest),
            &[],
        );
        assert_eq!(head.status, 200);
        assert_eq!(head.header("docker-content-digest"), image.digest);
        assert_eq!(head.header("content-type"), image.media_type);
        assert_eq!(
            head.header("content-length"),
            image.manifest.len().to_string()
        );
        assert!(head.body.is_empty());
    }

    // skopeo copy --all into a real registry keeps every digest.
    let target = TestRegistry::start();
    for image in &f.images {
        assert_ok(
            &copy_all(&forky, &served, image, &target, "copied"),
            "skopeo copy --all",
        );
        let copied = skopeo_inspect_raw(&format!(
            "{}/copied/{}:{}",
            target.addr(),
            image.repository,
            image.tag
        ));
        assert_eq!(digest_of(&copied), image.digest, "{}", image.repository);
    }
    let stored = target.stored_blobs();
    for image in &f.images {
        for (blob, _) in &image.blobs {
            assert!(
                stored.contains(blob),
                "{blob} of {} not copied",
                image.repository
            );
        }
    }

    // Ranges: the right bytes, 206 and Content-Range; 416 past the end.
    let big = f
        .images
        .iter()
        .flat_map(|i| i.blobs.iter().map(move |b| (i, b)))
        .max_by_key(|(_, (_, size))| *size)
        .unwrap();
    let (image, (digest, size)) = big;
    let blob_url = format!("{url}/v2/{}/blobs/{digest}", image.repository);
    let whole = crate::support::http_get(&format!(
        "{}/v2/{}/blobs/{digest}",
        f.source.url(),
        image.repository
    ))
    .unwrap();
    assert_eq!(whole.len() as u64, *size);
    let all = call("GET", &blob_url, &[]);
    assert_eq!(all.status, 200);
    assert_eq!(digest_of(&all.body), *digest);
    assert_eq!(all.header("docker-content-digest"), digest.as_str());
    let (a, b) = (size / 3, size / 3 + 100_000);
    let part = call(
        "GET",
        &blob_url,
        &[("Range", &format!("bytes={a}-{}", b - 1))],
    );
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        format!("bytes {a}-{}/{size}", b - 1)
    );
    assert_eq!(part.body, whole[a as usize..b as usize]);
    let tail = call("GET", &blob_url, &[("Range", "bytes=-1000")]);
    assert_eq!(
        (tail.status, tail.body.as_slice()),
        (206, &whole[whole.len() - 1000..])
    );
    let past = call("GET", &blob_url, &[("Range", &format!("bytes={size}-"))]);
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), format!("bytes */{size}"));
    let head = call("HEAD", &blob_url, &[]);
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, size.to_string().as_str())
    );

    // Pull only: every write gets 405 and an OCI error body.
    let repo = &f.images[0].repository;
    for (method, path) in [
        ("PUT", format!("/v2/{repo}/manifests/new")),
        (
            "DELETE",
            format!("/v2/{repo}/manifests/{}", f.images[0].digest),
        ),
        ("POST", format!("/v2/{repo}/blobs/uploads/")),
        ("PATCH", format!("/v2/{repo}/blobs/uploads/some-id")),
        ("DELETE", format!("/v2/{repo}/blobs/{digest}")),
    ] {
        let r = call(method, &format!("{url}{path}"), &[]);
        assert_eq!(
            (r.status, r.code()),
            (405, "UNSUPPORTED".into()),
            "{method} {path}"
        );
        assert!(
            r.json()["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(method)
        );
    }
    // Unknown names, tags and blobs, with their OCI codes.
    let other = f
        .images
        .iter()
        .find(|i| !i.blobs.iter().any(|b| &b.0 == digest))
        .unwrap();
    for (path, status, code) in [
        (
            format!("/v2/{repo}/manifests/no-such-tag"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        ("/v2/no/such/manifests/1".to_string(), 404, "NAME_UNKNOWN"),
        (
            format!("/v2/{}/blobs/{digest}", other.repository),
            404,
            "BLOB_UNKNOWN",
        ),
        (
            format!("/v2/{repo}/blobs/sha256:nothex"),
            400,
            "DIGEST_INVALID",
        ),
        ("/v2/Bad/manifests/1".to_string(), 400, "NAME_INVALID"),
    ] {
        let r = call("GET", &format!("{url}{path}"), &[]);
        assert_eq!((r.status, r.code()), (status, code.into()), "GET {path}");
    }

    // Nothing written anywhere; SIGTERM ends it cleanly.
    assert!(
        served.files_created().is_empty(),
        "{:?}",
        served.files_created()
    );
    assert_eq!(tree(f.dir.path()), before);
    let (status, log) = served.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.lines().last().unwrap().starts_with("stopped: "),
        "{log}"
    );
    assert!(
        log.contains(&format!("\"GET /v2/{repo}/manifests/no-such-tag\" 404 ")),
        "{log}"
    );
}

#[test]
fn twenty_concurrent_pulls_all_succeed() {
    let forky = Forky::get();
    let f = Fixture::small();
    let volumes = f.create_ok(&f.list, "release.tar.zst", &[]);
    let served = Served::start(&volumes, &["--prefix", "site/mirror"]);
    let target = TestRegistry::start();
    let outs: Vec<(usize, std::process::Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (forky, served, target, image) =
                    (&forky, &served, &target, &f.images[i % f.images.len()]);
                s.spawn(move || {
                    let out = forky_skopeo(
                        forky,
                        &[
                            "copy",
                            "--all",
                            "--src-tls-verify=false",
                            "--dest-tls-verify=false",
                            &format!(
                                "docker://{}/site/mirror/{}:{}",
                                served.addr(),
                                image.repository,
                                image.tag
                            ),
                            &format!(
                                "docker://{}/pull{i}/{}:{}",
                                target.addr(),
                                image.repository,
                                image.tag
                            ),
                        ],
                    );
                    (i, out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in &outs {
        assert_ok(out, &format!("pull {i}"));
        let image = &f.images[i % f.images.len()];
        let copied = skopeo_inspect_raw(&format!(
            "{}/pull{i}/{}:{}",
            target.addr(),
            image.repository,
            image.tag
        ));
        assert_eq!(digest_of(&copied), image.digest, "pull {i}");
    }
    let (status, log) = served.stop();
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn podman_pulls_from_the_served_bundle() {
    let forky = Forky::get();
    let f = Fixture::small();
    let volumes = f.create_ok(&f.list, "release.tar.zst", &[]);
    let served = Served::start(&volumes, &["--flatten"]);
    let dir = chroot_tempdir(&forky);
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            served.addr()
        ),
    )
    .unwrap();
    // A Docker image and an OCI index, flattened to their last path component.
    for repository in ["harness/base", "harness/multi-oci"] {
        let image = f
            .images
            .iter()
            .find(|i| i.repository == repository)
            .unwrap();
        let last = repository.rsplit('/').next().unwrap();
        let reference = format!("{}/{last}:{}", served.addr(), image.tag);
        let store = dir.path().join(format!("store-{last}"));
        let out = podman_pull(&forky, &conf, &store, None, &reference);
        assert_ok(&out, &format!("podman pull {reference}"));
    }
    let (status, log) = served.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("\"GET /v2/base/manifests/"), "{log}");
}

#[test]
fn memory_stays_flat_serving_a_100_mib_blob() {
    let f = Fixture::of(&[ImageSpec::new(
        "big/layer",
        "1",
        Kind::Oci,
        Arch::Single,
        vec![LayerSpec::seeded(9301, 100 * MIB)],
    )]);
    let volumes = f.create_ok(&f.list, "big.tar.zst", &[]);
    let served = Served::start(&volumes, &[]);
    let image = &f.images[0];
    let (layer, size) = image
        .blobs
        .iter()
        .find(|(d, _)| image.layers.contains(d))
        .unwrap();
    assert!(*size > 100 * MIB);
    let baseline = served.peak_rss_kib();
    // Two clients at once, each reading slowly at first so chunks queue up at the server.
    let peak = std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let url = format!("{}/v2/big/layer/blobs/{layer}", served.url);
                s.spawn(move || {
                    let mut response = agent().get(&url).call().unwrap();
                    assert_eq!(response.status().as_u16(), 200);
                    let mut body = response.body_mut().with_config().limit(u64::MAX).reader();
                    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
                    let mut buf = vec![0; 64 * 1024];
                    let mut total = 0u64;
                    loop {
                        let n = body.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        if total < 4 * MIB {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        ctx.update(&buf[..n]);
                        total += n as u64;
                    }
                    let hex: String = ctx
                        .finish()
                        .as_ref()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    (total, format!("sha256:{hex}"))
                })
            })
            .collect();
        for r in readers {
            let (total, digest) = r.join().unwrap();
            assert_eq!((total, &digest), (*size, layer));
        }
        served.peak_rss_kib()
    });
    eprintln!(
        "bundle serve peak RSS: {baseline} KiB after start, {peak} KiB after serving two 100 MiB reads"
    );
    assert!(
        peak < 80 * 1024,
        "peak RSS {peak} KiB while serving a {size}-byte blob twice"
    );
    assert!(served.files_created().is_empty());
    let (status, log) = served.stop();
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn serves_https_with_its_certificate_and_the_client_trusts_the_ca() {
    let forky = Forky::get();
    let f = Fixture::of(&generator::small_set()[..2]);
    let volumes = f.create_ok(&f.list, "release.tar.zst", &[]);
    let certs = Certs::new(&["127.0.0.1"]);
    let served = Served::start(
        &volumes,
        &[
            "--tls-cert",
            certs.server_cert.to_str().unwrap(),
            "--tls-key",
            certs.server_key.to_str().unwrap(),
        ],
    );
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.log()
    );
    let dir = chroot_tempdir(&forky);
    let cert_dir = dir.path().join("certs");
    std::fs::create_dir(&cert_dir).unwrap();
    std::fs::copy(&certs.ca_file, cert_dir.join("ca.crt")).unwrap();
    let target = TestRegistry::start();
    for image in &f.images {
        let src = format!("docker://{}", image.reference(served.addr()));
        // Verified against the CA: no --tls-verify=false.
        let out = forky_skopeo(
            &forky,
            &[
                "copy",
                "--all",
                "--src-cert-dir",
                &forky.inside(&cert_dir),
                "--dest-tls-verify=false",
                &src,
                &format!(
                    "docker://{}/{}:{}",
                    target.addr(),
                    image.repository,
                    image.tag
                ),
            ],
        );
        assert_ok(&out, &format!("skopeo copy {src} with the CA"));
        let copied = skopeo_inspect_raw(&format!(
            "{}/{}:{}",
            target.addr(),
            image.repository,
            image.tag
        ));
        assert_eq!(digest_of(&copied), image.digest);
    }
    // Without the CA the certificate is refused: the TLS is real.
    let out = forky_skopeo(
        &forky,
        &[
            "inspect",
            "--raw",
            &format!("docker://{}", f.images[0].reference(served.addr())),
        ],
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        describe(&out)
    );
    let (status, log) = served.stop();
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn images_missing_a_volume_are_named_and_the_rest_served() {
    let f = Fixture::small();
    let volumes = f.create_ok(&f.list, "split.tar.zst", &["--max-volume-size", "2M"]);
    assert!(volumes.len() > 2, "{volumes:?}");
    let served = Served::start(&volumes[..1], &["--keep-host"]);
    let log = served.log();
    let skipped: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("not serving "))
        .collect();
    assert!(!skipped.is_empty(), "{log}");
    assert!(
        skipped.iter().all(|l| l.contains(": needs volume(s) ")),
        "{log}"
    );
    let host = f.source.addr().replace(':', "_");
    let catalog = call("GET", &format!("{}/v2/_catalog", served.url), &[]).json();
    let served_repos: Vec<&str> = catalog["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(served_repos.len() + skipped.len(), f.images.len(), "{log}");
    assert!(!served_repos.is_empty(), "{log}");
    for image in &f.images {
        let name = format!("{host}/{}", image.repository);
        let is_skipped = skipped
            .iter()
            .any(|l| l.contains(&format!("/{}:{}:", image.repository, image.tag)));
        let r = call(
            "GET",
            &format!("{}/v2/{name}/manifests/{}", served.url, image.tag),
            &[],
        );
        if is_skipped {
            assert_eq!((r.status, r.code()), (404, "NAME_UNKNOWN".into()), "{name}");
        } else {
            assert_eq!(r.status, 200, "{name}");
            assert_eq!(r.body, image.manifest);
        }
    }
    let (status, log) = served.stop();
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn signatures_and_sboms_verify_against_the_served_bundle() {
    use crate::referrers::{Tools, signed_source, write_list};
    let tools = Tools::new();
    let source = TestRegistry::start();
    let (app, _multi, sbom) = signed_source(&tools, &source.addr());
    let work = tempfile::tempdir().unwrap();
    let list = write_list(work.path(), "images.txt", &source.addr());
    let bundle = work.path().join("signed.tar.zst");
    let create = run_with_timeout(
        airlift()
            .args(["bundle", "create", "--list"])
            .arg(&list)
            .arg("-o")
            .arg(&bundle)
            .args(["--insecure-registry", &source.addr(), "--progress", "none"]),
        TIMEOUT,
    );
    assert!(create.status.success(), "{}", describe(&create));
    drop(source);
    let served = Served::start(&[bundle], &["--prefix", "site"]);
    assert!(
        served.log().contains(" of them)"),
        "the referrers are counted: {}",
        served.log()
    );
    // cosign (sigstore bundles through the referrers API, and `.sig` tags), notation and
    // oras discover, all against the server.
    let image = format!("{}/site/team/app@{}", served.addr(), app.digest);
    tools.verify_all(&image, &sbom, "served");
    let filtered = call(
        "GET",
        &format!(
            "{}/v2/site/team/app/referrers/{}?artifactType=application/spdx%2Bjson",
            served.url, app.digest
        ),
        &[],
    );
    assert_eq!(filtered.status, 200);
    assert_eq!(filtered.header("oci-filters-applied"), "artifactType");
    let listed = filtered.json()["manifests"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["digest"], sbom.as_str());
    let (status, log) = served.stop();
    assert_eq!(status.code(), Some(0), "{log}");
}
