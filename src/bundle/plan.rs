//! Volume planning: which blob (or part of a blob) goes into which volume.
//!
//! The limit is on the *compressed* file. Layers are already gzip-compressed, so zstd will not
//! shrink them; the planner assumes no compression at all and budgets the tar stream so that
//! even zstd's worst case ([`compressed_bound`]) fits the limit. Tar headers and padding are
//! counted exactly, and the entries repeated in every volume (descriptor, `oci-layout`,
//! `index.json`, all manifests) are reserved in each volume first.
//!
//! Blobs are placed first-fit in image order, so an image's blobs tend to share a volume and
//! that volume's `index.json` can list it. Only a blob larger than a whole empty volume is
//! split: its first part fills what is left of the last volume, then it continues in new ones.

use crate::reference::Digest;

use super::BundleError;

/// Tar block size: every header is one block, every body is padded to whole blocks.
pub(crate) const BLOCK: u64 = 512;

/// Bytes a tar entry with `size` bytes of content takes: header plus padded body.
pub(crate) fn tar_entry_size(size: u64) -> u64 {
    BLOCK + size.div_ceil(BLOCK) * BLOCK
}

/// Bytes of the end-of-archive marker (two zero blocks).
pub(crate) const TAR_END: u64 = 2 * BLOCK;

/// An upper bound of the zstd output for `n` bytes of input, however incompressible.
///
/// zstd guarantees `ZSTD_compressBound(n) = n + n/256 + 64` for one frame; multithreaded
/// compression cuts the input into jobs of at least 512 KiB, each bounded the same way, hence
/// one extra 64 bytes per 512 KiB. 4 KiB more covers the frame header and checksum.
pub(crate) fn compressed_bound(n: u64) -> u64 {
    n + n / 256 + 64 * (n / (512 << 10) + 1) + 4096
}

