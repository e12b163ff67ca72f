//! TLS end to end: real `docker-registry` processes serving HTTPS with certificates made here
//! ([`pki`]), htpasswd Basic auth behind TLS, `airlift login`/`logout`, `--ca-file`, docker-style
//! `certs.d` directories with client certificates (mutual TLS), and the hints printed for
//! certificate and credential problems.
//!
//! Every command runs in an [`Env`]: its own `HOME`, `DOCKER_CONFIG`, config directory and
//! `certs.d` base (`AIRLIFT_CERTS_DIRS`), so nothing on this machine is read or written.

pub mod pki;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::describe;
use crate::support::generator::{self, Generated, ImageSpec};
use crate::support::{TestRegistry, airlift, run_with_timeout};

/// Upper bound for one airlift run (debug build, shared cores).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// htpasswd user and password, and the bcrypt (cost 4) of the password (as in
/// `registry/authreg.rs`).
pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret-pw";
const HASH: &str = "$2b$04$coJo09mMLZeumeG7/FI76e1GrwPpx99DgMji1FDQH/yEHiKmC14FW";

/// An isolated environment for airlift runs.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        for d in ["home", "docker", "xdg", "run", "certs.d"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Env { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `certs.d` base directory airlift reads.
    pub fn certs_d(&self) -> PathBuf {
        self.path("certs.d")
    }

    /// docker's `config.json` in this environment.
    pub fn docker_config(&self) -> PathBuf {
        self.path("docker").join("config.json")
    }

    /// `airlift ARGS` with this environment.
    pub fn airlift(&self, args: &[&str]) -> Command {
        let mut cmd = airlift();
        cmd.args(args)
            .env("HOME", self.path("home"))
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("AIRLIFT_CERTS_DIRS", self.certs_d())
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("AIRLIFT_CONFIG")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Runs `airlift ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.airlift(args), RUN_TIMEOUT)
    }

    /// Runs `airlift ARGS` with `input` on standard input.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let path = self.path("stdin");
        std::fs::write(&path, input).unwrap();
        let mut cmd = self.airlift(args);
        cmd.stdin(Stdio::from(std::fs::File::open(&path).unwrap()));
        run_with_timeout(&mut cmd, RUN_TIMEOUT)
    }

    /// `airlift login REGISTRY -u USER --password-stdin EXTRA`.
    pub fn login(&self, registry: &str, user: &str, password: &str, extra: &[&str]) -> Output {
        let mut args = vec!["login", registry, "-u", user, "--password-stdin"];
        args.extend_from_slice(extra);
        self.run_with_input(&args, &format!("{password}\n"))
    }

    /// `airlift mirror sync --list LIST --to TO EXTRA`.
    pub fn sync(&self, list: &Path, to: &str, extra: &[&str]) -> Output {
        let list = list.to_str().unwrap();
        let mut args = vec!["mirror", "sync", "--list", list, "--to", to];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

/// stdout and stderr together.
pub fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts success.
pub fn assert_ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", describe(out));
}

/// Asserts failure with `needle` in the output.
pub fn assert_fails_with(out: &Output, needle: &str) {
    assert_ne!(out.status.code(), Some(0), "{}", describe(out));
    assert!(
        all_output(out).contains(needle),
        "expected `{needle}` in the output:\n{}",
        describe(out)
    );
}

/// A plain source registry holding some generated images, and the list naming them.
pub struct Source {
    /// Kept running for the test's lifetime.
    _registry: TestRegistry,
    pub images: Vec<Generated>,
    pub list: PathBuf,
    _dir: tempfile::TempDir,
}

impl Source {
    pub fn new(specs: &[ImageSpec]) -> Source {
        let registry = TestRegistry::start();
        let images = generator::push(&registry.addr(), specs);
        let dir = tempfile::tempdir().unwrap();
        let list = generator::write_list(dir.path(), &images, &registry.addr());
        Source {
            _registry: registry,
            images,
            list,
            _dir: dir,
        }
    }

    /// The first `n` images of the small set.
    pub fn small(n: usize) -> Source {
        let specs: Vec<ImageSpec> = generator::small_set().into_iter().take(n).collect();
        Source::new(&specs)
    }
}

/// Asserts that `target` stores every blob of `images`.
pub fn assert_copied(target: &TestRegistry, images: &[Generated]) {
    let stored = target.stored_blobs();
    for image in images {
        assert!(
            stored.contains(&image.digest),
            "manifest of {} missing",
            image.repository
        );
        for (digest, _) in &image.blobs {
            assert!(
                stored.contains(digest),
                "{digest} of {} missing",
                image.repository
            );
        }
    }
}

/// Certificates of one test, written under `dir`.
pub struct Certs {
    pub ca: pki::Ca,
    pub ca_file: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Certs {
    /// A CA and a server certificate for `names`.
    pub fn new(names: &[&str]) -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let ca = pki::Ca::new("airlift test CA");
        let ca_file = ca.write(dir.path(), "ca.pem");
        let (server_cert, server_key) =
            ca.server(names)
                .write(dir.path(), "server.pem", "server-key.pem");
        Certs {
            ca,
            ca_file,
            server_cert,
            server_key,
            dir,
        }
    }

    /// `http:` lines for the registry: TLS with this server certificate, and client
    /// certificates required and checked against this CA when `mtls`.
    pub fn http_tls(&self, mtls: bool) -> String {
        let mut yaml = format!(
            "tls:\n  certificate: {}\n  key: {}\n",
            self.server_cert.display(),
            self.server_key.display()
        );
        if mtls {
            yaml.push_str(&format!("  clientcas:\n    - {}\n", self.ca_file.display()));
        }
        yaml
    }
}

/// A registry serving HTTPS with `certs`, with htpasswd Basic auth when `basic`.
pub fn tls_registry(certs: &Certs, basic: bool, mtls: bool) -> TestRegistry {
    let mut builder = TestRegistry::builder().http_extra(&certs.http_tls(mtls));
    if basic {
        let htpasswd = certs.dir.path().join("htpasswd");
        std::fs::write(&htpasswd, format!("{USER}:{HASH}\n")).unwrap();
        builder = builder.config_extra(&format!(
            "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            htpasswd.display()
        ));
    }
    builder.start()
}

#[test]
fn basic_auth_behind_tls_login_sync_logout() {
    let source = Source::small(2);
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let target = tls_registry(&certs, true, false);
    let env = Env::new();
    let reg = target.addr();
    let ca = certs.ca_file.to_str().unwrap();

    // No CA: the certificate cannot be verified, and the message says what to do.
    let out = env.login(&reg, USER, PASSWORD, &[]);
    assert_fails_with(
        &out,
        &format!(
            "{reg} presented a certificate signed by an unknown authority: pass --ca-file or put the CA in /etc/docker/certs.d/{reg}/ca.crt"
        ),
    );
    assert!(!env.docker_config().exists(), "nothing stored on failure");
    let out = env.sync(&source.list, &reg, &[]);
    assert_fails_with(
        &out,
        "presented a certificate signed by an unknown authority",
    );

    // No credentials at all.
    let out = env.sync(&source.list, &reg, &["--ca-file", ca]);
    assert_fails_with(
        &out,
        &format!("{reg} requires authentication: run `airlift login {reg}` or pass --authfile"),
    );
    // A wrong password in an authfile: every image fails for it, said once.
    let wrong = env.path("wrong-auth.json");
    let auth = base64_encode(&format!("{USER}:not-the-password"));
    std::fs::write(
        &wrong,
        format!(r#"{{"auths":{{"{reg}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let three = env.path("three.txt");
    let mut text = std::fs::read_to_string(&source.list).unwrap();
    text.push_str(&format!("{reg}/harness/third:1\n"));
    std::fs::write(&three, text).unwrap();
    let wrong_arg = wrong.display().to_string();
    let out = env.sync(
        &three,
        &reg,
        &["--ca-file", ca, "--authfile", &wrong_arg, "-q"],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{}", describe(&out));
    assert_fails_with(
        &out,
        &format!(
            "failed: 3 images ({}",
            std::fs::read_to_string(&source.list)
                .unwrap()
                .lines()
                .next()
                .unwrap()
        ),
    );
    assert_fails_with(
        &out,
        &format!(
            " and 1 more): credentials for {reg} were rejected: check them, or run \
             `airlift login {reg}`"
        ),
    );

    // Pulling a (misspelled) repository without credentials: the name may be what is wrong.
    let misspelled = env.path("misspelled.txt");
    std::fs::write(&misspelled, format!("{reg}/harness/bsae:1.0\n")).unwrap();
    let out = env.sync(&misspelled, &format!("{reg}/copy"), &["--ca-file", ca]);
    assert_fails_with(
        &out,
        &format!(
            "cannot fetch manifest {reg}/harness/bsae:1.0 (check the name: registries such as \
             Docker Hub answer a pull of a repository that does not exist as one that needs \
             credentials): {reg} requires authentication: run `airlift login {reg}`"
        ),
    );

    // A wrong password is refused before anything is stored.
    let out = env.login(&reg, USER, "not-the-password", &["--ca-file", ca]);
    assert_fails_with(
        &out,
        &format!(
            "{reg} rejected the credentials of user `{USER}`: check the user name and the password"
        ),
    );
    assert!(!env.docker_config().exists(), "nothing stored on failure");
    let out = env.login(&reg, "robot", "not-the-password", &["--ca-file", ca]);
    assert_fails_with(
        &out,
        &format!(
            "{reg} rejected the credentials of user `robot`: check the user name and the \
             password; a Harbor robot account is named `robot$NAME`"
        ),
    );
    assert!(
        !all_output(&out).contains("run `airlift login"),
        "{}",
        describe(&out)
    );

    // The right one is checked, stored (unencrypted, and airlift says so) and used.
    let out = env.login(&reg, USER, PASSWORD, &["--ca-file", ca]);
    assert_ok(&out);
    let shown = all_output(&out);
    assert!(shown.contains("Login succeeded"), "{}", describe(&out));
    assert!(
        shown.contains("stored unencrypted in") && shown.contains("config.json"),
        "{}",
        describe(&out)
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.docker_config()).unwrap()).unwrap();
    assert!(config["auths"][&reg]["auth"].is_string(), "{config}");

    let out = env.sync(&source.list, &reg, &["--ca-file", ca]);
    assert_ok(&out);
    assert_copied(&target, &source.images);

    // Logout removes the entry; the next sync is anonymous again.
    let out = env.run(&["logout", &reg]);
    assert_ok(&out);
    assert!(all_output(&out).contains("Removed login credentials"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.docker_config()).unwrap()).unwrap();
    assert!(config["auths"].get(&reg).is_none(), "{config}");
    let out = env.run(&["logout", &reg]);
    assert_ok(&out);
    assert!(all_output(&out).contains("Not logged in"));
}

