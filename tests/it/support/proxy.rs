//! A fault-injecting HTTP/1.1 proxy for testing airlift against a real registry.
//!
//! [`FaultProxy`] listens on loopback and forwards every client connection to one upstream
//! registry (e.g. CNCF distribution), injecting faults that a real registry cannot produce on
//! demand. It is used by the integration tests (`tests/it`) and, through
//! `examples/faultproxy.rs`, by the benchmark scripts.
//!
//! # Model
//!
//! Each accepted client connection gets its own upstream connection. The proxy understands just
//! enough HTTP/1.1 to find request and response boundaries (request line, status line, headers,
//! `Content-Length` and chunked bodies, keep-alive), so faults can target individual requests on a
//! kept-alive connection. Everything it does not fault is forwarded byte-exact and streaming:
//! request heads are passed unchanged (including the client's `Host`, which distribution uses
//! to build absolute `Location` URLs, so they already point at the proxy), bodies are never
//! buffered whole, and `Range` requests / `206` responses pass through untouched. As a safety
//! net, an absolute `Location` that names the upstream address is rewritten to the proxy.
//!
//! ## Transport faults ([`Faults`] fields, per client connection)
//!
//! The client side of every connection behaves like a full-duplex long-haul link:
//! - `latency`: one-way delay applied to every chunk in each direction (pipelined, so it adds
//!   `2 × latency` to each request/response round trip without otherwise limiting throughput).
//!   The kernel completes the TCP handshake at once, so instead a new connection's first request
//!   is held back one more round trip.
//! - `conn_rate` / `total_rate`: bandwidth caps in bytes per second, per connection and shared
//!   by all connections, applied separately to each direction (token buckets with a small burst
//!   of about 10 ms or 32 KiB).
//!
//! Each direction holds at most 8 MiB in flight, like a TCP window, so one connection moves at
//! most `8 MiB / latency` per second.
//!
//! ## Request faults ([`Rule`] = [`Matcher`] + [`Trigger`] + [`Action`])
//!
//! Rules are checked in order for every request; the first rule whose matcher matches and whose
//! trigger fires supplies the request's [`Action`] (at most one fault per request):
//! - [`Action::Respond`]: answer e.g. `429` + `Retry-After` or `500`/`503` without contacting the
//!   upstream (a request body is drained first so the connection stays usable).
//! - [`Action::ResetAfter`]: forward the response head and `N` body bytes, then reset the client
//!   connection (TCP RST).
//! - [`Action::TruncateAfter`]: forward the head (with the full `Content-Length`) and `N` body
//!   bytes, then close the connection cleanly (FIN).
//! - [`Action::FlipByte`]: invert the body byte at offset `X` (same length, wrong content).
//! - [`Action::StallAfter`] / [`Action::StallHeaders`]: stop forwarding after `N` body bytes (or
//!   before the response head) but keep the connection open until the client gives up.
//! - [`Action::ResetRequestAfter`]: forward `N` bytes of the request body upstream, then reset
//!   both the client and the upstream connection (an upload that drops mid-way).
//! - [`Action::DelayResponse`]: hold the response head back for a while (a slow server).
//!
//! Body offsets count payload bytes (for chunked bodies: the decoded data, not the framing). A
//! cut-off fault (`ResetAfter`, `TruncateAfter`, `StallAfter`, `ResetRequestAfter`) only bites
//! when the body is longer than `N`; a shorter body, like a `FlipByte` offset past the end, passes
//! unchanged (the request still counts in [`Stats::faults_injected`], which counts decisions).
//! Triggers are "always", "the next K matching requests" (optionally after skipping M), or a
//! probability drawn from an RNG seeded with [`Faults::seed`], so runs are deterministic.
//! [`FaultProxy::set_faults`] swaps the whole configuration at runtime and restarts the rule
//! counters and the RNG.
//!
//! # Example
//!
//! ```ignore
//! let faults = Faults::default()
//!     .with_rule(Rule::new(Matcher::any().method("GET").path_contains("/blobs/"),
//!                          Action::too_many_requests(1)).times(2));
//! let proxy = FaultProxy::start(registry_addr, faults).await;
//! // ... point the client at proxy.addr() ...
//! assert_eq!(proxy.stats().faults_injected, 2);
//! ```

// Compiled into both the integration-test binary and the `faultproxy` example; each uses only
// part of the API.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until};

/// Largest request or response head the proxy accepts.
const MAX_HEAD: usize = 64 * 1024;
/// Largest piece forwarded at once (and the read size).
const MAX_PIECE: usize = 64 * 1024;
/// Piece size while a bandwidth cap is active, so connections interleave finely.
const SHAPED_PIECE: usize = 16 * 1024;
/// Smallest burst a token bucket allows.
const MIN_BURST: u64 = 32 * 1024;
/// Bytes in flight per direction of a connection (the "pipe" that carries latency), like a TCP
/// window: with latency `L` one connection moves at most `PIPE_BYTES / L` per second.
const PIPE_BYTES: usize = 8 * 1024 * 1024;
/// First byte of a TLS handshake record (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;
/// Messages in flight per direction (pieces are at most `MAX_PIECE`, so this never binds first).
const PIPE_DEPTH: usize = PIPE_BYTES / 1024;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The complete fault configuration. `Faults::default()` is a transparent proxy.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// One-way delay added to each direction of every client connection.
    pub latency: Duration,
    /// Bandwidth cap per connection and direction, in bytes per second.
    pub conn_rate: Option<u64>,
    /// Bandwidth cap shared by all connections, per direction, in bytes per second.
    pub total_rate: Option<u64>,
    /// Request faults, checked in order; the first that fires wins.
    pub rules: Vec<Rule>,
    /// Seed of the RNG behind [`Trigger::Probability`].
    pub seed: u64,
    /// Drop `Range` from every request, so the upstream answers `200` with the whole body:
    /// a server that ignores Range.
    pub strip_range: bool,
}

impl Faults {
    /// Makes the upstream look like a server that ignores `Range`.
    pub fn with_range_ignored(mut self) -> Self {
        self.strip_range = true;
        self
    }

    /// Sets the one-way latency.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Caps each connection at `bytes_per_sec` in each direction.
    pub fn with_conn_rate(mut self, bytes_per_sec: u64) -> Self {
        self.conn_rate = Some(bytes_per_sec);
        self
    }

    /// Caps all connections together at `bytes_per_sec` in each direction.
    pub fn with_total_rate(mut self, bytes_per_sec: u64) -> Self {
        self.total_rate = Some(bytes_per_sec);
        self
    }

