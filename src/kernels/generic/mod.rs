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
///
/// A function may also have a cheaper form on a common domain: the guarded
/// maps ([`map_guarded`]) check each block of [`GUARD_REGS`] registers with
/// [`guard`](VMap::guard) and run [`fast`](VMap::fast) on blocks that are
/// wholly inside. `fast` must equal `apply` bit for bit on inside lanes, so a
/// result never depends on its neighbours (nor on how threads split a slice).
pub(crate) trait VMap<L: Lanes> {
    /// Applies the function to every lane of `v`.
    fn apply(&self, l: L, v: L::V) -> L::V;

    /// The fast domain is `|guard(v)| <= FAST_BOUND` lane by lane (a NaN
    /// guard is outside). The default has no fast domain to leave.
    const FAST_BOUND: f32 = f32::INFINITY;
    /// The value a lane's guard compares (see [`FAST_BOUND`](Self::FAST_BOUND)).
    #[inline(always)]
    fn guard(&self, l: L, _v: L::V) -> L::V {
        l.splat(0.0)
    }
    /// `apply` for a register whose lanes are all inside the fast domain.
    #[inline(always)]
    fn fast(&self, l: L, v: L::V) -> L::V {
        self.apply(l, v)
    }
}

/// Registers per guarded block: the check is a second, cheap pass over a
/// block that is still in L1 (8 registers measured best on Zen 4 for AVX2).
pub(crate) const GUARD_REGS: usize = 8;

/// Whether every element of `x` is inside `f`'s fast domain: the largest
/// `|guard|` of the block, kept as bits ([`Lanes::max_bits`], so a NaN
/// sticks), against the bound once. Two integer operations a register, off
/// the floating-point pipes the maps fill, where a compare and a mask merge
/// per register were (Zen 4, 1e6 elements, same-run pairs: AVX-512 exp 7 %
/// and sigmoid 5 % faster, AVX2 sigmoid 8 % faster, AVX2 exp 5 % slower).
#[inline(always)]
fn all_inside<L: Lanes, F: VMap<L>>(l: L, f: &F, x: &[f32]) -> bool {
    let n = L::LANES;
    let top = if x.len() < n {
        // Padding with a valid element leaves the answer unchanged.
        let Some(&first) = x.first() else {
            return true;
        };
        l.abs(f.guard(l, l.load_partial(x, first)))
    } else {
        // From the first register on (no zero to keep in a register); a
        // partial last register is read as the last full `n` elements
        // instead (they overlap the previous register, which changes no
        // maximum).
        let mut top = l.abs(f.guard(l, l.load(x)));
        let mut i = n;
        while i + n <= x.len() {
            top = l.max_bits(top, l.abs(f.guard(l, l.load(&x[i..]))));
            i += n;
        }
        if i < x.len() {
            top = l.max_bits(top, l.abs(f.guard(l, l.load(&x[x.len() - n..]))));
        }
        top
    };
    !l.any(l.mnot(l.le(top, l.splat(F::FAST_BOUND))))
}

/// `f.fast` as a plain map.
struct Fast<'a, F>(&'a F);
impl<L: Lanes, F: VMap<L>> VMap<L> for Fast<'_, F> {
    #[inline(always)]
    fn apply(&self, l: L, v: L::V) -> L::V {
        self.0.fast(l, v)
    }
}

/// A lane-wise function of two registers.
pub(crate) trait VZip<L: Lanes> {
    /// Applies the function lane by lane.
    fn apply(&self, l: L, a: L::V, b: L::V) -> L::V;
}

/// `out[i] = f(x[i])` for the whole registers from `from` up to `len` (`out`
/// may be `x`: each register is read before it is written); returns where
/// they ended (`len` rounded down to a register past `from`).
///
/// # Safety
/// `x` has `len` readable values and `out` `len` writable ones.
#[inline(always)]
unsafe fn map_registers<L: Lanes, F: VMap<L>>(
    l: L,
    f: &F,
    x: *const f32,
    out: *mut f32,
    from: usize,
    len: usize,
) -> usize {
    let w = L::LANES;
    let mut i = from;
    // SAFETY: `i + w <= len`: the register lies inside both buffers.
    unsafe {
        while i + w <= len {
            l.store_at(f.apply(l, l.load_at(x.add(i))), out.add(i));
            i += w;
        }
    }
    i
}

/// `out = f(x)` over the shorter of the two slices (callers pass equal
/// lengths).
///
/// The loops in this module index raw pointers rather than iterate
/// `chunks_exact` zipped together: where the compiler does not inline
/// (`opt-level = "z"`, the boards' firmware) every step of those iterators
/// was a call, about 40 instructions per register on the aarch64 boards
/// (QEMU's count). At `opt-level = 3` both compile alike.
#[inline(always)]
fn map_body<L: Lanes, F: VMap<L>>(l: L, f: &F, x: &[f32], out: &mut [f32]) {
    let (w, len) = (L::LANES, x.len().min(out.len()));
    let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    // SAFETY: `i + 2w <= len`: the registers read and written lie inside
    // both slices.
    unsafe {
        while i + 2 * w <= len {
            let a = f.apply(l, l.load_at(xp.add(i)));
            let b = f.apply(l, l.load_at(xp.add(i + w)));
            l.store_at(a, op.add(i));
            l.store_at(b, op.add(i + w));
            i += 2 * w;
        }
    }
    map_rest(l, f, x, out, i);
}

