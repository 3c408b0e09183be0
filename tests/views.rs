//! Every view kind, and random chains of them, against a naive model that
//! materialises each step by index arithmetic.

use proptest::prelude::*;
use train_station::{Generator, Tensor};

/// Naive reference: a row-major array; every op copies.
#[derive(Clone, Debug)]
struct Model {
    shape: Vec<usize>,
    data: Vec<f32>,
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (i, n)| acc * n + i)
}

impl Model {
    fn of(t: &Tensor) -> Model {
        Model {
            shape: t.dims().to_vec(),
            data: t.to_vec(),
        }
    }

    /// A new model of `shape` whose element at `idx` is ours at `map(idx)`.
    fn remap(&self, shape: Vec<usize>, map: impl Fn(&[usize]) -> Vec<usize>) -> Model {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|f| self.data[ravel(&map(&unravel(f, &shape)), &self.shape)])
            .collect();
        Model { shape, data }
    }

    fn permute(&self, perm: &[usize]) -> Model {
        let shape = perm.iter().map(|&p| self.shape[p]).collect();
        self.remap(shape, |i| {
            let mut src = vec![0; i.len()];
            for (k, &p) in perm.iter().enumerate() {
                src[p] = i[k];
            }
            src
        })
    }

    fn slice(&self, d: usize, start: usize, end: usize, step: usize) -> Model {
        let mut shape = self.shape.clone();
        shape[d] = if end > start {
            (end - start).div_ceil(step)
        } else {
            0
        };
        self.remap(shape, |i| {
            let mut s = i.to_vec();
            s[d] = start + i[d] * step;
            s
        })
    }

    fn select(&self, d: usize, k: usize) -> Model {
        let mut shape = self.shape.clone();
        shape.remove(d);
        self.remap(shape, |i| {
            let mut s = i.to_vec();
            s.insert(d, k);
            s
        })
    }

    fn reshape(&self, shape: Vec<usize>) -> Model {
        Model {
            shape,
            data: self.data.clone(),
        }
    }

    fn expand(&self, shape: Vec<usize>) -> Model {
        let off = shape.len() - self.shape.len();
        let me = self.shape.clone();
        self.remap(shape, |i| {
            (0..me.len())
                .map(|d| if me[d] == 1 { 0 } else { i[d + off] })
                .collect()
        })
    }
}

fn check(t: &Tensor, m: &Model, what: &str) {
    assert_eq!(t.dims(), &m.shape[..], "{what}: shape");
    assert_eq!(t.to_vec(), m.data, "{what}: to_vec");
    assert_eq!(t.values().collect::<Vec<_>>(), m.data, "{what}: values");
    let c = t.contiguous();
    assert!(c.is_contiguous(), "{what}: contiguous() is contiguous");
    assert_eq!(c.to_vec(), m.data, "{what}: contiguous values");
    assert_eq!(t.values().len(), m.data.len(), "{what}: values len");
    // Element access through the view's own strides.
    for (f, &v) in m.data.iter().enumerate() {
        assert_eq!(t.get(&unravel(f, &m.shape)), v, "{what}: get");
    }
}

fn base(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::arange(0.0, n as f32, 1.0).reshape(shape.to_vec())
}

