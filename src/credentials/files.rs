//! Reading docker's `config.json` and podman/skopeo's `auth.json`, and where they live.
//!
//! Both files share a shape: `auths` maps a registry key to `{auth | username+password |
//! identitytoken}`, and `credHelpers` maps a registry to a helper name. Only docker's file
//! honours `credsStore` (containers/image ignores it too).

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;

use super::json::{self, Json};
use super::{CredentialError, helper, normalize_registry, server_address};
use crate::registry::Credential;

/// The user name that marks an identity token in the password field (docker's convention).
pub const IDENTITY_TOKEN_USERNAME: &str = "<token>";

/// Which tool's file this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// docker's `config.json`: keys are converted to host names as docker does.
    DockerConfig,
    /// podman/skopeo's `auth.json`: a key with a path (`quay.io/org`) is scoped to that
    /// namespace, which a per-host lookup cannot honour, so it is skipped.
    AuthJson,
}

/// One parsed credentials file.
pub(crate) struct AuthFile {
    pub(crate) path: PathBuf,
    pub(crate) kind: FileKind,
    creds_store: Option<String>,
    /// (normalised host, helper name), in file order.
    cred_helpers: Vec<(String, String)>,
    auths: Vec<AuthEntry>,
}

struct AuthEntry {
    /// Normalised host.
    host: String,
    /// The key was the host itself (or docker's Hub URL), not a legacy URL form.
    exact: bool,
    /// `None` for an empty placeholder (`{}`, written by docker next to a credential store).
    credential: Option<Credential>,
}

/// What a file says about one host.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// Ask this helper.
    Helper(&'a str),
    /// This credential.
    Static(&'a Credential),
    /// Nothing here; look further.
    Nothing,
}

impl fmt::Debug for AuthFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<&str> = self
            .auths
            .iter()
            .filter(|e| e.credential.is_some())
            .map(|e| e.host.as_str())
            .collect();
        f.debug_struct("AuthFile")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("creds_store", &self.creds_store)
            .field("cred_helpers", &self.cred_helpers)
            .field("hosts_with_credentials", &hosts)
            .finish()
    }
}

