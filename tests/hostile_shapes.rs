//! Hostile sizes: every `try_` form given sizes whose products overflow,
//! wrap or ask for absurd memory returns `Err` (never a panic), and never a
//! tensor that claims more elements than its storage holds. Regression tests
//! for the defects a hostile-input review found (and their siblings).

use train_station::nn::{
    Conv1d, Conv2d, ConvOptions, MaxPool2d, MaxPool2dOptions, Module, Upsample,
};
use train_station::{Error, MAX_NUMEL, Tensor};

const BIG: usize = 1 << 32;

fn is_overflow(e: &Error) -> bool {
    matches!(e, Error::InvalidArgument { detail, .. } if detail.starts_with("numel: integer multiplication overflow"))
}

#[track_caller]
fn overflow<T: core::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(e) => assert!(is_overflow(&e), "expected a numel overflow, got {e}"),
        Ok(v) => panic!("expected a numel overflow, got Ok({v:?})"),
    }
}

#[test]
fn constructors_reject_element_counts_past_isize_max() {
    overflow(Tensor::try_zeros([BIG, BIG]));
    overflow(Tensor::try_full([BIG, BIG, 2], 1.0));
    overflow(Tensor::from_slice(&[], [BIG, BIG]));
    overflow(Tensor::try_eye_rect(BIG, BIG));
    overflow(Tensor::try_rand([BIG, BIG], Some(1)));
    // A zero dimension does not excuse the others: their product must fit too.
    overflow(Tensor::try_zeros([0, BIG, BIG]));
    // Exactly isize::MAX elements is a valid shape (the allocation then fails).
    let e = Tensor::try_zeros([MAX_NUMEL]).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    // The plain form panics with the same message.
    let msg = std::panic::catch_unwind(|| Tensor::zeros([BIG, BIG]))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    assert!(
        msg.contains("numel: integer multiplication overflow"),
        "{msg}"
    );
}

#[test]
fn views_reject_element_counts_past_isize_max() {
    let x = Tensor::ones([1, 1]);
    overflow(x.try_expand([BIG, BIG]));
    overflow(x.try_broadcast_to([BIG, BIG]));
    overflow(x.try_as_strided([BIG, BIG], [0, 0], 0));
    overflow(x.try_pad(&[(0, BIG as isize), (0, BIG as isize)], 0.0));
    overflow(x.try_repeat(&[BIG, BIG]));
    // Legitimate stride-0 views stay allowed, and report their true size.
    let v = x.try_expand([1 << 20, 1 << 20]).unwrap();
    assert_eq!(v.numel(), 1 << 40);
    // Unfolding an expanded dimension can multiply the count.
    let wide = Tensor::ones([1]).expand([BIG * 2]);
    overflow(wide.try_unfold(0, BIG, 1));
}

#[test]
fn split_sizes_that_wrap_are_rejected() {
    // [usize::MAX, 5] sums to 4 modulo 2^64: it must not pass for a size-4
    // dimension and yield a [usize::MAX] view over 4 elements.
    let x = Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0], [4]).unwrap();
    let e = x.try_split_sizes(&[usize::MAX, 5], 0).unwrap_err();
    assert!(matches!(e, Error::NumelMismatch { .. }), "{e}");
    let e = x.try_split_sizes(&[usize::MAX, 1, 4], 0).unwrap_err();
    assert!(matches!(e, Error::NumelMismatch { .. }), "{e}");
    let parts = x.try_split_sizes(&[1, 3], 0).unwrap();
    assert_eq!(parts[1].to_vec(), [2.0, 3.0, 4.0]);
    // A huge split size is one piece.
    let parts = x.try_split(usize::MAX, 0).unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].to_vec(), x.to_vec());
}

#[test]
fn huge_steps_do_not_overflow_strides() {
    let x = Tensor::from_fn([3, 5], |i| (i[0] * 5 + i[1]) as f32);
    let s = x.try_slice(1, 1, 5, usize::MAX).unwrap();
    assert_eq!(s.dims(), &[3, 1]);
    assert_eq!(s.to_vec(), [1.0, 6.0, 11.0]);
    let s = x.try_slice(0, 0, 3, usize::MAX).unwrap();
    assert_eq!(s.to_vec(), [0.0, 1.0, 2.0, 3.0, 4.0]);
    let u = x.try_unfold(1, 2, usize::MAX).unwrap();
    assert_eq!(u.dims(), &[3, 1, 2]);
    assert_eq!(u.to_vec(), [0.0, 1.0, 5.0, 6.0, 10.0, 11.0]);
    let e = x.try_narrow(1, usize::MAX, 2).unwrap_err();
    assert!(matches!(e, Error::IndexOutOfRange { .. }), "{e}");
    assert!(x.try_select(0, isize::MIN).is_err());
    assert_eq!(
        x.try_slice(1, isize::MIN, isize::MAX, 2).unwrap().dims(),
        &[3, 3]
    );
}