    /// Appends a request fault rule.
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets the RNG seed for probabilistic rules.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// One request fault: which requests, how often, and what happens.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Which requests the rule applies to.
    pub matcher: Matcher,
    /// Matching requests let through before the trigger is armed.
    pub skip: u32,
    /// When a matching request (after `skip`) is faulted.
    pub trigger: Trigger,
    /// The fault.
    pub action: Action,
}

impl Rule {
    /// A rule that faults every matching request (narrow it with [`Rule::times`],
    /// [`Rule::with_probability`], [`Rule::skip`]).
    pub fn new(matcher: Matcher, action: Action) -> Rule {
        Rule {
            matcher,
            skip: 0,
            trigger: Trigger::Always,
            action,
        }
    }

    /// Faults only the next `k` matching requests.
    pub fn times(mut self, k: u32) -> Rule {
        self.trigger = Trigger::Times(k);
        self
    }

    /// Faults each matching request with probability `p` (seeded, see [`Faults::seed`]).
    pub fn with_probability(mut self, p: f64) -> Rule {
        self.trigger = Trigger::Probability(p);
        self
    }

    /// Lets the first `m` matching requests through untouched.
    pub fn skip(mut self, m: u32) -> Rule {
        self.skip = m;
        self
    }

    /// Parses the command-line form used by `examples/faultproxy.rs`: comma- or space-separated
    /// `key=value` items, exactly one of them an action.
    ///
    /// - matcher: `method=GET`, `path=/blobs/` (substring), `glob=/v2/*/blobs/sha256:*`
    /// - action: `status=503` (with optional `retry-after=SECS`), `reset-after=N`,
    ///   `truncate-after=N`, `flip-at=N`, `stall-after=N`, `stall-headers`,
    ///   `reset-request-after=N`, `delay-ms=MS`
    /// - trigger: `times=K`, `prob=P`, `skip=M` (default: every matching request)
    ///
    /// Example: `method=GET,path=/blobs/,status=429,retry-after=1,times=2`.
    pub fn parse(spec: &str) -> Result<Rule, String> {
        let mut matcher = Matcher::any();
        let mut action = None;
        let mut status = None;
        let mut retry_after = None;
        let mut rule_skip = 0;
        let mut trigger = Trigger::Always;
        let num = |k: &str, v: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .map_err(|_| format!("{k}: expected a number, got {v:?}"))
        };
        let mut set = |a: Action| -> Result<(), String> {
            match action.replace(a) {
                None => Ok(()),
                Some(_) => Err(format!("more than one action in {spec:?}")),
            }
        };
        for item in spec
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            match k {
                "method" => matcher = matcher.method(v),
                "path" => matcher = matcher.path_contains(v),
                "glob" => matcher = matcher.path_glob(v),
                "status" => {
                    let code = num(k, v)?;
                    if !(100..=599).contains(&code) {
                        return Err(format!("status {code} out of range"));
                    }
                    status = Some(code as u16);
                }
                "retry-after" => retry_after = Some(num(k, v)? as u32),
                "reset-after" => set(Action::ResetAfter(num(k, v)?))?,
                "truncate-after" => set(Action::TruncateAfter(num(k, v)?))?,
                "flip-at" => set(Action::FlipByte(num(k, v)?))?,
                "stall-after" => set(Action::StallAfter(num(k, v)?))?,
                "stall-headers" => set(Action::StallHeaders)?,
                "reset-request-after" => set(Action::ResetRequestAfter(num(k, v)?))?,
                "delay-ms" => set(Action::DelayResponse(Duration::from_millis(num(k, v)?)))?,
                "times" => trigger = Trigger::Times(num(k, v)? as u32),
                "prob" => {
                    let p: f64 = v.parse().map_err(|_| format!("prob: bad number {v:?}"))?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(format!("prob {p} not in 0..=1"));
                    }
                    trigger = Trigger::Probability(p);
                }
                "skip" => rule_skip = num(k, v)? as u32,
                _ => return Err(format!("unknown rule item {item:?}")),
            }
        }
        if let Some(status) = status {
            set(Action::Respond {
                status,
                retry_after,
            })?;
        } else if retry_after.is_some() {
            return Err("retry-after needs status=".into());
        }
        let action = action.ok_or_else(|| format!("no action in rule {spec:?}"))?;
        Ok(Rule {
            matcher,
            skip: rule_skip,
            trigger,
            action,
        })
    }
}

/// When a matching request is faulted.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// Every matching request.
    Always,
    /// The next `k` matching requests, then never again (until [`FaultProxy::set_faults`]).
    Times(u32),
    /// Each matching request with this probability (seeded RNG).
    Probability(f64),
}

/// Selects requests by method and request target (path plus query).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matcher {
    /// Method, compared case-sensitively (`GET`, `HEAD`, `PUT`, ...); `None` matches any.
    pub method: Option<String>,
    /// Pattern for the request target; `None` matches any.
    pub path: Option<PathPattern>,
}

impl Matcher {
    /// Matches every request.
    pub fn any() -> Matcher {
        Matcher::default()
    }

    /// Restricts to one method.
    pub fn method(mut self, method: &str) -> Matcher {
        self.method = Some(method.to_owned());
        self
    }

    /// Restricts to targets containing `needle` (e.g. `/blobs/`, `/manifests/`,
    /// `/blobs/uploads/`).
    pub fn path_contains(mut self, needle: &str) -> Matcher {
        self.path = Some(PathPattern::Contains(needle.to_owned()));
        self
    }

    /// Restricts to targets matching a whole-target glob where `*` matches any run of characters
    /// (e.g. `/v2/*/blobs/sha256:*`; the query string is part of the target).
    pub fn path_glob(mut self, glob: &str) -> Matcher {
        self.path = Some(PathPattern::Glob(glob.to_owned()));
        self
    }

    /// Whether a request with this method and target matches.
    pub fn matches(&self, method: &str, target: &str) -> bool {
        if let Some(m) = &self.method
            && m != method
        {
            return false;
        }
        match &self.path {
            None => true,
            Some(PathPattern::Contains(s)) => target.contains(s.as_str()),
            Some(PathPattern::Glob(g)) => glob_match(g.as_bytes(), target.as_bytes()),
        }
    }
}

/// A request-target pattern.
#[derive(Clone, Debug, PartialEq)]
pub enum PathPattern {
    /// The target contains this substring.
    Contains(String),
    /// The whole target matches this glob (`*` = any run of characters).
    Glob(String),
}