#[test]
fn each_view_kind_matches_the_model_and_shares_storage() {
    let x = base(&[2, 3, 4]);
    let m = Model::of(&x);
    assert!(x.is_contiguous());

    let cases: Vec<(&str, Tensor, Model)> = vec![
        ("reshape", x.reshape([4, -1]), m.reshape(vec![4, 6])),
        ("view", x.view([6, 4]), m.reshape(vec![6, 4])),
        ("flatten", x.flatten(1, 2), m.reshape(vec![2, 12])),
        ("unsqueeze", x.unsqueeze(1), m.reshape(vec![2, 1, 3, 4])),
        (
            "unsqueeze-end",
            x.unsqueeze(-1),
            m.reshape(vec![2, 3, 4, 1]),
        ),
        ("transpose", x.transpose(0, 2), m.permute(&[2, 1, 0])),
        ("permute", x.permute([1, 2, 0]), m.permute(&[1, 2, 0])),
        ("narrow", x.narrow(2, 1, 2), m.slice(2, 1, 3, 1)),
        ("slice", x.slice(2, 0, 4, 3), m.slice(2, 0, 4, 3)),
        ("slice-neg", x.slice(1, -2, 3, 1), m.slice(1, 1, 3, 1)),
        ("select", x.select(1, 2), m.select(1, 2)),
        ("select-neg", x.select(-1, -1), m.select(2, 3)),
        (
            "expand",
            x.narrow(1, 0, 1).expand([2, 2, 5, 4]),
            m.slice(1, 0, 1, 1)
                .reshape(vec![1, 2, 1, 4])
                .expand(vec![2, 2, 5, 4]),
        ),
        (
            "broadcast_to",
            x.select(0, 1).select(0, 0).broadcast_to([3, 4]),
            m.select(0, 1).select(0, 0).expand(vec![3, 4]),
        ),
        (
            "as_strided",
            x.as_strided([3, 2], [1, 4], 5),
            Model {
                shape: vec![3, 2],
                data: vec![5.0, 9.0, 6.0, 10.0, 7.0, 11.0],
            },
        ),
    ];
    for (what, t, model) in &cases {
        check(t, model, what);
        assert!(t.shares_storage(&x), "{what}: zero-copy");
        assert_ne!(t.id(), x.id(), "{what}: a view is a new tensor");
    }
    let t2 = x.select(0, 0).t();
    check(&t2, &m.select(0, 0).permute(&[1, 0]), "t");
    let sq = x.unsqueeze(0).unsqueeze(3);
    check(&sq.squeeze(), &m, "squeeze");
    check(
        &sq.squeeze_dim(3),
        &m.reshape(vec![1, 2, 3, 4]),
        "squeeze_dim",
    );
    check(&x.squeeze_dim(0), &m, "squeeze_dim of size>1 is a no-op");
}

#[test]
fn splitting_views() {
    let x = base(&[5, 4]);
    let m = Model::of(&x);
    let parts = x.chunk(2, 0);
    assert_eq!(parts.len(), 2);
    check(&parts[0], &m.slice(0, 0, 3, 1), "chunk 0");
    check(&parts[1], &m.slice(0, 3, 5, 1), "chunk 1");
    // torch.chunk may return fewer pieces than asked.
    assert_eq!(base(&[6]).chunk(4, 0).len(), 3);
    let s = x.split(3, 1);
    check(&s[0], &m.slice(1, 0, 3, 1), "split 0");
    check(&s[1], &m.slice(1, 3, 4, 1), "split 1");
    let s = x.split_sizes(&[1, 3], 1);
    check(&s[1], &m.slice(1, 1, 4, 1), "split_sizes");
    assert!(x.try_split_sizes(&[1, 2], 1).is_err());
    let u = x.unbind(1);
    assert_eq!(u.len(), 4);
    for (i, t) in u.iter().enumerate() {
        check(t, &m.select(1, i), "unbind");
        assert!(t.shares_storage(&x));
    }
    // unfold: windows of 3 every 1 along dim 1 -> [5, 2, 3]
    let w = x.unfold(1, 3, 1);
    let expect = Model {
        shape: vec![5, 2, 3],
        data: (0..5)
            .flat_map(|r| (0..2).flat_map(move |s| (0..3).map(move |k| (r * 4 + s + k) as f32)))
            .collect(),
    };
    check(&w, &expect, "unfold");
}

#[test]
fn composed_views_match_the_model() {
    let x = base(&[3, 4, 5, 2]);
    let m = Model::of(&x);
    let v = x
        .permute([3, 1, 0, 2])
        .narrow(1, 1, 3)
        .slice(3, 1, 5, 2)
        .transpose(0, 2)
        .select(1, 1);
    let mm = m
        .permute(&[3, 1, 0, 2])
        .slice(1, 1, 4, 1)
        .slice(3, 1, 5, 2)
        .permute(&[2, 1, 0, 3])
        .select(1, 1);
    check(&v, &mm, "composed");
    assert!(v.shares_storage(&x));
    // A view of a view that ends at the storage's last element is fine...
    let tail = base(&[16]).narrow(0, 8, 8).narrow(0, 4, 4);
    assert_eq!(tail.to_vec(), vec![12.0, 13.0, 14.0, 15.0]);
    // ...and one that would pass it is refused (the original read past it).
    assert!(base(&[16]).narrow(0, 8, 8).try_narrow(0, 4, 8).is_err());
}

