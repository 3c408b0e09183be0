//! `as_strided` and chains of view operations against the reference index
//! model (`ts_fuzz::RefView`): every result must hold exactly the elements
//! the model computes from offset and strides, and its own layout must stay
//! inside its storage. `as_strided` must succeed exactly when the model says
//! the view fits its storage.
//!
//! The model's offset and stride arithmetic wraps: an empty view (which only
//! `as_strided` can leave, resetting them) may carry any offset and strides,
//! and products of them may overflow; for a view with elements the positions
//! are checked to lie inside the storage, so a wrap there cannot pass
//! unnoticed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use train_station::{MAX_NUMEL, MAX_RANK, Tensor};
use ts_fuzz::{Bytes, RefView, assert_matches};

/// Python-slice clamping of `i` against `size`.
fn clamp(i: isize, size: usize) -> usize {
    let s = size as isize;
    let i = if i < 0 { i.saturating_add(s) } else { i };
    i.clamp(0, s) as usize
}

/// The reference rule for `as_strided` on `storage_len` elements.
fn strided_fits(size: &[usize], stride: &[usize], offset: usize, storage_len: usize) -> bool {
    if size.len() > MAX_RANK || size.len() != stride.len() {
        return false;
    }
    let product = size
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d.max(1)))
        .filter(|&n| n <= MAX_NUMEL);
    if product.is_none() {
        return false;
    }
    if size.contains(&0) {
        return offset <= storage_len;
    }
    let mut end = Some(offset);
    for (&n, &s) in size.iter().zip(stride) {
        end = end.and_then(|e| e.checked_add((n - 1).checked_mul(s)?));
    }
    end.is_some_and(|e| e < storage_len)
}

/// Applies one fuzzer-chosen view operation to `t` and the reference `r`.
fn step(b: &mut Bytes, t: &Tensor, r: &RefView) -> Option<(Tensor, RefView)> {
    let rank = r.shape.len();
    let dim = |b: &mut Bytes| b.below(rank.max(1));
    let mut out = r.clone();
    let t2 = match b.below(14) {
        0 => {
            // as_strided over the whole storage: Ok exactly when it fits.
            let n = b.below(4);
            let size: Vec<usize> = (0..n).map(|_| b.size()).collect();
            let stride: Vec<usize> = (0..n).map(|_| b.size()).collect();
            let offset = b.size();
            let res = t.try_as_strided(&size, &stride, offset);
            let fits = strided_fits(&size, &stride, offset, r.storage.len());
            assert_eq!(
                res.is_ok(),
                fits,
                "as_strided {size:?} {stride:?} +{offset}: {res:?}"
            );
            out.shape = size;
            out.strides = stride;
            out.offset = offset;
            res.ok()?
        }
        1 if rank >= 2 => {
            let (a, c) = (dim(b), dim(b));
            out.shape.swap(a, c);
            out.strides.swap(a, c);
            t.try_transpose(a, c).ok()?
        }
        2 if rank >= 1 => {
            let d = dim(b);
            let (start, end, step) = (b.index(), b.index(), b.size());
            let res = t.try_slice(d, start, end, step);
            if step == 0 {
                assert!(res.is_err());
                return None;
            }
            let (s, e) = (
                clamp(start, r.shape[d]),
                clamp(end, r.shape[d]).max(clamp(start, r.shape[d])),
            );
            let len = (e - s).div_ceil(step);
            if len > 0 {
                out.offset = out.offset.wrapping_add(s.wrapping_mul(r.strides[d]));
            }
            out.shape[d] = len;
            if len > 1 {
                out.strides[d] = out.strides[d].wrapping_mul(step);
            }
            res.expect("slice with a positive step")
        }
        3 if rank >= 1 => {
            let d = dim(b);
            let (start, len) = (b.size(), b.size());
            let res = t.try_narrow(d, start, len);
            let fits = start.checked_add(len).is_some_and(|e| e <= r.shape[d]);
            assert_eq!(res.is_ok(), fits);
            let v = res.ok()?;
            if len > 0 {
                out.offset = out.offset.wrapping_add(start.wrapping_mul(r.strides[d]));
            }
            out.shape[d] = len;
            v
        }
        4 if rank >= 1 => {
            let d = dim(b);
            let i = b.index();
            let res = t.try_select(d, i);
            let at = if i < 0 {
                i.checked_add(r.shape[d] as isize)
            } else {
                Some(i)
            };
            let at = at.filter(|&a| a >= 0 && (a as usize) < r.shape[d]);
            assert_eq!(res.is_ok(), at.is_some());
            out.offset = out
                .offset
                .wrapping_add((at? as usize).wrapping_mul(r.strides[d]));
            out.shape.remove(d);
            out.strides.remove(d);
            res.ok()?
        }
        5 => {
            let d = b.below(rank + 1);
            let res = t.try_unsqueeze(d);
            assert_eq!(res.is_ok(), rank < MAX_RANK);
            out.shape.insert(d, 1);
            out.strides.insert(d, 1);
            res.ok()?
        }
        6 if rank >= 1 => {
            let d = dim(b);
            let res = t.try_squeeze_dim(d);
            if r.shape[d] == 1 {
                out.shape.remove(d);
                out.strides.remove(d);
            }
            res.ok()?
        }
        7 => {
            // expand: new leading dims and size-1 dims repeat with stride 0.
            let extra = b.below(3);
            let mut target: Vec<usize> = (0..extra).map(|_| b.size()).collect();
            for &s in &r.shape {
                target.push(if s == 1 && b.below(2) == 1 {
                    b.size()
                } else {
                    s
                });
            }
            let res = t.try_expand(&target);
            let Ok(v) = res else { return None };
            let mut strides = vec![0; extra];
            for (i, &s) in r.shape.iter().enumerate() {
                strides.push(if s == target[extra + i] {
                    r.strides[i]
                } else {
                    0
                });
            }
            out.shape = target;
            out.strides = strides;
            v
        }
        8 if rank >= 1 => {
            let d = dim(b);
            let (size, step) = (b.size(), b.size());
            let res = t.try_unfold(d, size, step);
            let Ok(v) = res else {
                return None;
            };
            let windows = (r.shape[d] - size) / step + 1;
            out.shape[d] = windows;
            if windows > 1 {
                out.strides[d] = out.strides[d].wrapping_mul(step);
            }
            out.shape.push(size);
            out.strides.push(r.strides[d]);
            v
        }
        9 => {
            // permute by a fuzzer-chosen permutation.
            let mut perm: Vec<usize> = (0..rank).collect();
            for i in (1..rank).rev() {
                perm.swap(i, b.below(i + 1));
            }
            out.shape = perm.iter().map(|&p| r.shape[p]).collect();
            out.strides = perm.iter().map(|&p| r.strides[p]).collect();
            t.try_permute(&perm).ok()?
        }
        10 | 11 => {
            // reshape (a view or a copy): the values are the reference's
            // row-major elements; the model then follows the library's
            // layout, which the distinct storage values pin down exactly.
            let n = b.below(4);
            let mut target: Vec<isize> = (0..n).map(|_| b.size() as isize).collect();
            if n > 0 && b.below(2) == 1 {
                let i = b.below(n);
                target[i] = -1;
            }
            let v = if b.below(2) == 0 {
                t.try_reshape(&target)
            } else {
                t.try_view(&target)
            };
            let v = v.ok()?;
            out = follow(&v, t, r);
            v
        }
        12 => {
            let v = t.try_contiguous().ok()?;
            out = follow(&v, t, r);
            v
        }
        _ if rank >= 1 => {
            // One piece of a split, a chunk or split_sizes.
            let d = dim(b);
            let n = r.shape[d];
            if n > 4096 {
                return None; // valid, but too many pieces to be quick
            }
            let pieces = match b.below(3) {
                0 => t.try_split(b.size(), d),
                1 => t.try_chunk(b.size(), d),
                _ => {
                    let sizes = b.sizes(3);
                    let res = t.try_split_sizes(&sizes, d);
                    let sum = sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
                    assert_eq!(res.is_ok(), sum == Some(n));
                    res
                }
            }
            .ok()?;
            let mut at = 0;
            let k = b.below(pieces.len().max(1));
            for p in &pieces[..k] {
                at += p.dims()[d];
            }
            let len = pieces.get(k)?.dims()[d];
            assert!(at + len <= n);
            if len > 0 {
                out.offset = out.offset.wrapping_add(at.wrapping_mul(r.strides[d]));
            }
            out.shape[d] = len;
            pieces[k].clone()
        }
        _ => return None,
    };
    Some((t2, out))
}

