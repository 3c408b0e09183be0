//! Sliding windows along one dimension: sums (the building block of
//! average pooling, built from strided views and `sum_dims`, so autograd
//! follows them) and the position of each window's maximum (max pooling's
//! large windows).

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

/// The position of each window's maximum along a sequence of `len`
/// positions read by `val`: `emit(o, Some(p))` for window `o < n_out`, whose
/// taps run from `span(o).0` up to (not including) `span(o).1` in steps of
/// `dilation`, with `p` the first of its maxima, or the last of its NaNs if
/// it holds any (PyTorch's max pooling order); `emit(o, None)` for a window
/// with no tap. Window `o` starts `o * stride` positions after window 0.
///
/// A monotonic queue per class of windows whose taps fall on the same
/// positions modulo the dilation: each position enters and leaves it once,
/// so the cost is `O(len + n_out)` whatever the window length, not
/// `O(n_out * taps)`. `queue` is the queue's storage (any contents), so
/// callers reuse one across sequences; it holds at most one entry per tap
/// position of a class, so a capacity of `len` never reallocates.
pub(crate) fn window_argmax(
    n_out: usize,
    stride: usize,
    dilation: usize,
    span: impl Fn(usize) -> (usize, usize),
    val: impl Fn(usize) -> f32,
    queue: &mut Vec<usize>,
    mut emit: impl FnMut(usize, Option<usize>),
) {
    // A later tap evicts an earlier one it beats: a NaN evicts everything
    // (the last NaN wins), a number evicts smaller numbers (the first of
    // equal maxima stays in front).
    let beats = |new: f32, old: f32| new.is_nan() || (!old.is_nan() && old < new);
    // Windows `o` and `o + period` start on the same positions modulo the
    // dilation; the classes `o0 < period` are swept one after the other.
    let period = dilation / gcd(stride, dilation);
    for o0 in 0..period.min(n_out) {
        queue.clear();
        let mut head = 0;
        let mut next = 0;
        for o in (o0..n_out).step_by(period) {
            let (first, end) = span(o);
            if first >= end {
                emit(o, None);
                continue;
            }
            let mut p = next.max(first);
            while p < end {
                let v = val(p);
                while queue.len() > head && beats(v, val(queue[queue.len() - 1])) {
                    queue.pop();
                }
                queue.push(p);
                p += dilation;
            }
            next = p;
            while queue[head] < first {
                head += 1;
            }
            emit(o, Some(queue[head]));
        }
    }
}

/// Greatest common divisor (both at least 1).
fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

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

    /// Every window's argmax equals a scan of its taps in order (first of
    /// equal maxima, last NaN), over values with many ties, NaNs and
    /// infinities, for strides and dilations with and without common
    /// factors, padding on both sides and empty windows.
    #[test]
    fn window_argmax_matches_a_scan() {
        let mut queue = Vec::with_capacity(64);
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for case in 0..3000 {
            let len = 1 + next() % 40;
            let (k, s, d) = (1 + next() % 12, 1 + next() % 5, 1 + next() % 4);
            let pad = next() % 6;
            let vals: Vec<f32> = (0..len)
                .map(|_| match next() % 10 {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    v => (v % 4) as f32,
                })
                .collect();
            // Window o's taps: o * s - pad + m * d for m < k, inside 0..len.
            let taps = |o: usize| -> Vec<usize> {
                (0..k)
                    .map(|m| (o * s + m * d) as isize - pad as isize)
                    .filter(|&q| q >= 0 && (q as usize) < len)
                    .map(|q| q as usize)
                    .collect()
            };
            let span = |o: usize| {
                let t = taps(o);
                match (t.first(), t.last()) {
                    (Some(&a), Some(&b)) => (a, b + 1),
                    _ => (0, 0),
                }
            };
            let n_out = 1 + next() % 30;
            let mut got = vec![None; n_out];
            window_argmax(
                n_out,
                s,
                d,
                span,
                |q| vals[q],
                &mut queue,
                |o, at| got[o] = Some(at),
            );
            for (o, g) in got.iter().enumerate() {
                let mut want = None;
                for q in taps(o) {
                    let better = match want {
                        None => true,
                        Some(b) => vals[q] > vals[b] || vals[q].is_nan(),
                    };
                    if better {
                        want = Some(q);
                    }
                }
                assert_eq!(
                    *g,
                    Some(want),
                    "case {case}: len {len} k {k} s {s} d {d} pad {pad} o {o}"
                );
            }
        }
    }
}
