//! Reading entries of format-1 volumes in volume order, one decompression stream per volume.
//!
//! A format-1 volume is one zstd frame: an entry can only be reached by decompressing
//! everything before it. [`super::BundleStore`] does that from the volume's start for every
//! read, which is right for an occasional read and quadratic for a load that reads every blob.
//! [`Cursors`] keeps open readers per volume, parked after the last entry each read: a read of
//! a later entry continues from the nearest one (the entries in between are decompressed and
//! discarded, not hashed); only a read behind every parked reader starts a new pass. Reads of
//! one volume take turns, the waiting read of the earliest entry first, so concurrent readers
//! asking for entries in about the order of the volume ([`super::VolumeLayout`]) read it once.
//! The caller holds the volume while it reads an entry, so it should read small entries whole
//! and let go.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use super::BundleError;
use super::layout::VolumeLayout;
use super::reader::VolumeReader;

/// Readers kept parked per volume: one in step with the loader, one for a straggler.
const PARKED: usize = 2;

/// The parked readers of a set of format-1 volumes.
pub struct Cursors {
    volumes: HashMap<u32, Slot>,
    layout: VolumeLayout,
}

struct Slot {
    path: PathBuf,
    state: Mutex<SlotState>,
    turn: Condvar,
}

#[derive(Default)]
struct SlotState {
    /// Readers not in use, each with the index of the entry it last read.
    parked: Vec<(VolumeReader, usize)>,
    /// Entry indexes asked for and not served yet (how many times each).
    waiting: BTreeMap<usize, usize>,
    /// A read of this volume is under way.
    busy: bool,
}

impl Cursors {
    /// Cursors over `volumes` (number -> file), whose entry order is `layout`.
    pub fn new(volumes: HashMap<u32, PathBuf>, layout: VolumeLayout) -> Cursors {
        Cursors {
            volumes: volumes
                .into_iter()
                .map(|(n, path)| {
                    let slot = Slot {
                        path,
                        state: Mutex::default(),
                        turn: Condvar::new(),
                    };
                    (n, slot)
                })
                .collect(),
            layout,
        }
    }

    /// Index of entry `name` in volume `volume`, as recorded by the structural pass.
    pub fn position(&self, volume: u32, name: &str) -> Option<usize> {
        self.layout.position(volume, name)
    }

    /// Runs `read` on the content of entry `name` of volume `volume` (not hashed: the caller
    /// checks what it reads), holding that volume's stream meanwhile. Blocking.
    pub fn with_entry<R>(
        &self,
        volume: u32,
        name: &str,
        read: impl FnOnce(&mut dyn Read) -> std::io::Result<R>,
    ) -> Result<R, BundleError> {
        let slot = self
            .volumes
            .get(&volume)
            .ok_or_else(|| BundleError::InvalidInput(format!("volume {volume} was not given")))?;
        let at = self
            .position(volume, name)
            .ok_or_else(|| BundleError::MissingEntries {
                volume: slot.path.clone(),
                entries: vec![name.to_owned()],
            })?;
        let parked = {
            let mut st = slot.state.lock().expect("not poisoned");
            *st.waiting.entry(at).or_default() += 1;
            while st.busy || st.waiting.keys().next() != Some(&at) {
                st = slot.turn.wait(st).expect("not poisoned");
            }
            match st.waiting.get_mut(&at) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    st.waiting.remove(&at);
                }
            }
            st.busy = true;
            // The nearest reader before the entry; none: a new pass from the start.
            let nearest = (st.parked.iter().enumerate())
                .filter(|(_, (_, last))| *last < at)
                .max_by_key(|(_, (_, last))| *last)
                .map(|(i, _)| i);
            nearest.map(|i| st.parked.swap_remove(i).0)
        };
        let outcome = (|| {
            let mut reader = match parked {
                Some(r) => r,
                None => VolumeReader::open(&slot.path)?,
            };
            reader.seek_entry(name)?;
            let result =
                read(&mut reader.body()).map_err(|e| super::into_bundle_error(e, &slot.path));
            Ok::<_, BundleError>((reader, result))
        })();
        let mut st = slot.state.lock().expect("not poisoned");
        st.busy = false;
        let result = match outcome {
            // A reader that failed mid-entry is in an unknown place: it is not parked again.
            Ok((reader, Ok(r))) => {
                st.parked.push((reader, at));
                if st.parked.len() > PARKED {
                    let behind = (st.parked.iter().enumerate())
                        .min_by_key(|(_, (_, last))| *last)
                        .map(|(i, _)| i)
                        .expect("not empty");
                    st.parked.swap_remove(behind);
                }
                Ok(r)
            }
            Ok((_, Err(e))) | Err(e) => Err(e),
        };
        drop(st);
        slot.turn.notify_all();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{blob_name, testutil};

    #[test]
    fn entries_read_in_any_order_have_their_content() {
        let f = testutil::fixture(300_000);
        let volumes = f.write("release.tar.zst", None);
        let layout = super::super::check_layout(&volumes).unwrap();
        let cursors = Cursors::new(HashMap::from([(1, volumes[0].clone())]), layout);
        let mut blobs: Vec<_> = f
            .content
            .keys()
            .filter_map(|d| Some((cursors.position(1, &blob_name(d))?, d.clone())))
            .collect();
        blobs.sort();
        // In order, then backwards (each a new pass), then in order again.
        let order: Vec<_> = blobs
            .iter()
            .chain(blobs.iter().rev())
            .chain(blobs.iter())
            .collect();
        for (_, digest) in order {
            let got = cursors
                .with_entry(1, &blob_name(digest), |r| {
                    let mut v = Vec::new();
                    r.read_to_end(&mut v).map(|_| v)
                })
                .unwrap();
            assert_eq!(&got, &f.content[digest], "{digest}");
        }
    }
}
