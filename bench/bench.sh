#!/usr/bin/env bash
# Benchmark: airlift against skopeo on the same generated release-sized image set, all on
# loopback registries. BENCH_SCALE (default 1.0, ~600 MB) shrinks or grows the set,
# BENCH_SET picks it (release: 15 images sharing base layers, the default; release-like:
# 14 images, ~650 MB, little sharing), BENCH_BIG_LAYER_MIB (default 0: none) adds an image
# with one layer of that many MiB, BENCH_JOBS (default 8) is airlift's --jobs, BENCH_AIRLIFT
# names another airlift binary to measure (default: the one this script builds),
# BENCH_SECTIONS (default "mirror-sync") picks the sections to run: mirror-sync, bundle, serve
# (skopeo pulling from `airlift bundle serve`), longhaul (the source behind examples/faultproxy
# as a slow, distant link). Every section reports wall time and the peak RSS of airlift and of
# its peer (GNU time's maximum resident set size); the bundle section also the disk airlift's
# create takes at its peak against the bundle's size. Results go to stdout and
# bench/out/results.txt.
#
# Each section is a function bench_<name> (dashes become underscores) that appends lines to
# the results: run each side with `measure LABEL CMD...` (wall seconds, CPU seconds and
# peak RSS in MEASURED_*), and report with `result`.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
trap cleanup EXIT
cd "$AIRLIFT_ROOT"

BENCH_SCALE="${BENCH_SCALE:-1.0}"
BENCH_JOBS="${BENCH_JOBS:-8}"
BENCH_SECTIONS="${BENCH_SECTIONS:-mirror-sync}"
BENCH_SET="${BENCH_SET:-release}"
BENCH_BIG_LAYER_MIB="${BENCH_BIG_LAYER_MIB:-0}"
# BENCH_AIRLIFT: another airlift binary to measure (e.g. an older build, for before/after).
AIRLIFT="${BENCH_AIRLIFT:-$BIN_DIR/airlift}"
OUT_DIR="$AIRLIFT_ROOT/bench/out"
RESULTS="$OUT_DIR/results.txt"
mkdir -p "$OUT_DIR"

result() {
    echo "$*"
    echo "$*" >>"$RESULTS"
}

# cpu_of PID: CPU seconds (user + system) a process has used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# cpu_delta BEFORE AFTER: difference of two cpu_of readings.
cpu_delta() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# elapsed START END: seconds between two `now` readings, 3 decimals.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# ratio A B: A / B, 2 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# measure LABEL CMD...: runs CMD under GNU time (its output and exit status are CMD's) and
# sets MEASURED_S (wall seconds), MEASURED_CPU (user + system seconds) and MEASURED_RSS
# (peak resident set size in MiB). The report is kept in $OUT_DIR/LABEL.time. What earlier
# steps left dirty in the page cache is written out first (`sync`), so that neither side pays
# for the other's writeback.
measure() {
    local label="$1" t0 t1 rc=0
    shift
    sync
    t0="$(now)"
    /usr/bin/time -f '%U %S %M' -o "$OUT_DIR/$label.time" "$@" || rc=$?
    t1="$(now)"
    MEASURED_S="$(elapsed "$t0" "$t1")"
    read -r MEASURED_CPU MEASURED_RSS < <(tail -n 1 "$OUT_DIR/$label.time" |
        awk '{ printf "%.2f %.0f\n", $1 + $2, $3 / 1024 }')
    return "$rc"
}

# verify_copies LIST DEST...: the first, middle and last listed images have the source's
# manifest digest at each DEST (REGISTRY/PREFIX), under their last path component (skopeo
# sync from a YAML source keeps only that, so airlift runs with --flatten to match).
verify_copies() {
    local list="$1"
    shift
    local n ref path src_sha dest dest_sha i
    n="$(wc -l <"$list")"
    for i in 1 $(((n + 1) / 2)) "$n"; do
        ref="$(sed -n "${i}p" "$list")"
        path="${ref##*/}"
        src_sha="$(manifest_sha "$ref")" || die "cannot inspect $ref"
        for dest in "$@"; do
            dest_sha="$(manifest_sha "$dest/$path")" || die "cannot inspect $dest/$path"
            [[ "$dest_sha" == "$src_sha" ]] || die "$dest/$path differs from $ref"
        done
        log "verified $path: sha256:$src_sha at $*"
    done
}

