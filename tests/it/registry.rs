//! The registry client against a real CNCF registry (`docker-registry`), plus a scripted fake
//! server for the faults and auth flows a real registry cannot be made to produce.

mod authreg;
mod fake;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlift::Digest;
use airlift::registry::{
    BlobBody, ClientOptions, Credential, CredentialSource, Manifest, MountOutcome, RegistryClient,
    RegistryError, RetryPolicy,
};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::support::TestRegistry;
use fake::{Req, Resp};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Retries without sleeping, as `AIRLIFT_RETRY_DELAY_MS=0` would give (setting the variable
/// in-process needs `unsafe`, which the crate forbids).
fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    }
}

fn client() -> RegistryClient {
    RegistryClient::new(ClientOptions {
        retry: fast_retry(3),
        ..Default::default()
    })
    .unwrap()
}

struct Creds(HashMap<String, Credential>);

impl CredentialSource for Creds {
    fn credential(&self, registry: &str) -> Option<Credential> {
        self.0.get(registry).cloned()
    }
}

fn client_with_creds(registry: &str, user: &str, password: &str) -> RegistryClient {
    let cred = Credential {
        username: user.to_owned(),
        password: password.to_owned(),
    };
    let creds = Creds(HashMap::from([(registry.to_owned(), cred)]));
    RegistryClient::new(ClientOptions {
        retry: fast_retry(3),
        credentials: Some(Arc::new(creds)),
        ..Default::default()
    })
    .unwrap()
}

/// Deterministic incompressible-looking bytes.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn stream_of(bytes: &[u8], chunk: usize) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(chunks).boxed()
}

async fn read_all(body: BlobBody) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = body.stream;
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn push(repo: &airlift::registry::Repo, bytes: &[u8]) -> Digest {
    let digest = Digest::of(bytes);
    let session = repo.start_upload().await.unwrap();
    repo.put_blob(
        session,
        &digest,
        bytes.len() as u64,
        stream_of(bytes, 64 * 1024),
    )
    .await
    .unwrap();
    digest
}

fn manifest(bytes: &str, media_type: &str) -> Manifest {
    Manifest {
        bytes: Bytes::from(bytes.to_owned()),
        media_type: media_type.to_owned(),
        digest: Digest::of(bytes.as_bytes()),
    }
}

// ---------------------------------------------------------------- real registry: blobs

#[tokio::test]
async fn monolithic_streaming_push_then_head_and_get() {
    let reg = TestRegistry::start();
    let repo = client().repo(&reg.addr(), "team/app");
    let blob = data(300_000, 1);
    let digest = Digest::of(&blob);
    assert_eq!(repo.blob_size(&digest).await.unwrap(), None);

    let session = repo.start_upload().await.unwrap();
    assert_eq!(session.offset, 0);
    assert!(
        session
            .location
            .as_str()
            .starts_with(&format!("http://{}/v2/team/app/blobs/uploads/", reg.addr()))
    );
    repo.put_blob(
        session,
        &digest,
        blob.len() as u64,
        stream_of(&blob, 40_000),
    )
    .await
    .unwrap();

    assert_eq!(
        repo.blob_size(&digest).await.unwrap(),
        Some(blob.len() as u64)
    );
    let body = repo.get_blob(&digest, 0, None).await.unwrap();
    assert!(!body.partial);
    assert_eq!(body.content_length, Some(blob.len() as u64));
    assert_eq!(read_all(body).await, blob);
    assert_eq!(repo.name(), format!("{}/team/app", reg.addr()));
}

#[tokio::test]
async fn ranged_get_returns_the_requested_bytes() {
    let reg = TestRegistry::start();
    let repo = client().repo(&reg.addr(), "ranges");
    let blob = data(10_000, 2);
    let digest = push(&repo, &blob).await;

    let body = repo.get_blob(&digest, 100, Some(250)).await.unwrap();
    assert!(body.partial);
    assert_eq!(body.content_length, Some(150));
    assert_eq!(read_all(body).await, &blob[100..250]);

    let body = repo.get_blob(&digest, 9_000, None).await.unwrap();
    assert!(body.partial);
    assert_eq!(read_all(body).await, &blob[9_000..]);

    let body = repo.get_blob(&digest, 0, Some(1)).await.unwrap();
    assert!(body.partial);
    assert_eq!(read_all(body).await, &blob[..1]);
}

