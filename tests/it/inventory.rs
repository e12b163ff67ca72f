//! Inventories against a real CNCF registry: content is pushed with plain reqwest (not the
//! client under test), then `inventory::take` must find every tag, manifest and blob.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use airlift::Digest;
use airlift::inventory::{self, Inventory};
use airlift::registry::{ClientOptions, RegistryClient, RetryPolicy};

use crate::support::TestRegistry;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn client() -> RegistryClient {
    RegistryClient::new(ClientOptions {
        retry: RetryPolicy {
            max_retries: 2,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        },
        ..Default::default()
    })
    .unwrap()
}

/// Pushes content straight through the distribution API.
struct Pusher {
    http: reqwest::Client,
    base: url::Url,
}

impl Pusher {
    fn new(reg: &TestRegistry) -> Pusher {
        Pusher {
            http: reqwest::Client::new(),
            base: url::Url::parse(&format!("http://{}/", reg.addr())).unwrap(),
        }
    }

    /// POST an upload, then PUT the bytes with `?digest=` (distribution 2.8 ignores a body on
    /// a single POST).
    async fn blob(&self, repo: &str, bytes: &[u8]) -> (Digest, u64) {
        let digest = Digest::of(bytes);
        let resp = self
            .http
            .post(
                self.base
                    .join(&format!("v2/{repo}/blobs/uploads/"))
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202, "POST upload to {repo}");
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let mut url = self.base.join(&location).unwrap();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let resp = self
            .http
            .put(url)
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "PUT blob to {repo}");
        (digest, bytes.len() as u64)
    }

    async fn manifest(&self, repo: &str, locator: &str, media_type: &str, bytes: &[u8]) {
        let resp = self
            .http
            .put(
                self.base
                    .join(&format!("v2/{repo}/manifests/{locator}"))
                    .unwrap(),
            )
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status, 201, "PUT manifest {repo}:{locator}: {body}");
    }

    /// Pushes an image of `config` and `layers` into `repo`; PUT under `tag` or, when `None`,
    /// by its digest. Returns the manifest digest and bytes, and the blobs.
    async fn image(
        &self,
        repo: &str,
        tag: Option<&str>,
        config: &[u8],
        layers: &[&[u8]],
    ) -> (Digest, Vec<u8>, Vec<(Digest, u64)>) {
        let (cd, cs) = self.blob(repo, config).await;
        let mut blobs = vec![(cd.clone(), cs)];
        let mut descs = Vec::new();
        for l in layers {
            let (d, s) = self.blob(repo, l).await;
            descs.push(serde_json::json!({"mediaType": OCI_LAYER, "digest": d, "size": s}));
            blobs.push((d, s));
        }
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
            "layers": descs,
        }))
        .unwrap();
        let digest = Digest::of(&bytes);
        self.manifest(repo, tag.unwrap_or(digest.as_str()), OCI_MANIFEST, &bytes)
            .await;
        (digest, bytes, blobs)
    }
}

fn bytes(tag: &str, n: usize) -> Vec<u8> {
    tag.bytes().cycle().take(n).collect()
}

/// What was pushed, to compare with the inventory.
#[derive(Default)]
struct Pushed {
    tags: BTreeMap<String, BTreeMap<String, Digest>>,
    blobs: BTreeMap<String, BTreeMap<Digest, u64>>,
    manifests: BTreeMap<String, BTreeSet<Digest>>,
    /// The bytes of the `team/app` manifest, to tag it again.
    raw_app: Vec<u8>,
}

impl Pushed {
    fn expect(&self, repos: &[&str]) -> (BTreeMap<Digest, u64>, BTreeSet<Digest>) {
        let mut blobs = BTreeMap::new();
        let mut manifests = BTreeSet::new();
        for r in repos {
            blobs.extend(self.blobs[*r].clone());
            manifests.extend(self.manifests[*r].iter().cloned());
        }
        (blobs, manifests)
    }
}

/// `team/app` (two tags on one image), `team/multi` (an index of two images, sharing a layer
/// with `team/app`), `teamwork/tool` and `other/thing`.
async fn populate(reg: &TestRegistry) -> Pushed {
    let p = Pusher::new(reg);
    let mut pushed = Pushed::default();
    let shared = bytes("shared layer", 3000);

    // team/app:1.0 and :latest, one image.
    let (app, raw, app_blobs) = p
        .image(
            "team/app",
            Some("1.0"),
            br#"{"architecture":"amd64","os":"linux"}"#,
            &[&bytes("app layer", 2000), &shared],
        )
        .await;
    p.manifest("team/app", "latest", OCI_MANIFEST, &raw).await;
    pushed.raw_app = raw;
    pushed.tags.insert(
        "team/app".into(),
        BTreeMap::from([("1.0".into(), app.clone()), ("latest".into(), app.clone())]),
    );
    pushed
        .blobs
        .insert("team/app".into(), app_blobs.into_iter().collect());
    pushed
        .manifests
        .insert("team/app".into(), BTreeSet::from([app]));

    // team/multi:2.0, an index whose children are PUT by digest.
    let (amd, amd_raw, amd_blobs) = p
        .image(
            "team/multi",
            None,
            br#"{"architecture":"amd64","os":"linux","x":1}"#,
            &[&shared, &bytes("amd layer", 1500)],
        )
        .await;
    let (arm, arm_raw, arm_blobs) = p
        .image(
            "team/multi",
            None,
            br#"{"architecture":"arm64","os":"linux"}"#,
            &[&bytes("arm layer", 1700)],
        )
        .await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_raw.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": arm, "size": arm_raw.len(),
             "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    }))
    .unwrap();
    let index_digest = Digest::of(&index);
    p.manifest("team/multi", "2.0", OCI_INDEX, &index).await;
    pushed.tags.insert(
        "team/multi".into(),
        BTreeMap::from([("2.0".into(), index_digest.clone())]),
    );
    pushed.blobs.insert(
        "team/multi".into(),
        amd_blobs.into_iter().chain(arm_blobs).collect(),
    );
    pushed.manifests.insert(
        "team/multi".into(),
        BTreeSet::from([index_digest, amd, arm]),
    );

    // Outside the `team` prefix: a look-alike and an unrelated one.
    for (repo, tag, seed) in [
        ("teamwork/tool", "3", "tool"),
        ("other/thing", "x", "thing"),
    ] {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
        let (d, _, blobs) = p
            .image(repo, Some(tag), config.as_bytes(), &[&bytes(seed, 900)])
            .await;
        pushed
            .tags
            .insert(repo.into(), BTreeMap::from([(tag.into(), d.clone())]));
        pushed
            .blobs
            .insert(repo.into(), blobs.into_iter().collect());
        pushed.manifests.insert(repo.into(), BTreeSet::from([d]));
    }
    pushed
}

