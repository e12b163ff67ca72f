//! Tests of writing: round trips, volume limits, splitting, resume, and skopeo interop.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::bundle::testutil::{CREATED, fixture};
use crate::bundle::{EntryKind, PartAssembler, VolumeReader, verify};
use crate::report::NoReporter;

/// Reads a volume completely: descriptor, and content of every entry by name.
fn read_all(path: &Path) -> (Descriptor, BTreeMap<String, (EntryKind, Vec<u8>)>) {
    let mut reader = VolumeReader::open(path).unwrap();
    let descriptor = reader.descriptor().clone();
    let mut entries = BTreeMap::new();
    while let Some(mut e) = reader.next_entry().unwrap() {
        let mut data = Vec::new();
        e.copy_to(&mut data).unwrap();
        entries.insert(e.name().to_owned(), (e.kind().clone(), data));
    }
    reader.finish().unwrap();
    (descriptor, entries)
}

fn index_refs(index: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(index).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap();
            assert_eq!(
                m["annotations"]["io.containerd.image.name"].as_str(),
                Some(name)
            );
            name.to_owned()
        })
        .collect()
}

#[test]
fn round_trip_single_volume() {
    let f = fixture(60_000);
    let paths = f.write("release.tar.zst", None);
    assert_eq!(paths, vec![f.dir.path().join("release.tar.zst")]);
    let (d, entries) = read_all(&paths[0]);

    assert_eq!((d.format_version, d.volume, d.volume_count), (2, 1, 1));
    assert_eq!(d.created, CREATED);
    assert_eq!(d.tool_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(d.lists, vec!["images.txt".to_string()]);
    assert_eq!(d.bundle_id.len(), 32);
    for (want, got) in f.input.images.iter().zip(&d.images) {
        assert_eq!(got.source, want.source);
        assert_eq!(got.tag, want.tag);
        assert_eq!(got.digest, want.digest);
        assert_eq!(got.manifests, want.manifests);
        assert_eq!(got.platforms, want.platforms);
        let mut distinct = want.blobs.clone();
        distinct.dedup();
        assert_eq!(got.blobs, distinct);
        let size: u64 = got
            .blobs
            .iter()
            .chain(&got.manifests)
            .map(|b| f.content[b].len() as u64)
            .sum();
        assert_eq!(got.size, size);
    }
    assert_eq!(
        d.images[1].media_type,
        "application/vnd.oci.image.index.v1+json"
    );

    // Every staged blob and manifest, stored once, byte-identical; the shared one included.
    let blobs: Vec<_> = entries.keys().filter(|k| k.starts_with("blobs/")).collect();
    assert_eq!(blobs.len(), f.content.len());
    for (digest, data) in &f.content {
        let (kind, got) = &entries[&format!("blobs/sha256/{}", digest.hex())];
        assert_eq!(got, data, "{digest}");
        let manifest = d.manifests.contains_key(digest);
        assert_eq!(matches!(kind, EntryKind::Manifest { .. }), manifest);
    }
    assert!(d.images[0].blobs.contains(&f.shared) && d.images[1].blobs.contains(&f.shared));
    assert_eq!(entries["oci-layout"].1, OCI_LAYOUT);
    let refs = index_refs(&entries["index.json"].1);
    let sources: Vec<_> = f.input.images.iter().map(|i| i.source.clone()).collect();
    assert_eq!(refs, sources);

    // The descriptor as written parses back to the same value.
    let reader = VolumeReader::open(&paths[0]).unwrap();
    assert_eq!(
        &Descriptor::parse(&reader.descriptor().to_bytes(), &paths[0]).unwrap(),
        reader.descriptor()
    );
}

#[test]
fn entry_order_and_headers_are_fixed() {
    let f = fixture(10_000);
    let paths = f.write("b.tar.zst", None);
    let raw = zstd::decode_all(std::fs::File::open(&paths[0]).unwrap()).unwrap();
    let mut archive = tar::Archive::new(raw.as_slice());
    let mut names = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(h.entry_type(), tar::EntryType::Regular);
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!(
            (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
            (0, 0, 0)
        );
        assert!(h.username_bytes().unwrap_or_default().is_empty());
        names.push(String::from_utf8(e.path_bytes().to_vec()).unwrap());
    }
    assert_eq!(
        names[..3],
        ["airlift-bundle.json", "oci-layout", "index.json"]
    );
    let d = VolumeReader::open(&paths[0]).unwrap().descriptor().clone();
    // Manifests before any blob.
    let first_blob = names
        .iter()
        .position(|n| {
            n.strip_prefix("blobs/sha256/")
                .is_some_and(|h| d.blobs.keys().any(|b| b.hex() == h))
        })
        .unwrap();
    assert_eq!(first_blob, 3 + d.manifests.len());

    // Same input, same bytes.
    let again = f.write("c.tar.zst", None);
    assert_eq!(
        std::fs::read(&paths[0]).unwrap(),
        std::fs::read(&again[0]).unwrap()
    );
}

#[test]
fn multi_volume_split_and_reassembly() {
    let f = fixture(300_000);
    let limit = 128 << 10;
    let paths = f.write("release.tar.zst", Some(limit));
    assert!(paths.len() >= 4, "{paths:?}");
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            format!("release.{:03}.tar.zst", i + 1)
        );
        let size = std::fs::metadata(p).unwrap().len();
        assert!(size <= limit, "{} is {size} bytes", p.display());
    }
    let assembler = PartAssembler::open(&f.dir.path().join("state")).unwrap();
    let mut bundle_id = None;
    let mut found = BTreeMap::new();
    for (i, p) in paths.iter().enumerate() {
        let (d, entries) = read_all(p);
        assert_eq!(
            (d.volume as usize, d.volume_count as usize),
            (i + 1, paths.len())
        );
        assert_eq!(bundle_id.get_or_insert(d.bundle_id.clone()), &d.bundle_id);
        assert_eq!(entries["oci-layout"].1, OCI_LAYOUT);
        // Every manifest in every volume.
        for m in d.manifests.keys() {
            assert!(entries.contains_key(&format!("blobs/sha256/{}", m.hex())));
        }
        // The index lists exactly the images complete in this volume.
        let complete: Vec<_> = d
            .images_complete_in(d.volume)
            .iter()
            .map(|i| i.source.clone())
            .collect();
        assert_eq!(index_refs(&entries["index.json"].1), complete);
        for (kind, data) in entries.values() {
            match kind {
                EntryKind::Blob { digest } => {
                    found.insert(digest.clone(), data.clone());
                }
                EntryKind::BlobPart { digest, part } => {
                    assembler
                        .store_part(digest, &d.blobs[digest], *part, &mut data.as_slice())
                        .unwrap();
                }
                _ => {}
            }
        }
    }
    let d = VolumeReader::open(&paths[0]).unwrap().descriptor().clone();
    let big = &d.blobs[&f.big];
    assert!(big.is_split());
    assert!(big.volumes.len() >= 3, "{big:?}");
    assert!(big.volumes.iter().all(|l| l.digest.is_some()));
    let mut whole = Vec::new();
    std::io::copy(&mut assembler.assemble(&f.big, big).unwrap(), &mut whole).unwrap();
    assert_eq!(whole, f.content[&f.big]);
    for (digest, entry) in d.blobs.iter().filter(|(_, e)| !e.is_split()) {
        assert_eq!(found[digest], f.content[digest], "{digest} {entry:?}");
    }
    // Only gamma has the split blob; the small images are complete in some volume.
    let listed: Vec<_> = (1..=d.volume_count)
        .flat_map(|v| d.images_complete_in(v))
        .map(|i| i.source.clone())
        .collect();
    assert!(listed.contains(&"docker.io/library/alpha:1.0".to_string()));
    assert!(!listed.iter().any(|s| s.contains("gamma")));

    let report = verify(&paths).unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert!(report.images.iter().all(|i| i.complete));
}

