//! Volume planning: which blob (or part of a blob) goes into which volume.
//!
//! The limit is on the *compressed* file. Layers are already gzip-compressed, so zstd will not
//! shrink them; the planner assumes no compression at all and budgets every entry by zstd's
//! worst case for each of its frames ([`entry_cost`]: the header frame, content frames of
//! [`FRAME_BYTES`], and their seek-index entries), so a volume never exceeds the limit. The
//! entries repeated in every volume (descriptor, `oci-layout`, `index.json`, all manifests, the
//! end marker and the index's fixed bytes) are reserved in each volume first.
//!
//! Packing is tight: blobs are placed first-fit in image order (so an image's blobs tend to
//! share a volume and that volume's `index.json` can list it); a blob that fits in no volume
//! whole is split, its first part filling what is left of the last volume, unless that volume
//! is within 1 % of full already. So every volume but the last is filled to within 1 % of its
//! budget, at the cost of at most one split blob per volume.

use crate::reference::Digest;

use super::BundleError;
use super::seek::{ENTRY_BYTES, FOOTER_BYTES, FRAME_BYTES, HEADER_BYTES, bound};

/// Tar block size: every header is one block, every body is padded to whole blocks.
pub(crate) const BLOCK: u64 = 512;

/// Bytes a tar entry with `size` bytes of content takes: header plus padded body.
pub(crate) fn tar_entry_size(size: u64) -> u64 {
    BLOCK + size.div_ceil(BLOCK) * BLOCK
}

/// Bytes of the end-of-archive marker (two zero blocks).
pub(crate) const TAR_END: u64 = 2 * BLOCK;

/// Worst-case bytes one frame of `n` uncompressed bytes takes in the volume, its seek-index
/// entry included. zstd's bound covers the frame header, block headers and checksum; 32 bytes
/// more are kept for safety.
pub(crate) fn frame_cost(n: u64) -> u64 {
    bound(n) + 32 + ENTRY_BYTES
}

/// Worst-case bytes of a tar entry of `size` bytes in a format-2 volume: the header frame and
/// the frames of the padded content.
pub(crate) fn entry_cost(size: u64) -> u64 {
    let padded = size.div_ceil(BLOCK) * BLOCK;
    let full = padded / FRAME_BYTES;
    let rest = padded % FRAME_BYTES;
    frame_cost(BLOCK) + full * frame_cost(FRAME_BYTES) + if rest > 0 { frame_cost(rest) } else { 0 }
}

/// Worst-case bytes every volume spends besides its entries: the end marker's frame and the
/// seek index's header and footer.
pub(crate) fn volume_overhead() -> u64 {
    frame_cost(TAR_END) + HEADER_BYTES + FOOTER_BYTES
}