/// `out = f(x)` from index `from` on, one register at a time, then the
/// partial register at the end, over the shorter of the two slices.
#[inline(always)]
fn map_rest<L: Lanes, F: VMap<L>>(l: L, f: &F, x: &[f32], out: &mut [f32], from: usize) {
    let len = x.len().min(out.len());
    // SAFETY: both slices have `len` values.
    let i = unsafe { map_registers(l, f, x.as_ptr(), out.as_mut_ptr(), from, len) };
    if i < len {
        l.store_partial(
            f.apply(l, l.load_partial(&x[i..len], 0.0)),
            &mut out[i..len],
        );
    }
}

/// A lane-wise function computed in two passes: `apply(x)` must equal
/// `second(x, first(x))` bit for bit.
///
/// A function whose one-pass body holds more constants and a longer
/// dependence chain than the registers and the scheduler cover (tanh on
/// AVX2's 16 registers) runs faster as two short loops over a chunk in L1,
/// the first storing its intermediate: see [`map_staged`]. (Zen 4, 1e6
/// elements, same-run pairs: AVX2 tanh 545 -> 470 us; AVX-512 unchanged.
/// exp and sigmoid split the same way gained nothing.) Paths whose
/// [`Lanes::STAGED`] is false run one pass: on an Intel Xeon (Emerald Rapids
/// class) AVX-512 tanh took 0.373 ns per element in one pass against 0.425
/// staged at 65,536 elements (in L2) and 0.378 against 0.449 at 1e6 (best of
/// eight alternated runs each), while AVX2 there kept its gain from staging
/// (0.572 against 0.594 and 0.601 against 0.609). NEON stays staged
/// (not measured on a board).
pub(crate) trait VStaged<L: Lanes>: VMap<L> {
    /// The first pass: an intermediate value per lane.
    fn first(&self, l: L, x: L::V) -> L::V;
    /// The second pass: the result from `x` and `first(x)`.
    fn second(&self, l: L, x: L::V, mid: L::V) -> L::V;
}

/// Elements per chunk of a staged map (a multiple of every `LANES`): the
/// intermediates go to the chunk's output, which stays in L1 between the
/// passes (in place, the chunk's input is first copied to 2 KiB of stack).
const STAGE_LEN: usize = 512;

/// [`VStaged::first`] as a map.
struct First<'a, F>(&'a F);
impl<L: Lanes, F: VStaged<L>> VMap<L> for First<'_, F> {
    #[inline(always)]
    fn apply(&self, l: L, x: L::V) -> L::V {
        self.0.first(l, x)
    }
}

/// [`VStaged::second`] as a zip `(mid, x)`.
struct Second<'a, F>(&'a F);
impl<L: Lanes, F: VStaged<L>> VZip<L> for Second<'_, F> {
    #[inline(always)]
    fn apply(&self, l: L, mid: L::V, x: L::V) -> L::V {
        self.0.second(l, x, mid)
    }
}

/// One chunk of a staged map: `out = f.first(x)`, then `out = f.second(x,
/// out)` (`x.len() == out.len()`). The first pass takes one register per
/// iteration: with two (as `map_body`) AVX2 tanh is 9 % slower (Zen 4).
#[inline(always)]
fn staged_chunk<L: Lanes, F: VStaged<L>>(l: L, op: &str, f: &F, x: &[f32], out: &mut [f32]) {
    map_rest(l, &First(f), x, out, 0);
    zip_inplace(l, op, &Second(f), out, x);
}

/// `out[i] = f(x[i])` in two passes per chunk of [`STAGE_LEN`] elements
/// (slices shorter than a chunk, and paths whose [`Lanes::STAGED`] is false,
/// in one pass: the same bits). Panics if the lengths differ.
#[inline(always)]
pub(crate) fn map_staged<L: Lanes, F: VStaged<L>>(
    l: L,
    op: &str,
    f: &F,
    x: &[f32],
    out: &mut [f32],
) {
    check::same(op, x.len(), out.len());
    if x.len() < STAGE_LEN || !L::STAGED {
        return map_body(l, f, x, out);
    }
    for (xc, oc) in x.chunks(STAGE_LEN).zip(out.chunks_mut(STAGE_LEN)) {
        staged_chunk(l, op, f, xc, oc);
    }
}

