//! `bundle serve`: a read-only registry (the pull side of the OCI distribution API) answering
//! straight from a bundle's volumes, without unpacking them.
//!
//! Images are named by their source repository path with the mapping `bundle load` uses
//! ([`Naming`]); [`index`] builds what each repository holds, [`route`] parses request paths
//! and ranges, [`handler`] answers, [`tls`] loads the certificate. The HTTP protocol is hyper's
//! (HTTP/1.1 and HTTP/2, through hyper-util's connection builder); nothing is parsed by hand.
//!
//! Memory does not grow with blob sizes or clients: a blob body is read in chunks of
//! [`handler::CHUNK`] bytes with [`handler::CHUNKS_IN_FLIGHT`] queued per response, at most
//! [`MAX_STREAMS`] bodies are read at once (more wait), and at most [`MAX_CONNECTIONS`]
//! connections are open. Nothing is written to disk. The library prints nothing: each request
//! is handed to an [`AccessLog`].

mod handler;
mod index;
mod route;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::bundle::BundleStore;

pub use index::{Naming, Repositories, Skipped};
pub use tls::TlsFiles;

/// Blob bodies read from the volumes at once; further requests wait for one to finish.
pub const MAX_STREAMS: usize = 32;
/// Connections open at once; further ones wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send a request's headers, or to finish a TLS handshake.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long requests in progress get to finish once a shutdown is asked for.
const GRACE: Duration = Duration::from_secs(10);

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `--prefix` is not a repository path.
    #[error("invalid prefix `{prefix}`: {reason}")]
    Prefix {
        /// The prefix given.
        prefix: String,
        /// Why it was refused.
        reason: String,
    },
    /// The bundle names an image whose reference does not parse.
    #[error("the bundle names an invalid image `{source_ref}`: {reason}")]
    Image {
        /// The reference as recorded.
        source_ref: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The naming puts different images on one tag.
    #[error(
        "the naming puts different images on one tag (use another mapping flag):\n  {}",
        .0.join("\n  ")
    )]
    Conflicts(Vec<String>),
    /// The certificate or key cannot be used.
    #[error("TLS: {path}: {reason}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The listening socket cannot be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
}

impl ServeError {
    /// Whether the error is in what the user gave (flags, files) rather than the system.
    pub fn is_input(&self) -> bool {
        !matches!(self, ServeError::Listen { .. })
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How images are named.
    pub naming: Naming,
    /// The address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// HTTPS with this certificate; plain HTTP without.
    pub tls: Option<TlsFiles>,
}

/// One request served, for the access log.
#[derive(Debug, Clone)]
pub struct Access {
    /// The client's address.
    pub peer: SocketAddr,
    /// The method.
    pub method: String,
    /// The path and query, as sent (not escaped: escape before printing).
    pub target: String,
    /// The status code.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// From the request to the end of the response body.
    pub elapsed: Duration,
}

/// Where served requests are reported (the CLI prints them on stderr).
pub trait AccessLog: Send + Sync {
    /// Called once per request, when its response is finished or dropped.
    fn request(&self, access: &Access);
}

/// What a finished run served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeStats {
    /// Requests answered.
    pub requests: u64,
    /// Body bytes sent.
    pub bytes: u64,
}

/// A server bound to its address, ready to [`Server::run`].
pub struct Server {
    state: Arc<handler::State>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    volumes: usize,
}

impl Server {
    /// Names the images of `store`, loads the certificate and binds the address.
    pub async fn bind(store: BundleStore, opts: &ServeOptions) -> Result<Server, ServeError> {
        let repos = Repositories::build(&store, &opts.naming)?;
        let tls = match &opts.tls {
            Some(files) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(files)?)),
            None => None,
        };
        let listener =
            TcpListener::bind(opts.listen)
                .await
                .map_err(|source| ServeError::Listen {
                    addr: opts.listen,
                    source,
                })?;
        let volumes = (1..=store.descriptor().volume_count)
            .filter(|n| store.volume_path(*n).is_some())
            .count();
        Ok(Server {
            state: Arc::new(handler::State {
                store: Arc::new(store),
                repos,
                streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            }),
            listener,
            tls,
            volumes,
        })
    }

    /// The address listened on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// What is served, and which images are not.
    pub fn repositories(&self) -> &Repositories {
        &self.state.repos
    }

    /// Volumes given (and opened).
    pub fn volumes(&self) -> usize {
        self.volumes
    }

    /// Serves until `shutdown` completes, then stops accepting, lets the requests in progress
    /// finish (for up to 10 seconds) and returns what was served.
    pub async fn run(
        self,
        log: Arc<dyn AccessLog>,
        shutdown: impl Future<Output = ()>,
    ) -> ServeStats {
        let Server {
            state,
            listener,
            tls,
            ..
        } = self;
        let stats = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let builder = Arc::new(builder);
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = connections.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            };
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let service = {
                let (state, log, stats) = (state.clone(), log.clone(), stats.clone());
                service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (state, log, stats) = (state.clone(), log.clone(), stats.clone());
                    async move {
                        let started = Instant::now();
                        let (method, uri) = (req.method().clone(), req.uri().clone());
                        let mut response =
                            handler::respond(&state, &method, &uri, req.headers()).await;
                        let status = response.status().as_u16();
                        let target = uri
                            .path_and_query()
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_else(|| uri.to_string());
                        response.body_mut().on_done(Box::new(move |bytes| {
                            stats.0.fetch_add(1, Ordering::Relaxed);
                            stats.1.fetch_add(bytes, Ordering::Relaxed);
                            log.request(&Access {
                                peer,
                                method: method.to_string(),
                                target,
                                status,
                                bytes,
                                elapsed: started.elapsed(),
                            });
                        }));
                        Ok::<_, Infallible>(response)
                    }
                })
            };
            let (watcher, builder, tls) = (graceful.watcher(), builder.clone(), tls.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let result = match tls {
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(tls_stream)) => {
                                let conn =
                                    builder.serve_connection(TokioIo::new(tls_stream), service);
                                watcher.watch(conn.into_owned()).await
                            }
                            Ok(Err(e)) => {
                                tracing::info!("TLS handshake with {peer} failed: {e}");
                                Ok(())
                            }
                            Err(_) => {
                                tracing::info!("TLS handshake with {peer} timed out");
                                Ok(())
                            }
                        }
                    }
                };
                if let Err(e) = result {
                    tracing::debug!("connection from {peer} ended: {e}");
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "requests still in progress after {} s are cut",
                GRACE.as_secs()
            );
        }
        ServeStats {
            requests: stats.0.load(Ordering::Relaxed),
            bytes: stats.1.load(Ordering::Relaxed),
        }
    }
}
