//! The lane operations every GEMM/GEMV body is written over, and the portable
//! one-lane implementation.
//!
//! A value of a type implementing [`Simd`] is a capability token: the ISA types
//! (`Avx512`, `Avx2`, `Neon`) can only be constructed after the CPU was found to
//! support their instructions, so their safe methods may use those instructions.
//! Methods that dereference raw pointers are `unsafe` and state what they read or
//! write. All methods are `#[inline(always)]`: they are only ever inlined into a
//! function compiled with the matching `#[target_feature]`, where the
//! intrinsics become single instructions (the same reasoning as memchr's
//! `vector.rs`).

/// `W` f32 lanes of one instruction set.
pub(crate) trait Simd: Copy + Send + Sync + 'static {
    /// One register of `W` lanes.
    type V: Copy;
    /// Lanes per register.
    const W: usize;
    /// Vector registers the ISA has.
    const REGS: usize = 32;

    /// All lanes 0.
    fn zero(self) -> Self::V;
    /// All lanes `x`.
    fn splat(self, x: f32) -> Self::V;
    /// `W` consecutive values from `p`.
    ///
    /// # Safety
    /// `p .. p + W` must be readable.
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// Stores `W` consecutive values at `p`.
    ///
    /// # Safety
    /// `p .. p + W` must be writable.
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// The first `n` lanes from `p`, the others 0. Reads nothing past `p + n`.
    ///
    /// # Safety
    /// `n <= W` and `p .. p + n` must be readable.
    unsafe fn load_partial(self, p: *const f32, n: usize) -> Self::V;
    /// Stores the first `n` lanes at `p`. Writes nothing past `p + n`.
    ///
    /// # Safety
    /// `n <= W` and `p .. p + n` must be writable.
    unsafe fn store_partial(self, p: *mut f32, v: Self::V, n: usize);
    /// Asks for the cache lines holding `p .. p + n` to be brought into L2
    /// (no access: any address is fine). The portable path has no such hint.
    #[inline(always)]
    fn prefetch_l2(self, p: *const f32, n: usize) {
        let _ = (p, n);
    }
    /// `*p` in every lane.
    ///
    /// # Safety
    /// `p` must be readable.
    #[inline(always)]
    unsafe fn bcast(self, p: *const f32) -> Self::V {
        // SAFETY: forwarded from the caller.
        self.splat(unsafe { *p })
    }
    /// Writes the transpose of a `W x W` block: `dst[t * dst_stride + c] =
    /// src[c * stride + t]` for `c, t < W` (used to pack a column-major B).
    ///
    /// # Safety
    /// `src + c * stride .. + W` is readable and `dst + t * dst_stride .. + W`
    /// writable for every `c, t < W`, and the two do not overlap.
    #[inline(always)]
    unsafe fn transpose_block(
        self,
        src: *const f32,
        stride: usize,
        dst: *mut f32,
        dst_stride: usize,
    ) {
        for c in 0..Self::W {
            for t in 0..Self::W {
                // SAFETY: forwarded from the caller.
                unsafe { *dst.add(t * dst_stride + c) = *src.add(c * stride + t) };
            }
        }
    }
    /// `dst[t * R + i] = rows[i][t]` for `i < R`, `t < W`: `W` columns of `R`
    /// rows in the order of a packed A panel (used to pack a row-major A).
    ///
    /// # Safety
    /// `rows[i] .. + W` is readable for `i < R` and `dst .. + W * R` writable,
    /// not overlapping them.
    #[inline(always)]
    unsafe fn pack_rows<const R: usize>(self, rows: &[*const f32; R], dst: *mut f32) {
        // SAFETY: forwarded from the caller.
        unsafe { pack_rows_scalar::<R>(Self::W, rows, dst) }
    }
    /// A hand-scheduled k loop for one tile shape: adds
    /// `sum_p A[i, p] * B[p, v*W ..]` to `acc[i][v]` exactly as the generic loop
    /// in `kernel.rs` does (same operations, same order) and returns true, or
    /// returns false without touching anything when this path has none for
    /// `MR x NV`.
    ///
    /// # Safety
    /// As `kernel::tile`: the A and B panels are readable for `kc` steps.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn accumulate_tuned<const MR: usize, const NV: usize>(
        self,
        acc: &mut [[Self::V; NV]; MR],
        kc: usize,
        a: *const f32,
        a_rs: usize,
        a_cs: usize,
        b: *const f32,
        b_rs: usize,
    ) -> bool {
        let _ = (acc, kc, a, a_rs, a_cs, b, b_rs);
        false
    }
    /// `a * b + c` (fused on the SIMD paths, two roundings on the scalar one).
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `0` where `v < 0`, `v` elsewhere (NaN stays NaN).
    fn relu(self, v: Self::V) -> Self::V;
    /// Sum of the lanes, in a fixed order.
    fn hsum(self, v: Self::V) -> f32;
    /// The lane sums of four registers, each in a fixed order that does not
    /// depend on the other three.
    #[inline(always)]
    fn hsum4(self, v: [Self::V; 4]) -> [f32; 4] {
        [
            self.hsum(v[0]),
            self.hsum(v[1]),
            self.hsum(v[2]),
            self.hsum(v[3]),
        ]
    }
}

/// [`Simd::pack_rows`] for `w` columns, one value at a time.
///
/// # Safety
/// `rows[i] .. + w` is readable for `i < R` and `dst .. + w * R` writable.
#[inline(always)]
pub(super) unsafe fn pack_rows_scalar<const R: usize>(
    w: usize,
    rows: &[*const f32; R],
    dst: *mut f32,
) {
    for t in 0..w {
        for (i, r) in rows.iter().enumerate() {
            // SAFETY: forwarded from the caller.
            unsafe { *dst.add(t * R + i) = *r.add(t) };
        }
    }
}

/// The portable path: one lane, plain Rust. It is the reference the SIMD paths
/// are tested against, and what miri runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

impl Simd for Scalar {
    type V = f32;
    const W: usize = 1;

    #[inline(always)]
    fn zero(self) -> f32 {
        0.0
    }
    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> f32 {
        // SAFETY: the caller guarantees `p` is readable.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: f32) {
        // SAFETY: the caller guarantees `p` is writable.
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> f32 {
        if n == 0 {
            0.0
        } else {
            // SAFETY: n == 1 here, and the caller guarantees `p .. p + n` is readable.
            unsafe { *p }
        }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, v: f32, n: usize) {
        if n != 0 {
            // SAFETY: n == 1 here, and the caller guarantees `p .. p + n` is writable.
            unsafe { *p = v }
        }
    }
    #[inline(always)]
    fn fma(self, a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
    #[inline(always)]
    fn add(self, a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    fn mul(self, a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    fn relu(self, v: f32) -> f32 {
        if v < 0.0 { 0.0 } else { v }
    }
    #[inline(always)]
    fn hsum(self, v: f32) -> f32 {
        v
    }
}
