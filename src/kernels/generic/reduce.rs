//! Reductions and the row kernels (softmax family) over [`Lanes`].
//!
//! **Summation order** (deterministic for a given ISA, i.e. a given `LANES`):
//! the input is cut into blocks of `B = 32 * LANES` elements. Inside a block,
//! four register accumulators take registers `0, 1, 2, 3, 4, 5, ...` round
//! robin (each lane adds at most 8 values left to right); the last partial
//! register is padded with zeros; the block result is `(a0 + a1) + (a2 + a3)`.
//! Block results are combined pairwise like a binary counter (block pairs,
//! then pairs of pairs, ...; leftovers folded from the smallest up), and the
//! lanes of the final register are added in the fixed tree of
//! [`Lanes::hsum`]. The worst-case error is about `(8 + log2(n / B) +
//! log2(LANES) + 2) * eps * sum(|x|)`; on random data it is far smaller (see
//! the 1e7-element test against `f64`).

use super::{
    VMap, VZip, map, map_fast, map_guarded, map_inplace, map_inplace_fast, map_inplace_guarded,
    math, zip,
};
use core::mem::MaybeUninit;

use crate::kernels::{check, lanes::Lanes, scalar};

/// Registers per accumulator per block.
const DEPTH: usize = 8;
/// Accumulators per block.
const ACCS: usize = 4;

/// How one element enters a sum.
trait Term<L: Lanes> {
    /// Padding of the last partial register; must contribute 0.
    const FILL: f32;
    /// `acc + term(v)`.
    fn add(&self, l: L, acc: L::V, v: L::V) -> L::V;
    /// The same for the last, padded register of a slice.
    #[inline(always)]
    fn add_tail(&self, l: L, acc: L::V, v: L::V) -> L::V {
        self.add(l, acc, v)
    }
}

/// `x`.
struct Plain;
impl<L: Lanes> Term<L> for Plain {
    const FILL: f32 = 0.0;
    #[inline(always)]
    fn add(&self, l: L, acc: L::V, v: L::V) -> L::V {
        l.add(acc, v)
    }
}

/// `x * x`.
struct Squares;
impl<L: Lanes> Term<L> for Squares {
    const FILL: f32 = 0.0;
    #[inline(always)]
    fn add(&self, l: L, acc: L::V, v: L::V) -> L::V {
        l.fma(v, v, acc)
    }
}

/// `|x|`.
struct Absolute;
impl<L: Lanes> Term<L> for Absolute {
    const FILL: f32 = 0.0;
    #[inline(always)]
    fn add(&self, l: L, acc: L::V, v: L::V) -> L::V {
        l.add(acc, l.abs(v))
    }
}

/// `e^(x - m)`, with the rounding error of `x - m` (TwoSum, exact) passed to
/// `exp` as a low part: the error of the subtraction (up to half an ulp of
/// `|x - m|`) would otherwise become a relative error of the result (30 ulp
/// for `x - m` near -40). Padding `-inf` gives `e^-inf = 0` for finite `m`.
struct ExpShift<V> {
    m: V,
    /// No element exceeds `|m|` in magnitude, so Fast2Sum finds the error:
    /// the same bits as TwoSum in 3 additions instead of 6 (AVX2, Zen 4:
    /// softmax over [1024, 1024] 5 % faster when every row is ordered).
    ordered: bool,
}
impl<V: Copy> ExpShift<V> {
    /// For any elements (TwoSum).
    #[inline(always)]
    fn new<L: Lanes<V = V>>(l: L, m: f32) -> Self {
        ExpShift {
            m: l.splat(m),
            ordered: false,
        }
    }

