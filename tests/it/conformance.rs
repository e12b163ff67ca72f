//! Conformance with the registries users run, reproduced with real parts: one scenario (sync,
//! no-op re-sync, bundle create and load) run against each set-up — distribution behind
//! `nginx` proxies that move upload `Location`s to another origin or to plain HTTP, and
//! distribution's `redirect` storage middleware with nginx serving the storage directory as
//! the CDN; go-containerregistry's registry (`crane registry serve`) as source and target;
//! and, through the fault proxy, Amazon ECR's answers to chunk uploads. nginx logs the `Authorization` header it receives, so the tests prove that no
//! credential leaves the origin it was issued for.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::crane::CraneRegistry;
use crate::support::generator::{self, Arch, Generated, ImageSpec, Kind, LayerSpec};
use crate::support::nginx::Nginx;
use crate::support::proxy::{Action, FaultProxy, Faults, Matcher, Rule};
use crate::support::{
    TestRegistry, describe, digest_of, free_port, json_report, number, try_skopeo_inspect_raw,
};
use crate::tls::{Certs, Env, PASSWORD, USER, all_output, assert_copied, assert_ok};

mod helper;
mod limits;
mod mounts;

const MIB: u64 = 1024 * 1024;

/// Two small images and one with a layer above the 8 MiB chunk size, so uploads use both a
/// single `PUT` and chunked `PATCH`es.
fn specs() -> Vec<ImageSpec> {
    let mut specs: Vec<ImageSpec> = generator::small_set().into_iter().take(2).collect();
    specs.push(ImageSpec::new(
        "conformance/big",
        "1",
        Kind::Oci,
        Arch::Single,
        vec![LayerSpec::seeded(9001, 9 * MIB)],
    ));
    specs
}

/// Images pushed to a source registry, and the list naming them at `name` (the address
/// airlift is given, which may be a proxy in front of the registry).
struct Images {
    images: Vec<Generated>,
    list: PathBuf,
    _dir: tempfile::TempDir,
}

impl Images {
    fn push(registry: &TestRegistry, name: &str) -> Images {
        Images::push_specs(registry, name, &specs())
    }

    fn push_specs(registry: &TestRegistry, name: &str, specs: &[ImageSpec]) -> Images {
        let images = generator::push(&registry.addr(), specs);
        let dir = tempfile::tempdir().unwrap();
        let list = generator::write_list(dir.path(), &images, name);
        Images {
            images,
            list,
            _dir: dir,
        }
    }
}

/// The scenario every set-up runs: `mirror sync` to `to`, the same sync again (nothing to
/// copy), then `bundle create` of the list and `bundle load` to `to/loaded`. `extra` goes
/// to every command. Each step must succeed; returns the outputs for further checks.
fn scenario(env: &Env, list: &Path, to: &str, extra: &[&str]) -> Vec<Output> {
    let mut outs = Vec::new();
    let sync = |outs: &mut Vec<Output>| {
        let mut args = vec!["--json", "--progress", "none"];
        args.extend_from_slice(extra);
        let out = env.sync(list, to, &args);
        assert_ok(&out);
        outs.push(out);
    };
    sync(&mut outs);
    sync(&mut outs);
    let resync = json_report(&outs[1]);
    assert_eq!(
        number(&resync, "bytes_transferred"),
        0,
        "re-sync copied bytes:\n{}",
        describe(&outs[1])
    );
    let bundle = env.path("bundle.tar.zst");
    let mut args = vec!["bundle", "create", "--list", list.to_str().unwrap()];
    args.extend_from_slice(&["-o", bundle.to_str().unwrap(), "--progress", "none"]);
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert_ok(&out);
    outs.push(out);
    // One volume is the file itself; more are `bundle.NNN.tar.zst`.
    let mut volumes: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
        .filter(|p| p.contains("/bundle.") && p.ends_with(".tar.zst"))
        .collect();
    volumes.sort();
    assert!(!volumes.is_empty(), "no volumes in {}", bundle.display());
    let state = env.path("load-state");
    let loaded = format!("{to}/loaded");
    let mut args = vec!["bundle", "load"];
    args.extend(volumes.iter().map(String::as_str));
    args.extend_from_slice(&["--to", &loaded, "--state-dir", state.to_str().unwrap()]);
    args.extend_from_slice(&["--progress", "none"]);
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert_ok(&out);
    outs.push(out);
    outs
}

