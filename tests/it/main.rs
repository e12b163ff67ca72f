//! The one integration-test binary of airlift (one binary so the crate links once): real
//! `docker-registry` processes on loopback, images from a deterministic generator, and
//! `skopeo` as the independent judge.
//!
//! `support` holds the harness (some helpers exist for other test modules and later tests,
//! hence the `dead_code` allowance there); `harness` tests the harness itself; `registry`
//! tests the registry client; `sync` tests `airlift mirror sync` end to end; `bundle` tests
//! the bundle commands (create, load, verify, inspect, inventory) end to end; `load` tests
//! `bundle load` as the one engine (concurrent reads, format-1 bundles of the previous
//! release); `proxy_faults` tests the fault-injection proxy; `tls` and `tokenauth` test TLS, login and token auth
//! against real registries; `faults` and `kill` test resilience: sync under injected faults,
//! and killed or interrupted runs resuming; `disk` tests the free-space check; `siteconfig`
//! tests `mirror config` with containerd and podman pulling through the mirror; `hostile`
//! feeds crafted bundles, lists and a hostile registry to the binary under memory and time
//! limits; `memory` checks that peak RSS stays flat with a large blob; `referrers` carries signatures and SBOMs judged by cosign, notation and oras;
//! `conformance` runs one scenario against the registry set-ups users meet (proxies, CDNs,
//! other servers); `addresses` runs registries on a network namespace's non-loopback and IPv6
//! addresses; `operator` tests what an operator sees when things are not perfect (quiet
//! runs, typos, `--json`, pipes); `messages` the lines said when the network or a registry
//! misbehaves (causes grouped, retries, colour, DNS); `serve` pulls from `bundle serve` with
//! skopeo and podman.

#[allow(dead_code)]
mod support;

mod addresses;
mod aliases;
mod bundle;
mod conformance;
mod disk;
mod faults;
mod harness;
mod hostile;
mod inventory;
mod kill;
mod load;
mod memory;
mod messages;
mod operator;
mod proxy_faults;
mod referrers;
mod registry;
mod serve;
mod siteconfig;
mod sync;
mod tls;
mod tokenauth;