    /// Shifting by `c` a row whose elements lie in `[lo, hi]`. Ordered where
    /// no element exceeds `|c|` in magnitude, and only inside `exp`'s fast
    /// domain ([`shift_inside`]), where no `x - c` overflows: at `x = -MAX`,
    /// `c = MAX` Fast2Sum gives an infinite error where TwoSum's is NaN
    /// (which `eval` drops).
    #[inline(always)]
    fn for_row<L: Lanes<V = V>>(l: L, c: f32, lo: f32, hi: f32) -> Self {
        ExpShift {
            m: l.splat(c),
            ordered: shift_inside(c, lo, hi) && lo.abs() <= c.abs() && hi.abs() <= c.abs(),
        }
    }

    /// `x - m` and its rounding error (NaN where `x`, `m` or the difference
    /// is infinite).
    #[inline(always)]
    fn diff<L: Lanes<V = V>>(&self, l: L, x: V) -> (V, V) {
        let s = l.sub(x, self.m);
        if self.ordered {
            // Fast2Sum of -m and x, |x| <= |m|.
            return (s, l.sub(x, l.add(s, self.m)));
        }
        let bb = l.sub(s, x);
        (s, l.add(l.sub(x, l.sub(s, bb)), l.sub(l.neg(self.m), bb)))
    }

    #[inline(always)]
    fn eval<L: Lanes<V = V>>(&self, l: L, x: V) -> V {
        let (s, err) = self.diff(l, x);
        // An infinite x, m or x - m makes the error NaN; nothing to correct.
        let err = l.select(l.eq(err, err), err, l.splat(0.0));
        math::exp_dd(l, s, err)
    }
}
/// Guarded on `|x - m| <= 87`: there every term is finite, the error needs no
/// NaN check and `exp` no clamp (equal bit for bit to `eval`).
impl<L: Lanes> VMap<L> for ExpShift<L::V> {
    #[inline(always)]
    fn apply(&self, l: L, v: L::V) -> L::V {
        self.eval(l, v)
    }
    const FAST_BOUND: f32 = math::EXP_FAST_MAX;
    #[inline(always)]
    fn guard(&self, l: L, v: L::V) -> L::V {
        l.sub(v, self.m)
    }
    #[inline(always)]
    fn fast(&self, l: L, v: L::V) -> L::V {
        let (s, err) = self.diff(l, v);
        math::exp_fast(l, s, Some(err))
    }
}
impl<L: Lanes> Term<L> for ExpShift<L::V> {
    const FILL: f32 = f32::NEG_INFINITY;
    #[inline(always)]
    fn add(&self, l: L, acc: L::V, v: L::V) -> L::V {
        l.add(acc, self.eval(l, v))
    }
}

/// [`ExpShift`] as a sum term through the clampless `exp`, for a row where
/// [`row_inside`] holds: full registers take the fast form and the padded
/// tail (`-inf` lanes) the general one, so the sum equals `sum_terms` over
/// [`ExpShift`] bit for bit.
struct FastExpShift<V>(ExpShift<V>);
impl<L: Lanes> Term<L> for FastExpShift<L::V> {
    const FILL: f32 = f32::NEG_INFINITY;
    #[inline(always)]
    fn add(&self, l: L, acc: L::V, v: L::V) -> L::V {
        l.add(acc, VMap::fast(&self.0, l, v))
    }
    #[inline(always)]
    fn add_tail(&self, l: L, acc: L::V, v: L::V) -> L::V {
        l.add(acc, self.0.eval(l, v))
    }
}

/// `sum(e^(x - m))` of a row whose extremes are `m` and `lo` ([`row_range`]),
/// in the order of [`sum`]; rows wholly inside `exp`'s fast domain skip its
/// clamp.
#[inline(always)]
fn sum_exp_shift<L: Lanes>(l: L, m: f32, lo: f32, x: &[f32]) -> f32 {
    let f = ExpShift::for_row(l, m, lo, m);
    if row_inside(m, lo) {
        sum_terms(l, &FastExpShift(f), x)
    } else {
        sum_terms(l, &f, x)
    }
}

