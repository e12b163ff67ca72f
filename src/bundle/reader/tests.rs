//! Hostile and damaged volumes: each must be refused with an error naming the volume and
//! entry, and extraction must never write outside its directory.

use std::collections::BTreeMap;

use super::*;
use crate::bundle::descriptor::{BlobEntry, BlobLocation, ImageEntry, ManifestEntry};
use crate::bundle::testutil::{CREATED, RawEntry, fixture, raw_volume};
use crate::bundle::{BundleInput, WriteOptions, write_bundle};
use crate::report::NoReporter;

const MANIFEST: &[u8] = br#"{"schemaVersion":2}"#;
const BLOB: &[u8] = b"some layer bytes";

/// A valid one-volume descriptor for one image with `MANIFEST` and `BLOB`.
fn descriptor(version: u32) -> Vec<u8> {
    let (m, b) = (Digest::of(MANIFEST), Digest::of(BLOB));
    let d = Descriptor {
        format_version: version,
        tool_version: "0.1.0".into(),
        created: CREATED.into(),
        lists: vec![],
        bundle_id: "x".repeat(32),
        volume: 1,
        volume_count: 1,
        images: vec![ImageEntry {
            source: "docker.io/library/x:1".into(),
            tag: Some("1".into()),
            digest: m.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            platforms: vec![],
            size: (MANIFEST.len() + BLOB.len()) as u64,
            manifests: vec![m.clone()],
            blobs: vec![b.clone()],
            referrer_of: None,
            subject: None,
            artifact_type: None,
        }],
        manifests: BTreeMap::from([(
            m,
            ManifestEntry {
                size: MANIFEST.len() as u64,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            },
        )]),
        blobs: BTreeMap::from([(
            b,
            BlobEntry {
                size: BLOB.len() as u64,
                volumes: vec![BlobLocation {
                    volume: 1,
                    part: None,
                    offset: 0,
                    length: BLOB.len() as u64,
                    digest: None,
                    tar_offset: None,
                }],
            },
        )]),
        excluded_blobs: BTreeMap::new(),
        missing_images: Vec::new(),
        inventoried: Vec::new(),
    };
    d.to_bytes()
}

fn blob_entry(data: &[u8]) -> RawEntry {
    RawEntry::file(&format!("blobs/sha256/{}", Digest::of(BLOB).hex()), data)
}