bench_mirror_sync() {
    start_registry
    local to_airlift="$REGISTRY_ADDR" airlift_pid="$REGISTRY_PID"
    start_registry
    local to_skopeo="$REGISTRY_ADDR" skopeo_pid="$REGISTRY_PID"
    local airlift_s skopeo_s rc=0 s0 d0 a_src a_dst k_src k_dst a_cpu k_cpu a_rss k_rss

    log "airlift mirror sync -> $to_airlift/bench (--flatten --jobs $BENCH_JOBS)"
    s0="$(cpu_of "$SRC_PID")" d0="$(cpu_of "$airlift_pid")"
    measure airlift-sync "$AIRLIFT" mirror sync --list "$WORK/images.txt" --to "$to_airlift/bench" \
        --flatten --jobs "$BENCH_JOBS" --json --insecure-registry "$SRC" --insecure-registry "$to_airlift" \
        >"$OUT_DIR/airlift-report.json" 2>"$OUT_DIR/airlift.log" || rc=$?
    [[ $rc -eq 0 ]] || die "airlift mirror sync exited with $rc (report: $OUT_DIR/airlift-report.json)"
    airlift_s="$MEASURED_S" a_cpu="$MEASURED_CPU" a_rss="$MEASURED_RSS"
    a_src="$(cpu_delta "$s0" "$(cpu_of "$SRC_PID")")" a_dst="$(cpu_delta "$d0" "$(cpu_of "$airlift_pid")")"

    log "skopeo sync --all --src yaml --dest docker -> $to_skopeo/bench"
    s0="$(cpu_of "$SRC_PID")" d0="$(cpu_of "$skopeo_pid")"
    measure skopeo-sync skopeo --policy "$POLICY" sync --all --src yaml --dest docker --dest-tls-verify=false \
        "$WORK/skopeo.yaml" "$to_skopeo/bench" >"$OUT_DIR/skopeo.log" 2>&1 \
        || die "skopeo sync failed: see $OUT_DIR/skopeo.log"
    skopeo_s="$MEASURED_S" k_cpu="$MEASURED_CPU" k_rss="$MEASURED_RSS"
    k_src="$(cpu_delta "$s0" "$(cpu_of "$SRC_PID")")" k_dst="$(cpu_delta "$d0" "$(cpu_of "$skopeo_pid")")"

    verify_copies "$WORK/images.txt" "$to_airlift/bench" "$to_skopeo/bench"
    result "mirror sync ($SET_DESC, jobs $BENCH_JOBS):" \
        "airlift: $airlift_s s, skopeo: $skopeo_s s," \
        "ratio airlift/skopeo: $(ratio "$airlift_s" "$skopeo_s");" \
        "peak RSS airlift $a_rss MiB, skopeo $k_rss MiB"
    # On loopback the registries do most of the work; with $(nproc) cores, the CPU seconds
    # of all three processes divided by the cores is the floor no client can beat.
    result "  cpu seconds: airlift run: client $a_cpu, source registry $a_src, target registry $a_dst" \
        "(floor $(awk -v a="$a_cpu" -v b="$a_src" -v c="$a_dst" -v n="$(nproc)" 'BEGIN { printf "%.2f", (a + b + c) / n }') s);" \
        "skopeo run: client $k_cpu, source registry $k_src, target registry $k_dst"
}

# start_faultproxy UPSTREAM ARG...: starts examples/faultproxy in front of UPSTREAM with the
# given link/fault arguments; sets PROXY_ADDR (127.0.0.1:PORT), PROXY_PID and PROXY_ERR (its
# stderr, where it prints its counters when stopped).
start_faultproxy() {
    local upstream="$1" dir i
    shift
    dir="$(make_tmpdir)"
    "$BIN_DIR/examples/faultproxy" --listen 127.0.0.1:0 --upstream "$upstream" "$@" \
        >"$dir/out" 2>"$dir/err" &
    PROXY_PID=$!
    PROXY_ERR="$dir/err"
    _STARTED_PIDS+=("$PROXY_PID")
    for i in $(seq 1 100); do
        PROXY_ADDR="$(sed -n 's/^listening on //p' "$dir/out")"
        [[ -n "$PROXY_ADDR" ]] && return 0
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.05
    done
    die "faultproxy did not start: $(cat "$dir/err")"
}

