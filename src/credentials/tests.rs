//! Tests of [`Credentials`]: lookup order across files, helpers through `prepare` and the sync
//! fallback, timeouts and redaction. Every path is passed through options; the process
//! environment is never read for file locations nor changed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::testutil::FakeHelper;
use super::*;

/// Options that look only in `docker_dir` plus the given auth files.
fn opts(docker_dir: &Path) -> CredentialOptions {
    CredentialOptions {
        authfiles: Vec::new(),
        docker_config_dir: Some(docker_dir.to_owned()),
        default_authfiles: Some(Vec::new()),
        helper_timeout: Duration::from_secs(10),
        helper_path: None,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn pair(c: Option<Credential>) -> Option<(String, String)> {
    c.map(|c| (c.username, c.password))
}

fn some(u: &str, p: &str) -> Option<(String, String)> {
    Some((u.to_owned(), p.to_owned()))
}

#[test]
fn docker_config_dir_option_is_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("custom-docker-config");
    write(
        &dir,
        "config.json",
        r#"{"auths":{"reg.example":{"auth":"YWxpY2U6c2VjcmV0"}}}"#,
    );
    let creds = Credentials::load(opts(&dir)).unwrap();
    assert_eq!(
        pair(creds.credential("reg.example")),
        some("alice", "secret")
    );
    assert_eq!(
        pair(creds.credential("REG.example")),
        some("alice", "secret")
    );
    assert_eq!(pair(creds.credential("other.example")), None);
}

#[test]
fn nothing_configured_is_anonymous() {
    let tmp = tempfile::tempdir().unwrap();
    let creds = Credentials::load(opts(&tmp.path().join("missing"))).unwrap();
    assert!(creds.credential("reg.example").is_none());
}

#[test]
fn docker_hub_aliases_find_the_index_url_entry() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "config.json",
        r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3"}}}"#,
    );
    let creds = Credentials::load(opts(tmp.path())).unwrap();
    for name in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "https://index.docker.io/v1/",
    ] {
        assert_eq!(pair(creds.credential(name)), some("hub", "hubpw"), "{name}");
    }
}

#[test]
fn registry_with_port_and_v2_key() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "config.json",
        r#"{"auths":{"https://reg:5000/v2/":{"username":"u","password":"p"}}}"#,
    );
    let creds = Credentials::load(opts(tmp.path())).unwrap();
    assert_eq!(pair(creds.credential("reg:5000")), some("u", "p"));
    assert_eq!(pair(creds.credential("reg")), None);
    assert_eq!(pair(creds.credential("reg:5001")), None);
}

#[test]
fn identity_token_has_the_token_username() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "config.json",
        r#"{"auths":{"acr.example":{"identitytoken":"eyJ.refresh"}}}"#,
    );
    let creds = Credentials::load(opts(tmp.path())).unwrap();
    assert_eq!(
        pair(creds.credential("acr.example")),
        some(IDENTITY_TOKEN_USERNAME, "eyJ.refresh")
    );
}

#[test]
fn auth_json_comes_after_docker_config() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "config.json",
        r#"{"auths":{"both.example":{"auth":"ZG9ja2VyOmQ="}}}"#,
    );
    let runtime = write(
        &tmp.path().join("run"),
        "auth.json",
        r#"{"auths":{"both.example":{"auth":"cG9kbWFuOnA="},"podman.example":{"auth":"cG9kbWFuOnA="}}}"#,
    );
    let config = write(
        &tmp.path().join("cfg"),
        "auth.json",
        r#"{"auths":{"late.example":{"auth":"bGF0ZTps"},"podman.example":{"auth":"bGF0ZTps"}}}"#,
    );
    let mut o = opts(tmp.path());
    o.default_authfiles = Some(vec![runtime, config]);
    let creds = Credentials::load(o).unwrap();
    assert_eq!(pair(creds.credential("both.example")), some("docker", "d"));
    assert_eq!(
        pair(creds.credential("podman.example")),
        some("podman", "p")
    );
    assert_eq!(pair(creds.credential("late.example")), some("late", "l"));
}

