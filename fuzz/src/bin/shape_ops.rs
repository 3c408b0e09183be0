//! Shape-checked operations fed arbitrary shapes (including stride-0 views
//! that claim astronomically many elements): every `try_` form returns `Ok`
//! or `Err`, never panics, and an `Ok` result has the shape the reference
//! rule gives and a layout inside its storage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use train_station::nn::{
    AvgPool2d, AvgPool2dOptions, Conv2d, ConvOptions, MaxPool2d, MaxPool2dOptions, Module, Upsample,
};
use train_station::{MAX_RANK, Tensor};
use ts_fuzz::{Bytes, cap_memory};

/// Operands above this many elements only go to operations that allocate
/// their result before computing (so they fail fast or finish fast).
const WORK: usize = 1 << 20;

/// A fuzzer-chosen operand: a real tensor, or a small one expanded (stride 0)
/// to a possibly huge shape.
fn operand(b: &mut Bytes) -> Option<Tensor> {
    let shape = b.sizes(4);
    if b.below(2) == 0 {
        Tensor::try_from_fn(&shape, |i| i.iter().sum::<usize>() as f32 * 0.5 - 1.0).ok()
    } else {
        let ones = vec![1usize; shape.len()];
        Tensor::try_full(&ones, 1.5).ok()?.try_expand(&shape).ok()
    }
}

/// The NumPy broadcast of two shapes (the reference rule).
fn broadcast(a: &[usize], c: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(c.len());
    let at = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|i| match (at(a, i), at(c, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// An `Ok` result is self-consistent.
fn check(t: &Tensor, want: Option<&[usize]>) {
    if let Some(w) = want {
        assert_eq!(t.dims(), w, "result shape");
    }
    let n: usize = t.dims().iter().product();
    assert_eq!(t.numel(), n);
    if n > 0 {
        let end = t.offset()
            + t.dims()
                .iter()
                .zip(t.strides())
                .map(|(d, s)| (d - 1).checked_mul(*s).expect("stride product"))
                .fold(0usize, |a, x| a.checked_add(x).expect("layout end"));
        assert!(end < t.storage_len(), "layout past the storage");
    }
    if n <= 1 << 12 {
        assert_eq!(t.to_vec().len(), n);
    }
}

fuzz_target!(|data: &[u8]| {
    cap_memory();
    let mut b = Bytes(data);
    let Some(x) = operand(&mut b) else { return };
    let y = operand(&mut b).unwrap_or_else(|| x.clone());
    let small = x.numel() <= WORK && y.numel() <= WORK;
    let dim = b.index();
    match b.below(16) {
        0 => {
            let want = broadcast(x.dims(), y.dims());
            let r = x.try_add_tensor(&y);
            if want.as_ref().is_none() {
                assert!(r.is_err());
            }
            if let Ok(t) = r {
                check(&t, want.as_deref());
            }
        }
        1 => {
            if let Ok(t) = x.try_mul_tensor(&y) {
                check(&t, broadcast(x.dims(), y.dims()).as_deref());
            }
        }
        2 if small => {
            if let Ok(t) = x.try_matmul(&y) {
                check(&t, None);
            }
        }
        3 if small => {
            if let Ok(t) = x.try_sum_dims([dim], b.below(2) == 1) {
                check(&t, None);
            }
        }
        4 if small => {
            if let Ok(t) = x.try_softmax(dim) {
                check(&t, Some(x.dims()));
            }
        }
        5 => {
            if let Ok(t) = Tensor::try_cat(&[&x, &y], dim) {
                check(&t, None);
            }
        }
        6 => {
            if let Ok(t) = Tensor::try_stack(&[&x, &y], dim) {
                check(&t, None);
                assert_eq!(t.rank(), x.rank() + 1);
            }
        }
        7 => {
            let n = b.below(4);
            let pad: Vec<(isize, isize)> = (0..n).map(|_| (b.index(), b.index())).collect();
            if let Ok(t) = x.try_pad(&pad, 0.0) {
                check(&t, None);
            }
        }
        8 => {
            let reps = b.sizes(MAX_RANK + 1);
            if let Ok(t) = x.try_repeat(&reps) {
                check(&t, None);
            }
        }
        9 => {
            if let Ok(t) = x.try_flip([dim]) {
                check(&t, Some(x.dims()));
            }
        }
        10 if small => {
            let idx = Tensor::try_full([b.below(4)], b.below(3) as f32).unwrap();
            if let Ok(t) = x.try_index_select(dim, &idx) {
                check(&t, None);
            }
            if let Ok(t) = x.try_gather(dim, &y) {
                check(&t, Some(y.dims()));
            }
        }
        11 if small => {
            let w = operand(&mut b);
            if let Some(w) = w
                && let Ok(t) = x.try_linear(&w, None)
            {
                check(&t, None);
            }
        }
        12 if small => {
            let (ci, co) = (1 + b.below(3), 1 + b.below(3));
            let k = [1 + b.below(3), 1 + b.below(3)];
            let opts = ConvOptions::default()
                .stride([b.size().max(1), b.size().max(1)])
                .padding([b.size(), b.size()])
                .dilation([b.size().max(1), b.size().max(1)]);
            if let Ok(conv) = Conv2d::try_new(ci, co, k, opts)
                && let Ok(t) = conv.try_forward(&x)
            {
                check(&t, None);
            }
        }
        13 if small => {
            let k = [b.size(), b.size()];
            let mo = MaxPool2dOptions::default()
                .stride([b.size(), b.size()])
                .padding([b.size(), b.size()])
                .dilation([b.size(), b.size()])
                .ceil_mode(b.below(2) == 1);
            if let Ok(p) = MaxPool2d::try_new(k, mo)
                && let Ok(t) = p.try_forward(&x)
            {
                check(&t, None);
            }
            let ao = AvgPool2dOptions::default()
                .stride([b.size(), b.size()])
                .padding([b.size(), b.size()])
                .ceil_mode(b.below(2) == 1);
            if let Ok(p) = AvgPool2d::try_new(k, ao)
                && let Ok(t) = p.try_forward(&x)
            {
                check(&t, None);
            }
        }
        14 if small => {
            let up = if b.below(2) == 0 {
                Upsample::try_with_size(b.size(), b.size())
            } else {
                let s = |b: &mut Bytes| f64::from(b.u8()) / 16.0 * 10f64.powi(b.below(24) as i32);
                Upsample::try_with_scale(s(&mut b), s(&mut b))
            };
            if let Ok(up) = up
                && let Ok(t) = up.try_forward(&x)
            {
                check(&t, None);
            }
        }
        _ => {
            let n = b.below(4);
            let target: Vec<isize> = (0..n).map(|_| b.index().max(-1)).collect();
            if let Ok(t) = x.try_reshape(&target) {
                check(&t, None);
                assert_eq!(t.numel(), x.numel());
            }
        }
    }
});
