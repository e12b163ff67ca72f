//! airlift moves container images across an air gap.
//!
//! The library has no user interface: it reads image lists ([`imagelist`]), maps them onto a
//! destination ([`mapping`]), talks to registries ([`registry`]) and copies content through one
//! plan/execute engine ([`transfer`]), writes and reads content bundles ([`bundle`]), and
//! takes inventories of site registries for differential bundles ([`inventory`]), and writes
//! the configuration that makes a site's runtimes pull from the mirror ([`siteconfig`]), and
//! serves a bundle as a read-only registry ([`serve`]).
//! Progress is reported through [`report::Reporter`]; the `airlift` binary supplies terminal
//! and JSON front ends.

pub mod bundle;
pub mod credentials;
pub mod escape;
pub mod fsutil;
pub mod imagelist;
pub mod inventory;
pub mod mapping;
pub mod policy;
pub mod reference;
pub mod registry;
pub mod report;
pub mod serve;
pub mod siteconfig;
pub mod transfer;

pub use reference::{Digest, ImageRef, Platform};
