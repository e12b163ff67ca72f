//! Tests of verification and inspection on written bundles, intact and damaged.

use super::*;
use crate::bundle::testutil::{entry_offset, fixture, rewrite_volume};
use crate::bundle::{PartAssembler, WriteOptions, blob_name, inspect, part_name, write_bundle};
use crate::report::NoReporter;

fn descriptor(p: &std::path::Path) -> Descriptor {
    VolumeReader::open(p).unwrap().descriptor().clone()
}

/// Flips one byte in the middle of entry `name` of the volume at `path`.
fn flip(path: &std::path::Path, name: &str, len: u64) {
    rewrite_volume(path, |raw| {
        let at = entry_offset(raw, name) + len / 2;
        raw[at as usize] ^= 0x40;
    });
}

#[test]
fn intact_set_verifies() {
    let f = fixture(300_000);
    let paths = f.write("v.tar.zst", Some(128 << 10));
    let report = verify(&paths).unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert_eq!(report.volumes.len(), paths.len());
    assert!(report.volumes.iter().all(|v| v.ok && v.entries > 0));
    assert_eq!(report.images.len(), 3);
    assert_eq!(report.volume_count, Some(paths.len() as u32));
    // Order of the paths given does not matter.
    let mut reversed = paths.clone();
    reversed.reverse();
    assert!(verify(&reversed).unwrap().is_ok());
}

#[test]
fn flipped_byte_names_blob_image_and_volume() {
    let f = fixture(60_000);
    let paths = f.write("v.tar.zst", Some(128 << 10));
    // The shared layer: used by two images.
    let d = descriptor(&paths[0]);
    let loc = &d.blobs[&f.shared].volumes[0];
    let vol = &paths[loc.volume as usize - 1];
    flip(vol, &blob_name(&f.shared), loc.length);

    let report = verify(&paths).unwrap();
    assert!(!report.is_ok());
    let p = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Corrupt && p.digest.as_ref() == Some(&f.shared))
        .unwrap_or_else(|| panic!("{:#?}", report.problems));
    assert_eq!(p.volume.as_ref(), Some(vol));
    assert!(
        p.images
            .contains(&"docker.io/library/alpha:1.0".to_string()),
        "{p:?}"
    );
    assert!(
        p.images.contains(&"docker.io/acme/beta:2.0".to_string()),
        "{p:?}"
    );
    for needle in [
        f.shared.as_str(),
        "docker.io/library/alpha:1.0",
        vol.file_name().unwrap().to_str().unwrap(),
    ] {
        assert!(p.message.contains(needle), "{needle} not in {}", p.message);
    }
    // Both images are reported incomplete; the third is fine; other volumes are fine.
    let bad: Vec<_> = report
        .images
        .iter()
        .filter(|i| !i.complete)
        .map(|i| &i.source)
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(report.volumes.iter().filter(|v| !v.ok).count(), 1);
}

#[test]
fn flipped_byte_in_a_part_names_the_whole_blob() {
    let f = fixture(300_000);
    let paths = f.write("v.tar.zst", Some(128 << 10));
    let d = descriptor(&paths[0]);
    let loc = &d.blobs[&f.big].volumes[1];
    let vol = &paths[loc.volume as usize - 1];
    flip(vol, &part_name(&f.big, loc.part.unwrap()), loc.length);
    let report = verify(&paths).unwrap();
    let p = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Corrupt && p.volume.as_ref() == Some(vol))
        .unwrap_or_else(|| panic!("{:#?}", report.problems));
    assert_eq!(p.digest.as_ref(), Some(&f.big));
    assert!(p.images.iter().any(|i| i.contains("gamma")), "{p:?}");
    assert!(p.message.contains("part 2 of blob"), "{}", p.message);
    assert!(
        report
            .images
            .iter()
            .any(|i| i.source.contains("gamma") && !i.complete)
    );

    // The loader's assembler refuses the damaged part too.
    let assembler = PartAssembler::open(&f.dir.path().join("state")).unwrap();
    let mut reader = VolumeReader::open(vol).unwrap();
    while let Some(mut e) = reader.next_entry().unwrap() {
        if let EntryKind::BlobPart { digest, part } = e.kind().clone() {
            let err = assembler
                .store_part(&digest, &d.blobs[&digest], part, &mut e)
                .unwrap_err();
            assert!(matches!(err, BundleError::DigestMismatch(_)), "{err}");
            assert!(!assembler.has_part(&digest, part));
        }
    }
}

