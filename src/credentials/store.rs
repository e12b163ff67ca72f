//! `login` and `logout`: storing and removing credentials the way `docker login`/`logout` do.
//!
//! When docker's `config.json` routes the registry to a helper (`credHelpers[host]`, else
//! `credsStore`) the secret goes to `docker-credential-NAME store` and the file only gets an
//! empty `auths` placeholder; otherwise it goes into `auths[server].auth` as base64 of
//! `user:password`. The file is edited as ordered JSON so every other key and the key order
//! survive, and written atomically (temp file + rename) with mode 0600.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::files::{self, encode_auth};
use super::helper::{self, HelperRunner};
use super::json::{self, Json};
use super::{CredentialError, CredentialOptions, normalize_registry, server_address};

/// Where [`login`] stored the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// In a credential helper; `config` got an empty `auths` entry, as docker writes.
    Helper {
        /// The program, `docker-credential-NAME`.
        helper: String,
        /// docker's `config.json`.
        config: PathBuf,
    },
    /// Base64-encoded (not encrypted) in docker's `config.json`.
    ConfigFile {
        /// docker's `config.json`.
        path: PathBuf,
    },
}

impl fmt::Display for LoginOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginOutcome::Helper { helper, .. } => {
                write!(f, "credentials stored in credential helper {helper}")
            }
            LoginOutcome::ConfigFile { path } => write!(
                f,
                "credentials stored unencrypted in {}; configure a credential helper to avoid this",
                path.display()
            ),
        }
    }
}

/// Stores `username`/`password` for `registry` as `docker login` does (Docker Hub under
/// `https://index.docker.io/v1/`). It does not contact the registry: verify the credentials
/// with the registry client first. Any older entry for the same host under another key form
/// (`https://reg:5000/v2/`) is replaced.
pub async fn login(
    registry: &str,
    username: &str,
    password: &str,
    opts: &CredentialOptions,
) -> Result<LoginOutcome, CredentialError> {
    let host = checked_host(registry)?;
    if username.is_empty() {
        return Err(CredentialError::MissingUsername { registry: host });
    }
    let (username, password) = (username.to_owned(), password.to_owned());
    let path = opts.docker_config_file()?;
    let runner = opts.runner();
    blocking(move || login_blocking(&host, &username, &password, &path, &runner)).await
}

/// Removes the credentials for `registry` as `docker logout` does: from the helper the config
/// routes it to (`erase`, for each key form docker may have stored) and from `auths`.
/// `true` when something was removed (or a helper accepted an erase).
pub async fn logout(registry: &str, opts: &CredentialOptions) -> Result<bool, CredentialError> {
    let host = checked_host(registry)?;
    let path = opts.docker_config_file()?;
    let runner = opts.runner();
    blocking(move || logout_blocking(&host, &path, &runner)).await
}

fn checked_host(registry: &str) -> Result<String, CredentialError> {
    let host = normalize_registry(registry);
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CredentialError::InvalidRegistry {
            registry: registry.to_owned(),
        });
    }
    Ok(host)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CredentialError> + Send + 'static,
) -> Result<T, CredentialError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
}

fn login_blocking(
    host: &str,
    username: &str,
    password: &str,
    path: &Path,
    runner: &HelperRunner,
) -> Result<LoginOutcome, CredentialError> {
    let path = resolve_symlink(path);
    let mut doc = read_doc(&path)?;
    let server = server_address(host);
    let outcome = match configured_helper(&doc, &path, host)? {
        Some(name) => {
            runner.store(&name, host, &server, username, password)?;
            set_auth_entry(&mut doc, &path, host, &server, Json::Object(Vec::new()))?;
            LoginOutcome::Helper {
                helper: helper::program(&name),
                config: path.clone(),
            }
        }
        None => {
            let entry = Json::Object(vec![(
                "auth".to_owned(),
                Json::String(encode_auth(username, password)),
            )]);
            set_auth_entry(&mut doc, &path, host, &server, entry)?;
            LoginOutcome::ConfigFile { path: path.clone() }
        }
    };
    write_atomic(&path, &json::to_pretty(&doc))?;
    tracing::debug!(registry = host, file = %path.display(), "credentials stored");
    Ok(outcome)
}

