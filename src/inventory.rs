//! TEMPORARY stub until the inventory branch lands.
#![allow(missing_docs, dead_code)]
use crate::reference::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
pub struct Inventory {
    pub blobs: BTreeMap<Digest, u64>,
    pub manifests: Vec<Digest>,
}
impl Inventory {
    pub fn read(_p: &Path) -> Result<Inventory, crate::bundle::BundleError> {
        unimplemented!()
    }
    pub fn write(&self, _p: &Path) -> Result<(), crate::bundle::BundleError> {
        unimplemented!()
    }
}
pub fn exclusions(_i: &[Inventory]) -> BTreeMap<Digest, u64> {
    BTreeMap::new()
}
pub fn exclusions_from_bundles(
    _v: &[PathBuf],
) -> Result<BTreeMap<Digest, u64>, crate::bundle::BundleError> {
    Ok(BTreeMap::new())
}
pub async fn take(
    _c: &crate::registry::RegistryClient,
    _r: &str,
    _p: &str,
    _j: usize,
) -> Result<Inventory, crate::bundle::BundleError> {
    unimplemented!()
}
