//! The structural check `bundle load` runs before anything is pushed, and the layout of
//! format-1 volumes (format 2 is checked through its seek index, [`super::structure`]).
//!
//! A format-1 volume is one zstd frame read front to back, so the only way to know that it is
//! sane as a whole (no unsafe or duplicate entry, nothing the descriptor does not announce,
//! every announced entry present, nothing after the end of the archive, a complete frame) is to
//! read it through. This pass does that without reading blob content twice: every entry
//! *header* is checked, manifests, `index.json` and `oci-layout` (small) are read and checked,
//! and blob and part bodies are decompressed and discarded without being hashed. Their content
//! is checked by digest later, as the engine streams it to the registry.
//!
//! The pass also records where each entry sits in its volume, so the loader can ask for blobs
//! in volume order and read each volume once ([`super::cursor`]).

use std::collections::HashMap;
use std::path::PathBuf;

use super::BundleError;
use super::descriptor::Descriptor;
use super::reader::{EntryKind, VolumeReader};

/// What the structural pass learnt: the position of every entry in its volume.
#[derive(Debug, Default, Clone)]
pub struct VolumeLayout {
    /// Volume number -> entry name -> index of the entry in the volume (from 0).
    pub order: HashMap<u32, HashMap<String, usize>>,
}

impl VolumeLayout {
    /// Index of entry `name` in volume `volume`.
    pub fn position(&self, volume: u32, name: &str) -> Option<usize> {
        self.order.get(&volume)?.get(name).copied()
    }
}

/// Checks the structure of the volumes at `paths` (see the module doc). Any problem refuses
/// them all ([`BundleError::Refused`], every problem named); a volume of the bundle that was not
/// given is no problem here. Format-2 volumes are checked through their seek index
/// ([`super::check_structure`]) and have no layout: they are read at random.
pub fn check_layout(paths: &[PathBuf]) -> Result<VolumeLayout, BundleError> {
    if paths.is_empty() {
        return Err(BundleError::NoVolumes);
    }
    let mut problems: Vec<String> = Vec::new();
    let mut layout = VolumeLayout::default();
    let mut reference: Option<Descriptor> = None;
    for path in paths {
        let reader = match VolumeReader::open(path) {
            Ok(r) => r,
            Err(e) => {
                problems.push(crate::transfer::error_chain(&e));
                continue;
            }
        };
        let d = reader.descriptor().clone();
        if let Some(r) = &reference {
            if d.bundle_id != r.bundle_id {
                problems.push(
                    BundleError::MixedBundles {
                        volume: path.clone(),
                        found: d.bundle_id.clone(),
                        expected: r.bundle_id.clone(),
                    }
                    .to_string(),
                );
                continue;
            }
            let same = Descriptor {
                volume: r.volume,
                ..d.clone()
            };
            if same != *r {
                problems.push(format!(
                    "{}: descriptor differs from the other volumes' although the bundle id is the same",
                    path.display()
                ));
                continue;
            }
        } else {
            reference = Some(d.clone());
        }
        if layout.order.contains_key(&d.volume) {
            problems.push(format!(
                "volume {} ({}) was given twice",
                d.volume,
                path.display()
            ));
            continue;
        }
        // Format 2: through the seek index, no blob decompressed.
        if d.format_version != 1 {
            if let Err(e) = super::structure::check_structure(path) {
                // A full read names what is wrong as an entry (an unsafe name, a duplicate)
                // where it can: that says more than the index's view of the same damage.
                let detail = entries_of(reader).err().unwrap_or(e);
                problems.push(crate::transfer::error_chain(&detail));
            }
            continue;
        }
        match entries_of(reader) {
            Ok(order) => {
                layout.order.insert(d.volume, order);
            }
            Err(e) => problems.push(crate::transfer::error_chain(&e)),
        }
    }
    if problems.is_empty() {
        Ok(layout)
    } else {
        Err(BundleError::Refused { problems })
    }
}

/// Reads one volume through: small structured entries checked, bodies skipped unhashed.
fn entries_of(mut reader: VolumeReader) -> Result<HashMap<String, usize>, BundleError> {
    let mut order = HashMap::new();
    let mut n = 0;
    while let Some(mut entry) = reader.next_entry()? {
        match entry.kind() {
            EntryKind::Manifest { .. } | EntryKind::Index | EntryKind::OciLayout => {
                entry.verify()?;
            }
            // Skipped by the next `next_entry`: decompressed, not hashed.
            EntryKind::Blob { .. } | EntryKind::BlobPart { .. } => {}
        }
        order.insert(entry.name().to_owned(), n);
        n += 1;
    }
    reader.finish()?;
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::testutil;

    #[test]
    fn records_every_entry_and_refuses_a_truncated_volume() {
        let f = testutil::fixture(300_000);
        let volumes = f.write("release.tar.zst", Some(128 << 10));
        // Format 2 is read at random: checked through its index, no layout.
        assert!(check_layout(&volumes).unwrap().order.is_empty());
        // Format 1 (the previous release's bundle): every entry's position recorded.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/format1");
        let old = [1, 2].map(|n| dir.join(format!("format1.00{n}.tar.zst")));
        let layout = check_layout(&old).unwrap();
        assert_eq!(layout.order.len(), 2);
        assert!(layout.position(1, super::super::OCI_LAYOUT_NAME).is_some());
        let bytes = std::fs::read(&volumes[0]).unwrap();
        std::fs::write(&volumes[0], &bytes[..bytes.len() - 20]).unwrap();
        let err = check_layout(&volumes).unwrap_err();
        assert!(matches!(err, BundleError::Refused { .. }), "{err}");
        assert!(
            err.to_string().contains(&volumes[0].display().to_string()),
            "{err}"
        );
    }
}
