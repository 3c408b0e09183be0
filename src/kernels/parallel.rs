//! Large element-wise work split over the worker pool.
//!
//! A slice of at least two [`GRAIN`]s is cut into pieces, up to four per
//! thread, whose boundaries are multiples of `ALIGN` (64) elements; each piece is
//! processed by the same kernel a single thread would use. Element-wise
//! kernels do not depend on an element's position in the slice, and with
//! aligned cuts every element goes through the same code (the kernels' SIMD
//! body; only the slice's last elements reach a scalar tail, in the last
//! piece, as in an unsplit call), so results are bit-identical for every
//! thread count and every split. Sums cut by the length alone (see [`sum`]).
//! Without `std` it all runs on the calling thread.
//!
//! The closures handed to the pool here are `move` closures, which hold what
//! they capture by value: a worker reads them from one or two adjacent lines
//! of the caller's stack, where closures capturing by reference made it
//! follow a chain of pointers, each step a cache-line transfer from the
//! caller's core (a sum of 1e5 elements on two threads: 2.21-2.26 ->
//! 2.16-2.19 us, Zen 4).

use core::marker::PhantomData;
use core::ops::Range;

use super::optim::{AdamStep, SgdStep};

/// The smallest piece of work handed to a thread, in elements (64 KiB of
/// f32): a task costs a hand-off of about a microsecond, and a worker that
/// was asleep takes longer to join. PyTorch splits element-wise work at a
/// grain of 32,768 elements. Under miri 128, so that tests of the splitting
/// run at miri-sized inputs.
pub const GRAIN: usize = if cfg!(miri) { 1 << 7 } else { 1 << 14 };

/// Pieces start at multiples of this many elements: more than any kernel's
/// vector width times its unrolling, so no cut moves an element from a
/// kernel's SIMD body into its scalar tail.
const ALIGN: usize = 64;

/// A mutable slice whose disjoint ranges may be handed to different tasks.
struct Disjoint<'a> {
    ptr: *mut f32,
    len: usize,
    _life: PhantomData<&'a mut [f32]>,
}

// SAFETY: `Disjoint` only hands out `&mut` to ranges through `range`, whose
// caller guarantees that concurrently live ranges do not overlap; f32 is Send.
unsafe impl Sync for Disjoint<'_> {}

impl<'a> Disjoint<'a> {
    fn new(s: &'a mut [f32]) -> Disjoint<'a> {
        Disjoint {
            ptr: s.as_mut_ptr(),
            len: s.len(),
            _life: PhantomData,
        }
    }

    /// # Safety
    /// `r` lies within the slice, and no other live reference obtained from
    /// this `Disjoint` overlaps it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn range(&self, r: Range<usize>) -> &'a mut [f32] {
        assert!(
            r.start <= r.end && r.end <= self.len,
            "Disjoint::range out of bounds"
        );
        // SAFETY: in bounds (checked above) of a slice borrowed mutably for
        // 'a; exclusivity of the range is the caller's promise.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(r.start), r.len()) }
    }
}

/// How `len` elements are cut: `(pieces, piece length)`. One piece below two
/// grains or on one thread; otherwise one piece per two grains of a thread's
/// share, at least one and at most four per thread (several, so a thread that
/// starts late takes fewer), each at least a grain and a multiple of
/// [`ALIGN`] long except the last.
#[inline]
fn pieces(len: usize) -> (usize, usize) {
    #[cfg(feature = "std")]
    let threads = super::threads::num_threads();
    #[cfg(not(feature = "std"))]
    let threads = 1;
    if len < 2 * GRAIN || threads < 2 {
        return (1, len);
    }
    // One piece per two grains of a thread's share (one per thread below
    // four grains each): smaller pieces cost more to claim than the balance
    // gains (an add of 1e5 elements on two threads, Intel Xeon, six
    // alternated pairs of builds: 6 pieces 5.24-5.88 us, 2 pieces 5.00-5.44).
    let per = (len / (2 * GRAIN * threads)).clamp(1, 4);
    let n = (len / GRAIN).min(per * threads);
    let piece = len.div_ceil(n).next_multiple_of(ALIGN);
    (len.div_ceil(piece), piece)
}

/// Runs `f(range)` over the pieces of `0..len` ([`pieces`]), in parallel when
/// there are at least two.
#[inline]
fn for_pieces(len: usize, f: impl Fn(Range<usize>) + Sync) {
    let (n, piece) = pieces(len);
    let run = move |t: usize| f(t * piece..((t + 1) * piece).min(len));
    #[cfg(feature = "std")]
    if n >= 2 {
        super::threads::parallel_for(n, run);
        return;
    }
    (0..n).for_each(run);
}