#[tokio::test]
async fn chunked_upload_in_three_chunks_with_status() {
    let reg = TestRegistry::start();
    let repo = client().repo(&reg.addr(), "chunked");
    let blob = data(250_000, 3);
    let digest = Digest::of(&blob);
    let (a, rest) = blob.split_at(100_000);
    let (b, c) = rest.split_at(100_000);

    let session = repo.start_upload().await.unwrap();
    let session = repo
        .patch_chunk(session, Bytes::copy_from_slice(a))
        .await
        .unwrap();
    assert_eq!(session.offset, 100_000);
    let session = repo
        .patch_chunk(session, Bytes::copy_from_slice(b))
        .await
        .unwrap();
    assert_eq!(session.offset, 200_000);

    let status = repo.upload_status(&session).await.unwrap();
    assert_eq!(status.offset, 200_000);

    let session = repo
        .patch_chunk(status, Bytes::copy_from_slice(c))
        .await
        .unwrap();
    assert_eq!(session.offset, 250_000);
    repo.finish_upload(session, &digest).await.unwrap();

    assert_eq!(repo.blob_size(&digest).await.unwrap(), Some(250_000));
    assert_eq!(
        read_all(repo.get_blob(&digest, 0, None).await.unwrap()).await,
        blob
    );
}

#[tokio::test]
async fn finishing_with_a_wrong_digest_is_refused() {
    let reg = TestRegistry::start();
    let repo = client().repo(&reg.addr(), "wrong");
    let session = repo.start_upload().await.unwrap();
    let session = repo
        .patch_chunk(session, Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let err = repo
        .finish_upload(session, &Digest::of(b"other"))
        .await
        .unwrap_err();
    match &err {
        RegistryError::Status {
            status: 400,
            detail: Some(d),
            ..
        } => assert!(d.contains("DIGEST_INVALID"), "{d}"),
        other => panic!("expected a 400 with the registry's code, got {other:?}"),
    }
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn cross_repository_mount() {
    let reg = TestRegistry::start();
    let client = client();
    let src = client.repo(&reg.addr(), "src/app");
    let dst = client.repo(&reg.addr(), "dst/app");
    let blob = data(5_000, 4);
    let digest = push(&src, &blob).await;

    assert_eq!(dst.blob_size(&digest).await.unwrap(), None);
    assert!(matches!(
        dst.mount_blob(&digest, "src/app").await.unwrap(),
        MountOutcome::Mounted
    ));
    assert_eq!(dst.blob_size(&digest).await.unwrap(), Some(5_000));

    // Mounting from a repository that lacks the blob opens an ordinary upload instead.
    let other = data(777, 5);
    let other_digest = Digest::of(&other);
    let outcome = dst.mount_blob(&other_digest, "src/app").await.unwrap();
    let MountOutcome::Upload(session) = outcome else {
        panic!("expected an upload session, got {outcome:?}")
    };
    assert_eq!(session.offset, 0);
    dst.put_blob(
        session,
        &other_digest,
        other.len() as u64,
        stream_of(&other, 100),
    )
    .await
    .unwrap();
    assert_eq!(dst.blob_size(&other_digest).await.unwrap(), Some(777));
}

// ---------------------------------------------------------------- real registry: manifests

#[tokio::test]
async fn manifests_round_trip_byte_for_byte() {
    let reg = TestRegistry::start();
    let repo = client().repo(&reg.addr(), "lib/img");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = data(1_000, 6);
    let config_digest = push(&repo, config).await;
    let layer_digest = push(&repo, &layer).await;

    // Odd key order, tabs, trailing newline: any re-serialisation would change the digest.
    let docker = format!(
        "{{\n\t\"config\" :  {{\"size\":{},\"digest\":\"{config_digest}\",\"mediaType\":\"application/vnd.docker.container.image.v1+json\"}},\n  \"schemaVersion\": 2,\n\"mediaType\": \"{DOCKER_MANIFEST}\",\n  \"layers\": [ {{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":{},\"digest\":\"{layer_digest}\"}} ]\n}}\n\n",
        config.len(),
        layer.len()
    );
    let oci = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{config_digest}\",\"size\":{}}},\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"{layer_digest}\",\"size\":{}}}],\"annotations\":{{\"z\":\"1\",\"a\":\"2\"}}}}",
        config.len(),
        layer.len()
    );
    let docker = manifest(&docker, DOCKER_MANIFEST);
    let oci = manifest(&oci, OCI_MANIFEST);
    repo.put_manifest("docker", &docker).await.unwrap();
    repo.put_manifest(oci.digest.as_str(), &oci).await.unwrap();
    let index = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_INDEX}\",\"manifests\":[{{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{}\",\"size\":{},\"platform\":{{\"architecture\":\"amd64\",\"os\":\"linux\"}}}}]}}",
        oci.digest,
        oci.bytes.len()
    );
    let index = manifest(&index, OCI_INDEX);
    repo.put_manifest("multi", &index).await.unwrap();

    for (locator, expected) in [
        ("docker", &docker),
        (oci.digest.as_str(), &oci),
        ("multi", &index),
    ] {
        let got = repo.get_manifest(locator).await.unwrap();
        assert_eq!(&got, expected, "GET {locator}");
        let by_digest = repo.get_manifest(expected.digest.as_str()).await.unwrap();
        assert_eq!(by_digest.bytes, expected.bytes);
        let head = repo.head_manifest(locator).await.unwrap().expect("present");
        assert_eq!(head.digest, expected.digest);
        assert_eq!(head.media_type, expected.media_type);
        assert_eq!(head.size, expected.bytes.len() as u64);
    }
}