/// The largest part length (whole blocks) whose entry fits in `room` bytes, 0 if none.
fn largest_part(room: u64) -> u64 {
    if entry_cost(BLOCK) > room {
        return 0;
    }
    // entry_cost is monotonic: binary search the largest whole number of blocks.
    let (mut lo, mut hi) = (1u64, room / BLOCK + 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if entry_cost(mid * BLOCK) <= room {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo * BLOCK
}

/// A blob, or part of one, placed in a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    /// The blob.
    pub digest: Digest,
    /// Part number (from 1) if the blob is split.
    pub part: Option<u32>,
    /// Offset in the blob.
    pub offset: u64,
    /// Bytes.
    pub length: u64,
}

/// Smallest part worth starting in the space left in a volume; below this the space stays
/// empty.
const MIN_LEFTOVER_PART: u64 = 4096;

/// Assigns `blobs` (digest and size, in image order, distinct) to volumes. `fixed` is the
/// worst-case bytes every volume spends on repeated entries and overhead; `limit` the maximum
/// compressed size of a volume, or `None` for a single volume. Returns the pieces of each
/// volume, in order.
pub(crate) fn plan_volumes(
    blobs: &[(Digest, u64)],
    fixed: u64,
    limit: Option<u64>,
) -> Result<Vec<Vec<Piece>>, BundleError> {
    let whole = |digest: &Digest, size: u64| Piece {
        digest: digest.clone(),
        part: None,
        offset: 0,
        length: size,
    };
    let Some(limit) = limit else {
        return Ok(vec![blobs.iter().map(|(d, s)| whole(d, *s)).collect()]);
    };
    // A volume must hold its fixed entries and at least one block of blob data.
    let needed = fixed + entry_cost(BLOCK);
    if limit < needed {
        return Err(BundleError::VolumeTooSmall { limit, needed });
    }
    let capacity = limit - fixed;
    // Space left in a volume below which it counts as full: a blob that does not fit starts
    // the next volume instead of being split.
    let full_enough = (capacity / 100).max(MIN_LEFTOVER_PART);
    let mut volumes: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut free: Vec<u64> = vec![capacity];
    for (digest, size) in blobs {
        let cost = entry_cost(*size);
        if let Some(slot) = free.iter().position(|&f| f >= cost) {
            free[slot] -= cost;
            volumes[slot].push(whole(digest, *size));
            continue;
        }
        // Fits in no volume whole: split it, its first part filling what is left of the last
        // volume unless that is nearly full already, the rest in new volumes.
        if largest_part(*free.last().expect("one volume")) < full_enough {
            volumes.push(Vec::new());
            free.push(capacity);
        }
        let (mut offset, mut part) = (0u64, 1u32);
        while offset < *size {
            let last = free.len() - 1;
            let room = largest_part(free[last]);
            if room == 0 || room < MIN_LEFTOVER_PART.min(size - offset) {
                volumes.push(Vec::new());
                free.push(capacity);
                continue;
            }
            let length = room.min(size - offset);
            free[last] -= entry_cost(length);
            if offset == 0 && length == *size {
                volumes[last].push(whole(digest, *size));
                break;
            }
            volumes[last].push(Piece {
                digest: digest.clone(),
                part: Some(part),
                offset,
                length,
            });
            offset += length;
            part += 1;
        }
    }
    Ok(volumes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u8) -> Digest {
        Digest::of(&[i])
    }

    fn used(pieces: &[Piece]) -> u64 {
        pieces.iter().map(|p| entry_cost(p.length)).sum()
    }

    /// The cost must bound what the writer's frames really take from incompressible data, at
    /// the levels worth using, header frame and index entries included.
    #[test]
    fn entry_cost_bounds_real_frames() {
        use rand::{RngCore, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for n in [
            0usize,
            1,
            1000,
            100_000,
            (1 << 20) + 3,
            (4 << 20) + 700,
            9 << 20,
        ] {
            let mut data = vec![0; n];
            rng.fill_bytes(&mut data);
            for level in [1, 3, 9] {
                let header = [7u8; 512];
                let out = crate::bundle::writer::frames::with_frame_sink(
                    Vec::new(),
                    level,
                    2,
                    |e| e,
                    |sink| -> std::io::Result<()> {
                        let mut h = tar::Header::new_gnu();
                        h.as_mut_bytes().copy_from_slice(&header);
                        sink.entry(&h, n as u64, &mut data.as_slice())
                    },
                )
                .unwrap()
                .1;
                let table = HEADER_BYTES + FOOTER_BYTES;
                let got = out.len() as u64 - table;
                assert!(got > n as u64, "{n} bytes compressed to {got}");
                assert!(got <= entry_cost(n as u64), "{n} -> {got}, level {level}");
                // The margin stays under 0.5 % for anything sizeable.
                if n > 2 << 20 {
                    assert!(entry_cost(n as u64) - got < n as u64 / 200, "{n} -> {got}");
                }
            }
        }
    }

    #[test]
    fn largest_part_fits() {
        for room in [0u64, 1000, 5000, 1 << 20, 700 << 20] {
            let l = largest_part(room);
            assert_eq!(l % BLOCK, 0);
            if l > 0 {
                assert!(entry_cost(l) <= room);
            }
            assert!(entry_cost(l + BLOCK) > room, "{room}: {l}");
        }
    }

    #[test]
    fn single_volume_without_limit() {
        let blobs = vec![(d(1), 10), (d(2), 1 << 40)];
        let v = plan_volumes(&blobs, 4096, None).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].len(), 2);
    }

    /// Every blob is placed whole once, or as parts numbered from 1 covering it in order in
    /// ascending volumes; no volume is over its budget.
    fn check_plan(blobs: &[(Digest, u64)], v: &[Vec<Piece>], cap: u64) {
        for (i, vol) in v.iter().enumerate() {
            assert!(used(vol) <= cap, "volume {} over: {}", i + 1, used(vol));
        }
        for (digest, size) in blobs {
            let pieces: Vec<(usize, &Piece)> = v
                .iter()
                .enumerate()
                .flat_map(|(i, vol)| vol.iter().map(move |p| (i, p)))
                .filter(|(_, p)| &p.digest == digest)
                .collect();
            if pieces.len() == 1 && pieces[0].1.part.is_none() {
                assert_eq!(pieces[0].1.length, *size);
                continue;
            }
            let mut offset = 0;
            let mut volume = 0;
            for (n, (i, p)) in pieces.iter().enumerate() {
                assert_eq!(p.part, Some(n as u32 + 1));
                assert_eq!(p.offset, offset);
                assert!(
                    *i >= volume && (n == 0 || *i > volume),
                    "parts in volume order"
                );
                volume = *i;
                offset += p.length;
            }
            assert_eq!(offset, *size, "{digest}");
        }
    }

    #[test]
    fn first_fit_and_split() {
        let limit = 64 << 10;
        let fixed = 8192;
        let cap = limit - fixed;
        let blobs = vec![
            (d(1), 30_000),
            (d(2), 30_000),  // split: its first part fills volume 1
            (d(3), 100),     // first fit
            (d(4), 3 * cap), // split
            (d(5), 100),
        ];
        let v = plan_volumes(&blobs, fixed, Some(limit)).unwrap();
        check_plan(&blobs, &v, cap);
        assert_eq!(
            v[0][0],
            Piece {
                digest: d(1),
                part: None,
                offset: 0,
                length: 30_000
            }
        );
        assert_eq!(v[0][1].part, Some(1));
        assert!(v.iter().flatten().filter(|p| p.digest == d(4)).count() >= 3);
        for vol in &v[..v.len() - 1] {
            assert!(
                used(vol) > cap - cap / 100 - entry_cost(4096),
                "{}",
                used(vol)
            );
        }
    }

    /// Blobs of 60% of a volume each: first-fit alone gives one per volume, 40% empty. The
    /// plan uses the least number of volumes and fills all but the last.
    #[test]
    fn packing_is_tight() {
        let limit = 10 << 20;
        let fixed = 64 << 10;
        let cap = limit - fixed;
        let blobs: Vec<(Digest, u64)> = (0..17).map(|i| (d(i), cap * 6 / 10)).collect();
        let v = plan_volumes(&blobs, fixed, Some(limit)).unwrap();
        check_plan(&blobs, &v, cap);
        let total: u64 = blobs.iter().map(|(_, s)| entry_cost(*s)).sum();
        assert!(
            v.len() as u64 <= total.div_ceil(cap) + 1,
            "{} volumes",
            v.len()
        );
        for (i, vol) in v.iter().enumerate() {
            assert!(used(vol) <= cap, "volume {} over", i + 1);
            if i + 1 < v.len() {
                assert!(
                    used(vol) > cap - cap / 50,
                    "volume {} only {} of {cap}",
                    i + 1,
                    used(vol)
                );
            }
        }
    }

    #[test]
    fn too_small_is_an_error() {
        let err = plan_volumes(&[(d(1), 1)], 100_000, Some(50_000)).unwrap_err();
        assert!(matches!(err, BundleError::VolumeTooSmall { .. }), "{err}");
    }
}