#[test]
fn reshape_copies_only_when_it_must() {
    let x = base(&[4, 6]);
    let t = x.t();
    assert!(t.try_view([24]).is_err());
    let r = t.reshape([24]);
    assert!(
        !r.shares_storage(&x),
        "a transposed matrix cannot be flattened in place"
    );
    check(
        &r,
        &Model::of(&x).permute(&[1, 0]).reshape(vec![24]),
        "reshape copy",
    );
    let r2 = t.reshape([3, 2, 4]);
    assert!(
        r2.shares_storage(&x),
        "splitting a dim of a transposed matrix is a view"
    );
    assert_eq!(r2.to_vec(), t.to_vec());
    // contiguous() is a no-op (same tensor, same id) when already contiguous.
    let c = x.contiguous();
    assert_eq!(c.id(), x.id());
    assert!(c.shares_storage(&x));
}

#[test]
fn view_metadata() {
    let x = base(&[2, 3, 4]);
    assert_eq!(x.strides(), &[12, 4, 1]);
    let t = x.transpose(0, 2);
    assert_eq!(t.strides(), &[1, 4, 12]);
    assert!(!t.is_contiguous());
    let n = x.narrow(1, 1, 2);
    assert_eq!(n.offset(), 4);
    assert_eq!(n.strides(), &[12, 4, 1]);
    assert!(!n.is_contiguous());
    let s = x.select(0, 1);
    assert_eq!(s.offset(), 12);
    assert!(s.is_contiguous());
    let e = x.select(0, 0).select(0, 0).expand([5, 4]);
    assert_eq!(e.strides(), &[0, 1]);
}

#[test]
fn as_strided_is_checked_against_the_real_allocation() {
    let x = base(&[10]);
    // Reaches element 9: the last one.
    assert_eq!(
        x.as_strided([2, 2], [5, 4], 0).to_vec(),
        vec![0.0, 4.0, 5.0, 9.0]
    );
    let e = x.try_as_strided([2, 2], [5, 5], 0).unwrap_err();
    assert!(e.to_string().contains("as_strided"), "{e}");
    assert!(x.try_as_strided([1], [1], 10).is_err());
    assert!(x.try_as_strided([3], [1, 1], 0).is_err());
    // Offsets are absolute within the storage, also from a view.
    let v = x.narrow(0, 5, 5);
    assert_eq!(v.as_strided([2], [1], 1).to_vec(), vec![1.0, 2.0]);
    assert!(v.try_as_strided([usize::MAX], [usize::MAX], 0).is_err());
}

/// Regression (found by the `views` fuzz target): an empty `as_strided` view
/// may have any strides, and the strided walker merged its inner dimensions
/// by multiplying a stride by a size unchecked, an overflow (a panic with
/// debug assertions) before it saw the empty dimension. Every walk over such
/// a view (copy, values, reductions, binary ops, writes) yields nothing.
#[test]
fn empty_as_strided_views_with_huge_strides_walk_nothing() {
    let x = base(&[6]);
    let strides = [1, usize::MAX - 1, usize::MAX];
    for size in [[0, 3, 2], [0, 2, 3], [2, 0, 3]] {
        let v = x.as_strided(size, strides, 0);
        assert_eq!(v.numel(), 0);
        assert_eq!(v.to_vec(), Vec::<f32>::new(), "{size:?}");
        assert_eq!(v.values().count(), 0);
        assert_eq!(v.contiguous().dims(), &size);
        assert_eq!(v.sum().item(), 0.0);
        let other = Tensor::zeros(size);
        assert_eq!((&v + &other).numel(), 0);
        assert_eq!((&other * &v).dims(), &size);
        let mut w = v.clone();
        w.fill(1.0);
        w.copy_from(&other);
        assert_eq!(w.numel(), 0);
    }
    // The storage is untouched.
    assert_eq!(x.to_vec(), base(&[6]).to_vec());
}