/// Glob match with `*` only, iterative with single backtrack point (linear-ish, no recursion).
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if p < pat.len() && pat[p] == s[i] {
            p += 1;
            i += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// What happens to a faulted request.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Answer with this status (and optional `Retry-After` seconds) without contacting upstream.
    Respond {
        /// HTTP status code, e.g. 429, 500, 503.
        status: u16,
        /// `Retry-After` header value in seconds.
        retry_after: Option<u32>,
    },
    /// Forward the response head and this many body bytes, then reset the connection (RST).
    ResetAfter(u64),
    /// Forward the response head (full `Content-Length`) and this many body bytes, then close
    /// cleanly (FIN).
    TruncateAfter(u64),
    /// Invert the response body byte at this offset.
    FlipByte(u64),
    /// Forward the response head and this many body bytes, then stop forwarding while keeping
    /// the connection open.
    StallAfter(u64),
    /// Never send the response head; keep the connection open.
    StallHeaders,
    /// Forward this many request body bytes upstream, then reset both connections.
    ResetRequestAfter(u64),
    /// Delay the response head by this much (on top of the link latency).
    DelayResponse(Duration),
    /// Forward the upstream's answer with another status (when `status` is set) and with
    /// these headers set (`Some`) or removed (`None`): a registry that answers differently,
    /// e.g. Amazon ECR's `201` to a chunk `PATCH` with a `Range` stuck at the first chunk.
    Rewrite {
        /// The status to answer with instead.
        status: Option<u16>,
        /// Headers (lowercase names) to set or remove.
        headers: Vec<(String, Option<String>)>,
    },
}

impl Action {
    /// `429 Too Many Requests` with `Retry-After: secs`.
    pub fn too_many_requests(secs: u32) -> Action {
        Action::Respond {
            status: 429,
            retry_after: Some(secs),
        }
    }

    /// A bare error status such as 500 or 503.
    pub fn status(status: u16) -> Action {
        Action::Respond {
            status,
            retry_after: None,
        }
    }

    /// Short name used in [`Stats::faults_by_action`].
    pub fn name(&self) -> &'static str {
        match self {
            Action::Respond { .. } => "respond",
            Action::ResetAfter(_) => "reset",
            Action::TruncateAfter(_) => "truncate",
            Action::FlipByte(_) => "flip",
            Action::StallAfter(_) => "stall",
            Action::StallHeaders => "stall-headers",
            Action::ResetRequestAfter(_) => "reset-request",
            Action::DelayResponse(_) => "delay",
            Action::Rewrite { .. } => "rewrite",
        }
    }
}

/// Parses a rate such as `10M` (10 000 000 B/s), `512K`, `1Gi`, `4MiB`, `800000`.
/// Decimal suffixes `K`, `M`, `G`; binary `Ki`, `Mi`, `Gi`; an optional trailing `B` or `B/s`.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let t = t.strip_suffix('B').unwrap_or(t);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit {
        "" => 1.0,
        "K" | "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("bad rate unit in {s:?}")),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad rate {s:?}"))?;
    let v = (n * mult).round();
    if v < 1.0 {
        return Err(format!("rate {s:?} must be at least 1 B/s"));
    }
    Ok(v as u64)
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/// Kinds of registry API paths, for [`Stats::requests_by_kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathKind {
    /// `/v2/` (API version check).
    Base,
    /// `/v2/<name>/manifests/<ref>`.
    Manifest,
    /// `/v2/<name>/blobs/<digest>`.
    Blob,
    /// `/v2/<name>/blobs/uploads/...`.
    Upload,
    /// `/v2/<name>/tags/list`.
    Tags,
    /// `/v2/_catalog`.
    Catalog,
    /// Anything else.
    Other,
}

impl PathKind {
    /// Classifies a request target.
    pub fn of(target: &str) -> PathKind {
        let path = target.split('?').next().unwrap_or(target);
        if path == "/v2/" || path == "/v2" {
            PathKind::Base
        } else if path.contains("/blobs/uploads") {
            PathKind::Upload
        } else if path.contains("/blobs/") {
            PathKind::Blob
        } else if path.contains("/manifests/") {
            PathKind::Manifest
        } else if path.ends_with("/tags/list") {
            PathKind::Tags
        } else if path.starts_with("/v2/_catalog") {
            PathKind::Catalog
        } else {
            PathKind::Other
        }
    }
}

