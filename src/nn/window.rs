//! Sums over sliding windows along one dimension, the building block of
//! average pooling: built from strided views and `sum_dims`, so autograd
//! follows them.

use alloc::vec::Vec;

use crate::error::Result;
use crate::tensor::Tensor;

/// `x` with dimension `dim` replaced by `out` window sums: element `o` is
/// `x[.., o * stride + j, ..]` summed over `j < k`.
///
/// A window sum costs `k` additions per output, so a long window at a small
/// stride (windows overlapping many times) is split in two levels instead:
/// sums of `m ≈ √k` consecutive elements at every position, then `k / m` of
/// those `m` apart plus the `k mod m` elements left over. That costs about
/// `len · m + out · 2m` additions, not `out · k` (a kernel of 8,192 over
/// 65,536 columns: 40x fewer), and adds the same elements in another order.
///
/// The caller guarantees `k >= 1`, `out >= 1` and that the last window ends
/// inside the dimension: `(out - 1) * stride + k <= x.dims()[dim]`.
pub(crate) fn window_sums(
    x: &Tensor,
    dim: usize,
    k: usize,
    stride: usize,
    out: usize,
) -> Result<Tensor> {
    let len = x.dims()[dim];
    debug_assert!(k >= 1 && out >= 1 && (out - 1) * stride + k <= len);
    if !two_levels(len, k, out) {
        return strided_sums(x, dim, 0, stride, 1, k, out);
    }
    let m = k.isqrt();
    let (q, r) = (k / m, k % m);
    // Sums of m consecutive elements starting at every position.
    let runs = strided_sums(x, dim, 0, 1, 1, m, len - m + 1)?;
    // q of them, m apart, per window: its first q * m elements.
    let head = strided_sums(&runs, dim, 0, stride, m, q, out)?;
    if r == 0 {
        return Ok(head);
    }
    let tail = strided_sums(x, dim, q * m, stride, 1, r, out)?;
    head.try_add_tensor(&tail)
}

/// Whether [`window_sums`] takes two levels: when they add at most half as
/// many elements as summing each window.
fn two_levels(len: usize, k: usize, out: usize) -> bool {
    let m = k.isqrt();
    let direct = out.saturating_mul(k);
    let split = len
        .saturating_mul(m)
        .saturating_add(out.saturating_mul(k / m.max(1) + k % m.max(1)));
    m >= 2 && split.saturating_mul(2) <= direct
}

/// `x` with dimension `dim` replaced by `out` sums: element `o` sums
/// `x[.., start + o * stride + j * step, ..]` over `j < count`, through a
/// view with the `count` terms in a trailing dimension. The indices stay
/// inside the dimension (the caller's guarantee), so no product overflows.
fn strided_sums(
    x: &Tensor,
    dim: usize,
    start: usize,
    stride: usize,
    step: usize,
    count: usize,
    out: usize,
) -> Result<Tensor> {
    let sd = x.strides()[dim];
    let mut dims: Vec<usize> = x.dims().to_vec();
    let mut strides: Vec<usize> = x.strides().to_vec();
    dims[dim] = out;
    // With one output the stride is never used (and may be huge).
    strides[dim] = if out > 1 { stride * sd } else { 0 };
    dims.push(count);
    strides.push(if count > 1 { step * sd } else { 0 });
    let rank = x.rank();
    let view = x.try_as_strided(&dims, &strides, x.offset() + start * sd)?;
    view.try_sum_dims([rank], false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Window sums equal a scalar f64 reference on both paths (short
    /// windows summed directly, long overlapping ones in two levels, with
    /// and without leftover elements), along the first and last dimension.
    #[test]
    fn window_sums_match_a_naive_reference() {
        let mut paths = [false; 2];
        for &(len, k, stride) in &[
            (10usize, 3usize, 1usize),
            (10, 10, 1),
            (200, 64, 1),
            (200, 67, 1),
            (300, 99, 2),
            (301, 150, 3),
            (50, 49, 1),
        ] {
            let out = (len - k) / stride + 1;
            paths[usize::from(two_levels(len, k, out))] = true;
            let x = Tensor::from_fn([3, len], |i| {
                ((i[0] * 7 + i[1] * 13) % 17) as f32 * 0.5 - 4.0
            });
            for dim in [0, 1] {
                let t = if dim == 1 {
                    x.clone()
                } else {
                    x.t().contiguous()
                };
                let y = window_sums(&t, dim, k, stride, out).unwrap();
                for row in 0..3 {
                    for o in 0..out {
                        let want: f64 = (0..k).map(|j| x.get(&[row, o * stride + j]) as f64).sum();
                        let at = if dim == 1 { [row, o] } else { [o, row] };
                        let got = y.get(&at) as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "len {len} k {k} stride {stride} dim {dim}: {got} vs {want}"
                        );
                    }
                }
            }
        }
        assert_eq!(paths, [true, true], "both paths are tested");
    }
}
