#!/usr/bin/env bash
# The test command: installs what the tests need (docker-registry, skopeo, zstd, nginx, ip,
# GNU time, kill, script, unshare, and a current skopeo in a Debian chroot: scripts/forky.sh;
# only when missing), then cargo
# fmt --check, clippy with warnings as errors, and every cargo test, closing with the totals
# of all test binaries.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT
cd "$AIRLIFT_ROOT"

ensure_prereqs zstd nginx:nginx-light ip:iproute2 time:time kill:procps script:bsdutils unshare:util-linux
"$AIRLIFT_ROOT/scripts/forky.sh"
log "cargo fmt --check"
cargo fmt --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
log "cargo test"
out="$(make_tmpdir)/cargo-test.log"
cargo test 2>&1 | tee "$out"
# cargo's last "test result" line is the doc-tests' (often 0 tests): close with the totals.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$out"
