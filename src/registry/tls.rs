//! TLS per registry host: extra CA certificates (`--ca-file`, the config file, docker-style
//! `certs.d/HOST[:PORT]/*.crt`), client certificates for mutual TLS (`client.cert` +
//! `client.key`, or any `NAME.cert` + `NAME.key` pair), and recognising certificate failures
//! in reqwest's error chain so they can be reported with what to do about them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{RegistryError, TlsOptions};

/// Overrides the `certs.d` base directories (`:`-separated), for tests and unusual setups.
pub const CERTS_DIRS_ENV: &str = "AIRLIFT_CERTS_DIRS";

/// Where docker and podman keep per-registry certificates.
pub const DEFAULT_CERTS_DIRS: &[&str] = &["/etc/docker/certs.d", "/etc/containers/certs.d"];

/// The `certs.d` base directories in force: the option, else [`CERTS_DIRS_ENV`], else
/// [`DEFAULT_CERTS_DIRS`].
pub(super) fn certs_dirs(opts: &TlsOptions) -> Vec<PathBuf> {
    if let Some(dirs) = &opts.certs_dirs {
        return dirs.clone();
    }
    if let Some(v) = std::env::var_os(CERTS_DIRS_ENV) {
        return std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    DEFAULT_CERTS_DIRS.iter().map(PathBuf::from).collect()
}

/// The TLS files that apply to one registry host beyond the shared ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct HostFiles {
    /// CA certificates (PEM) trusted for this host only.
    pub cas: Vec<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl HostFiles {
    /// Whether the host needs a client of its own.
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty() && self.identity.is_none()
    }
}

fn setup_error(registry: &str, reason: String) -> RegistryError {
    RegistryError::TlsSetup {
        registry: registry.to_owned(),
        reason,
    }
}

/// Collects the files for `registry` (`host[:port]`) from the config entry and every
/// `certs.d` directory named after it. Docker's rules: `*.crt` are CAs; `NAME.cert` needs
/// `NAME.key`. A config entry's client certificate wins over one found in `certs.d`.
pub(super) fn host_files(opts: &TlsOptions, registry: &str) -> Result<HostFiles, RegistryError> {
    let mut files = HostFiles::default();
    let entry = opts.hosts.get(registry);
    if let Some(e) = entry {
        files.cas.extend(e.ca_files.iter().cloned());
        match (&e.client_cert, &e.client_key) {
            (Some(c), Some(k)) => files.identity = Some((c.clone(), k.clone())),
            (None, None) => {}
            _ => {
                return Err(setup_error(
                    registry,
                    "the config gives only one of client_cert and client_key; give both".to_owned(),
                ));
            }
        }
    }
    for base in certs_dirs(opts) {
        if registry.is_empty() {
            break;
        }
        let dir = base.join(registry);
        let listing = match std::fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(setup_error(
                    registry,
                    format!("cannot read {}: {e}", dir.display()),
                ));
            }
        };
        let mut names: Vec<String> = listing
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in &names {
            if name.ends_with(".crt") {
                files.cas.push(dir.join(name));
            } else if let Some(stem) = name.strip_suffix(".cert") {
                let key = format!("{stem}.key");
                if !names.contains(&key) {
                    return Err(setup_error(
                        registry,
                        format!(
                            "{} has no matching key {key} next to it",
                            dir.join(name).display()
                        ),
                    ));
                }
                if files.identity.is_none() {
                    files.identity = Some((dir.join(name), dir.join(key)));
                }
            } else if let Some(stem) = name.strip_suffix(".key")
                && !names.contains(&format!("{stem}.cert"))
            {
                return Err(setup_error(
                    registry,
                    format!(
                        "{} has no matching certificate {stem}.cert next to it",
                        dir.join(name).display()
                    ),
                ));
            }
        }
    }
    Ok(files)
}

fn read(registry: &str, path: &Path, what: &str) -> Result<Vec<u8>, RegistryError> {
    std::fs::read(path).map_err(|e| {
        setup_error(
            registry,
            format!("cannot read {what} {}: {e}", path.display()),
        )
    })
}

/// Parses every CA file (PEM bundles allowed).
pub(super) fn load_cas(
    registry: &str,
    paths: &[PathBuf],
) -> Result<Vec<reqwest::Certificate>, RegistryError> {
    let mut out = Vec::new();
    for path in paths {
        let pem = read(registry, path, "CA file")?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            setup_error(
                registry,
                format!("{} is not a PEM certificate: {e}", path.display()),
            )
        })?;
        if certs.is_empty() {
            return Err(setup_error(
                registry,
                format!("{} holds no PEM certificate", path.display()),
            ));
        }
        out.extend(certs);
    }
    Ok(out)
}

/// Reads a client certificate and its key into one identity.
fn load_identity(
    registry: &str,
    cert: &Path,
    key: &Path,
) -> Result<reqwest::Identity, RegistryError> {
    let mut pem = read(registry, cert, "client certificate")?;
    pem.push(b'\n');
    pem.extend(read(registry, key, "client key")?);
    reqwest::Identity::from_pem(&pem).map_err(|e| {
        setup_error(
            registry,
            format!(
                "cannot use client certificate {} with key {}: {e}",
                cert.display(),
                key.display()
            ),
        )
    })
}

