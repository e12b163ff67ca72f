//! A Kubernetes `Secret` of type `kubernetes.io/dockerconfigjson` holding the credential
//! airlift uses for the mirror, for `imagePullSecrets` (or the cluster's global pull secret).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::{Generated, SiteConfigError};
use crate::credentials::{FoundCredential, IDENTITY_TOKEN_USERNAME, server_address};

/// The file name written under the output directory.
pub const FILE_NAME: &str = "pull-secret.yaml";

/// Options of the secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretOptions {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; none leaves it to `kubectl apply -n`.
    pub namespace: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Secret {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    #[serde(rename = "type")]
    kind_of: &'static str,
    data: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct Metadata {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
}

/// `.dockerconfigjson`'s content.
#[derive(Serialize)]
struct DockerConfig {
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Serialize)]
struct AuthEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identitytoken: Option<String>,
}

/// Renders the secret for `registry` (the mirror, `host[:port]`).
pub fn generate(
    registry: &str,
    found: &FoundCredential,
    opts: &SecretOptions,
) -> Result<Generated, SiteConfigError> {
    let c = &found.credential;
    let mut warnings = Vec::new();
    let entry = if c.username == IDENTITY_TOKEN_USERNAME {
        warnings.push(format!(
            "the credential for {registry} is an identity token (OAuth2 refresh token); kubelet and most runtimes cannot use one: log in with a user name and password or a robot account"
        ));
        AuthEntry {
            username: None,
            password: None,
            auth: None,
            identitytoken: Some(c.password.clone()),
        }
    } else {
        AuthEntry {
            auth: Some(STANDARD.encode(format!("{}:{}", c.username, c.password))),
            username: Some(c.username.clone()),
            password: Some(c.password.clone()),
            identitytoken: None,
        }
    };
    if let Some(helper) = &found.helper {
        warnings.push(format!(
            "the credential for {registry} comes from {helper}; helpers often hand out short-lived tokens, so the secret may stop working when it expires: prefer a long-lived robot account for pull secrets"
        ));
    }
    let config = DockerConfig {
        auths: BTreeMap::from([(server_address(registry), entry)]),
    };
    let json = serde_json::to_vec(&config).map_err(|e| SiteConfigError::Serialize {
        what: ".dockerconfigjson",
        reason: e.to_string(),
    })?;
    let secret = Secret {
        api_version: "v1",
        kind: "Secret",
        metadata: Metadata {
            name: opts.name.clone(),
            namespace: opts.namespace.clone(),
        },
        kind_of: "kubernetes.io/dockerconfigjson",
        data: BTreeMap::from([(".dockerconfigjson", STANDARD.encode(json))]),
    };
    let text = serde_saphyr::to_string(&secret).map_err(super::yaml_error("pull secret"))?;
    let mut out = Generated::one(FILE_NAME, text, true);
    out.warnings = warnings;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Credential;

    fn decode(g: &Generated) -> (serde_json::Value, serde_json::Value) {
        let doc: serde_json::Value =
            serde_saphyr::from_str(std::str::from_utf8(&g.files[0].contents).unwrap()).unwrap();
        let inner = STANDARD
            .decode(doc["data"][".dockerconfigjson"].as_str().unwrap())
            .unwrap();
        (doc.clone(), serde_json::from_slice(&inner).unwrap())
    }

    #[test]
    fn holds_exactly_the_credential() {
        let found = FoundCredential {
            credential: Credential {
                username: "site".into(),
                password: "p:ss".into(),
            },
            helper: None,
        };
        let opts = SecretOptions {
            name: "mirror-pull".into(),
            namespace: Some("apps".into()),
        };
        let g = generate("m.example.com:5000", &found, &opts).unwrap();
        assert!(g.files[0].secret);
        assert!(g.warnings.is_empty());
        let (doc, config) = decode(&g);
        assert_eq!(doc["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(doc["kind"], "Secret");
        assert_eq!(doc["metadata"]["name"], "mirror-pull");
        assert_eq!(doc["metadata"]["namespace"], "apps");
        assert_eq!(
            config,
            serde_json::json!({"auths": {"m.example.com:5000": {
                "username": "site", "password": "p:ss", "auth": STANDARD.encode("site:p:ss")
            }}})
        );
    }

    #[test]
    fn helper_and_docker_hub() {
        let found = FoundCredential {
            credential: Credential {
                username: "u".into(),
                password: "t".into(),
            },
            helper: Some("docker-credential-ecr-login".into()),
        };
        let opts = SecretOptions {
            name: "n".into(),
            namespace: None,
        };
        let g = generate("docker.io", &found, &opts).unwrap();
        assert_eq!(g.warnings.len(), 1);
        assert!(g.warnings[0].contains("short-lived"));
        let (doc, config) = decode(&g);
        assert!(doc["metadata"].get("namespace").is_none());
        assert!(config["auths"]["https://index.docker.io/v1/"].is_object());
    }
}
