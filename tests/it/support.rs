//! Shared test support: real `docker-registry` processes on loopback, the `airlift` binary,
//! `skopeo` helpers and the deterministic image generator ([`r#gen`], also
//! reachable as [`generator`]).
//!
//! Nothing here is a mock: [`TestRegistry`] runs CNCF distribution (`docker-registry serve`)
//! on 127.0.0.1 with a random port and a temporary storage directory, and the skopeo helpers
//! shell out to the real `skopeo`. A missing program is a test failure with a message saying
//! how to install it, never a skip.

pub mod crane;
pub mod r#gen;
pub mod nginx;
pub mod proxy;

/// The generator under a name that is not a keyword in edition 2024 (`gen` needs `r#gen`).
pub use self::r#gen as generator;

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a registry gets to answer `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `docker-registry` on 127.0.0.1, killed (and waited for) on drop.
pub struct TestRegistry {
    child: Child,
    /// `127.0.0.1`, or `[::1]`.
    host: String,
    port: u16,
    storage: PathBuf,
    dir: tempfile::TempDir,
}

/// Extra configuration for [`TestRegistry`] (auth, TLS and the like, for later tests).
#[derive(Debug, Clone, Default)]
pub struct RegistryBuilder {
    config_extra: String,
    http_extra: String,
    /// The loopback address listened on (`[::1]` for IPv6); 127.0.0.1 when empty.
    host: String,
}

impl RegistryBuilder {
    /// Appends top-level YAML sections to the config (e.g. an `auth:` block).
    pub fn config_extra(mut self, yaml: &str) -> Self {
        self.config_extra.push_str(yaml);
        self.config_extra.push('\n');
        self
    }

    /// Appends YAML keys under `http:` (e.g. `tls:`); each line is indented by two spaces.
    pub fn http_extra(mut self, yaml: &str) -> Self {
        for line in yaml.lines() {
            let _ = writeln!(self.http_extra, "  {line}");
        }
        self
    }

    /// Listens on `host` (`[::1]`) instead of 127.0.0.1.
    pub fn host(mut self, host: &str) -> Self {
        self.host = host.to_owned();
        self
    }

    /// Starts the registry; panics with its stderr when it does not come up.
    pub fn start(self) -> TestRegistry {
        require_program("docker-registry", "docker-registry");
        let mut last_error = String::new();
        for _attempt in 0..5 {
            match self.try_start() {
                Ok(registry) => return registry,
                Err(e) => last_error = e,
            }
        }
        panic!("docker-registry did not start after 5 attempts: {last_error}");
    }

    fn try_start(&self) -> Result<TestRegistry, String> {
        let dir = tempfile::Builder::new()
            .prefix("airlift-registry-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).map_err(|e| e.to_string())?;
        let port = free_port();
        let host = match self.host.as_str() {
            "" => "127.0.0.1".to_owned(),
            h => h.to_owned(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: \"{host}:{port}\"\n{}{}",
            storage.display(),
            self.http_extra,
            self.config_extra
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run docker-registry: {e}"))?;
        let mut registry = TestRegistry {
            child,
            host,
            port,
            storage,
            dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = registry.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!(
                    "docker-registry exited with {status}: {}",
                    registry.log()
                ));
            }
            // 400: a TLS registry answering plain HTTP ("client sent an HTTP request to an
            // HTTPS server") is up too.
            if let Some(200 | 400 | 401) = http_status(&format!("{}/v2/", registry.url())) {
                return Ok(registry);
            }
            if Instant::now() > deadline {
                let log = registry.log();
                drop(registry);
                panic!(
                    "docker-registry on port {port} did not answer GET /v2/ within {READY_TIMEOUT:?}; its output:\n{log}"
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl TestRegistry {
    /// Starts a plain registry (filesystem storage, deletes enabled) on a random port.
    pub fn start() -> TestRegistry {
        RegistryBuilder::default().start()
    }

    /// Starts a registry with extra top-level YAML appended to the config.
    pub fn start_with(config_extra: &str) -> TestRegistry {
        RegistryBuilder::default()
            .config_extra(config_extra)
            .start()
    }

    /// A builder for registries with extra configuration.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// `127.0.0.1:PORT` (or `[::1]:PORT`).
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The filesystem storage root.
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// What the registry printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Repositories listed by `GET /v2/_catalog`.
    pub fn catalog(&self) -> Vec<String> {
        let url = format!("{}/v2/_catalog?n=1000", self.url());
        let body = http_get(&url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("catalog JSON");
        v["repositories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Digests (`sha256:...`) of the blobs committed to storage: every
    /// `docker/registry/v2/blobs/sha256/*/*/data` file. Manifests are stored as blobs too.
    pub fn stored_blobs(&self) -> Vec<String> {
        let root = self.storage.join("docker/registry/v2/blobs/sha256");
        let mut out = Vec::new();
        let Ok(prefixes) = std::fs::read_dir(&root) else {
            return out;
        };
        for prefix in prefixes.flatten() {
            let Ok(entries) = std::fs::read_dir(prefix.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.path().join("data").is_file() {
                    out.push(format!("sha256:{}", entry.file_name().to_string_lossy()));
                }
            }
        }
        out
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (bound on 127.0.0.1:0 and released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A closed loopback port: bound and released, so connections are refused.
pub fn closed_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn http_status(url: &str) -> Option<u16> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    agent.get(url).call().ok().map(|r| r.status().as_u16())
}

/// GET `url`; the body on 200, an error naming the status otherwise.
pub fn http_get(url: &str) -> Result<Vec<u8>, String> {
    let mut resp = agent().get(url).call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body)
}

/// Panics with an install hint unless `program` is on PATH.
pub fn require_program(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed but these tests need it: run `apt-get install -y {package}` \
         (./scripts/test.sh installs it)"
    );
}

/// `airlift` as built by cargo for this test run, with retries undelayed, colours off and
/// the user's cache (staging, load state) in the test target directory, not in `~/.cache`.
pub fn airlift() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlift"));
    cmd.env("AIRLIFT_RETRY_DELAY_MS", "0")
        .env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", test_cache_dir())
        .stdin(Stdio::null());
    cmd
}

/// The `XDG_CACHE_HOME` of the commands [`airlift`] makes.
pub fn test_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache")
}

/// The staging directory `bundle create -o OUTPUT` uses by default (no `--staging-dir`).
pub fn default_staging(output: &Path) -> PathBuf {
    test_cache_dir()
        .join("airlift/staging")
        .join(airlift::bundle::staging_key(output))
}

/// Runs `cmd` to completion, killing it and panicking after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = cmd
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {timeout:?}; stderr so far:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    }
}

/// `skopeo` with a permissive signature policy of its own, so the host's
/// `/etc/containers/policy.json` does not matter.
pub fn skopeo() -> Command {
    require_program("skopeo", "skopeo");
    let policy = std::env::temp_dir().join("airlift-test-skopeo-policy.json");
    if !policy.is_file() {
        let tmp = policy.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#)
            .expect("write policy");
        std::fs::rename(&tmp, &policy).expect("rename policy");
    }
    let mut cmd = Command::new("skopeo");
    cmd.arg("--policy").arg(policy).stdin(Stdio::null());
    cmd
}

/// The Debian forky chroot that `scripts/forky.sh` builds at `$AIRLIFT_TEST_FORKY_ROOT`
/// (default `/var/cache/airlift-test/forky`): current skopeo (1.19 or later; Debian
/// bookworm's 1.9.3 cannot look up Docker-format images by name in an OCI layout), crane,
/// oras, cosign, notation, podman, containerd and Go. Its programs see only the chroot, so the
/// files they read must be under [`Forky::root`]; registries on loopback are reachable as
/// usual. Missing, it fails the test.
pub struct Forky {
    root: PathBuf,
}

impl Forky {
    pub fn get() -> Forky {
        let root = std::env::var_os("AIRLIFT_TEST_FORKY_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/cache/airlift-test/forky"));
        assert!(
            root.join("usr/bin/skopeo").is_file(),
            "no forky chroot in {}: run scripts/forky.sh (scripts/test.sh does)",
            root.display()
        );
        Forky { root }
    }

    /// The chroot; a path `P` under it is `/` + `P` relative to it for its programs.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `chroot ROOT skopeo --insecure-policy`.
    pub fn command(&self) -> Command {
        let mut cmd = self.program("skopeo");
        cmd.arg("--insecure-policy");
        cmd
    }

    /// `chroot ROOT PROGRAM`, with no standard input. `PROGRAM` must be installed by
    /// `scripts/forky.sh`.
    pub fn program(&self, program: &str) -> Command {
        let mut cmd = Command::new("chroot");
        cmd.arg(&self.root).arg(program).stdin(Stdio::null());
        cmd
    }

    /// How `path` (under the root) looks from inside the chroot.
    pub fn inside(&self, path: &Path) -> String {
        let rel = path
            .strip_prefix(&self.root)
            .unwrap_or_else(|_| panic!("{} is outside {}", path.display(), self.root.display()));
        format!("/{}", rel.display())
    }
}

/// `skopeo inspect --raw` of `docker://IMAGE`; Err with skopeo's stderr when it fails.
pub fn try_skopeo_inspect_raw(image: &str) -> Result<Vec<u8>, String> {
    let out = run_with_timeout(
        skopeo()
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{image}")),
        Duration::from_secs(60),
    );
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `skopeo inspect --raw --tls-verify=false docker://IMAGE`: the manifest bytes as stored.
pub fn skopeo_inspect_raw(image: &str) -> Vec<u8> {
    try_skopeo_inspect_raw(image)
        .unwrap_or_else(|e| panic!("skopeo inspect --raw docker://{image} failed: {e}"))
}

/// `skopeo copy SRC DST` with full transport strings; TLS verification is turned off for
/// `docker://` ends.
pub fn skopeo_copy(src: &str, dst: &str) {
    let mut cmd = skopeo();
    cmd.arg("copy");
    if src.starts_with("docker://") {
        cmd.arg("--src-tls-verify=false");
    }
    if dst.starts_with("docker://") {
        cmd.arg("--dest-tls-verify=false");
    }
    cmd.args([src, dst]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "skopeo copy {src} {dst} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sha256` of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    generator::sha256_hex(bytes.as_ref())
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: impl AsRef<[u8]>) -> String {
    generator::digest_of(bytes.as_ref())
}

/// Renders a command's output for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the exit code, with the whole output on failure.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
}

/// The single JSON object `--json` prints on stdout.
pub fn json_report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{}", describe(out)))
}