/// Shared builder settings of every client.
pub(super) fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("airlift/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(super::http::CONNECT_TIMEOUT)
        .tcp_keepalive(Duration::from_secs(30))
        // Redirects are followed by `http::Inner::send_once`, which decides per hop whether
        // it is allowed and whether credentials go along; no Referer leaks a URL either.
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
}

/// A client trusting the system roots plus `shared_cas` plus the host's CAs, presenting the
/// host's client certificate if any. `accept_invalid` skips certificate checks (insecure
/// registries) but still presents the client certificate. `http1_only` is for diagnosing a
/// failed connection: over HTTP/2 a TLS alert sent after the handshake (a TLS 1.3 server
/// refusing a missing client certificate) is lost in the connection pool's error, over
/// HTTP/1.1 it reaches the request's error.
pub(super) fn build_client(
    registry: &str,
    shared_cas: &[reqwest::Certificate],
    files: &HostFiles,
    accept_invalid: bool,
    http1_only: bool,
) -> Result<reqwest::Client, RegistryError> {
    let mut cas = shared_cas.to_vec();
    cas.extend(load_cas(registry, &files.cas)?);
    let mut b = builder().tls_danger_accept_invalid_certs(accept_invalid);
    if http1_only {
        b = b.http1_only();
    }
    if !cas.is_empty() {
        b = b.tls_certs_merge(cas);
    }
    if let Some((cert, key)) = &files.identity {
        b = b.identity(load_identity(registry, cert, key)?);
    }
    b.build()
        .map_err(|e| setup_error(registry, format!("cannot set up TLS: {e}")))
}

/// A certificate problem found in a failed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    /// The chain does not lead to a trusted CA.
    UnknownAuthority,
    /// The certificate is for other names; the text says which, when known.
    NameMismatch(String),
    /// Expired or not yet valid.
    Expired,
    /// The server wants a client certificate and got none.
    ClientCertRequired,
    /// The server refused the client certificate presented.
    ClientCertRejected,
    /// The server answered the TLS handshake in plain HTTP.
    PlainHttp,
    /// Any other certificate failure, described.
    Other(String),
}

/// Finds a certificate problem in `error`'s source chain. Errors that are not about
/// certificates (refused connections, a plain-HTTP server answering a TLS hello) give `None`.
pub(super) fn classify(error: &(dyn std::error::Error + 'static)) -> Option<TlsProblem> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return classify_rustls(r);
        }
        // `io::Error::source()` skips the error it wraps: look inside explicitly.
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return classify_rustls(r);
            }
            if let Some(p) = classify(inner) {
                return Some(p);
            }
        }
        cur = e.source();
    }
    None
}

fn classify_rustls(e: &rustls::Error) -> Option<TlsProblem> {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    Some(match e {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer | C::BadSignature | C::UnhandledCriticalExtension => {
                TlsProblem::UnknownAuthority
            }
            C::NotValidForName => TlsProblem::NameMismatch(String::new()),
            C::NotValidForNameContext { .. } => TlsProblem::NameMismatch(name_detail(c)),
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => TlsProblem::Expired,
            other => TlsProblem::Other(format!("{other:?}")),
        },
        // What comes back when the server speaks HTTP: its response is no TLS record.
        E::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => TlsProblem::PlainHttp,
        E::AlertReceived(A::CertificateRequired) => TlsProblem::ClientCertRequired,
        E::AlertReceived(A::BadCertificate | A::UnknownCA | A::CertificateUnknown) => {
            TlsProblem::ClientCertRejected
        }
        _ => return None,
    })
}

/// "; it is valid for a, b" from rustls's context, when present.
fn name_detail(c: &rustls::CertificateError) -> String {
    if let rustls::CertificateError::NotValidForNameContext { presented, .. } = c {
        if presented.is_empty() {
            return String::new();
        }
        // rustls shows names as `DnsName("x")` / `IpAddress(..)`: keep what is inside.
        let names: Vec<String> = presented
            .iter()
            .map(|p| match (p.find('('), p.rfind(')')) {
                (Some(a), Some(b)) if a < b => p[a + 1..b].trim_matches('"').to_owned(),
                _ => p.clone(),
            })
            .collect();
        return format!(" (it is valid for {})", names.join(", "));
    }
    String::new()
}

