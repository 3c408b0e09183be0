//! The softmax family over rows: softmax (one row, or consecutive rows with
//! their passes overlapped), log-softmax, logsumexp and their backward
//! kernels, on the shift, range and sum machinery of the parent module.

use super::*;

/// Softmax of one row: `e^(x - max) / sum`, the terms written to `out` first
/// and summed from there in the order of [`sum`]. Blocks where every
/// `|x - max| <= 87` take the clampless `exp`; the others go through `apply`
/// ([`exp_shift_apply`] compiled as its own kernel; see
/// [`map_guarded`](super::map_guarded)).
#[inline(always)]
pub(crate) fn softmax<L: Lanes>(
    l: L,
    apply: fn(f32, &[f32], &mut [f32]),
    x: &[f32],
    out: &mut [f32],
) {
    check::same("softmax", x.len(), out.len());
    let (m, lo) = row_range(l, x);
    let r = softmax_terms(l, apply, m, lo, x, out);
    scale_by(l, out, r);
}

/// `out = e^(x - c)` for a row with extremes `m` and `lo` (see [`softmax`]),
/// returning `1 / sum(out)`: softmax without its scaling pass.
#[inline(always)]
fn softmax_terms<L: Lanes>(
    l: L,
    apply: fn(f32, &[f32], &mut [f32]),
    m: f32,
    lo: f32,
    x: &[f32],
    out: &mut [f32],
) -> f32 {
    let c = softmax_shift(m, lo);
    if shift_inside(c, lo, m) {
        let f = ExpShift::for_row(l, c, lo, m);
        // Every block would pass the guard: skip it. With 32 registers, sum
        // while storing; with 16 the fused loop spills (AVX2: 5.2x -> 5.5x a
        // copy on [1024, 1024], Zen 4), so sum in a second pass.
        if L::REGISTERS >= 32 {
            return 1.0 / exp_shift_sum_fast(l, &f, Some(x), out);
        }
        map_fast(l, &f, x, out);
    } else {
        // Not inside, so `c = m` (as the general form `apply` uses).
        let f = ExpShift::for_row(l, m, lo, m);
        map_guarded(
            l,
            "softmax",
            &f,
            |xb: &[f32], ob: &mut [f32]| apply(m, xb, ob),
            x,
            out,
        );
    }
    1.0 / sum(l, out)
}

/// Softmax of consecutive rows of `len` elements (`x.len() == out.len()`, a
/// multiple of `len`), each as [`softmax`] gives it, bit for bit: a row's
/// scaling pass runs after the next row's range pass, so the division
/// `1 / sum` and the range's reductions each overlap a loop instead of
/// stalling the row (AVX-512, Zen 4, [1024, 1024]: 321-326 -> 285-288 us). For
/// 32-register ISAs only: on AVX2 the same loop was 4 % slower than a call
/// per row (the table leaves it out there).
#[inline(always)]
pub(crate) fn softmax_rows<L: Lanes>(
    l: L,
    apply: fn(f32, &[f32], &mut [f32]),
    x: &[f32],
    out: &mut [f32],
    len: usize,
) {
    check::same("softmax", x.len(), out.len());
    if len == 0 {
        return;
    }
    let mut pending: Option<(&mut [f32], f32)> = None;
    for (xr, or) in x.chunks(len).zip(out.chunks_mut(len)) {
        let (m, lo) = row_range(l, xr);
        if let Some((po, r)) = pending.take() {
            scale_by(l, po, r);
        }
        let r = softmax_terms(l, apply, m, lo, xr, or);
        pending = Some((or, r));
    }
    if let Some((po, r)) = pending {
        scale_by(l, po, r);
    }
}

/// In-place softmax of one row (`apply` as [`exp_shift_apply_inplace`]).
#[inline(always)]
pub(crate) fn softmax_inplace<L: Lanes>(l: L, apply: fn(f32, &mut [f32]), buf: &mut [f32]) {
    let (m, lo) = row_range(l, buf);
    let c = softmax_shift(m, lo);
    if shift_inside(c, lo, m) {
        let f = ExpShift::for_row(l, c, lo, m);
        if L::REGISTERS >= 32 {
            let s = exp_shift_sum_fast(l, &f, None, buf);
            return scale(l, buf, s);
        }
        map_inplace_fast(l, &f, buf);
    } else {
        let f = ExpShift::for_row(l, m, lo, m);
        map_inplace_guarded(l, &f, |b: &mut [f32]| apply(m, b), buf);
    }
    normalize(l, buf);
}