/// A snapshot of what the proxy has seen since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client connections accepted.
    pub connections: u64,
    /// Requests read from clients (faulted or not).
    pub requests: u64,
    /// Bytes written to clients (heads and bodies).
    pub bytes_to_client: u64,
    /// Bytes written to the upstream (heads and bodies).
    pub bytes_to_upstream: u64,
    /// Requests that received a fault.
    pub faults_injected: u64,
    /// Requests per path kind.
    pub requests_by_kind: BTreeMap<PathKind, u64>,
    /// `GET` requests per request target (every target seen is a key, with 0 for no `GET`).
    pub gets_by_path: BTreeMap<String, u64>,
    /// Faults per [`Action::name`].
    pub faults_by_action: BTreeMap<&'static str, u64>,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections={} requests={} bytes_to_client={} bytes_to_upstream={} faults={}",
            self.connections,
            self.requests,
            self.bytes_to_client,
            self.bytes_to_upstream,
            self.faults_injected
        )?;
        for (k, v) in &self.requests_by_kind {
            write!(f, " {k:?}={v}")?;
        }
        for (k, v) in &self.faults_by_action {
            write!(f, " fault:{k}={v}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------------

/// Rule configuration plus its mutable trigger state; swapped together by `set_faults`.
struct RuleState {
    faults: Arc<Faults>,
    /// Per rule: matching requests seen so far (for `skip`) and faults injected (for `Times`).
    seen: Vec<u32>,
    fired: Vec<u32>,
    rng: StdRng,
}

impl RuleState {
    fn new(faults: Faults) -> RuleState {
        let n = faults.rules.len();
        RuleState {
            rng: StdRng::seed_from_u64(faults.seed),
            faults: Arc::new(faults),
            seen: vec![0; n],
            fired: vec![0; n],
        }
    }

    fn decide(&mut self, method: &str, target: &str) -> Option<Action> {
        let faults = self.faults.clone();
        for (i, rule) in faults.rules.iter().enumerate() {
            if !rule.matcher.matches(method, target) {
                continue;
            }
            self.seen[i] += 1;
            if self.seen[i] <= rule.skip {
                continue;
            }
            let fire = match rule.trigger {
                Trigger::Always => true,
                Trigger::Times(k) => self.fired[i] < k,
                Trigger::Probability(p) => self.rng.random::<f64>() < p,
            };
            if fire {
                self.fired[i] += 1;
                return Some(rule.action.clone());
            }
        }
        None
    }
}

#[derive(Clone, Copy)]
enum Dir {
    /// Client to upstream.
    Up,
    /// Upstream to client.
    Down,
}

struct Shared {
    upstream: SocketAddr,
    proxy_addr: SocketAddr,
    rules: Mutex<RuleState>,
    total_up: Mutex<Bucket>,
    total_down: Mutex<Bucket>,
    stats: Mutex<Stats>,
    bytes_to_client: AtomicU64,
    bytes_to_upstream: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn link(&self) -> Link {
        let f = &lock(&self.rules).faults;
        Link {
            latency: f.latency,
            conn_rate: f.conn_rate,
            total_rate: f.total_rate,
        }
    }

    fn on_request(&self, method: &str, target: &str) -> Option<Action> {
        let action = lock(&self.rules).decide(method, target);
        let mut st = lock(&self.stats);
        st.requests += 1;
        *st.requests_by_kind.entry(PathKind::of(target)).or_default() += 1;
        *st.gets_by_path.entry(target.to_owned()).or_default() += u64::from(method == "GET");
        if let Some(a) = &action {
            st.faults_injected += 1;
            *st.faults_by_action.entry(a.name()).or_default() += 1;
        }
        action
    }

    /// Waits until `n` more bytes may cross the link in direction `dir`.
    async fn shape(&self, conn: &mut Bucket, dir: Dir, link: &Link, n: usize) {
        let now = Instant::now();
        let mut until = now;
        if let Some(rate) = link.conn_rate {
            until = until.max(conn.reserve(n, rate, now));
        }
        if let Some(rate) = link.total_rate {
            let total = match dir {
                Dir::Up => &self.total_up,
                Dir::Down => &self.total_down,
            };
            until = until.max(lock(total).reserve(n, rate, now));
        }
        if until > now {
            sleep_until(until).await;
        }
    }
}

/// The link parameters in force for one chunk.
struct Link {
    latency: Duration,
    conn_rate: Option<u64>,
    total_rate: Option<u64>,
}

impl Link {
    fn piece(&self) -> usize {
        if self.conn_rate.is_some() || self.total_rate.is_some() {
            SHAPED_PIECE
        } else {
            MAX_PIECE
        }
    }
}

/// A token bucket in virtual-time form (GCRA): `next_free` is when the link becomes idle.
struct Bucket {
    next_free: Instant,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            next_free: Instant::now(),
        }
    }

    /// Books `n` bytes at `rate` B/s and returns when they have been sent.
    fn reserve(&mut self, n: usize, rate: u64, now: Instant) -> Instant {
        let rate = rate.max(1) as f64;
        let burst = Duration::from_secs_f64(MIN_BURST.max(rate as u64 / 100) as f64 / rate);
        let earliest = now.checked_sub(burst).unwrap_or(now);
        let start = self.next_free.max(earliest);
        self.next_free = start + Duration::from_secs_f64(n as f64 / rate);
        self.next_free
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy
// ---------------------------------------------------------------------------------------------

/// A running fault proxy. Dropping it stops the listener and every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy for `upstream` on `127.0.0.1` with a free port.
    ///
    /// Panics if it cannot bind (tests treat that as a failure).
    pub async fn start(upstream: SocketAddr, faults: Faults) -> FaultProxy {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
        FaultProxy::bind(addr, upstream, faults)
            .await
            .expect("fault proxy: bind 127.0.0.1:0")
    }

    /// Starts a proxy for `upstream` listening on `listen` (port 0 picks a free port).
    pub async fn bind(
        listen: SocketAddr,
        upstream: SocketAddr,
        faults: Faults,
    ) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            proxy_addr: addr,
            rules: Mutex::new(RuleState::new(faults)),
            total_up: Mutex::new(Bucket::new()),
            total_down: Mutex::new(Bucket::new()),
            stats: Mutex::new(Stats::default()),
            bytes_to_client: AtomicU64::new(0),
            bytes_to_upstream: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy { addr, shared, task })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for building URLs.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the configuration. Link parameters apply to the next chunk on every connection;
    /// rule counters and the RNG start afresh.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.rules) = RuleState::new(faults);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut st = lock(&self.shared.stats).clone();
        st.bytes_to_client = self.shared.bytes_to_client.load(Ordering::Relaxed);
        st.bytes_to_upstream = self.shared.bytes_to_upstream.load(Ordering::Relaxed);
        st
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    lock(&shared.stats).connections += 1;
                    conns.spawn(handle_conn(shared.clone(), stream));
                }
                // e.g. EMFILE: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// A piece of data in the link pipe: delivery time, bytes, and its share of the pipe budget.
type Flight = (Instant, Bytes, OwnedSemaphorePermit);

/// Takes `n` bytes of a pipe's budget (waits while the pipe is full).
async fn budget(pipe: &Arc<Semaphore>, n: usize) -> Option<OwnedSemaphorePermit> {
    pipe.clone().acquire_many_owned(n as u32).await.ok()
}

/// Messages to the task that writes to the client socket; each carries its delivery time.
enum Out {
    Data(Flight),
    /// Close cleanly (FIN).
    Close(Instant),
    /// Abort with RST.
    Reset(Instant),
}

async fn handle_conn(shared: Arc<Shared>, client: TcpStream) {
    let _ = client.set_nodelay(true);
    let (crd, cwr) = client.into_split();
    let (in_tx, in_rx) = mpsc::channel(PIPE_DEPTH);
    let (out_tx, out_rx) = mpsc::channel(PIPE_DEPTH);
    let reader = client_reader(crd, in_tx, shared.clone());
    let http = serve_http(
        shared.clone(),
        ClientIn {
            rx: in_rx,
            pending: None,
            buf: BytesMut::new(),
        },
        ClientOut {
            tx: out_tx,
            pipe: Arc::new(Semaphore::new(PIPE_BYTES)),
            bucket: Bucket::new(),
            shared: shared.clone(),
        },
    );
    let writer = client_writer(cwr, out_rx, shared.clone());
    // The writer finishes last (after the HTTP side drops its sender, or on close/reset); then
    // everything else is dropped, which releases the read half and closes the socket.
    let work = async {
        tokio::join!(reader, http);
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = writer => {}
        _ = work => {}
    }
}

/// Reads the client socket, shapes it like the link, and stamps each chunk with its arrival time.
///
/// The kernel completes the TCP handshake at once, so the connection's first bytes are held back
/// one extra round trip (`2 × latency`): a new connection costs what it costs on a real link.
async fn client_reader(mut rd: OwnedReadHalf, tx: mpsc::Sender<Flight>, shared: Arc<Shared>) {
    let mut bucket = Bucket::new();
    let pipe = Arc::new(Semaphore::new(PIPE_BYTES));
    let mut handshake = true;
    loop {
        let mut buf = BytesMut::with_capacity(MAX_PIECE);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut data = buf.freeze();
        while !data.is_empty() {
            let link = shared.link();
            let piece = data.split_to(data.len().min(link.piece()));
            shared.shape(&mut bucket, Dir::Up, &link, piece.len()).await;
            let Some(permit) = budget(&pipe, piece.len()).await else {
                return;
            };
            let mut at = Instant::now() + link.latency;
            if std::mem::take(&mut handshake) {
                at += 2 * link.latency;
            }
            if tx.send((at, piece, permit)).await.is_err() {
                return;
            }
        }
    }
}