fn logout_blocking(
    host: &str,
    path: &Path,
    runner: &HelperRunner,
) -> Result<bool, CredentialError> {
    let path = resolve_symlink(path);
    if !path.exists() {
        return Ok(false);
    }
    let mut doc = read_doc(&path)?;
    let mut removed = false;
    if let Some(name) = configured_helper(&doc, &path, host)? {
        // docker erases the address it stores plus the legacy forms; add any key form this
        // file holds for the host.
        let server = server_address(host);
        let mut keys = vec![server.clone()];
        if host != "docker.io" {
            keys.push(format!("https://{host}"));
            keys.push(format!("http://{host}"));
        }
        for key in auth_keys(&doc) {
            if normalize_registry(&key) == host && !keys.contains(&key) {
                keys.push(key);
            }
        }
        let mut errors = Vec::new();
        for key in &keys {
            match runner.erase(&name, host, key) {
                Ok(true) => removed = true,
                Ok(false) => {}
                Err(e) => errors.push(e),
            }
        }
        // As docker: a failure only matters when every form failed.
        if errors.len() == keys.len() {
            return Err(errors.remove(0));
        }
    }
    let before = auth_keys(&doc).len();
    if let Some(entries) = doc
        .as_object_mut()
        .and_then(|o| find_mut(o, "auths"))
        .and_then(Json::as_object_mut)
    {
        entries.retain(|(k, _)| normalize_registry(k) != host);
    }
    if auth_keys(&doc).len() != before {
        removed = true;
        write_atomic(&path, &json::to_pretty(&doc))?;
    }
    Ok(removed)
}

/// Follows a symlinked `config.json` (dotfile managers) so the link survives the rename.
fn resolve_symlink(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).unwrap_or_else(|_| {
            std::fs::read_link(path)
                .map(|t| path.parent().unwrap_or(Path::new("")).join(t))
                .unwrap_or_else(|_| path.to_owned())
        }),
        _ => path.to_owned(),
    }
}

/// The file as ordered JSON; an empty object when it does not exist. A file that does not
/// parse is an error: it is never overwritten.
fn read_doc(path: &Path) -> Result<Json, CredentialError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Json::Object(Vec::new())),
        Err(source) => {
            return Err(CredentialError::ReadFile {
                path: path.to_owned(),
                source,
            });
        }
    };
    let invalid = |reason: String| CredentialError::InvalidFile {
        path: path.to_owned(),
        reason,
    };
    let doc = json::parse(&bytes).map_err(invalid)?;
    if doc.as_object().is_none() {
        return Err(invalid("the top level is not a JSON object".into()));
    }
    Ok(doc)
}

/// The helper docker would store `host`'s credentials in, via the same parser as lookups.
fn configured_helper(
    doc: &Json,
    path: &Path,
    host: &str,
) -> Result<Option<String>, CredentialError> {
    // Only the routing keys are parsed: a broken `auths` entry for some other registry must
    // not stop a login that replaces or adds one.
    let routing: Vec<(String, Json)> = doc
        .as_object()
        .unwrap_or_default()
        .iter()
        .filter(|(k, _)| k == "credsStore" || k == "credHelpers")
        .cloned()
        .collect();
    let bytes = serde_json::to_vec(&Json::Object(routing)).expect("a JSON value serialises");
    let file = files::AuthFile::parse(path, files::FileKind::DockerConfig, &bytes)?;
    Ok(file.helper_for(host).map(str::to_owned))
}

