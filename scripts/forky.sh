#!/usr/bin/env bash
# Builds (once) and keeps current a minimal Debian forky chroot holding the real clients and
# consumers the integration tests judge airlift with: a current skopeo (1.19 or later: Debian
# bookworm's 1.9.3 cannot find Docker-format images in an OCI layout by name), crane (and its
# `crane registry serve`), oras, cosign, notation, podman, containerd, and Go with
# go-containerregistry's sources, from which it builds /opt/airlift-refreg/refreg (that registry
# with the OCI 1.1 referrers API on: scripts/refreg/main.go). The tests run
# these as `chroot ROOT PROGRAM ...`, on files placed inside ROOT.
#
# ROOT is $AIRLIFT_TEST_FORKY_ROOT (default /var/cache/airlift-test/forky). A finished ROOT is
# reused; packages added to FORKY_PACKAGES below are installed into it on the next run (the
# list is stamped in ROOT/.airlift-packages). Needs root (debootstrap, chroot) and the Debian
# mirror the host's apt already uses. Takes a few minutes the first time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT

ROOT="${AIRLIFT_TEST_FORKY_ROOT:-/var/cache/airlift-test/forky}"
SUITE="${AIRLIFT_TEST_FORKY_SUITE:-forky}"
# One line, sorted: the stamp compares it as a string.
FORKY_PACKAGES="ca-certificates containerd cosign crane golang-github-google-go-containerregistry-dev golang-go notation oras podman skopeo"
STAMP="$ROOT/.airlift-packages"
apt_opts=(-o Acquire::Check-Valid-Until=false -q)

# go-containerregistry's registry with the referrers API on, built from scripts/refreg/main.go
# with the chroot's Go and Debian's Go sources (no module downloads), rebuilt when the source
# changes.
REFREG_SRC="$AIRLIFT_ROOT/scripts/refreg/main.go"
REFREG_STAMP="$ROOT/opt/airlift-refreg/main.go"
build_refreg() { # ROOT
    mkdir -p "$1/opt/airlift-refreg/build"
    cp "$REFREG_SRC" "$1/opt/airlift-refreg/build/main.go"
    log "building the referrers registry (go-containerregistry) in $1"
    chroot "$1" env GO111MODULE=off GOPATH=/usr/share/gocode GOROOT=/usr/lib/go GOTELEMETRY=off \
        GOCACHE=/tmp/airlift-gocache HOME=/tmp \
        go build -o /opt/airlift-refreg/refreg /opt/airlift-refreg/build/main.go \
        || die "building the referrers registry in $1 failed"
    rm -rf "$1/tmp/airlift-gocache"
    mv "$1/opt/airlift-refreg/build/main.go" "$1/opt/airlift-refreg/main.go"
    rmdir "$1/opt/airlift-refreg/build"
}

if [[ -x "$ROOT/usr/bin/skopeo" && -f "$STAMP" && "$(cat "$STAMP")" == "$FORKY_PACKAGES" ]]; then
    if ! cmp -s "$REFREG_SRC" "$REFREG_STAMP" || [[ ! -x "$ROOT/opt/airlift-refreg/refreg" ]]; then
        [[ $(id -u) -eq 0 ]] || die "building in $ROOT needs root (chroot)"
        build_refreg "$ROOT"
    fi
    exit 0
fi
[[ $(id -u) -eq 0 ]] || die "building $ROOT needs root (debootstrap, chroot)"
export DEBIAN_FRONTEND=noninteractive

install_packages() { # ROOT LOG
    # A suite's Release file may be past its Valid-Until on a mirror snapshot.
    chroot "$1" apt-get "${apt_opts[@]}" update >>"$2" 2>&1
    # shellcheck disable=SC2086
    chroot "$1" apt-get "${apt_opts[@]}" install -y --no-install-recommends $FORKY_PACKAGES \
        >>"$2" 2>&1 || { tail -20 "$2" >&2; die "installing packages in $1 failed (log: $2)"; }
    chroot "$1" apt-get clean
    chroot "$1" skopeo --version
    echo "$FORKY_PACKAGES" >"$1/.airlift-packages"
}

if [[ -x "$ROOT/usr/bin/skopeo" ]]; then
    log "installing into $ROOT: $FORKY_PACKAGES"
    install_packages "$ROOT" "$ROOT.log"
    rm -f "$ROOT.log"
    build_refreg "$ROOT"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends debootstrap
fi

# The mirror the host's apt uses (deb822 sources first, then the one-line format).
mirror="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
if [[ -z "$mirror" ]]; then
    mirror="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
        /etc/apt/sources.list 2>/dev/null || true)"
fi
[[ -n "$mirror" ]] || die "cannot find the host's Debian mirror in its apt sources"

tmp="$ROOT.partial"
rm -rf "$tmp"
mkdir -p "$(dirname "$ROOT")"
log "debootstrap $SUITE into $tmp"
# bookworm's debootstrap has no script for forky; sid's is the one for every later suite.
debootstrap --variant=minbase "$SUITE" "$tmp" "$mirror" /usr/share/debootstrap/scripts/sid \
    >"$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; die "debootstrap failed (log: $tmp.log)"; }
install_packages "$tmp" "$tmp.log"
build_refreg "$tmp"
mv "$tmp" "$ROOT"
rm -f "$tmp.log"
