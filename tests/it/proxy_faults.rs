//! Self-tests of the fault proxy (`support::proxy`) against a real `docker-registry`.
//!
//! Every test starts its own registry, pushes content directly, then talks through a
//! [`FaultProxy`] with reqwest (or a raw socket where the transport outcome — RST, FIN, an open
//! but silent connection — is the point). Every wait is bounded by a client timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestRegistry;
use crate::support::proxy::{Action, FaultProxy, Faults, Matcher, PathKind, Rule};

const REPO: &str = "proxytest/app";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(20))
}

fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Monolithic upload: `POST /v2/<repo>/blobs/uploads/`, then one `PUT <location>&digest=...`
/// with the whole body. (distribution 2.8 ignores a body on `POST ?digest=`: it answers 202 and
/// opens a session instead of committing, so the single-request form is not usable here.)
async fn push_blob(http: &reqwest::Client, base: &str, data: &[u8]) -> String {
    let d = digest(data);
    let r = http
        .post(format!("{base}/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .expect("start upload");
    assert_eq!(r.status(), StatusCode::ACCEPTED, "start upload");
    let loc = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let sep = if loc.contains('?') { '&' } else { '?' };
    let resp = http
        .put(format!("{loc}{sep}digest={d}"))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .expect("push blob");
    assert_eq!(resp.status(), StatusCode::CREATED, "push blob {d}");
    d
}

fn manifest_json(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(layer), "size": layer.len()}],
    }))
    .expect("manifest json")
}

async fn push_manifest(http: &reqwest::Client, base: &str, tag: &str, manifest: &[u8]) {
    let resp = http
        .put(format!("{base}/v2/{REPO}/manifests/{tag}"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_vec())
        .send()
        .await
        .expect("push manifest");
    assert_eq!(resp.status(), StatusCode::CREATED, "push manifest");
}

/// A registry with one image (`config`, one `layer` of `layer_len` bytes, tag `v1`).
struct Fixture {
    reg: TestRegistry,
    upstream: SocketAddr,
    http: reqwest::Client,
    layer: Vec<u8>,
    layer_digest: String,
    manifest: Vec<u8>,
}

impl Fixture {
    async fn new(layer_len: usize) -> Fixture {
        let reg = TestRegistry::start();
        let upstream: SocketAddr = reg.addr().parse().expect("registry addr");
        let http = client();
        let direct = format!("http://{}", reg.addr());
        let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
        let layer = random_bytes(layer_len as u64, layer_len);
        push_blob(&http, &direct, &config).await;
        let layer_digest = push_blob(&http, &direct, &layer).await;
        let manifest = manifest_json(&config, &layer);
        push_manifest(&http, &direct, "v1", &manifest).await;
        Fixture {
            reg,
            upstream,
            http,
            layer,
            layer_digest,
            manifest,
        }
    }

    fn direct(&self) -> String {
        format!("http://{}", self.reg.addr())
    }

    fn blob_url(&self, base: &str) -> String {
        format!("{base}/v2/{REPO}/blobs/{}", self.layer_digest)
    }

    fn manifest_url(&self, base: &str) -> String {
        format!("{base}/v2/{REPO}/manifests/v1")
    }

    async fn get_manifest(&self, base: &str) -> reqwest::Response {
        self.http
            .get(self.manifest_url(base))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .expect("GET manifest")
    }
}

/// How a raw response read ended.
#[derive(Debug, PartialEq)]
enum RawEnd {
    /// Clean close (FIN).
    Eof,
    /// The socket failed (e.g. `ConnectionReset`).
    Error(std::io::ErrorKind),
    /// Nothing arrived for the idle timeout while the connection stayed open.
    Idle,
    /// As many body bytes as `Content-Length` arrived.
    Complete,
}

struct RawResponse {
    head: String,
    body: Vec<u8>,
    end: RawEnd,
}

impl RawResponse {
    fn content_length(&self) -> usize {
        self.head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("content-length header")
    }
}

/// Sends `GET path` on a fresh socket and reads until the body is complete, the connection
/// ends, or nothing arrives for `idle`.
async fn raw_get(addr: SocketAddr, path: &str, idle: Duration) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.expect("connect proxy");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send request");
    let mut data = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut head_len = None;
    let end = loop {
        if let Some(h) = head_len {
            let head = String::from_utf8_lossy(&data[..h]).to_string();
            let partial = RawResponse {
                head,
                body: Vec::new(),
                end: RawEnd::Eof,
            };
            if data.len() - h >= partial.content_length() {
                break RawEnd::Complete;
            }
        }
        match tokio::time::timeout(idle, s.read(&mut buf)).await {
            Err(_) => break RawEnd::Idle,
            Ok(Ok(0)) => break RawEnd::Eof,
            Ok(Ok(n)) => data.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => break RawEnd::Error(e.kind()),
        }
        if head_len.is_none() {
            head_len = data
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| p + 4);
        }
    };
    let h = head_len.expect("response head");
    RawResponse {
        head: String::from_utf8_lossy(&data[..h]).to_string(),
        body: data[h..].to_vec(),
        end,
    }
}

