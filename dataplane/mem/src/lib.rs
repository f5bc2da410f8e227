//! Memory primitives of the fast path that need `unsafe` code and are not
//! DPDK's: with `sluice-dpdk`, the binding layer. The sans-IO crates
//! (connection table, pipeline) stay free of `unsafe` and call these.
//!
//! - [`prefetch`]: asks the CPU to bring a cache line in ahead of use, so
//!   the lookups of a burst overlap their cache misses instead of waiting
//!   for each in turn.
//! - [`filled`]: a vector of `n` copies of a value, its memory advised for
//!   transparent huge pages before it is first written, so a big table
//!   sits on 2 MiB pages (one TLB entry instead of 512) when the kernel
//!   allows it (`/sys/kernel/mm/transparent_hugepage/enabled` is `always`
//!   or `madvise`).
//! - [`huge_page_bytes`]: how much of this process's anonymous memory is
//!   on transparent huge pages (for benchmarks and reports).

/// Size of a transparent huge page on x86-64 and most arm64 kernels.
pub const HUGE_PAGE: usize = 2 << 20;

/// Bytes of a cache line.
pub const CACHE_LINE: usize = 64;

/// Asks the CPU to bring every cache line that `*r` covers (one, or two
/// for an object that straddles a line boundary) into every cache level.
/// A hint: it never faults, never blocks and changes nothing a program can
/// observe but time. A no-op on CPUs without the instruction.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    let first = (r as *const T).cast::<u8>();
    let size = std::mem::size_of::<T>().max(1);
    let mut off = 0;
    while off < size {
        prefetch_line(first.wrapping_add(off));
        off += CACHE_LINE;
    }
    // The last byte's line, when `*r` does not start on a line boundary.
    if (first as usize) % CACHE_LINE + size > size.next_multiple_of(CACHE_LINE) {
        prefetch_line(first.wrapping_add(size - 1));
    }
}

#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86-64 baseline, so the instruction
        // exists; PREFETCHT0 does not access memory architecturally (it
        // cannot fault, even on an invalid address); `p` points into an
        // object a reference was given for anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `n` copies of `value`. With `huge`, the vector's memory is advised for
/// transparent huge pages (`madvise(MADV_HUGEPAGE)` on the 2 MiB-aligned
/// part of it) before any of it is written, so the first write of each
/// 2 MiB region faults in one huge page; without it, or when the kernel
/// refuses the advice, it is an ordinary vector on 4 KiB pages. Either
/// way it is a plain `Vec` (freed by the global allocator as usual).
pub fn filled<T: Clone>(n: usize, value: T, huge: bool) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    if huge {
        advise_huge(v.as_ptr().cast::<u8>(), n * std::mem::size_of::<T>());
    }
    v.resize(n, value);
    v
}

/// Advises the 2 MiB-aligned pages inside `[start, start + len)` for
/// transparent huge pages. Returns whether any range was advised.
fn advise_huge(start: *const u8, len: usize) -> bool {
    let first = (start as usize).next_multiple_of(HUGE_PAGE);
    let end = (start as usize + len) & !(HUGE_PAGE - 1);
    if end <= first {
        return false;
    }
    // SAFETY: `[first, end)` lies inside the allocation of `len` bytes
    // at `start` (which this process owns and nothing else maps) and is
    // page-aligned; MADV_HUGEPAGE only changes how the kernel backs those
    // pages, never their contents or their validity.
    let r = unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
    r == 0
}

/// Bytes of this process's anonymous memory currently on transparent huge
/// pages (`AnonHugePages` of `/proc/self/smaps_rollup`); `None` where the
/// kernel does not say.
pub fn huge_page_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = s.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_holds_the_value_with_or_without_huge_pages() {
        for huge in [false, true] {
            let v = filled(3 * HUGE_PAGE / 8 + 5, 7u64, huge);
            assert_eq!(v.len(), 3 * HUGE_PAGE / 8 + 5);
            assert!(v.iter().all(|x| *x == 7));
        }
        assert!(filled(0, 1u8, true).is_empty());
    }

    #[test]
    fn prefetch_changes_nothing() {
        let v = vec![1u32, 2, 3];
        prefetch(&v[1]);
        assert_eq!(v, [1, 2, 3]);
    }

    /// Where the kernel offers transparent huge pages for advised memory,
    /// a big advised table is backed by them (checked with the kernel's
    /// own accounting); elsewhere the test says it checked nothing.
    #[test]
    fn advised_table_gets_huge_pages_where_the_kernel_offers_them() {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !(mode.contains("[always]") || mode.contains("[madvise]")) {
            // Reported as skipped in scripts/test.sh's summary.
            let why = format!("transparent huge pages are off ({})", mode.trim());
            eprintln!("skipped: {why}");
            if let Some(log) = std::env::var_os("SLUICE_SKIP_LOG") {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(log)
                    .expect("skip log");
                writeln!(
                    f,
                    "advised_table_gets_huge_pages_where_the_kernel_offers_them: {why}"
                )
                .expect("skip log");
            }
            return;
        }
        let before = huge_page_bytes().expect("smaps_rollup");
        let v = filled(64 * HUGE_PAGE / 8, 1u64, true);
        let after = huge_page_bytes().expect("smaps_rollup");
        assert_eq!(v.len(), 64 * HUGE_PAGE / 8);
        // Of 64 advised huge pages, the kernel may be short of a few
        // (fragmented memory) but not of most.
        assert!(
            after >= before + 32 * HUGE_PAGE as u64,
            "{before} -> {after} bytes on huge pages"
        );
    }
}
