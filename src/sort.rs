//! The library's sorts, all through one heapsort that reaches the elements
//! only by index through a `dyn` callback, so every element type and
//! comparator shares the same code.
//!
//! `slice::sort*` instantiates a driftsort or ipnsort per element type and
//! comparator, 1-5 KB of code each; with a dozen of them the Cortex-M4 image
//! (boards/cortex-m4, 256 KiB of flash as the target) paid over 20 KB for
//! sorting alone. What the library sorts is short (dimensions, tensor
//! names, the leaves of one backward pass, a plan's modules) and heapsort
//! keeps `O(n log n)` for long lists; it is not stable, [`sort_stable_by`]
//! adds the original position as the last key.

use alloc::vec::Vec;
use core::cmp::Ordering;

/// What the callback of [`heapsort`] is asked.
enum Op {
    /// Whether element `i` orders strictly before element `j`.
    Less,
    /// Swap elements `i` and `j` (the answer is ignored).
    Swap,
}

/// Restores the heap property below `root` in the heap of the first `end`
/// elements (a max-heap: parents order after their children).
fn sift_down(f: &mut dyn FnMut(Op, usize, usize) -> bool, mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && f(Op::Less, child, child + 1) {
            child += 1;
        }
        if !f(Op::Less, root, child) {
            return;
        }
        f(Op::Swap, root, child);
        root = child;
    }
}

/// Sorts `n` elements ascending, seen only through `f`.
fn heapsort(n: usize, f: &mut dyn FnMut(Op, usize, usize) -> bool) {
    for root in (0..n / 2).rev() {
        sift_down(f, root, n);
    }
    for end in (1..n).rev() {
        f(Op::Swap, 0, end);
        sift_down(f, 0, end);
    }
}

/// Sorts `v` by `cmp`, ascending; equal elements may be reordered.
pub(crate) fn sort_unstable_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    heapsort(v.len(), &mut |op, i, j| match op {
        Op::Less => cmp(&v[i], &v[j]) == Ordering::Less,
        Op::Swap => {
            v.swap(i, j);
            false
        }
    });
}

/// Sorts `v` ascending; equal elements may be reordered.
pub(crate) fn sort_unstable<T: Ord>(v: &mut [T]) {
    sort_unstable_by(v, T::cmp);
}

/// Sorts `v` by `cmp`, ascending, keeping equal elements in their order.
pub(crate) fn sort_stable_by<T>(v: &mut Vec<T>, mut cmp: impl FnMut(&T, &T) -> Ordering) {
    let mut keyed: Vec<(usize, T)> = v.drain(..).enumerate().collect();
    sort_unstable_by(&mut keyed, |a, b| cmp(&a.1, &b.1).then(a.0.cmp(&b.0)));
    v.extend(keyed.into_iter().map(|(_, t)| t));
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Pseudo-random values from a fixed LCG, `0..modulo`.
    fn values(n: usize, modulo: u64, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (x >> 33) % modulo
            })
            .collect()
    }

    #[test]
    fn unstable_sorts_as_the_standard_sort_does() {
        for n in [0, 1, 2, 3, 7, 8, 64, 1000] {
            for modulo in [2, 10, 1 << 30] {
                let mut mine = values(n, modulo, n as u64 + modulo);
                let mut std = mine.clone();
                sort_unstable(&mut mine);
                std.sort();
                assert_eq!(mine, std, "n {n}, values below {modulo}");
            }
        }
        let mut desc = values(100, 50, 3);
        sort_unstable_by(&mut desc, |a, b| b.cmp(a));
        assert!(desc.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn stable_keeps_the_order_of_equal_keys() {
        for n in [0, 1, 5, 300] {
            let keys = values(n, 7, 11);
            let mut mine: Vec<(u64, usize)> = keys.iter().copied().zip(0..).collect();
            let mut std = mine.clone();
            sort_stable_by(&mut mine, |a, b| a.0.cmp(&b.0));
            std.sort_by_key(|p| p.0);
            assert_eq!(mine, std, "n {n}");
        }
        let mut words = vec!["b", "a", "c", "a"];
        sort_stable_by(&mut words, |a, b| a.len().cmp(&b.len()));
        assert_eq!(words, ["b", "a", "c", "a"]);
    }
}