/// Writes to the client socket at each message's delivery time.
async fn client_writer(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Out>, shared: Arc<Shared>) {
    while let Some(msg) = rx.recv().await {
        match msg {
            Out::Data((at, data, _permit)) => {
                sleep_until(at).await;
                if wr.write_all(&data).await.is_err() {
                    return;
                }
                shared
                    .bytes_to_client
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            Out::Close(at) => {
                sleep_until(at).await;
                let _ = wr.shutdown().await;
                return;
            }
            Out::Reset(at) => {
                sleep_until(at).await;
                // SO_LINGER 0 + close = RST. `forget` skips the FIN that dropping a write half
                // sends; the socket closes when the caller drops the read half.
                let _ = wr.as_ref().set_zero_linger();
                wr.forget();
                return;
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// The client side as seen by the HTTP logic: sends shaped, delayed bytes.
struct ClientOut {
    tx: mpsc::Sender<Out>,
    pipe: Arc<Semaphore>,
    bucket: Bucket,
    shared: Arc<Shared>,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "client connection gone")
}

impl ClientOut {
    async fn send(&mut self, mut data: Bytes) -> io::Result<()> {
        while !data.is_empty() {
            let link = self.shared.link();
            let piece = data.split_to(data.len().min(link.piece()));
            self.shared
                .shape(&mut self.bucket, Dir::Down, &link, piece.len())
                .await;
            let permit = budget(&self.pipe, piece.len()).await.ok_or_else(gone)?;
            let at = Instant::now() + link.latency;
            self.tx
                .send(Out::Data((at, piece, permit)))
                .await
                .map_err(|_| gone())?;
        }
        Ok(())
    }

    async fn close(&mut self) {
        let at = Instant::now() + self.shared.link().latency;
        let _ = self.tx.send(Out::Close(at)).await;
    }

    async fn reset(&mut self) {
        let at = Instant::now() + self.shared.link().latency;
        let _ = self.tx.send(Out::Reset(at)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 framing
// ---------------------------------------------------------------------------------------------

/// A buffered byte source: the client pipe or the upstream socket.
trait Source {
    fn buf(&mut self) -> &mut BytesMut;
    /// Appends more bytes to `buf`; `false` at end of stream.
    async fn fill(&mut self) -> io::Result<bool>;
}

struct ClientIn {
    rx: mpsc::Receiver<Flight>,
    /// A received piece waiting for its delivery time (kept here so `fill` is cancel-safe).
    pending: Option<Flight>,
    buf: BytesMut,
}

impl Source for ClientIn {
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Cancel-safe: a piece received but not yet due stays in `pending`.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.pending.is_none() {
            self.pending = self.rx.recv().await;
        }
        let Some((at, _, _)) = &self.pending else {
            return Ok(false);
        };
        sleep_until(*at).await;
        if let Some((_, data, _permit)) = self.pending.take() {
            self.buf.extend_from_slice(&data);
        }
        Ok(true)
    }
}

impl ClientIn {
    /// Discards everything until the client closes (used while stalling).
    async fn wait_for_close(&mut self) {
        self.pending = None;
        while self.rx.recv().await.is_some() {}
    }
}

struct UpstreamIn {
    rd: OwnedReadHalf,
    buf: BytesMut,
}

impl Source for UpstreamIn {
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    async fn fill(&mut self) -> io::Result<bool> {
        self.buf.reserve(MAX_PIECE);
        Ok(self.rd.read_buf(&mut self.buf).await? > 0)
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed mid-message",
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads a head up to and including the blank line. `None` on a clean EOF before any byte.
async fn read_head<S: Source>(src: &mut S) -> io::Result<Option<Bytes>> {
    let mut searched = 0;
    loop {
        let buf = src.buf();
        if let Some(pos) = find(&buf[searched..], b"\r\n\r\n") {
            return Ok(Some(buf.split_to(searched + pos + 4).freeze()));
        }
        searched = buf.len().saturating_sub(3);
        if buf.len() > MAX_HEAD {
            return Err(bad("head too large"));
        }
        if !src.fill().await? {
            return if src.buf().is_empty() {
                Ok(None)
            } else {
                Err(eof())
            };
        }
    }
}

/// Reads one CRLF-terminated line (including the CRLF).
async fn read_line<S: Source>(src: &mut S) -> io::Result<Bytes> {
    let mut searched = 0;
    loop {
        let buf = src.buf();
        if let Some(pos) = find(&buf[searched..], b"\r\n") {
            return Ok(buf.split_to(searched + pos + 2).freeze());
        }
        searched = buf.len().saturating_sub(1);
        if buf.len() > 8192 {
            return Err(bad("chunk line too long"));
        }
        if !src.fill().await? {
            return Err(eof());
        }
    }
}

/// A parsed request or response head; `raw` is forwarded unchanged.
struct Head {
    raw: Bytes,
    start: Vec<String>,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: Bytes) -> io::Result<Head> {
        let text = std::str::from_utf8(&raw[..raw.len() - 4])
            .map_err(|_| bad("non-UTF-8 head"))?
            .to_owned();
        let mut lines = text.split("\r\n");
        let start: Vec<String> = lines
            .next()
            .unwrap_or("")
            .splitn(3, ' ')
            .map(str::to_owned)
            .collect();
        if start.len() < 2 {
            return Err(bad("malformed start line"));
        }
        let mut headers = Vec::new();
        for line in lines {
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| bad("malformed header"))?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        Ok(Head {
            raw,
            start,
            headers,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header (any occurrence) contains `token`.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn version(&self, index: usize) -> &str {
        self.start.get(index).map(String::as_str).unwrap_or("")
    }

    /// Body framing from `Transfer-Encoding` / `Content-Length`; `default` when neither.
    fn framing(&self, default: Framing) -> io::Result<Framing> {
        if self.header("transfer-encoding").is_some() {
            if self.has_token("transfer-encoding", "chunked") {
                return Ok(Framing::Chunked);
            }
            return Err(bad("unsupported transfer-encoding"));
        }
        match self.header("content-length") {
            Some(v) => v
                .parse::<u64>()
                .map(Framing::Length)
                .map_err(|_| bad("bad content-length")),
            None => Ok(default),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// Part of a body: framing bytes (chunk sizes, CRLFs, trailers) or payload.
enum Piece {
    Frame(Bytes),
    Payload(Bytes),
}

enum BodyState {
    Length(u64),
    UntilClose,
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailer,
    Done,
}

/// Splits a body into pieces without changing a byte.
struct BodyReader {
    state: BodyState,
}

impl BodyReader {
    fn new(framing: Framing) -> BodyReader {
        let state = match framing {
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::ChunkSize,
            Framing::UntilClose => BodyState::UntilClose,
        };
        BodyReader { state }
    }

    async fn next<S: Source>(&mut self, src: &mut S) -> io::Result<Option<Piece>> {
        match self.state {
            BodyState::Done | BodyState::Length(0) => {
                self.state = BodyState::Done;
                Ok(None)
            }
            BodyState::Length(rem) | BodyState::ChunkData(rem) => {
                if src.buf().is_empty() && !src.fill().await? {
                    return Err(eof());
                }
                let buf = src.buf();
                let n = (buf.len() as u64).min(rem).min(MAX_PIECE as u64) as usize;
                let data = buf.split_to(n).freeze();
                self.state = match self.state {
                    BodyState::Length(_) => BodyState::Length(rem - n as u64),
                    _ if rem == n as u64 => BodyState::ChunkEnd,
                    _ => BodyState::ChunkData(rem - n as u64),
                };
                Ok(Some(Piece::Payload(data)))
            }
            BodyState::UntilClose => {
                if src.buf().is_empty() && !src.fill().await? {
                    self.state = BodyState::Done;
                    return Ok(None);
                }
                let buf = src.buf();
                let n = buf.len().min(MAX_PIECE);
                Ok(Some(Piece::Payload(buf.split_to(n).freeze())))
            }
            BodyState::ChunkSize => {
                let line = read_line(src).await?;
                let text = std::str::from_utf8(&line[..line.len() - 2])
                    .map_err(|_| bad("bad chunk size"))?;
                let hex = text.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(hex, 16).map_err(|_| bad("bad chunk size"))?;
                self.state = if size == 0 {
                    BodyState::Trailer
                } else {
                    BodyState::ChunkData(size)
                };
                Ok(Some(Piece::Frame(line)))
            }
            BodyState::ChunkEnd => {
                let line = read_line(src).await?;
                if &line[..] != b"\r\n" {
                    return Err(bad("chunk not followed by CRLF"));
                }
                self.state = BodyState::ChunkSize;
                Ok(Some(Piece::Frame(line)))
            }
            BodyState::Trailer => {
                let line = read_line(src).await?;
                if &line[..] == b"\r\n" {
                    self.state = BodyState::Done;
                }
                Ok(Some(Piece::Frame(line)))
            }
        }
    }
}

fn reason(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("Bad Request", "UNSUPPORTED"),
        429 => ("Too Many Requests", "TOOMANYREQUESTS"),
        500 => ("Internal Server Error", "UNKNOWN"),
        502 => ("Bad Gateway", "UNAVAILABLE"),
        503 => ("Service Unavailable", "UNAVAILABLE"),
        504 => ("Gateway Timeout", "UNAVAILABLE"),
        _ => ("Injected Fault", "UNKNOWN"),
    }
}

/// A registry-style error response made up by the proxy.
fn synthetic_response(
    status: u16,
    retry_after: Option<u32>,
    head_only: bool,
    close: bool,
) -> Bytes {
    let (text, code) = reason(status);
    let body = format!(
        r#"{{"errors":[{{"code":"{code}","message":"injected by faultproxy","detail":null}}]}}"#
    );
    let mut out = format!(
        "HTTP/1.1 {status} {text}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nDocker-Distribution-Api-Version: registry/2.0\r\n",
        body.len()
    );
    if let Some(secs) = retry_after {
        out.push_str(&format!("Retry-After: {secs}\r\n"));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&body);
    }
    Bytes::from(out)
}

/// `head` (a response head) with another status and headers set or removed.
fn rewrite_head(head: &Bytes, status: Option<u16>, headers: &[(String, Option<String>)]) -> Bytes {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let start = lines.next().unwrap_or_default();
    let mut out = match status {
        Some(code) => {
            let version = start.split(' ').next().unwrap_or("HTTP/1.1");
            format!("{version} {code} Rewritten\r\n")
        }
        None => format!("{start}\r\n"),
    };
    for line in lines {
        let name = line.split(':').next().unwrap_or_default().trim();
        if !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(name)) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    for (name, value) in headers {
        if let Some(value) = value {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str("\r\n");
    Bytes::from(out)
}

/// Rewrites an absolute `Location` naming the upstream so it names the proxy.
/// The request head without its `Range` header line.
fn without_range(raw: &Bytes) -> Bytes {
    let text = String::from_utf8_lossy(raw);
    let kept: Vec<&str> = text
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("range:"))
        .collect();
    Bytes::from(kept.join("\r\n"))
}

fn rewrite_location(head: Head, upstream: SocketAddr, proxy: SocketAddr) -> Bytes {
    let from = format!("http://{upstream}");
    let needs = head
        .header("location")
        .is_some_and(|l| l.starts_with(&from));
    if !needs {
        return head.raw;
    }
    let text = String::from_utf8_lossy(&head.raw).into_owned();
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive("\r\n") {
        match line.split_once(':') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("location") => {
                let v = v.trim().replacen(&from, &format!("http://{proxy}"), 1);
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            _ => out.push_str(line),
        }
    }
    Bytes::from(out)
}

// ---------------------------------------------------------------------------------------------
// Per-connection HTTP logic
// ---------------------------------------------------------------------------------------------

/// How a response exchange ended.
enum End {
    /// Ready for the next request.
    KeepAlive,
    /// Close both connections cleanly.
    Close,
    /// Reset the client connection.
    Reset,
    /// Stop forwarding and keep everything open until the client leaves.
    Stall,
    /// Reset the client and the upstream connection (request-side drop).
    ResetBoth,
}

/// The upstream connection of one client connection: opened at the first forwarded request and
/// reopened when the upstream closed it while idle.
struct Upstream {
    addr: SocketAddr,
    conn: Option<(UpstreamIn, OwnedWriteHalf)>,
}

impl Upstream {
    async fn connect(&mut self) -> io::Result<(&mut UpstreamIn, &mut OwnedWriteHalf)> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            let _ = stream.set_nodelay(true);
            let (rd, wr) = stream.into_split();
            let uin = UpstreamIn {
                rd,
                buf: BytesMut::new(),
            };
            self.conn = Some((uin, wr));
        }
        let (uin, wr) = self.conn.as_mut().expect("connected above");
        Ok((uin, wr))
    }

    /// Resets the upstream connection (RST), e.g. to abort an upload.
    fn reset(&mut self) {
        if let Some((uin, wr)) = self.conn.take()
            && let Ok(stream) = uin.rd.reunite(wr)
        {
            let _ = stream.set_zero_linger();
        }
    }
}

async fn serve_http(shared: Arc<Shared>, mut cin: ClientIn, mut cout: ClientOut) {
    let mut upstream = Upstream {
        addr: shared.upstream,
        conn: None,
    };
    loop {
        // Between requests, notice an upstream that closes its idle connection (or says
        // something unasked), so the next request goes out on a fresh one.
        if cin.buf.is_empty()
            && let Some((uin, _)) = upstream.conn.as_mut()
        {
            tokio::select! {
                biased;
                more = cin.fill() => match more {
                    Ok(true) => {}
                    _ => return cout.close().await,
                },
                _ = uin.fill() => upstream.conn = None,
            }
        }
        let end = exchange(&shared, &mut cin, &mut cout, &mut upstream)
            .await
            .unwrap_or(End::Close);
        match end {
            End::KeepAlive => continue,
            End::Close => cout.close().await,
            End::Reset => cout.reset().await,
            End::Stall => cin.wait_for_close().await,
            End::ResetBoth => {
                upstream.reset();
                cout.reset().await;
            }
        }
        return;
    }
}

/// One request/response exchange.
async fn exchange(
    shared: &Shared,
    cin: &mut ClientIn,
    cout: &mut ClientOut,
    upstream: &mut Upstream,
) -> io::Result<End> {
    // A TLS handshake on this plain-HTTP port (a client probing HTTPS first): answer 400 and
    // close, as Go's net/http (distribution) does, so the client falls back to HTTP at once
    // instead of waiting for its timeout.
    if cin.buf.is_empty() && !cin.fill().await? {
        return Ok(End::Close);
    }
    if cin.buf.first() == Some(&TLS_HANDSHAKE) {
        cout.send(synthetic_response(400, None, false, true))
            .await?;
        return Ok(End::Close);
    }
    let Some(raw) = read_head(cin).await? else {
        return Ok(End::Close);
    };
    let req = match Head::parse(raw) {
        Ok(h) => h,
        Err(_) => {
            cout.send(synthetic_response(400, None, false, true))
                .await?;
            return Ok(End::Close);
        }
    };
    let method = req.start[0].clone();
    let target = req.start[1].clone();
    let req_framing = match req.framing(Framing::Length(0)) {
        Ok(f) => f,
        Err(_) => {
            cout.send(synthetic_response(400, None, false, true))
                .await?;
            return Ok(End::Close);
        }
    };
    let client_close = req.has_token("connection", "close")
        || (req.version(2) == "HTTP/1.0" && !req.has_token("connection", "keep-alive"));
    let action = shared.on_request(&method, &target);

    if let Some(Action::Respond {
        status,
        retry_after,
    }) = action
    {
        // A client waiting for `100 Continue` will not send the body: answer and close.
        let expects = req.has_token("expect", "100-continue") && req_framing != Framing::Length(0);
        if !expects {
            let mut body = BodyReader::new(req_framing);
            while body.next(cin).await?.is_some() {}
        }
        let close = client_close || expects;
        cout.send(synthetic_response(
            status,
            retry_after,
            method == "HEAD",
            close,
        ))
        .await?;
        return Ok(if close { End::Close } else { End::KeepAlive });
    }

    let (uin, up_wr) = match upstream.connect().await {
        Ok(conn) => conn,
        Err(_) => {
            cout.send(synthetic_response(502, None, method == "HEAD", true))
                .await?;
            return Ok(End::Close);
        }
    };
    let head = if lock(&shared.rules).faults.strip_range {
        without_range(&req.raw)
    } else {
        req.raw.clone()
    };
    up_wr.write_all(&head).await?;
    shared
        .bytes_to_upstream
        .fetch_add(head.len() as u64, Ordering::Relaxed);

    let reset_request = match action {
        Some(Action::ResetRequestAfter(n)) => Some(n),
        _ => None,
    };
    let send = forward_request_body(shared, cin, up_wr, req_framing, reset_request);
    let recv = forward_response(shared, uin, cout, &method, action.as_ref());
    tokio::pin!(send, recv);
    let mut sent = false;
    let end = loop {
        tokio::select! {
            // Polling the request side first means a body that is fully sent is seen as such
            // before the response that follows it.
            biased;
            r = &mut send, if !sent => match r? {
                true => sent = true,
                false => return Ok(End::ResetBoth),
            },
            r = &mut recv => break r?,
        }
    };
    Ok(match end {
        // A response that came before the whole request body leaves the connection unusable.
        End::KeepAlive if !sent || client_close => End::Close,
        other => other,
    })
}

/// Streams the request body upstream. `Ok(false)` when the request-side reset fired.
async fn forward_request_body(
    shared: &Shared,
    cin: &mut ClientIn,
    up_wr: &mut OwnedWriteHalf,
    framing: Framing,
    reset_after: Option<u64>,
) -> io::Result<bool> {
    let mut body = BodyReader::new(framing);
    let mut off = 0u64;
    while let Some(piece) = body.next(cin).await? {
        let (data, payload) = match piece {
            Piece::Frame(b) => (b, false),
            Piece::Payload(b) => (b, true),
        };
        if payload
            && let Some(n) = reset_after
            && off + data.len() as u64 > n
        {
            let keep = (n - off) as usize;
            up_wr.write_all(&data[..keep]).await?;
            shared
                .bytes_to_upstream
                .fetch_add(keep as u64, Ordering::Relaxed);
            return Ok(false);
        }
        up_wr.write_all(&data).await?;
        shared
            .bytes_to_upstream
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if payload {
            off += data.len() as u64;
        }
    }
    Ok(true)
}

/// Streams the response to the client, applying the response-side fault.
async fn forward_response(
    shared: &Shared,
    uin: &mut UpstreamIn,
    cout: &mut ClientOut,
    method: &str,
    action: Option<&Action>,
) -> io::Result<End> {
    let resp = loop {
        let raw = read_head(uin).await?.ok_or_else(eof)?;
        let resp = Head::parse(raw)?;
        let status: u16 = resp.start[1].parse().map_err(|_| bad("bad status"))?;
        if (100..200).contains(&status) && status != 101 {
            if action != Some(&Action::StallHeaders) {
                cout.send(resp.raw).await?;
            }
            continue;
        }
        if status == 101 {
            return Err(bad("protocol upgrades are not supported"));
        }
        break (resp, status);
    };
    let (resp, status) = resp;
    match action {
        Some(Action::StallHeaders) => return Ok(End::Stall),
        Some(Action::DelayResponse(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let no_body = method == "HEAD" || status == 204 || status == 304;
    let framing = if no_body {
        Framing::Length(0)
    } else {
        resp.framing(Framing::UntilClose)?
    };
    let close = framing == Framing::UntilClose
        || resp.has_token("connection", "close")
        || (resp.version(0) == "HTTP/1.0" && !resp.has_token("connection", "keep-alive"));
    let mut head = rewrite_location(resp, shared.upstream, shared.proxy_addr);
    if let Some(Action::Rewrite { status, headers }) = action {
        head = rewrite_head(&head, *status, headers);
    }
    cout.send(head).await?;

    let cut = match action {
        Some(Action::ResetAfter(n)) => Some((*n, End::Reset)),
        Some(Action::TruncateAfter(n)) => Some((*n, End::Close)),
        Some(Action::StallAfter(n)) => Some((*n, End::Stall)),
        _ => None,
    };
    let flip = match action {
        Some(Action::FlipByte(x)) => Some(*x),
        _ => None,
    };
    let mut body = BodyReader::new(framing);
    let mut off = 0u64;
    while let Some(piece) = body.next(uin).await? {
        let mut data = match piece {
            Piece::Frame(b) => {
                cout.send(b).await?;
                continue;
            }
            Piece::Payload(b) => b,
        };
        let len = data.len() as u64;
        if let Some(x) = flip
            && (off..off + len).contains(&x)
        {
            let mut m = BytesMut::from(&data[..]);
            m[(x - off) as usize] ^= 0xff;
            data = m.freeze();
        }
        if let Some((n, _)) = &cut
            && off + len > *n
        {
            let keep = (*n - off) as usize;
            if keep > 0 {
                cout.send(data.slice(..keep)).await?;
            }
            let (_, end) = cut.expect("checked above");
            return Ok(end);
        }
        cout.send(data).await?;
        off += len;
    }
    Ok(if close { End::Close } else { End::KeepAlive })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_target() {
        assert!(glob_match(
            b"/v2/*/blobs/sha256:*",
            b"/v2/a/b/blobs/sha256:abc"
        ));
        assert!(!glob_match(b"/v2/*/blobs/sha256:*", b"/v2/a/manifests/x"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"axxbyybc"));
        assert!(!glob_match(b"a*b*c", b"axxbyyb"));
        assert!(!glob_match(b"abc", b"abcd"));
    }

    #[test]
    fn matcher_checks_method_and_path() {
        let m = Matcher::any().method("GET").path_contains("/blobs/");
        assert!(m.matches("GET", "/v2/x/blobs/sha256:00"));
        assert!(!m.matches("HEAD", "/v2/x/blobs/sha256:00"));
        assert!(!m.matches("GET", "/v2/x/manifests/latest"));
        assert!(Matcher::any().matches("PATCH", "/anything"));
    }

    #[test]
    fn rule_parse_forms() {
        let r = Rule::parse("method=GET,path=/blobs/,status=429,retry-after=2,times=3").unwrap();
        assert_eq!(
            r.matcher,
            Matcher::any().method("GET").path_contains("/blobs/")
        );
        assert_eq!(r.action, Action::too_many_requests(2));
        assert_eq!(r.trigger, Trigger::Times(3));
        let r = Rule::parse("glob=/v2/*/manifests/* flip-at=10 prob=0.25 skip=1").unwrap();
        assert_eq!(r.action, Action::FlipByte(10));
        assert_eq!(r.trigger, Trigger::Probability(0.25));
        assert_eq!(r.skip, 1);
        assert!(Rule::parse("method=GET").is_err());
        assert!(Rule::parse("reset-after=1,truncate-after=2").is_err());
        assert!(Rule::parse("stall-headers,bogus=1").is_err());
        assert!(Rule::parse("prob=2,stall-headers").is_err());
    }

    #[test]
    fn rate_parse_units() {
        assert_eq!(parse_rate("10M"), Ok(10_000_000));
        assert_eq!(parse_rate("80MB/s"), Ok(80_000_000));
        assert_eq!(parse_rate("4Mi"), Ok(4 * 1024 * 1024));
        assert_eq!(parse_rate("1.5K"), Ok(1500));
        assert_eq!(parse_rate("123"), Ok(123));
        assert!(parse_rate("10X").is_err());
        assert!(parse_rate("0").is_err());
    }

    #[test]
    fn rules_fire_in_order_with_counts_and_skip() {
        let faults = Faults::default()
            .with_rule(
                Rule::new(Matcher::any().path_contains("/m/"), Action::status(503))
                    .skip(1)
                    .times(2),
            )
            .with_rule(Rule::new(Matcher::any(), Action::status(500)).times(1));
        let mut st = RuleState::new(faults);
        let got: Vec<_> = (0..5)
            .map(|_| st.decide("GET", "/m/x").map(|a| a.name()))
            .collect();
        // 1st: skipped by rule 0, caught by rule 1; then two 503s; then nothing.
        assert_eq!(
            got,
            [
                Some("respond"),
                Some("respond"),
                Some("respond"),
                None,
                None
            ]
        );
    }

    #[test]
    fn bucket_paces_at_rate() {
        let mut b = Bucket::new();
        let t0 = Instant::now();
        let mut end = t0;
        for _ in 0..100 {
            end = b.reserve(10_000, 1_000_000, t0);
        }
        // 1 MB at 1 MB/s, minus the initial burst allowance (32 KiB).
        let secs = (end - t0).as_secs_f64();
        assert!((0.95..=1.0).contains(&secs), "{secs}");
    }

    #[tokio::test]
    async fn chunked_body_pieces_roundtrip() {
        let raw = b"5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\nNEXT".to_vec();
        let (tx, rx) = mpsc::channel(4);
        let permit = budget(&Arc::new(Semaphore::new(1024)), raw.len()).await;
        tx.send((Instant::now(), Bytes::from(raw.clone()), permit.unwrap()))
            .await
            .unwrap();
        drop(tx);
        let mut src = ClientIn {
            rx,
            pending: None,
            buf: BytesMut::new(),
        };
        let mut body = BodyReader::new(Framing::Chunked);
        let (mut all, mut payload) = (Vec::new(), Vec::new());
        while let Some(p) = body.next(&mut src).await.unwrap() {
            match p {
                Piece::Frame(b) => all.extend_from_slice(&b),
                Piece::Payload(b) => {
                    all.extend_from_slice(&b);
                    payload.extend_from_slice(&b);
                }
            }
        }
        assert_eq!(payload, b"helloabc");
        assert_eq!(all, &raw[..raw.len() - 4]);
        assert_eq!(&src.buf[..], b"NEXT");
    }
}