#[test]
fn authfile_and_config_file_are_honoured() {
    let source = Source::small(1);
    let certs = Certs::new(&["127.0.0.1"]);
    let target = tls_registry(&certs, true, false);
    let env = Env::new();
    let reg = target.addr();

    // An auth.json given with --authfile, and the CA given by the config file.
    let authfile = env.path("auth.json");
    let auth = base64_encode(&format!("{USER}:{PASSWORD}"));
    std::fs::write(
        &authfile,
        format!(r#"{{"auths":{{"{reg}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let config = env.path("xdg").join("airlift");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.yaml"),
        format!(
            "jobs: 2\nregistries:\n  \"{reg}\":\n    ca_file: {}\n",
            certs.ca_file.display()
        ),
    )
    .unwrap();
    let out = env.sync(
        &source.list,
        &reg,
        &["--authfile", authfile.to_str().unwrap()],
    );
    assert_ok(&out);
    assert_copied(&target, &source.images);

    // A typo in the config file is an error naming the key.
    std::fs::write(config.join("config.yaml"), "job: 2\n").unwrap();
    let out = env.sync(&source.list, &reg, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(all_output(&out).contains("job"), "{}", describe(&out));
}

#[test]
fn certificate_for_another_name_is_a_hostname_mismatch() {
    let certs = Certs::new(&["registry.invalid"]);
    let target = tls_registry(&certs, false, false);
    let env = Env::new();
    let reg = target.addr();
    let out = env.login(
        &reg,
        USER,
        PASSWORD,
        &["--ca-file", certs.ca_file.to_str().unwrap()],
    );
    assert_fails_with(
        &out,
        &format!(
            "{reg} presented a certificate that is not valid for the name 127.0.0.1 (it is valid for registry.invalid)"
        ),
    );
}

#[test]
fn mutual_tls_with_certs_d() {
    let source = Source::small(1);
    let certs = Certs::new(&["127.0.0.1", "localhost"]);
    let target = tls_registry(&certs, false, true);
    let env = Env::new();
    let reg = target.addr();
    let host_dir = env.certs_d().join(&reg);
    std::fs::create_dir_all(&host_dir).unwrap();
    certs.ca.write(&host_dir, "ca.crt");

    // The CA alone is not enough: the registry wants a client certificate.
    let out = env.sync(&source.list, &reg, &[]);
    assert_fails_with(
        &out,
        &format!("{reg} requires a client certificate (mutual TLS)"),
    );

    certs
        .ca
        .client("airlift-client")
        .write(&host_dir, "client.cert", "client.key");
    let out = env.sync(&source.list, &reg, &[]);
    assert_ok(&out);
    assert_copied(&target, &source.images);

    // bundle create reads through the same mutual TLS (the mirrored images, listed at the
    // mTLS registry), and bundle load writes through it into a second one.
    let work = tempfile::tempdir().unwrap();
    let list = generator::write_list(work.path(), &source.images, &reg);
    let bundle = work.path().join("mtls.tar.zst");
    let (list, bundle_s) = (list.to_str().unwrap(), bundle.to_str().unwrap());
    let out = env.run(&["bundle", "create", "--list", list, "-o", bundle_s]);
    assert_ok(&out);
    let site = tls_registry(&certs, false, true);
    let site_dir = env.certs_d().join(site.addr());
    std::fs::create_dir_all(&site_dir).unwrap();
    certs.ca.write(&site_dir, "ca.crt");
    let out = env.run(&["bundle", "load", bundle_s, "--to", &site.addr()]);
    assert_fails_with(
        &out,
        &format!("{} requires a client certificate (mutual TLS)", site.addr()),
    );
    certs
        .ca
        .client("airlift-client")
        .write(&site_dir, "client.cert", "client.key");
    let out = env.run(&["bundle", "load", bundle_s, "--to", &site.addr()]);
    assert_ok(&out);
    assert_copied(&site, &source.images);
}

/// Standard base64, for writing `auth` entries.
pub fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