/// The entries of a good volume, with `extra` inserted after the layout files.
fn volume_with(extra: Vec<RawEntry>) -> Vec<u8> {
    let mut entries = vec![
        RawEntry::file("airlift-bundle.json", &descriptor(1)),
        RawEntry::file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        RawEntry::file("index.json", br#"{"schemaVersion":2,"manifests":[]}"#),
    ];
    entries.extend(extra);
    entries.push(RawEntry::file(
        &format!("blobs/sha256/{}", Digest::of(MANIFEST).hex()),
        MANIFEST,
    ));
    entries.push(blob_entry(BLOB));
    raw_volume(&entries)
}

/// Writes `bytes` as a volume in a fresh directory, extracts it to `<tmp>/out`, and checks
/// that nothing but `out` and the volume exist in `<tmp>` afterwards.
fn extract(bytes: &[u8]) -> Result<(), BundleError> {
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("vol.tar.zst");
    std::fs::write(&vol, bytes).unwrap();
    let result = VolumeReader::open(&vol).and_then(|r| r.extract_to(&tmp.path().join("out")));
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.retain(|n| n != "out");
    assert_eq!(
        names,
        ["vol.tar.zst"],
        "something was written outside the target"
    );
    if let Err(e) = &result {
        // Errors name the volume.
        assert!(e.to_string().contains("vol.tar.zst"), "{e}");
    }
    result
}

#[test]
fn good_volume_extracts() {
    extract(&volume_with(vec![])).unwrap();
    // The blob directories may be present as entries.
    let mut dir = RawEntry::file("blobs/", b"");
    dir.kind = tar::EntryType::Directory;
    let mut dir2 = RawEntry::file("blobs/sha256/", b"");
    dir2.kind = tar::EntryType::Directory;
    extract(&volume_with(vec![dir, dir2])).unwrap();
}

#[test]
fn parent_and_absolute_paths_are_refused() {
    let before = std::fs::metadata("/etc/passwd")
        .map(|m| m.modified().unwrap())
        .ok();
    for (name, why) in [
        ("../evil", ".."),
        ("blobs/sha256/../../../evil", ".."),
        ("/etc/passwd", "absolute"),
        ("./index.json", "not a bundle entry"),
        ("evil", "not a bundle entry"),
    ] {
        let err = extract(&volume_with(vec![RawEntry::file(name, b"x")])).unwrap_err();
        assert!(
            matches!(err, BundleError::UnsafeEntry { .. }),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains(name) && err.to_string().contains(why),
            "{err}"
        );
    }
    let after = std::fs::metadata("/etc/passwd")
        .map(|m| m.modified().unwrap())
        .ok();
    assert_eq!(before, after);
}

#[test]
fn links_devices_and_fifos_are_refused() {
    let name = format!("blobs/sha256/{}", Digest::of(BLOB).hex());
    for (kind, link, why) in [
        (
            tar::EntryType::Symlink,
            Some("/etc/passwd"),
            "symbolic link",
        ),
        (tar::EntryType::Link, Some("index.json"), "hard link"),
        (tar::EntryType::Char, None, "device"),
        (tar::EntryType::Block, None, "device"),
        (tar::EntryType::Fifo, None, "fifo"),
        (tar::EntryType::XHeader, None, "only regular files"),
        (tar::EntryType::GNULongName, None, "only regular files"),
    ] {
        let mut e = RawEntry::file(&name, b"");
        e.kind = kind;
        e.link = link;
        let err = extract(&volume_with(vec![e])).unwrap_err();
        assert!(
            matches!(err, BundleError::UnsafeEntry { .. }),
            "{kind:?}: {err}"
        );
        assert!(err.to_string().contains(why), "{err}");
    }
    let mut dir = RawEntry::file("etc/", b"");
    dir.kind = tar::EntryType::Directory;
    assert!(matches!(
        extract(&volume_with(vec![dir])),
        Err(BundleError::UnsafeEntry { .. })
    ));
}

#[test]
fn entries_disagreeing_with_the_descriptor_are_refused() {
    // A blob of another size than the descriptor says.
    let entries = vec![
        RawEntry::file("airlift-bundle.json", &descriptor(1)),
        RawEntry::file(
            &format!("blobs/sha256/{}", Digest::of(MANIFEST).hex()),
            MANIFEST,
        ),
        blob_entry(b"short"),
    ];
    let err = extract(&raw_volume(&entries)).unwrap_err();
    assert!(matches!(err, BundleError::UnexpectedEntry { .. }), "{err}");
    assert!(err.to_string().contains("size 5 disagrees"), "{err}");

    // A blob the descriptor does not know.
    let stranger = RawEntry::file(&format!("blobs/sha256/{}", Digest::of(b"?").hex()), b"?");
    let err = extract(&volume_with(vec![stranger])).unwrap_err();
    assert!(err.to_string().contains("not in the descriptor"), "{err}");

    // A part the descriptor does not announce.
    let part = RawEntry::file(
        &format!("blobs/sha256/{}.part1", Digest::of(BLOB).hex()),
        BLOB,
    );
    let err = extract(&volume_with(vec![part])).unwrap_err();
    assert!(err.to_string().contains("no part 1"), "{err}");

    // Same size, other content: found when read, and the file is not left behind.
    let tampered: Vec<u8> = BLOB.iter().map(|b| b ^ 1).collect();
    let entries = vec![
        RawEntry::file("airlift-bundle.json", &descriptor(1)),
        blob_entry(&tampered),
    ];
    let err = extract(&raw_volume(&entries)).unwrap_err();
    assert!(matches!(err, BundleError::DigestMismatch(_)), "{err}");
    assert!(err.to_string().contains("docker.io/library/x:1"), "{err}");

    // A missing entry is found at the end.
    let entries = vec![RawEntry::file("airlift-bundle.json", &descriptor(1))];
    let err = extract(&raw_volume(&entries)).unwrap_err();
    assert!(matches!(err, BundleError::MissingEntries { .. }), "{err}");
}

#[test]
fn duplicates_are_refused() {
    let err = extract(&volume_with(vec![RawEntry::file("oci-layout", b"{}")])).unwrap_err();
    assert!(matches!(err, BundleError::DuplicateEntry { .. }), "{err}");
    let err = extract(&volume_with(vec![RawEntry::file(
        "airlift-bundle.json",
        &descriptor(1),
    )]))
    .unwrap_err();
    assert!(matches!(err, BundleError::DuplicateEntry { .. }), "{err}");
}

#[test]
fn descriptor_must_come_first_and_be_known() {
    let entries = vec![
        RawEntry::file("oci-layout", b"{}"),
        RawEntry::file("airlift-bundle.json", &descriptor(1)),
    ];
    let err = extract(&raw_volume(&entries)).unwrap_err();
    assert!(
        matches!(err, BundleError::DescriptorNotFirst { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("oci-layout"), "{err}");

    let entries = vec![RawEntry::file("airlift-bundle.json", &descriptor(7))];
    let err = extract(&raw_volume(&entries)).unwrap_err();
    assert!(
        matches!(err, BundleError::UnsupportedFormat { found: 7, .. }),
        "{err}"
    );

    let entries = vec![RawEntry::file("airlift-bundle.json", b"{not json")];
    let err = extract(&raw_volume(&entries)).unwrap_err();
    assert!(
        matches!(err, BundleError::InvalidDescriptor { .. }),
        "{err}"
    );

    let err = extract(b"this is not zstd").unwrap_err();
    assert!(matches!(err, BundleError::Read { .. }), "{err}");
}

#[test]
fn truncated_volumes_are_refused() {
    let f = fixture(100_000);
    let out = f.dir.path().join("t.tar.zst");
    let input: &BundleInput = &f.input;
    write_bundle(
        &f.staging,
        input,
        &out,
        &WriteOptions::default(),
        &NoReporter,
    )
    .unwrap();
    let bytes = std::fs::read(&out).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 3, 40] {
        let err = extract(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::Truncated { .. }
                    | BundleError::Read { .. }
                    | BundleError::SeekIndex { .. }
            ),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains("truncated"), "cut at {cut}: {err}");
    }
    // Garbage after the end of the archive is refused too: in a frame of its own after the
    // end marker (the index says the end marker is not last), or in the end marker's frame.
    let raw = zstd::decode_all(bytes.as_slice()).unwrap();
    let index = crate::bundle::seek::FrameIndex::read(
        &mut std::io::Cursor::new(&bytes),
        bytes.len() as u64,
        &out,
    )
    .unwrap()
    .unwrap();
    let mut chunks: Vec<Vec<u8>> = (0..index.len())
        .map(|i| {
            let (start, len) = index.frame(i);
            raw[start as usize..(start + len) as usize].to_vec()
        })
        .collect();
    chunks.push(b"junk".to_vec());
    let err = extract(&crate::bundle::testutil::frames_of(chunks.clone())).unwrap_err();
    assert!(matches!(err, BundleError::SeekIndex { .. }), "{err}");
    assert!(err.to_string().contains("end marker"), "{err}");
    let junk = chunks.pop().unwrap();
    chunks.last_mut().unwrap().extend(junk);
    let err = extract(&crate::bundle::testutil::frames_of(chunks)).unwrap_err();
    assert!(matches!(err, BundleError::SeekIndex { .. }), "{err}");
    // A format-1 volume has no index: there the bytes after the end marker are checked.
    let mut raw = zstd::decode_all(volume_with(vec![]).as_slice()).unwrap();
    raw.extend_from_slice(&[0; 512]);
    raw.extend_from_slice(b"junk");
    let err = extract(&zstd::encode_all(raw.as_slice(), 1).unwrap()).unwrap_err();
    assert!(matches!(err, BundleError::TrailingData { .. }), "{err}");
}

#[test]
fn extraction_does_not_follow_planted_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("v.tar.zst");
    std::fs::write(&vol, volume_with(vec![])).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(tmp.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("elsewhere"), out.join("blobs")).unwrap();
    let err = VolumeReader::open(&vol)
        .unwrap()
        .extract_to(&out)
        .unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("elsewhere"))
            .unwrap()
            .count(),
        0
    );

    std::fs::remove_file(out.join("blobs")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("elsewhere/x"), out.join("index.json")).unwrap();
    assert!(VolumeReader::open(&vol).unwrap().extract_to(&out).is_err());
    assert_eq!(
        std::fs::read_dir(tmp.path().join("elsewhere"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn entries_can_be_skipped_or_streamed() {
    // The loader moves the reader into spawn_blocking.
    fn is_send<T: Send>() {}
    is_send::<VolumeReader>();

    let bytes = volume_with(vec![]);
    let mut reader =
        VolumeReader::from_reader("stdin", std::io::Cursor::new(bytes.clone())).unwrap();
    let mut kinds = Vec::new();
    while let Some(mut e) = reader.next_entry().unwrap() {
        kinds.push(e.kind().clone());
        if let EntryKind::Blob { digest } = e.kind().clone() {
            // Read in small pieces, including an empty read, as an uploader might.
            let mut got = Vec::new();
            let mut buf = [0u8; 3];
            assert_eq!(e.read(&mut []).unwrap(), 0);
            loop {
                let n = e.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, BLOB);
            assert_eq!(digest, Digest::of(BLOB));
        }
        // Everything else is skipped unread.
    }
    assert_eq!(
        kinds,
        [
            EntryKind::OciLayout,
            EntryKind::Index,
            EntryKind::Manifest {
                digest: Digest::of(MANIFEST)
            },
            EntryKind::Blob {
                digest: Digest::of(BLOB)
            },
        ]
    );
    reader.finish().unwrap();

    // A reader abandoned half way can still be finished (skipping the rest).
    let mut reader = VolumeReader::from_reader("stdin", std::io::Cursor::new(bytes)).unwrap();
    let mut e = reader.next_entry().unwrap().unwrap();
    let mut one = [0u8; 1];
    e.read_exact(&mut one).unwrap();
    reader.finish().unwrap();
}