/// An htpasswd file nginx reads, for [`USER`].
fn htpasswd(dir: &Path) -> PathBuf {
    let path = dir.join("htpasswd");
    std::fs::write(&path, format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
    path
}

/// Asserts that `lines` of an nginx `airlift` log are not empty and none carries a credential.
fn assert_no_credentials(what: &str, lines: &[String]) {
    assert!(!lines.is_empty(), "{what} was never reached");
    for line in lines {
        assert!(
            line.ends_with("auth=[-]"),
            "{what} received a credential: {line}"
        );
    }
}

/// Artifactory/Nexus behind a proxy: the registry's upload `Location`s are rewritten to
/// another origin. Pushes still work, and the credentials of the front stay there.
#[test]
fn upload_locations_on_another_origin_get_no_credentials() {
    let source = TestRegistry::start();
    let images = Images::push(&source, &source.addr());
    let registry = TestRegistry::start();
    let (front, other) = (free_port(), free_port());
    let pw = tempfile::tempdir().unwrap();
    let servers = format!(
        "server {{ listen 127.0.0.1:{front}; access_log {{dir}}/front.log airlift;
           auth_basic \"registry\"; auth_basic_user_file {};
           location / {{ proxy_pass {}; proxy_set_header Host $http_host;
             proxy_redirect ~^http://[^/]+/(.*)$ http://127.0.0.1:{other}/$1; }} }}
         server {{ listen 127.0.0.1:{other}; access_log {{dir}}/other.log airlift;
           location / {{ proxy_pass {}; proxy_set_header Host $http_host; }} }}",
        htpasswd(pw.path()).display(),
        registry.url(),
        registry.url(),
    );
    let nginx = Nginx::start(&servers, &[front, other]);
    let env = Env::new();
    let to = format!("127.0.0.1:{front}");
    assert_ok(&env.login(&to, USER, PASSWORD, &[]));
    scenario(&env, &images.list, &to, &[]);
    assert_copied(&registry, &images.images);

    let front_log = nginx.log("front");
    assert!(
        front_log.iter().any(|l| l.contains("auth=[Basic ")),
        "the front never got the credentials: {front_log:?}"
    );
    let other_log = nginx.log("other");
    for method in ["PATCH ", "PUT "] {
        assert!(
            other_log.iter().any(|l| l.starts_with(method)),
            "no {method}on the other origin: {other_log:?}"
        );
    }
    assert_no_credentials("the other origin", &other_log);
}

/// A TLS front whose upload `Location`s point at plain HTTP: refused, naming the flag that
/// allows it; with that flag the push works and the credential does not follow.
#[test]
fn upload_locations_downgraded_to_http_are_refused() {
    let source = TestRegistry::start();
    let images = Images::push(&source, &source.addr());
    let registry = TestRegistry::start();
    let certs = Certs::new(&["127.0.0.1"]);
    let (front, plain) = (free_port(), free_port());
    let servers = format!(
        "server {{ listen 127.0.0.1:{front} ssl; access_log {{dir}}/front.log airlift;
           ssl_certificate {}; ssl_certificate_key {};
           auth_basic \"registry\"; auth_basic_user_file {};
           location / {{ proxy_pass {}; proxy_set_header Host $http_host;
             proxy_redirect ~^http://[^/]+/(.*)$ http://127.0.0.1:{plain}/$1; }} }}
         server {{ listen 127.0.0.1:{plain}; access_log {{dir}}/plain.log airlift;
           location / {{ proxy_pass {}; proxy_set_header Host $http_host; }} }}",
        certs.server_cert.display(),
        certs.server_key.display(),
        htpasswd(certs.dir.path()).display(),
        registry.url(),
        registry.url(),
    );
    let nginx = Nginx::start(&servers, &[front, plain]);
    let env = Env::new();
    let to = format!("127.0.0.1:{front}");
    let ca = certs.ca_file.to_str().unwrap();
    assert_ok(&env.login(&to, USER, PASSWORD, &["--ca-file", ca]));

    let out = env.sync(&images.list, &to, &["--ca-file", ca]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let shown = all_output(&out);
    assert!(
        shown.contains("from HTTPS to plain HTTP")
            && shown.contains(&format!("--insecure-registry 127.0.0.1:{plain}")),
        "{}",
        describe(&out)
    );
    assert!(nginx.log("plain").is_empty(), "{:?}", nginx.log("plain"));

    let allowed = format!("127.0.0.1:{plain}");
    scenario(
        &env,
        &images.list,
        &to,
        &["--ca-file", ca, "--insecure-registry", &allowed],
    );
    assert_copied(&registry, &images.images);
    assert_no_credentials("the plain-HTTP origin", &nginx.log("plain"));
}

/// Docker Hub, ghcr.io, ECR: blob `GET`s redirected to a CDN. distribution's `redirect`
/// storage middleware sends them to nginx serving its storage directory; the source wants
/// credentials, the CDN gets none, and `Range` requests work through the redirect.
#[test]
fn blobs_redirected_to_a_cdn_get_no_credentials() {
    let cdn = free_port();
    let registry = TestRegistry::start_with(&format!(
        "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: http://127.0.0.1:{cdn}/\n"
    ));
    let front = free_port();
    let pw = tempfile::tempdir().unwrap();
    let servers = format!(
        "server {{ listen 127.0.0.1:{front}; access_log {{dir}}/front.log airlift;
           auth_basic \"registry\"; auth_basic_user_file {};
           location / {{ proxy_pass {}; proxy_set_header Host $http_host; proxy_redirect off; }} }}
         server {{ listen 127.0.0.1:{cdn}; access_log {{dir}}/cdn.log airlift;
           location / {{ root {}; }} }}",
        htpasswd(pw.path()).display(),
        registry.url(),
        registry.storage_dir().display(),
    );
    // The images are pushed straight to the registry; reads go through the front.
    let source = format!("127.0.0.1:{front}");
    let images = Images::push(&registry, &source);
    let nginx = Nginx::start(&servers, &[front, cdn]);
    let target = TestRegistry::start();
    let env = Env::new();
    assert_ok(&env.login(&source, USER, PASSWORD, &[]));
    scenario(&env, &images.list, &target.addr(), &[]);
    assert_copied(&target, &images.images);
    let cdn_log = nginx.log("cdn");
    assert!(
        cdn_log
            .iter()
            .any(|l| l.starts_with("GET ") && l.contains(" 200 ")),
        "no blob came from the CDN: {cdn_log:?}"
    );
    assert_no_credentials("the CDN", &cdn_log);

    // A ranged read through the redirect: what a resumed download asks for.
    let (digest, size) = images.images[2]
        .blobs
        .iter()
        .max_by_key(|(_, size)| *size)
        .cloned()
        .unwrap();
    let range = ranged_read(&source, &images.images[2].repository, &digest, size - 1000);
    assert_eq!(range, 1000, "bytes after the offset");
    assert!(
        nginx.log("cdn").iter().any(|l| l.contains(" 206 ")),
        "no 206 from the CDN: {:?}",
        nginx.log("cdn")
    );
    assert_no_credentials("the CDN", &nginx.log("cdn"));
}

/// Reads `digest` from `offset` through the client with [`USER`]'s credentials; returns
/// how many bytes came.
fn ranged_read(registry: &str, repository: &str, digest: &str, offset: u64) -> usize {
    use airlift::registry::{ClientOptions, Credential, CredentialSource, RegistryClient};
    use futures_util::StreamExt;
    struct One(String);
    impl CredentialSource for One {
        fn credential(&self, registry: &str) -> Option<Credential> {
            (registry == self.0).then(|| Credential {
                username: USER.to_owned(),
                password: PASSWORD.to_owned(),
            })
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = RegistryClient::new(ClientOptions {
            credentials: Some(std::sync::Arc::new(One(registry.to_owned()))),
            ..Default::default()
        })
        .unwrap();
        let repo = client.repo(registry, repository);
        let digest: airlift::Digest = digest.parse().unwrap();
        let body = repo.get_blob(&digest, offset, None).await.unwrap();
        assert!(
            body.partial,
            "the CDN answered the Range with the whole blob"
        );
        let mut n = 0;
        let mut s = body.stream;
        while let Some(chunk) = s.next().await {
            n += chunk.unwrap().len();
        }
        n
    })
}

/// An HTTPS registry whose token realm is plain HTTP: the password would cross the network
/// in clear text, so airlift refuses before sending it.
#[test]
fn plain_http_token_realm_of_an_https_registry_is_refused() {
    let server = crate::tokenauth::TokenServer::start(60, std::time::Duration::ZERO);
    let certs = Certs::new(&["127.0.0.1"]);
    let registry = TestRegistry::builder()
        .http_extra(&certs.http_tls(false))
        .config_extra(&server.registry_auth())
        .start();
    let env = Env::new();
    let ca = certs.ca_file.to_str().unwrap();
    let out = env.login(&registry.addr(), USER, PASSWORD, &["--ca-file", ca]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        all_output(&out).contains(&format!(
            "refused to follow http://{}/token from HTTPS to plain HTTP",
            server.addr
        )),
        "{}",
        describe(&out)
    );
    assert!(server.issued().is_empty(), "the token server was asked");
}

/// Asserts that every image is at `registry` (under `prefix`) with its digest, per skopeo.
fn assert_served(registry: &str, prefix: &str, images: &[Generated]) {
    for image in images {
        let reference = format!("{registry}/{prefix}{}:{}", image.repository, image.tag);
        let raw = try_skopeo_inspect_raw(&reference).unwrap_or_else(|e| panic!("{reference}: {e}"));
        assert_eq!(digest_of(&raw), image.digest, "{reference}");
    }
}

/// go-containerregistry's registry answers chunk `PATCH`es with `204`: as the target of
/// sync and bundle load, then as the source.
#[test]
fn go_containerregistry_as_target_and_source() {
    let source = TestRegistry::start();
    let images = Images::push(&source, &source.addr());
    let crane = CraneRegistry::start();
    scenario(&Env::new(), &images.list, &crane.addr(), &[]);
    assert_served(&crane.addr(), "", &images.images);
    assert_served(&crane.addr(), "loaded/", &images.images);
    assert!(
        crane.log().contains("PATCH"),
        "no chunked upload: {}",
        crane.log()
    );

    let dir = tempfile::tempdir().unwrap();
    let list = generator::write_list(dir.path(), &images.images, &crane.addr());
    let target = TestRegistry::start();
    scenario(&Env::new(), &list, &target.addr(), &[]);
    assert_copied(&target, &images.images);
}

/// Amazon ECR answers a chunk `PATCH` with `201` and a `Range` that stays at the first
/// chunk (reproduced by the fault proxy in front of distribution): the upload goes on from
/// what was sent, and the closing `PUT` carries the rest.
#[test]
fn ecr_style_chunk_answers_201_with_a_stuck_range() {
    let specs = [ImageSpec::new(
        "conformance/ecr",
        "1",
        Kind::Docker,
        Arch::Single,
        vec![LayerSpec::seeded(9002, 17 * MIB)],
    )];
    let source = TestRegistry::start();
    let images = Images::push_specs(&source, &source.addr(), &specs);
    let target = TestRegistry::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ecr = Rule::new(
        Matcher::any()
            .method("PATCH")
            .path_contains("/blobs/uploads/"),
        Action::Rewrite {
            status: Some(201),
            headers: vec![("range".to_owned(), Some("0-8388607".to_owned()))],
        },
    );
    let proxy = rt.block_on(FaultProxy::start(
        target.addr().parse().unwrap(),
        Faults::default().with_rule(ecr),
    ));
    let to = proxy.addr().to_string();
    scenario(&Env::new(), &images.list, &to, &[]);
    assert_copied(&target, &images.images);
    // Two PATCHes for sync's upload, one (all but the last chunk) for bundle load's, each
    // answered the ECR way.
    assert!(
        proxy.stats().faults_injected >= 3,
        "{:?}",
        proxy.stats().faults_injected
    );
}

/// Nexus, registry.redhat.io and header-stripping proxies answer without
/// `Docker-Content-Digest`: nginx hides it in front of the source and the target.
#[test]
fn registries_without_docker_content_digest() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let (src_front, dst_front) = (free_port(), free_port());
    let server = |port: u16, upstream: &TestRegistry| {
        format!(
            "server {{ listen 127.0.0.1:{port}; access_log {{dir}}/{port}.log airlift;
               location / {{ proxy_pass {}; proxy_set_header Host $http_host;
                 proxy_hide_header Docker-Content-Digest; }} }}\n",
            upstream.url()
        )
    };
    let servers = server(src_front, &source) + &server(dst_front, &target);
    let images = Images::push(&source, &format!("127.0.0.1:{src_front}"));
    let nginx = Nginx::start(&servers, &[src_front, dst_front]);
    scenario(
        &Env::new(),
        &images.list,
        &format!("127.0.0.1:{dst_front}"),
        &[],
    );
    assert_copied(&target, &images.images);
    assert!(
        nginx
            .log(&dst_front.to_string())
            .iter()
            .any(|l| l.starts_with("HEAD ") && l.contains("/manifests/")),
        "the target was never asked with HEAD"
    );
}

/// Harbor answers a mount from a project the robot account cannot read with 401 (the fault
/// proxy in front of distribution): the blob is uploaded instead, and the registry is not
/// asked to mount again in that run.
#[test]
fn refused_mounts_fall_back_to_uploads_once() {
    let source = TestRegistry::start();
    // The small set shares base layers between repositories: the target would mount them.
    let specs: Vec<ImageSpec> = generator::small_set();
    let images = Images::push_specs(&source, &source.addr(), &specs);
    let target = TestRegistry::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let refuse = Rule::new(
        Matcher::any().method("POST").path_contains("mount="),
        Action::status(401),
    );
    let proxy = rt.block_on(FaultProxy::start(
        target.addr().parse().unwrap(),
        Faults::default().with_rule(refuse),
    ));
    let env = Env::new();
    let to = proxy.addr().to_string();
    // One blob at a time, so no second mount is in flight when the first is refused.
    let out = env.sync(&images.list, &to, &["--jobs", "1", "--progress", "none"]);
    assert_ok(&out);
    assert_copied(&target, &images.images);
    assert_eq!(
        proxy.stats().faults_injected,
        1,
        "mounts were asked for again after the refusal"
    );
}

/// Docker Hub counts manifest `GET`s against the pull limit, not `HEAD`s: a re-sync that
/// copies nothing makes no manifest `GET` at the source (counted in nginx's access log in
/// front of it).
#[test]
fn a_no_op_resync_makes_no_manifest_gets_at_the_source() {
    let source = TestRegistry::start();
    let front = free_port();
    let servers = format!(
        "server {{ listen 127.0.0.1:{front}; access_log {{dir}}/source.log airlift;
           location / {{ proxy_pass {}; proxy_set_header Host $http_host; }} }}",
        source.url()
    );
    let images = Images::push_specs(
        &source,
        &format!("127.0.0.1:{front}"),
        &generator::small_set(),
    );
    let nginx = Nginx::start(&servers, &[front]);
    let target = TestRegistry::start();
    let env = Env::new();
    let manifest_gets = || {
        nginx
            .log("source")
            .iter()
            .filter(|l| l.starts_with("GET ") && l.contains("/manifests/"))
            .count()
    };
    let to = format!("{}/mirror", target.addr());
    assert_ok(&env.sync(&images.list, &to, &["--progress", "none"]));
    let first = manifest_gets();
    assert!(first >= images.images.len(), "{first} manifest GETs");
    let out = env.sync(&images.list, &to, &["--json", "--progress", "none"]);
    assert_ok(&out);
    let report = json_report(&out);
    assert_eq!(number(&report, "bytes_transferred"), 0, "{report}");
    assert!(
        number(&report, "bytes_skipped") >= generator::unique_blob_bytes(&images.images),
        "{report}"
    );
    assert_eq!(
        manifest_gets() - first,
        0,
        "manifest GETs at the source on a no-op re-sync: {:?}",
        nginx.log("source")
    );
}