fn find_mut<'a>(entries: &'a mut [(String, Json)], key: &str) -> Option<&'a mut Json> {
    entries
        .iter_mut()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn auth_keys(doc: &Json) -> Vec<String> {
    doc.get("auths")
        .and_then(Json::as_object)
        .map(|e| e.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default()
}

/// Sets `auths[server] = entry`, dropping other keys of the same host; the entry keeps the
/// position of the first one it replaces.
fn set_auth_entry(
    doc: &mut Json,
    path: &Path,
    host: &str,
    server: &str,
    entry: Json,
) -> Result<(), CredentialError> {
    let top = doc.as_object_mut().expect("checked by read_doc");
    if !matches!(find_mut(top, "auths"), Some(Json::Object(_))) {
        match find_mut(top, "auths") {
            None => top.push(("auths".to_owned(), Json::Object(Vec::new()))),
            Some(v @ Json::Null) => *v = Json::Object(Vec::new()),
            Some(_) => {
                return Err(CredentialError::InvalidFile {
                    path: path.to_owned(),
                    reason: "`auths` is not an object".into(),
                });
            }
        }
    }
    let auths = find_mut(top, "auths")
        .and_then(Json::as_object_mut)
        .expect("made an object above");
    let at = auths
        .iter()
        .position(|(k, _)| normalize_registry(k) == host)
        .unwrap_or(auths.len());
    auths.retain(|(k, _)| normalize_registry(k) != host);
    auths.insert(at.min(auths.len()), (server.to_owned(), entry));
    Ok(())
}

/// Writes `bytes` to `path` through a temp file in the same directory and a rename, with mode
/// 0600 (the file holds secrets); creates the directory with mode 0700 when missing.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CredentialError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let err = |source| CredentialError::WriteFile {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask cannot widen 0600, but an inherited ACL default might: set it explicitly.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;
    use crate::credentials::testutil::FakeHelper;
    use crate::registry::CredentialSource;
    use std::time::Duration;

    fn opts(dir: &Path, helper_path: Option<std::ffi::OsString>) -> CredentialOptions {
        CredentialOptions {
            authfiles: Vec::new(),
            docker_config_dir: Some(dir.to_owned()),
            default_authfiles: Some(Vec::new()),
            helper_timeout: Duration::from_secs(10),
            helper_path,
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn login_creates_dir_and_file_private_and_lookup_finds_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/.docker");
        let o = opts(&dir, None);
        let out = login("reg:5000", "alice", "pw:1", &o).await.unwrap();
        let file = dir.join("config.json");
        assert_eq!(out, LoginOutcome::ConfigFile { path: file.clone() });
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(&encode_auth("alice", "pw:1")), "{text}");
        let c = Credentials::load(o)
            .unwrap()
            .credential("reg:5000")
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "pw:1")
        );
    }

    #[tokio::test]
    async fn login_preserves_other_keys_order_and_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("config.json");
        let original = r#"{
	"psFormat": "table {{.ID}}",
	"auths": {
		"other.example": {"auth": "dTpw"},
		"https://reg.example/v2/": {"auth": "b2xkOm9sZA=="}
	},
	"proxies": {"default": {"httpProxy": "http://proxy:3128", "noProxy": "localhost"}},
	"aliases": {"builder": "buildx"},
	"plugins": {"x": {"n": 1.5}}
}"#;
        std::fs::write(&file, original).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        login("https://reg.example", "bob", "new", &opts(tmp.path(), None))
            .await
            .unwrap();
        assert_eq!(mode(&file), 0o600);
        let got: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let mut want: serde_json::Value = serde_json::from_str(original).unwrap();
        let auths = want["auths"].as_object_mut().unwrap();
        auths.remove("https://reg.example/v2/");
        auths.insert(
            "reg.example".into(),
            serde_json::json!({"auth": encode_auth("bob", "new")}),
        );
        assert_eq!(got, want);
        // Top-level key order kept.
        let text = std::fs::read_to_string(&file).unwrap();
        let pos = |k: &str| text.find(k).unwrap();
        assert!(
            pos("psFormat") < pos("\"auths\"")
                && pos("\"auths\"") < pos("proxies")
                && pos("proxies") < pos("aliases")
        );
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn docker_hub_is_stored_under_the_index_url() {
        let tmp = tempfile::tempdir().unwrap();
        login("registry-1.docker.io", "u", "p", &opts(tmp.path(), None))
            .await
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("config.json")).unwrap())
                .unwrap();
        assert!(
            v["auths"]["https://index.docker.io/v1/"]["auth"].is_string(),
            "{v}"
        );
        assert_eq!(v["auths"].as_object().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn login_refuses_to_overwrite_a_broken_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("config.json");
        std::fs::write(&file, "{\"auths\": {").unwrap();
        let err = login("r.example", "u", "p", &opts(tmp.path(), None))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CredentialError::InvalidFile { .. }),
            "{err:?}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"auths\": {");
    }

    #[tokio::test]
    async fn login_with_creds_store_calls_store_and_writes_a_placeholder() {
        let fake = FakeHelper::new();
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("config.json");
        std::fs::write(
            &file,
            r#"{"credsStore":"airlifttest","auths":{"reg.example":{"auth":"b2xkOm9sZA=="}}}"#,
        )
        .unwrap();
        let o = opts(tmp.path(), Some(fake.path()));
        let out = login("reg.example", "carol", "s3cret", &o).await.unwrap();
        assert!(
            matches!(&out, LoginOutcome::Helper { helper, .. } if helper == "docker-credential-airlifttest"),
            "{out:?}"
        );
        assert_eq!(fake.calls(), ["store reg.example"]);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("s3cret") && !text.contains("b2xkOm9sZA"),
            "plaintext left: {text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["auths"]["reg.example"], serde_json::json!({}));
        assert_eq!(v["credsStore"], "airlifttest");
        // The stored credential comes back through the helper.
        let c = Credentials::load(o)
            .unwrap()
            .credential("reg.example")
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("carol", "s3cret")
        );
    }

    #[tokio::test]
    async fn login_with_cred_helpers_uses_the_hosts_helper_only() {
        let fake = FakeHelper::new();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("config.json"),
            r#"{"credHelpers":{"https://ecr.example/":"airlifttest"}}"#,
        )
        .unwrap();
        let o = opts(tmp.path(), Some(fake.path()));
        login("ecr.example", "AWS", "tok", &o).await.unwrap();
        let out = login("plain.example", "u", "p", &o).await.unwrap();
        assert!(matches!(out, LoginOutcome::ConfigFile { .. }));
        assert_eq!(fake.calls(), ["store ecr.example"]);
    }

    #[tokio::test]
    async fn logout_removes_from_auths() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("config.json");
        std::fs::write(&file, r#"{"auths":{"https://reg:5000/v2/":{"auth":"dTpw"},"keep.example":{"auth":"dTpw"}},"x":true}"#).unwrap();
        let o = opts(tmp.path(), None);
        assert!(logout("reg:5000", &o).await.unwrap());
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"auths":{"keep.example":{"auth":"dTpw"}},"x":true})
        );
        assert!(!logout("reg:5000", &o).await.unwrap());
        assert!(
            Credentials::load(o)
                .unwrap()
                .credential("reg:5000")
                .is_none()
        );
    }

    #[tokio::test]
    async fn logout_erases_from_the_helper() {
        let fake = FakeHelper::new();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("config.json"),
            r#"{"credsStore":"airlifttest","auths":{"https://index.docker.io/v1/":{}}}"#,
        )
        .unwrap();
        fake.preload("https://index.docker.io/v1/", "u", "p");
        let o = opts(tmp.path(), Some(fake.path()));
        assert!(
            Credentials::load(o.clone())
                .unwrap()
                .credential("docker.io")
                .is_some()
        );
        assert!(logout("docker.io", &o).await.unwrap());
        assert!(
            fake.calls()
                .contains(&"erase https://index.docker.io/v1/".to_owned()),
            "{:?}",
            fake.calls()
        );
        assert!(
            Credentials::load(o.clone())
                .unwrap()
                .credential("docker.io")
                .is_none()
        );
        assert!(!logout("docker.io", &o).await.unwrap());
    }

    #[tokio::test]
    async fn logout_without_a_file_is_false() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            !logout("r.example", &opts(&tmp.path().join("none"), None))
                .await
                .unwrap()
        );
        assert!(!tmp.path().join("none").exists());
    }

    #[tokio::test]
    async fn login_through_a_symlink_keeps_the_link() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("dotfiles-config.json");
        std::fs::write(&real, "{}").unwrap();
        let dir = tmp.path().join("docker");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&real, dir.join("config.json")).unwrap();
        login("r.example", "u", "p", &opts(&dir, None))
            .await
            .unwrap();
        assert!(
            std::fs::symlink_metadata(dir.join("config.json"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            std::fs::read_to_string(&real)
                .unwrap()
                .contains("r.example")
        );
    }

    #[tokio::test]
    async fn bad_input_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let o = opts(tmp.path(), None);
        assert!(matches!(
            login("", "u", "p", &o).await,
            Err(CredentialError::InvalidRegistry { .. })
        ));
        assert!(matches!(
            login("r.example", "", "p", &o).await,
            Err(CredentialError::MissingUsername { .. })
        ));
    }
}
