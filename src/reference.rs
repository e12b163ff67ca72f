//! Image references, content digests and platforms: the newtypes every other module speaks.
//!
//! Reference parsing and Docker Hub normalisation are delegated to `oci-spec` (re-exported by
//! `oci-client`), which ports docker's `reference/normalize.go`: `nginx` becomes
//! `docker.io/library/nginx:latest` and `index.docker.io` becomes `docker.io`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An error parsing a reference, digest or platform string.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// The image reference does not follow the distribution grammar.
    #[error("invalid image reference `{input}`: {reason}")]
    Reference {
        /// The text that was parsed.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// The digest is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest `{0}`: expected `sha256:` followed by 64 lowercase hex digits")]
    Digest(String),
    /// The platform is not `os/arch[/variant]`.
    #[error("invalid platform `{0}`: expected os/arch[/variant], e.g. linux/arm64/v8")]
    Platform(String),
}

/// A content digest. Only `sha256` is accepted: it is what every registry in use computes, and
/// what our streaming verifier hashes with.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest as _;
        Self::from_sha256(&sha2::Sha256::digest(data))
    }

    /// Builds a digest from a finished sha256 hash.
    pub fn from_sha256(hash: &[u8]) -> Self {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    /// The full `sha256:<hex>` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, as used for file names in an OCI layout (`blobs/sha256/<hex>`).
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The algorithm part (always `sha256`).
    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    /// A short form for humans: the first 12 hex digits.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(Digest(s.to_owned()))
        } else {
            Err(ReferenceError::Digest(crate::escape::clip(s, 80)))
        }
    }
}

impl TryFrom<String> for Digest {
    type Error = ReferenceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

/// A fully normalised image reference: registry host, repository path, and a tag and/or a
/// digest (at least one). A reference with both is pinned: the digest is what is fetched, the
/// tag is what is written on the target.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Builds a reference from parts that are already valid (e.g. a mapping result).
    pub fn new(
        registry: impl Into<String>,
        repository: impl Into<String>,
        tag: Option<String>,
        digest: Option<Digest>,
    ) -> Self {
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        };
        ImageRef {
            registry: registry.into(),
            repository: repository.into(),
            tag,
            digest,
        }
    }

    /// The registry host, with port if any (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest when pinned, the tag otherwise.
    pub fn locator(&self) -> &str {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.as_str(),
            (None, Some(t)) => t,
            (None, None) => "latest",
        }
    }

    /// The same image with another tag/digest pair.
    pub fn with(&self, tag: Option<String>, digest: Option<Digest>) -> Self {
        Self::new(self.registry.clone(), self.repository.clone(), tag, digest)
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// Longest image reference accepted (bytes): a repository name is at most 255 characters,
/// a tag 128, a digest 71 and a host 255, so anything longer is not a reference.
pub const MAX_REFERENCE_LEN: usize = 1024;

impl FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The text is echoed in errors: bounded and escaped, never whole.
        let err = |reason: String| ReferenceError::Reference {
            input: crate::escape::clip(s, 256),
            reason,
        };
        if s.len() > MAX_REFERENCE_LEN {
            return Err(err(format!(
                "{} bytes is longer than the limit of {MAX_REFERENCE_LEN}",
                s.len()
            )));
        }
        // The reference grammar has no IPv6 literals (`[::1]:5000/app`); docker accepts
        // them. The bracketed host is set aside while the rest is parsed.
        let (parsed, ipv6_host) = match s.strip_prefix('[') {
            Some(rest) => {
                let (host, after) = rest
                    .split_once(']')
                    .ok_or_else(|| err("unclosed `[` in an IPv6 registry address".into()))?;
                host.parse::<std::net::Ipv6Addr>()
                    .map_err(|e| err(format!("`[{host}]` is not an IPv6 address: {e}")))?;
                let (port, path) = after
                    .split_once('/')
                    .ok_or_else(|| err("no repository after the registry".into()))?;
                let port = match port.strip_prefix(':') {
                    Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                        format!(":{p}")
                    }
                    None if port.is_empty() => String::new(),
                    _ => return Err(err(format!("bad port `{port}` after `[{host}]`"))),
                };
                (
                    format!("ipv6.invalid{port}/{path}"),
                    Some(format!("[{host}]{port}")),
                )
            }
            None => (s.to_owned(), None),
        };
        let r: oci_client::Reference = parsed.parse().map_err(|e| err(format!("{e}")))?;
        let digest = r
            .digest()
            .map(|d| d.parse::<Digest>().map_err(|e| err(e.to_string())))
            .transpose()?;
        let (mut registry, mut repository) = (r.registry().to_owned(), r.repository().to_owned());
        // docker also takes a first component with capitals as a host (`Reg/app`); oci-spec
        // folds it into a Docker Hub path instead.
        if registry == "docker.io"
            && !s.starts_with("docker.io/")
            && !s.starts_with("index.docker.io/")
            && let Some((first, rest)) = repository.split_once('/')
            && first.chars().any(|c| c.is_ascii_uppercase())
        {
            (registry, repository) = (first.to_owned(), rest.to_owned());
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err("repository name must be lowercase".into()));
        }
        if let Some(host) = ipv6_host {
            registry = host;
        }
        // HTTPS's default port names the same registry as no port (`host:443` is `host`), so
        // mapping, credentials and `--keep-host` paths agree with docker and containerd.
        if let Some(host) = registry.strip_suffix(":443") {
            registry = host.to_owned();
        }
        // oci-spec adds `latest` only when neither tag nor digest is given, as docker does.
        Ok(ImageRef::new(
            registry,
            repository,
            r.tag().map(str::to_owned),
            digest,
        ))
    }
}