#[test]
fn volumes_never_exceed_the_limit() {
    let f = fixture(700_000);
    for limit in [96 << 10, 200_000, (1 << 20) + 7] {
        let name = format!("l{limit}.tar.zst");
        let paths = f.write(&name, Some(limit));
        for p in &paths {
            let size = std::fs::metadata(p).unwrap().len();
            assert!(size <= limit, "{}: {size} > {limit}", p.display());
        }
        // Not wasteful either: all but the last volume are mostly full.
        for p in &paths[..paths.len() - 1] {
            let size = std::fs::metadata(p).unwrap().len();
            assert!(size > limit / 2, "{}: only {size} of {limit}", p.display());
        }
    }
    let opts = WriteOptions {
        max_volume_size: Some(8 << 10),
        ..WriteOptions::default()
    };
    let err = write_bundle(
        &f.staging,
        &f.input,
        &f.dir.path().join("x"),
        &opts,
        &NoReporter,
    )
    .unwrap_err();
    assert!(matches!(err, BundleError::VolumeTooSmall { .. }), "{err}");
}

#[test]
fn resume_keeps_finished_volumes() {
    let f = fixture(200_000);
    let limit = Some(128 << 10);
    let paths = f.write("r.tar.zst", limit);
    assert!(paths.len() >= 3);
    let stamp = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec())
    };
    let before: Vec<_> = paths.iter().map(|p| stamp(p)).collect();
    std::fs::remove_file(&paths[1]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = f.write("r.tar.zst", limit);
    assert_eq!(again, paths);
    for (i, p) in paths.iter().enumerate() {
        if i == 1 {
            assert!(p.exists());
        } else {
            assert_eq!(stamp(p), before[i], "volume {} was rewritten", i + 1);
        }
    }
    assert!(verify(&paths).unwrap().is_ok());

    // The same content at another time is the same bundle: it keeps its creation time and
    // nothing is rewritten.
    let mut later = f.input.clone();
    later.created = "2030-01-01T00:00:00Z".into();
    let opts = WriteOptions {
        max_volume_size: limit,
        ..WriteOptions::default()
    };
    let out = f.dir.path().join("r.tar.zst");
    write_bundle(&f.staging, &later, &out, &opts, &NoReporter).unwrap();
    assert_eq!(stamp(&paths[0]), before[0]);
    assert_eq!(
        VolumeReader::open(&paths[0]).unwrap().descriptor().created,
        f.input.created
    );

    // Other content is another bundle: everything is rewritten.
    let mut other = f.input.clone();
    other.lists = vec!["another-list.txt".into()];
    let opts = WriteOptions {
        max_volume_size: limit,
        ..WriteOptions::default()
    };
    write_bundle(
        &f.staging,
        &other,
        &f.dir.path().join("r.tar.zst"),
        &opts,
        &NoReporter,
    )
    .unwrap();
    assert_ne!(stamp(&paths[0]), before[0]);
}

