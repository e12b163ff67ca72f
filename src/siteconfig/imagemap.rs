//! The image map: source → target for every listed image (and its digest when known), as
//! JSON and as a Kustomize `images:` list, for Helm values and manifests that must name the
//! mirror themselves. The one output that expresses every mapping for every runtime.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Generated, OutputFile, SiteConfigError};
use crate::mapping::ImageJob;
use crate::reference::Digest;

/// The JSON file's name under the output directory.
pub const JSON_FILE: &str = "image-map.json";
/// The Kustomize list's name under the output directory.
pub const KUSTOMIZE_FILE: &str = "kustomize-images.yaml";

/// One image in the JSON map.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MappedImage {
    /// The source reference as normalised (`docker.io/library/nginx:1.27`).
    pub source: String,
    /// Where it is on the mirror.
    pub target: String,
    /// Its manifest digest, when listed pinned or looked up on the mirror.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `source` by digest (`registry/repo@sha256:...`), when the digest is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_by_digest: Option<String>,
    /// `target` by digest, when the digest is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_by_digest: Option<String>,
}

/// The JSON document.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ImageMap {
    /// The mirror's registry.
    pub mirror: String,
    /// Every image, in list order.
    pub images: Vec<MappedImage>,
}

/// One Kustomize `images:` entry.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KustomizeImage {
    name: String,
    new_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_tag: Option<String>,
}

#[derive(Serialize)]
struct KustomizeImages {
    images: Vec<KustomizeImage>,
}

/// The short names Docker Hub images are usually written with (`nginx`, `user/app`).
fn docker_hub_aliases(registry: &str, repository: &str) -> Vec<String> {
    if registry != "docker.io" {
        return Vec::new();
    }
    match repository.strip_prefix("library/") {
        Some(short) => vec![short.to_owned(), repository.to_owned()],
        None => vec![repository.to_owned()],
    }
}

/// Renders the map. `digests[i]` is the digest of `jobs[i]` found on the mirror, if looked
/// up; a digest pinned in the list is used otherwise.
pub fn generate(
    mirror: &str,
    jobs: &[ImageJob],
    digests: &[Option<Digest>],
) -> Result<Generated, SiteConfigError> {
    let mut images = Vec::new();
    let mut kustomize: BTreeMap<String, KustomizeImage> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let digest = digests
            .get(i)
            .cloned()
            .flatten()
            .or_else(|| job.source.digest().cloned());
        images.push(MappedImage {
            source: job.source.to_string(),
            target: job.target.to_string(),
            source_by_digest: digest
                .as_ref()
                .map(|d| format!("{}@{}", job.source.name(), d.as_str())),
            target_by_digest: digest
                .as_ref()
                .map(|d| format!("{}@{}", job.target.name(), d.as_str())),
            digest: digest.map(|d| d.as_str().to_owned()),
        });
        let new_tag = match (job.source.tag(), job.target.tag()) {
            (Some(s), Some(t)) if s != t => Some(t.to_owned()),
            _ => None,
        };
        let mut names = vec![job.source.name()];
        names.extend(docker_hub_aliases(
            job.source.registry(),
            job.source.repository(),
        ));
        for name in names {
            match kustomize.get(&name) {
                Some(k) if k.new_name != job.target.name() || k.new_tag != new_tag => {
                    warnings.push(format!(
                        "{}: Kustomize maps `{name}` to one place only: `{}` is kept, `{}` is not in {KUSTOMIZE_FILE}",
                        job.origin,
                        k.new_name,
                        job.target
                    ));
                }
                Some(_) => {}
                None => {
                    kustomize.insert(
                        name.clone(),
                        KustomizeImage {
                            name,
                            new_name: job.target.name(),
                            new_tag: new_tag.clone(),
                        },
                    );
                }
            }
        }
    }
    let map = ImageMap {
        mirror: mirror.to_owned(),
        images,
    };
    let mut json = serde_json::to_string_pretty(&map).map_err(|e| SiteConfigError::Serialize {
        what: JSON_FILE,
        reason: e.to_string(),
    })?;
    json.push('\n');
    let yaml = serde_saphyr::to_string(&KustomizeImages {
        images: kustomize.into_values().collect(),
    })
    .map_err(super::yaml_error(KUSTOMIZE_FILE))?;
    Ok(Generated {
        files: vec![
            OutputFile {
                path: JSON_FILE.into(),
                contents: json.into_bytes(),
                secret: false,
            },
            OutputFile {
                path: KUSTOMIZE_FILE.into(),
                contents: yaml.into_bytes(),
                secret: false,
            },
        ],
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::jobs;
    use super::*;
    use crate::mapping::MappingMode;

    #[test]
    fn every_image_round_trips() {
        let d = format!("sha256:{}", "a".repeat(64));
        let list = ["registry.k8s.io/pause:3.10", "nginx:1.27", "quay.io/a/b:1"];
        let j = jobs(&list, "m.example.com/mirror", MappingMode::Flatten);
        let digests = vec![None, Some(d.parse().unwrap()), None];
        let g = generate("m.example.com", &j, &digests).unwrap();
        let map: ImageMap = serde_json::from_slice(&g.files[0].contents).unwrap();
        assert_eq!(map.images.len(), 3);
        for (image, job) in map.images.iter().zip(&j) {
            assert_eq!(image.source.parse::<crate::ImageRef>().unwrap(), job.source);
            assert_eq!(image.target.parse::<crate::ImageRef>().unwrap(), job.target);
        }
        assert_eq!(map.images[1].target, "m.example.com/mirror/nginx:1.27");
        assert_eq!(
            map.images[1].target_by_digest.as_deref(),
            Some(format!("m.example.com/mirror/nginx@{d}").as_str())
        );
        assert_eq!(
            map.images[1].source_by_digest.as_deref(),
            Some(format!("docker.io/library/nginx@{d}").as_str())
        );
        assert!(map.images[0].digest.is_none());

        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct K {
            images: Vec<BTreeMap<String, String>>,
        }
        let k: K = serde_saphyr::from_slice(&g.files[1].contents).unwrap();
        let names: Vec<(&str, &str)> = k
            .images
            .iter()
            .map(|i| (i["name"].as_str(), i["newName"].as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("docker.io/library/nginx", "m.example.com/mirror/nginx"),
                ("library/nginx", "m.example.com/mirror/nginx"),
                ("nginx", "m.example.com/mirror/nginx"),
                ("quay.io/a/b", "m.example.com/mirror/b"),
                ("registry.k8s.io/pause", "m.example.com/mirror/pause"),
            ]
        );
        assert!(g.warnings.is_empty());
    }

    #[test]
    fn conflicting_kustomize_names_warn() {
        let mut j = jobs(
            &["quay.io/a/b:1", "quay.io/a/b:2"],
            "m.example.com",
            MappingMode::Strip,
        );
        j[1].target = j[1].target.with(Some("two".into()), None);
        let g = generate("m.example.com", &j, &[]).unwrap();
        assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
        assert!(g.warnings[0].starts_with("list.txt:2: Kustomize maps `quay.io/a/b`"));
    }
}