impl AuthFile {
    /// Reads and parses `path`; `Ok(None)` when it does not exist.
    pub(crate) fn read(path: &Path, kind: FileKind) -> Result<Option<AuthFile>, CredentialError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(path, kind, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CredentialError::ReadFile {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses the text of `path`.
    pub(crate) fn parse(
        path: &Path,
        kind: FileKind,
        bytes: &[u8],
    ) -> Result<AuthFile, CredentialError> {
        let invalid = |reason: String| CredentialError::InvalidFile {
            path: path.to_owned(),
            reason,
        };
        let root = json::parse(bytes).map_err(invalid)?;
        if root.as_object().is_none() {
            return Err(invalid("the top level is not a JSON object".into()));
        }
        let helper_name = |name: &str| -> Result<String, CredentialError> {
            if helper::valid_name(name) {
                Ok(name.to_owned())
            } else {
                Err(CredentialError::InvalidHelperName {
                    path: path.to_owned(),
                    helper: name.to_owned(),
                })
            }
        };

        let creds_store = match (kind, root.get("credsStore")) {
            (FileKind::DockerConfig, Some(Json::String(s))) if !s.is_empty() => {
                Some(helper_name(s)?)
            }
            (FileKind::DockerConfig, Some(Json::String(_) | Json::Null) | None) => None,
            (FileKind::DockerConfig, Some(_)) => {
                return Err(invalid("`credsStore` is not a string".into()));
            }
            (FileKind::AuthJson, _) => None,
        };

        let mut cred_helpers = Vec::new();
        match root.get("credHelpers") {
            None | Some(Json::Null) => {}
            Some(Json::Object(entries)) => {
                for (key, value) in entries {
                    let Json::String(name) = value else {
                        return Err(invalid(format!(
                            "`credHelpers` entry `{key}` is not a string"
                        )));
                    };
                    let host = normalize_registry(key);
                    if name.is_empty() || host.is_empty() {
                        continue;
                    }
                    cred_helpers.push((host, helper_name(name)?));
                }
            }
            Some(_) => return Err(invalid("`credHelpers` is not an object".into())),
        }

        let mut auths = Vec::new();
        match root.get("auths") {
            None | Some(Json::Null) => {}
            Some(Json::Object(entries)) => {
                for (key, value) in entries {
                    if let Some(entry) = parse_entry(path, kind, key, value)? {
                        auths.push(entry);
                    }
                }
            }
            Some(_) => return Err(invalid("`auths` is not an object".into())),
        }

        Ok(AuthFile {
            path: path.to_owned(),
            kind,
            creds_store,
            cred_helpers,
            auths,
        })
    }

    /// What this file says about `host` (normalised), in docker's order: `credHelpers[host]`,
    /// then `credsStore`, then `auths`.
    pub(crate) fn step(&self, host: &str) -> Step<'_> {
        // Last one wins among duplicates, as with JSON keys.
        if let Some((_, name)) = self.cred_helpers.iter().rev().find(|(h, _)| h == host) {
            return Step::Helper(name);
        }
        if let Some(name) = &self.creds_store {
            return Step::Helper(name);
        }
        let with_credential = |exact: bool| {
            self.auths
                .iter()
                .filter(|e| e.host == host && e.exact == exact)
                .find_map(|e| e.credential.as_ref())
        };
        match with_credential(true).or_else(|| with_credential(false)) {
            Some(c) => Step::Static(c),
            None => Step::Nothing,
        }
    }

    /// The helper this file routes `host` to, if any (for `login`/`logout`).
    pub(crate) fn helper_for(&self, host: &str) -> Option<&str> {
        match self.step(host) {
            Step::Helper(h) => Some(h),
            _ => None,
        }
    }
}

/// One `auths` entry; `None` when it does not apply to a single host.
fn parse_entry(
    path: &Path,
    kind: FileKind,
    key: &str,
    value: &Json,
) -> Result<Option<AuthEntry>, CredentialError> {
    let bad = |reason: &str| CredentialError::InvalidEntry {
        path: path.to_owned(),
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let lower = key.trim().to_ascii_lowercase();
    let has_scheme = lower.starts_with("http://") || lower.starts_with("https://");
    if kind == FileKind::AuthJson && !has_scheme && lower.trim_end_matches('/').contains('/') {
        tracing::debug!(file = %path.display(), key, "skipping namespace-scoped auth.json entry");
        return Ok(None);
    }
    let host = normalize_registry(key);
    if host.is_empty() {
        return Ok(None);
    }
    let exact = lower == host || key == server_address(&host);
    if matches!(value, Json::Null) {
        return Ok(None);
    }
    if value.as_object().is_none() {
        return Err(bad("not a JSON object"));
    }
    let field = |name: &str| -> Result<&str, CredentialError> {
        match value.get(name) {
            None | Some(Json::Null) => Ok(""),
            Some(Json::String(s)) => Ok(s),
            Some(_) => Err(bad(&format!("`{name}` is not a string"))),
        }
    };
    let token = field("identitytoken")?;
    let auth = field("auth")?;
    let (username, password) = (field("username")?, field("password")?);
    let credential = if !token.is_empty() {
        Some(Credential {
            username: IDENTITY_TOKEN_USERNAME.to_owned(),
            password: token.to_owned(),
        })
    } else if !auth.is_empty() {
        let (user, pass) = decode_auth(auth).map_err(bad)?;
        Some(Credential {
            username: user,
            password: pass,
        })
    } else if !username.is_empty() && !password.is_empty() {
        Some(Credential {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    } else {
        None
    };
    Ok(Some(AuthEntry {
        host,
        exact,
        credential,
    }))
}

/// Decodes an `auth` value, base64 of `user:password` (padding optional), as docker does:
/// the user must not be empty, and NULs around the password are dropped.
pub(crate) fn decode_auth(auth: &str) -> Result<(String, String), &'static str> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine
        .decode(auth.trim())
        .map_err(|_| "`auth` is not base64")?;
    let text = String::from_utf8(bytes).map_err(|_| "`auth` does not decode to UTF-8")?;
    let (user, pass) = text
        .split_once(':')
        .ok_or("`auth` does not decode to user:password")?;
    if user.is_empty() {
        return Err("`auth` has an empty user name");
    }
    Ok((user.to_owned(), pass.trim_matches('\0').to_owned()))
}

/// Encodes `user:password` for an `auth` value.
pub(crate) fn encode_auth(username: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
}

/// docker's config directory from the environment: `$DOCKER_CONFIG`, else `~/.docker`.
pub(crate) fn docker_config_dir_from_env() -> Option<PathBuf> {
    non_empty_env("DOCKER_CONFIG").or_else(|| non_empty_env("HOME").map(|h| h.join(".docker")))
}

/// podman/skopeo's default auth files, in containers/image's order: `$REGISTRY_AUTH_FILE`
/// (else `$XDG_RUNTIME_DIR/containers/auth.json`, else `/run/containers/$UID/auth.json`),
/// then `$XDG_CONFIG_HOME/containers/auth.json` (else `~/.config/containers/auth.json`).
pub(crate) fn default_authfiles_from_env() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = non_empty_env("REGISTRY_AUTH_FILE") {
        files.push(file);
    } else if let Some(dir) = non_empty_env("XDG_RUNTIME_DIR") {
        files.push(dir.join("containers/auth.json"));
    } else {
        let uid = rustix::process::getuid().as_raw();
        files.push(PathBuf::from(format!("/run/containers/{uid}/auth.json")));
    }
    if let Some(dir) = non_empty_env("XDG_CONFIG_HOME") {
        files.push(dir.join("containers/auth.json"));
    } else if let Some(home) = non_empty_env("HOME") {
        files.push(home.join(".config/containers/auth.json"));
    }
    files
}

fn non_empty_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: FileKind, text: &str) -> AuthFile {
        AuthFile::parse(Path::new("/t/config.json"), kind, text.as_bytes()).unwrap()
    }

