//! Where a registry name is served and how it may be reached: Docker Hub's API host, loopback
//! and `--insecure-registry` hosts (plain HTTP or unverified HTTPS), and per-host state
//! learned at run time (the working scheme, the last auth challenge).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use tokio::sync::OnceCell;

use super::challenge::Challenge;

/// The host that serves the API of `registry` (`docker.io` is an alias).
pub(super) fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// The host part of `host[:port]`, without IPv6 brackets.
pub(super) fn host_part(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    // More than one colon and no brackets: a bare IPv6 address without a port.
    if host_port.matches(':').count() > 1 {
        return host_port;
    }
    host_port.split(':').next().unwrap_or(host_port)
}

/// Whether `host[:port]` names this machine.
pub(super) fn is_loopback(host_port: &str) -> bool {
    let host = host_part(host_port);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip == Ipv6Addr::LOCALHOST
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4: Ipv4Addr| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// Whether `registry` may be reached over plain HTTP or unverified HTTPS: loopback hosts, and
/// entries of `insecure` naming it exactly or naming its host without a port.
pub(super) fn is_insecure(registry: &str, insecure: &[String]) -> bool {
    is_loopback(registry) || is_listed_insecure(registry, insecure)
}

/// Whether `registry` is listed in `insecure` (exactly, or by its host without a port): its
/// HTTPS certificate is not checked. Loopback hosts are not implicitly listed.
pub(super) fn is_listed_insecure(registry: &str, insecure: &[String]) -> bool {
    insecure.iter().any(|entry| {
        let entry = entry.trim();
        entry == registry
            || (entry == host_part(entry) && !entry.contains(':') && entry == host_part(registry))
    })
}

/// What the client knows about one registry host.
pub(super) struct Host {
    /// The registry name as the caller gave it (for credentials and messages).
    pub registry: String,
    /// The `host[:port]` the API is served at.
    pub api_host: String,
    /// Plain HTTP allowed (loopback or listed insecure).
    pub insecure: bool,
    /// The connection pool serving this host: the shared one, or one with the host's own
    /// CAs and client certificate.
    pub client: reqwest::Client,
    /// `scheme://host/` once probed; a failed probe leaves it empty so the next caller retries.
    pub base: OnceCell<url::Url>,
    /// The challenge the host last answered with (from `/v2/` or any 401).
    pub challenge: Mutex<Option<Challenge>>,
}

impl Host {
    /// State for `registry`, nothing learned yet.
    pub fn new(registry: &str, insecure_list: &[String], client: reqwest::Client) -> Self {
        Host {
            registry: registry.to_owned(),
            api_host: api_host(registry).to_owned(),
            insecure: is_insecure(registry, insecure_list),
            client,
            base: OnceCell::new(),
            challenge: Mutex::new(None),
        }
    }

    /// Schemes to try, in order: docker tries HTTPS first even for insecure registries.
    pub fn candidate_bases(&self) -> Vec<url::Url> {
        let schemes: &[&str] = if self.insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        schemes
            .iter()
            .filter_map(|s| url::Url::parse(&format!("{s}://{}/", self.api_host)).ok())
            .collect()
    }

    /// The last challenge seen.
    pub fn challenge(&self) -> Option<Challenge> {
        self.challenge
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Remembers a challenge.
    pub fn set_challenge(&self, c: Challenge) {
        *self.challenge.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_alias() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("index.docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn loopback_detection() {
        for yes in [
            "localhost",
            "localhost:5000",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.0.0.1:43123",
            "127.8.9.10:80",
            "[::1]",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "docker.io",
            "128.0.0.1:5000",
            "10.0.0.1",
            "localhost.example.com",
            "[::2]:5000",
            "my-localhost:5000",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[test]
    fn insecure_matching() {
        let list = vec!["reg.lan:5000".to_owned(), "mirror.lan".to_owned()];
        assert!(is_insecure("reg.lan:5000", &list));
        assert!(!is_insecure("reg.lan:5001", &list));
        assert!(!is_insecure("reg.lan", &list));
        assert!(is_insecure("mirror.lan", &list));
        assert!(is_insecure("mirror.lan:8443", &list));
        assert!(!is_insecure("docker.io", &list));
        assert!(is_insecure("127.0.0.1:9", &[]));
        assert!(!is_listed_insecure("127.0.0.1:9", &[]));
        assert!(!is_listed_insecure(
            "127.0.0.1:9",
            &["127.0.0.1:8".to_owned()]
        ));
        assert!(is_listed_insecure(
            "127.0.0.1:9",
            &["127.0.0.1:9".to_owned()]
        ));
        assert!(is_listed_insecure("mirror.lan:1", &list));
        assert!(!is_listed_insecure("docker.io", &list));
    }

    #[test]
    fn candidate_schemes() {
        let h = Host::new("localhost:5000", &[], reqwest::Client::new());
        let bases: Vec<String> = h.candidate_bases().iter().map(|u| u.to_string()).collect();
        assert_eq!(bases, ["https://localhost:5000/", "http://localhost:5000/"]);
        let h = Host::new("docker.io", &[], reqwest::Client::new());
        let bases: Vec<String> = h.candidate_bases().iter().map(|u| u.to_string()).collect();
        assert_eq!(bases, ["https://registry-1.docker.io/"]);
    }
}
