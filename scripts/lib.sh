# shellcheck shell=bash
# Shared helpers for scripts/demo.sh, scripts/test.sh and bench/bench.sh: installing the
# prerequisites, free loopback ports, throwaway docker-registry instances and cleanup.
# Source it, then `trap cleanup EXIT`. Everything listens on 127.0.0.1 only.

AIRLIFT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_TARGET="${CARGO_TARGET_DIR:-$AIRLIFT_ROOT/target}"
# Cargo profile of the binaries demo and bench build: release, or dev for a quick check of
# the scripts themselves (AIRLIFT_PROFILE=dev).
AIRLIFT_PROFILE="${AIRLIFT_PROFILE:-release}"
if [[ "$AIRLIFT_PROFILE" == dev ]]; then BIN_DIR="$CARGO_TARGET/debug"; else BIN_DIR="$CARGO_TARGET/$AIRLIFT_PROFILE"; fi
_STARTED_PIDS=()

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Makes cargo reachable in non-login shells (CI, sudo).
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# ensure_prereqs [EXTRA...]: installs docker-registry and skopeo (and the extras: a package
# whose program has the package's name, or PROGRAM:PACKAGE) with apt-get when missing. Needs
# root for the install; does nothing when everything is present.
ensure_prereqs() {
    local missing=()
    local item
    for item in docker-registry skopeo "$@"; do
        command -v "${item%%:*}" >/dev/null 2>&1 || missing+=("${item##*:}")
    done
    if ((${#missing[@]})); then
        if [[ $(id -u) -ne 0 ]]; then
            die "missing ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}' (or run this script as root)"
        fi
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    fi
    for item in docker-registry skopeo "$@"; do
        command -v "${item%%:*}" >/dev/null 2>&1 || die "${item%%:*} is still missing after apt-get install"
    done
}

# make_tmpdir: prints a new temporary directory, removed by cleanup. It is usually called
# as `dir=$(make_tmpdir)`, in a subshell, so the path is recorded in a file, not a variable.
_TMP_LIST="$(mktemp)"
make_tmpdir() {
    local dir
    dir="$(mktemp -d "${TMPDIR:-/tmp}/airlift.XXXXXX")"
    echo "$dir" >>"$_TMP_LIST"
    echo "$dir"
}

# free_port: prints a loopback port nothing listens on right now (random in 20000-59999).
free_port() {
    local port i
    for i in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# http_ok PORT PATH: true when GET http://127.0.0.1:PORT/PATH answers 200.
http_ok() {
    local line
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
    IFS= read -r line <&3 || true
    exec 3>&- 3<&-
    [[ "$line" == *" 200"* ]]
}

# start_registry: starts docker-registry on 127.0.0.1 with a fresh storage dir and waits
# until GET /v2/ answers 200. Sets REGISTRY_ADDR (127.0.0.1:PORT), REGISTRY_STORAGE and
# REGISTRY_PID. Retries with another port when the registry does not come up.
start_registry() {
    local attempt dir port pid i
    for attempt in 1 2 3 4 5; do
        dir="$(make_tmpdir)"
        port="$(free_port)"
        mkdir -p "$dir/storage"
        cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
        docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
        pid=$!
        _STARTED_PIDS+=("$pid")
        for i in $(seq 1 100); do
            if http_ok "$port" /v2/; then
                REGISTRY_ADDR="127.0.0.1:$port"
                REGISTRY_STORAGE="$dir/storage"
                REGISTRY_PID="$pid"
                log "registry $REGISTRY_ADDR (storage $REGISTRY_STORAGE)"
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        log "registry on port $port did not start (attempt $attempt):"
        cat "$dir/registry.log" >&2 || true
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    die "docker-registry did not start"
}

# skopeo_policy: prints the path of a permissive signature policy (the host's
# /etc/containers/policy.json may be missing or strict).
skopeo_policy() {
    local dir
    dir="$(make_tmpdir)"
    echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$dir/policy.json"
    echo "$dir/policy.json"
}

# manifest_sha REF: sha256 of the raw manifest at docker://REF (plain HTTP allowed).
manifest_sha() {
    skopeo inspect --raw --tls-verify=false "docker://$1" | sha256sum | cut -d' ' -f1
}

# now: seconds since the epoch with nanoseconds.
now() { date +%s.%N; }

# cleanup: stops the registries this shell started and removes its temporary directories.
cleanup() {
    local pid dir
    for pid in "${_STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -f "$_TMP_LIST" ]]; then
        while IFS= read -r dir; do
            [[ -n "$dir" && -d "$dir" ]] && rm -rf "$dir"
        done <"$_TMP_LIST"
        rm -f "$_TMP_LIST"
    fi
}