    fn parse_err(kind: FileKind, text: &str) -> CredentialError {
        AuthFile::parse(Path::new("/t/config.json"), kind, text.as_bytes()).unwrap_err()
    }

    fn user_pass(step: Step<'_>) -> (String, String) {
        match step {
            Step::Static(c) => (c.username.clone(), c.password.clone()),
            other => panic!("expected a credential, got {other:?}"),
        }
    }

    #[test]
    fn auth_field_is_base64_user_colon_pass() {
        // "alice:pa:ss" — the password may hold colons.
        let f = parse(
            FileKind::DockerConfig,
            r#"{"auths":{"reg.example":{"auth":"YWxpY2U6cGE6c3M="}}}"#,
        );
        assert_eq!(
            user_pass(f.step("reg.example")),
            ("alice".into(), "pa:ss".into())
        );
        assert!(matches!(f.step("other.example"), Step::Nothing));
    }

    #[test]
    fn unpadded_auth_is_accepted() {
        let f = parse(
            FileKind::DockerConfig,
            r#"{"auths":{"r":{"auth":"dTpw"}},"x":1}"#,
        );
        assert_eq!(user_pass(f.step("r")), ("u".into(), "p".into()));
        let f = parse(
            FileKind::DockerConfig,
            r#"{"auths":{"r":{"auth":"dTpwcQ"}}}"#,
        );
        assert_eq!(user_pass(f.step("r")), ("u".into(), "pq".into()));
    }

    #[test]
    fn username_and_password_fields() {
        let f = parse(
            FileKind::AuthJson,
            r#"{"auths":{"harbor.corp":{"username":"robot$ci","password":"tok"}}}"#,
        );
        assert_eq!(
            user_pass(f.step("harbor.corp")),
            ("robot$ci".into(), "tok".into())
        );
    }

    #[test]
    fn identity_token_becomes_token_username() {
        let f = parse(
            FileKind::DockerConfig,
            r#"{"auths":{"acr.example":{"auth":"dTpw","identitytoken":"idtok"}}}"#,
        );
        assert_eq!(
            user_pass(f.step("acr.example")),
            ("<token>".into(), "idtok".into())
        );
    }

    #[test]
    fn empty_placeholder_gives_nothing() {
        let f = parse(FileKind::DockerConfig, r#"{"auths":{"reg.example":{}}}"#);
        assert!(matches!(f.step("reg.example"), Step::Nothing));
    }

    #[test]
    fn cred_helpers_win_over_creds_store_and_auths() {
        let f = parse(
            FileKind::DockerConfig,
            r#"{"auths":{"a.example":{"auth":"dTpw"}},"credsStore":"desktop",
               "credHelpers":{"123.dkr.ecr.us-east-1.amazonaws.com":"ecr-login","https://gcr.io":"gcloud"}}"#,
        );
        assert!(matches!(
            f.step("123.dkr.ecr.us-east-1.amazonaws.com"),
            Step::Helper("ecr-login")
        ));
        assert!(matches!(f.step("gcr.io"), Step::Helper("gcloud")));
        // With a store configured, docker never reads `auths` for credentials.
        assert!(matches!(f.step("a.example"), Step::Helper("desktop")));
    }