fn tags_of(inv: &Inventory) -> BTreeMap<String, BTreeMap<String, Digest>> {
    inv.repositories
        .iter()
        .map(|(r, ri)| (r.clone(), ri.tags.clone()))
        .collect()
}

#[tokio::test]
async fn inventory_finds_every_tag_manifest_and_blob() {
    let reg = TestRegistry::start();
    let pushed = populate(&reg).await;
    let client = client();
    let registry = reg.addr();

    let inv = inventory::take(&client, &registry, "", 4).await.unwrap();
    assert_eq!(inv.format, "airlift-inventory");
    assert_eq!(inv.version, 1);
    assert_eq!(inv.registry, registry);
    assert_eq!(inv.prefix, "");
    assert!(
        inv.created.ends_with('Z') && inv.created.len() == 20,
        "{}",
        inv.created
    );
    assert_eq!(tags_of(&inv), pushed.tags);
    let all = ["team/app", "team/multi", "teamwork/tool", "other/thing"];
    let (blobs, manifests) = pushed.expect(&all);
    assert_eq!(inv.blobs, blobs);
    assert_eq!(inv.manifests, manifests);

    // Prefix `team`: `team/...` only, not `teamwork/...`.
    let team = inventory::take(&client, &registry, "team", 1)
        .await
        .unwrap();
    assert_eq!(team.prefix, "team");
    assert_eq!(
        team.repositories.keys().collect::<Vec<_>>(),
        ["team/app", "team/multi"]
    );
    let (blobs, manifests) = pushed.expect(&["team/app", "team/multi"]);
    assert_eq!(team.blobs, blobs);
    assert_eq!(team.manifests, manifests);

    // The file round-trips and feeds exclusions.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.json");
    team.write(&path).unwrap();
    let back = Inventory::read(&path).unwrap();
    assert_eq!(back, team);
    assert_eq!(inventory::exclusions(&[back]), blobs);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("password") && !text.contains("token"));

    // A prefix matching nothing gives an empty inventory.
    let none = inventory::take(&client, &registry, "nothing", 2)
        .await
        .unwrap();
    assert!(none.repositories.is_empty() && none.blobs.is_empty());
}

#[tokio::test]
async fn listings_follow_pagination() {
    let reg = TestRegistry::start();
    let pushed = populate(&reg).await;
    // One more repository (five in all) and more tags on one of them.
    let p = Pusher::new(&reg);
    p.image("zz/last", Some("1"), br#"{"z":1}"#, &[&bytes("z", 100)])
        .await;
    let raw = &pushed.raw_app;
    for t in ["a", "b", "c"] {
        p.manifest("team/app", t, OCI_MANIFEST, raw).await;
    }
    let client = client();
    let registry = reg.addr();

    let want = [
        "other/thing",
        "team/app",
        "team/multi",
        "teamwork/tool",
        "zz/last",
    ];
    assert_eq!(client.catalog(&registry).await.unwrap(), want);
    for n in [1, 2, 4, 5, 6] {
        assert_eq!(
            client.catalog_paged(&registry, n).await.unwrap(),
            want,
            "page size {n}"
        );
    }

    let repo = client.repo(&registry, "team/app");
    let tags = ["1.0", "a", "b", "c", "latest"];
    assert_eq!(repo.tags().await.unwrap(), tags);
    for n in [1, 2, 5] {
        assert_eq!(repo.tags_paged(n).await.unwrap(), tags, "page size {n}");
    }
    // A repository that does not exist has no tags.
    assert!(
        client
            .repo(&registry, "no/such")
            .tags()
            .await
            .unwrap()
            .is_empty()
    );

    // An inventory taken with tiny pages is the same as one taken with the default.
    let small = inventory::take_paged(&client, &registry, "team", 2, Some(2))
        .await
        .unwrap();
    let default = inventory::take(&client, &registry, "team", 2)
        .await
        .unwrap();
    assert_eq!(tags_of(&small), tags_of(&default));
    assert_eq!(small.blobs, default.blobs);
    assert_eq!(small.manifests, default.manifests);
    assert_eq!(small.repositories["team/app"].tags.len(), 5);
    let (blobs, _) = pushed.expect(&["team/app", "team/multi"]);
    assert_eq!(small.blobs, blobs);
}

/// distribution answers `400` when `?n=` exceeds its `catalog.maxentries`: the catalog is
/// paged with what the registry allows.
#[tokio::test]
async fn catalog_paging_adapts_to_maxentries() {
    let reg = TestRegistry::start_with("catalog:\n  maxentries: 3\n");
    let pushed = populate(&reg).await;
    let inv = inventory::take(&client(), &reg.addr(), "", 4)
        .await
        .unwrap();
    assert_eq!(tags_of(&inv), pushed.tags);
}