#[tokio::test]
async fn transparent_proxy_serves_identical_content() {
    let fx = Fixture::new(1 << 20).await;
    let proxy = FaultProxy::start(fx.upstream, Faults::default()).await;
    let base = proxy.url();

    let r = fx.http.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.bytes().await.unwrap();

    let r = fx.http.get(fx.blob_url(&base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.bytes().await.unwrap();
    assert!(body[..] == fx.layer[..], "blob differs through proxy");

    let r = fx.http.head(fx.blob_url(&base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        fx.layer.len().to_string()
    );

    let direct = fx.get_manifest(&fx.direct()).await;
    let via = fx.get_manifest(&base).await;
    assert_eq!(via.status(), StatusCode::OK);
    assert_eq!(
        via.headers().get("docker-content-digest"),
        direct.headers().get("docker-content-digest")
    );
    assert_eq!(via.bytes().await.unwrap()[..], fx.manifest[..]);

    let st = proxy.stats();
    assert_eq!(st.requests, 4);
    assert_eq!(st.faults_injected, 0);
    assert_eq!(st.requests_by_kind.get(&PathKind::Blob), Some(&2));
    assert_eq!(st.requests_by_kind.get(&PathKind::Manifest), Some(&1));
    assert!(st.bytes_to_client > fx.layer.len() as u64);
    // Keep-alive: the four sequential requests shared one connection.
    assert_eq!(st.connections, 1, "{st}");
}

#[tokio::test]
async fn uploads_through_proxy_work() {
    let fx = Fixture::new(1024).await;
    let proxy = FaultProxy::start(fx.upstream, Faults::default()).await;
    let base = proxy.url();

    // Monolithic PUT with a 3 MiB body.
    let big = random_bytes(99, 3 << 20);
    let d = push_blob(&fx.http, &base, &big).await;
    let back = fx
        .http
        .get(format!("{}/v2/{REPO}/blobs/{d}", fx.direct()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(back[..] == big[..], "monolithic upload stored wrong bytes");

    // Session upload: POST, chunked PATCH (streamed body), PUT ?digest=.
    let data = random_bytes(7, 700_000);
    let d = digest(&data);
    let r = fx
        .http
        .post(format!("{base}/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        loc.starts_with(&base) || loc.starts_with('/'),
        "Location {loc} bypasses the proxy {base}"
    );
    let loc = if loc.starts_with('/') {
        format!("{base}{loc}")
    } else {
        loc
    };
    let parts: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
    let r = fx
        .http
        .patch(&loc)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            parts,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with(&base), "Location {loc}");
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = fx
        .http
        .put(format!("{loc}{sep}digest={d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let back = fx
        .http
        .get(format!("{}/v2/{REPO}/blobs/{d}", fx.direct()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(back[..] == data[..], "session upload stored wrong bytes");

    // Manifest PUT through the proxy.
    push_manifest(&fx.http, &base, "v2", &fx.manifest).await;
    let r = fx
        .http
        .get(format!("{}/v2/{REPO}/manifests/v2", fx.direct()))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap()[..], fx.manifest[..]);
    assert!(proxy.stats().bytes_to_upstream > (3 << 20) + 700_000);
}

#[tokio::test]
async fn too_many_requests_k_times_then_passthrough() {
    let fx = Fixture::new(10_000).await;
    let rule = Rule::new(
        Matcher::any().method("GET").path_contains("/blobs/"),
        Action::too_many_requests(2),
    )
    .times(2);
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_rule(rule)).await;
    let base = proxy.url();

    for i in 0..2 {
        let r = fx.http.get(fx.blob_url(&base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "request {i}");
        assert_eq!(r.headers()["retry-after"], "2");
        let body = r.text().await.unwrap();
        assert!(body.contains("TOOMANYREQUESTS"), "{body}");
        // Non-matching requests are untouched meanwhile.
        let m = fx.get_manifest(&base).await;
        assert_eq!(m.status(), StatusCode::OK);
    }
    let r = fx.http.get(fx.blob_url(&base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.unwrap()[..] == fx.layer[..]);

    let st = proxy.stats();
    assert_eq!(st.faults_injected, 2);
    assert_eq!(st.faults_by_action.get("respond"), Some(&2));
    assert_eq!(st.connections, 1, "synthetic answers keep the connection");
}

#[tokio::test]
async fn service_unavailable_burst() {
    let fx = Fixture::new(1000).await;
    let rule = Rule::new(
        Matcher::any().path_contains("/manifests/"),
        Action::status(503),
    )
    .times(3);
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_rule(rule)).await;
    let base = proxy.url();
    for _ in 0..3 {
        let r = fx.get_manifest(&base).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().get("retry-after").is_none());
    }
    let r = fx.get_manifest(&base).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap()[..], fx.manifest[..]);

    // A 500 burst configured at runtime.
    let rule = Rule::new(Matcher::any().method("HEAD"), Action::status(500)).times(1);
    proxy.set_faults(Faults::default().with_rule(rule));
    let head = |u: String| fx.http.head(u).send();
    assert_eq!(head(fx.blob_url(&base)).await.unwrap().status(), 500);
    assert_eq!(head(fx.blob_url(&base)).await.unwrap().status(), 200);
    assert_eq!(proxy.stats().faults_injected, 4);
}

#[tokio::test]
async fn reset_after_n_body_bytes() {
    const N: usize = 100_000;
    let fx = Fixture::new(1 << 20).await;
    let rule = Rule::new(
        Matcher::any().path_contains("/blobs/"),
        Action::ResetAfter(N as u64),
    );
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_rule(rule)).await;

    let r = fx.http.get(fx.blob_url(&proxy.url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.content_length(), Some(1 << 20));
    let mut stream = r.bytes_stream();
    let mut got = 0;
    let mut failed = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => got += b.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "client saw no error after {got} bytes");
    assert!(got <= N, "client received {got} > {N} body bytes");

    // On the wire it is a reset, not a clean close.
    let raw = raw_get(proxy.addr(), &fx.blob_url(""), Duration::from_secs(5)).await;
    assert_eq!(
        raw.end,
        RawEnd::Error(std::io::ErrorKind::ConnectionReset),
        "after {} bytes",
        raw.body.len()
    );
    assert!(raw.body.len() <= N);
    assert!(
        raw.body[..] == fx.layer[..raw.body.len()],
        "prefix must be intact"
    );
    assert_eq!(proxy.stats().faults_by_action.get("reset"), Some(&2));
}

#[tokio::test]
async fn truncate_closes_after_n_body_bytes() {
    const N: usize = 5000;
    let fx = Fixture::new(1 << 20).await;
    let rule = Rule::new(
        Matcher::any().method("GET").path_contains("/blobs/"),
        Action::TruncateAfter(N as u64),
    );
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_rule(rule)).await;

    let raw = raw_get(proxy.addr(), &fx.blob_url(""), Duration::from_secs(5)).await;
    assert_eq!(raw.end, RawEnd::Eof);
    assert_eq!(
        raw.content_length(),
        1 << 20,
        "full Content-Length announced"
    );
    assert_eq!(raw.body.len(), N);
    assert!(raw.body[..] == fx.layer[..N]);

    let r = fx.http.get(fx.blob_url(&proxy.url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.is_err(), "short body must be an error");
}

#[tokio::test]
async fn flip_changes_one_byte_same_length() {
    const AT: usize = 12_345;
    let fx = Fixture::new(256 * 1024).await;
    let rule = Rule::new(
        Matcher::any().path_contains("/blobs/"),
        Action::FlipByte(AT as u64),
    )
    .times(1);
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_rule(rule)).await;

    let r = fx.http.get(fx.blob_url(&proxy.url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), fx.layer.len());
    assert_ne!(digest(&body), fx.layer_digest);
    let diffs: Vec<usize> = (0..body.len())
        .filter(|&i| body[i] != fx.layer[i])
        .collect();
    assert_eq!(diffs, [AT]);

    // The rule was for one request only.
    let body = fx
        .http
        .get(fx.blob_url(&proxy.url()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(digest(&body), fx.layer_digest);
}

#[tokio::test]
async fn stall_keeps_connection_open_and_silent() {
    let fx = Fixture::new(1 << 20).await;
    let rule = Rule::new(
        Matcher::any().path_contains("/blobs/"),
        Action::StallAfter(1000),
    );
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_rule(rule)).await;

    let impatient = client_with_timeout(Duration::from_secs(1));
    let t = Instant::now();
    let res = match impatient.get(fx.blob_url(&proxy.url())).send().await {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    let err = res.expect_err("stalled body must not complete");
    assert!(err.is_timeout(), "expected a timeout, got {err}");
    assert!(t.elapsed() < Duration::from_secs(3));

    // Raw: head + 1000 bytes, then silence on an open connection (no FIN, no RST).
    let raw = raw_get(proxy.addr(), &fx.blob_url(""), Duration::from_millis(1500)).await;
    assert_eq!(raw.end, RawEnd::Idle);
    assert_eq!(raw.body.len(), 1000);

    // Stall before the head.
    let rule = Rule::new(
        Matcher::any().path_contains("/manifests/"),
        Action::StallHeaders,
    );
    proxy.set_faults(Faults::default().with_rule(rule));
    let err = impatient
        .get(fx.manifest_url(&proxy.url()))
        .send()
        .await
        .expect_err("no head may arrive");
    assert!(err.is_timeout(), "{err}");
    // The proxy still serves other requests.
    let r = impatient
        .get(format!("{}/v2/", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn latency_adds_round_trip_per_request() {
    let fx = Fixture::new(1000).await;
    let one_way = Duration::from_millis(100);
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_latency(one_way)).await;
    let url = format!("{}/v2/", proxy.url());

    // A new connection costs one extra round trip (the handshake), then one per request.
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let r = fx.http.get(&url).send().await.unwrap();
        r.bytes().await.unwrap();
        times.push(t.elapsed());
    }
    assert!(
        times[0] >= 4 * one_way && times[0] < Duration::from_secs(3),
        "{times:?}"
    );
    for took in &times[1..] {
        assert!(*took >= 2 * one_way && *took < 4 * one_way, "{times:?}");
    }
    assert_eq!(
        proxy.stats().connections,
        1,
        "all on one kept-alive connection"
    );

    // Runtime change: no latency, but a 300 ms slow server for manifests.
    let rule = Rule::new(
        Matcher::any().path_contains("/manifests/"),
        Action::DelayResponse(Duration::from_millis(300)),
    );
    proxy.set_faults(Faults::default().with_rule(rule));
    let t = Instant::now();
    fx.http
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let r = fx.get_manifest(&proxy.url()).await;
    assert_eq!(r.bytes().await.unwrap()[..], fx.manifest[..]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn per_connection_bandwidth_cap() {
    let fx = Fixture::new(4 << 20).await;
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_conn_rate(4_000_000)).await;

    // Download: 4 MiB at 4 MB/s ≈ 1.05 s.
    let t = Instant::now();
    let body = fx
        .http
        .get(fx.blob_url(&proxy.url()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let took = t.elapsed();
    assert!(body[..] == fx.layer[..]);
    assert!(
        took >= Duration::from_millis(800) && took <= Duration::from_secs(3),
        "4 MiB at 4 MB/s took {took:?}"
    );

    // Upload direction too: 2 MiB at 4 MB/s ≈ 0.52 s.
    let data = random_bytes(5, 2 << 20);
    let t = Instant::now();
    push_blob(&fx.http, &proxy.url(), &data).await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took <= Duration::from_secs(2),
        "2 MiB upload at 4 MB/s took {took:?}"
    );
}

#[tokio::test]
async fn total_bandwidth_cap_is_shared() {
    let fx = Fixture::new(2 << 20).await;
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_total_rate(4_000_000)).await;
    let url = fx.blob_url(&proxy.url());

    // Alone, one connection gets the whole 4 MB/s: 2 MiB ≈ 0.52 s.
    let t = Instant::now();
    let body = fx
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let alone = t.elapsed();
    assert!(body[..] == fx.layer[..]);
    assert!(
        alone >= Duration::from_millis(400) && alone <= Duration::from_millis(1500),
        "alone: {alone:?}"
    );

    // Two connections at once share it: 4 MiB ≈ 1.05 s.
    let (a, b) = (client(), client());
    let t = Instant::now();
    let fetch = |c: reqwest::Client| {
        let url = url.clone();
        async move { c.get(url).send().await.unwrap().bytes().await.unwrap() }
    };
    let (x, y) = tokio::join!(fetch(a), fetch(b));
    let both = t.elapsed();
    assert!(x[..] == fx.layer[..] && y[..] == fx.layer[..]);
    assert!(
        both >= Duration::from_millis(800) && both <= Duration::from_secs(3),
        "two concurrent 2 MiB downloads under a 4 MB/s total cap took {both:?}"
    );
    assert!(proxy.stats().connections >= 3);
}

#[tokio::test]
async fn range_requests_pass_through() {
    let fx = Fixture::new(100_000).await;
    let proxy = FaultProxy::start(fx.upstream, Faults::default()).await;
    for (range, lo, hi) in [
        ("bytes=100-199", 100, 200),
        ("bytes=99000-", 99_000, 100_000),
    ] {
        let get = |base: String| {
            fx.http
                .get(fx.blob_url(&base))
                .header("range", range)
                .send()
        };
        let direct = get(fx.direct()).await.unwrap();
        let via = get(proxy.url()).await.unwrap();
        assert_eq!(via.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            via.headers().get("content-range"),
            direct.headers().get("content-range")
        );
        let body = via.bytes().await.unwrap();
        assert_eq!(body[..], fx.layer[lo..hi], "{range}");
    }
}

#[tokio::test]
async fn matcher_limits_faults_to_matching_requests() {
    let fx = Fixture::new(50_000).await;
    // Only PUTs that finish an upload fail.
    let rule = Rule::new(
        Matcher::any()
            .method("PUT")
            .path_contains("/blobs/uploads/"),
        Action::status(503),
    );
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_rule(rule)).await;
    let base = proxy.url();

    // (Bodies are read so the client can keep its one connection.)
    let r = fx.http.get(fx.blob_url(&base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap()[..] == fx.layer[..]);
    assert_eq!(
        fx.http
            .head(fx.blob_url(&base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = fx.get_manifest(&base).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let r = fx
        .http
        .post(format!("{base}/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let data = random_bytes(3, 64 * 1024);
    let r = fx
        .http
        .put(format!("{loc}&digest={}", digest(&data)))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    r.bytes().await.unwrap();
    // The drained upload body left the connection usable.
    let r = fx.get_manifest(&base).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let st = proxy.stats();
    assert_eq!(st.faults_injected, 1);
    assert_eq!(st.requests_by_kind.get(&PathKind::Upload), Some(&2));
    assert_eq!(st.connections, 1);
    let r = fx
        .http
        .head(format!("{}/v2/{REPO}/blobs/{}", fx.direct(), digest(&data)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "faulted PUT reached the registry"
    );

    // Probability triggers are seeded: the same seed gives the same pattern.
    let faults = Faults::default().with_seed(42).with_rule(
        Rule::new(Matcher::any().path_glob("/v2/"), Action::status(500)).with_probability(0.5),
    );
    let mut runs = Vec::new();
    for _ in 0..2 {
        proxy.set_faults(faults.clone());
        let mut pattern = Vec::new();
        for _ in 0..40 {
            let r = fx.http.get(format!("{base}/v2/")).send().await.unwrap();
            pattern.push(r.status().as_u16());
            r.bytes().await.unwrap();
        }
        runs.push(pattern);
    }
    let failed = runs[0].iter().filter(|&&s| s == 500).count();
    assert!((5..=35).contains(&failed), "{failed} of 40 failed at p=0.5");
    assert!(runs[0].iter().all(|&s| s == 200 || s == 500));
    assert_eq!(runs[0], runs[1], "same seed, same pattern");
}

#[tokio::test]
async fn upload_drop_resets_and_commits_nothing() {
    let fx = Fixture::new(1000).await;
    let rule = Rule::new(
        Matcher::any()
            .method("PUT")
            .path_contains("/blobs/uploads/"),
        Action::ResetRequestAfter(256 * 1024),
    )
    .times(1);
    let proxy = FaultProxy::start(fx.upstream, Faults::default().with_rule(rule)).await;
    let base = proxy.url();
    let data = random_bytes(11, 1 << 20);
    let d = digest(&data);

    let upload = || async {
        let r = fx
            .http
            .post(format!("{base}/v2/{REPO}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        fx.http
            .put(format!("{loc}&digest={d}"))
            .body(data.clone())
            .send()
            .await
    };
    let err = upload().await.expect_err("dropped upload must fail");
    assert!(!err.is_timeout(), "{err}");
    let exists = |u: String| fx.http.head(u).send();
    let url = format!("{}/v2/{REPO}/blobs/{d}", fx.direct());
    assert_eq!(exists(url.clone()).await.unwrap().status(), 404);
    let st = proxy.stats();
    assert!(st.bytes_to_upstream < 512 * 1024, "{st}");

    // The rule fired once; the retry goes through.
    let r = upload().await.expect("second upload");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(exists(url).await.unwrap().status(), 200);
}

#[tokio::test]
async fn dead_upstream_is_a_502() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = dead.local_addr().unwrap();
    drop(dead);
    let proxy = FaultProxy::start(upstream, Faults::default()).await;
    let r = client()
        .get(format!("{}/v2/", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
}

/// A TLS ClientHello (a client probing HTTPS first, as airlift and docker do) gets a 400 and a
/// close at once, as from distribution itself, instead of a proxy waiting for a request head.
#[tokio::test]
async fn tls_handshake_is_refused_at_once() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.addr().parse().unwrap(), Faults::default()).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    // The start of a TLS 1.2 record carrying a ClientHello; no CRLF anywhere.
    s.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .await
    .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got))
        .await
        .expect("the proxy left the TLS client waiting")
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    // Plain HTTP still works.
    let r = client()
        .get(format!("{}/v2/", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// A server that answers one request per connection and then closes it without saying
/// `Connection: close` (as a server with a short idle timeout does).
async fn one_shot_server() -> (SocketAddr, tokio::task::JoinHandle<usize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut served = 0;
        while served < 3 {
            let Ok(Ok((mut s, _))) =
                tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
            else {
                break;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let body = format!("reply {served}");
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
            served += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(s);
        }
        served
    });
    (addr, task)
}

#[tokio::test]
async fn upstream_closing_idle_connection_is_reopened() {
    let (upstream, server) = one_shot_server().await;
    let proxy = FaultProxy::start(upstream, Faults::default()).await;
    let http = client();
    for i in 0..3 {
        let r = http.get(format!("{}/x", proxy.url())).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.unwrap(), format!("reply {i}"));
        // Let the server's close reach the proxy before the next request.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The client kept one connection; the proxy opened one upstream connection per request.
    assert_eq!(proxy.stats().connections, 1);
    assert_eq!(server.await.unwrap(), 3);
}