# longhaul: the source registry behind examples/faultproxy as a long-haul link
# (BENCH_LATENCY_MS one way, default 20; BENCH_CONN_RATE per connection, default 10M;
# BENCH_TOTAL_RATE in all, default 80M), then airlift mirror sync and skopeo sync --all
# through it, one after the other, each to its own empty registry.
bench_longhaul() {
    local latency="${BENCH_LATENCY_MS:-20}" conn="${BENCH_CONN_RATE:-10M}"
    local total="${BENCH_TOTAL_RATE:-80M}"
    start_faultproxy "$SRC" --latency-ms "$latency" --conn-rate "$conn" --total-rate "$total"
    local via="$PROXY_ADDR"
    log "long-haul link $via -> $SRC: ${latency} ms each way, $conn per connection, $total in all"
    sed "s/$SRC/$via/" "$WORK/images.txt" >"$WORK/longhaul-images.txt"
    sed "s/$SRC/$via/" "$WORK/skopeo.yaml" >"$WORK/longhaul-skopeo.yaml"
    start_registry
    local to_airlift="$REGISTRY_ADDR"
    start_registry
    local to_skopeo="$REGISTRY_ADDR"
    local airlift_s skopeo_s rc=0 a_rss k_rss

    log "airlift mirror sync via $via -> $to_airlift/bench (--flatten --jobs $BENCH_JOBS)"
    measure longhaul-airlift "$AIRLIFT" mirror sync --list "$WORK/longhaul-images.txt" --to "$to_airlift/bench" \
        --flatten --jobs "$BENCH_JOBS" --json --insecure-registry "$via" \
        --insecure-registry "$to_airlift" >"$OUT_DIR/longhaul-airlift-report.json" || rc=$?
    [[ $rc -eq 0 ]] || die "airlift mirror sync exited with $rc (report: $OUT_DIR/longhaul-airlift-report.json)"
    airlift_s="$MEASURED_S" a_rss="$MEASURED_RSS"

    log "skopeo sync --all via $via -> $to_skopeo/bench"
    measure longhaul-skopeo skopeo --policy "$POLICY" sync --all --src yaml --dest docker --dest-tls-verify=false \
        "$WORK/longhaul-skopeo.yaml" "$to_skopeo/bench" >"$OUT_DIR/longhaul-skopeo.log" 2>&1 \
        || die "skopeo sync failed: see $OUT_DIR/longhaul-skopeo.log"
    skopeo_s="$MEASURED_S" k_rss="$MEASURED_RSS"

    verify_copies "$WORK/images.txt" "$to_airlift/bench" "$to_skopeo/bench"
    kill -INT "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    log "$(tail -n 1 "$PROXY_ERR")"
    result "long haul (${latency} ms one way, $conn/conn, $total total; $SET_DESC," \
        "jobs $BENCH_JOBS): airlift: $airlift_s s, skopeo: $skopeo_s s," \
        "ratio airlift/skopeo: $(ratio "$airlift_s" "$skopeo_s")" \
        "(airlift $(awk -v a="$airlift_s" -v b="$skopeo_s" 'BEGIN { printf "%.1f", b / a }')x faster; aim >= 4x);" \
        "peak RSS airlift $a_rss MiB, skopeo $k_rss MiB"
}

# file_bytes FILE...: their total size in bytes.
file_bytes() { stat -c %s "$@" | awk '{ s += $1 } END { printf "%d", s }'; }


