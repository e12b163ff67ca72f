#!/usr/bin/env bash
# Installs a current skopeo (Debian forky's, 1.19 or later) into a minimal Debian chroot,
# for the bundle interop test. Debian bookworm's skopeo 1.9.3 (containers/image 5.23) looks
# a name up in an OCI layout's index.json only among OCI media types, so it cannot find the
# Docker-format images a bundle stores verbatim; containers/image 5.35 and later can. The
# tests run this skopeo as `chroot ROOT skopeo ...` on layouts unpacked inside ROOT.
#
# ROOT is $AIRLIFT_TEST_MODERN_SKOPEO_ROOT (default /var/cache/airlift-test/skopeo-forky);
# a finished ROOT is reused. Needs root (debootstrap, chroot) and the Debian mirror the host's
# apt already uses. Takes about a minute the first time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT

ROOT="${AIRLIFT_TEST_MODERN_SKOPEO_ROOT:-/var/cache/airlift-test/skopeo-forky}"
SUITE="${AIRLIFT_TEST_MODERN_SKOPEO_SUITE:-forky}"

if [[ -x "$ROOT/usr/bin/skopeo" ]]; then
    exit 0
fi
[[ $(id -u) -eq 0 ]] || die "building $ROOT needs root (debootstrap, chroot)"
export DEBIAN_FRONTEND=noninteractive
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
# A suite's Release file may be past its Valid-Until on a mirror snapshot.
apt_opts=(-o Acquire::Check-Valid-Until=false -q)
chroot "$tmp" apt-get "${apt_opts[@]}" update >>"$tmp.log" 2>&1
chroot "$tmp" apt-get "${apt_opts[@]}" install -y --no-install-recommends skopeo \
    >>"$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; die "installing skopeo in $tmp failed"; }
chroot "$tmp" apt-get clean
chroot "$tmp" skopeo --version
mv "$tmp" "$ROOT"
rm -f "$tmp.log"
