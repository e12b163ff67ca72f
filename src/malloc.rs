//! glibc's allocator, tuned once at start for a streaming workload.
//!
//! By default glibc gives up to eight arenas per core to the threads that allocate (tokio's
//! workers and blocking pool, the volume writers, the compression workers), and raises its mmap
//! threshold to the largest block freed so far. HTTP read buffers (hyper's, ~408 KiB each,
//! one per chunk of body still referenced) are then carved from those arenas, and what they free
//! stays fragmented there: `bundle create` peaked at 66–79 MiB where its live heap was ~41 MiB.
//! With as many arenas as cores and a fixed 256 KiB mmap threshold, such buffers are mapped and
//! unmapped whole: 53–55 MiB on the same runs (README, "Memory"), for ~0.4 s more system time
//! per GB moved. An operator's own `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_` or
//! `GLIBC_TUNABLES` wins: nothing is changed when one is set.

/// Blocks at least this large are mapped on their own and returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Tunes glibc's malloc; call first in `main`, before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn tune() {
    let operator_tuned = [
        "MALLOC_ARENA_MAX",
        "MALLOC_MMAP_THRESHOLD_",
        "GLIBC_TUNABLES",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some());
    if operator_tuned {
        return;
    }
    let arenas = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 64);
    let arenas = libc::c_int::try_from(arenas).unwrap_or(2);
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // exists, and both values are in the ranges glibc documents (it ignores what it rejects).
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Other allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn tune() {}