/// A registry out of pull budget answers `429`: after the retries the message says the
/// registry's limit and when to retry.
#[test]
fn rate_limited_pulls_say_when_to_retry() {
    let source = TestRegistry::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let limited = Rule::new(
        Matcher::any().method("GET").path_contains("/manifests/"),
        Action::too_many_requests(1),
    );
    let proxy = rt.block_on(FaultProxy::start(
        source.addr().parse().unwrap(),
        Faults::default().with_rule(limited),
    ));
    let specs: Vec<ImageSpec> = generator::small_set().into_iter().take(1).collect();
    let images = Images::push_specs(&source, &proxy.addr().to_string(), &specs);
    let target = TestRegistry::start();
    let out = Env::new().sync(&images.list, &target.addr(), &["--progress", "none"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        all_output(&out).contains("returned 429")
            && all_output(&out).contains("rate limit was reached: retry in 1 s"),
        "{}",
        describe(&out)
    );
}

/// Old tags on Docker Hub and Quay are schema 1 (`v1+prettyjws`), whose digest is that of the
/// JWS payload: distribution with schema 1 enabled serves one made by `skopeo copy --format
/// v2s1`. airlift refuses it clearly, exit 1, never as corruption (exit 3).
#[test]
fn schema1_manifests_are_refused_not_called_corrupt() {
    let registry = TestRegistry::start_with("compatibility:\n  schema1:\n    enabled: true\n");
    let specs: Vec<ImageSpec> = generator::small_set().into_iter().take(1).collect();
    let images = generator::push(&registry.addr(), &specs);
    let modern = images[0].reference(&registry.addr());
    let old = format!("{}/legacy/s1:old", registry.addr());
    let out = crate::support::run_with_timeout(
        crate::support::skopeo()
            .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
            .args(["--format", "v2s1"])
            .arg(format!("docker://{modern}"))
            .arg(format!("docker://{old}")),
        std::time::Duration::from_secs(120),
    );
    assert_ok(&out);
    let raw = try_skopeo_inspect_raw(&old).unwrap();
    assert!(
        String::from_utf8_lossy(&raw).contains("\"signatures\""),
        "not a signed schema 1 manifest: {}",
        String::from_utf8_lossy(&raw)
    );
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, format!("{old}\n{modern}\n")).unwrap();
    let target = TestRegistry::start();
    let out = Env::new().sync(&list, &target.addr(), &["--progress", "none"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let shown = all_output(&out);
    assert!(
        shown.contains("schema 1 manifests are deprecated and not supported"),
        "{}",
        describe(&out)
    );
    assert!(!shown.contains("digest mismatch"), "{}", describe(&out));
    // The other image of the list is copied all the same.
    assert_copied(&target, &images);
}

/// Harbor (and GitLab, Artifactory) create no project on push: the upload is answered `404`
/// (the fault proxy in front of distribution), and the error says what to create.
#[test]
fn a_missing_target_project_is_named() {
    let source = TestRegistry::start();
    let specs: Vec<ImageSpec> = generator::small_set().into_iter().take(1).collect();
    let images = Images::push_specs(&source, &source.addr(), &specs);
    let target = TestRegistry::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let missing = Rule::new(
        Matcher::any()
            .method("POST")
            .path_contains("/blobs/uploads/"),
        Action::status(404),
    );
    let proxy = rt.block_on(FaultProxy::start(
        target.addr().parse().unwrap(),
        Faults::default().with_rule(missing),
    ));
    let to = format!("{}/site", proxy.addr());
    let said = format!(
        "has no repository `site/{}` (or no project `site` for it): create the \
         project/repository there first",
        images.images[0].repository
    );
    // A dry run finds it out too (its push check opens an upload and cancels it), writing
    // nothing.
    let out = Env::new().sync(&images.list, &to, &["--progress", "none", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let line = format!(
        ": error: cannot push to {to}/{0}: {1} {said}",
        images.images[0].repository,
        proxy.addr()
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&line),
        "{}",
        describe(&out)
    );
    assert!(target.stored_blobs().is_empty(), "a dry run wrote");
    let out = Env::new().sync(&images.list, &to, &["--progress", "none"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(all_output(&out).contains(&said), "{}", describe(&out));
}

/// Harbor allows `/v2/_catalog` to admins only (nginx refuses it here): `inventory --list`
/// takes the repositories from the list instead, with their tags and digests.
#[test]
fn inventory_without_catalog_rights_uses_the_list() {
    let source = TestRegistry::start();
    let images = Images::push(&source, &source.addr());
    let registry = TestRegistry::start();
    let front = free_port();
    let servers = format!(
        "server {{ listen 127.0.0.1:{front}; access_log {{dir}}/front.log airlift;
           location /v2/_catalog {{ return 403; }}
           location / {{ proxy_pass {}; proxy_set_header Host $http_host; }} }}",
        registry.url(),
    );
    let _nginx = Nginx::start(&servers, &[front]);
    let env = Env::new();
    let site = format!("127.0.0.1:{front}/site");
    assert_ok(&env.sync(&images.list, &site, &["--progress", "none"]));

    let out_file = env.path("inventory.json");
    let out = env.run(&[
        "inventory",
        "--registry",
        &site,
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    let list = images.list.to_str().unwrap();
    let out = env.run(&[
        "inventory",
        "--registry",
        &site,
        "--list",
        list,
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let inv: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    for image in &images.images {
        let repo = format!("site/{}", image.repository);
        assert_eq!(
            inv["repositories"][&repo]["tags"][&image.tag], image.digest,
            "{repo}: {inv}"
        );
    }
}

/// An index inside an index (as some build tools push attestations or per-variant indexes):
/// copied whole, the inner index and its images before the outer one.
#[test]
fn nested_indexes_are_copied() {
    let source = TestRegistry::start();
    let specs: Vec<ImageSpec> = generator::small_set();
    let images = generator::push(&source.addr(), &specs);
    let inner = images
        .iter()
        .find(|i| i.media_type == generator::OCI_INDEX)
        .expect("an OCI index in the small set");
    let outer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": generator::OCI_INDEX,
        "manifests": [{
            "mediaType": generator::OCI_INDEX,
            "digest": inner.digest,
            "size": inner.manifest.len(),
        }],
    }))
    .unwrap();
    let url = format!("{}/v2/{}/manifests/nested", source.url(), inner.repository);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .put(&url)
        .header("Content-Type", generator::OCI_INDEX)
        .send(&outer[..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "PUT {url}");
    let reference = format!("{}/{}:nested", source.addr(), inner.repository);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, format!("{reference}\n")).unwrap();
    let target = TestRegistry::start();
    scenario(&Env::new(), &list, &target.addr(), &[]);
    let copied = format!("{}/{}:nested", target.addr(), inner.repository);
    let raw = try_skopeo_inspect_raw(&copied).unwrap_or_else(|e| panic!("{copied}: {e}"));
    assert_eq!(raw, outer, "{copied}");
    assert_copied(&target, std::slice::from_ref(inner));
}

/// The reference set-ups: distribution 2.8 plain, with htpasswd behind TLS, and with token
/// auth (the suite's token server), each as the target of the whole scenario.
#[test]
fn distribution_plain_tls_basic_and_token_auth() {
    let source = TestRegistry::start();
    let images = Images::push(&source, &source.addr());

    let plain = TestRegistry::start();
    scenario(&Env::new(), &images.list, &plain.addr(), &[]);
    assert_copied(&plain, &images.images);

    let certs = Certs::new(&["127.0.0.1"]);
    let tls = crate::tls::tls_registry(&certs, true, false);
    let env = Env::new();
    let ca = certs.ca_file.to_str().unwrap();
    assert_ok(&env.login(&tls.addr(), USER, PASSWORD, &["--ca-file", ca]));
    scenario(&env, &images.list, &tls.addr(), &["--ca-file", ca]);
    assert_copied(&tls, &images.images);

    let server = crate::tokenauth::TokenServer::start(60, std::time::Duration::ZERO);
    let token = TestRegistry::start_with(&server.registry_auth());
    let env = Env::new();
    assert_ok(&env.login(&token.addr(), USER, PASSWORD, &[]));
    scenario(&env, &images.list, &token.addr(), &[]);
    assert_copied(&token, &images.images);
    assert!(!server.tokens().is_empty(), "no token was issued");
}

/// The token realm on another host (Docker Hub's auth.docker.io, GitLab) is reached with the
/// registry's TLS settings, as docker does: its CA is only in the registry's `certs.d`
/// directory. nginx serves the suite's token server over TLS on another port.
#[test]
fn a_token_realm_on_another_host_uses_the_registry_tls_settings() {
    let server = crate::tokenauth::TokenServer::start(60, std::time::Duration::ZERO);
    let certs = Certs::new(&["127.0.0.1"]);
    let realm = free_port();
    let servers = format!(
        "server {{ listen 127.0.0.1:{realm} ssl; access_log {{dir}}/realm.log airlift;
           ssl_certificate {}; ssl_certificate_key {};
           location / {{ proxy_pass http://{}; }} }}",
        certs.server_cert.display(),
        certs.server_key.display(),
        server.addr,
    );
    let nginx = Nginx::start(&servers, &[realm]);
    let auth = server.registry_auth().replace(
        &format!("http://{}/token", server.addr),
        &format!("https://127.0.0.1:{realm}/token"),
    );
    let registry = TestRegistry::builder()
        .http_extra(&certs.http_tls(false))
        .config_extra(&auth)
        .start();
    let env = Env::new();
    let dir = env.certs_d().join(registry.addr());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&certs.ca_file, dir.join("ca.crt")).unwrap();
    assert_ok(&env.login(&registry.addr(), USER, PASSWORD, &[]));
    assert!(
        nginx
            .log("realm")
            .iter()
            .any(|l| l.starts_with("GET /token")),
        "the realm was not asked: {:?}",
        nginx.log("realm")
    );
    assert!(!server.tokens().is_empty(), "no token was issued");
}