/// The message for `problem` met at `registry`: the cause, then what to do.
pub(super) fn message(registry: &str, problem: &TlsProblem) -> String {
    match problem {
        TlsProblem::UnknownAuthority => format!(
            "{registry} presented a certificate signed by an unknown authority: pass --ca-file \
             or put the CA in /etc/docker/certs.d/{registry}/ca.crt"
        ),
        TlsProblem::NameMismatch(detail) => format!(
            "{registry} presented a certificate that is not valid for the name {}{detail}: \
             use a name the certificate lists, or have the certificate reissued for this name",
            super::endpoint::host_part(registry)
        ),
        TlsProblem::Expired => format!(
            "{registry} presented an expired or not yet valid certificate: renew it, or check \
             this machine's clock"
        ),
        TlsProblem::ClientCertRequired => format!(
            "{registry} requires a client certificate (mutual TLS): put client.cert and \
             client.key in /etc/docker/certs.d/{registry}/, or set client_cert and client_key \
             for it in the airlift config"
        ),
        TlsProblem::ClientCertRejected => format!(
            "{registry} rejected the TLS handshake, most likely the client certificate: check \
             that it is signed by a CA the registry trusts and has not expired"
        ),
        TlsProblem::PlainHttp => format!(
            "{registry} speaks plain HTTP, not HTTPS: pass --insecure-registry {registry} if \
             plain HTTP is intended"
        ),
        TlsProblem::Other(what) => format!(
            "{registry} presented a certificate that cannot be verified ({what}): pass \
             --ca-file, or fix the certificate"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::HostTls;

    #[tokio::test]
    async fn a_plain_http_answer_to_tls_is_named() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut hello = [0u8; 512];
                let _ = conn.read(&mut hello);
                let _ = conn.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        let client = build_client("x", &[], &HostFiles::default(), false, true).unwrap();
        let err = client
            .get(format!("https://{addr}/v2/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(classify(&err), Some(TlsProblem::PlainHttp), "{err:?}");
        assert!(
            message("reg:5000", &TlsProblem::PlainHttp).contains(
                "reg:5000 speaks plain HTTP, not HTTPS: pass --insecure-registry reg:5000"
            )
        );
    }

    fn opts(dir: &Path) -> TlsOptions {
        TlsOptions {
            certs_dirs: Some(vec![dir.to_path_buf()]),
            ..TlsOptions::default()
        }
    }

    #[test]
    fn certs_d_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("reg.lan:5000");
        std::fs::create_dir_all(&host).unwrap();
        for f in ["ca.crt", "other.crt", "client.cert", "client.key", "README"] {
            std::fs::write(host.join(f), "x").unwrap();
        }
        let files = host_files(&opts(tmp.path()), "reg.lan:5000").unwrap();
        assert_eq!(files.cas, [host.join("ca.crt"), host.join("other.crt")]);
        assert_eq!(
            files.identity,
            Some((host.join("client.cert"), host.join("client.key")))
        );
        // Another port is another directory.
        assert!(
            host_files(&opts(tmp.path()), "reg.lan:5001")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unpaired_client_files_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("reg");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("me.cert"), "x").unwrap();
        let err = host_files(&opts(tmp.path()), "reg").unwrap_err();
        assert!(err.to_string().contains("me.key"), "{err}");
        std::fs::remove_file(host.join("me.cert")).unwrap();
        std::fs::write(host.join("me.key"), "x").unwrap();
        let err = host_files(&opts(tmp.path()), "reg").unwrap_err();
        assert!(err.to_string().contains("me.cert"), "{err}");
    }

    #[test]
    fn config_entry_comes_first() {
        let tmp = tempfile::tempdir().unwrap();
        let mut o = opts(tmp.path());
        o.hosts.insert(
            "reg".to_owned(),
            HostTls {
                ca_files: vec!["/x/ca.pem".into()],
                client_cert: Some("/x/c.pem".into()),
                client_key: Some("/x/k.pem".into()),
            },
        );
        let files = host_files(&o, "reg").unwrap();
        assert_eq!(files.cas, [PathBuf::from("/x/ca.pem")]);
        assert_eq!(files.identity, Some(("/x/c.pem".into(), "/x/k.pem".into())));
        o.hosts.get_mut("reg").unwrap().client_key = None;
        assert!(host_files(&o, "reg").is_err());
    }

    #[test]
    fn messages_carry_a_hint() {
        let m = message("127.0.0.1:5000", &TlsProblem::UnknownAuthority);
        assert_eq!(
            m,
            "127.0.0.1:5000 presented a certificate signed by an unknown authority: pass \
             --ca-file or put the CA in /etc/docker/certs.d/127.0.0.1:5000/ca.crt"
        );
        let m = message(
            "reg:5000",
            &TlsProblem::NameMismatch(" (it is valid for x)".into()),
        );
        assert!(
            m.contains("not valid for the name reg (it is valid for x)"),
            "{m}"
        );
    }

    #[test]
    fn rustls_errors_are_classified() {
        use rustls::{AlertDescription, CertificateError, Error};
        let io = std::io::Error::other(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        assert_eq!(classify(&io), Some(TlsProblem::UnknownAuthority));
        let io = std::io::Error::other(Error::AlertReceived(AlertDescription::CertificateRequired));
        assert_eq!(classify(&io), Some(TlsProblem::ClientCertRequired));
        let io = std::io::Error::other(Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert_eq!(classify(&io), Some(TlsProblem::PlainHttp));
    }
}