#[test]
fn missing_staged_content_is_named() {
    let f = fixture(10_000);
    std::fs::remove_file(f.staging.blob_path(&f.shared)).unwrap();
    let err = write_bundle(
        &f.staging,
        &f.input,
        &f.dir.path().join("x.tar.zst"),
        &WriteOptions::default(),
        &NoReporter,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(f.shared.as_str()) && msg.contains("alpha"),
        "{msg}"
    );
    assert!(!f.dir.path().join("x.tar.zst").exists());
}

#[test]
fn damaged_staging_does_not_reach_a_volume() {
    let f = fixture(10_000);
    let path = f.staging.blob_path(&f.shared);
    let mut data = std::fs::read(&path).unwrap();
    data[100] ^= 1;
    std::fs::write(&path, data).unwrap();
    let out = f.dir.path().join("x.tar.zst");
    let err = write_bundle(
        &f.staging,
        &f.input,
        &out,
        &WriteOptions::default(),
        &NoReporter,
    )
    .unwrap_err();
    assert!(err.to_string().contains(f.shared.as_str()), "{err}");
    assert!(!out.exists());
    // The `.partial` left behind ends before the blob; with the staged file repaired, the
    // same command resumes from it and the bundle verifies.
    let mut data = std::fs::read(&path).unwrap();
    data[100] ^= 1;
    std::fs::write(&path, data).unwrap();
    let paths = f.write("x.tar.zst", None);
    assert!(verify(&paths).unwrap().is_ok());
    assert!(!f.dir.path().join("x.tar.zst.partial").exists());
}