    #[test]
    fn auth_json_ignores_creds_store_but_honours_cred_helpers() {
        let f = parse(
            FileKind::AuthJson,
            r#"{"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"},"auths":{"a.example":{"auth":"dTpw"}}}"#,
        );
        assert!(matches!(f.step("gcr.io"), Step::Helper("gcloud")));
        assert_eq!(user_pass(f.step("a.example")), ("u".into(), "p".into()));
    }

    #[test]
    fn docker_hub_keys_all_mean_docker_hub() {
        for key in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
            "https://registry-1.docker.io/v2/",
        ] {
            let f = parse(
                FileKind::DockerConfig,
                &format!(r#"{{"auths":{{"{key}":{{"auth":"dTpw"}}}}}}"#),
            );
            assert_eq!(
                user_pass(f.step("docker.io")),
                ("u".into(), "p".into()),
                "key {key}"
            );
        }
    }

    #[test]
    fn url_keys_with_port_and_path() {
        let f = parse(
            FileKind::DockerConfig,
            r#"{"auths":{"https://reg:5000/v2/":{"auth":"dTpw"},"http://plain:80/v1/":{"username":"a","password":"b"}}}"#,
        );
        assert_eq!(user_pass(f.step("reg:5000")), ("u".into(), "p".into()));
        assert_eq!(user_pass(f.step("plain:80")), ("a".into(), "b".into()));
        assert!(matches!(f.step("reg"), Step::Nothing));
    }

    #[test]
    fn the_bare_host_key_beats_legacy_forms() {
        let f = parse(
            FileKind::DockerConfig,
            r#"{"auths":{"https://reg.example/v1/":{"auth":"b2xkOm9sZA=="},"reg.example":{"auth":"bmV3Om5ldw=="}}}"#,
        );
        assert_eq!(
            user_pass(f.step("reg.example")),
            ("new".into(), "new".into())
        );
    }

    #[test]
    fn namespace_keys_in_auth_json_are_skipped() {
        let f = parse(
            FileKind::AuthJson,
            r#"{"auths":{"quay.io/org":{"auth":"dTpw"}}}"#,
        );
        assert!(matches!(f.step("quay.io"), Step::Nothing));
        // docker converts any key to its host.
        let f = parse(
            FileKind::DockerConfig,
            r#"{"auths":{"quay.io/org":{"auth":"dTpw"}}}"#,
        );
        assert!(matches!(f.step("quay.io"), Step::Static(_)));
    }

    #[test]
    fn bad_entries_name_file_and_key_but_not_the_value() {
        let err = parse_err(
            FileKind::DockerConfig,
            r#"{"auths":{"reg.example":{"auth":"bm9jb2xvbg=="}}}"#,
        );
        let msg = err.to_string();
        assert!(
            msg.contains("/t/config.json") && msg.contains("reg.example"),
            "{msg}"
        );
        assert!(!msg.contains("bm9jb2xvbg"), "{msg}");
        let err = parse_err(FileKind::DockerConfig, r#"{"auths":{"r":{"auth":"!!!"}}}"#);
        assert!(err.to_string().contains("not base64"), "{err}");
        let err = parse_err(
            FileKind::DockerConfig,
            r#"{"auths":{"r":{"password":12345}}}"#,
        );
        assert!(!err.to_string().contains("12345"), "{err}");
        let err = parse_err(FileKind::DockerConfig, r#"{"auths":[]}"#);
        assert!(
            matches!(err, CredentialError::InvalidFile { .. }),
            "{err:?}"
        );
        let err = parse_err(FileKind::DockerConfig, r#"{"credsStore":"../../bin/evil"}"#);
        assert!(
            matches!(err, CredentialError::InvalidHelperName { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn auth_round_trip() {
        let enc = encode_auth("robot$harbor+ci", "p@ss:w0rd");
        assert_eq!(
            decode_auth(&enc).unwrap(),
            ("robot$harbor+ci".into(), "p@ss:w0rd".into())
        );
        assert!(decode_auth(&encode_auth("", "x")).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let f = parse(
            FileKind::DockerConfig,
            r#"{"auths":{"r":{"username":"u","password":"SECRETPW"}}}"#,
        );
        let dbg = format!("{f:?}");
        assert!(!dbg.contains("SECRETPW"), "{dbg}");
        assert!(dbg.contains("\"r\""), "{dbg}");
    }
}