/// An integer field of a `--json` report.
pub fn number(report: &serde_json::Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("report has no integer `{key}`: {report}"))
}

/// Asserts a `--json` report's image status says the image is at the target (copied this
/// run or already present).
#[track_caller]
pub fn assert_complete(status: &serde_json::Value, context: impl std::fmt::Display) {
    assert!(
        status == "copied" || status == "already_present",
        "status {status}, expected copied or already_present: {context}"
    );
}

/// `airlift` run under GNU `time`, which writes the child's peak RSS (KiB, `%M`) to
/// `rss_file`; the caller adds the arguments. As [`airlift`]: no retry delay, no colour.
pub fn airlift_under_time(rss_file: &Path) -> Command {
    let mut cmd = Command::new("time");
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss_file)
        .arg(env!("CARGO_BIN_EXE_airlift"))
        .env("AIRLIFT_RETRY_DELAY_MS", "0")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    cmd
}

/// Rewrites the format-2 volume `src` as the format-1 volume `dst` that the previous release
/// wrote for the same content: one zstd frame (no per-entry frames, no seek index), its
/// descriptor at `format_version` 1 without `tar_offset`. Streams: a volume of any size.
pub fn to_format1(src: &Path, dst: &Path) {
    let input = std::fs::File::open(src).expect("open the format-2 volume");
    let mut archive = tar::Archive::new(zstd::Decoder::new(input).expect("zstd decoder"));
    let output = std::fs::File::create(dst).expect("create the format-1 volume");
    let mut builder = tar::Builder::new(zstd::Encoder::new(output, 3).expect("zstd encoder"));
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let mut header = entry.header().clone();
        if entry.path_bytes().as_ref() == b"airlift-bundle.json" {
            let mut d: serde_json::Value = serde_json::from_reader(&mut entry).expect("descriptor");
            d["format_version"] = 1.into();
            for blob in d["blobs"].as_object_mut().expect("blobs").values_mut() {
                for location in blob["volumes"].as_array_mut().expect("locations") {
                    location
                        .as_object_mut()
                        .expect("location")
                        .remove("tar_offset");
                }
            }
            let bytes = serde_json::to_vec(&d).expect("JSON");
            header.set_size(bytes.len() as u64);
            header.set_cksum();
            builder.append(&header, bytes.as_slice()).expect("append");
        } else {
            builder.append(&header, &mut entry).expect("append");
        }
    }
    let encoder = builder.into_inner().expect("finish the tar");
    encoder.finish().expect("finish the zstd frame");
}
