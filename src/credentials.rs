//! Registry credentials from docker's and podman's files and docker credential helpers.
//!
//! [`Credentials::load`] reads the files (running no helper), [`Credentials::prepare`] runs the
//! helpers the run's registries need, concurrently and each bounded by a timeout, and the
//! registry client then asks synchronously through [`CredentialSource`]. [`login`] and
//! [`logout`] store and remove credentials as `docker login`/`docker logout` do.
//!
//! Lookup order (details in `docs/credentials.md`), first credential wins:
//! 1. files given with `--authfile` ([`CredentialOptions::authfiles`]), in order;
//! 2. docker's `config.json`: `credHelpers[host]`, else `credsStore`, else `auths[host]`;
//! 3. only when no `--authfile` is given: podman's default `auth.json` files.
//!
//! Nothing here prints or logs a password: [`Credential`]'s `Debug` redacts it, and so do the
//! `Debug` impls of everything holding one.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::registry::{Credential, CredentialSource};

mod error;
mod files;
mod helper;
mod json;
mod store;
#[cfg(test)]
mod testutil;

pub use error::CredentialError;
pub use files::IDENTITY_TOKEN_USERNAME;
pub use store::{LoginOutcome, login, logout};

use files::{AuthFile, FileKind, Step};
use helper::HelperRunner;

/// Default time limit for one credential-helper call.
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where credentials come from. [`Default`] reads the usual places from the environment;
/// tests set every path so they never depend on (or change) the process environment.
#[derive(Debug, Clone)]
pub struct CredentialOptions {
    /// Files given with `--authfile` (podman/skopeo `auth.json` format, docker's `config.json`
    /// works too). When non-empty they are consulted first, before docker's `config.json`, and
    /// replace the default `auth.json` files, as `--authfile` does in skopeo.
    pub authfiles: Vec<PathBuf>,
    /// Directory of docker's `config.json`; `None` means `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// podman's default `auth.json` files; `None` means from the environment
    /// (`$REGISTRY_AUTH_FILE` or `$XDG_RUNTIME_DIR/containers/auth.json`, then
    /// `~/.config/containers/auth.json`). Ignored when `authfiles` is non-empty.
    pub default_authfiles: Option<Vec<PathBuf>>,
    /// Time limit for one helper call; a helper still running then is killed.
    pub helper_timeout: Duration,
    /// `PATH` given to helper processes, and searched for `docker-credential-NAME`; `None`
    /// means this process's `PATH`.
    pub helper_path: Option<OsString>,
}

impl Default for CredentialOptions {
    fn default() -> Self {
        CredentialOptions {
            authfiles: Vec::new(),
            docker_config_dir: None,
            default_authfiles: None,
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
            helper_path: None,
        }
    }
}

impl CredentialOptions {
    /// docker's config directory: the option, else from the environment.
    pub fn docker_config_dir(&self) -> Result<PathBuf, CredentialError> {
        self.docker_config_dir
            .clone()
            .or_else(files::docker_config_dir_from_env)
            .ok_or(CredentialError::NoConfigDir)
    }

    /// docker's `config.json` path.
    pub fn docker_config_file(&self) -> Result<PathBuf, CredentialError> {
        Ok(self.docker_config_dir()?.join("config.json"))
    }

    fn runner(&self) -> HelperRunner {
        HelperRunner {
            timeout: self.helper_timeout,
            path: self.helper_path.clone(),
        }
    }
}

/// The host a registry name or credentials-file key refers to, as docker's
/// `ConvertToHostname` gives it: scheme and path dropped, lower-cased, and every Docker Hub
/// alias (`https://index.docker.io/v1/`, `index.docker.io`, `registry-1.docker.io`) as
/// `docker.io`. `https://reg:5000/v2/` becomes `reg:5000`.
pub fn normalize_registry(key: &str) -> String {
    let lower = key.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = rest.split('/').next().unwrap_or_default();
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host.to_owned(),
    }
}

/// The server address docker uses for `registry` in helpers and in `auths`:
/// `https://index.docker.io/v1/` for Docker Hub, else the host (`reg:5000`).
pub fn server_address(registry: &str) -> String {
    match normalize_registry(registry).as_str() {
        "docker.io" => "https://index.docker.io/v1/".to_owned(),
        host => host.to_owned(),
    }
}

/// A credential with its origin.
#[derive(Debug, Clone)]
pub struct FoundCredential {
    /// The credential.
    pub credential: Credential,
    /// The helper program (`docker-credential-NAME`) that gave it; `None` for a file entry.
    /// Helpers often hand out short-lived tokens.
    pub helper: Option<String>,
}

/// What a helper said about one host, remembered for the run.
#[derive(Clone)]
enum Cached {
    Found(Credential),
    Missing,
    /// Failed and already reported; not retried.
    Failed,
}