#[test]
fn reshape_targets_that_do_not_fit_isize_are_rejected() {
    let x = Tensor::ones([2, 3]);
    // usize::MAX cast to isize is -1: it must not be taken as "infer".
    assert!(x.try_reshape([usize::MAX, 2]).is_err());
    assert!(x.try_reshape([2, usize::MAX]).is_err());
    assert!(x.try_view([usize::MAX]).is_err());
    assert!(x.try_expand([usize::MAX, 3]).is_err());
    assert!(x.try_reshape([BIG, BIG, 0]).is_err());
    assert_eq!(x.try_reshape([3usize, 2]).unwrap().dims(), &[3, 2]);
}

#[test]
fn joins_whose_size_overflows_are_rejected() {
    let half = Tensor::ones([1]).expand([MAX_NUMEL / 2 + 1]);
    assert!(Tensor::try_cat(&[&half, &half], 0).is_err());
    let huge = Tensor::ones([1]).expand([MAX_NUMEL]);
    assert!(Tensor::try_stack(&[&huge, &huge], 0).is_err());
    let idx = Tensor::zeros([2]);
    assert!(
        huge.try_unsqueeze(0)
            .unwrap()
            .try_index_select(0, &idx)
            .is_err()
    );
}

#[test]
fn splitting_an_expanded_tensor_into_too_many_pieces_is_an_error() {
    let huge = Tensor::ones([1]).expand([MAX_NUMEL]);
    let e = huge.try_split(1, 0).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    let e = huge.try_unbind(0).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
}

#[test]
fn conv_with_a_huge_dilation_or_padding_is_an_error() {
    let x = Tensor::ones([1, 1, 8]);
    // dilation * (k - 1) + 1 wraps to 1 for dilation 2^63 and k = 3.
    let conv = Conv1d::try_new(1, 1, 3, ConvOptions::default().dilation(1usize << 63)).unwrap();
    let e = conv.try_forward(&x).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    let conv = Conv1d::try_new(1, 1, 3, ConvOptions::default().dilation(usize::MAX)).unwrap();
    assert!(conv.try_forward(&x).is_err());
    let conv = Conv1d::try_new(1, 1, 3, ConvOptions::default().padding(usize::MAX / 2)).unwrap();
    assert!(conv.try_forward(&x).is_err());
    // A huge stride is fine: one output position.
    let conv = Conv2d::try_new(1, 1, [2, 2], ConvOptions::default().stride(usize::MAX)).unwrap();
    let y = conv.try_forward(&Tensor::ones([1, 1, 4, 4])).unwrap();
    assert_eq!(y.dims(), &[1, 1, 1, 1]);
    // Dilation 3 still works (the checked path computes the same sizes).
    let conv = Conv1d::try_new(1, 1, 3, ConvOptions::default().dilation(3)).unwrap();
    assert_eq!(conv.try_forward(&x).unwrap().dims(), &[1, 1, 2]);
}

#[test]
fn pooling_with_huge_parameters_is_an_error_or_correct() {
    let x = Tensor::ones([1, 1, 4, 4]);
    let big_stride = MaxPool2d::try_new([2, 2], MaxPool2dOptions::default().stride(usize::MAX));
    let y = big_stride.unwrap().try_forward(&x).unwrap();
    assert_eq!(y.dims(), &[1, 1, 1, 1]);
    for out in [1usize << 40, usize::MAX] {
        let p = train_station::nn::AdaptiveAvgPool2d::new(out, out);
        assert!(p.try_forward(&x).is_err());
    }
    let mp = MaxPool2d::try_new([2, 2], MaxPool2dOptions::default().ceil_mode(true)).unwrap();
    let y = mp.try_forward(&Tensor::ones([1, 1]).expand([3, 1 << 20]).reshape([
        1,
        3,
        1 << 10,
        1 << 10,
    ]));
    assert_eq!(y.unwrap().dims(), &[1, 3, 512, 512]);
    for dilation in [1usize << 62, usize::MAX] {
        let p = MaxPool2d::try_new([2, 2], MaxPool2dOptions::default().dilation(dilation));
        if let Ok(p) = p {
            assert!(p.try_forward(&x).is_err());
        }
    }
    // Found by fuzzing: a huge kernel times a huge dilation overflowed even
    // the 128-bit window arithmetic (a panic in `try_forward`).
    for (k, dilation) in [
        (usize::MAX, usize::MAX),
        (1 << 40, 1 << 40),
        (usize::MAX, 2),
    ] {
        let p = MaxPool2d::try_new([k, 2], MaxPool2dOptions::default().dilation([dilation, 1]));
        let e = p.unwrap().try_forward(&x).unwrap_err();
        assert!(e.to_string().contains("too small for the window"), "{e}");
    }
}