# The bundle section: making an air-gap archive of the set and loading it into an empty
# registry, airlift against the skopeo way (sync to a dir, tar | zstd; unpack, sync to a
# registry). Both archives use zstd level 3 on all cores. airlift's bundle must not exceed
# the set's unique blob bytes by more than 1 % (blobs stored once, tar headers, manifests).
bench_bundle() {
    local dir t0 t1 rc=0 create_a create_s load_a load_s size_a size_s limit
    local create_a_rss create_k_rss load_a_rss load_k_rss
    dir="$(make_tmpdir)"

    log "airlift bundle create -> $dir/airlift.tar.zst (--jobs $BENCH_JOBS)"
    # The disk the create takes at its peak: the output directory (volumes and .partial files)
    # plus airlift's cache (where older versions staged), sampled every 50 ms.
    local disk_peak_file="$OUT_DIR/bundle-create-disk-peak"
    echo 0 >"$disk_peak_file"
    (
        peak=0
        while :; do
            used=$(du -sbc "$dir" "${XDG_CACHE_HOME:-$HOME/.cache}/airlift" 2>/dev/null | tail -n 1 | cut -f1)
            if ((used > peak)); then peak=$used; echo "$peak" >"$disk_peak_file"; fi
            sleep 0.05
        done
    ) &
    local disk_watch=$!
    measure bundle-create-airlift "$AIRLIFT" bundle create --list "$WORK/images.txt" -o "$dir/airlift.tar.zst" \
        --jobs "$BENCH_JOBS" --json --progress none --insecure-registry "$SRC" \
        >"$OUT_DIR/bundle-create-report.json" 2>"$OUT_DIR/bundle-create.log" || rc=$?
    [[ $rc -eq 0 ]] || die "airlift bundle create exited with $rc (see $OUT_DIR/bundle-create.log)"
    create_a="$MEASURED_S" create_a_rss="$MEASURED_RSS"
    kill "$disk_watch" 2>/dev/null || true
    wait "$disk_watch" 2>/dev/null || true
    local disk_peak
    disk_peak="$(cat "$disk_peak_file")"

    log "skopeo sync --all --src yaml --dest dir, then tar | zstd -T0 -3 -> $dir/skopeo.tar.zst"
    t0="$(now)"
    measure bundle-create-skopeo skopeo --policy "$POLICY" sync --all --src yaml --dest dir "$WORK/skopeo.yaml" \
        "$dir/skopeo-dir" >"$OUT_DIR/skopeo-bundle-create.log" 2>&1 \
        || die "skopeo sync to a dir failed: see $OUT_DIR/skopeo-bundle-create.log"
    create_k_rss="$MEASURED_RSS"
    tar -C "$dir/skopeo-dir" -cf - . | zstd -q -T0 -3 -o "$dir/skopeo.tar.zst" \
        || die "tar | zstd failed"
    t1="$(now)"
    create_s="$(elapsed "$t0" "$t1")"
    rm -rf "$dir/skopeo-dir"

    start_registry
    local to_airlift="$REGISTRY_ADDR" airlift_pid="$REGISTRY_PID"
    start_registry
    local to_skopeo="$REGISTRY_ADDR" skopeo_pid="$REGISTRY_PID" d0 load_a_cpu load_a_dst load_k_cpu load_k_dst

    log "airlift bundle load -> $to_airlift/bench (--flatten --jobs $BENCH_JOBS)"
    d0="$(cpu_of "$airlift_pid")"
    measure bundle-load-airlift "$AIRLIFT" bundle load "$dir/airlift.tar.zst" --to "$to_airlift/bench" --flatten \
        --jobs "$BENCH_JOBS" --json --progress none --insecure-registry "$to_airlift" \
        --state-dir "$dir/load-state" \
        >"$OUT_DIR/bundle-load-report.json" 2>"$OUT_DIR/bundle-load.log" || rc=$?
    [[ $rc -eq 0 ]] || die "airlift bundle load exited with $rc (see $OUT_DIR/bundle-load.log)"
    load_a="$MEASURED_S" load_a_rss="$MEASURED_RSS" load_a_cpu="$MEASURED_CPU"
    load_a_dst="$(cpu_delta "$d0" "$(cpu_of "$airlift_pid")")"

    log "zstd -d | tar -x, then skopeo sync --all --src dir --dest docker -> $to_skopeo/bench"
    t0="$(now)" d0="$(cpu_of "$skopeo_pid")"
    mkdir "$dir/unpacked"
    zstd -q -d -c "$dir/skopeo.tar.zst" | tar -x -C "$dir/unpacked" || die "unpacking failed"
    measure bundle-load-skopeo skopeo --policy "$POLICY" sync --all --src dir --dest docker --dest-tls-verify=false \
        "$dir/unpacked" "$to_skopeo/bench" >"$OUT_DIR/skopeo-bundle-load.log" 2>&1 \
        || die "skopeo sync from the dir failed: see $OUT_DIR/skopeo-bundle-load.log"
    load_k_rss="$MEASURED_RSS" load_k_cpu="$MEASURED_CPU"
    load_k_dst="$(cpu_delta "$d0" "$(cpu_of "$skopeo_pid")")"
    t1="$(now)"
    load_s="$(elapsed "$t0" "$t1")"

    verify_copies "$WORK/images.txt" "$to_airlift/bench" "$to_skopeo/bench"
    size_a="$(file_bytes "$dir/airlift.tar.zst")"
    size_s="$(file_bytes "$dir/skopeo.tar.zst")"
    limit="$(awk -v u="$UNIQUE_BYTES" 'BEGIN { printf "%d", u * 1.01 }')"
    result "bundle create ($SET_DESC, jobs $BENCH_JOBS):" \
        "airlift: $create_a s, skopeo sync+tar+zstd: $create_s s," \
        "ratio airlift/skopeo: $(ratio "$create_a" "$create_s");" \
        "peak RSS airlift $create_a_rss MiB, skopeo $create_k_rss MiB"
    result "bundle load: airlift: $load_a s, zstd+tar+skopeo sync: $load_s s," \
        "ratio airlift/skopeo: $(ratio "$load_a" "$load_s");" \
        "peak RSS airlift $load_a_rss MiB, skopeo $load_k_rss MiB"
    result "  cpu seconds: airlift load: client $load_a_cpu, target registry $load_a_dst;" \
        "skopeo sync from the dir: client $load_k_cpu, target registry $load_k_dst"
    result "bundle size: unique blob bytes $UNIQUE_BYTES; airlift $size_a" \
        "($(ratio "$size_a" "$UNIQUE_BYTES")x, limit $limit), skopeo $size_s" \
        "($(ratio "$size_s" "$UNIQUE_BYTES")x)"
    result "bundle create disk peak: airlift $disk_peak bytes, $(ratio "$disk_peak" "$size_a")x its bundle"
    ((size_a <= limit)) || die "the airlift bundle ($size_a bytes) exceeds the unique blob bytes + 1 % ($limit)"
}