#[tokio::test]
async fn tampered_storage_gives_digest_mismatch() {
    let reg = TestRegistry::start();
    let repo = client().repo(&reg.addr(), "tamper");
    let config = br#"{"os":"linux"}"#;
    let config_digest = push(&repo, config).await;
    let body = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{config_digest}\",\"size\":{}}},\"layers\":[]}}",
        config.len()
    );
    let m = manifest(&body, OCI_MANIFEST);
    repo.put_manifest("v1", &m).await.unwrap();

    // Rewrite the stored manifest so the registry serves bytes that no longer hash to it.
    let path = reg
        .storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&m.digest.hex()[..2])
        .join(m.digest.hex())
        .join("data");
    let tampered = body.replace("\"layers\":[]", "\"layers\":[ ]");
    std::fs::write(&path, &tampered).unwrap_or_else(|e| panic!("rewrite {}: {e}", path.display()));

    match repo.get_manifest(m.digest.as_str()).await.unwrap_err() {
        RegistryError::DigestMismatch {
            expected,
            actual,
            url,
        } => {
            assert_eq!(expected, m.digest);
            assert_eq!(actual, Digest::of(tampered.as_bytes()));
            assert!(
                url.ends_with(&format!("/v2/tamper/manifests/{}", m.digest)),
                "{url}"
            );
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    // By tag, distribution still sends the true digest in Docker-Content-Digest.
    assert!(matches!(
        repo.get_manifest("v1").await.unwrap_err(),
        RegistryError::DigestMismatch { .. }
    ));
}

#[tokio::test]
async fn absent_things_are_not_found() {
    let reg = TestRegistry::start();
    let repo = client().repo(&reg.addr(), "empty/repo");
    let missing = Digest::of(b"missing");
    match repo.get_manifest("nope").await.unwrap_err() {
        RegistryError::NotFound { what, url } => {
            assert_eq!(what, "manifest `nope`");
            assert!(url.ends_with("/v2/empty/repo/manifests/nope"), "{url}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        repo.get_manifest(missing.as_str()).await,
        Err(RegistryError::NotFound { .. })
    ));
    assert_eq!(repo.head_manifest("nope").await.unwrap(), None);
    assert_eq!(repo.blob_size(&missing).await.unwrap(), None);
    match repo.get_blob(&missing, 0, None).await {
        Err(RegistryError::NotFound { what, .. }) => assert_eq!(what, format!("blob `{missing}`")),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a missing blob was served"),
    }
}

#[tokio::test]
async fn unreachable_port_is_a_quick_transport_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let repo = client().repo(&format!("127.0.0.1:{port}"), "x");
    let started = Instant::now();
    let err = repo.get_manifest("latest").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    match &err {
        RegistryError::Transport { url, .. } => {
            assert!(url.contains(&format!("127.0.0.1:{port}")), "{url}")
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(err.is_retryable());
}

// ---------------------------------------------------------------- real registry: Basic auth

#[tokio::test]
async fn htpasswd_basic_auth() {
    let reg = authreg::BasicRegistry::start();
    let authed = client_with_creds(&reg.addr, authreg::USER, authreg::PASSWORD);
    let repo = authed.repo(&reg.addr, "private/app");
    let blob = data(2_000, 7);
    let digest = push(&repo, &blob).await;
    assert_eq!(
        read_all(repo.get_blob(&digest, 0, None).await.unwrap()).await,
        blob
    );

    let anonymous = client().repo(&reg.addr, "private/app");
    match anonymous.blob_size(&digest).await.unwrap_err() {
        RegistryError::Auth {
            registry,
            scope,
            reason,
            kind,
        } => {
            assert_eq!(*kind, airlift::registry::AuthFailure::Missing);
            assert_eq!(registry, reg.addr);
            assert_eq!(scope, "repository:private/app:pull");
            assert_eq!(reason, format!("no credentials for {}", reg.addr));
        }
        other => panic!("expected an auth error, got {other:?}"),
    }

    let wrong =
        client_with_creds(&reg.addr, authreg::USER, "hunter2-wrong").repo(&reg.addr, "private/app");
    let err = wrong.start_upload().await.unwrap_err();
    match &err {
        RegistryError::Auth { reason, scope, .. } => {
            assert_eq!(reason, "credentials rejected");
            assert_eq!(scope, "repository:private/app:pull,push");
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("Basic "),
        "{shown}"
    );
}

// ---------------------------------------------------------------- fake server: Bearer tokens

/// A registry that wants Bearer tokens from its own `/token` endpoint.
struct TokenServer {
    fake: fake::Fake,
    token_requests: Arc<Mutex<Vec<Req>>>,
}

/// Serves manifests and mounts only with a token it issued; `reject_first` makes the first
/// token it hands out be refused once used.
async fn token_server(reject_first: bool) -> TokenServer {
    let token_requests = Arc::new(Mutex::new(Vec::<Req>::new()));
    let log = token_requests.clone();
    let addr_slot = Arc::new(Mutex::new(String::new()));
    let addr_for_handler = addr_slot.clone();
    let fake = fake::serve(move |req| {
        let addr = addr_for_handler.lock().unwrap().clone();
        let challenge = format!(r#"Bearer realm="http://{addr}/token",service="fake-registry""#);
        if req.path() == "/token" {
            let mut log = log.lock().unwrap();
            log.push(req.clone());
            let n = log.len();
            return Resp::new(200)
                .header("Content-Type", "application/json")
                .body(format!(r#"{{"access_token":"tok-{n}","expires_in":300,"issued_at":"2020-01-01T00:00:00Z"}}"#))
                // Slow enough that concurrent callers overlap on the fetch.
                .delay(Duration::from_millis(200));
        }
        let auth = req.header("authorization").unwrap_or_default();
        let valid = auth.starts_with("Bearer tok-") && !(reject_first && auth == "Bearer tok-1");
        if !valid {
            return Resp::new(401)
                .header("WWW-Authenticate", &challenge)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#);
        }
        match (req.method.as_str(), req.path()) {
            ("GET", "/v2/") => Resp::new(200),
            ("GET", p) if p.starts_with("/v2/app/manifests/") => {
                Resp::new(200).header("Content-Type", OCI_MANIFEST).body(r#"{"schemaVersion":2}"#)
            }
            ("POST", "/v2/dst/blobs/uploads/") => Resp::new(201),
            _ => Resp::new(404),
        }
    })
    .await;
    *addr_slot.lock().unwrap() = fake.registry();
    TokenServer {
        fake,
        token_requests,
    }
}

#[tokio::test]
async fn bearer_token_is_fetched_once_for_concurrent_requests() {
    let server = token_server(false).await;
    let client = client();
    let repo = client.repo(&server.fake.registry(), "app");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.get_manifest("latest").await })
        })
        .collect();
    for t in tasks {
        let m = t.await.unwrap().unwrap();
        assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");
    }
    let requests = server.token_requests.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        1,
        "one token fetch for 16 concurrent requests"
    );
    assert_eq!(requests[0].query_all("scope"), ["repository:app:pull"]);
    assert_eq!(requests[0].query_all("service"), ["fake-registry"]);
    assert_eq!(
        requests[0].header("authorization"),
        None,
        "anonymous token request"
    );

    // The cached token is reused afterwards.
    repo.get_manifest("again").await.unwrap();
    assert_eq!(server.token_requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn mount_asks_for_both_scopes_in_one_token() {
    let server = token_server(false).await;
    let repo = client().repo(&server.fake.registry(), "dst");
    let outcome = repo
        .mount_blob(&Digest::of(b"layer"), "src/lib")
        .await
        .unwrap();
    assert!(matches!(outcome, MountOutcome::Mounted), "{outcome:?}");
    let requests = server.token_requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let mut scopes = requests[0].query_all("scope");
    scopes.sort();
    assert_eq!(
        scopes,
        ["repository:dst:pull,push", "repository:src/lib:pull"]
    );
}

#[tokio::test]
async fn rejected_token_is_dropped_and_refetched_once() {
    let server = token_server(true).await;
    let repo = client().repo(&server.fake.registry(), "app");
    repo.get_manifest("latest").await.unwrap();
    assert_eq!(server.token_requests.lock().unwrap().len(), 2);
    repo.get_manifest("latest").await.unwrap();
    assert_eq!(
        server.token_requests.lock().unwrap().len(),
        2,
        "the fresh token stays cached"
    );
}

#[tokio::test]
async fn token_request_carries_basic_credentials() {
    let server = token_server(false).await;
    let client = client_with_creds(&server.fake.registry(), "alice", "pw");
    client
        .repo(&server.fake.registry(), "app")
        .get_manifest("latest")
        .await
        .unwrap();
    let requests = server.token_requests.lock().unwrap().clone();
    // base64("alice:pw")
    assert_eq!(
        requests[0].header("authorization"),
        Some("Basic YWxpY2U6cHc=")
    );
}

// ---------------------------------------------------------------- fake server: faults

fn counted(counter: &Arc<AtomicUsize>) -> usize {
    counter.fetch_add(1, Ordering::SeqCst) + 1
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let server = fake::serve(move |req| match req.path() {
        "/v2/" => Resp::new(200),
        _ if counted(&h) == 1 => Resp::new(429).header("Retry-After", "1"),
        _ => Resp::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body("{}"),
    })
    .await;
    let policy = RetryPolicy {
        max_retries: 2,
        base_delay: Duration::ZERO,
        max_delay: Duration::from_secs(5),
    };
    let client = RegistryClient::new(ClientOptions {
        retry: policy,
        ..Default::default()
    })
    .unwrap();
    let started = Instant::now();
    client
        .repo(&server.registry(), "app")
        .get_manifest("latest")
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // An externally set AIRLIFT_RETRY_DELAY_MS caps Retry-After by design.
    if std::env::var_os("AIRLIFT_RETRY_DELAY_MS").is_none() {
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "waited only {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn retry_after_is_capped_by_max_delay() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let server = fake::serve(move |req| match req.path() {
        "/v2/" => Resp::new(200),
        _ if counted(&h) == 1 => Resp::new(503).header("Retry-After", "3600"),
        _ => Resp::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body("{}"),
    })
    .await;
    let policy = RetryPolicy {
        max_retries: 2,
        base_delay: Duration::ZERO,
        max_delay: Duration::from_millis(100),
    };
    let client = RegistryClient::new(ClientOptions {
        retry: policy,
        ..Default::default()
    })
    .unwrap();
    let started = Instant::now();
    client
        .repo(&server.registry(), "app")
        .get_manifest("latest")
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn bursts_of_503_are_retried_then_reported() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let server = fake::serve(move |req| match req.path() {
        "/v2/" => Resp::new(200),
        "/v2/flaky/manifests/latest" if counted(&h) <= 3 => Resp::new(503),
        "/v2/flaky/manifests/latest" => Resp::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body("{}"),
        "/v2/down/manifests/latest" => Resp::new(503)
            .header("Content-Type", "application/json")
            .body(r#"{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}"#),
        _ => Resp::new(400),
    })
    .await;
    let client = RegistryClient::new(ClientOptions {
        retry: fast_retry(3),
        ..Default::default()
    })
    .unwrap();
    client
        .repo(&server.registry(), "flaky")
        .get_manifest("latest")
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 4);

    let err = client
        .repo(&server.registry(), "down")
        .get_manifest("latest")
        .await
        .unwrap_err();
    match &err {
        RegistryError::Status {
            status: 503,
            detail,
            method,
            ..
        } => {
            assert_eq!(detail.as_deref(), Some("UNAVAILABLE: try later"));
            assert_eq!(method, "GET");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let server = fake::serve(move |req| match req.path() {
        "/v2/" => Resp::new(200),
        _ => {
            counted(&h);
            Resp::new(400).body(r#"{"errors":[{"code":"NAME_INVALID","message":"bad name"}]}"#)
        }
    })
    .await;
    let err = client()
        .repo(&server.registry(), "app")
        .get_manifest("latest")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 400, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn streamed_put_is_single_attempt_with_content_length() {
    let puts = Arc::new(Mutex::new(Vec::<Req>::new()));
    let p = puts.clone();
    let server = fake::serve(move |req| match (req.method.as_str(), req.path()) {
        ("GET", "/v2/") => Resp::new(200),
        ("PUT", _) => {
            p.lock().unwrap().push(req.clone());
            Resp::new(503)
        }
        _ => Resp::new(404),
    })
    .await;
    let repo = client().repo(&server.registry(), "app");
    let location = url::Url::parse(&format!(
        "http://{}/v2/app/blobs/uploads/u1?_state=abc",
        server.registry()
    ))
    .unwrap();
    let session = airlift::registry::UploadSession {
        location,
        offset: 0,
    };
    let blob = data(10_000, 8);
    let digest = Digest::of(&blob);
    let err = repo
        .put_blob(session, &digest, 10_000, stream_of(&blob, 1_000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 503, .. }),
        "{err:?}"
    );
    let puts = puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 1, "a streamed body is never replayed");
    assert_eq!(puts[0].header("content-length"), Some("10000"));
    assert_eq!(puts[0].header("transfer-encoding"), None);
    assert_eq!(
        puts[0].header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(puts[0].query_all("_state"), ["abc"]);
    assert_eq!(puts[0].query_all("digest"), [digest.to_string()]);
    assert_eq!(puts[0].body, blob);
}

#[tokio::test]
async fn lying_docker_content_digest_is_an_error() {
    let liar = Digest::of(b"something else");
    let claim = liar.to_string();
    let server = fake::serve(move |req| match req.path() {
        "/v2/" => Resp::new(200),
        _ => Resp::new(200)
            .header(
                "Content-Type",
                "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
            )
            .header("Docker-Content-Digest", &claim)
            .body(r#"{"schemaVersion":2}"#),
    })
    .await;
    match client()
        .repo(&server.registry(), "app")
        .get_manifest("latest")
        .await
        .unwrap_err()
    {
        RegistryError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, liar);
            assert_eq!(actual, Digest::of(br#"{"schemaVersion":2}"#));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn oversized_manifest_is_refused() {
    let server = fake::serve(move |req| match req.path() {
        "/v2/" => Resp::new(200),
        _ => Resp::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body(vec![b' '; 4 * 1024 * 1024 + 1]),
    })
    .await;
    let err = client()
        .repo(&server.registry(), "app")
        .get_manifest("latest")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn media_type_falls_back_to_content_type_without_parameters() {
    let server = fake::serve(move |req| match req.path() {
        "/v2/" => Resp::new(200),
        _ => Resp::new(200)
            .header(
                "Content-Type",
                "application/vnd.docker.distribution.manifest.v2+json; q=1",
            )
            .body("{\"schemaVersion\":2}"),
    })
    .await;
    let m = client()
        .repo(&server.registry(), "app")
        .get_manifest("latest")
        .await
        .unwrap();
    assert_eq!(m.media_type, DOCKER_MANIFEST);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_probe() {
    let probes = Arc::new(AtomicUsize::new(0));
    let p = probes.clone();
    let server = fake::serve(move |req| match req.path() {
        "/v2/" => {
            counted(&p);
            Resp::new(200).delay(Duration::from_millis(100))
        }
        _ => Resp::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body("{}"),
    })
    .await;
    let repo = client().repo(&server.registry(), "app");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.get_manifest("latest").await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(probes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn redirected_blob_get_does_not_forward_credentials() {
    let storage_seen = Arc::new(Mutex::new(Vec::<Req>::new()));
    let seen = storage_seen.clone();
    let storage = fake::serve(move |req| {
        seen.lock().unwrap().push(req.clone());
        Resp::new(200).body("blob-bytes")
    })
    .await;
    let storage_addr = storage.registry();
    let registry = fake::serve(move |req| {
        if req.header("authorization") != Some("Basic YWxpY2U6cHc=") {
            return Resp::new(401).header("WWW-Authenticate", r#"Basic realm="fake""#);
        }
        match req.path() {
            "/v2/" => Resp::new(200),
            _ => Resp::new(307).header(
                "Location",
                &format!("http://{storage_addr}/signed/blob?sig=1"),
            ),
        }
    })
    .await;
    let repo =
        client_with_creds(&registry.registry(), "alice", "pw").repo(&registry.registry(), "app");
    let body = repo
        .get_blob(&Digest::of(b"blob-bytes"), 0, None)
        .await
        .unwrap();
    assert!(!body.partial);
    assert_eq!(read_all(body).await, b"blob-bytes");
    let seen = storage_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, "/signed/blob?sig=1");
    assert_eq!(
        seen[0].header("authorization"),
        None,
        "credentials leaked to the storage host"
    );
}
