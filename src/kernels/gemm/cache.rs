//! Cache blocking from the cache sizes of the CPU the process runs on.
//!
//! The loop nest (see `driver.rs`) keeps one packed `mr x kc` panel of A in
//! L1 while `kc x nr` panels of the packed `kc x nc` block of B stream from
//! L2, and a packed `mc x kc` block of A (when A is packed) comes from L3.
//! So, per core:
//! - `kc`: the A panel fills at most half of L1 (the other half holds the B
//!   and C lines in flight): the largest power of two with `mr * kc * 4 <=
//!   L1 / 2`, within 128 ..= 512;
//! - `nc`: the B block fills at most half of L2: `kc * nc * 4 <= L2 / 2`,
//!   rounded down to whole `nr` panels, within `nr` ..= 4096;
//! - `mc`: the A block fills at most half of this core's share of L3, in
//!   whole `mr` panels, within `16 mr` ..= 1024;
//! - `pack_b_min` stays the path's own (row-major B of up to 8,192 floats is
//!   read in place). Until 2026-12-06 paths with 64-column tiles (AVX-512)
//!   read row-major B in place up to half of L2: 1.5-2.5 % faster at N =
//!   128..352 on Zen 4 (1 MiB L2), but on an Intel Xeon (Emerald Rapids
//!   class, 2 MiB L2) packing measured 0.7-9 % faster on one thread at
//!   N = 128..512 and 16-20 % faster on two threads at N = 256 and 512
//!   (in-place and packed alternated call by call in one process). AVX2's
//!   16-column tiles read in place were 3-5 % slower than packed from
//!   N = 192 on Zen 4.
//! - `fuse_b_max`: a packed B block is packed by its first row panel's tiles
//!   as they read B in place while the rows such a panel spans (`kc` rows of
//!   B's row stride) fit in half of L2; past that, a separate pass reading
//!   whole rows is cheaper (Zen 4, AVX2: fused +1-4 % at N 128-256 and on
//!   `[64,784]x[784,256]`, -2-3 % at N = 1024, whose panels span 2 MiB).
//!
//! With `std` on Linux the sizes come from sysfs
//! (`/sys/devices/system/cpu/cpu0/cache`), read once. Elsewhere (other
//! systems, `no_std` boards) each path keeps its fixed blocking.
//!
//! Examples (AVX2 tile 6 x 16): Zen 3 (32 KiB L1d, 512 KiB L2) gets kc 512,
//! nc 128; Zen 4 (1 MiB L2) nc 256; an Intel core with 2 MiB of L2 nc 512.

use super::driver::{Arch, Blocking};
use crate::sync::OnceCell;

/// Data cache sizes of one core, in bytes: L1 data, L2, and the core's share
/// of L3 (its size over the CPUs sharing it; 0 without an L3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSizes {
    /// L1 data cache.
    pub l1d: usize,
    /// L2 cache.
    pub l2: usize,
    /// This core's share of L3.
    pub l3_per_core: usize,
}

/// The cache sizes the GEMM blocking derives from: read once from
/// `/sys/devices/system/cpu/cpu0/cache` under `std` on Linux, `None`
/// elsewhere (each kernel path then keeps its fixed blocking).
pub fn cache_sizes() -> Option<CacheSizes> {
    detect::sizes()
}

/// The blocking path `S` uses on this CPU: derived from the detected cache
/// sizes for the SIMD paths, the path's fixed blocking otherwise.
/// Derived once per path and kept (a small product's call would otherwise
/// spend a fair share of its time in `tuned`'s divisions).
pub(super) fn blocking<S: Arch>() -> Blocking {
    if !S::TUNED {
        return S::BLOCKING;
    }
    #[cfg(all(test, feature = "std"))]
    if let Some(c) = test_sizes::get() {
        return tuned(S::BLOCKING, c);
    }
    // One cell per instruction set (the variants' order indexes them).
    static DERIVED: [OnceCell<Blocking>; 4] = [const { OnceCell::new() }; 4];
    *DERIVED[S::ISA as usize].get_or_init(|| match cache_sizes() {
        Some(c) => tuned(S::BLOCKING, c),
        None => S::BLOCKING,
    })
}

/// `base` with `kc`, `nc` and `mc` derived from `c` (see the module docs).
pub(super) fn tuned(base: Blocking, c: CacheSizes) -> Blocking {
    let (mr, nr) = (base.mr, base.nr);
    let kc_fit = c.l1d / 2 / (mr * 4);
    let kc = if kc_fit == 0 {
        128
    } else {
        (1usize << kc_fit.ilog2()).clamp(128, 512)
    };
    let nc = (c.l2 / 2 / (kc * 4) / nr * nr).clamp(nr, 4096);
    let mc = (c.l3_per_core / 2 / (kc * 4) / mr * mr).clamp(16 * mr, 1024);
    let fuse_b_max = if c.l2 == 0 {
        base.fuse_b_max
    } else {
        c.l2 / 2 / 4
    };
    Blocking {
        kc,
        nc,
        mc,
        fuse_b_max,
        ..base
    }
}

#[cfg(all(feature = "std", target_os = "linux", not(miri)))]
mod detect {
    extern crate std;
    use super::CacheSizes;
    use std::string::String;
    use std::sync::OnceLock;

    pub(super) fn sizes() -> Option<CacheSizes> {
        static SIZES: OnceLock<Option<CacheSizes>> = OnceLock::new();
        *SIZES.get_or_init(read)
    }

