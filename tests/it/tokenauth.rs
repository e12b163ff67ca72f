//! Bearer token auth end to end: a real `docker-registry` with `auth: token:` trusting a token
//! server that runs here ([`TokenServer`]) and issues real ES256 JWTs signed by a key whose
//! certificate chains to the registry's `rootcertbundle`. Tokens live two seconds, so a sync
//! outlives several of them; the registry enforces the scopes in the tokens' `access` claims.
//! Also here: the secret-leak test over every auth mode.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::support::TestRegistry;
use crate::support::describe;
use crate::support::generator::Generated;
use crate::tls::{
    Certs, Env, PASSWORD, Source, USER, all_output, assert_copied, assert_fails_with, assert_ok,
    base64_encode, pki, tls_registry,
};

const SERVICE: &str = "airlift-test-registry";
const ISSUER: &str = "airlift-test-token-issuer";
/// A user who may only pull.
const READER: &str = "bob";
const READER_PASSWORD: &str = "bobs-pw-4711";
/// alice's identity token (as `docker login` stores for OAuth2 registries).
const IDENTITY_TOKEN: &str = "idtok-alice-0b9e7c";
/// distribution accepts tokens up to 60 s past `exp`; the server subtracts that leeway so a
/// token really dies `expires_in` seconds after it is issued.
const REGISTRY_LEEWAY: u64 = 60;

/// One request the token server answered.
#[derive(Debug, Clone)]
pub struct Issued {
    pub method: String,
    pub user: Option<String>,
    pub scopes: Vec<String>,
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub status: u16,
    /// The token handed out, if any.
    pub token: Option<String>,
}

/// The token server: `GET /token` with Basic auth (or none: an anonymous token with no
/// access), `POST /token` with the OAuth2 `refresh_token` grant.
pub struct TokenServer {
    pub addr: String,
    pub log: Arc<Mutex<Vec<Issued>>>,
    pub ca_file: PathBuf,
    stop: Arc<AtomicBool>,
    _certs: tempfile::TempDir,
}

struct Signer {
    key: aws_lc_rs::signature::EcdsaKeyPair,
    x5c: String,
    expires_in: u64,
    delay: Duration,
    serial: AtomicU64,
}