impl TryFrom<String> for ImageRef {
    type Error = ReferenceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ImageRef> for String {
    fn from(r: ImageRef) -> String {
        r.to_string()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({self})")
    }
}

/// A platform selector, `os/architecture[/variant]`, as in `docker --platform`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// CPU architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// Variant (`v8`, `v7`), if any.
    pub variant: Option<String>,
}

impl Platform {
    /// Whether an index entry's platform is selected by this one. A selector without a
    /// variant matches every variant; `arm64` with no variant in the index matches `v8`, as
    /// containerd normalises it.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        match (&self.variant, variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            (Some(want), None) => architecture == "arm64" && want == "v8",
        }
    }
}

impl FromStr for Platform {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        match parts.as_slice() {
            [os, arch] if valid(os) && valid(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, var] if valid(os) && valid(arch) && valid(var) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(var.to_string()),
            }),
            _ => Err(ReferenceError::Platform(s.to_owned())),
        }
    }
}

impl TryFrom<String> for Platform {
    type Error = ReferenceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Platform> for String {
    fn from(p: Platform) -> String {
        p.to_string()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Platform({self})")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ipv6_literals_and_default_ports() {
        let r: super::ImageRef = "[::1]:5000/app:1".parse().unwrap();
        assert_eq!(r.registry(), "[::1]:5000");
        assert_eq!(r.repository(), "app");
        assert_eq!(r.tag(), Some("1"));
        let r: super::ImageRef = "[fe80::1]/team/app@sha256:0000000000000000000000000000000000000000000000000000000000000000".parse().unwrap();
        assert_eq!(r.registry(), "[fe80::1]");
        assert_eq!(r.repository(), "team/app");
        assert!("[::1:5000/app".parse::<super::ImageRef>().is_err());
        assert!("[nothost]:5000/app".parse::<super::ImageRef>().is_err());
        assert!("[::1]x/app".parse::<super::ImageRef>().is_err());
        let r: super::ImageRef = "reg.example:443/app:1".parse().unwrap();
        assert_eq!(r.registry(), "reg.example");
        assert_eq!(r.to_string(), "reg.example/app:1");
        let r: super::ImageRef = "reg.example:5000/app".parse().unwrap();
        assert_eq!(r.registry(), "reg.example:5000");
    }

    use super::*;

    #[test]
    fn docker_hub_normalisation() {
        let r: ImageRef = "nginx".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        let r: ImageRef = "index.docker.io/harness/chaos-ddcr:1.47.0".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/harness/chaos-ddcr:1.47.0");
        let r: ImageRef = "harness/chaos-ddcr:1.47.0".parse().unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "harness/chaos-ddcr");
        // docker takes a capitalised first component as a host.
        let r: ImageRef = "Reg/app".parse().unwrap();
        assert_eq!((r.registry(), r.repository()), ("Reg", "app"));
        let r: ImageRef = "localhost/foo".parse().unwrap();
        assert_eq!(r.registry(), "localhost");
        let r: ImageRef = "127.0.0.1:5001/a/b:v1".parse().unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5001", "a/b", Some("v1"))
        );
    }

    #[test]
    fn pinned_reference_keeps_tag_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r: ImageRef = format!("registry.k8s.io/pause:3.10@{d}").parse().unwrap();
        assert_eq!(r.tag(), Some("3.10"));
        assert_eq!(r.digest().unwrap().as_str(), d);
        assert_eq!(r.locator(), d);
        let r: ImageRef = format!("registry.k8s.io/pause@{d}").parse().unwrap();
        assert_eq!(r.tag(), None);
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in [
            "",
            "docker.io/UPPER/case",
            "Upper",
            "a b",
            "foo@sha256:abc",
            "foo:",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn digest_validation() {
        assert!(
            format!("sha256:{}", "0".repeat(64))
                .parse::<Digest>()
                .is_ok()
        );
        assert!(
            format!("sha256:{}", "A".repeat(64))
                .parse::<Digest>()
                .is_err()
        );
        assert!("md5:abc".parse::<Digest>().is_err());
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn platform_parse_and_match() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(p.matches("linux", "arm64", None));
        assert!(!p.matches("linux", "amd64", None));
        let p: Platform = "linux/arm".parse().unwrap();
        assert!(p.matches("linux", "arm", Some("v7")));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v1/x".parse::<Platform>().is_err());
    }
}