/// The largest tar stream whose compressed bound fits `limit`.
pub(crate) fn tar_budget(limit: u64) -> u64 {
    // compressed_bound is monotonic: binary search the largest n with bound(n) <= limit.
    let (mut lo, mut hi) = (0u64, limit);
    if compressed_bound(0) > limit {
        return 0;
    }
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if compressed_bound(mid) <= limit {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
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

/// Smallest part worth starting in the leftover of a volume; below this the blob starts in a
/// new volume instead of leaving a sliver behind.
const MIN_LEFTOVER_PART: u64 = 4096;

/// Assigns `blobs` (digest and size, in image order, distinct) to volumes. `fixed` is the tar
/// bytes every volume spends on repeated entries (end marker included); `limit` the maximum
/// compressed size of a volume, or `None` for a single volume. Returns the pieces of each
/// volume, in order.
pub(crate) fn plan_volumes(
    blobs: &[(Digest, u64)],
    fixed: u64,
    limit: Option<u64>,
) -> Result<Vec<Vec<Piece>>, BundleError> {
    let Some(limit) = limit else {
        let pieces = blobs
            .iter()
            .map(|(d, size)| Piece {
                digest: d.clone(),
                part: None,
                offset: 0,
                length: *size,
            })
            .collect();
        return Ok(vec![pieces]);
    };
    let budget = tar_budget(limit);
    // A volume must hold its fixed entries and at least one block of blob data.
    let needed = fixed + tar_entry_size(BLOCK);
    if budget < needed {
        return Err(BundleError::VolumeTooSmall {
            limit,
            needed: compressed_bound(needed),
        });
    }
    let capacity = budget - fixed;
    let mut volumes: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut free: Vec<u64> = vec![capacity];
    for (digest, size) in blobs {
        let cost = tar_entry_size(*size);
        if cost <= capacity {
            let slot = match free.iter().position(|&f| f >= cost) {
                Some(i) => i,
                None => {
                    volumes.push(Vec::new());
                    free.push(capacity);
                    free.len() - 1
                }
            };
            free[slot] -= cost;
            volumes[slot].push(Piece {
                digest: digest.clone(),
                part: None,
                offset: 0,
                length: *size,
            });
            continue;
        }
        // Too big for any volume: split, filling the last volume's leftover first. Parts are
        // whole blocks so no space is lost to padding.
        let (mut offset, mut part) = (0u64, 1u32);
        let fits = |free: u64| free.saturating_sub(BLOCK) / BLOCK * BLOCK;
        if fits(*free.last().expect("one volume")) < MIN_LEFTOVER_PART {
            volumes.push(Vec::new());
            free.push(capacity);
        }
        while offset < *size {
            let last = free.len() - 1;
            let room = fits(free[last]);
            if room == 0 {
                volumes.push(Vec::new());
                free.push(capacity);
                continue;
            }
            let length = room.min(size - offset);
            free[last] -= tar_entry_size(length);
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
        pieces.iter().map(|p| tar_entry_size(p.length)).sum()
    }

    #[test]
    fn budget_respects_bound() {
        for limit in [5000u64, 10_000, 1 << 20, 700 << 20, 4 << 30, 25 << 30] {
            let b = tar_budget(limit);
            assert!(compressed_bound(b) <= limit);
            assert!(compressed_bound(b + 1) > limit);
            // The margin stays well under 1%.
            if limit >= 1 << 20 {
                assert!(b > limit / 100 * 99, "{limit}: {b}");
            }
        }
        assert_eq!(tar_budget(100), 0);
    }

    /// The bound must hold for what the writer's encoder really produces from incompressible
    /// data, at every thread count and at the levels worth using.
    #[test]
    fn bound_holds_for_real_zstd_output() {
        use rand::{RngCore, SeedableRng};
        use std::io::Write;
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for n in [0usize, 1000, 100_000, (1 << 20) + 3, 5 << 20] {
            let mut data = vec![0; n];
            rng.fill_bytes(&mut data);
            for (level, threads) in [(3, 1), (3, 2), (1, 4), (9, 2)] {
                let opts = crate::bundle::WriteOptions {
                    zstd_level: level,
                    threads,
                    ..Default::default()
                };
                let mut enc = crate::bundle::writer::encoder(Vec::new(), &opts).unwrap();
                enc.write_all(&data).unwrap();
                let out = enc.finish().unwrap().len() as u64;
                // Incompressible indeed: without a margin the volume would overflow.
                assert!(out > n as u64, "{n} bytes compressed to {out}");
                assert!(
                    out <= compressed_bound(n as u64),
                    "{n} -> {out}, level {level}"
                );
            }
        }
    }

    #[test]
    fn single_volume_without_limit() {
        let blobs = vec![(d(1), 10), (d(2), 1 << 40)];
        let v = plan_volumes(&blobs, 4096, None).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].len(), 2);
    }

    #[test]
    fn first_fit_and_split() {
        let limit = 64 << 10;
        let fixed = 8192;
        let cap = tar_budget(limit) - fixed;
        let blobs = vec![
            (d(1), 30_000),
            (d(2), 30_000),
            (d(3), 5_000),   // fits in volume 1's leftover (first fit)
            (d(4), 3 * cap), // split
            (d(5), 100),
        ];
        let v = plan_volumes(&blobs, fixed, Some(limit)).unwrap();
        for (i, vol) in v.iter().enumerate() {
            assert!(used(vol) <= cap, "volume {} over: {}", i + 1, used(vol));
            assert!(compressed_bound(used(vol) + fixed) <= limit);
        }
        assert_eq!(
            v[0].iter().map(|p| p.digest.clone()).collect::<Vec<_>>()[..2],
            [d(1), d(3)]
        );
        let parts: Vec<&Piece> = v.iter().flatten().filter(|p| p.digest == d(4)).collect();
        assert!(parts.len() >= 3);
        let mut offset = 0;
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(p.part, Some(i as u32 + 1));
            assert_eq!(p.offset, offset);
            offset += p.length;
        }
        assert_eq!(offset, 3 * cap);
        // Every blob placed exactly once.
        for (digest, _) in &blobs {
            let n = v
                .iter()
                .flatten()
                .filter(|p| &p.digest == digest && p.part.is_none())
                .count();
            assert_eq!(n, usize::from(*digest != d(4)));
        }
    }

    #[test]
    fn too_small_is_an_error() {
        let err = plan_volumes(&[(d(1), 1)], 100_000, Some(50_000)).unwrap_err();
        assert!(matches!(err, BundleError::VolumeTooSmall { .. }), "{err}");
    }
}
