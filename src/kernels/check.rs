//! Length checks done once at the entry of every kernel, with the panic
//! messages shared by the scalar and SIMD paths.
//!
//! The panics are programmer errors (the ops layer sizes every buffer); they
//! are cold and out of line so the checks cost one compare each.

/// Panics unless `x` and `out` have the same length.
#[inline(always)]
pub(crate) fn same(op: &str, x: usize, out: usize) {
    if x != out {
        mismatch(op, x, out);
    }
}

/// Panics unless an operand of an element-wise binary kernel has `out`'s
/// length or length 1 (a broadcast scalar).
#[inline(always)]
pub(crate) fn operand(op: &str, which: &str, len: usize, out: usize) {
    if len != out && len != 1 {
        bad_operand(op, which, len, out);
    }
}

/// Panics unless two reduction operands have the same length.
#[inline(always)]
pub(crate) fn pair(op: &str, a: usize, b: usize) {
    if a != b {
        bad_pair(op, a, b);
    }
}

/// Panics if `n` is zero.
#[inline(always)]
pub(crate) fn nonempty(op: &str, n: usize) {
    if n == 0 {
        empty(op);
    }
}

#[cold]
#[inline(never)]
fn mismatch(op: &str, x: usize, out: usize) -> ! {
    panic!("kernels::{op}: input has {x} elements but out has {out}")
}

#[cold]
#[inline(never)]
fn bad_operand(op: &str, which: &str, len: usize, out: usize) -> ! {
    panic!(
        "kernels::{op}: operand `{which}` has {len} elements; it must have out's length ({out}) or 1"
    )
}

#[cold]
#[inline(never)]
fn bad_pair(op: &str, a: usize, b: usize) -> ! {
    panic!("kernels::{op}: operands have {a} and {b} elements; they must be equal")
}

#[cold]
#[inline(never)]
fn empty(op: &str) -> ! {
    panic!("kernels::{op}: the input is empty")
}

/// Panics unless `out[i] = src[i * stride]` stays inside `src`.
pub(crate) fn strided(src: usize, stride: usize, n: usize) {
    if n > 0 && (n - 1).checked_mul(stride).is_none_or(|last| last >= src) {
        panic!(
            "kernels::copy_strided: {n} elements at stride {stride} do not fit in a source of {src}"
        );
    }
}

/// Panics unless a `rows x cols` block with row stride `stride` fits in `src`
/// and `out` holds exactly `rows * cols` elements.
pub(crate) fn transpose(src: usize, rows: usize, cols: usize, stride: usize, out: usize) {
    let Some(n) = rows.checked_mul(cols) else {
        panic!("kernels::transpose: {rows} x {cols} overflows usize");
    };
    if out != n {
        panic!("kernels::transpose: out has {out} elements, expected {rows} x {cols} = {n}");
    }
    if n == 0 {
        return;
    }
    if stride < cols {
        panic!("kernels::transpose: row stride {stride} is smaller than cols {cols}");
    }
    row_block("transpose", src, rows, stride, cols);
}

/// The checks of `kahan_rows`: `comp` as long as `acc`, and `rows` rows of
/// `acc`'s length at row stride `stride` inside `src`.
pub(crate) fn kahan_rows(acc: usize, comp: usize, src: usize, rows: usize, stride: usize) {
    same("kahan_rows", comp, acc);
    row_block("kahan_rows", src, rows, stride, acc);
}

/// Panics unless `rows` rows of `cols` elements at row stride `stride` fit in
/// a source of `src` elements.
pub(crate) fn row_block(op: &str, src: usize, rows: usize, stride: usize, cols: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let need = (rows - 1)
        .checked_mul(stride)
        .and_then(|last| last.checked_add(cols));
    if need.is_none_or(|need| need > src) {
        panic!(
            "kernels::{op}: {rows} rows of {cols} elements at stride {stride} do not fit in a source of {src}"
        );
    }
}