#[test]
fn upsample_to_a_huge_size_is_an_error_not_an_abort() {
    let x = Tensor::ones([1, 1, 2, 2]);
    for up in [
        Upsample::with_scale(1e300, 1e300),
        Upsample::with_scale(1e19, 1.0),
        Upsample::with_size(usize::MAX, 2),
        Upsample::with_size(BIG, BIG),
    ] {
        assert!(up.try_forward(&x).is_err());
    }
    // Within isize::MAX elements but beyond memory: OutOfMemory, not an abort.
    let e = Upsample::with_size(1 << 60, 1).try_forward(&x).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    let y = Upsample::with_scale(2.0, 2.0).try_forward(&x).unwrap();
    assert_eq!(y.dims(), &[1, 1, 4, 4]);
}

#[test]
fn arange_and_linspace_with_absurd_counts_are_errors() {
    assert!(Tensor::try_arange(0.0, 3e38, 1e-38).is_err());
    assert!(Tensor::try_linspace(0.0, 1.0, usize::MAX).is_err());
    assert!(Tensor::try_linspace(0.0, 1.0, MAX_NUMEL).is_err());
}

#[test]
fn expanded_index_tensors_claiming_huge_counts_are_errors() {
    let idx = Tensor::zeros([1]).expand([1usize << 60]);
    let e = Tensor::ones([2]).try_index_select(0, &idx).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    let emb = train_station::nn::Embedding::new(3, 2);
    assert!(emb.try_forward(&idx).is_err());
    let logits = Tensor::zeros([1, 3]).expand([1usize << 60, 3]);
    let opts = train_station::nn::loss::CrossEntropyOptions::default();
    assert!(train_station::nn::loss::try_cross_entropy(&logits, &idx, &opts).is_err());
}

/// Ops on an empty tensor whose other dimension is huge finish at once (found
/// by the `shape_ops` fuzz target: `flip` looped over the 2^40 positions of
/// the non-empty dimension, copying nothing each time, for minutes).
#[test]
fn ops_on_empty_tensors_with_a_huge_dimension_finish() {
    let big = 1usize << 40;
    for (dims, huge) in [([big, 0], 0), ([0, big], 1)] {
        let x = Tensor::zeros(dims);
        let same = |t: Tensor| assert_eq!(t.dims(), &dims);
        same(x.try_flip([0]).unwrap());
        same(x.try_flip([1, 0]).unwrap());
        same(x.try_softmax(0).unwrap());
        same(x.try_softmax(1).unwrap());
        same(x.try_log_softmax(-1).unwrap());
        same(x.try_exp().unwrap());
        same(x.try_add_tensor(&x).unwrap());
        same(x.try_pad(&[(0, 0)], 1.0).unwrap());
        assert_eq!(Tensor::try_cat(&[&x, &x], huge).unwrap().numel(), 0);
        assert_eq!(x.try_repeat(&[1, 1]).unwrap().numel(), 0);
        // Reducing the huge dimension leaves the empty one.
        assert_eq!(x.try_sum_dims([huge], false).unwrap().dims(), &[0]);
        assert_eq!(x.try_max_dims([huge], false).unwrap().dims(), &[0]);
        assert_eq!(x.try_logsumexp([huge], false).unwrap().dims(), &[0]);
        assert_eq!(x.try_transpose(0, 1).unwrap().contiguous().numel(), 0);
        // 2^22 indices into an empty tensor (found by the fuzz target through
        // Upsample: one layout selection per index, 12 s under ASan).
        let idx = Tensor::zeros([1 << 22]);
        let other = 1 - huge;
        let y = x.try_index_select(huge, &idx).unwrap();
        assert_eq!(y.numel(), 0);
        assert_eq!(y.dims()[huge], 1 << 22);
        assert!(
            x.try_index_select(other, &idx).is_err(),
            "index 0 of a size-0 dim"
        );
    }
}

