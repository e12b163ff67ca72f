//! OpenShift `ImageDigestMirrorSet` (and, with `--tags`, `ImageTagMirrorSet`) resources: one
//! `source`/`mirrors` pair per source registry, or per repository where the mapping needs it.
//! The cluster turns them into CRI-O's `registries.conf` on every node.

use serde::Serialize;

use super::{Generated, HostRule, SiteConfigError, SitePlan};

/// The file name written under the output directory.
pub const FILE_NAME: &str = "mirror-sets.yaml";

/// Options of the resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenshiftOptions {
    /// `metadata.name` of the resources.
    pub name: String,
    /// Also write an `ImageTagMirrorSet`, so pulls by tag use the mirror too.
    pub tags: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Resource {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Serialize)]
struct Metadata {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(skip_serializing_if = "Option::is_none")]
    image_digest_mirrors: Option<Vec<Pair>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_tag_mirrors: Option<Vec<Pair>>,
}

#[derive(Serialize, Clone)]
struct Pair {
    source: String,
    mirrors: Vec<String>,
}

/// Renders the resources as one multi-document YAML file.
pub fn generate(plan: &SitePlan, opts: &OpenshiftOptions) -> Result<Generated, SiteConfigError> {
    let mut pairs = Vec::new();
    for source in &plan.sources {
        match &source.rule {
            HostRule::Whole { path } => pairs.push(Pair {
                source: source.registry.clone(),
                mirrors: vec![plan.mirror_location(path)],
            }),
            HostRule::PerRepository(rules) => pairs.extend(rules.iter().map(|r| Pair {
                source: format!("{}/{}", source.registry, r.source),
                mirrors: vec![plan.mirror_location(&r.target)],
            })),
        }
    }
    let resource = |kind, digest: Option<Vec<Pair>>, tag: Option<Vec<Pair>>| Resource {
        api_version: "config.openshift.io/v1",
        kind,
        metadata: Metadata {
            name: opts.name.clone(),
        },
        spec: Spec {
            image_digest_mirrors: digest,
            image_tag_mirrors: tag,
        },
    };
    let mut docs = vec![resource("ImageDigestMirrorSet", Some(pairs.clone()), None)];
    if opts.tags {
        docs.push(resource("ImageTagMirrorSet", None, Some(pairs)));
    }
    let mut text = String::new();
    for doc in &docs {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(doc).map_err(super::yaml_error("mirror set"))?);
    }
    let mut out = Generated::one(FILE_NAME, text, false);
    if plan.mirror_insecure() {
        out.warnings.push(format!(
            "the mirror {} is reached over plain HTTP or without certificate checks: also list it in the cluster's image.config.openshift.io/cluster spec.registrySources.insecureRegistries",
            plan.mirror.registry
        ));
    }
    if !plan.mirror.ca_files.is_empty() {
        out.warnings.push(format!(
            "the mirror {} uses a private CA: add it to the cluster's trust (a ConfigMap named in image.config.openshift.io/cluster spec.additionalTrustedCA, key `{}`)",
            plan.mirror.registry,
            plan.mirror.registry.replace(':', "..")
        ));
    }
    if opts.tags {
        out.warnings
            .extend(super::retag_warnings(plan, "ImageTagMirrorSet"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::plan;
    use super::super::testutil::{jobs, mirror};
    use super::*;
    use crate::mapping::MappingMode;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Doc {
        api_version: String,
        kind: String,
        metadata: DocMeta,
        spec: DocSpec,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DocMeta {
        name: String,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct DocSpec {
        image_digest_mirrors: Option<Vec<DocPair>>,
        image_tag_mirrors: Option<Vec<DocPair>>,
    }
    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct DocPair {
        source: String,
        mirrors: Vec<String>,
    }

    fn docs(g: &Generated) -> Vec<Doc> {
        serde_saphyr::from_multiple(std::str::from_utf8(&g.files[0].contents).unwrap()).unwrap()
    }

    fn pair(s: &str, m: &str) -> DocPair {
        DocPair {
            source: s.into(),
            mirrors: vec![m.into()],
        }
    }

    #[test]
    fn digest_and_tag_mirror_sets() {
        let j = jobs(
            &["registry.k8s.io/pause:3.10", "nginx"],
            "m.example.com/mirror",
            MappingMode::KeepHost,
        );
        let opts = OpenshiftOptions {
            name: "site".into(),
            tags: false,
        };
        let g = generate(&plan(&j, mirror("m.example.com")).unwrap(), &opts).unwrap();
        let d = docs(&g);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].api_version, "config.openshift.io/v1");
        assert_eq!(d[0].kind, "ImageDigestMirrorSet");
        assert_eq!(d[0].metadata.name, "site");
        assert_eq!(
            d[0].spec.image_digest_mirrors.as_deref().unwrap(),
            [
                pair("docker.io", "m.example.com/mirror/docker.io"),
                pair("registry.k8s.io", "m.example.com/mirror/registry.k8s.io")
            ]
        );
        assert!(g.warnings.is_empty());

        let opts = OpenshiftOptions { tags: true, ..opts };
        let j = jobs(
            &["registry.k8s.io/coredns/coredns:v1"],
            "m.example.com/t",
            MappingMode::Flatten,
        );
        let d = docs(&generate(&plan(&j, mirror("m.example.com")).unwrap(), &opts).unwrap());
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].kind, "ImageTagMirrorSet");
        assert!(d[1].spec.image_digest_mirrors.is_none());
        assert_eq!(
            d[1].spec.image_tag_mirrors.as_deref().unwrap(),
            [pair(
                "registry.k8s.io/coredns/coredns",
                "m.example.com/t/coredns"
            )]
        );
    }
}