/// Views of an empty `as_strided` view with huge strides (found by the
/// `views` fuzz target: `narrow` multiplied its start by a stride of ~2^64
/// and overflowed, a panic inside a `try_` form with debug assertions and a
/// wrapped offset in release). Every view of it is empty and walks nothing.
#[test]
fn views_of_empty_views_with_huge_strides_do_not_overflow() {
    let x = base(&[6]);
    let v = x.as_strided([0, 4], [1, usize::MAX - 3], 0);
    let views = [
        v.try_narrow(1, 3, 1).unwrap(),
        v.try_narrow(1, 1, 3).unwrap(),
        v.try_select(1, 3).unwrap(),
        v.try_slice(1, 1, 4, 2).unwrap(),
        v.try_slice(1, 0, 4, 3).unwrap(),
        v.try_unfold(1, 2, 2).unwrap(),
        v.try_unsqueeze(2).unwrap().try_unsqueeze(1).unwrap(),
        v.try_split(2, 1).unwrap().pop().unwrap(),
    ];
    for w in &views {
        assert_eq!(w.numel(), 0, "{:?}", w.dims());
        assert_eq!(w.to_vec(), Vec::<f32>::new());
        assert_eq!(w.contiguous().dims(), w.dims());
        assert_eq!(w.sum().item(), 0.0);
    }
    assert_eq!(views[0].dims(), &[0, 1]);
    assert_eq!(views[2].dims(), &[0]);
    assert_eq!(views[3].dims(), &[0, 2]);
    assert_eq!(views[5].dims(), &[0, 2, 2]);
    assert_eq!(x.to_vec(), base(&[6]).to_vec());
}

#[test]
fn view_errors_name_the_op() {
    let x = base(&[2, 3]);
    let msg = |r: Result<Tensor, train_station::Error>| r.unwrap_err().to_string();
    assert!(
        msg(x.try_reshape([4, -1])).starts_with("reshape: cannot reshape a tensor of shape [2, 3]")
    );
    assert!(msg(x.try_transpose(0, 2)).contains("transpose: dimension 2 is out of range"));
    assert!(msg(x.try_select(1, 3)).contains("select: index 3"));
    assert!(msg(x.try_narrow(1, 2, 2)).starts_with("narrow"));
    assert!(msg(x.try_expand([3, 3])).contains("[2, 3]"));
    assert!(msg(x.try_permute([0, 0])).starts_with("permute"));
    assert!(msg(x.try_unsqueeze(4)).starts_with("unsqueeze"));
    assert!(msg(Tensor::zeros([1; 8]).try_unsqueeze(0)).contains("rank 9 exceeds"));
    assert!(msg(x.unsqueeze(0).try_t()).starts_with("t:"));
}

// ---------------------------------------------------------------- property tests