/// AvgPool2d over an empty batch with huge spatial sizes returns the empty
/// result (found by the `shape_ops` fuzz target: the per-position divisors,
/// a heap `Vec` of the output's spatial size, were allocated with an
/// infallible `Vec::with_capacity` and aborted the process); with elements,
/// such an output is an error.
#[test]
fn avg_pool_with_a_huge_output_is_an_error_not_an_abort() {
    use train_station::nn::AvgPool2d;
    let pool = AvgPool2d::new([1, 1]);
    let big = 1usize << 30;
    let y = pool.try_forward(&Tensor::zeros([0, 1, big, big])).unwrap();
    assert_eq!(y.dims(), &[0, 1, big, big]);
    let x = Tensor::zeros([1, 1, 1, 1]).expand([1, 1, big, big]);
    assert!(pool.try_forward(&x).is_err());
}

/// AvgPool2d with paddings near usize::MAX (half of a huge kernel): an error,
/// never an overflow (found by the `shape_ops` fuzz target: the forward
/// summed the four paddings unchecked).
#[test]
fn avg_pool_with_huge_paddings_is_an_error() {
    use train_station::nn::{AvgPool2d, AvgPool2dOptions};
    let k = usize::MAX;
    let opts = AvgPool2dOptions::default().padding([k / 2, k / 2]);
    let pool = AvgPool2d::try_new([k, k], opts).unwrap();
    for dims in [[1, 1, 2, 2], [0, 1, 2, 2]] {
        assert!(pool.try_forward(&Tensor::zeros(dims)).is_err());
    }
}

