//! The one integration-test binary of airlift (one binary so the crate links once): real
//! `docker-registry` processes on loopback, images from a deterministic generator, and
//! `skopeo` as the independent judge.
//!
//! `support` holds the harness (some helpers exist for other test modules and later tests,
//! hence the `dead_code` allowance there); `harness` tests the harness itself; `registry`
//! tests the registry client; `sync` tests `airlift mirror sync` end to end; `bundle` tests
//! the bundle commands (create, load, verify, inspect, inventory) end to end; `proxy_faults`
//! tests the fault-injection proxy.

#[allow(dead_code)]
mod support;

mod bundle;
mod harness;
mod inventory;
mod proxy_faults;
mod registry;
mod sync;