/// `k(x, out)` over matching pieces (`x.len() == out.len()`).
pub fn map(x: &[f32], out: &mut [f32], k: impl Fn(&[f32], &mut [f32]) + Sync) {
    assert_eq!(x.len(), out.len(), "parallel::map: lengths differ");
    if x.len() < 2 * GRAIN {
        return k(x, out);
    }
    let o = Disjoint::new(out);
    for_pieces(x.len(), move |r| {
        // SAFETY: pieces are disjoint ranges within `out`.
        let dst = unsafe { o.range(r.clone()) };
        k(&x[r], dst)
    });
}

/// `k(a, b, out)` over matching pieces; `a` or `b` may have length 1 (a
/// broadcast scalar, passed whole to every piece).
pub fn zip(a: &[f32], b: &[f32], out: &mut [f32], k: impl Fn(&[f32], &[f32], &mut [f32]) + Sync) {
    let n = out.len();
    if n < 2 * GRAIN {
        return k(a, b, out);
    }
    assert!(
        (a.len() == n || a.len() == 1) && (b.len() == n || b.len() == 1),
        "parallel::zip: operand lengths {} and {} do not fit {n}",
        a.len(),
        b.len()
    );
    let o = Disjoint::new(out);
    for_pieces(n, move |r| {
        // SAFETY: pieces are disjoint ranges within `out`.
        let dst = unsafe { o.range(r.clone()) };
        k(part(a, r.clone()), part(b, r), dst)
    });
}

/// The piece `r` of an operand, or the operand itself if it is a broadcast
/// scalar.
#[inline]
fn part(s: &[f32], r: Range<usize>) -> &[f32] {
    if s.len() == 1 { s } else { &s[r] }
}

/// `k(acc, b)` in place over matching pieces; `b` may have length 1.
pub fn zip_inplace(acc: &mut [f32], b: &[f32], k: impl Fn(&mut [f32], &[f32]) + Sync) {
    let n = acc.len();
    if n < 2 * GRAIN {
        return k(acc, b);
    }
    assert!(
        b.len() == n || b.len() == 1,
        "parallel::zip_inplace: lengths differ"
    );
    let o = Disjoint::new(acc);
    for_pieces(n, move |r| {
        // SAFETY: pieces are disjoint ranges within `acc`.
        let dst = unsafe { o.range(r.clone()) };
        k(dst, if b.len() == 1 { b } else { &b[r] })
    });
}

/// The table's `sum` of `x`. Long slices (at least two grains) are summed as
/// an even number of about equal blocks (at most 64, each about a grain or
/// more), in parallel, whose sums are then summed: the blocks depend only on
/// the length, so the result is the same for every thread count, with or
/// without `std`; an even count keeps two threads balanced. Each thread
/// sums a run of consecutive blocks.
pub fn sum(x: &[f32]) -> f32 {
    let k = super::table().sum;
    if x.len() < 2 * GRAIN {
        return k(x);
    }
    const MAX_BLOCKS: usize = 64;
    let blocks = (x.len() / GRAIN).clamp(2, MAX_BLOCKS) & !1;
    let block = x.len().div_ceil(blocks).next_multiple_of(ALIGN);
    let n = x.len().div_ceil(block);
    let mut partial = [0.0f32; MAX_BLOCKS];
    let o = Disjoint::new(&mut partial[..n]);
    // The sums of the blocks `r`, kept local and written at the end: threads
    // write neighbouring entries of `partial`, one cache line for all.
    let run = move |r: Range<usize>| {
        let mut mine = [0.0f32; MAX_BLOCKS];
        for (m, t) in mine.iter_mut().zip(r.clone()) {
            *m = k(&x[t * block..((t + 1) * block).min(x.len())]);
        }
        let len = r.len();
        // SAFETY: each task writes only its own blocks' entries.
        unsafe { o.range(r) }.copy_from_slice(&mine[..len]);
    };
    // One task per thread, each a run of consecutive blocks: 60 blocks
    // handed out one by one (a sum of 1e6) cost a claim on a shared counter
    // and a shared line of `partial` each, and took two threads to 1.71x one
    // thread; runs give 1.93x (Zen 4). A late thread's run is taken by the
    // others as any task is.
    #[cfg(feature = "std")]
    {
        let t = super::threads::num_threads().min(n);
        super::threads::parallel_for(t, move |i| run(i * n / t..(i + 1) * n / t));
    }
    #[cfg(not(feature = "std"))]
    run(0..n);
    k(&partial[..n])
}

