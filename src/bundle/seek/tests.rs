//! Tests of the seek index: round trip, frame boundaries, and every kind of damage to it.

use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::bundle::testutil::frames_of;

fn chunks() -> Vec<Vec<u8>> {
    vec![
        vec![1u8; 512],
        (0..100_000u32).map(|i| (i % 251) as u8).collect(),
        vec![0u8; 1024],
    ]
}

fn index_of(bytes: &[u8]) -> Result<Option<FrameIndex>, BundleError> {
    FrameIndex::read(
        &mut Cursor::new(bytes),
        bytes.len() as u64,
        Path::new("v.tar.zst"),
    )
}

fn read_all(bytes: &[u8], from: usize) -> Result<Vec<u8>, BundleError> {
    let index = Arc::new(index_of(bytes)?.expect("an index"));
    let mut r = FrameReader::new(
        Cursor::new(bytes.to_vec()),
        index,
        Path::new("v.tar.zst"),
        from,
    )?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)
        .map_err(|e| crate::bundle::into_bundle_error(e, Path::new("v.tar.zst")))?;
    Ok(out)
}

#[test]
fn round_trip_and_frame_boundaries() {
    let chunks = chunks();
    let bytes = frames_of(chunks.clone());
    // `zstd -d` sees one stream: the frames' content, the index skipped.
    let plain = zstd::decode_all(bytes.as_slice()).unwrap();
    assert_eq!(plain, chunks.concat());
    let index = index_of(&bytes).unwrap().unwrap();
    assert_eq!(index.len(), 3);
    assert_eq!(index.total(), plain.len() as u64);
    assert_eq!(index.frame(0), (0, 512));
    assert_eq!(index.frame(1), (512, 100_000));
    assert_eq!(index.frame(2), (100_512, 1024));
    assert!(index.is_frame_start(512) && !index.is_frame_start(513));
    assert_eq!(index.frame_at(0), Some(0));
    assert_eq!(index.frame_at(511), Some(0));
    assert_eq!(index.frame_at(512), Some(1));
    assert_eq!(index.frame_at(100_512 + 1023), Some(2));
    assert_eq!(index.frame_at(index.total()), None);
    // The table as the seekable format lays it out, at the end.
    let n = index.len() as u64;
    let table = &bytes[bytes.len() - (HEADER_BYTES + n * ENTRY_BYTES + FOOTER_BYTES) as usize..];
    assert_eq!(le32(table), SKIPPABLE_MAGIC);
    assert_eq!(le32(&table[table.len() - 4..]), SEEKABLE_MAGIC);
    assert_eq!(table[table.len() - 5], DESCRIPTOR_CHECKSUMS);
    // Every frame and any suffix of frames reads back through the index.
    assert_eq!(read_all(&bytes, 0).unwrap(), plain);
    assert_eq!(read_all(&bytes, 1).unwrap(), plain[512..]);
    assert_eq!(read_all(&bytes, 2).unwrap(), plain[100_512..]);
}

#[test]
fn a_plain_zstd_stream_has_no_index() {
    let bytes = zstd::encode_all(&b"hello"[..], 3).unwrap();
    assert!(index_of(&bytes).unwrap().is_none());
    assert!(index_of(b"").unwrap().is_none());
}

/// Every byte of the index, flipped, is caught: when the index is read, or when the frames
/// are read against it.
#[test]
fn a_flipped_byte_anywhere_in_the_index_is_caught() {
    let bytes = frames_of(chunks());
    let n = 3u64;
    let table_len = (HEADER_BYTES + n * ENTRY_BYTES + FOOTER_BYTES) as usize;
    let table_start = bytes.len() - table_len;
    for at in table_start..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[at] ^= bit;
            let err = match index_of(&bad) {
                Err(e) => e,
                // The seekable magic damaged: no index any more (the volume reader then
                // refuses a format-2 descriptor without one).
                Ok(None) => {
                    assert!(at >= bytes.len() - 4, "byte {at}: index vanished");
                    continue;
                }
                Ok(Some(_)) => read_all(&bad, 0).expect_err(&format!("byte {at} ^ {bit:#x}")),
            };
            assert!(
                matches!(err, BundleError::SeekIndex { .. }),
                "byte {at}: {err}"
            );
            assert!(err.to_string().contains("v.tar.zst"), "{err}");
        }
    }
}

#[test]
fn a_truncated_index_is_refused() {
    let bytes = frames_of(chunks());
    for cut in 1..30 {
        let short = &bytes[..bytes.len() - cut];
        // Cut into the footer: the magic is gone, no index is found.
        if let Ok(Some(_)) = index_of(short) {
            panic!("cut {cut}: an index was read");
        }
    }
    // The footer kept, bytes before it removed: the sizes no longer add up.
    let mut spliced = bytes[..bytes.len() - 40].to_vec();
    spliced.extend_from_slice(&bytes[bytes.len() - 9..]);
    assert!(matches!(
        index_of(&spliced),
        Err(BundleError::SeekIndex { .. })
    ));
}

#[test]
fn hostile_sizes_are_bounded_errors() {
    let footer = |frames: u32, descriptor: u8| {
        let mut f = frames.to_le_bytes().to_vec();
        f.push(descriptor);
        f.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        f
    };
    // A frame count far beyond the file: refused before anything is allocated for it.
    for frames in [u32::MAX, 1 << 30, (MAX_FRAMES + 1) as u32, 1000] {
        let mut bytes = vec![0u8; 100];
        bytes.extend(footer(frames, DESCRIPTOR_CHECKSUMS));
        let err = index_of(&bytes).unwrap_err();
        assert!(err.to_string().contains("frames"), "{frames}: {err}");
    }
    // Reserved descriptor bits.
    let mut bytes = vec![0u8; 100];
    bytes.extend(footer(1, 0x84));
    assert!(index_of(&bytes).is_err());
    // A frame claiming a huge decompressed size, or fewer compressed bytes than any frame.
    for (c, d) in [
        (40u32, u32::MAX),
        (2, 10),
        (40, (MAX_FRAME_BYTES + 1) as u32),
    ] {
        let mut bytes = vec![0u8; 40];
        bytes.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        bytes.extend_from_slice(&((ENTRY_BYTES + FOOTER_BYTES) as u32).to_le_bytes());
        bytes.extend_from_slice(&c.to_le_bytes());
        bytes.extend_from_slice(&d.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend(footer(1, DESCRIPTOR_CHECKSUMS));
        let err = index_of(&bytes).unwrap_err();
        assert!(err.to_string().contains("frame 0"), "{c}/{d}: {err}");
    }
}

/// A frame made with a larger window than the format allows is refused, not decoded with
/// whatever memory it asks for.
#[test]
fn frames_needing_a_large_window_are_refused() {
    let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 7) as u8).collect();
    let mut c = zstd::bulk::Compressor::new(3).unwrap();
    c.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))
        .unwrap();
    c.set_parameter(zstd::stream::raw::CParameter::WindowLog(22))
        .unwrap();
    let frame = c.compress(&data).unwrap();
    let mut bytes = frame.clone();
    bytes.extend(encode_table(&[FrameEntry {
        compressed: frame.len() as u32,
        decompressed: data.len() as u32,
        checksum: le32(&frame[frame.len() - 4..]),
    }]));
    let err = read_all(&bytes, 0).unwrap_err();
    assert!(matches!(err, BundleError::SeekIndex { .. }), "{err}");
}
