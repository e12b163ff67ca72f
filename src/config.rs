//! The per-user config file (`docs/config.md`): `$AIRLIFT_CONFIG`, else
//! `$XDG_CONFIG_HOME/airlift/config.yaml`, else `~/.config/airlift/config.yaml`. It holds
//! defaults (`jobs`, `retries`) and per-registry connection settings; command-line flags
//! override it. A missing default file is no error; a missing `$AIRLIFT_CONFIG` is.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use serde::Deserialize;

use airlift::credentials::{CredentialOptions, Credentials, FoundCredential};
use airlift::registry::{Credential, CredentialSource, HostTls, TlsOptions};

/// Names the config file explicitly.
pub const CONFIG_ENV: &str = "AIRLIFT_CONFIG";

/// The file's contents. Unknown keys are errors, so a typo does not silently do nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default for `--jobs`.
    #[serde(default)]
    pub jobs: Option<usize>,
    /// Default for `--retries`.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Credential files read before any `--authfile`, for every registry.
    #[serde(default)]
    pub authfiles: Vec<PathBuf>,
    /// CA files trusted for every registry, with `--ca-file`.
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
    /// docker-style `certs.d` base directories (default: `/etc/docker/certs.d`,
    /// `/etc/containers/certs.d`).
    #[serde(default)]
    pub certs_dirs: Option<Vec<PathBuf>>,
    /// Per registry (`host[:port]`) settings.
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryConfig>,
}

/// One `registries:` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// As `--insecure-registry HOST`.
    #[serde(default)]
    pub insecure: bool,
    /// A CA certificate (PEM) for this registry.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// A credentials file (`auth.json`/`config.json` format) consulted first for this
    /// registry.
    #[serde(default)]
    pub authfile: Option<PathBuf>,
}

/// Where the config file is, and whether it must exist.
fn location() -> Option<(PathBuf, bool)> {
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some((base.join("airlift").join("config.yaml"), false))
}

impl Config {
    /// Parses `text`; relative paths are taken relative to `dir` (the file's directory).
    pub fn parse(text: &str, dir: &Path) -> Result<Config> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let mut c: Config = serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        c.authfiles.iter_mut().for_each(abs);
        c.ca_files.iter_mut().for_each(abs);
        c.certs_dirs.iter_mut().flatten().for_each(abs);
        for r in c.registries.values_mut() {
            for p in [
                &mut r.ca_file,
                &mut r.client_cert,
                &mut r.client_key,
                &mut r.authfile,
            ]
            .into_iter()
            .flatten()
            {
                abs(p);
            }
        }
        if c.jobs == Some(0) {
            anyhow::bail!("`jobs` must be at least 1");
        }
        Ok(c)
    }

    fn load() -> Result<Config> {
        let Some((path, required)) = location() else {
            return Ok(Config::default());
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default());
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, dir).with_context(|| format!("invalid config {}", path.display()))
    }

    /// The config of this process, read once.
    pub fn get() -> Result<&'static Config> {
        static CONFIG: OnceLock<std::result::Result<Config, String>> = OnceLock::new();
        CONFIG
            .get_or_init(|| Config::load().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Registries marked `insecure: true`.
    pub fn insecure_registries(&self) -> impl Iterator<Item = &String> {
        self.registries
            .iter()
            .filter(|(_, r)| r.insecure)
            .map(|(h, _)| h)
    }

    /// TLS options: the config's, with `ca_files` (from `--ca-file`) added.
    pub fn tls(&self, ca_files: Vec<PathBuf>) -> TlsOptions {
        let mut all = self.ca_files.clone();
        all.extend(ca_files);
        let hosts: HashMap<String, HostTls> = self
            .registries
            .iter()
            .map(|(h, r)| {
                (
                    h.clone(),
                    HostTls {
                        ca_files: r.ca_file.iter().cloned().collect(),
                        client_cert: r.client_cert.clone(),
                        client_key: r.client_key.clone(),
                    },
                )
            })
            .collect();
        TlsOptions {
            ca_files: all,
            certs_dirs: self.certs_dirs.clone(),
            hosts,
        }
    }

    /// The credential source: per-registry `authfile`s first, then the config's `authfiles`
    /// and `authfiles` from the command line, then docker's and podman's usual files.
    pub fn credentials(&self, authfiles: Vec<PathBuf>) -> Result<Arc<dyn CredentialSource>> {
        let layered = self.layered_credentials(authfiles)?;
        if layered.per_host.is_empty() {
            return Ok(Arc::new(layered.general));
        }
        Ok(Arc::new(layered))
    }

    /// The credential the registry client would send to `registry`, and the helper it came
    /// from (same order as [`Config::credentials`]).
    pub fn find_credential(
        &self,
        authfiles: Vec<PathBuf>,
        registry: &str,
    ) -> Result<Option<FoundCredential>> {
        let layered = self.layered_credentials(authfiles)?;
        let host = airlift::credentials::normalize_registry(registry);
        Ok(layered
            .per_host
            .iter()
            .filter(|(h, _)| *h == host)
            .find_map(|(_, c)| c.find(registry))
            .or_else(|| layered.general.find(registry)))
    }

    fn layered_credentials(&self, authfiles: Vec<PathBuf>) -> Result<Layered> {
        let mut files = self.authfiles.clone();
        files.extend(authfiles);
        let general = Credentials::load(CredentialOptions {
            authfiles: files,
            ..CredentialOptions::default()
        })?;
        let mut per_host = Vec::new();
        for (host, r) in &self.registries {
            if let Some(f) = &r.authfile {
                let c = Credentials::load(CredentialOptions {
                    authfiles: vec![f.clone()],
                    // Only that file: the usual ones are consulted by `general`.
                    docker_config_dir: Some(PathBuf::from("/nonexistent/airlift")),
                    default_authfiles: Some(Vec::new()),
                    ..CredentialOptions::default()
                })?;
                per_host.push((airlift::credentials::normalize_registry(host), c));
            }
        }
        Ok(Layered { per_host, general })
    }
}