/// `f(blocks, part)` over groups of consecutive blocks of `out`: block `i` is
/// `out[i * block_len..]`, `block_len` elements long (the last one may be
/// shorter), and `part` holds exactly the blocks of the range `blocks`. From
/// two grains of output on, the blocks are grouped as `pieces` cuts a slice
/// (about equal groups, up to four per thread) and the groups run in parallel;
/// otherwise `f` runs once over every block. A group never splits a block, so
/// work that is cut at block boundaries anyway (one kernel call per run of a
/// strided walk) gives the same results on every thread count.
///
/// # Panics
/// If `block_len` is 0 and `out` is not empty.
pub fn blocks(out: &mut [f32], block_len: usize, f: impl Fn(Range<usize>, &mut [f32]) + Sync) {
    blocks_weighted(out, block_len, 1, f);
}

/// [`blocks`] for work that costs `per` elements for each output element (a
/// reduction of `per` rows into one): the groups are cut as [`blocks`] cuts
/// `out.len() * per` elements of output.
///
/// # Panics
/// If `block_len` is 0 and `out` is not empty.
pub fn blocks_weighted(
    out: &mut [f32],
    block_len: usize,
    per: usize,
    f: impl Fn(Range<usize>, &mut [f32]) + Sync,
) {
    let len = out.len();
    if len == 0 {
        return f(0..0, out);
    }
    assert!(block_len > 0, "parallel::blocks: empty blocks");
    let o = Disjoint::new(out);
    for_groups(len.div_ceil(block_len), len.saturating_mul(per), move |b| {
        let r = b.start * block_len..(b.end * block_len).min(len);
        // SAFETY: groups cover disjoint block ranges of `out`.
        f(b, unsafe { o.range(r) })
    });
}

/// Runs `f(items)` over groups of consecutive items of `0..n` whose whole
/// costs about `work` elements: as many groups as [`pieces`] cuts `work`
/// into (at most `n`), in parallel from two on; otherwise `f(0..n)` once.
fn for_groups(n: usize, work: usize, f: impl Fn(Range<usize>) + Sync) {
    let groups = pieces(work).0.min(n);
    if groups < 2 {
        return f(0..n);
    }
    let per = n.div_ceil(groups);
    let run = move |g: usize| f(g * per..((g + 1) * per).min(n));
    #[cfg(feature = "std")]
    super::threads::parallel_for(n.div_ceil(per), run);
    #[cfg(not(feature = "std"))]
    (0..n.div_ceil(per)).for_each(run);
}

/// `f(row, out_row)` for every row of `out` (`row_len` elements each),
/// groups of rows spread over the pool ([`blocks`]). Rows are independent,
/// so results do not depend on the thread count.
pub fn rows(out: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if row_len == 0 {
        return;
    }
    blocks(out, row_len, |b, part| {
        for (i, row) in part.chunks_exact_mut(row_len).enumerate() {
            f(b.start + i, row);
        }
    });
}

/// `out[r] = f(r)` for every row `r` of a reduction whose rows cost about
/// `row_len` elements each: groups of whole rows are cut as `pieces` cuts
/// `out.len() * row_len` elements and run in parallel (so a few long rows
/// spread as well as many short ones). Rows are independent, so results do
/// not depend on the thread count.
pub fn row_results(out: &mut [f32], row_len: usize, f: impl Fn(usize) -> f32 + Sync) {
    let rows = out.len();
    let o = Disjoint::new(out);
    for_groups(rows, rows.saturating_mul(row_len), move |r| {
        // SAFETY: groups cover disjoint row ranges of `out`.
        let part = unsafe { o.range(r.clone()) };
        for (v, i) in part.iter_mut().zip(r) {
            *v = f(i);
        }
    });
}

/// The table's fused Adam update over matching pieces of every slice.
pub fn adam(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vmax: Option<&mut [f32]>,
    s: &AdamStep,
) {
    let k = super::table().adam;
    let n = p.len();
    if n < 2 * GRAIN {
        return k(p, g, m, v, vmax, s);
    }
    assert!(
        g.len() == n && m.len() == n && v.len() == n && vmax.as_ref().is_none_or(|x| x.len() == n),
        "parallel::adam: slice lengths differ"
    );
    let (pp, mm, vv) = (Disjoint::new(p), Disjoint::new(m), Disjoint::new(v));
    let xx = vmax.map(Disjoint::new);
    for_pieces(n, move |r| {
        // SAFETY: pieces are disjoint ranges within each slice, and each
        // slice is distinct memory (separate `&mut` borrows).
        let (pc, mc, vc) = unsafe {
            (
                pp.range(r.clone()),
                mm.range(r.clone()),
                vv.range(r.clone()),
            )
        };
        // SAFETY: as above.
        let xc = xx.as_ref().map(|x| unsafe { x.range(r.clone()) });
        k(pc, &g[r], mc, vc, xc, s)
    });
}

