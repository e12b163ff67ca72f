//! What travels with an image besides its own manifests and blobs: the referrers policy
//! (`--referrers`, `--referrer-type`, and `referrers:` in YAML lists). Shared by the lists,
//! the mapping and the engine, so it lives below all three.

/// Which referrers to carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReferrerPolicy {
    /// What kinds.
    pub mode: ReferrerMode,
    /// When not empty: only referrers of these artifact types.
    pub artifact_types: Vec<String>,
}

/// `--referrers none|signatures|all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReferrerMode {
    /// Copy images only.
    None,
    /// cosign and notation signatures and attestations.
    Signatures,
    /// Everything that refers to an image (SBOMs, provenance, scans too).
    #[default]
    All,
}

impl std::str::FromStr for ReferrerMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(ReferrerMode::None),
            "signatures" => Ok(ReferrerMode::Signatures),
            "all" => Ok(ReferrerMode::All),
            other => Err(format!(
                "`{other}` is not a referrers policy: use none, signatures or all"
            )),
        }
    }
}

/// Artifact types of signatures and attestations (cosign's bundles and legacy layers,
/// notation, in-toto).
const SIGNATURE_TYPES: &[&str] = &[
    "application/vnd.cncf.notary.signature",
    "application/vnd.dev.sigstore.bundle",
    "application/vnd.dev.cosign.artifact.sig",
    "application/vnd.dev.cosign.simplesigning",
    "application/vnd.dsse.envelope",
    "application/vnd.in-toto",
];

impl ReferrerPolicy {
    /// Whether any referrer is wanted.
    pub fn enabled(&self) -> bool {
        self.mode != ReferrerMode::None
    }

    /// Whether a referrer of `artifact_type` (found under cosign tag `tag`, if so) is carried.
    pub fn wants(&self, artifact_type: Option<&str>, tag: Option<&str>) -> bool {
        let ty = artifact_type.unwrap_or_default();
        if !self.artifact_types.is_empty() && !self.artifact_types.iter().any(|t| t == ty) {
            return false;
        }
        match self.mode {
            ReferrerMode::None => false,
            ReferrerMode::All => true,
            ReferrerMode::Signatures => {
                tag.is_some_and(|t| t.ends_with(".sig") || t.ends_with(".att"))
                    || SIGNATURE_TYPES.iter().any(|s| ty.starts_with(s))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let all = ReferrerPolicy::default();
        let sigs = ReferrerPolicy {
            mode: ReferrerMode::Signatures,
            artifact_types: vec![],
        };
        let spdx_only = ReferrerPolicy {
            mode: ReferrerMode::All,
            artifact_types: vec!["application/spdx+json".into()],
        };
        let notary = Some("application/vnd.cncf.notary.signature");
        let bundle = Some("application/vnd.dev.sigstore.bundle.v0.3+json");
        let spdx = Some("application/spdx+json");
        assert!(all.wants(spdx, None) && all.wants(notary, None));
        assert!(sigs.wants(notary, None) && sigs.wants(bundle, None));
        assert!(!sigs.wants(spdx, None));
        assert!(sigs.wants(None, Some("sha256-ab.sig")) && sigs.wants(None, Some("sha256-ab.att")));
        assert!(!sigs.wants(None, Some("sha256-ab.sbom")));
        assert!(spdx_only.wants(spdx, None) && !spdx_only.wants(notary, None));
        assert!(
            !ReferrerPolicy {
                mode: ReferrerMode::None,
                artifact_types: vec![]
            }
            .enabled()
        );
        assert!("bogus".parse::<ReferrerMode>().is_err());
    }
}
