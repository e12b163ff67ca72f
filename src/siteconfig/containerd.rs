//! containerd's registry hosts directory (`certs.d`, `config_path`): one
//! `<source host>/hosts.toml` per source registry, naming the mirror as a pull/resolve host.
//!
//! containerd keeps a source repository's path and only swaps the host and API root, so it
//! can express a whole-registry rule (`MIRROR/v2/PATH` with `override_path = true`) but not
//! per-repository rules (`--flatten`, explicit targets). The mirror's CA files are bundled
//! into `<source host>/mirror-ca.pem` next to `hosts.toml` (containerd reads relative paths
//! from there), so the directory can be copied to a node as it is.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::{Generated, HostRule, OutputFile, SiteConfigError, SitePlan, ca_bundle};

/// The CA bundle's name in each host directory.
const CA_FILE: &str = "mirror-ca.pem";

/// One `hosts.toml`.
#[derive(Serialize)]
struct HostsFile {
    server: String,
    host: BTreeMap<String, MirrorHost>,
}

/// One `[host."URL"]` table.
#[derive(Serialize)]
struct MirrorHost {
    capabilities: Vec<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    override_path: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<Vec<[String; 2]>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skip_verify: bool,
}

/// The server containerd falls back to for `registry` (Docker Hub's API host for
/// `docker.io`).
fn server(registry: &str) -> String {
    match registry {
        "docker.io" => "https://registry-1.docker.io".to_owned(),
        other => format!("https://{other}"),
    }
}

/// Renders the hosts directory.
pub fn generate(plan: &SitePlan) -> Result<Generated, SiteConfigError> {
    let tls = !plan.mirror.plain_http;
    let ca = if tls { ca_bundle(&plan.mirror)? } else { None };
    let mut out = Generated {
        warnings: super::retag_warnings(plan, "containerd"),
        ..Generated::default()
    };
    for source in &plan.sources {
        let HostRule::Whole { path } = &source.rule else {
            return Err(SiteConfigError::Unsupported {
                runtime: "containerd",
                reason: format!(
                    "the images of {} are not all under one path of the mirror (--flatten or explicit targets), and containerd only swaps the registry and API root, never a repository's path; map with a prefix or --keep-host, or use --for containers or --for image-map",
                    source.registry
                ),
            });
        };
        let (url, override_path) = if path.is_empty() {
            (plan.mirror_url(), false)
        } else {
            (format!("{}/v2/{path}", plan.mirror_url()), true)
        };
        let host = MirrorHost {
            capabilities: vec!["pull", "resolve"],
            override_path,
            ca: ca.is_some().then(|| CA_FILE.to_owned()),
            client: plan
                .mirror
                .client_identity
                .as_ref()
                .filter(|_| tls)
                .map(|(cert, key)| vec![[path_str(cert), path_str(key)]]),
            skip_verify: tls && plan.mirror.skip_verify,
        };
        let file = HostsFile {
            server: server(&source.registry),
            host: BTreeMap::from([(url, host)]),
        };
        let text = toml::to_string(&file).map_err(super::toml_error("hosts.toml"))?;
        let dir = PathBuf::from(&source.registry);
        out.files.push(OutputFile {
            path: dir.join("hosts.toml"),
            contents: text.into_bytes(),
            secret: false,
        });
        if let Some(bundle) = &ca {
            out.files.push(OutputFile {
                path: dir.join(CA_FILE),
                contents: bundle.clone(),
                secret: false,
            });
        }
    }
    Ok(out)
}