#[test]
fn naming() {
    let p = |s: &str, n| volume_paths(Path::new(s), n);
    assert_eq!(
        p("/o/release.tar.zst", 1),
        vec![PathBuf::from("/o/release.tar.zst")]
    );
    assert_eq!(
        p("/o/release.tar.zst", 2),
        vec![
            PathBuf::from("/o/release.001.tar.zst"),
            PathBuf::from("/o/release.002.tar.zst")
        ]
    );
    assert_eq!(p("out.bundle", 2)[1], PathBuf::from("out.bundle.002"));
}

/// skopeo must read an extracted volume as an OCI layout, by the full source reference.
#[test]
fn skopeo_reads_an_extracted_volume() {
    let f = fixture(20_000);
    let paths = f.write("s.tar.zst", None);
    let dir = f.dir.path().join("layout");
    VolumeReader::open(&paths[0])
        .unwrap()
        .extract_to(&dir)
        .unwrap();
    let skopeo = |args: &[&str]| {
        let out = std::process::Command::new("/usr/bin/skopeo")
            .args(args)
            .output()
            .expect("skopeo must be installed at /usr/bin/skopeo");
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let layout = dir.to_str().unwrap();
    let alpha = &f.input.images[0];
    let out = skopeo(&["inspect", &format!("oci:{layout}:{}", alpha.source)]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["Digest"].as_str(), Some(alpha.digest.as_str()));
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);

    // The multi-platform image: the raw index is ours, byte for byte.
    let beta = &f.input.images[1];
    let raw = skopeo(&["inspect", "--raw", &format!("oci:{layout}:{}", beta.source)]);
    assert_eq!(raw, f.content[&beta.digest]);

    // And its content can be copied out.
    let copy = f.dir.path().join("copy");
    skopeo(&[
        "copy",
        &format!("oci:{layout}:{}", alpha.source),
        &format!("dir:{}", copy.display()),
    ]);
    assert!(copy.join(f.shared.hex()).exists());
}

/// A differential bundle: excluded blobs are described but carried by no volume, need not be
/// staged, keep their images out of `index.json`, and verify as "expected at the site".
#[test]
fn excluded_blobs_make_a_differential_bundle() {
    let mut f = fixture(10_000);
    let shared_size = f.content[&f.shared].len() as u64;
    // The site holds the layer shared by alpha and beta, and more that no image needs.
    let unrelated = Digest::of(b"unrelated");
    f.input.excluded = BTreeMap::from([(f.shared.clone(), shared_size), (unrelated.clone(), 5)]);
    // Excluded content need not be staged.
    std::fs::remove_file(f.staging.blob_path(&f.shared)).unwrap();
    let paths = f.write("diff.tar.zst", None);
    let (d, entries) = read_all(&paths[0]);

    assert_eq!(
        d.excluded_blobs,
        BTreeMap::from([(f.shared.clone(), shared_size)])
    );
    assert!(d.is_differential());
    assert!(!d.blobs.contains_key(&f.shared));
    assert!(!entries.contains_key(&format!("blobs/sha256/{}", f.shared.hex())));
    assert!(!entries.keys().any(|k| k.contains(unrelated.hex())));
    // Images still list every blob they need, and their full size.
    let alpha = &d.images[0];
    assert!(alpha.blobs.contains(&f.shared));
    let size: u64 = alpha
        .blobs
        .iter()
        .chain(&alpha.manifests)
        .map(|b| f.content[b].len() as u64)
        .sum();
    assert_eq!(alpha.size, size);
    assert_eq!(d.site_blobs_of(alpha), vec![&f.shared]);
    // Only gamma is complete in the layout alone.
    assert_eq!(
        index_refs(&entries["index.json"].1),
        vec![f.input.images[2].source.clone()]
    );
    let complete: Vec<_> = d
        .images_complete_in(1)
        .into_iter()
        .map(|i| i.source.clone())
        .collect();
    assert_eq!(complete, vec![f.input.images[2].source.clone()]);

    // Verify: no problem; the site blobs are reported.
    let report = verify(&paths).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.site_blobs, vec![f.shared.clone()]);
    let site: Vec<_> = report
        .images
        .iter()
        .map(|i| (i.complete, i.site_blobs))
        .collect();
    assert_eq!(site, vec![(true, 1), (true, 1), (true, 0)]);

    // Inspect: per image, what travels and what the site must have.
    let s = crate::bundle::inspect(&paths).unwrap();
    assert_eq!((s.site_blobs, s.site_size), (1, shared_size));
    let a = &s.images[0];
    assert_eq!((a.site_blobs, a.site_bytes), (1, shared_size));
    assert_eq!(a.bundle_blobs, 2); // config and own layer; the shared one is at the site
    assert_eq!(a.bundle_bytes + a.site_bytes, a.size);
    assert_eq!((s.images[2].site_blobs, s.images[2].site_bytes), (0, 0));

    // The same images without exclusions give a different bundle.
    let mut full = fixture(10_000);
    full.input.excluded.clear();
    let full_paths = full.write("full.tar.zst", None);
    let (fd, _) = read_all(&full_paths[0]);
    assert_ne!(fd.bundle_id, d.bundle_id);
    assert!(!fd.is_differential());
}

