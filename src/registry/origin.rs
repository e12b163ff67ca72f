//! Where credentials may go and which hops a request may take: `Authorization` only to the
//! scheme+host+port it was issued for, and no redirect or `Location` that downgrades to plain
//! HTTP, leaves http(s), or points from the network at this machine or at link-local
//! addresses (cloud metadata services live at 169.254.169.254).

use std::net::IpAddr;

use super::endpoint;

/// Whether `a` and `b` are the same origin (scheme, host and port, default ports filled in):
/// the test for sending a credential issued for `a` to `b`.
pub(super) fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.origin() == b.origin()
}

/// The IP address `url` names literally, if any.
fn ip_of(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Whether `ip` is link-local (169.254.0.0/16, fe80::/10, or an IPv4-mapped link-local).
fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
        }
    }
}

/// Checks a hop from `from` (the URL that answered) to `to` (its redirect target or upload
/// `Location`). `insecure` is the `--insecure-registry` list: only a host listed there may be
/// reached over plain HTTP from HTTPS. The error says why, for [`super::RegistryError`].
pub(super) fn check_hop(from: &url::Url, to: &url::Url, insecure: &[String]) -> Result<(), String> {
    let to_host = super::http::host_port(to);
    match to.scheme() {
        "https" => {}
        "http" if from.scheme() == "http" => {}
        "http" => {
            if !endpoint::is_listed_insecure(&to_host, insecure) {
                return Err(format!(
                    "refused to follow {to} from HTTPS to plain HTTP (pass --insecure-registry \
                     {to_host} to allow it)"
                ));
            }
        }
        other => {
            return Err(format!(
                "refused to follow {to}: scheme `{other}` is not http(s)"
            ));
        }
    }
    if let Some(ip) = ip_of(to)
        && is_link_local(ip)
    {
        return Err(format!("refused to follow {to}: a link-local address"));
    }
    let from_host = super::http::host_port(from);
    if endpoint::is_loopback(&to_host) && !endpoint::is_loopback(&from_host) {
        return Err(format!(
            "refused to follow {to}: {from_host} points at this machine"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin(
            &u("https://r.io/v2/"),
            &u("https://r.io:443/x")
        ));
        assert!(same_origin(&u("http://r.io/"), &u("http://r.io:80/")));
        assert!(!same_origin(&u("https://r.io/"), &u("http://r.io/")));
        assert!(!same_origin(&u("https://r.io/"), &u("https://r.io:5000/")));
        assert!(!same_origin(&u("https://r.io/"), &u("https://cdn.r.io/")));
        assert!(!same_origin(&u("http://r.io:80/"), &u("http://r.io:443/")));
    }

    #[test]
    fn hops() {
        let none: &[String] = &[];
        let ok = |from: &str, to: &str| check_hop(&u(from), &u(to), none);
        assert!(ok("https://r.io/v2/", "https://cdn.example/x").is_ok());
        assert!(ok("http://127.0.0.1:5000/", "http://127.0.0.1:6000/").is_ok());
        assert!(ok("https://127.0.0.1:5000/", "https://127.0.0.1:6000/").is_ok());
        let e = ok("https://r.io/", "http://r.io/x").unwrap_err();
        assert!(e.contains("--insecure-registry r.io"), "{e}");
        assert!(
            check_hop(
                &u("https://r.io/"),
                &u("http://r.io/x"),
                &["r.io".to_owned()]
            )
            .is_ok()
        );
        assert!(ok("https://r.io/", "ftp://r.io/x").is_err());
        assert!(ok("https://r.io/", "file:///etc/passwd").is_err());
        assert!(ok("https://r.io/", "https://169.254.169.254/latest").is_err());
        assert!(ok("https://r.io/", "https://[fe80::1]/x").is_err());
        assert!(ok("https://r.io/", "https://[::ffff:169.254.1.1]/x").is_err());
        assert!(ok("https://r.io/", "https://127.0.0.1/x").is_err());
        assert!(ok("https://r.io/", "https://localhost:8080/x").is_err());
        assert!(ok("https://r.io/", "https://[::1]/x").is_err());
        assert!(ok("https://10.0.0.1/", "https://10.0.0.2/x").is_ok());
    }
}