/// The table's fused SGD update over matching pieces of the slices.
pub fn sgd(p: &mut [f32], g: &[f32], buf: Option<&mut [f32]>, s: &SgdStep) {
    let k = super::table().sgd;
    let n = p.len();
    if n < 2 * GRAIN {
        return k(p, g, buf, s);
    }
    assert!(
        g.len() == n && buf.as_ref().is_none_or(|b| b.len() == n),
        "parallel::sgd: slice lengths differ"
    );
    let pp = Disjoint::new(p);
    let bb = buf.map(Disjoint::new);
    for_pieces(n, move |r| {
        // SAFETY: pieces are disjoint ranges within each slice, and the two
        // slices are distinct memory (separate `&mut` borrows).
        let pc = unsafe { pp.range(r.clone()) };
        // SAFETY: as above.
        let bc = bb.as_ref().map(|b| unsafe { b.range(r.clone()) });
        k(pc, &g[r], bc, s)
    });
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// The thread count is global and the test harness runs tests
    /// concurrently: the tests here that set it hold this lock throughout.
    fn thread_count_lock() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sums and row maps are bit-identical for one thread and two.
    #[test]
    fn sums_and_rows_do_not_depend_on_the_thread_count() {
        let n = 3 * GRAIN + 777;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1013) as f32 * 1e-3 - 0.5)
            .collect();
        let rowf = |r: usize, o: &mut [f32]| {
            for (j, v) in o.iter_mut().enumerate() {
                // libm, not `f32::exp`: std's precision is unspecified and
                // may differ between calls (miri perturbs it), which would
                // break the bit-identity checked here.
                *v = libm::expf(x[r * 100 + j]);
            }
        };
        let _serial = thread_count_lock();
        let prev = super::super::threads::num_threads();
        let mut out = [
            alloc::vec![0.0f32; (n / 100) * 100],
            alloc::vec![0.0f32; (n / 100) * 100],
        ];
        let mut sums = [0.0f32; 2];
        // Four long rows: one piece each on two threads.
        let long = x.len() / 4;
        let rowsum = |r: usize| x[r * long..(r + 1) * long].iter().sum::<f32>();
        let mut results = [[f32::NAN; 4]; 2];
        for (t, threads) in [1usize, 2].into_iter().enumerate() {
            super::super::threads::set_num_threads(threads);
            sums[t] = sum(&x);
            rows(&mut out[t], 100, rowf);
            row_results(&mut results[t], long, rowsum);
        }
        super::super::threads::set_num_threads(prev);
        assert_eq!(sums[0].to_bits(), sums[1].to_bits());
        assert_eq!(out[0], out[1]);
        let want: Vec<f32> = (0..4).map(rowsum).collect();
        assert_eq!(results[0].as_slice(), want.as_slice());
        assert_eq!(results[1].as_slice(), want.as_slice());
        let exact: f64 = x.iter().map(|&v| v as f64).sum();
        assert!(
            (sums[0] as f64 - exact).abs() < 1e-3,
            "{} vs {exact}",
            sums[0]
        );
    }

    /// Element-wise results are bit-identical for 1, 2 and 3 threads, and
    /// equal the unsplit kernel's, including the transcendental kernels whose
    /// scalar tail may round differently from their SIMD body, at sizes that
    /// do and do not split into whole vectors.
    #[test]
    fn split_work_equals_one_pass() {
        let t = super::super::table();
        let _serial = thread_count_lock();
        let prev = super::super::threads::num_threads();
        for n in [2 * GRAIN - 1, 2 * GRAIN + 5, 5 * GRAIN + 123] {
            let x: Vec<f32> = (0..n).map(|i| (i % 997) as f32 * 0.01 - 3.0).collect();
            let y: Vec<f32> = (0..n).map(|i| (i % 13) as f32 * 0.5 + 0.25).collect();
            for threads in [1, 2, 3] {
                super::super::threads::set_num_threads(threads);
                for k in [t.exp.map, t.sigmoid.map, t.tanh.map, t.gelu.map] {
                    let (mut whole, mut split) = (alloc::vec![0.0; n], alloc::vec![0.0; n]);
                    k(&x, &mut whole);
                    map(&x, &mut split, k);
                    assert!(
                        whole
                            .iter()
                            .zip(&split)
                            .all(|(a, b)| a.to_bits() == b.to_bits())
                    );
                }
                let (mut whole, mut split) = (alloc::vec![0.0; n], alloc::vec![0.0; n]);
                (t.div.map)(&x, &y, &mut whole);
                zip(&x, &y, &mut split, t.div.map);
                assert_eq!(whole, split, "{n} elements, {threads} threads");
                zip(&x, &[2.0], &mut split, t.mul.map);
                assert!(split.iter().zip(&x).all(|(p, x)| *p == x * 2.0));
                let mut acc = x.clone();
                zip_inplace(&mut acc, &y, t.add.map_inplace);
                assert!(
                    acc.iter()
                        .zip(x.iter().zip(&y))
                        .all(|(a, (x, y))| *a == x + y)
                );
            }
        }
        super::super::threads::set_num_threads(prev);
    }

    /// Groups of blocks cover `out` exactly, in order, without splitting a
    /// block, in parallel from two grains on.
    #[test]
    fn blocks_cover_the_output_in_whole_blocks() {
        use std::sync::Mutex;
        let _serial = thread_count_lock();
        let prev = super::super::threads::num_threads();
        for threads in [1, 2, 3] {
            super::super::threads::set_num_threads(threads);
            for (len, block) in [
                (0, 5),
                (0, 0),
                (10, 3),
                (2 * GRAIN + 1, 1000),
                (9 * GRAIN, 1),
                (3 * GRAIN, 3 * GRAIN),
            ] {
                let mut out = alloc::vec![0.0f32; len];
                let seen = Mutex::new(Vec::new());
                blocks(&mut out, block, |b, part| {
                    let expect = (b.start * block).min(len)..(b.end * block).min(len);
                    assert_eq!(part.len(), expect.len(), "{len}/{block}: {b:?}");
                    part.fill(b.start as f32);
                    seen.lock().unwrap().push(b);
                });
                let mut seen = seen.into_inner().unwrap();
                seen.sort_by_key(|b| b.start);
                let n_blocks = if block == 0 { 0 } else { len.div_ceil(block) };
                let mut next = 0;
                for b in &seen {
                    assert_eq!(b.start, next);
                    next = b.end;
                }
                assert_eq!(next, n_blocks, "{len}/{block}");
                let parallel = threads > 1 && len >= 2 * GRAIN && n_blocks > 1;
                assert_eq!(seen.len() > 1, parallel, "{len}/{block} on {threads}");
                for b in &seen {
                    for i in b.clone() {
                        let r = i * block..((i + 1) * block).min(len);
                        assert!(out[r].iter().all(|&v| v == b.start as f32));
                    }
                }
            }
        }
        super::super::threads::set_num_threads(prev);
    }

    /// Pieces cover the slice exactly, start at multiples of `ALIGN`, there
    /// is more than one from two grains on, one per thread while a thread's
    /// share is under four grains, and four per thread from eight.
    #[test]
    fn pieces_cover_the_slice_on_aligned_cuts() {
        let _serial = thread_count_lock();
        let prev = super::super::threads::num_threads();
        for threads in [1, 2, 4] {
            super::super::threads::set_num_threads(threads);
            for len in [
                0,
                1,
                GRAIN,
                2 * GRAIN - 1,
                2 * GRAIN,
                7 * GRAIN + 3,
                1000 * GRAIN,
            ] {
                let (n, piece) = pieces(len);
                assert!(n >= 1 && piece * (n - 1) < len.max(1) && piece * n >= len);
                assert!(n == 1 || piece % ALIGN == 0);
                assert!(n == 1 || piece >= GRAIN);
                assert!(n <= 4 * threads);
                assert_eq!(n > 1, threads > 1 && len >= 2 * GRAIN, "{len} on {threads}");
                // One piece per thread while each thread's share is under
                // four grains; four per thread from eight.
                if len < 4 * GRAIN * threads {
                    assert!(n <= threads, "{len} on {threads}: {n} pieces");
                }
                if len >= 8 * GRAIN * threads && threads > 1 {
                    assert_eq!(n, 4 * threads, "{len} on {threads}");
                }
            }
        }
        super::super::threads::set_num_threads(prev);
    }
}