/// Found by fuzzing: AvgPool2d with a large kernel and padding over a small
/// input summed every padded window element (`out_h * out_w * k_h * k_w`
/// additions; a fuzz input took 25 s). The sums are separable now; the
/// result still equals the naive average over the window clipped to the
/// input, divided by the whole window (`count_include_pad`).
#[test]
fn avg_pool_with_a_large_padded_kernel_is_exact() {
    use train_station::nn::{AvgPool2d, AvgPool2dOptions};
    let (h, w, k, p) = (5usize, 6usize, [1001usize, 801], [500usize, 400]);
    let x = Tensor::from_fn([1, 2, h, w], |i| {
        (i[1] * 31 + i[2] * 7 + i[3]) as f32 * 0.25 - 3.0
    });
    let pool = AvgPool2d::try_new(k, AvgPool2dOptions::default().stride(1).padding(p)).unwrap();
    let y = pool.try_forward(&x).unwrap();
    let (oh, ow) = (h + 2 * p[0] - k[0] + 1, w + 2 * p[1] - k[1] + 1);
    assert_eq!(y.dims(), &[1, 2, oh, ow]);
    for c in 0..2 {
        for i in 0..oh {
            for j in 0..ow {
                let mut sum = 0.0f64;
                for a in 0..h {
                    for b in 0..w {
                        // Input (a, b) sits at padded (a + p0, b + p1).
                        let (pa, pb) = (a + p[0], b + p[1]);
                        if (i..i + k[0]).contains(&pa) && (j..j + k[1]).contains(&pb) {
                            sum += x.get(&[0, c, a, b]) as f64;
                        }
                    }
                }
                let want = sum / (k[0] * k[1]) as f64;
                let got = y.get(&[0, c, i, j]) as f64;
                assert!(
                    (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{c},{i},{j}: {got} vs {want}"
                );
            }
        }
    }
}

/// Found by fuzzing: AvgPool2d with a kernel of 8,192 columns at stride 1
/// over 65,536 columns summed 8,192 elements per output (10 s under ASan).
/// Long overlapping windows are summed in two levels now; the averages and
/// the input gradient still equal a naive reference (count_include_pad,
/// ceil mode).
#[test]
fn avg_pool_with_a_long_overlapping_kernel_is_exact_with_its_gradient() {
    use train_station::nn::{AvgPool2d, AvgPool2dOptions};
    let (h, w, k) = (3usize, 700usize, [3usize, 190]);
    let x = Tensor::from_fn([1, 1, h, w], |i| {
        ((i[2] * 5 + i[3] * 11) % 23) as f32 * 0.25 - 2.0
    })
    .with_requires_grad();
    let opts = AvgPool2dOptions::default()
        .stride([1, 1])
        .padding([1, 1])
        .ceil_mode(true);
    let y = AvgPool2d::try_new(k, opts)
        .unwrap()
        .try_forward(&x)
        .unwrap();
    let (oh, ow) = (h + 2 - k[0] + 1, w + 2 - k[1] + 1);
    assert_eq!(y.dims(), &[1, 1, oh, ow]);
    // Output weights for the gradient: d(sum(y * g)) / dx.
    let g = Tensor::from_fn([1, 1, oh, ow], |i| (i[3] % 7) as f32 - 3.0);
    (&y * &g).sum().backward();
    let gx = x.grad().unwrap();
    let div = (k[0] * k[1]) as f64;
    let mut want_gx = vec![0.0f64; h * w];
    for i in 0..oh {
        for j in 0..ow {
            let mut sum = 0.0f64;
            for a in 0..h {
                for b in 0..w {
                    // Input (a, b) sits at padded (a + 1, b + 1).
                    if (i..i + k[0]).contains(&(a + 1)) && (j..j + k[1]).contains(&(b + 1)) {
                        sum += x.get(&[0, 0, a, b]) as f64;
                        want_gx[a * w + b] += g.get(&[0, 0, i, j]) as f64 / div;
                    }
                }
            }
            let (want, got) = (sum / div, y.get(&[0, 0, i, j]) as f64);
            assert!(
                (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{i},{j}: {got} vs {want}"
            );
        }
    }
    for a in 0..h {
        for b in 0..w {
            let (want, got) = (want_gx[a * w + b], gx.get(&[0, 0, a, b]) as f64);
            assert!(
                (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "grad {a},{b}: {got} vs {want}"
            );
        }
    }
}

/// Found by fuzzing: MaxPool2d with a [3, 8192] window at stride 1 over
/// 65,536 columns read every tap of every window (11 s). Windows of more
/// than 64 taps slide now; values, indices and the input gradient equal a
/// row-major scan of each window (first of equal maxima, last NaN) over
/// inputs full of ties, NaNs and -inf, with strides, dilations, padding and
/// ceil mode.
#[test]
fn max_pool_with_large_windows_equals_a_scan() {
    use train_station::nn::{MaxPool2d, MaxPool2dOptions};
    let configs = [
        (
            [5usize, 20usize],
            [1usize, 2usize],
            [2usize, 5usize],
            [2usize, 3usize],
            true,
        ),
        ([9, 9], [2, 1], [4, 0], [1, 1], false),
        ([1, 70], [1, 3], [0, 35], [1, 1], true),
    ];
    for (c, &(k, s, pad, dil, ceil)) in configs.iter().enumerate() {
        let (h, w) = (13usize, 70usize);
        let x = Tensor::from_fn([2, 2, h, w], |i| {
            match (i[1] * 7 + i[2] * 13 + i[3] * 5) % 23 {
                0 => f32::NAN,
                1 => f32::NEG_INFINITY,
                v => (v % 5) as f32,
            }
        })
        .with_requires_grad();
        let opts = MaxPool2dOptions::default()
            .stride(s)
            .padding(pad)
            .dilation(dil)
            .ceil_mode(ceil);
        let pool = MaxPool2d::try_new(k, opts).unwrap();
        let (y, ind) = pool.try_forward_with_indices(&x).unwrap();
        let [_, _, oh, ow] = y.dims().try_into().unwrap();
        let g = Tensor::from_fn(y.dims(), |i| (i[3] % 3) as f32 + 1.0);
        pool.try_forward(&x)
            .unwrap()
            .mul_tensor(&g)
            .sum()
            .backward();
        let gx = x.grad().unwrap();
        let mut want_gx = vec![0.0f32; 2 * 2 * h * w];
        for (n, ch) in (0..2).flat_map(|n| (0..2).map(move |ch| (n, ch))) {
            for (i, j) in (0..oh).flat_map(|i| (0..ow).map(move |j| (i, j))) {
                let mut best: Option<(f32, usize)> = None;
                for a in 0..k[0] {
                    for b in 0..k[1] {
                        let r = (i * s[0] + a * dil[0]) as isize - pad[0] as isize;
                        let q = (j * s[1] + b * dil[1]) as isize - pad[1] as isize;
                        if r < 0 || q < 0 || r >= h as isize || q >= w as isize {
                            continue;
                        }
                        let (r, q) = (r as usize, q as usize);
                        let v = x.get(&[n, ch, r, q]);
                        if best.is_none_or(|(bv, _)| v > bv || v.is_nan()) {
                            best = Some((v, r * w + q));
                        }
                    }
                }
                let at = format!("config {c} [{n},{ch},{i},{j}]");
                let got = y.get(&[n, ch, i, j]);
                match best {
                    Some((v, pos)) => {
                        assert_eq!(got.to_bits(), v.to_bits(), "{at}: value");
                        assert_eq!(ind.get(&[n, ch, i, j]), pos as f32, "{at}: index");
                        want_gx[((n * 2 + ch) * h * w) + pos] += g.get(&[n, ch, i, j]);
                    }
                    None => assert_eq!(got, f32::NEG_INFINITY, "{at}: empty window"),
                }
            }
        }
        assert_eq!(gx.to_vec(), want_gx, "config {c}: gradient");
    }
}