/// The shift of the softmax family, the largest element `m`, and the
/// smallest `lo` (for [`row_inside`]) in one pass, without the NaN and
/// signed-zero bookkeeping of [`max`]. Either may skip NaN elements or be NaN
/// when the row has one: a NaN in the row makes every output NaN through the
/// sum whatever they are, and the sign of a zero maximum does not change
/// `x - m`; so the outputs equal the scalar path's, which uses the exact
/// maximum.
#[inline(always)]
fn row_range<L: Lanes>(l: L, x: &[f32]) -> (f32, f32) {
    let n = L::LANES;
    let mut hi = [l.splat(f32::NEG_INFINITY); ACCS];
    let mut lo = [l.splat(f32::INFINITY); ACCS];
    let mut quads = x.chunks_exact(ACCS * n);
    for q in &mut quads {
        for k in 0..ACCS {
            let v = l.load(&q[k * n..]);
            hi[k] = l.max(hi[k], v);
            lo[k] = l.min(lo[k], v);
        }
    }
    let mut regs = quads.remainder().chunks_exact(n);
    for r in &mut regs {
        let v = l.load(r);
        hi[0] = l.max(hi[0], v);
        lo[0] = l.min(lo[0], v);
    }
    let tail = regs.remainder();
    if let Some(&first) = tail.first() {
        // Padding with an element of the row changes neither extreme.
        let v = l.load_partial(tail, first);
        hi[1] = l.max(hi[1], v);
        lo[1] = l.min(lo[1], v);
    }
    let v = l.max(l.max(hi[0], hi[1]), l.max(hi[2], hi[3]));
    let w = l.min(l.min(lo[0], lo[1]), l.min(lo[2], lo[3]));
    (l.hmax(v), l.hmin(w))
}

/// Whether every `|x - m|` of a row whose extremes are `m` and `lo` is
/// within `exp`'s fast domain (false where `m` or `lo` is infinite or NaN).
#[inline(always)]
fn row_inside(m: f32, lo: f32) -> bool {
    shift_inside(m, lo, m)
}

/// Whether every `|x - c|` for `x` in `[lo, hi]` is within `exp`'s fast
/// domain (false where any of them is infinite or NaN). Rounding is
/// monotonic, so checking the extremes covers every element.
#[inline(always)]
fn shift_inside(c: f32, lo: f32, hi: f32) -> bool {
    lo - c >= -math::EXP_FAST_MAX && hi - c <= math::EXP_FAST_MAX
}

/// How far a softmax shift may sit from the row's maximum: the terms stay
/// within `e^-16` and `e^16` of the largest, far from underflow and overflow.
const SHIFT_SLACK: f32 = 16.0;

/// The shift of a softmax row with extremes `lo <= m`: softmax does not
/// depend on it, so where the largest magnitude `b = max(|m|, |lo|)` is
/// within [`SHIFT_SLACK`] of `m`, `b` for `m >= 0` and `-b` below (the one on
/// `m`'s side): then no element exceeds the shift in magnitude and
/// [`ExpShift`] finds the error of `x - c` with Fast2Sum (3 additions instead
/// of TwoSum's 6). That is every row of mixed sign whose minimum is not far
/// below `-m`. Elsewhere `m` (and `m` itself where `|lo| <= m`, the bits of
/// the shift by the maximum). Zen 4, [1024, 1024] in [-4, 4] (half the rows
/// with `|lo| > m`), same-run pairs: AVX2 430 -> 373 us, AVX-512 329 -> 322.
#[inline(always)]
pub(crate) fn softmax_shift(m: f32, lo: f32) -> f32 {
    let b = m.abs().max(lo.abs());
    let c = if m >= 0.0 { b } else { -b };
    if (c - m).abs() <= SHIFT_SLACK && shift_inside(c, lo, m) {
        c
    } else {
        m
    }
}

/// Pairwise combination of block sums (a binary counter of partial sums).
/// The entries are left uninitialised until pushed: creating the counter
/// writes nothing but the level tags, which matters for short rows (48
/// registers are 3 KB on AVX-512, and even 48 `Option` tags touched 48 cache
/// lines per row).
struct Cascade<L: Lanes> {
    /// Entries `..len` are initialised.
    stack: [MaybeUninit<L::V>; 48],
    level: [u8; 48],
    len: usize,
}