/// `out = e^(x - m)` through the general form only: the slow half of
/// [`softmax`].
#[inline(always)]
pub(crate) fn exp_shift_apply<L: Lanes>(l: L, m: f32, x: &[f32], out: &mut [f32]) {
    map(l, "softmax", &ExpShift::new(l, m), x, out);
}

/// In-place [`exp_shift_apply`].
#[inline(always)]
pub(crate) fn exp_shift_apply_inplace<L: Lanes>(l: L, m: f32, buf: &mut [f32]) {
    map_inplace(l, &ExpShift::new(l, m), buf);
}

/// `out = e^(x - c)` (`x` is `out` itself when `None`) through the
/// clampless form, for a row where [`shift_inside`] holds; returns `sum(out)`,
/// added up as the terms are stored, in the order of [`sum`] (blocks, four
/// accumulators round robin, the `-inf`-padded tail through the general form,
/// whose padding gives 0), so it equals `sum(l, out)` bit for bit.
#[inline(always)]
fn exp_shift_sum_fast<L: Lanes>(
    l: L,
    f: &ExpShift<L::V>,
    x: Option<&[f32]>,
    out: &mut [f32],
) -> f32 {
    let n = L::LANES;
    let len = out.len();
    let load = |out: &[f32], i: usize| match x {
        Some(x) => l.load(&x[i..]),
        None => l.load(&out[i..]),
    };
    let mut c = Cascade::new();
    let mut start = 0;
    while start < len {
        let end = (start + block_len::<L>()).min(len);
        let mut acc = [l.splat(0.0); ACCS];
        let mut i = start;
        while i + ACCS * n <= end {
            for (k, a) in acc.iter_mut().enumerate() {
                let v = VMap::fast(f, l, load(out, i + k * n));
                l.store(v, &mut out[i + k * n..]);
                *a = l.add(*a, v);
            }
            i += ACCS * n;
        }
        let mut k = 0;
        while i + n <= end {
            let v = VMap::fast(f, l, load(out, i));
            l.store(v, &mut out[i..]);
            acc[k] = l.add(acc[k], v);
            k += 1;
            i += n;
        }
        if i < end {
            let tail = match x {
                Some(x) => &x[i..end],
                None => &out[i..end],
            };
            let v = f.eval(l, l.load_partial(tail, f32::NEG_INFINITY));
            l.store_partial(v, &mut out[i..end]);
            acc[k] = l.add(acc[k], v);
        }
        c.push(l, l.add(l.add(acc[0], acc[1]), l.add(acc[2], acc[3])));
        start = end;
    }
    c.finish(l)
}

/// `buf *= 1 / s`.
#[inline(always)]
fn scale<L: Lanes>(l: L, buf: &mut [f32], s: f32) {
    scale_by(l, buf, 1.0 / s);
}

/// `buf *= r`.
#[inline(always)]
fn scale_by<L: Lanes>(l: L, buf: &mut [f32], r: f32) {
    map_inplace(l, &Scale { r: l.splat(r) }, buf);
}

/// `buf /= sum(buf)` (as a product with the reciprocal).
#[inline(always)]
fn normalize<L: Lanes>(l: L, buf: &mut [f32]) {
    let s = sum(l, buf);
    scale(l, buf, s);
}

/// Log-softmax of one row: `(x - max) - ln(sum(e^(x - max)))`.
#[inline(always)]
pub(crate) fn log_softmax<L: Lanes>(l: L, x: &[f32], out: &mut [f32]) {
    check::same("log_softmax", x.len(), out.len());
    let (m, lo) = row_range(l, x);
    let ls = libm::logf(sum_exp_shift(l, m, lo, x));
    super::map(
        l,
        "log_softmax",
        &ShiftLog {
            m: l.splat(m),
            ls: l.splat(ls),
        },
        x,
        out,
    );
}

/// Rows at most this many registers long go through [`log_softmax_rows`]
/// four at a time.
const SHORT_ROW_REGS: usize = 4;