/// One random view step applied to both the tensor and the model.
fn random_step(g: &mut Generator, t: &Tensor, m: &Model) -> (Tensor, Model, String) {
    let r = t.rank();
    let pick = |g: &mut Generator, n: usize| g.below(n as u64) as usize;
    loop {
        match pick(g, 8) {
            0 if r >= 1 => {
                let perm = g.permutation(r);
                return (
                    t.permute(&perm),
                    m.permute(&perm),
                    format!("permute{perm:?}"),
                );
            }
            1 if r >= 1 && t.dims().iter().any(|&d| d > 0) => {
                let d = pick(g, r);
                let n = t.dims()[d];
                let s = pick(g, n + 1);
                let e = s + pick(g, n - s + 1);
                let step = 1 + pick(g, 3);
                return (
                    t.slice(d, s, e, step),
                    m.slice(d, s, e, step),
                    format!("slice({d},{s},{e},{step})"),
                );
            }
            2 if r >= 2 => {
                let d = pick(g, r);
                if t.dims()[d] == 0 {
                    continue;
                }
                let i = pick(g, t.dims()[d]);
                return (t.select(d, i), m.select(d, i), format!("select({d},{i})"));
            }
            3 if r < 6 => {
                let d = pick(g, r + 1);
                let mut shape = m.shape.clone();
                shape.insert(d, 1);
                return (t.unsqueeze(d), m.reshape(shape), format!("unsqueeze({d})"));
            }
            4 if (1..8).contains(&r) => {
                // Merge two neighbours or split one dim: exercises view and copy.
                let mut shape = m.shape.clone();
                if r >= 2 && pick(g, 2) == 0 {
                    let d = pick(g, r - 1);
                    let merged = shape[d] * shape[d + 1];
                    shape.splice(d..d + 2, [merged]);
                } else {
                    let d = pick(g, r);
                    let n = shape[d];
                    let f = (1..=n)
                        .rev()
                        .find(|f| n.is_multiple_of(*f) && *f <= 3)
                        .unwrap_or(1);
                    if n == 0 {
                        continue;
                    }
                    shape.splice(d..d + 1, [f, n / f]);
                }
                let shape_i: Vec<usize> = shape.clone();
                return (
                    t.reshape(shape_i),
                    m.reshape(shape.clone()),
                    format!("reshape{shape:?}"),
                );
            }
            5 if r >= 2 => {
                let (a, b) = (pick(g, r), pick(g, r));
                let mut perm: Vec<usize> = (0..r).collect();
                perm.swap(a, b);
                return (
                    t.transpose(a, b),
                    m.permute(&perm),
                    format!("transpose({a},{b})"),
                );
            }
            6 if r >= 1 && t.dims().contains(&1) && r < 6 => {
                let d = t.dims().iter().position(|&x| x == 1).unwrap();
                let mut shape = m.shape.clone();
                shape[d] = 1 + pick(g, 3);
                shape.insert(0, 2);
                return (
                    t.expand(shape.clone()),
                    m.expand(shape.clone()),
                    format!("expand{shape:?}"),
                );
            }
            7 => {
                let c = t.contiguous();
                assert!(c.is_contiguous());
                return (c, m.clone(), "contiguous".into());
            }
            _ => continue,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 64 }, .. ProptestConfig::default() })]

    #[test]
    fn random_view_chains_match_the_model(
        dims in proptest::collection::vec(1usize..5, 1..5),
        seed in any::<u64>(),
        steps in 1usize..7,
    ) {
        let mut g = Generator::new(seed);
        let x = base(&dims);
        let (mut t, mut m) = (x.clone(), Model::of(&x));
        let mut trail = Vec::new();
        for _ in 0..steps {
            let (t2, m2, what) = random_step(&mut g, &t, &m);
            trail.push(what);
            prop_assert_eq!(t2.dims(), &m2.shape[..], "{:?}", trail);
            prop_assert_eq!(t2.to_vec(), m2.data.clone(), "{:?}", trail);
            t = t2;
            m = m2;
        }
    }

    #[test]
    fn permute_round_trips(dims in proptest::collection::vec(1usize..5, 1..6), seed in any::<u64>()) {
        let x = base(&dims);
        let perm = Generator::new(seed).permutation(dims.len());
        let mut inv = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        let back = x.permute(&perm).permute(&inv);
        prop_assert_eq!(back.strides(), x.strides());
        prop_assert_eq!(back.to_vec(), x.to_vec());
    }

    #[test]
    fn reshape_round_trips(dims in proptest::collection::vec(1usize..5, 1..5), seed in any::<u64>()) {
        let x = base(&dims).permute(Generator::new(seed).permutation(dims.len()));
        let flat = x.reshape([-1]);
        prop_assert_eq!(flat.to_vec(), x.to_vec());
        let back = flat.reshape(x.dims().to_vec());
        prop_assert_eq!(back.to_vec(), x.to_vec());
    }

    #[test]
    fn slice_round_trips(n in 1usize..40, start in 0usize..40, len in 0usize..40, step in 1usize..5) {
        let x = base(&[n]);
        let s = start.min(n);
        let e = (s + len).min(n);
        let v = x.slice(0, s, e, step);
        let expect: Vec<f32> = (s..e).step_by(step).map(|i| i as f32).collect();
        prop_assert_eq!(v.to_vec(), expect);
        // Writing through a copy of the slice never changes the base.
        let mut w = v.clone();
        w.fill(-1.0);
        prop_assert_eq!(x.to_vec(), (0..n).map(|i| i as f32).collect::<Vec<_>>());
    }
}

/// Copies of transposed blocks (the tiled-transpose path) equal the model,
/// also batched and with a row stride wider than the block.
#[test]
fn transposed_copies_match_the_model() {
    // The largest case crosses SIMD-width tiles; under miri (scalar only, and
    // each element check rescans the borrow stack of the whole buffer) a
    // smaller one.
    let big = if cfg!(miri) {
        ([2, 12, 20], 16)
    } else {
        ([2, 40, 70], 64)
    };
    for (shape, narrow) in [([1, 9, 13], 13), ([3, 10, 12], 9), big] {
        let x = base(&shape);
        let m = Model::of(&x);
        let v = x.narrow(2, 1, narrow - 1).transpose(1, 2);
        let mm = m.slice(2, 1, narrow, 1).permute(&[0, 2, 1]);
        check(&v, &mm, "narrowed transpose");
        let t = x.select(0, 0).t();
        check(&t, &m.select(0, 0).permute(&[1, 0]), "matrix transpose");
    }
}
