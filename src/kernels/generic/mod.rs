//! Kernel bodies written once over [`Lanes`], instantiated by each ISA file.
//!
//! Every function here is `#[inline(always)]` so that it is compiled inside the
//! ISA's `#[target_feature]` wrapper, where the intrinsics behind [`Lanes`] can
//! be inlined. Per-element operations are zero-sized (or parameter-carrying)
//! types implementing [`VMap`] / [`VZip`] rather than closures, so that no
//! intermediate function is left without the target features.
//!
//! **Tails.** The last `len % LANES` elements go through the same vector code
//! as the body: they are loaded into a register padded with a harmless value
//! (`Lanes::load_partial`, a masked load on AVX-512) and only the valid lanes
//! are stored. So an element's result never depends on its position in the
//! slice or on the slice's length.

pub(crate) mod math;
pub(crate) mod ops;
pub(crate) mod reduce;

use crate::kernels::check;
use crate::kernels::lanes::Lanes;

/// A lane-wise function of one register.
pub(crate) trait VMap<L: Lanes> {
    /// Applies the function to every lane of `v`.
    fn apply(&self, l: L, v: L::V) -> L::V;
}

/// A lane-wise function of two registers.
pub(crate) trait VZip<L: Lanes> {
    /// Applies the function lane by lane.
    fn apply(&self, l: L, a: L::V, b: L::V) -> L::V;
}

/// `out = f(x)` for slices of equal length (unchecked here).
#[inline(always)]
fn map_body<L: Lanes, F: VMap<L>>(l: L, f: &F, x: &[f32], out: &mut [f32]) {
    let mut xs = x.chunks_exact(L::LANES);
    let mut os = out.chunks_exact_mut(L::LANES);
    for (xc, oc) in (&mut xs).zip(&mut os) {
        l.store(f.apply(l, l.load(xc)), oc);
    }
    let (xr, or) = (xs.remainder(), os.into_remainder());
    if !xr.is_empty() {
        l.store_partial(f.apply(l, l.load_partial(xr, 0.0)), or);
    }
}

/// `out[i] = f(x[i])`. Panics if the lengths differ.
#[inline(always)]
pub(crate) fn map<L: Lanes, F: VMap<L>>(l: L, op: &str, f: &F, x: &[f32], out: &mut [f32]) {
    check::same(op, x.len(), out.len());
    map_body(l, f, x, out);
}

/// `buf[i] = f(buf[i])`.
#[inline(always)]
pub(crate) fn map_inplace<L: Lanes, F: VMap<L>>(l: L, f: &F, buf: &mut [f32]) {
    let mut bs = buf.chunks_exact_mut(L::LANES);
    for c in &mut bs {
        let v = f.apply(l, l.load(c));
        l.store(v, c);
    }
    let r = bs.into_remainder();
    if !r.is_empty() {
        let v = f.apply(l, l.load_partial(r, 0.0));
        l.store_partial(v, r);
    }
}

/// `f(x, b)` with `b` fixed: the broadcast-right adaptor.
struct Right<'a, F, V> {
    f: &'a F,
    b: V,
}
impl<L: Lanes, F: VZip<L>> VMap<L> for Right<'_, F, L::V> {
    #[inline(always)]
    fn apply(&self, l: L, a: L::V) -> L::V {
        self.f.apply(l, a, self.b)
    }
}

/// `f(a, x)` with `a` fixed: the broadcast-left adaptor.
struct Left<'a, F, V> {
    f: &'a F,
    a: V,
}
impl<L: Lanes, F: VZip<L>> VMap<L> for Left<'_, F, L::V> {
    #[inline(always)]
    fn apply(&self, l: L, b: L::V) -> L::V {
        self.f.apply(l, self.a, b)
    }
}

/// `out = f(a, b)` for three slices of equal length (unchecked here).
#[inline(always)]
fn zip_body<L: Lanes, F: VZip<L>>(l: L, f: &F, a: &[f32], b: &[f32], out: &mut [f32]) {
    let mut as_ = a.chunks_exact(L::LANES);
    let mut bs = b.chunks_exact(L::LANES);
    let mut os = out.chunks_exact_mut(L::LANES);
    for ((ac, bc), oc) in (&mut as_).zip(&mut bs).zip(&mut os) {
        l.store(f.apply(l, l.load(ac), l.load(bc)), oc);
    }
    let (ar, br, or) = (as_.remainder(), bs.remainder(), os.into_remainder());
    if !ar.is_empty() {
        let v = f.apply(l, l.load_partial(ar, 0.0), l.load_partial(br, 0.0));
        l.store_partial(v, or);
    }
}

/// `out[i] = f(a[i], b[i])`, where `a` and `b` each have `out.len()` elements
/// or one (broadcast). Panics otherwise.
#[inline(always)]
pub(crate) fn zip<L: Lanes, F: VZip<L>>(
    l: L,
    op: &str,
    f: &F,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
) {
    let n = out.len();
    check::operand(op, "a", a.len(), n);
    check::operand(op, "b", b.len(), n);
    match (a.len() == n, b.len() == n) {
        (true, true) => zip_body(l, f, a, b, out),
        (true, false) => map_body(
            l,
            &Right {
                f,
                b: l.splat(b[0]),
            },
            a,
            out,
        ),
        (false, true) => map_body(
            l,
            &Left {
                f,
                a: l.splat(a[0]),
            },
            b,
            out,
        ),
        (false, false) => {
            let v = f.apply(l, l.splat(a[0]), l.splat(b[0]));
            out.fill(l.to_array(v)[0]);
        }
    }
}

/// `acc[i] = f(acc[i], b[i])`, where `b` has `acc.len()` elements or one.
#[inline(always)]
pub(crate) fn zip_inplace<L: Lanes, F: VZip<L>>(l: L, op: &str, f: &F, acc: &mut [f32], b: &[f32]) {
    let n = acc.len();
    check::operand(op, "b", b.len(), n);
    if b.len() != n {
        return map_inplace(
            l,
            &Right {
                f,
                b: l.splat(b[0]),
            },
            acc,
        );
    }
    let mut cs = acc.chunks_exact_mut(L::LANES);
    let mut bs = b.chunks_exact(L::LANES);
    for (cc, bc) in (&mut cs).zip(&mut bs) {
        let v = f.apply(l, l.load(cc), l.load(bc));
        l.store(v, cc);
    }
    let (cr, br) = (cs.into_remainder(), bs.remainder());
    if !cr.is_empty() {
        let v = f.apply(l, l.load_partial(cr, 0.0), l.load_partial(br, 0.0));
        l.store_partial(v, cr);
    }
}