#[test]
fn subsets_and_mixtures_are_reported() {
    let f = fixture(300_000);
    let paths = f.write("v.tar.zst", Some(128 << 10));
    let report = verify(&paths[..1]).unwrap();
    let gamma = report
        .problems
        .iter()
        .find(|p| p.images.iter().any(|i| i.contains("gamma")))
        .unwrap();
    assert_eq!(gamma.kind, ProblemKind::Incomplete);
    assert!(gamma.message.contains("not given"), "{}", gamma.message);

    // A volume of another bundle.
    let mut other = f.input.clone();
    other.images.truncate(1);
    let out = f.dir.path().join("other.tar.zst");
    write_bundle(
        &f.staging,
        &other,
        &out,
        &WriteOptions::default(),
        &NoReporter,
    )
    .unwrap();
    let mut mixed = paths.clone();
    mixed.push(out.clone());
    let report = verify(&mixed).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Inconsistent
                && p.volume.as_ref() == Some(&out)
                && p.message.contains("belongs to bundle")),
        "{:#?}",
        report.problems
    );
    assert!(matches!(
        inspect(&mixed),
        Err(BundleError::MixedBundles { .. })
    ));

    // A truncated volume is a problem, not a failure of verify itself.
    let bytes = std::fs::read(&paths[1]).unwrap();
    std::fs::write(&paths[1], &bytes[..bytes.len() / 2]).unwrap();
    let report = verify(&paths).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Unreadable
                && p.volume.as_ref() == Some(&paths[1])
                && p.message.contains("truncated")),
        "{:#?}",
        report.problems
    );
    assert!(matches!(verify(&[]), Err(BundleError::NoVolumes)));
}

#[test]
fn inspect_reads_descriptors_only() {
    let f = fixture(300_000);
    let paths = f.write("v.tar.zst", Some(128 << 10));
    // Damage content after the descriptor: inspect does not notice, as it does not read it.
    let d = descriptor(&paths[0]);
    let (digest, entry) = d
        .blobs
        .iter()
        .find(|(_, b)| b.location(1, None).is_some())
        .unwrap();
    flip(&paths[0], &blob_name(digest), entry.size);
    let summary = inspect(&paths).unwrap();
    assert_eq!(summary.volume_count as usize, paths.len());
    assert_eq!(summary.volumes.len(), paths.len());
    assert!(summary.missing_volumes.is_empty());
    assert_eq!(summary.images.len(), 3);
    let gamma = summary
        .images
        .iter()
        .find(|i| i.source.contains("gamma"))
        .unwrap();
    assert!(gamma.volumes.len() >= 3 && gamma.available);
    let complete: Vec<_> = summary
        .volumes
        .iter()
        .flat_map(|v| v.complete_images.clone())
        .collect();
    assert!(complete.contains(&"docker.io/library/alpha:1.0".to_string()));
    assert_eq!(
        summary.total_size,
        f.content.values().map(|c| c.len() as u64).sum::<u64>()
    );
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["images"][1]["platforms"][1], "linux/arm64");

    let partial = inspect(&paths[1..2]).unwrap();
    assert_eq!(partial.missing_volumes.len(), paths.len() - 1);
    assert!(partial.images.iter().any(|i| !i.available));
}

/// The structural check reads no blob content: it accepts what only a digest check can
/// refuse (the loader does that as it reads), and refuses the same broken structure.
#[test]
fn structure_only_skips_content_but_not_structure() {
    let f = fixture(300_000);
    let paths = f.write("s.tar.zst", Some(128 << 10));
    let report = crate::bundle::verify_structure(&paths).unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert!(report.images.iter().all(|i| i.complete));
    assert!(report.volumes.iter().all(|v| v.bytes == 0 && v.entries > 0));

    let d = descriptor(&paths[0]);
    let (volume, _) = paths
        .iter()
        .enumerate()
        .find(|(i, _)| d.blobs[&f.shared].location(*i as u32 + 1, None).is_some())
        .unwrap();
    let len = d.blobs[&f.shared].size;
    flip(&paths[volume], &blob_name(&f.shared), len);
    assert!(crate::bundle::verify_structure(&paths).unwrap().is_ok());
    assert!(!verify(&paths).unwrap().is_ok());

    // A volume cut short: refused by both.
    let bytes = std::fs::read(&paths[1]).unwrap();
    std::fs::write(&paths[1], &bytes[..bytes.len() - 100]).unwrap();
    let report = crate::bundle::verify_structure(&paths).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.volume.as_ref() == Some(&paths[1]) && p.message.contains("truncated")),
        "{:#?}",
        report.problems
    );
}
