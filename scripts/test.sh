#!/usr/bin/env bash
# The test command: installs what the tests need (docker-registry, skopeo, zstd; only when
# missing), then cargo fmt --check, clippy with warnings as errors, and every cargo test.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT
cd "$AIRLIFT_ROOT"

ensure_prereqs zstd
log "cargo fmt --check"
cargo fmt --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
log "cargo test"
cargo test