impl<L: Lanes> Cascade<L> {
    #[inline(always)]
    fn new() -> Self {
        Cascade {
            stack: [const { MaybeUninit::uninit() }; 48],
            level: [0; 48],
            len: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, l: L, mut v: L::V) {
        let mut level = 0;
        while self.len > 0 && self.level[self.len - 1] == level {
            self.len -= 1;
            // SAFETY: entries below the old `len` were written by `push`.
            v = l.add(unsafe { self.stack[self.len].assume_init() }, v);
            level += 1;
        }
        self.stack[self.len].write(v);
        self.level[self.len] = level;
        self.len += 1;
    }

    #[inline(always)]
    fn finish(&self, l: L) -> f32 {
        let mut acc = l.splat(0.0);
        for i in (0..self.len).rev() {
            // SAFETY: `i < len`: written by `push`.
            let s = unsafe { self.stack[i].assume_init() };
            acc = if i == self.len - 1 { s } else { l.add(s, acc) };
        }
        l.hsum(acc)
    }
}

#[inline(always)]
fn block_len<L: Lanes>() -> usize {
    L::LANES * ACCS * DEPTH
}

/// One block's sum of terms as a register.
#[inline(always)]
fn block_sum<L: Lanes, T: Term<L>>(l: L, t: &T, x: &[f32]) -> L::V {
    let n = L::LANES;
    let mut acc = [l.splat(0.0); ACCS];
    let mut quads = x.chunks_exact(ACCS * n);
    for q in &mut quads {
        for (k, a) in acc.iter_mut().enumerate() {
            *a = t.add(l, *a, l.load(&q[k * n..]));
        }
    }
    let mut regs = quads.remainder().chunks_exact(n);
    let mut k = 0;
    for r in &mut regs {
        acc[k] = t.add(l, acc[k], l.load(r));
        k += 1;
    }
    let tail = regs.remainder();
    if !tail.is_empty() {
        acc[k] = t.add_tail(l, acc[k], l.load_partial(tail, T::FILL));
    }
    l.add(l.add(acc[0], acc[1]), l.add(acc[2], acc[3]))
}

/// Sum of `term(x[i])` in the documented order.
#[inline(always)]
fn sum_terms<L: Lanes, T: Term<L>>(l: L, t: &T, x: &[f32]) -> f32 {
    if x.len() <= block_len::<L>() {
        // One block: the cascade would hand its sum back unchanged. Short
        // rows (a softmax over 10 classes) skip setting it up.
        return l.hsum(block_sum(l, t, x));
    }
    let mut c = Cascade::new();
    for b in x.chunks(block_len::<L>()) {
        c.push(l, block_sum(l, t, b));
    }
    c.finish(l)
}

/// Sum.
#[inline(always)]
pub(crate) fn sum<L: Lanes>(l: L, x: &[f32]) -> f32 {
    sum_terms(l, &Plain, x)
}
/// Sum of squares.
#[inline(always)]
pub(crate) fn sum_sq<L: Lanes>(l: L, x: &[f32]) -> f32 {
    sum_terms(l, &Squares, x)
}
/// Sum of absolute values.
#[inline(always)]
pub(crate) fn sum_abs<L: Lanes>(l: L, x: &[f32]) -> f32 {
    sum_terms(l, &Absolute, x)
}

/// One block of a dot product as a register.
#[inline(always)]
fn block_dot<L: Lanes>(l: L, a: &[f32], b: &[f32]) -> L::V {
    let n = L::LANES;
    let mut acc = [l.splat(0.0); ACCS];
    let mut qa = a.chunks_exact(ACCS * n);
    let mut qb = b.chunks_exact(ACCS * n);
    for (x, y) in (&mut qa).zip(&mut qb) {
        for (k, s) in acc.iter_mut().enumerate() {
            *s = l.fma(l.load(&x[k * n..]), l.load(&y[k * n..]), *s);
        }
    }
    let mut ra = qa.remainder().chunks_exact(n);
    let mut rb = qb.remainder().chunks_exact(n);
    let mut k = 0;
    for (x, y) in (&mut ra).zip(&mut rb) {
        acc[k] = l.fma(l.load(x), l.load(y), acc[k]);
        k += 1;
    }
    let (ta, tb) = (ra.remainder(), rb.remainder());
    if !ta.is_empty() {
        acc[k] = l.fma(l.load_partial(ta, 0.0), l.load_partial(tb, 0.0), acc[k]);
    }
    l.add(l.add(acc[0], acc[1]), l.add(acc[2], acc[3]))
}

/// Dot product (same order as [`sum`]). Panics if the lengths differ.
#[inline(always)]
pub(crate) fn dot<L: Lanes>(l: L, a: &[f32], b: &[f32]) -> f32 {
    check::pair("dot", a.len(), b.len());
    let mut c = Cascade::new();
    let n = block_len::<L>();
    for (x, y) in a.chunks(n).zip(b.chunks(n)) {
        c.push(l, block_dot(l, x, y));
    }
    c.finish(l)
}

/// Which extreme a reduction keeps; `pick` must be exact, order-independent
/// and zero-sign-aware for non-NaN inputs.
trait Extreme<L: Lanes> {
    /// The identity (result of an empty reduction).
    const IDENT: f32;
    /// Whether elements enter as `|x|`.
    const ABS: bool;
    /// The kept one of `a` and `b`.
    fn pick(&self, l: L, a: L::V, b: L::V) -> L::V;
    /// The same for scalars.
    fn pick1(a: f32, b: f32) -> f32;
}

/// Largest, `+0 > -0`.
struct Largest;
impl<L: Lanes> Extreme<L> for Largest {
    const IDENT: f32 = f32::NEG_INFINITY;
    const ABS: bool = false;
    #[inline(always)]
    fn pick(&self, l: L, a: L::V, b: L::V) -> L::V {
        l.select(l.eq(a, b), l.and(a, b), l.max(a, b))
    }
    #[inline(always)]
    fn pick1(a: f32, b: f32) -> f32 {
        scalar::maximum(a, b)
    }
}

/// Smallest, `-0 < +0`.
struct Smallest;
impl<L: Lanes> Extreme<L> for Smallest {
    const IDENT: f32 = f32::INFINITY;
    const ABS: bool = false;
    #[inline(always)]
    fn pick(&self, l: L, a: L::V, b: L::V) -> L::V {
        l.select(l.eq(a, b), l.or(a, b), l.min(a, b))
    }
    #[inline(always)]
    fn pick1(a: f32, b: f32) -> f32 {
        scalar::minimum(a, b)
    }
}

/// Largest absolute value.
struct LargestAbs;
impl<L: Lanes> Extreme<L> for LargestAbs {
    const IDENT: f32 = 0.0;
    const ABS: bool = true;
    #[inline(always)]
    fn pick(&self, l: L, a: L::V, b: L::V) -> L::V {
        l.max(a, b)
    }
    #[inline(always)]
    fn pick1(a: f32, b: f32) -> f32 {
        scalar::maximum(a, b)
    }
}

/// One step of [`extreme`]: folds `v` into `acc` and records NaN lanes.
#[inline(always)]
fn extreme_step<L: Lanes, E: Extreme<L>>(l: L, e: &E, acc: &mut L::V, nan: &mut L::M, v: L::V) {
    let v = if E::ABS { l.abs(v) } else { v };
    *nan = l.mor(*nan, l.is_nan(v));
    *acc = e.pick(l, *acc, v);
}

/// NaN if any element is NaN, else the extreme (`IDENT` when empty).
#[inline(always)]
fn extreme<L: Lanes, E: Extreme<L>>(l: L, e: &E, x: &[f32]) -> f32 {
    let n = L::LANES;
    let id = l.splat(E::IDENT);
    let mut acc = [id; ACCS];
    let mut nan = l.lt(id, id);
    let mut quads = x.chunks_exact(ACCS * n);
    for q in &mut quads {
        for (k, a) in acc.iter_mut().enumerate() {
            extreme_step(l, e, a, &mut nan, l.load(&q[k * n..]));
        }
    }
    let mut regs = quads.remainder().chunks_exact(n);
    let mut k = 0;
    for r in &mut regs {
        extreme_step(l, e, &mut acc[k], &mut nan, l.load(r));
        k += 1;
    }
    let tail = regs.remainder();
    if !tail.is_empty() {
        extreme_step(l, e, &mut acc[k], &mut nan, l.load_partial(tail, E::IDENT));
    }
    if l.any(nan) {
        return f32::NAN;
    }
    let v = e.pick(l, e.pick(l, acc[0], acc[1]), e.pick(l, acc[2], acc[3]));
    let lanes = l.to_array(v);
    lanes[..n].iter().fold(E::IDENT, |m, &x| E::pick1(m, x))
}

/// Largest element (NaN if any; `-inf` if empty).
#[inline(always)]
pub(crate) fn max<L: Lanes>(l: L, x: &[f32]) -> f32 {
    extreme(l, &Largest, x)
}
/// Smallest element (NaN if any; `+inf` if empty).
#[inline(always)]
pub(crate) fn min<L: Lanes>(l: L, x: &[f32]) -> f32 {
    extreme(l, &Smallest, x)
}
/// Largest absolute value (NaN if any; 0 if empty).
#[inline(always)]
pub(crate) fn max_abs<L: Lanes>(l: L, x: &[f32]) -> f32 {
    extreme(l, &LargestAbs, x)
}

/// Index of the first element equal to `target` (the first NaN if `target`
/// is NaN). `target` must occur.
#[inline(always)]
fn position<L: Lanes>(l: L, x: &[f32], target: f32) -> usize {
    let t = l.splat(target);
    let nan = target.is_nan();
    let hit = |v: f32| if nan { v.is_nan() } else { v == target };
    let mut regs = x.chunks_exact(L::LANES);
    for (i, r) in (&mut regs).enumerate() {
        let v = l.load(r);
        let m = if nan { l.is_nan(v) } else { l.eq(v, t) };
        if l.any(m) {
            // The register holds a hit: find the first lane.
            return i * L::LANES + r.iter().position(|&v| hit(v)).unwrap_or(0);
        }
    }
    let base = x.len() - regs.remainder().len();
    base + regs.remainder().iter().position(|&v| hit(v)).unwrap_or(0)
}

/// Index of the first largest element (the first NaN, if any). Panics if empty.
#[inline(always)]
pub(crate) fn argmax<L: Lanes>(l: L, x: &[f32]) -> usize {
    check::nonempty("argmax", x.len());
    position(l, x, max(l, x))
}
/// Index of the first smallest element (the first NaN, if any). Panics if empty.
#[inline(always)]
pub(crate) fn argmin<L: Lanes>(l: L, x: &[f32]) -> usize {
    check::nonempty("argmin", x.len());
    position(l, x, min(l, x))
}

/// `x * r`.
struct Scale<V> {
    r: V,
}
impl<L: Lanes> VMap<L> for Scale<L::V> {
    #[inline(always)]
    fn apply(&self, l: L, v: L::V) -> L::V {
        l.mul(v, self.r)
    }
}

/// `(x - m) - ls`.
struct ShiftLog<V> {
    m: V,
    ls: V,
}
impl<L: Lanes> VMap<L> for ShiftLog<L::V> {
    #[inline(always)]
    fn apply(&self, l: L, v: L::V) -> L::V {
        l.sub(l.sub(v, self.m), self.ls)
    }
}

mod softmax;
pub(crate) use softmax::*;