    fn read() -> Option<CacheSizes> {
        let dir = "/sys/devices/system/cpu/cpu0/cache";
        let (mut l1d, mut l2, mut l3) = (None, None, 0);
        for i in 0..8 {
            let file = |name: &str| std::fs::read_to_string(std::format!("{dir}/index{i}/{name}"));
            let Ok(level) = file("level") else { break };
            let kind = file("type").unwrap_or_default();
            let Some(size) = file("size").ok().as_deref().and_then(parse_size) else {
                continue;
            };
            match (level.trim(), kind.trim()) {
                ("1", "Data" | "Unified") => l1d = Some(size),
                ("2", "Data" | "Unified") => l2 = Some(size),
                ("3", "Unified" | "Data") => {
                    let sharing = file("shared_cpu_list").map_or(1, |s| count_cpus(&s));
                    l3 = size / sharing.max(1);
                }
                _ => {}
            }
        }
        Some(CacheSizes {
            l1d: l1d?,
            l2: l2?,
            l3_per_core: l3,
        })
    }

    /// `32K`, `1024K`, `32M` or a plain byte count.
    pub(super) fn parse_size(s: &str) -> Option<usize> {
        let s = s.trim();
        let (num, mul) = match s.as_bytes().last()? {
            b'K' => (&s[..s.len() - 1], 1 << 10),
            b'M' => (&s[..s.len() - 1], 1 << 20),
            b'G' => (&s[..s.len() - 1], 1 << 30),
            _ => (s, 1),
        };
        num.parse::<usize>().ok()?.checked_mul(mul)
    }

    /// CPUs in a list such as `0-3,8,10-11`.
    pub(super) fn count_cpus(list: &str) -> usize {
        let list: String = list.chars().filter(|c| !c.is_whitespace()).collect();
        list.split(',')
            .filter(|r| !r.is_empty())
            .map(|r| match r.split_once('-') {
                Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                    (Ok(a), Ok(b)) if b >= a => b - a + 1,
                    _ => 1,
                },
                None => 1,
            })
            .sum()
    }
}

#[cfg(not(all(feature = "std", target_os = "linux", not(miri))))]
mod detect {
    use super::CacheSizes;

    pub(super) fn sizes() -> Option<CacheSizes> {
        None
    }
}

/// Tests' stand-in cache sizes, per calling thread (the plan, made on the
/// calling thread, carries the blocking to the workers).
#[cfg(all(test, feature = "std"))]
pub(super) mod test_sizes {
    extern crate std;
    use super::CacheSizes;
    use core::cell::Cell;

    std::thread_local! {
        static SIZES: Cell<Option<CacheSizes>> = const { Cell::new(None) };
    }

    pub(in super::super) fn get() -> Option<CacheSizes> {
        SIZES.with(Cell::get)
    }

    /// Runs `f` with the blocking derived from `sizes` on this thread.
    pub(in super::super) fn with<R>(sizes: CacheSizes, f: impl FnOnce() -> R) -> R {
        let old = SIZES.with(|c| c.replace(Some(sizes)));
        let r = f();
        SIZES.with(|c| c.set(old));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVX2: Blocking = Blocking {
        mr: 6,
        nr: 16,
        kc: 256,
        mc: 512,
        nc: 256,
        pack_b_min: 8 * 1024,
        direct_b_max: 32 * 1024,
        fuse_b_max: 64 * 1024,
    };

    fn sizes(l1d: usize, l2: usize, l3: usize) -> CacheSizes {
        CacheSizes {
            l1d: l1d << 10,
            l2: l2 << 10,
            l3_per_core: l3 << 10,
        }
    }

    #[test]
    fn blocking_follows_the_caches() {
        let zen3 = tuned(AVX2, sizes(32, 512, 4096));
        assert_eq!((zen3.kc, zen3.nc, zen3.mc), (512, 128, 1020));
        let zen4 = tuned(AVX2, sizes(32, 1024, 4096));
        assert_eq!((zen4.kc, zen4.nc), (512, 256));
        let intel = tuned(AVX2, sizes(48, 2048, 1920));
        assert_eq!((intel.kc, intel.nc, intel.mc), (512, 512, 480));
        // Small caches: smaller blocks, never below one panel.
        let small = tuned(AVX2, sizes(16, 128, 0));
        assert_eq!((small.kc, small.nc, small.mc), (256, 64, 96));
        let none = tuned(AVX2, sizes(0, 0, 0));
        assert_eq!((none.kc, none.nc, none.mc), (128, 16, 96));
        // The tile and the packing threshold are the path's own.
        assert_eq!((zen4.mr, zen4.nr, zen4.pack_b_min), (6, 16, 8 * 1024));
        // So does a 64-column tile's: its threshold does not follow L2.
        let wide = Blocking { nr: 64, ..AVX2 };
        assert_eq!(tuned(wide, sizes(48, 2048, 4096)).pack_b_min, 8 * 1024);
        // B is packed while read up to a span of half of L2 (in floats).
        assert_eq!(zen3.fuse_b_max, 64 * 1024);
        assert_eq!(intel.fuse_b_max, 256 * 1024);
        assert_eq!(none.fuse_b_max, AVX2.fuse_b_max);
    }

    #[cfg(all(feature = "std", target_os = "linux", not(miri)))]
    #[test]
    fn sysfs_formats_parse() {
        assert_eq!(detect::parse_size("32K\n"), Some(32 << 10));
        assert_eq!(detect::parse_size("1024K"), Some(1 << 20));
        assert_eq!(detect::parse_size("32M"), Some(32 << 20));
        assert_eq!(detect::parse_size("x"), None);
        assert_eq!(detect::count_cpus("0-1\n"), 2);
        assert_eq!(detect::count_cpus("0-3,8,10-11"), 7);
        assert_eq!(detect::count_cpus("5"), 1);
    }
}