ensure_prereqs zstd time:time pkill:procps
# The serve section: the set carried in a bundle and served by `airlift bundle serve` is the
# source of `skopeo sync`, against the same `skopeo sync` from the source registry
# (distribution, the same disk). The ratio is served/registry: how the bundle compares with a
# registry as a pull source. The server's peak RSS is read by GNU time when it stops (SIGTERM).
bench_serve() {
    local dir addr="" pid served_s registry_s served_rss registry_rss serve_rss
    dir="$(make_tmpdir)"
    log "airlift bundle create -> $dir/serve.tar.zst (to serve it)"
    "$AIRLIFT" bundle create --list "$WORK/images.txt" -o "$dir/serve.tar.zst" --jobs "$BENCH_JOBS" \
        --progress none --insecure-registry "$SRC" \
        >"$OUT_DIR/serve-create.log" 2>&1 || die "airlift bundle create failed: see $OUT_DIR/serve-create.log"
    /usr/bin/time -f '%M' -o "$OUT_DIR/serve.time" \
        "$AIRLIFT" bundle serve "$dir/serve.tar.zst" --listen 127.0.0.1:0 -q 2>"$OUT_DIR/serve.log" &
    pid=$!
    for _ in $(seq 200); do
        addr="$(sed -n 's|^serving .* on https\{0,1\}://\([^ /]*\).*|\1|p' "$OUT_DIR/serve.log" | head -n 1)"
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || die "bundle serve did not start: see $OUT_DIR/serve.log"
    log "airlift bundle serve on $addr"
    sed "s/$SRC/$addr/" "$WORK/skopeo.yaml" >"$WORK/serve-skopeo.yaml"
    start_registry
    local to_served="$REGISTRY_ADDR"
    start_registry
    local to_registry="$REGISTRY_ADDR"

    log "skopeo sync --all from the served bundle -> $to_served/bench"
    measure serve-skopeo skopeo --policy "$POLICY" sync --all --src yaml --dest docker --dest-tls-verify=false \
        "$WORK/serve-skopeo.yaml" "$to_served/bench" >"$OUT_DIR/serve-skopeo.log" 2>&1 \
        || die "skopeo sync from bundle serve failed: see $OUT_DIR/serve-skopeo.log"
    served_s="$MEASURED_S" served_rss="$MEASURED_RSS"
    log "skopeo sync --all from the source registry -> $to_registry/bench"
    measure registry-skopeo skopeo --policy "$POLICY" sync --all --src yaml --dest docker --dest-tls-verify=false \
        "$WORK/skopeo.yaml" "$to_registry/bench" >"$OUT_DIR/registry-skopeo.log" 2>&1 \
        || die "skopeo sync from the registry failed: see $OUT_DIR/registry-skopeo.log"
    registry_s="$MEASURED_S" registry_rss="$MEASURED_RSS"

    # GNU time does not pass signals on: stop the server itself, then collect time's report.
    pkill -TERM -P "$pid" || die "bundle serve is gone before the end: see $OUT_DIR/serve.log"
    wait "$pid" || die "bundle serve exited with $? on SIGTERM: see $OUT_DIR/serve.log"
    serve_rss="$(tail -n 1 "$OUT_DIR/serve.time" | awk '{ printf "%.0f", $1 / 1024 }')"
    verify_copies "$WORK/images.txt" "$to_served/bench" "$to_registry/bench"
    result "bundle serve ($SET_DESC): skopeo sync from the served bundle: $served_s s," \
        "from the source registry: $registry_s s, ratio served/registry: $(ratio "$served_s" "$registry_s");" \
        "peak RSS airlift bundle serve $serve_rss MiB (skopeo $served_rss / $registry_rss MiB)"
}

