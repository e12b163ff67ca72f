//! k3s and RKE2 `registries.yaml`: `mirrors` (the mirror as each source registry's endpoint,
//! with `rewrite` rules that put repositories where the mapping put them) and `configs` (the
//! mirror's TLS files and, only when asked, its credentials).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Generated, HostRule, SiteConfigError, SitePlan};
use crate::registry::Credential;

/// The file name written under the output directory.
pub const FILE_NAME: &str = "registries.yaml";

/// `registries.yaml`.
#[derive(Serialize)]
struct File {
    mirrors: BTreeMap<String, Mirror>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    configs: BTreeMap<String, Config>,
}

#[derive(Serialize)]
struct Mirror {
    endpoint: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    rewrite: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Config {
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<Tls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<Auth>,
}

#[derive(Serialize)]
struct Tls {
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure_skip_verify: bool,
}

#[derive(Serialize)]
struct Auth {
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_token: Option<String>,
}

/// `path` as a literal regular expression (RE2, as k3s compiles it).
fn regex_literal(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Renders `registries.yaml`. `credential` is the mirror's, included only when given (the
/// file is then secret).
pub fn generate(
    plan: &SitePlan,
    credential: Option<&Credential>,
) -> Result<Generated, SiteConfigError> {
    let mut warnings = super::retag_warnings(plan, "k3s");
    let mut mirrors = BTreeMap::new();
    for source in &plan.sources {
        let rewrite = match &source.rule {
            HostRule::Whole { path } if path.is_empty() => BTreeMap::new(),
            HostRule::Whole { path } => {
                BTreeMap::from([("^(.*)$".to_owned(), format!("{path}/$1"))])
            }
            HostRule::PerRepository(rules) => rules
                .iter()
                .map(|r| (format!("^{}$", regex_literal(&r.source)), r.target.clone()))
                .collect(),
        };
        mirrors.insert(
            source.registry.clone(),
            Mirror {
                endpoint: vec![plan.mirror_url()],
                rewrite,
            },
        );
    }
    let m = &plan.mirror;
    let tls = (!m.plain_http).then(|| {
        if m.ca_files.len() > 1 {
            warnings.push(format!(
                "k3s takes one CA file per registry: {} is written, the others ({}) are not; concatenate them into one file if the mirror needs more than one",
                m.ca_files[0].display(),
                m.ca_files[1..]
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Tls {
            ca_file: m.ca_files.first().map(|p| p.display().to_string()),
            cert_file: m.client_identity.as_ref().map(|(c, _)| c.display().to_string()),
            key_file: m.client_identity.as_ref().map(|(_, k)| k.display().to_string()),
            insecure_skip_verify: m.skip_verify,
        }
    });
    let tls =
        tls.filter(|t| t.ca_file.is_some() || t.cert_file.is_some() || t.insecure_skip_verify);
    let auth = credential.map(|c| {
        if c.username == crate::credentials::IDENTITY_TOKEN_USERNAME {
            Auth {
                username: None,
                password: None,
                identity_token: Some(c.password.clone()),
            }
        } else {
            Auth {
                username: Some(c.username.clone()),
                password: Some(c.password.clone()),
                identity_token: None,
            }
        }
    });
    let mut configs = BTreeMap::new();
    if tls.is_some() || auth.is_some() {
        configs.insert(m.registry.clone(), Config { tls, auth });
    }
    let text = serde_saphyr::to_string(&File { mirrors, configs })
        .map_err(super::yaml_error("registries.yaml"))?;
    let mut out = Generated::one(FILE_NAME, text, credential.is_some());
    out.warnings = warnings;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::plan;
    use super::super::testutil::{jobs, mirror};
    use super::*;
    use crate::mapping::MappingMode;

    /// The documented shape, parsed back.
    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        mirrors: BTreeMap<String, DocMirror>,
        #[serde(default)]
        configs: BTreeMap<String, serde_json::Value>,
    }
    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct DocMirror {
        endpoint: Vec<String>,
        #[serde(default)]
        rewrite: BTreeMap<String, String>,
    }

    fn parse(g: &Generated) -> Doc {
        serde_saphyr::from_str(std::str::from_utf8(&g.files[0].contents).unwrap()).unwrap()
    }

    #[test]
    fn prefix_keep_host_and_flatten() {
        let list = ["registry.k8s.io/coredns/coredns:v1", "nginx"];
        let g = generate(
            &plan(
                &jobs(&list, "m.example.com/mirror", MappingMode::Strip),
                mirror("m.example.com"),
            )
            .unwrap(),
            None,
        )
        .unwrap();
        assert!(!g.files[0].secret);
        let d = parse(&g);
        assert_eq!(d.mirrors["docker.io"].endpoint, ["https://m.example.com"]);
        assert_eq!(d.mirrors["docker.io"].rewrite["^(.*)$"], "mirror/$1");
        assert!(d.configs.is_empty());

        let g = generate(
            &plan(
                &jobs(&list, "m.example.com", MappingMode::KeepHost),
                mirror("m.example.com"),
            )
            .unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(
            parse(&g).mirrors["registry.k8s.io"].rewrite["^(.*)$"],
            "registry.k8s.io/$1"
        );

        let g = generate(
            &plan(
                &jobs(&list, "m.example.com/t", MappingMode::Flatten),
                mirror("m.example.com"),
            )
            .unwrap(),
            None,
        )
        .unwrap();
        let d = parse(&g);
        assert_eq!(
            d.mirrors["registry.k8s.io"].rewrite,
            BTreeMap::from([("^coredns/coredns$".to_owned(), "t/coredns".to_owned())])
        );
        assert_eq!(d.mirrors["docker.io"].rewrite["^library/nginx$"], "t/nginx");
    }

    #[test]
    fn tls_and_credentials() {
        let mut m = mirror("m.example.com:5000");
        m.ca_files = vec!["/etc/a.pem".into(), "/etc/b.pem".into()];
        m.client_identity = Some(("/etc/c.cert".into(), "/etc/c.key".into()));
        let j = jobs(
            &["quay.io/x.y/z:1"],
            "m.example.com:5000/p",
            MappingMode::Flatten,
        );
        let cred = Credential {
            username: "site".into(),
            password: "s3cret".into(),
        };
        let g = generate(&plan(&j, m).unwrap(), Some(&cred)).unwrap();
        assert!(g.files[0].secret);
        assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
        let d = parse(&g);
        assert_eq!(d.mirrors["quay.io"].rewrite["^x\\.y/z$"], "p/z");
        let c = &d.configs["m.example.com:5000"];
        assert_eq!(c["tls"]["ca_file"], "/etc/a.pem");
        assert_eq!(c["tls"]["cert_file"], "/etc/c.cert");
        assert_eq!(c["tls"]["key_file"], "/etc/c.key");
        assert_eq!(c["auth"]["username"], "site");
        assert_eq!(c["auth"]["password"], "s3cret");
    }

    #[test]
    fn plain_http_mirror() {
        let mut m = mirror("10.0.0.1:5000");
        m.plain_http = true;
        let j = jobs(&["quay.io/a/b:1"], "10.0.0.1:5000", MappingMode::Strip);
        let d = parse(&generate(&plan(&j, m).unwrap(), None).unwrap());
        assert_eq!(d.mirrors["quay.io"].endpoint, ["http://10.0.0.1:5000"]);
        assert!(d.mirrors["quay.io"].rewrite.is_empty());
        assert!(d.configs.is_empty());
    }
}