fn path_str(p: &std::path::Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::super::plan;
    use super::super::testutil::{jobs, mirror};
    use super::*;
    use crate::mapping::MappingMode;

    fn files(g: &Generated) -> Vec<(String, String)> {
        g.files
            .iter()
            .map(|f| {
                (
                    f.path.display().to_string(),
                    String::from_utf8(f.contents.clone()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn prefix_mapping() {
        let j = jobs(
            &["registry.k8s.io/pause:3.10", "nginx:1.27"],
            "m.example.com:5000/mirror",
            MappingMode::Strip,
        );
        let g = generate(&plan(&j, mirror("m.example.com:5000")).unwrap()).unwrap();
        let f = files(&g);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].0, "docker.io/hosts.toml");
        assert_eq!(
            f[0].1,
            "server = \"https://registry-1.docker.io\"\n\n[host.\"https://m.example.com:5000/v2/mirror\"]\ncapabilities = [\"pull\", \"resolve\"]\noverride_path = true\n"
        );
        assert_eq!(f[1].0, "registry.k8s.io/hosts.toml");
        let parsed: toml::Table = toml::from_str(&f[1].1).unwrap();
        assert_eq!(parsed["server"].as_str(), Some("https://registry.k8s.io"));
        assert!(g.warnings.is_empty());
    }

    #[test]
    fn keep_host_plain_http_without_prefix() {
        let j = jobs(
            &["127.0.0.1:5001/a/b:v1"],
            "127.0.0.1:5002",
            MappingMode::KeepHost,
        );
        let mut m = mirror("127.0.0.1:5002");
        m.plain_http = true;
        m.ca_files = vec!["/nonexistent/ignored-for-http.pem".into()];
        let f = files(&generate(&plan(&j, m).unwrap()).unwrap());
        assert_eq!(f.len(), 1, "no CA for plain HTTP");
        assert_eq!(f[0].0, "127.0.0.1:5001/hosts.toml");
        assert!(
            f[0].1
                .contains("[host.\"http://127.0.0.1:5002/v2/127.0.0.1_5001\"]\ncapabilities = [\"pull\", \"resolve\"]\noverride_path = true\n"),
            "{}",
            f[0].1
        );
    }

    #[test]
    fn root_of_the_mirror_needs_no_override() {
        let j = jobs(&["quay.io/a/b:1"], "m.example.com", MappingMode::Strip);
        let f = files(&generate(&plan(&j, mirror("m.example.com")).unwrap()).unwrap());
        assert!(f[0].1.contains(
            "[host.\"https://m.example.com\"]\ncapabilities = [\"pull\", \"resolve\"]\n"
        ));
        assert!(!f[0].1.contains("override_path"));
    }

    #[test]
    fn tls_files_and_skip_verify() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----",
        )
        .unwrap();
        let mut m = mirror("m.example.com");
        m.ca_files = vec![ca.clone(), ca];
        m.client_identity = Some(("/etc/c.cert".into(), "/etc/c.key".into()));
        m.skip_verify = true;
        let j = jobs(&["quay.io/a/b:1"], "m.example.com/p", MappingMode::Strip);
        let f = files(&generate(&plan(&j, m).unwrap()).unwrap());
        let parsed: toml::Table = toml::from_str(&f[0].1).unwrap();
        let host = &parsed["host"]["https://m.example.com/v2/p"];
        assert_eq!(host["ca"].as_str(), Some("mirror-ca.pem"));
        assert_eq!(host["client"][0][0].as_str(), Some("/etc/c.cert"));
        assert_eq!(host["client"][0][1].as_str(), Some("/etc/c.key"));
        assert_eq!(host["skip_verify"].as_bool(), Some(true));
        assert_eq!(f[1].0, "quay.io/mirror-ca.pem");
        assert_eq!(f[1].1.matches("BEGIN CERTIFICATE").count(), 2);
    }

    #[test]
    fn flatten_is_refused() {
        let j = jobs(
            &["registry.k8s.io/coredns/coredns:v1"],
            "m.example.com/t",
            MappingMode::Flatten,
        );
        let err = generate(&plan(&j, mirror("m.example.com")).unwrap()).unwrap_err();
        assert!(err.is_usage());
        assert!(
            err.to_string().starts_with(
                "containerd cannot express this mapping: the images of registry.k8s.io"
            ),
            "{err}"
        );
    }
}
