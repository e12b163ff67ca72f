//! `airlift mirror config` against the real consumers: images are mirrored with `mirror
//! sync`, the source registry is stopped, and containerd 2.1 (`ctr images pull --hosts-dir`)
//! and podman 5 (`CONTAINERS_REGISTRIES_CONF`) from the forky chroot pull the *source*
//! references, which only works through the mirror. k3s, OpenShift, pull secret and image map
//! outputs are parsed and compared with the shapes `docs/site-config.md` documents.
//!
//! containerd and podman need `/proc` (and `/sys`, `/dev`): they run in a private mount
//! namespace (`unshare --mount`) where those are mounted into the chroot, so the mounts vanish
//! with the process and nothing leaks into the shared chroot; [`Containerd`] kills its daemon
//! on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::support::generator::{self, Arch, Generated, ImageSpec, Kind, LayerSpec};
use crate::support::{Forky, TestRegistry, describe, run_with_timeout};
use crate::tls::{Certs, Env, assert_ok, tls_registry};

/// Upper bound for one pull by a consumer.
const PULL_TIMEOUT: Duration = Duration::from_secs(180);

/// Two small images: a Docker single-platform image and an OCI index (linux/amd64 and
/// linux/arm64), in nested repositories so every mapping mode moves them differently.
fn specs() -> Vec<ImageSpec> {
    vec![
        ImageSpec::new(
            "site/tools/base",
            "1.0",
            Kind::Docker,
            Arch::Single,
            vec![
                LayerSpec::base(1, 64 * 1024),
                LayerSpec::seeded(201, 32 * 1024),
            ],
        ),
        ImageSpec::new(
            "site/app",
            "2",
            Kind::Oci,
            Arch::MultiArch,
            vec![LayerSpec::seeded(202, 48 * 1024)],
        ),
    ]
}

/// A source registry with [`specs`] and a list naming them, mirrored by the tests.
struct Source {
    registry: Option<TestRegistry>,
    addr: String,
    images: Vec<Generated>,
    list: PathBuf,
    _dir: tempfile::TempDir,
}

impl Source {
    fn new() -> Source {
        let registry = TestRegistry::start();
        let addr = registry.addr();
        let images = generator::push(&addr, &specs());
        let dir = tempfile::tempdir().unwrap();
        let list = generator::write_list(dir.path(), &images, &addr);
        Source {
            registry: Some(registry),
            addr,
            images,
            list,
            _dir: dir,
        }
    }

    /// Stops the source registry: from now on only the mirror can serve its images.
    fn stop(&mut self) {
        self.registry = None;
        assert!(
            crate::support::http_get(&format!("http://{}/v2/", self.addr)).is_err(),
            "the source registry still answers"
        );
    }

    fn references(&self) -> Vec<String> {
        self.images
            .iter()
            .map(|i| i.reference(&self.addr))
            .collect()
    }

    fn list(&self) -> &str {
        self.list.to_str().unwrap()
    }
}

/// `airlift mirror sync` of the source's list to `to` with `extra` flags.
fn sync(env: &Env, source: &Source, to: &str, extra: &[&str]) {
    let mut args = vec!["--insecure-registry", source.addr.as_str()];
    args.extend_from_slice(extra);
    assert_ok(&env.sync(&source.list, to, &args));
}

/// `airlift mirror config --for RUNTIME --list LIST --to TO EXTRA`.
fn config(env: &Env, source: &Source, runtime: &str, to: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "mirror",
        "config",
        "--for",
        runtime,
        "--list",
        source.list(),
        "--to",
        to,
    ];
    args.extend_from_slice(extra);
    env.run(&args)
}

/// A directory under the chroot (so its programs can read it), removed on drop.
pub(crate) fn chroot_tempdir(forky: &Forky) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("airlift-siteconfig-")
        .tempdir_in(forky.root().join("tmp"))
        .expect("tempdir in the chroot")
}

/// `PROGRAM` in the chroot, in a private mount namespace with `/proc`, `/sys` and `/dev`
/// mounted into the chroot (gone when the process ends).
fn with_proc(forky: &Forky, program: &str) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            r#"mount -t proc proc "$0/proc" && mount --rbind /sys "$0/sys" && mount --rbind /dev "$0/dev" && exec chroot "$0" "$@""#,
        )
        .arg(forky.root())
        .arg(program)
        .stdin(Stdio::null());
    cmd
}