/// In-place [`map_staged`]: each chunk is copied out (2 KiB on the stack)
/// and mapped back into place.
#[inline(always)]
pub(crate) fn map_inplace_staged<L: Lanes, F: VStaged<L>>(l: L, op: &str, f: &F, buf: &mut [f32]) {
    if buf.len() < STAGE_LEN || !L::STAGED {
        return map_inplace(l, f, buf);
    }
    let mut tmp = [0.0f32; STAGE_LEN];
    for bc in buf.chunks_mut(STAGE_LEN) {
        let x = &mut tmp[..bc.len()];
        x.copy_from_slice(bc);
        staged_chunk(l, op, f, x, bc);
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
    let p = buf.as_mut_ptr();
    // SAFETY: `buf` has `buf.len()` values; it is both the input and the
    // output, which `map_registers` allows.
    let i = unsafe { map_registers(l, f, p, p, 0, buf.len()) };
    if i < buf.len() {
        let r = &mut buf[i..];
        let v = f.apply(l, l.load_partial(r, 0.0));
        l.store_partial(v, r);
    }
}

/// `out[i] = f(x[i])` for a guarded `f`: blocks of [`GUARD_REGS`] registers
/// wholly inside `f`'s fast domain through `f.fast`, the others through
/// `apply`, the plain map of `f.apply` compiled as its own kernel (so that
/// its constants do not crowd the fast loop's registers). Panics if the
/// lengths differ.
#[inline(always)]
pub(crate) fn map_guarded<L: Lanes, F: VMap<L>, A: Fn(&[f32], &mut [f32])>(
    l: L,
    op: &str,
    f: &F,
    apply: A,
    x: &[f32],
    out: &mut [f32],
) {
    check::same(op, x.len(), out.len());
    let block = GUARD_REGS * L::LANES;
    for (xb, ob) in x.chunks(block).zip(out.chunks_mut(block)) {
        if all_inside(l, f, xb) {
            map_body(l, &Fast(f), xb, ob);
        } else {
            apply(xb, ob);
        }
    }
}

/// In-place [`map_guarded`].
#[inline(always)]
pub(crate) fn map_inplace_guarded<L: Lanes, F: VMap<L>, A: Fn(&mut [f32])>(
    l: L,
    f: &F,
    apply: A,
    buf: &mut [f32],
) {
    for b in buf.chunks_mut(GUARD_REGS * L::LANES) {
        if all_inside(l, f, b) {
            map_inplace(l, &Fast(f), b);
        } else {
            apply(b);
        }
    }
}

/// `out[i] = f.fast(x[i])`, lengths unchecked: for a caller that knows every
/// element is inside `f`'s fast domain.
#[inline(always)]
pub(crate) fn map_fast<L: Lanes, F: VMap<L>>(l: L, f: &F, x: &[f32], out: &mut [f32]) {
    map_body(l, &Fast(f), x, out);
}

/// In-place [`map_fast`].
#[inline(always)]
pub(crate) fn map_inplace_fast<L: Lanes, F: VMap<L>>(l: L, f: &F, buf: &mut [f32]) {
    map_inplace(l, &Fast(f), buf);
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

/// `out[i] = f(a[i], b[i])` for the whole registers of `len` values
/// (`out` may be `a`: each register is read before it is written); returns
/// how many values that covered (`len` rounded down to a register).
///
/// # Safety
/// `a` and `b` have `len` readable values and `out` `len` writable ones.
#[inline(always)]
unsafe fn zip_registers<L: Lanes, F: VZip<L>>(
    l: L,
    f: &F,
    a: *const f32,
    b: *const f32,
    out: *mut f32,
    len: usize,
) -> usize {
    let w = L::LANES;
    let mut i = 0;
    // SAFETY: `i + w <= len`: the registers lie inside the three buffers.
    unsafe {
        while i + w <= len {
            let v = f.apply(l, l.load_at(a.add(i)), l.load_at(b.add(i)));
            l.store_at(v, out.add(i));
            i += w;
        }
    }
    i
}

/// `out = f(a, b)` over the shortest of the three slices (callers pass
/// equal lengths).
#[inline(always)]
fn zip_body<L: Lanes, F: VZip<L>>(l: L, f: &F, a: &[f32], b: &[f32], out: &mut [f32]) {
    let len = a.len().min(b.len()).min(out.len());
    // SAFETY: each slice has at least `len` values.
    let i = unsafe { zip_registers(l, f, a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), len) };
    if i < len {
        let v = f.apply(
            l,
            l.load_partial(&a[i..len], 0.0),
            l.load_partial(&b[i..len], 0.0),
        );
        l.store_partial(v, &mut out[i..len]);
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
    let len = n.min(b.len());
    let cp = acc.as_mut_ptr();
    // SAFETY: `acc` and `b` have at least `len` values; `acc` is both the
    // first operand and the output, which `zip_registers` allows.
    let i = unsafe { zip_registers(l, f, cp, b.as_ptr(), cp, len) };
    if i < len {
        let cr = &mut acc[i..len];
        let v = f.apply(l, l.load_partial(cr, 0.0), l.load_partial(&b[i..len], 0.0));
        l.store_partial(v, cr);
    }
}
