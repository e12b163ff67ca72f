//! How this client reaches one registry, told to the outside: the scheme it answers on and
//! the TLS trust and client certificate in force for it. `mirror config` writes these into
//! other programs' registry configuration, so they reach the mirror exactly as airlift does.

use std::path::PathBuf;

use super::{ClientOptions, RegistryClient, RegistryError, endpoint, tls};

/// How a registry is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConnection {
    /// `host[:port]`.
    pub registry: String,
    /// It answered over plain HTTP (only ever tried for loopback and `--insecure-registry`
    /// hosts).
    pub plain_http: bool,
    /// Listed with `--insecure-registry` (or `insecure: true` in the config): its HTTPS
    /// certificate is not checked.
    pub skip_verify: bool,
    /// CA certificates trusted for it besides the system's: `--ca-file` and the config
    /// file's, then its own (config entry, `certs.d`).
    pub ca_files: Vec<PathBuf>,
    /// Client certificate and key for mutual TLS, if any.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

impl RegistryClient {
    /// How `registry` is reached. Only a host that may speak plain HTTP (loopback or
    /// `--insecure-registry`) is contacted (`GET /v2/`), to learn which scheme it answers on.
    pub async fn site_connection(
        &self,
        opts: &ClientOptions,
        registry: &str,
    ) -> Result<SiteConnection, RegistryError> {
        let mut files = tls::host_files(&opts.tls, registry)?;
        let api = endpoint::api_host(registry);
        if files.is_empty() && api != registry {
            files = tls::host_files(&opts.tls, api)?;
        }
        let plain_http = endpoint::is_insecure(registry, &opts.insecure_registries)
            && self.inner.scheme(registry).await? == "http";
        let mut ca_files = opts.tls.ca_files.clone();
        ca_files.extend(files.cas);
        Ok(SiteConnection {
            registry: registry.to_owned(),
            plain_http,
            skip_verify: endpoint::is_listed_insecure(registry, &opts.insecure_registries),
            ca_files,
            client_identity: files.identity,
        })
    }
}