/// Log-softmax of consecutive rows of `len` elements (`x.len() == out.len()`,
/// a multiple of `len`), each as [`log_softmax`] gives it, bit for bit. A
/// short row is a chain of dependent steps (range, its horizontal reduction,
/// `exp`, the sum's, `ln`, the map) that leaves the pipeline mostly idle, so
/// rows of at most [`SHORT_ROW_REGS`] registers go four at a time, each step
/// taken for the four rows before the next.
#[inline(always)]
pub(crate) fn log_softmax_rows<L: Lanes>(l: L, x: &[f32], out: &mut [f32], len: usize) {
    check::same("log_softmax", x.len(), out.len());
    if len == 0 {
        return;
    }
    let mut done = 0;
    if len <= SHORT_ROW_REGS * L::LANES {
        let xs = x.chunks_exact(4 * len);
        done = x.len() - xs.remainder().len();
        // Plain loops over the four rows: closures (as `array::from_fn`
        // takes) would not inherit the path's target features.
        for (xq, oq) in xs.zip(out.chunks_exact_mut(4 * len)) {
            let mut range = [(0.0, 0.0); 4];
            for (r, xr) in xq.chunks_exact(len).enumerate() {
                range[r] = row_range(l, xr);
            }
            let mut sums = [0.0; 4];
            for (r, xr) in xq.chunks_exact(len).enumerate() {
                sums[r] = sum_exp_shift(l, range[r].0, range[r].1, xr);
            }
            for (r, (xr, or)) in xq
                .chunks_exact(len)
                .zip(oq.chunks_exact_mut(len))
                .enumerate()
            {
                let f = ShiftLog {
                    m: l.splat(range[r].0),
                    ls: l.splat(libm::logf(sums[r])),
                };
                super::map(l, "log_softmax", &f, xr, or);
            }
        }
    }
    for (xr, or) in x[done..].chunks(len).zip(out[done..].chunks_mut(len)) {
        log_softmax(l, xr, or);
    }
}

/// In-place log-softmax of one row.
#[inline(always)]
pub(crate) fn log_softmax_inplace<L: Lanes>(l: L, buf: &mut [f32]) {
    let (m, lo) = row_range(l, buf);
    let ls = libm::logf(sum_exp_shift(l, m, lo, buf));
    map_inplace(
        l,
        &ShiftLog {
            m: l.splat(m),
            ls: l.splat(ls),
        },
        buf,
    );
}

/// `ln(sum(e^x))` of one row, PyTorch's way (see [`scalar`]'s `logsumexp`).
#[inline(always)]
pub(crate) fn logsumexp<L: Lanes>(l: L, x: &[f32]) -> f32 {
    let (m, lo) = row_range(l, x);
    if m.is_infinite() {
        // Shift by 0 (PyTorch's rule), and no fast path: an infinite maximum
        // is outside it, whatever `lo - 0` says.
        return libm::logf(sum_terms(l, &ExpShift::new(l, 0.0), x));
    }
    libm::logf(sum_exp_shift(l, m, lo, x)) + m
}

/// `y * (g - d)` as a zip `(y, g)`.
struct SoftmaxBackward<V> {
    d: V,
}
impl<L: Lanes> VZip<L> for SoftmaxBackward<L::V> {
    #[inline(always)]
    fn apply(&self, l: L, y: L::V, g: L::V) -> L::V {
        l.mul(y, l.sub(g, self.d))
    }
}

/// `g - e^y * s` as a zip `(y, g)`.
struct LogSoftmaxBackward<V> {
    s: V,
}
impl<L: Lanes> VZip<L> for LogSoftmaxBackward<L::V> {
    #[inline(always)]
    fn apply(&self, l: L, y: L::V, g: L::V) -> L::V {
        l.sub(g, l.mul(math::exp(l, y), self.s))
    }
}

/// Softmax gradient from the output: `out = y * (g - <g, y>)`.
#[inline(always)]
pub(crate) fn softmax_backward<L: Lanes>(l: L, y: &[f32], g: &[f32], out: &mut [f32]) {
    const OP: &str = "softmax_backward";
    check::pair(OP, y.len(), g.len());
    check::same(OP, y.len(), out.len());
    let d = dot(l, g, y);
    zip(l, OP, &SoftmaxBackward { d: l.splat(d) }, y, g, out);
}

/// Log-softmax gradient from the output: `out = g - e^y * sum(g)`.
#[inline(always)]
pub(crate) fn log_softmax_backward<L: Lanes>(l: L, y: &[f32], g: &[f32], out: &mut [f32]) {
    const OP: &str = "log_softmax_backward";
    check::pair(OP, y.len(), g.len());
    check::same(OP, y.len(), out.len());
    let s = sum(l, g);
    zip(l, OP, &LogSoftmaxBackward { s: l.splat(s) }, y, g, out);
}
