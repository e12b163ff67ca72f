#!/usr/bin/env bash
# The main job end to end on this machine: throwaway registries on loopback, the small
# generated image set pushed to one, `airlift mirror sync` to another, the JSON report
# printed, and one mirrored image checked byte for byte with skopeo; then the air-gap way:
# `airlift bundle create` of the same list, `bundle verify`, and `bundle load` into a third
# ("site") registry, checked the same way.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT
cd "$AIRLIFT_ROOT"

ensure_prereqs
log "building airlift and the image generator ($AIRLIFT_PROFILE)"
cargo build --profile "$AIRLIFT_PROFILE" --bin airlift --example seed

start_registry
SRC="$REGISTRY_ADDR"
start_registry
DST="$REGISTRY_ADDR"
work="$(make_tmpdir)"

log "seeding $SRC with the small generated set"
"$BIN_DIR/examples/seed" --registry "$SRC" --set small --list-out "$work/images.txt"
cat "$work/images.txt"

log "airlift mirror sync --list images.txt --to $DST/mirror --json"
rc=0
"$BIN_DIR/airlift" mirror sync --list "$work/images.txt" --to "$DST/mirror" --json \
    --insecure-registry "$SRC" --insecure-registry "$DST" >"$work/report.json" || rc=$?
log "report (exit code $rc):"
cat "$work/report.json"
echo
[[ $rc -eq 0 ]] || die "airlift mirror sync exited with $rc"

first="$(head -n1 "$work/images.txt")"
path="${first#"$SRC"/}"
src_sha="$(manifest_sha "$first")" || die "cannot inspect $first"
dst_sha="$(manifest_sha "$DST/mirror/$path")" || die "cannot inspect $DST/mirror/$path: not mirrored"
log "source      $first: sha256:$src_sha"
log "destination $DST/mirror/$path: sha256:$dst_sha"
[[ "$src_sha" == "$dst_sha" ]] || die "digests differ"
log "mirror sync OK: every image mirrored; $path is byte-for-byte identical"

start_registry
SITE="$REGISTRY_ADDR"
log "airlift bundle create --list images.txt -o release.tar.zst, then bundle verify"
"$BIN_DIR/airlift" bundle create --list "$work/images.txt" -o "$work/release.tar.zst" \
    --insecure-registry "$SRC" --progress plain
"$BIN_DIR/airlift" bundle inspect "$work/release.tar.zst"
"$BIN_DIR/airlift" bundle verify "$work/release.tar.zst"
log "airlift bundle load release.tar.zst --to $SITE/site"
"$BIN_DIR/airlift" bundle load "$work/release.tar.zst" --to "$SITE/site" \
    --insecure-registry "$SITE" --progress plain
site_sha="$(manifest_sha "$SITE/site/$path")" || die "cannot inspect $SITE/site/$path: not loaded"
log "site        $SITE/site/$path: sha256:$site_sha"
[[ "$src_sha" == "$site_sha" ]] || die "digests differ after bundle load"
log "demo OK: mirrored and carried through a bundle; $path is byte-for-byte identical"