[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is needed to measure peak RSS"
log "building airlift, the image generator and the fault proxy ($AIRLIFT_PROFILE)"
cargo build --profile "$AIRLIFT_PROFILE" --bin airlift --example seed --example faultproxy
POLICY="$(skopeo_policy)"
WORK="$(make_tmpdir)"
start_registry
SRC="$REGISTRY_ADDR"
SRC_PID="$REGISTRY_PID"

log "generating the $BENCH_SET set (scale $BENCH_SCALE, big layer ${BENCH_BIG_LAYER_MIB} MiB) into $SRC"
"$BIN_DIR/examples/seed" --registry "$SRC" --set "$BENCH_SET" --scale "$BENCH_SCALE" \
    --big-layer-mib "$BENCH_BIG_LAYER_MIB" \
    --list-out "$WORK/images.txt" --skopeo-yaml "$WORK/skopeo.yaml" | tee "$WORK/seed.txt"
IMAGES="$(wc -l <"$WORK/images.txt")"
UNIQUE_BYTES="$(sed -n 's/.*(\([0-9]*\) unique blob bytes.*/\1/p' "$WORK/seed.txt")"
SEED_MB="$(awk -v b="$UNIQUE_BYTES" 'BEGIN { printf "%.0f", b / 1e6 }')"
SET_DESC="$BENCH_SET set, $IMAGES images, $SEED_MB MB, scale $BENCH_SCALE"
((BENCH_BIG_LAYER_MIB > 0)) && SET_DESC+=", one ${BENCH_BIG_LAYER_MIB} MiB layer"

: >"$RESULTS"
result "# airlift bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, profile $AIRLIFT_PROFILE"
for section in $BENCH_SECTIONS; do
    fn="bench_${section//-/_}"
    declare -F "$fn" >/dev/null || die "unknown bench section $section"
    "$fn"
done
log "results in $RESULTS"
