//! The one integration-test binary of airlift (one binary so the crate links once): real
//! `docker-registry` processes on loopback, images from a deterministic generator, and
//! `skopeo` as the independent judge.
//!
//! `support` holds the harness (some helpers exist for other test modules and later tests,
//! hence the `dead_code` allowance there); `harness` tests the harness itself; `registry`
//! tests the registry client; `sync` tests `airlift mirror sync` end to end; `bundle` tests
//! the bundle commands (create, load, verify, inspect, inventory) end to end; `proxy_faults`
//! tests the fault-injection proxy; `tls` and `tokenauth` test TLS, login and token auth
//! against real registries; `faults` and `kill` test resilience: sync under injected faults,
//! and killed or interrupted runs resuming; `disk` tests the free-space check; `operator`
//! tests what an operator sees when things are not perfect (quiet runs, typos, `--json`, pipes).

#[allow(dead_code)]
mod support;

mod aliases;
mod bundle;
mod disk;
mod faults;
mod harness;
mod inventory;
mod kill;
mod operator;
mod proxy_faults;
mod registry;
mod sync;
mod tls;
mod tokenauth;