/// The model for a result whose layout the library chose (reshape, view,
/// contiguous), after checking its row-major values against the reference:
/// if it shares the input's storage, the model adopts its offset and strides
/// on the reference storage (checked again by `assert_matches`: with distinct
/// storage values, equal values mean equal positions); else it is a copy.
fn follow(v: &Tensor, t: &Tensor, r: &RefView) -> RefView {
    let want = r.values().expect("reference in bounds");
    let got = v.to_vec();
    assert_eq!(got.len(), want.len(), "reshape keeps the element count");
    assert!(
        got.iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "reshape keeps row-major order"
    );
    if v.shares_storage(t) {
        RefView {
            storage: r.storage.clone(),
            shape: v.dims().to_vec(),
            strides: v.strides().to_vec(),
            offset: v.offset(),
        }
    } else {
        RefView::contiguous(want, v.dims())
    }
}

fuzz_target!(|data: &[u8]| {
    ts_fuzz::cap_memory();
    let mut b = Bytes(data);
    let n = 1 + b.below(48);
    let storage: Vec<f32> = (0..n).map(|v| v as f32).collect();
    let base = Tensor::from_slice(&storage, [n]).unwrap();
    let mut t = base.clone();
    let mut r = RefView::contiguous(storage, &[n]);
    for _ in 0..8 {
        if b.is_empty() {
            break;
        }
        let Some((t2, r2)) = step(&mut b, &t, &r) else {
            continue;
        };
        // Cap the work per input: huge stride-0 views are valid but slow to
        // walk (at 2^16 elements the target ran ~500 inputs a second; 2^12
        // still walks many runs).
        if r2.numel() > 1 << 12 {
            continue;
        }
        assert_matches(&t2, &r2, "view chain");
        t = t2;
        r = r2;
    }
});
