//! A `registries.conf.d` drop-in (containers-registries.conf version 2) for podman, CRI-O,
//! buildah and skopeo: one `[[registry]]` per source registry, or per repository where the
//! mapping needs it, each with the mirror as its `[[registry.mirror]]`.
//!
//! containers/image replaces the matched `prefix` with the mirror's `location` and keeps the
//! rest of the reference, so this format expresses every mapping, `--flatten` included. TLS
//! trust is not part of this file: the mirror's CA goes to
//! `/etc/containers/certs.d/MIRROR/ca.crt` (see `docs/site-config.md`).

use serde::Serialize;

use super::{Generated, HostRule, SiteConfigError, SitePlan};

/// The file name written under the output directory.
pub const FILE_NAME: &str = "50-airlift-mirror.conf";

/// Options of the drop-in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainersOptions {
    /// Use the mirror only for pulls by digest (`mirror-by-digest-only = true`): pulls by tag
    /// still go to the source.
    pub mirror_by_digest_only: bool,
}

#[derive(Serialize)]
struct File {
    registry: Vec<Registry>,
}

#[derive(Serialize)]
struct Registry {
    prefix: String,
    location: String,
    #[serde(
        rename = "mirror-by-digest-only",
        skip_serializing_if = "std::ops::Not::not"
    )]
    mirror_by_digest_only: bool,
    mirror: Vec<Mirror>,
}

#[derive(Serialize)]
struct Mirror {
    location: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure: bool,
}

/// Renders the drop-in.
pub fn generate(plan: &SitePlan, opts: ContainersOptions) -> Result<Generated, SiteConfigError> {
    let insecure = plan.mirror_insecure();
    let entry = |prefix: String, mirror: String| Registry {
        location: prefix.clone(),
        prefix,
        mirror_by_digest_only: opts.mirror_by_digest_only,
        mirror: vec![Mirror {
            location: mirror,
            insecure,
        }],
    };
    let mut registries = Vec::new();
    for source in &plan.sources {
        match &source.rule {
            HostRule::Whole { path } => {
                registries.push(entry(source.registry.clone(), plan.mirror_location(path)));
            }
            HostRule::PerRepository(rules) => {
                for r in rules {
                    registries.push(entry(
                        format!("{}/{}", source.registry, r.source),
                        plan.mirror_location(&r.target),
                    ));
                }
            }
        }
    }
    let body = toml::to_string(&File {
        registry: registries,
    })
    .map_err(super::toml_error("registries.conf"))?;
    let text = format!(
        "# Written by `airlift mirror config --for containers`: pull through the mirror {}.\n# Drop into /etc/containers/registries.conf.d/ (or ~/.config/containers/registries.conf.d/).\n\n{body}",
        plan.mirror.registry
    );
    let mut out = Generated::one(FILE_NAME, text, false);
    if !opts.mirror_by_digest_only {
        out.warnings = super::retag_warnings(plan, "containers");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::plan;
    use super::super::testutil::{jobs, mirror};
    use super::*;
    use crate::mapping::MappingMode;

    fn render(
        j: &[crate::mapping::ImageJob],
        m: crate::registry::SiteConnection,
        o: ContainersOptions,
    ) -> toml::Table {
        let g = generate(&plan(j, m).unwrap(), o).unwrap();
        assert_eq!(g.files[0].path.to_str(), Some(FILE_NAME));
        toml::from_str(std::str::from_utf8(&g.files[0].contents).unwrap()).unwrap()
    }

    #[test]
    fn prefix_mapping_per_registry() {
        let j = jobs(
            &["registry.k8s.io/pause:3.10", "nginx"],
            "m.example.com/mirror",
            MappingMode::Strip,
        );
        let t = render(&j, mirror("m.example.com"), ContainersOptions::default());
        let regs = t["registry"].as_array().unwrap();
        assert_eq!(regs.len(), 2);
        assert_eq!(regs[0]["prefix"].as_str(), Some("docker.io"));
        assert_eq!(regs[0]["location"].as_str(), Some("docker.io"));
        assert_eq!(
            regs[0]["mirror"][0]["location"].as_str(),
            Some("m.example.com/mirror")
        );
        assert!(regs[0]["mirror"][0].get("insecure").is_none());
        assert!(regs[0].get("mirror-by-digest-only").is_none());
    }

    #[test]
    fn flatten_per_repository_insecure_digest_only() {
        let j = jobs(
            &["registry.k8s.io/coredns/coredns:v1", "127.0.0.1:5001/a/b:1"],
            "127.0.0.1:5002/t",
            MappingMode::Flatten,
        );
        let mut m = mirror("127.0.0.1:5002");
        m.plain_http = true;
        let t = render(
            &j,
            m,
            ContainersOptions {
                mirror_by_digest_only: true,
            },
        );
        let regs = t["registry"].as_array().unwrap();
        let pairs: Vec<(&str, &str)> = regs
            .iter()
            .map(|r| {
                (
                    r["prefix"].as_str().unwrap(),
                    r["mirror"][0]["location"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            [
                ("127.0.0.1:5001/a/b", "127.0.0.1:5002/t/b"),
                (
                    "registry.k8s.io/coredns/coredns",
                    "127.0.0.1:5002/t/coredns"
                )
            ]
        );
        assert_eq!(regs[0]["mirror"][0]["insecure"].as_bool(), Some(true));
        assert_eq!(regs[0]["mirror-by-digest-only"].as_bool(), Some(true));
    }
}