#[test]
fn authfile_goes_first_and_replaces_default_auth_json() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "config.json",
        r#"{"auths":{"both.example":{"auth":"ZG9ja2VyOmQ="},"docker.example":{"auth":"ZG9ja2VyOmQ="}}}"#,
    );
    let default = write(
        &tmp.path().join("run"),
        "auth.json",
        r#"{"auths":{"default.example":{"auth":"cG9kbWFuOnA="}}}"#,
    );
    let given = write(
        &tmp.path().join("given"),
        "auth.json",
        r#"{"auths":{"both.example":{"auth":"Z2l2ZW46Zw=="}}}"#,
    );
    let mut o = opts(tmp.path());
    o.default_authfiles = Some(vec![default]);
    o.authfiles = vec![given];
    let creds = Credentials::load(o).unwrap();
    assert_eq!(pair(creds.credential("both.example")), some("given", "g"));
    // docker's config is still read after the --authfile files...
    assert_eq!(
        pair(creds.credential("docker.example")),
        some("docker", "d")
    );
    // ...but the default auth.json is not.
    assert_eq!(pair(creds.credential("default.example")), None);
}

#[test]
fn several_authfiles_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write(
        &tmp.path().join("a"),
        "auth.json",
        r#"{"auths":{"r.example":{"auth":"YTph"}}}"#,
    );
    let b = write(
        &tmp.path().join("b"),
        "auth.json",
        r#"{"auths":{"r.example":{"auth":"Yjpi"},"b.example":{"auth":"Yjpi"}}}"#,
    );
    let mut o = opts(&tmp.path().join("nodocker"));
    o.authfiles = vec![a, b];
    let creds = Credentials::load(o).unwrap();
    assert_eq!(pair(creds.credential("r.example")), some("a", "a"));
    assert_eq!(pair(creds.credential("b.example")), some("b", "b"));
}

#[test]
fn missing_authfile_is_an_error_but_missing_defaults_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.default_authfiles = Some(vec![tmp.path().join("nope/auth.json")]);
    Credentials::load(o.clone()).unwrap();
    o.authfiles = vec![tmp.path().join("typo.json")];
    let err = Credentials::load(o).unwrap_err();
    assert!(err.to_string().contains("typo.json"), "{err}");
}

#[test]
fn malformed_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "config.json",
        "{\"auths\": {\"r\": {\"auth\": \"dTpw\"}",
    );
    let err = Credentials::load(opts(tmp.path())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("config.json") && msg.contains("line 1"),
        "{msg}"
    );
    assert!(!msg.contains("dTpw"), "{msg}");
}

/// A docker config dir routing `reg.example` (via credsStore) through the airlifttest helper.
fn helper_setup(config: &str) -> (FakeHelper, tempfile::TempDir, CredentialOptions) {
    let fake = FakeHelper::new();
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "config.json", config);
    let mut o = opts(tmp.path());
    o.helper_path = Some(fake.path());
    (fake, tmp, o)
}