/// Everything excluded: a bundle of manifests only, still valid.
#[test]
fn every_blob_excluded() {
    let mut f = fixture(10_000);
    f.input.excluded = f
        .input
        .images
        .iter()
        .flat_map(|i| &i.blobs)
        .map(|b| (b.clone(), f.content[b].len() as u64))
        .collect();
    for b in f.input.excluded.keys() {
        let _ = std::fs::remove_file(f.staging.blob_path(b));
    }
    let paths = f.write("m.tar.zst", Some(1 << 20));
    assert_eq!(paths.len(), 1);
    let (d, entries) = read_all(&paths[0]);
    assert!(d.blobs.is_empty());
    assert_eq!(
        entries.keys().filter(|k| k.starts_with("blobs/")).count(),
        d.manifests.len()
    );
    assert!(index_refs(&entries["index.json"].1).is_empty());
    let report = verify(&paths).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.site_blobs.len(), f.input.excluded.len());
}

/// An exclusion naming one of the images' manifests is ignored: manifests always travel.
#[test]
fn manifests_are_never_excluded() {
    let mut f = fixture(10_000);
    let top = f.input.images[0].digest.clone();
    f.input.excluded = BTreeMap::from([(top.clone(), 1)]);
    let paths = f.write("x.tar.zst", None);
    let (d, entries) = read_all(&paths[0]);
    assert!(d.excluded_blobs.is_empty());
    assert!(entries.contains_key(&format!("blobs/sha256/{}", top.hex())));
}

/// A create cut off anywhere (the `.partial` files hold a prefix of what the uninterrupted
/// run wrote: the descriptor still with placeholders, or rewritten, or torn mid-frame) resumes
/// to the very same bytes, single volume or split blobs across several.
#[test]
fn a_partial_cut_anywhere_resumes_to_the_same_bytes() {
    for (limit, big) in [(None, 3_000_000), (Some(1_200_000u64), 3_000_000)] {
        let f = fixture(big);
        let reference = f.write("ref.tar.zst", limit);
        let want: Vec<Vec<u8>> = reference
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        for fraction in [0.0, 0.001, 0.1, 0.5, 0.9, 0.999] {
            let out = f.write("cut.tar.zst", limit);
            // Every volume becomes a .partial holding a prefix of itself (and the seek
            // index cut away): as if the run had been killed while writing it.
            for (path, bytes) in out.iter().zip(&want) {
                let cut = (bytes.len() as f64 * fraction) as usize;
                let mut partial = path.as_os_str().to_owned();
                partial.push(".partial");
                std::fs::write(&partial, &bytes[..cut]).unwrap();
                std::fs::remove_file(path).unwrap();
            }
            let again = f.write("cut.tar.zst", limit);
            for (i, (path, bytes)) in again.iter().zip(&want).enumerate() {
                assert_eq!(
                    &std::fs::read(path).unwrap(),
                    bytes,
                    "volume {} differs after a cut at {fraction} (limit {limit:?})",
                    i + 1
                );
                let mut partial = path.as_os_str().to_owned();
                partial.push(".partial");
                assert!(!Path::new(&partial).exists());
            }
        }
    }
}