impl Signer {
    fn jwt(&self, user: &str, access: &[(String, Vec<String>)]) -> String {
        let now_f = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let now = now_f as u64;
        // Rounded up, so the token lives at least `expires_in` seconds.
        let exp = (now_f + self.expires_in as f64).ceil() as u64;
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let access: Vec<serde_json::Value> = access
            .iter()
            .map(|(name, actions)| {
                serde_json::json!({"type": "repository", "name": name, "actions": actions})
            })
            .collect();
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": exp - REGISTRY_LEEWAY,
            "nbf": now - 1,
            "iat": now,
            "jti": format!("jti-{}", self.serial.fetch_add(1, Ordering::SeqCst)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self.key.sign(&rng, signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

struct Request {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn respond(mut stream: &TcpStream, status: u16, body: &str) {
    let reason = if status == 200 { "OK" } else { "Error" };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A project that does not exist: like Harbor's token service for a missing project, the
/// server grants nothing on its repositories, to anyone.
const MISSING_PROJECT: &str = "ghost";

/// What `user` may do on `repository:NAME:ACTIONS` scopes: alice everything asked, bob pull,
/// nobody anything in [`MISSING_PROJECT`].
fn grant(user: Option<&str>, scopes: &[String]) -> Vec<(String, Vec<String>)> {
    let Some(user) = user else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for scope in scopes {
        for one in scope.split(' ') {
            let Some((resource, actions)) = one.rsplit_once(':') else {
                continue;
            };
            let Some(("repository", name)) = resource.split_once(':') else {
                continue;
            };
            let missing = name.split('/').next() == Some(MISSING_PROJECT);
            let allowed: Vec<String> = actions
                .split(',')
                .filter(|_| !missing)
                .filter(|a| user == USER || *a == "pull")
                .map(str::to_owned)
                .collect();
            out.push((name.to_owned(), allowed));
        }
    }
    out
}

fn handle(stream: TcpStream, signer: &Signer, log: &Mutex<Vec<Issued>>) {
    let Some(req) = read_request(&stream) else {
        return;
    };
    std::thread::sleep(signer.delay);
    let url = url::Url::parse(&format!("http://x{}", req.target)).unwrap();
    let mut params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if req.method == "POST" {
        params.extend(url::form_urlencoded::parse(&req.body).into_owned());
    }
    let get = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let mut issued = Issued {
        method: req.method.clone(),
        user: None,
        scopes: scopes.clone(),
        grant_type: get("grant_type"),
        client_id: get("client_id"),
        status: 200,
        token: None,
    };
    // Who is asking: Basic credentials, or a refresh token.
    let user: Result<Option<String>, ()> = if req.method == "POST" {
        match (
            get("grant_type").as_deref(),
            get("refresh_token").as_deref(),
        ) {
            (Some("refresh_token"), Some(IDENTITY_TOKEN)) => Ok(Some(USER.to_owned())),
            _ => Err(()),
        }
    } else {
        match req.headers.get("authorization") {
            None => Ok(None),
            Some(h) => {
                let decoded = h
                    .strip_prefix("Basic ")
                    .and_then(|b| STANDARD.decode(b).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default();
                match decoded.split_once(':') {
                    Some((u, p)) if u == USER && p == PASSWORD => Ok(Some(USER.to_owned())),
                    Some((u, p)) if u == READER && p == READER_PASSWORD => {
                        Ok(Some(READER.to_owned()))
                    }
                    _ => Err(()),
                }
            }
        }
    };
    match user {
        Err(()) => {
            issued.status = 401;
            respond(&stream, 401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
        }
        Ok(user) => {
            let access = grant(user.as_deref(), &scopes);
            let token = signer.jwt(user.as_deref().unwrap_or(""), &access);
            issued.user = user;
            issued.token = Some(token.clone());
            let body = serde_json::json!({
                "token": token,
                "access_token": token,
                "expires_in": signer.expires_in,
            });
            respond(&stream, 200, &body.to_string());
        }
    }
    log.lock().unwrap().push(issued);
}

impl TokenServer {
    /// Starts a token server issuing tokens that live `expires_in` seconds, answering each
    /// request after `delay`.
    pub fn start(expires_in: u64, delay: Duration) -> TokenServer {
        let certs = tempfile::tempdir().unwrap();
        let ca = pki::Ca::new("airlift token CA");
        let ca_file = ca.write(certs.path(), "token-ca.pem");
        let leaf = ca.signer("airlift token signer");
        let key = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &leaf.key_der,
        )
        .unwrap();
        let signer = Arc::new(Signer {
            key,
            x5c: STANDARD.encode(&leaf.cert_der),
            expires_in,
            delay,
            serial: AtomicU64::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (signer, log) = (signer.clone(), log.clone());
                    std::thread::spawn(move || handle(stream, &signer, &log));
                }
            });
        }
        TokenServer {
            addr,
            log,
            ca_file,
            stop,
            _certs: certs,
        }
    }

    /// The registry's `auth:` section trusting this server.
    pub fn registry_auth(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.addr,
            self.ca_file.display()
        )
    }

    pub fn issued(&self) -> Vec<Issued> {
        self.log.lock().unwrap().clone()
    }

    /// Every token handed out.
    pub fn tokens(&self) -> Vec<String> {
        self.issued().into_iter().filter_map(|i| i.token).collect()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// A registry requiring tokens from `server`.
fn token_registry(server: &TokenServer) -> TestRegistry {
    TestRegistry::start_with(&server.registry_auth())
}

#[test]
fn short_lived_tokens_are_refreshed_during_a_sync() {
    let source = Source::new(&crate::support::generator::small_set());
    let server = TokenServer::start(2, Duration::from_millis(300));
    let target = token_registry(&server);
    let env = Env::new();
    let reg = target.addr();

    let out = env.login(&reg, USER, PASSWORD, &[]);
    assert_ok(&out);
    let login_requests = server.issued().len();
    assert!(login_requests >= 1, "login did not ask for a token");

    let out = env.sync(&source.list, &reg, &["--jobs", "1"]);
    assert_ok(&out);
    assert_copied(&target, &source.images);

    let issued: Vec<Issued> = server.issued().split_off(login_requests);
    assert!(
        issued
            .iter()
            .all(|i| i.status == 200 && i.user.as_deref() == Some(USER)),
        "{issued:#?}"
    );
    assert!(issued.len() > 1, "only {} token(s) issued", issued.len());
    // The same scope set asked for again: a token was refreshed after it expired.
    let mut seen: HashMap<Vec<String>, usize> = HashMap::new();
    for i in &issued {
        let mut key = i.scopes.clone();
        key.sort();
        *seen.entry(key).or_default() += 1;
    }
    assert!(
        seen.values().any(|n| *n > 1),
        "no scope set was requested twice: {seen:#?}"
    );
    // Cross-repository mounts ask for both repositories in one token.
    assert!(
        issued.iter().any(|i| i.scopes.len() == 2
            && i.scopes.iter().any(|s| s.ends_with(":pull"))
            && i.scopes.iter().any(|s| s.ends_with(":pull,push"))),
        "no token request with two scopes: {issued:#?}"
    );
}

#[test]
fn pull_only_user_gets_the_insufficient_scope_hint() {
    let source = Source::small(1);
    let server = TokenServer::start(60, Duration::ZERO);
    let target = token_registry(&server);
    let env = Env::new();
    let reg = target.addr();

    let out = env.login(&reg, USER, "wrong-password", &[]);
    assert_fails_with(
        &out,
        &format!(
            "{reg} rejected the credentials of user `{USER}`: check the user name and the password"
        ),
    );

    // Without credentials the token service hands out tokens granting nothing.
    let out = env.sync(&source.list, &reg, &[]);
    assert_fails_with(
        &out,
        &format!("{reg} requires authentication: run `airlift login {reg}` or pass --authfile"),
    );

    let out = env.login(&reg, READER, READER_PASSWORD, &[]);
    assert_ok(&out);
    let out = env.sync(&source.list, &reg, &[]);
    let repository = &source.images[0].repository;
    assert_fails_with(
        &out,
        &format!("the token for {reg} does not grant push on {repository}"),
    );
    // --dry-run finds that out too, writing nothing (issue 13, item 4).
    let out = env.sync(&source.list, &reg, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_fails_with(
        &out,
        &format!(
            "error: cannot push to {reg}/{repository}: the token for {reg} does not grant \
             push on {repository}"
        ),
    );
    assert!(target.stored_blobs().is_empty(), "a dry run wrote to {reg}");
}

/// `--dry-run` into a project that does not exist (the token service grants nothing on it, as
/// Harbor's does): the plan names the repository and says to create the project, exit 1, and
/// nothing is written; the real run says the same. The same user's dry run into an existing
/// place passes.
#[test]
fn dry_run_names_a_missing_project() {
    let source = Source::small(1);
    let server = TokenServer::start(60, Duration::ZERO);
    let target = token_registry(&server);
    let env = Env::new();
    let reg = target.addr();
    assert_ok(&env.login(&reg, USER, PASSWORD, &[]));
    let image = &source.images[0];
    let repository = format!("{MISSING_PROJECT}/{}", image.repository);
    let to = format!("{reg}/{MISSING_PROJECT}");
    let error = format!(
        "cannot query {reg}/{repository}:{tag} at the destination (no access at all usually \
         means the repository or its project `{MISSING_PROJECT}` does not exist: create the \
         project/repository there first): the token for {reg} does not grant pull on \
         {repository}: ask for pull access to it, or check the destination path",
        tag = image.tag
    );

    let out = env.sync(&source.list, &to, &["--dry-run", "--progress", "none"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The source's address is the only part left out.
    let line = format!(" -> {reg}/{repository}:{}: error: {error}", image.tag);
    assert!(
        stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("  ") && l.ends_with(&line)),
        "{}",
        describe(&out)
    );
    assert!(target.stored_blobs().is_empty(), "a dry run wrote to {reg}");

    let out = env.sync(&source.list, &to, &["--progress", "none"]);
    assert_fails_with(&out, &error);

    let out = env.sync(&source.list, &format!("{reg}/site"), &["--dry-run"]);
    assert_ok(&out);
    assert!(target.stored_blobs().is_empty(), "a dry run wrote to {reg}");
}

#[test]
fn tokens_the_registry_does_not_trust_get_the_token_hint() {
    let server = TokenServer::start(60, Duration::ZERO);
    // The registry trusts another CA than the one that signed the token server's key.
    let other = tempfile::tempdir().unwrap();
    let other_ca = pki::Ca::new("some other CA").write(other.path(), "other-ca.pem");
    let auth = server.registry_auth().replace(
        &server.ca_file.display().to_string(),
        &other_ca.display().to_string(),
    );
    let target = TestRegistry::start_with(&auth);
    let env = Env::new();
    let reg = target.addr();
    let out = env.login(&reg, USER, PASSWORD, &[]);
    assert_fails_with(
        &out,
        &format!("{reg} rejected a token its token service had just issued"),
    );
    assert!(
        all_output(&out).contains("the token is expired or invalid"),
        "{}",
        describe(&out)
    );
}

#[test]
fn identity_tokens_use_the_refresh_token_grant() {
    let source = Source::small(1);
    let server = TokenServer::start(60, Duration::ZERO);
    let target = token_registry(&server);
    let env = Env::new();
    let reg = target.addr();
    std::fs::write(
        env.docker_config(),
        format!(r#"{{"auths":{{"{reg}":{{"identitytoken":"{IDENTITY_TOKEN}"}}}}}}"#),
    )
    .unwrap();
    let out = env.sync(&source.list, &reg, &[]);
    assert_ok(&out);
    assert_copied(&target, &source.images);
    let issued = server.issued();
    assert!(!issued.is_empty());
    for i in &issued {
        assert_eq!(i.method, "POST", "{i:?}");
        assert_eq!(i.grant_type.as_deref(), Some("refresh_token"), "{i:?}");
        assert_eq!(i.client_id.as_deref(), Some("airlift"), "{i:?}");
        assert_eq!(i.user.as_deref(), Some(USER), "{i:?}");
    }
}

/// Writes a list of `images` at `registry`.
fn list_at(env: &Env, name: &str, images: &[Generated], registry: &str) -> PathBuf {
    let path = env.path(name);
    let text: String = images
        .iter()
        .map(|i| format!("{}\n", i.reference(registry)))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs sync into `reg`, then bundle create from it and bundle load back into it, all with
/// `-vvv` and `RUST_LOG=trace`; returns everything printed and the bundle's bytes.
fn verbose_round_trip(env: &Env, source: &Source, reg: &str, extra: &[&str]) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut run = |args: Vec<&str>| {
        let mut cmd = env.airlift(&args);
        cmd.env("RUST_LOG", "trace");
        let out = crate::support::run_with_timeout(&mut cmd, crate::tls::RUN_TIMEOUT);
        assert_ok(&out);
        seen.extend_from_slice(&out.stdout);
        seen.extend_from_slice(&out.stderr);
    };
    let list = source.list.to_str().unwrap().to_owned();
    let mut args = vec!["-vvv", "mirror", "sync", "--list", &list, "--to", reg];
    args.extend_from_slice(extra);
    run(args);

    let copied = list_at(env, "copied.txt", &source.images, reg);
    let copied = copied.to_str().unwrap().to_owned();
    let bundle = env.path("out.tar.zst");
    let bundle_s = bundle.to_str().unwrap().to_owned();
    let mut args = vec![
        "-vvv", "bundle", "create", "--list", &copied, "-o", &bundle_s,
    ];
    args.extend_from_slice(extra);
    run(args);

    let to = format!("{reg}/loaded");
    let state = env.path("load-state");
    let state = state.to_str().unwrap().to_owned();
    let mut args = vec![
        "-vvv",
        "bundle",
        "load",
        &bundle_s,
        "--to",
        &to,
        "--state-dir",
        &state,
    ];
    args.extend_from_slice(extra);
    run(args);

    for entry in std::fs::read_dir(env.dir.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("out.") && name.ends_with(".tar.zst") {
            seen.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    seen
}

fn assert_absent(haystack: &[u8], secrets: &[String]) {
    let text = String::from_utf8_lossy(haystack);
    // The logs really were at full verbosity: airlift's debug lines and other crates' trace
    // lines (the connection pool's) are there.
    assert!(text.contains("registry request"), "no debug log captured");
    assert!(text.contains("TRACE"), "no trace log captured");
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !text.contains(s.as_str()),
            "secret `{}...` appears in the output",
            &s[..s.len().min(12)]
        );
    }
}

#[test]
fn secrets_never_appear_in_logs_errors_or_bundles() {
    let source = Source::small(2);
    let basic_secrets = vec![
        PASSWORD.to_owned(),
        base64_encode(&format!("{USER}:{PASSWORD}")),
    ];

    // Basic auth behind TLS.
    {
        let certs = Certs::new(&["127.0.0.1"]);
        let target = tls_registry(&certs, true, false);
        let env = Env::new();
        let reg = target.addr();
        let ca = certs.ca_file.to_str().unwrap().to_owned();
        let mut seen =
            all_output(&env.login(&reg, USER, PASSWORD, &["--ca-file", &ca])).into_bytes();
        seen.extend(verbose_round_trip(&env, &source, &reg, &["--ca-file", &ca]));
        // A failure path too: a wrong password with full tracing.
        let mut cmd = env.airlift(&["-vvv", "login", &reg, "-u", USER, "-p", "wrong-pw-123"]);
        cmd.env("RUST_LOG", "trace").args(["--ca-file", &ca]);
        let out = crate::support::run_with_timeout(&mut cmd, crate::tls::RUN_TIMEOUT);
        assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
        seen.extend(all_output(&out).into_bytes());
        assert_absent(&seen, &basic_secrets);
        let wrong = vec![base64_encode(&format!("{USER}:wrong-pw-123"))];
        assert_absent(&seen, &wrong);
    }

    // Token auth with a password, and with an identity token.
    for identity in [false, true] {
        let server = TokenServer::start(2, Duration::ZERO);
        let target = token_registry(&server);
        let env = Env::new();
        let reg = target.addr();
        let mut seen = Vec::new();
        if identity {
            std::fs::write(
                env.docker_config(),
                format!(r#"{{"auths":{{"{reg}":{{"identitytoken":"{IDENTITY_TOKEN}"}}}}}}"#),
            )
            .unwrap();
        } else {
            seen.extend(all_output(&env.login(&reg, USER, PASSWORD, &[])).into_bytes());
        }
        seen.extend(verbose_round_trip(&env, &source, &reg, &[]));
        let tokens = server.tokens();
        assert!(tokens.len() > 1, "only {} token(s) issued", tokens.len());
        // The JWT's signature part alone is unique to each token.
        let signatures: Vec<String> = tokens
            .iter()
            .map(|t| t.rsplit('.').next().unwrap().to_owned())
            .collect();
        let mut secrets = basic_secrets.clone();
        secrets.push(IDENTITY_TOKEN.to_owned());
        secrets.extend(signatures);
        assert_absent(&seen, &secrets);
    }
}