#[tokio::test]
async fn creds_store_through_prepare_is_cached() {
    let (fake, _tmp, o) =
        helper_setup(r#"{"credsStore":"airlifttest","auths":{"reg.example":{}}}"#);
    fake.preload("reg.example", "robot$ci", "harbor-token");
    let creds = Credentials::load(o).unwrap();
    assert!(fake.calls().is_empty(), "load must not run helpers");
    let problems = creds
        .prepare(&[
            "reg.example".into(),
            "https://reg.example/v2/".into(),
            "none.example".into(),
        ])
        .await;
    assert!(problems.is_empty(), "{problems:?}");
    let mut calls = fake.calls();
    calls.sort();
    assert_eq!(calls, ["get none.example", "get reg.example"]);
    assert_eq!(
        pair(creds.credential("reg.example")),
        some("robot$ci", "harbor-token")
    );
    assert_eq!(pair(creds.credential("none.example")), None);
    assert_eq!(fake.calls().len(), 2, "lookups after prepare use the cache");
}

#[tokio::test]
async fn cred_helpers_route_per_host() {
    let (fake, _tmp, o) = helper_setup(
        r#"{"credHelpers":{"ecr.example":"airlifttest"},"auths":{"static.example":{"auth":"dTpw"}}}"#,
    );
    fake.preload("ecr.example", "AWS", "ecr-token");
    let creds = Credentials::load(o).unwrap();
    assert!(
        creds
            .prepare(&["ecr.example".into(), "static.example".into()])
            .await
            .is_empty()
    );
    assert_eq!(fake.calls(), ["get ecr.example"]);
    assert_eq!(
        pair(creds.credential("ecr.example")),
        some("AWS", "ecr-token")
    );
    assert_eq!(pair(creds.credential("static.example")), some("u", "p"));
}

#[test]
fn find_names_the_helper_a_credential_came_from() {
    let (fake, _tmp, o) = helper_setup(
        r#"{"credHelpers":{"ecr.example":"airlifttest"},"auths":{"static.example":{"auth":"dTpw"}}}"#,
    );
    fake.preload("ecr.example", "AWS", "ecr-token");
    let creds = Credentials::load(o).unwrap();
    let from_helper = creds.find("ecr.example").unwrap();
    assert_eq!(
        from_helper.helper.as_deref(),
        Some("docker-credential-airlifttest")
    );
    assert_eq!(from_helper.credential.password, "ecr-token");
    let from_file = creds.find("static.example").unwrap();
    assert_eq!(from_file.helper, None);
    assert_eq!(from_file.credential.username, "u");
    assert!(creds.find("none.example").is_none());
}

#[tokio::test]
async fn helper_identity_token_keeps_the_token_shape() {
    let (fake, _tmp, o) = helper_setup(r#"{"credsStore":"airlifttest"}"#);
    fake.preload("https://index.docker.io/v1/", "<token>", "refresh-me");
    let creds = Credentials::load(o).unwrap();
    assert!(creds.prepare(&["docker.io".into()]).await.is_empty());
    assert_eq!(fake.calls(), ["get https://index.docker.io/v1/"]);
    assert_eq!(
        pair(creds.credential("docker.io")),
        some("<token>", "refresh-me")
    );
}

#[test]
fn unprepared_helper_runs_synchronously() {
    let (fake, _tmp, o) = helper_setup(r#"{"credsStore":"airlifttest"}"#);
    fake.preload("reg:5000", "u", "p");
    let creds = Credentials::load(o).unwrap();
    assert_eq!(pair(creds.credential("reg:5000")), some("u", "p"));
    assert_eq!(pair(creds.credential("reg:5000")), some("u", "p"));
    assert_eq!(fake.calls(), ["get reg:5000"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprepared_helper_runs_from_async_code() {
    let (fake, _tmp, o) = helper_setup(r#"{"credsStore":"airlifttest"}"#);
    fake.preload("reg.example", "u", "p");
    let creds = std::sync::Arc::new(Credentials::load(o).unwrap());
    let c = creds.clone();
    let got = tokio::spawn(async move { pair(c.credential("reg.example")) })
        .await
        .unwrap();
    assert_eq!(got, some("u", "p"));
}

#[tokio::test]
async fn helper_miss_falls_through_to_auth_json() {
    let (fake, tmp, mut o) = helper_setup(r#"{"credsStore":"airlifttest"}"#);
    let auth_json = write(
        &tmp.path().join("run"),
        "auth.json",
        r#"{"auths":{"reg.example":{"auth":"cG9kbWFuOnA="}}}"#,
    );
    o.default_authfiles = Some(vec![auth_json]);
    let creds = Credentials::load(o).unwrap();
    assert!(creds.prepare(&["reg.example".into()]).await.is_empty());
    assert_eq!(pair(creds.credential("reg.example")), some("podman", "p"));
    assert_eq!(fake.calls(), ["get reg.example"]);
}

#[tokio::test]
async fn timed_out_helper_is_reported_within_bounds() {
    let fake = FakeHelper::with_script("hang", "sleep 30\n");
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "config.json",
        r#"{"credHelpers":{"slow.example":"hang","slow2.example":"hang","slow3.example":"hang"}}"#,
    );
    let mut o = opts(tmp.path());
    o.helper_path = Some(fake.path());
    o.helper_timeout = Duration::from_millis(800);
    let creds = Credentials::load(o).unwrap();
    let start = Instant::now();
    let problems = creds
        .prepare(&[
            "slow.example".into(),
            "slow2.example".into(),
            "slow3.example".into(),
        ])
        .await;
    let took = start.elapsed();
    // All three ran at once: one after another would take 2.4 s.
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(2000),
        "took {took:?}"
    );
    assert_eq!(problems.len(), 3, "{problems:?}");
    for p in &problems {
        assert!(matches!(p, CredentialError::HelperTimeout { .. }), "{p:?}");
        assert!(p.to_string().contains("docker-credential-hang"), "{p}");
    }
    // Failed helpers are not retried by lookups: they are anonymous at once.
    let start = Instant::now();
    assert!(creds.credential("slow.example").is_none());
    assert!(start.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn failing_helper_names_helper_and_registry_without_secrets() {
    let fake = FakeHelper::with_script(
        "broken",
        "echo 'keychain locked; last token was AKIAabcdefghij0123456789xyz' >&2\nexit 1\n",
    );
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "config.json",
        r#"{"credHelpers":{"gcr.io":"broken"}}"#,
    );
    let mut o = opts(tmp.path());
    o.helper_path = Some(fake.path());
    let creds = Credentials::load(o).unwrap();
    let problems = creds.prepare(&["gcr.io".into()]).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    let msg = problems[0].to_string();
    assert!(
        msg.contains("docker-credential-broken") && msg.contains("gcr.io"),
        "{msg}"
    );
    assert!(msg.contains("keychain locked"), "{msg}");
    assert!(!msg.contains("AKIAabcdefghij0123456789xyz"), "{msg}");
}

#[tokio::test]
async fn missing_helper_is_a_warning_not_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "config.json", r#"{"credsStore":"osxkeychain"}"#);
    let mut o = opts(tmp.path());
    o.helper_path = Some(tmp.path().as_os_str().to_owned());
    let creds = Credentials::load(o).unwrap();
    let problems = creds.prepare(&["reg.example".into()]).await;
    assert!(
        matches!(&problems[..], [CredentialError::HelperNotFound { helper, .. }] if helper == "docker-credential-osxkeychain"),
        "{problems:?}"
    );
    assert!(creds.credential("reg.example").is_none());
}

#[tokio::test]
async fn debug_never_shows_passwords() {
    let (fake, _tmp, o) = helper_setup(
        r#"{"credHelpers":{"h.example":"airlifttest"},"auths":{"s.example":{"username":"u","password":"STATIC-PASSWORD"},"t.example":{"identitytoken":"IDENTITY-TOKEN"}}}"#,
    );
    fake.preload("h.example", "u", "HELPER-PASSWORD");
    let creds = Credentials::load(o).unwrap();
    creds.prepare(&["h.example".into()]).await;
    assert!(creds.credential("h.example").is_some());
    let dbg = format!("{creds:?} {:?}", creds.credential("s.example"));
    for secret in ["STATIC-PASSWORD", "IDENTITY-TOKEN", "HELPER-PASSWORD"] {
        assert!(!dbg.contains(secret), "{secret} in {dbg}");
    }
    assert!(dbg.contains("h.example"), "{dbg}");
}

#[test]
fn normalisation() {
    for (key, host) in [
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("https://reg:5000/v2/", "reg:5000"),
        ("http://reg:5000", "reg:5000"),
        ("reg:5000/v1/", "reg:5000"),
        ("Harbor.Corp.Example", "harbor.corp.example"),
        ("", ""),
    ] {
        assert_eq!(normalize_registry(key), host, "{key}");
    }
    assert_eq!(server_address("docker.io"), "https://index.docker.io/v1/");
    assert_eq!(server_address("https://reg:5000/v2/"), "reg:5000");
}

#[test]
fn futures_are_send_and_credentials_plug_into_the_client() {
    fn assert_send<T: Send>(_: &T) {}
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(tmp.path());
    let creds = Credentials::load(o.clone()).unwrap();
    let hosts = vec!["r.example".to_owned()];
    assert_send(&creds.prepare(&hosts));
    assert_send(&login("r.example", "u", "p", &o));
    assert_send(&logout("r.example", &o));
    let client = crate::registry::ClientOptions {
        credentials: Some(std::sync::Arc::new(creds)),
        ..Default::default()
    };
    assert!(client.credentials.is_some());
}

/// Two requests sent with the same expired token are both rejected; the first to refresh asks
/// the helper, and the second, arriving after that refresh is done, gets the new answer
/// without asking again (it was rejected for the old one, not for the new).
#[tokio::test]
async fn a_rejection_of_an_already_refreshed_credential_does_not_ask_the_helper_again() {
    let (fake, _tmp, o) = helper_setup(r#"{"credsStore":"airlifttest"}"#);
    fake.preload("reg.example", "u", "expired");
    let creds = Credentials::load(o).unwrap();
    assert!(creds.prepare(&["reg.example".into()]).await.is_empty());
    let sent_with = creds.credential("reg.example");
    assert_eq!(pair(sent_with.clone()), some("u", "expired"));
    fake.preload("reg.example", "u", "fresh");
    let first = creds.refresh("reg.example", sent_with.clone()).await;
    assert_eq!(pair(first), some("u", "fresh"));
    let second = creds.refresh("reg.example", sent_with).await;
    assert_eq!(pair(second), some("u", "fresh"));
    assert_eq!(fake.calls(), ["get reg.example", "get reg.example"]);
    // Rejected for the fresh one too: the helper is asked, and has nothing new.
    let third = creds
        .refresh("reg.example", creds.credential("reg.example"))
        .await;
    assert_eq!(pair(third), None);
    assert_eq!(fake.calls().len(), 3);
}