/// Per-registry credential files in front of the general lookup.
struct Layered {
    per_host: Vec<(String, Credentials)>,
    general: Credentials,
}

impl CredentialSource for Layered {
    fn credential(&self, registry: &str) -> Option<Credential> {
        let host = airlift::credentials::normalize_registry(registry);
        self.per_host
            .iter()
            .filter(|(h, _)| *h == host)
            .find_map(|(_, c)| c.credential(registry))
            .or_else(|| self.general.credential(registry))
    }

    fn prepare<'a>(
        &'a self,
        registries: &'a [String],
    ) -> futures_util::future::BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for (_, c) in &self.per_host {
                out.extend(CredentialSource::prepare(c, registries).await);
            }
            out.extend(CredentialSource::prepare(&self.general, registries).await);
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_config_parses_and_paths_are_anchored() {
        let text = r#"
jobs: 3
retries: 2
ca_files: [corp-ca.pem]
certs_dirs: [/srv/certs.d]
registries:
  "reg.lan:5000":
    insecure: false
    ca_file: reg-ca.pem
    client_cert: /abs/client.pem
    client_key: client.key
    authfile: reg-auth.json
  "mirror.lan":
    insecure: true
"#;
        let c = Config::parse(text, Path::new("/etc/airlift")).unwrap();
        assert_eq!(c.jobs, Some(3));
        assert_eq!(c.retries, Some(2));
        assert_eq!(c.ca_files, [PathBuf::from("/etc/airlift/corp-ca.pem")]);
        let r = &c.registries["reg.lan:5000"];
        assert_eq!(
            r.ca_file.as_deref(),
            Some(Path::new("/etc/airlift/reg-ca.pem"))
        );
        assert_eq!(r.client_cert.as_deref(), Some(Path::new("/abs/client.pem")));
        assert_eq!(
            r.client_key.as_deref(),
            Some(Path::new("/etc/airlift/client.key"))
        );
        assert_eq!(
            c.insecure_registries().collect::<Vec<_>>(),
            [&"mirror.lan".to_owned()]
        );
        let tls = c.tls(vec!["/x/extra.pem".into()]);
        assert_eq!(tls.ca_files.len(), 2);
        assert_eq!(tls.certs_dirs, Some(vec![PathBuf::from("/srv/certs.d")]));
        assert_eq!(
            tls.hosts["reg.lan:5000"].ca_files,
            [PathBuf::from("/etc/airlift/reg-ca.pem")]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::parse("job: 3\n", Path::new("/")).unwrap_err();
        assert!(format!("{err:#}").contains("job"), "{err:#}");
        let err = Config::parse("registries:\n  r:\n    ca-file: x\n", Path::new("/")).unwrap_err();
        assert!(format!("{err:#}").contains("ca-file"), "{err:#}");
        assert!(Config::parse("jobs: 0\n", Path::new("/")).is_err());
        assert!(
            Config::parse("", Path::new("/"))
                .unwrap()
                .registries
                .is_empty()
        );
    }
}