/// How often one host's helper is asked again in a run after the registry rejected what it
/// gave: enough for a day-long run with 1-hour tokens, not a loop against a helper that
/// keeps giving bad ones.
const MAX_REFRESHES: u32 = 32;

/// Credentials for a run: the parsed files plus what helpers answered.
pub struct Credentials {
    files: Vec<AuthFile>,
    runner: HelperRunner,
    /// (helper, host) → answer.
    cache: Mutex<HashMap<(String, String), Cached>>,
    /// Host → times its helper was asked again.
    refreshes: Mutex<HashMap<String, u32>>,
    /// Serialises refreshes, so concurrent rejections ask the helper once.
    refreshing: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cache = self.cache.lock().expect("credential cache");
        let mut answers: Vec<String> = cache
            .iter()
            .map(|((helper, host), c)| {
                let what = match c {
                    Cached::Found(_) => "found",
                    Cached::Missing => "none",
                    Cached::Failed => "failed",
                };
                format!("{helper}@{host}: {what}")
            })
            .collect();
        answers.sort();
        f.debug_struct("Credentials")
            .field("files", &self.files)
            .field("helper_timeout", &self.runner.timeout)
            .field("helper_answers", &answers)
            .finish()
    }
}

impl Credentials {
    /// Reads docker's `config.json` and the `auth.json` files (see [`CredentialOptions`]).
    /// Missing default files are skipped; a missing `--authfile`, an unreadable file or a
    /// malformed one is an error naming it. No helper runs here.
    pub fn load(opts: CredentialOptions) -> Result<Credentials, CredentialError> {
        let mut files = Vec::new();
        for path in &opts.authfiles {
            match AuthFile::read(path, FileKind::AuthJson)? {
                Some(f) => files.push(f),
                None => {
                    return Err(CredentialError::ReadFile {
                        path: path.clone(),
                        source: std::io::ErrorKind::NotFound.into(),
                    });
                }
            }
        }
        match opts.docker_config_file() {
            Ok(path) => files.extend(AuthFile::read(&path, FileKind::DockerConfig)?),
            Err(e) => tracing::debug!("{e}"),
        }
        if opts.authfiles.is_empty() {
            let defaults = opts
                .default_authfiles
                .clone()
                .unwrap_or_else(files::default_authfiles_from_env);
            for path in &defaults {
                files.extend(AuthFile::read(path, FileKind::AuthJson)?);
            }
        }
        for f in &files {
            tracing::debug!(file = %f.path.display(), "credentials file loaded");
        }
        Ok(Credentials {
            files,
            runner: opts.runner(),
            cache: Mutex::new(HashMap::new()),
            refreshes: Mutex::new(HashMap::new()),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// Runs, concurrently, the helpers that `registries` need and remembers their answers, so
    /// that later lookups do not block. Each helper call is bounded by the helper timeout.
    /// Returns the problems (helper missing, failed, timed out) for the caller to show as
    /// warnings; those registries fall through to later sources or go anonymous.
    pub async fn prepare(&self, registries: &[String]) -> Vec<CredentialError> {
        let mut hosts: Vec<String> = registries
            .iter()
            .map(|r| normalize_registry(r))
            .filter(|h| !h.is_empty())
            .collect();
        hosts.sort();
        hosts.dedup();
        let results =
            futures_util::future::join_all(hosts.iter().map(|h| self.prepare_host(h))).await;
        results.into_iter().flatten().collect()
    }

    async fn prepare_host(&self, host: &str) -> Vec<CredentialError> {
        let mut problems = Vec::new();
        for file in &self.files {
            match file.step(host) {
                Step::Static(_) => break,
                Step::Nothing => {}
                Step::Helper(helper) => {
                    let answer = match self.cached(helper, host) {
                        Some(answer) => answer,
                        None => {
                            let result = self.get_async(helper, host).await;
                            self.remember(helper, host, result, |e| problems.push(e))
                        }
                    };
                    if matches!(answer, Cached::Found(_)) {
                        break;
                    }
                }
            }
        }
        problems
    }

    /// One helper `get` on the blocking pool, bounded by the timeout (the runner kills the
    /// helper at the limit; the outer bound only guards against a stuck pool).
    async fn get_async(
        &self,
        helper: &str,
        host: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let runner = self.runner.clone();
        let (h, r) = (helper.to_owned(), host.to_owned());
        let task = tokio::task::spawn_blocking(move || runner.get(&h, &r, &server_address(&r)));
        let timeout_error = || CredentialError::HelperTimeout {
            helper: helper::program(helper),
            action: "get",
            registry: host.to_owned(),
            timeout: self.runner.timeout,
        };
        match tokio::time::timeout(self.runner.timeout + Duration::from_secs(5), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(CredentialError::HelperSpawn {
                helper: helper::program(helper),
                registry: host.to_owned(),
                source: std::io::Error::other(join.to_string()),
            }),
            Err(_) => Err(timeout_error()),
        }
    }

    fn cached(&self, helper: &str, host: &str) -> Option<Cached> {
        let cache = self.cache.lock().expect("credential cache");
        cache.get(&(helper.to_owned(), host.to_owned())).cloned()
    }

    /// Records a helper's answer; a failure goes to `report`.
    fn remember(
        &self,
        helper: &str,
        host: &str,
        result: Result<Option<Credential>, CredentialError>,
        report: impl FnOnce(CredentialError),
    ) -> Cached {
        let answer = match result {
            Ok(Some(c)) => Cached::Found(c),
            Ok(None) => Cached::Missing,
            Err(e) => {
                report(e);
                Cached::Failed
            }
        };
        let mut cache = self.cache.lock().expect("credential cache");
        cache.insert((helper.to_owned(), host.to_owned()), answer.clone());
        answer
    }

    /// The lookup behind [`CredentialSource::credential`]. A helper not run by
    /// [`prepare`](Self::prepare) runs here, synchronously (off the async worker when called
    /// on a multi-threaded runtime), and its failure is logged as a warning.
    fn lookup(&self, registry: &str) -> Option<Credential> {
        self.find(registry).map(|found| found.credential)
    }

    /// The credential for `registry` and where it came from: the same lookup the registry
    /// client makes (a helper not run by [`prepare`](Self::prepare) runs here).
    pub fn find(&self, registry: &str) -> Option<FoundCredential> {
        let host = normalize_registry(registry);
        if host.is_empty() {
            return None;
        }
        for file in &self.files {
            match file.step(&host) {
                Step::Static(c) => {
                    return Some(FoundCredential {
                        credential: c.clone(),
                        helper: None,
                    });
                }
                Step::Nothing => {}
                Step::Helper(helper) => {
                    let answer = self.cached(helper, &host).unwrap_or_else(|| {
                        let result =
                            off_worker(|| self.runner.get(helper, &host, &server_address(&host)));
                        self.remember(helper, &host, result, |e| tracing::warn!("{e}"))
                    });
                    if let Cached::Found(c) = answer {
                        return Some(FoundCredential {
                            credential: c,
                            helper: Some(helper::program(helper)),
                        });
                    }
                }
            }
        }
        None
    }
}

impl Credentials {
    /// The helper the first file routing `host` to one names.
    fn helper_of(&self, host: &str) -> Option<&str> {
        self.files.iter().find_map(|f| match f.step(host) {
            Step::Helper(h) => Some(h),
            _ => None,
        })
    }

    /// Asks `registry`'s helper again (at most [`MAX_REFRESHES`] times a run), after the
    /// registry rejected `rejected`; the new answer replaces the cached one. `Some` only when
    /// it differs from the rejected one.
    async fn refresh_helper(
        &self,
        registry: &str,
        rejected: Option<Credential>,
    ) -> Option<Credential> {
        let host = normalize_registry(registry);
        let helper = self.helper_of(&host)?.to_owned();
        let _one_at_a_time = self.refreshing.lock().await;
        // Another request may have refreshed since this one was sent, or while it waited.
        if let Some(Cached::Found(c)) = self.cached(&helper, &host)
            && rejected.as_ref().is_some_and(|r| !same(r, &c))
        {
            return Some(c);
        }
        {
            let mut counts = self.refreshes.lock().expect("refresh counts");
            let n = counts.entry(host.clone()).or_default();
            if *n >= MAX_REFRESHES {
                return None;
            }
            *n += 1;
        }
        tracing::info!(registry = %host, helper = %helper::program(&helper), "credentials rejected; asking the helper again");
        let result = self.get_async(&helper, &host).await;
        match self.remember(&helper, &host, result, |e| tracing::warn!("{e}")) {
            Cached::Found(c) if rejected.as_ref().is_none_or(|r| !same(r, &c)) => Some(c),
            _ => None,
        }
    }
}

fn same(a: &Credential, b: &Credential) -> bool {
    a.username == b.username && a.password == b.password
}

impl CredentialSource for Credentials {
    fn credential(&self, registry: &str) -> Option<Credential> {
        self.lookup(registry)
    }

    fn helper(&self, registry: &str) -> Option<String> {
        self.helper_of(&normalize_registry(registry))
            .map(helper::program)
    }

    fn refresh<'a>(
        &'a self,
        registry: &'a str,
        rejected: Option<Credential>,
    ) -> futures_util::future::BoxFuture<'a, Option<Credential>> {
        Box::pin(self.refresh_helper(registry, rejected))
    }

    fn prepare<'a>(
        &'a self,
        registries: &'a [String],
    ) -> futures_util::future::BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            Credentials::prepare(self, registries)
                .await
                .iter()
                .map(ToString::to_string)
                .collect()
        })
    }
}

/// Runs blocking `f` without stalling other tasks when on a multi-threaded tokio worker.
fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests;