/// A containerd daemon in the chroot with its own root, state and socket; the snapshotters
/// that cannot work here (and the CRI, which is not needed) are disabled. Killed on drop.
struct Containerd {
    child: Child,
    socket: String,
    dir: tempfile::TempDir,
    forky: Forky,
}

impl Containerd {
    fn start() -> Containerd {
        let forky = Forky::get();
        let dir = chroot_tempdir(&forky);
        let inside = forky.inside(dir.path());
        let socket = format!("{inside}/containerd.sock");
        let config = format!(
            r#"version = 3
root = "{inside}/root"
state = "{inside}/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.nri.v1.nri",
]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[plugins."io.containerd.transfer.v1.local"]
  [[plugins."io.containerd.transfer.v1.local".unpack_config]]
    platform = "linux/amd64"
    snapshotter = "native"
"#
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = with_proc(&forky, "containerd")
            .arg("--config")
            .arg(format!("{inside}/config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot run unshare/chroot containerd");
        let mut daemon = Containerd {
            child,
            socket,
            dir,
            forky,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("containerd exited with {status}:\n{}", daemon.log());
            }
            let out = daemon.ctr(&["version"]).output().unwrap();
            if out.status.success() {
                return daemon;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not answer within 30 s:\n{}\n{}",
                describe(&out),
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr --address SOCKET ARGS` in the chroot.
    fn ctr(&self, args: &[&str]) -> Command {
        let mut cmd = self.forky.program("ctr");
        cmd.args(["--address", &self.socket]).args(args);
        cmd
    }

    /// `ctr images pull --hosts-dir DIR --plain-http REF` (native snapshotter: overlayfs
    /// mounts are not available everywhere the tests run).
    fn pull(&self, hosts_dir: &Path, reference: &str) -> Output {
        let hosts = self.forky.inside(hosts_dir);
        run_with_timeout(
            &mut self.ctr(&[
                "images",
                "pull",
                "--snapshotter",
                "native",
                "--hosts-dir",
                &hosts,
                "--plain-http",
                reference,
            ]),
            PULL_TIMEOUT,
        )
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // The daemon is the process spawned (unshare, sh and chroot exec into it): killing
        // it ends its mount namespace and the mounts with it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn containerd_pulls_source_references_through_the_mirror() {
    let forky = Forky::get();
    let env = Env::new();
    let mut source = Source::new();
    let mirror = TestRegistry::start();
    let m = mirror.addr();
    let prefix_to = format!("{m}/mirror/site");
    let keep_to = format!("{m}/kept");
    // And a TLS mirror with a private CA, which the hosts directory carries along.
    let certs = Certs::new(&["127.0.0.1"]);
    let tls = tls_registry(&certs, false, false);
    let tls_to = format!("{}/secure", tls.addr());
    let ca = certs.ca_file.to_str().unwrap();
    sync(&env, &source, &prefix_to, &[]);
    sync(&env, &source, &keep_to, &["--keep-host"]);
    sync(&env, &source, &tls_to, &["--ca-file", ca]);

    let out_dir = chroot_tempdir(&forky);
    let prefix_dir = out_dir.path().join("prefix");
    let keep_dir = out_dir.path().join("keep-host");
    let tls_dir = out_dir.path().join("tls");
    for (to, dir, extra) in [
        (&prefix_to, &prefix_dir, vec![]),
        (&keep_to, &keep_dir, vec!["--keep-host"]),
        (&tls_to, &tls_dir, vec!["--ca-file", ca]),
    ] {
        let mut args = vec!["-o", dir.to_str().unwrap()];
        args.extend(extra);
        assert_ok(&config(&env, &source, "containerd", to, &args));
    }
    let secure = std::fs::read_to_string(tls_dir.join(&source.addr).join("hosts.toml")).unwrap();
    assert!(
        secure.contains(&format!("[host.\"https://{}/v2/secure\"]", tls.addr()))
            && secure.contains("ca = \"mirror-ca.pem\""),
        "{secure}"
    );
    assert_eq!(
        std::fs::read(tls_dir.join(&source.addr).join("mirror-ca.pem")).unwrap(),
        std::fs::read(&certs.ca_file).unwrap()
    );
    let hosts = std::fs::read_to_string(prefix_dir.join(&source.addr).join("hosts.toml")).unwrap();
    assert_eq!(
        hosts,
        format!(
            "server = \"https://{}\"\n\n[host.\"http://{m}/v2/mirror/site\"]\ncapabilities = [\"pull\", \"resolve\"]\noverride_path = true\n",
            source.addr
        )
    );
    let kept = std::fs::read_to_string(keep_dir.join(&source.addr).join("hosts.toml")).unwrap();
    let host_component = source.addr.replace(':', "_");
    assert!(
        kept.contains(&format!("[host.\"http://{m}/v2/kept/{host_component}\"]")),
        "{kept}"
    );

    // --flatten cannot be a containerd mirror.
    let flat = config(
        &env,
        &source,
        "containerd",
        &format!("{m}/flat"),
        &["--flatten", "-o", "-"],
    );
    assert_eq!(flat.status.code(), Some(2), "{}", describe(&flat));
    assert!(
        String::from_utf8_lossy(&flat.stderr)
            .contains("--flatten cannot be expressed as a containerd mirror"),
        "{}",
        describe(&flat)
    );

    source.stop();
    let daemon = Containerd::start();
    for dir in [&prefix_dir, &keep_dir, &tls_dir] {
        for (image, reference) in source.images.iter().zip(source.references()) {
            let out = daemon.pull(dir, &reference);
            assert!(
                out.status.success(),
                "ctr pull {reference} with {}:\n{}\n{}",
                dir.display(),
                describe(&out),
                daemon.log()
            );
            let listed = daemon.ctr(&["images", "ls"]).output().unwrap();
            let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
            assert!(
                listed
                    .lines()
                    .any(|l| l.starts_with(&reference) && l.contains(&image.digest)),
                "{reference} {} not in:\n{listed}",
                image.digest
            );
            assert_ok(
                &daemon
                    .ctr(&["images", "rm", "--sync", &reference])
                    .output()
                    .unwrap(),
            );
        }
    }
}

/// `podman pull REF` in the chroot with `registries.conf` as the only registries file, a
/// throwaway vfs store under `store`, and `--cert-dir` when given (also used by the `serve`
/// tests).
pub(crate) fn podman_pull(
    forky: &Forky,
    conf: &Path,
    store: &Path,
    cert_dir: Option<&Path>,
    reference: &str,
) -> Output {
    let store = forky.inside(store);
    let mut cmd = with_proc(forky, "podman");
    cmd.env("CONTAINERS_REGISTRIES_CONF", forky.inside(conf))
        .env("HOME", &store)
        .env_remove("XDG_RUNTIME_DIR")
        .args([
            "--storage-driver",
            "vfs",
            "--root",
            &format!("{store}/root"),
            "--runroot",
            &format!("{store}/run"),
            "--tmpdir",
            &format!("{store}/tmp"),
            "--events-backend",
            "none",
            "--cgroup-manager",
            "cgroupfs",
            "pull",
            "--quiet",
        ]);
    if let Some(dir) = cert_dir {
        cmd.arg("--cert-dir").arg(forky.inside(dir));
    }
    cmd.arg(reference);
    run_with_timeout(&mut cmd, PULL_TIMEOUT)
}

#[test]
fn podman_pulls_source_references_through_the_mirror() {
    let forky = Forky::get();
    let env = Env::new();
    let mut source = Source::new();
    // A plain-HTTP mirror for three mappings, and a TLS mirror with a private CA.
    let plain = TestRegistry::start();
    let p = plain.addr();
    let certs = Certs::new(&["127.0.0.1"]);
    let tls = tls_registry(&certs, false, false);
    let t = tls.addr();
    let ca = certs.ca_file.to_str().unwrap();
    let mappings: Vec<(String, Vec<&str>)> = vec![
        (format!("{p}/mirror/site"), vec![]),
        (format!("{p}/kept"), vec!["--keep-host"]),
        (format!("{p}/flat"), vec!["--flatten"]),
        (format!("{t}/secure"), vec!["--ca-file", ca]),
    ];
    let out_dir = chroot_tempdir(&forky);
    let mut confs = Vec::new();
    for (i, (to, extra)) in mappings.iter().enumerate() {
        sync(&env, &source, to, extra);
        let dir = out_dir.path().join(format!("conf{i}"));
        let mut args = extra.clone();
        args.extend(["-o", dir.to_str().unwrap()]);
        assert_ok(&config(&env, &source, "containers", to, &args));
        confs.push(dir.join("50-airlift-mirror.conf"));
    }
    let text = |i: usize| std::fs::read_to_string(&confs[i]).unwrap();
    assert!(
        text(0).contains(&format!("location = \"{p}/mirror/site\"\ninsecure = true")),
        "{}",
        text(0)
    );
    assert!(
        text(2).contains(&format!("prefix = \"{}/site/tools/base\"", source.addr)),
        "{}",
        text(2)
    );
    assert!(
        text(2).contains(&format!("location = \"{p}/flat/base\"")),
        "{}",
        text(2)
    );
    assert!(
        !text(3).contains("insecure"),
        "a verified TLS mirror is not insecure:\n{}",
        text(3)
    );

    // podman reads the mirror's CA from a certs.d-style directory, as a site installs it.
    let cert_dir = out_dir.path().join("certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    std::fs::copy(&certs.ca_file, cert_dir.join("ca.crt")).unwrap();

    source.stop();
    for (i, conf) in confs.iter().enumerate() {
        for (image, reference) in source.images.iter().zip(source.references()) {
            let store = out_dir.path().join(format!("store{i}-{}", image.tag));
            let cert = (i == 3).then_some(cert_dir.as_path());
            let out = podman_pull(&forky, conf, &store, cert, &reference);
            assert!(
                out.status.success(),
                "podman pull {reference} with {}:\n{}\n{}",
                mappings[i].0,
                std::fs::read_to_string(conf).unwrap(),
                describe(&out)
            );
        }
    }
}

/// Parses YAML (one document) as JSON values, for comparison with the documented shape.
fn yaml(text: &[u8]) -> serde_json::Value {
    serde_saphyr::from_slice(text)
        .unwrap_or_else(|e| panic!("not YAML ({e}):\n{}", String::from_utf8_lossy(text)))
}

#[test]
fn k3s_openshift_pull_secret_and_image_map_have_the_documented_shape() {
    let env = Env::new();
    let source = Source::new();
    let certs = Certs::new(&["127.0.0.1"]);
    let mirror = tls_registry(&certs, true, false);
    let m = mirror.addr();
    let ca = certs.ca_file.to_str().unwrap();
    let to = format!("{m}/mirror");
    assert_ok(&env.login(
        &m,
        crate::tls::USER,
        crate::tls::PASSWORD,
        &["--ca-file", ca],
    ));
    sync(&env, &source, &to, &["--ca-file", ca]);
    let s = &source.addr;

    // k3s: the mirror as endpoint, a rewrite for the prefix, its CA, credentials on request.
    let out = config(
        &env,
        &source,
        "k3s",
        &to,
        &["--ca-file", ca, "--with-credentials", "-o", "-"],
    );
    assert_ok(&out);
    assert_eq!(
        yaml(&out.stdout),
        serde_json::json!({
            "mirrors": {s.as_str(): {"endpoint": [format!("https://{m}")], "rewrite": {"^(.*)$": "mirror/$1"}}},
            "configs": {m.as_str(): {
                "tls": {"ca_file": ca},
                "auth": {"username": crate::tls::USER, "password": crate::tls::PASSWORD}
            }}
        })
    );

    // OpenShift: an ImageDigestMirrorSet and, with --tags, an ImageTagMirrorSet.
    let out = config(
        &env,
        &source,
        "openshift",
        &to,
        &["--ca-file", ca, "--tags", "--name", "site"],
    );
    assert_ok(&out);
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    let pairs = serde_json::json!([{"source": s, "mirrors": [to]}]);
    assert_eq!(
        docs,
        [
            serde_json::json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSet",
                "metadata": {"name": "site"}, "spec": {"imageDigestMirrors": pairs}}),
            serde_json::json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageTagMirrorSet",
                "metadata": {"name": "site"}, "spec": {"imageTagMirrors": pairs}}),
        ]
    );

    // Pull secret: mode 0600, and decoded it holds exactly the mirror's credential.
    let dir = env.path("secret");
    let out = config(
        &env,
        &source,
        "pull-secret",
        &to,
        &[
            "--name",
            "mirror-pull",
            "--namespace",
            "apps",
            "-o",
            dir.to_str().unwrap(),
        ],
    );
    assert_ok(&out);
    assert!(out.stdout.is_empty(), "nothing printed: {}", describe(&out));
    let file = dir.join("pull-secret.yaml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let secret = yaml(&std::fs::read(&file).unwrap());
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(
        secret["metadata"],
        serde_json::json!({"name": "mirror-pull", "namespace": "apps"})
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let inner: serde_json::Value = serde_json::from_slice(
        &b64.decode(secret["data"][".dockerconfigjson"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let basic = b64.encode(format!("{}:{}", crate::tls::USER, crate::tls::PASSWORD));
    assert_eq!(
        inner,
        serde_json::json!({"auths": {m.as_str(): {
            "username": crate::tls::USER, "password": crate::tls::PASSWORD, "auth": basic
        }}})
    );

    // Image map: every image, with the digest found on the mirror, and each target by
    // digest is the image that was listed.
    let dir = env.path("map");
    let out = config(
        &env,
        &source,
        "image-map",
        &to,
        &["--ca-file", ca, "--digests", "-o", dir.to_str().unwrap()],
    );
    assert_ok(&out);
    let map: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("image-map.json")).unwrap()).unwrap();
    let images = map["images"].as_array().unwrap();
    assert_eq!(images.len(), source.images.len());
    for (entry, image) in images.iter().zip(&source.images) {
        assert_eq!(entry["source"], image.reference(s));
        assert_eq!(entry["target"], image.reference(&to));
        assert_eq!(entry["digest"], image.digest.as_str());
        assert_eq!(
            entry["targetByDigest"],
            format!("{to}/{}@{}", image.repository, image.digest)
        );
        assert_eq!(
            entry["sourceByDigest"],
            format!("{s}/{}@{}", image.repository, image.digest)
        );
    }
    let kustomize = yaml(&std::fs::read(dir.join("kustomize-images.yaml")).unwrap());
    let mut expected: Vec<serde_json::Value> = source
        .images
        .iter()
        .map(|i| serde_json::json!({"name": format!("{s}/{}", i.repository), "newName": format!("{to}/{}", i.repository)}))
        .collect();
    expected.sort_by_key(|v| v["name"].as_str().unwrap().to_owned());
    assert_eq!(kustomize, serde_json::json!({ "images": expected }));
}

#[test]
fn without_output_dir_a_secret_is_printed_only_when_not_a_terminal_and_many_files_need_o() {
    let env = Env::new();
    let source = Source::new();
    let m = "m.example.com";
    std::fs::write(
        env.docker_config(),
        format!(
            r#"{{"auths":{{"{m}":{{"auth":"{}"}}}}}}"#,
            base64::engine::general_purpose::STANDARD.encode("u:p")
        ),
    )
    .unwrap();
    // stdout is a file here, not a terminal: printing is allowed.
    let out = config(&env, &source, "pull-secret", m, &[]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("kubernetes.io/dockerconfigjson"));
    // On a terminal (script(1) gives it one) the secret is printed only with `-o -`.
    let on_terminal = |extra: &str| {
        let template = env.airlift(&[]);
        let mut cmd = Command::new("script");
        for (k, v) in template.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.arg("-qec")
            .arg(format!(
                "{} mirror config --for pull-secret --list {} --to {m} {extra}",
                env!("CARGO_BIN_EXE_airlift"),
                source.list()
            ))
            .arg("/dev/null");
        run_with_timeout(&mut cmd, Duration::from_secs(60))
    };
    let refused = on_terminal("");
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    let shown = String::from_utf8_lossy(&refused.stdout).into_owned();
    assert!(
        shown.contains("refusing to print credentials on a terminal"),
        "{shown}"
    );
    assert!(!shown.contains("dockerconfigjson"), "{shown}");
    let asked = on_terminal("-o -");
    assert_eq!(asked.status.code(), Some(0), "{}", describe(&asked));
    assert!(String::from_utf8_lossy(&asked.stdout).contains("kubernetes.io/dockerconfigjson"));
    // Several files cannot go to stdout.
    let out = config(&env, &source, "image-map", m, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pass -o DIR"),
        "{}",
        describe(&out)
    );
    // No credential: a usage error naming the registry.
    let out = config(&env, &source, "pull-secret", "other.example.com", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no credential for other.example.com"));
}
