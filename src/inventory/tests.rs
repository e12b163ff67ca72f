//! Tests of the inventory file and exclusion maps (taking one needs a registry: see
//! `tests/it/inventory.rs`).

use std::time::Duration;

use super::*;
use crate::bundle::testutil::fixture;
use crate::bundle::{WriteOptions, write_bundle};
use crate::report::NoReporter;

fn sample() -> Inventory {
    let mut inv = Inventory::new("site.lan:5000", "team", "2025-06-01T12:00:00Z");
    let (m, a, b) = (Digest::of(b"m"), Digest::of(b"a"), Digest::of(b"b"));
    inv.repositories.insert(
        "team/app".into(),
        RepositoryInventory {
            tags: BTreeMap::from([("1.0".to_owned(), m.clone())]),
        },
    );
    inv.repositories
        .insert("team/empty".into(), RepositoryInventory::default());
    inv.blobs.insert(a, 10);
    inv.blobs.insert(b, 20);
    inv.manifests.insert(m);
    inv
}

#[test]
fn json_round_trip_and_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.inventory.json");
    let inv = sample();
    inv.write(&path).unwrap();
    assert_eq!(Inventory::read(&path).unwrap(), inv);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("site.inventory.json")]);

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["format"], "airlift-inventory");
    assert_eq!(v["version"], 1);
    assert_eq!(v["registry"], "site.lan:5000");
    assert_eq!(v["prefix"], "team");
    assert_eq!(v["created"], "2025-06-01T12:00:00Z");
    assert_eq!(
        v["repositories"]["team/app"]["tags"]["1.0"],
        Digest::of(b"m").as_str()
    );
    assert_eq!(v["blobs"][Digest::of(b"a").as_str()], 10);
    assert_eq!(v["manifests"][0], Digest::of(b"m").as_str());
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys.len(),
        8,
        "unexpected top-level fields: {keys:?} (an inventory holds no credentials or extras)"
    );

    // Writing again replaces the file.
    let mut other = inv.clone();
    other.blobs.clear();
    other.write(&path).unwrap();
    assert_eq!(Inventory::read(&path).unwrap(), other);
}

#[test]
fn unknown_version_and_foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.json");
    let mut v = serde_json::to_value(sample()).unwrap();
    v["version"] = 2.into();
    // The version is checked before the fields a future version might change.
    v.as_object_mut().unwrap().remove("blobs");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = Inventory::read(&path).unwrap_err();
    assert!(
        matches!(err, InventoryError::UnsupportedVersion { found: 2, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("version 2") && msg.contains("inv.json"),
        "{msg}"
    );

    for (bytes, want) in [
        (&b"not json"[..], "not a valid airlift inventory"),
        (
            br#"{"format":"airlift-bundle","version":1}"#,
            "expected `airlift-inventory`",
        ),
        (br#"{"version":1}"#, "missing `format`"),
        (br#"{"format":"airlift-inventory"}"#, "`version`"),
        (
            br#"{"format":"airlift-inventory","version":1,"registry":"r"}"#,
            "missing field",
        ),
    ] {
        std::fs::write(&path, bytes).unwrap();
        let msg = Inventory::read(&path).unwrap_err().to_string();
        assert!(msg.contains(want) && msg.contains("inv.json"), "{msg}");
    }

    let missing = dir.path().join("absent.json");
    let msg = Inventory::read(&missing).unwrap_err().to_string();
    assert!(msg.contains("absent.json"), "{msg}");
}

#[test]
fn exclusions_merge() {
    let a = sample();
    let mut b = Inventory::new("other:5000", "", "2025-06-02T00:00:00Z");
    b.blobs.insert(Digest::of(b"b"), 20);
    b.blobs.insert(Digest::of(b"c"), 30);
    b.manifests.insert(Digest::of(b"n"));
    let merged = exclusions(&[a, b]);
    assert_eq!(
        merged,
        BTreeMap::from([
            (Digest::of(b"a"), 10),
            (Digest::of(b"b"), 20),
            (Digest::of(b"c"), 30),
        ])
    );
    // Manifests are never excluded.
    assert!(!merged.contains_key(&Digest::of(b"m")));
    assert!(exclusions(&[]).is_empty());
}

#[test]
fn exclusions_from_older_bundles() {
    let f = fixture(10_000);
    let out = f.dir.path().join("old.tar.zst");
    let paths = write_bundle(
        &f.staging,
        &f.input,
        &out,
        &WriteOptions::default(),
        &NoReporter,
    )
    .unwrap();
    let d = VolumeReader::open(&paths[0]).unwrap().descriptor().clone();
    let got = exclusions_from_bundles(&paths).unwrap();
    let want: BTreeMap<Digest, u64> = d.blobs.iter().map(|(k, e)| (k.clone(), e.size)).collect();
    assert_eq!(got, want);
    // Only blobs: manifests always travel.
    assert!(d.manifests.keys().all(|m| !got.contains_key(m)));

    // A differential old bundle contributes what it carried and what it expected at the site.
    let mut input = f.input.clone();
    input.excluded = BTreeMap::from([(f.shared.clone(), f.content[&f.shared].len() as u64)]);
    let diff = write_bundle(
        &f.staging,
        &input,
        &f.dir.path().join("diff.tar.zst"),
        &WriteOptions::default(),
        &NoReporter,
    )
    .unwrap();
    assert_eq!(exclusions_from_bundles(&diff).unwrap(), want);
    let both: Vec<PathBuf> = paths.iter().chain(&diff).cloned().collect();
    assert_eq!(exclusions_from_bundles(&both).unwrap(), want);

    assert!(matches!(
        exclusions_from_bundles(&[]),
        Err(BundleError::NoVolumes)
    ));
}

#[test]
fn prefix_matching() {
    assert!(under_prefix("team/app", "team"));
    assert!(under_prefix("team/a/b", "team/"));
    assert!(under_prefix("team", "team"));
    assert!(!under_prefix("teamwork/app", "team"));
    assert!(!under_prefix("other/team", "team"));
    assert!(under_prefix("anything", ""));
    assert!(under_prefix("team/a/b", "team/a"));
    assert!(!under_prefix("team/ab", "team/a"));
}

#[test]
fn timestamps() {
    let at = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
    assert_eq!(at(0), "1970-01-01T00:00:00Z");
    assert_eq!(at(784_111_777), "1994-11-06T08:49:37Z");
    assert_eq!(at(1_709_164_800), "2024-02-29T00:00:00Z");
    assert_eq!(at(1_748_779_200), "2025-06-01T12:00:00Z");
    assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
}
