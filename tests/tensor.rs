//! Construction, access, copy-on-write, identity, printing, iterators and
//! errors of the tensor type.

use train_station::{CollectTensor, Error, Tensor};

#[test]
fn constructors() {
    let z = Tensor::zeros([2, 3]);
    assert_eq!(z.dims(), &[2, 3]);
    assert_eq!(z.numel(), 6);
    assert!(z.values().all(|v| v == 0.0));
    assert!(Tensor::ones(vec![4]).values().all(|v| v == 1.0));
    assert!(
        Tensor::full(&[2usize, 2][..], 7.5)
            .values()
            .all(|v| v == 7.5)
    );
    assert_eq!(Tensor::zeros_like(&z).dims(), z.dims());
    assert!(Tensor::ones_like(&z).values().all(|v| v == 1.0));
    let s = Tensor::scalar(2.5);
    assert_eq!((s.rank(), s.numel(), s.item()), (0, 1, 2.5));
    assert_eq!(Tensor::zeros([0, 5]).numel(), 0);

    let t = Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2]).unwrap();
    assert_eq!(t.get(&[2, 1]), 6.0);
    assert_eq!(
        Tensor::from_slice(&[1.0, 2.0], [3]).unwrap_err(),
        Error::NumelMismatch {
            op: "from_slice",
            expected: 3,
            got: 2
        }
    );
    assert_eq!(
        Tensor::from_vec(vec![1.0, 2.0], [2, 1]).unwrap().dims(),
        &[2, 1]
    );
    let f = Tensor::from_fn([2, 3], |i| (i[0] * 10 + i[1]) as f32);
    assert_eq!(f.to_vec(), vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
}

#[test]
fn arange_linspace_eye_match_pytorch() {
    // torch.arange(0, 1, 0.3) -> [0.0, 0.3, 0.6, 0.9]
    assert_eq!(
        Tensor::arange(0.0, 1.0, 0.3).to_vec(),
        vec![0.0, 0.3, 0.6, 0.90000004]
    );
    assert_eq!(Tensor::arange(5.0, 1.0, -2.0).to_vec(), vec![5.0, 3.0]);
    assert_eq!(Tensor::arange(0.0, 0.0, 1.0).numel(), 0);
    assert!(Tensor::try_arange(0.0, 1.0, 0.0).is_err());
    assert!(Tensor::try_arange(0.0, 1.0, -1.0).is_err());
    assert!(Tensor::try_arange(0.0, f32::INFINITY, 1.0).is_err());
    // torch.linspace(-1, 1, 5) and (0, 1, 4): exact values from PyTorch 2.15.
    assert_eq!(
        Tensor::linspace(-1.0, 1.0, 5).to_vec(),
        vec![-1.0, -0.5, 0.0, 0.5, 1.0]
    );
    assert_eq!(
        Tensor::linspace(0.0, 1.0, 4).to_vec(),
        vec![0.0, 0.33333334, 0.6666666, 1.0]
    );
    assert_eq!(Tensor::linspace(3.0, 9.0, 1).to_vec(), vec![3.0]);
    assert_eq!(Tensor::linspace(3.0, 9.0, 0).numel(), 0);
    assert_eq!(
        Tensor::eye(3).to_vec(),
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    );
    assert_eq!(
        Tensor::eye_rect(2, 3).to_vec(),
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    );
}

#[test]
fn access_and_errors() {
    let t = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]);
    assert_eq!(t.get(&[1, 2]), 5.0);
    assert_eq!(
        t.try_get(&[2, 0]).unwrap_err(),
        Error::IndexOutOfRange {
            op: "get",
            index: 2,
            size: 2
        }
    );
    assert_eq!(
        t.try_get(&[1]).unwrap_err().to_string(),
        "get: 1 indices given for a tensor of rank 2"
    );
    assert_eq!(
        t.try_item().unwrap_err().to_string(),
        "item: the shape holds 1 elements but 6 were given"
    );
    assert_eq!(t.narrow(1, 2, 1).narrow(0, 1, 1).item(), 5.0);
    assert_eq!(t.size(-1), 3);
    assert!(t.try_size(2).is_err());
    assert_eq!(t.data(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(t.t().try_data().is_err());
    assert!(t.t().as_slice().is_none());
    assert_eq!(t.select(0, 1).data(), &[3.0, 4.0, 5.0]);
}

#[test]
#[should_panic(expected = "transpose: dimension 5 is out of range for a tensor of rank 2")]
fn plain_forms_panic_with_the_same_message() {
    let t = Tensor::zeros([2, 3]);
    let _ = t.transpose(0, 5);
}

#[test]
fn clone_is_o1_same_identity_shared_storage() {
    let a = Tensor::arange(0.0, 4.0, 1.0);
    let b = a.clone();
    assert!(a.shares_storage(&b));
    assert_eq!(a.id(), b.id());
    let v = a.reshape([2, 2]);
    assert_ne!(v.id(), a.id());
    assert_ne!(Tensor::zeros([1]).id(), Tensor::zeros([1]).id());
}

#[test]
fn copy_on_write_isolates_every_other_handle_and_view() {
    let base = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]);
    let orig = base.to_vec();
    let view = base.t();
    let mut a = base.clone();
    let id = a.id();

    a.set(&[0, 1], 100.0);
    assert_eq!(a.get(&[0, 1]), 100.0);
    assert_eq!(a.id(), id, "in-place mutation keeps identity");
    assert_eq!(base.to_vec(), orig, "the other handle is untouched");
    assert_eq!(view.to_vec(), base.t().to_vec(), "the view is untouched");
    assert!(!a.shares_storage(&base));

    // Mutating a view copies its own elements; its source never changes.
    let mut col = base.select(1, 1);
    col.fill(-1.0);
    assert_eq!(col.to_vec(), vec![-1.0, -1.0]);
    assert_eq!(base.to_vec(), orig);

    let mut tr = base.t();
    tr.data_mut()[0] = 42.0;
    assert!(tr.is_contiguous());
    assert_eq!(tr.to_vec(), vec![42.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(base.to_vec(), orig);

    let mut c = base.clone();
    c.copy_from(&Tensor::from_slice(&[7.0, 8.0, 9.0], [3]).unwrap());
    assert_eq!(c.to_vec(), vec![7.0, 8.0, 9.0, 7.0, 8.0, 9.0]);
    assert_eq!(base.to_vec(), orig);
    assert!(c.try_copy_from(&Tensor::zeros([2])).is_err());
}

#[test]
fn unique_tensors_are_written_in_place() {
    let mut a = Tensor::zeros([4, 4]);
    let before = a.data().as_ptr();
    a.fill(3.0);
    a.set(&[1, 1], 5.0);
    a.data_mut()[0] = 1.0;
    assert_eq!(
        a.data().as_ptr(),
        before,
        "no copy when the buffer is not shared"
    );
    // A strided view that is the only handle is written through its strides.
    let mut col = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]).select(1, 2);
    let p = col.storage_len();
    col.fill(9.0);
    assert_eq!(col.to_vec(), vec![9.0, 9.0]);
    assert_eq!(col.storage_len(), p);
}

#[test]
fn writing_an_expanded_view_materialises_it() {
    let row = Tensor::arange(0.0, 3.0, 1.0);
    let mut e = row.expand([2, 3]);
    e.set(&[0, 0], 10.0);
    assert_eq!(e.to_vec(), vec![10.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
    assert_eq!(row.to_vec(), vec![0.0, 1.0, 2.0]);
}

#[test]
fn copy_from_a_view_of_itself() {
    let mut a = Tensor::arange(0.0, 4.0, 1.0).reshape([2, 2]);
    let t = a.t();
    a.copy_from(&t);
    assert_eq!(a.to_vec(), vec![0.0, 2.0, 1.0, 3.0]);
}

#[test]
fn tensors_cross_threads() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Tensor>();
    // Smaller under miri (~1000x slower); the same threads and pool reuse.
    let (n, churn) = if cfg!(miri) { (200, 25) } else { (1000, 100) };
    // Made on a thread that exits before the tensor is read and dropped.
    let t = std::thread::spawn(move || Tensor::arange(0.0, n as f32, 1.0))
        .join()
        .unwrap();
    // Let the thread's cache teardown finish, then reuse the pool heavily.
    for _ in 0..churn {
        let _ = Tensor::zeros([n]);
    }
    assert_eq!(t.values().sum::<f32>(), (n * (n - 1) / 2) as f32);
    let v = t.narrow(0, 10, 5);
    let got = std::thread::spawn(move || v.to_vec()).join().unwrap();
    assert_eq!(got, vec![10.0, 11.0, 12.0, 13.0, 14.0]);
    drop(t);
}

#[test]
fn shared_tensor_read_by_many_threads_while_one_mutates_its_copy() {
    // Under miri (~1000x slower, and it explores thread interleavings) the
    // tensor and the loop shrink; the same threads, reads and writes run.
    let (len, rounds) = if cfg!(miri) { (256, 12) } else { (4096, 200) };
    let shared = Tensor::arange(0.0, len as f32, 1.0);
    let expect: f32 = shared.values().sum();
    std::thread::scope(|s| {
        for k in 0..4 {
            let mut mine = shared.clone();
            let shared = &shared;
            s.spawn(move || {
                for i in 0..rounds {
                    mine.set(&[i % len], k as f32);
                    assert_eq!(shared.values().sum::<f32>(), expect);
                }
            });
        }
    });
    assert_eq!(shared.values().sum::<f32>(), expect);
}

#[test]
fn allclose_and_eq() {
    let a = Tensor::from_slice(&[1.0, 2.0, f32::INFINITY], [3]).unwrap();
    let b = Tensor::from_slice(&[1.0 + 1e-6, 2.0, f32::INFINITY], [3]).unwrap();
    assert!(a.allclose(&b, 1e-5, 1e-8));
    assert!(!a.allclose(&b, 0.0, 0.0));
    assert_ne!(a, b);
    assert_eq!(a, a.clone());
    assert!(
        !a.allclose(&a.reshape([3, 1]), 1.0, 1.0),
        "shapes must match"
    );
    let n = Tensor::from_slice(&[f32::NAN], [1]).unwrap();
    assert!(!n.allclose(&n, 1.0, 1.0));
    // Equality is logical: a transposed view equals its contiguous copy.
    let t = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]).t();
    assert_eq!(t, t.contiguous());
}

#[test]
fn iterators_yield_views() {
    let x = Tensor::arange(0.0, 12.0, 1.0).reshape([3, 4]);
    let rows: Vec<Vec<f32>> = x.iter().map(|r| r.to_vec()).collect();
    assert_eq!(rows[2], vec![8.0, 9.0, 10.0, 11.0]);
    assert!(x.iter().all(|r| r.shares_storage(&x)));
    assert_eq!(x.iter().len(), 3);
    assert_eq!(x.iter().next_back().unwrap().to_vec(), rows[2]);
    let cols: Vec<Vec<f32>> = x.iter_dim(1).map(|c| c.to_vec()).collect();
    assert_eq!(cols[1], vec![1.0, 5.0, 9.0]);
    let ch: Vec<Vec<usize>> = x.chunks_dim(1, 3).map(|c| c.dims().to_vec()).collect();
    assert_eq!(ch, vec![vec![3, 3], vec![3, 1]]);
    assert_eq!(x.chunks(2).len(), 2);
    let w: Vec<Vec<f32>> = x.select(0, 0).windows(2, 1).map(|w| w.to_vec()).collect();
    assert_eq!(w, vec![vec![0.0, 1.0], vec![1.0, 2.0], vec![2.0, 3.0]]);
    assert_eq!(x.windows_dim(1, 3, 2).len(), 1);
    assert_eq!(x.windows(4, 1).len(), 0);
    assert!(Tensor::scalar(1.0).try_iter_dim(0).is_err());
    assert!(x.try_chunks_dim(0, 0).is_err());
    let mut n = 0;
    for row in &x {
        n += row.numel();
    }
    assert_eq!(n, 12);
}

#[test]
fn values_iterate_any_view_in_logical_order() {
    let x = Tensor::arange(0.0, 24.0, 1.0).reshape([2, 3, 4]);
    let v = x.permute([2, 0, 1]).slice(2, 0, 3, 2);
    assert_eq!(v.values().collect::<Vec<_>>(), v.to_vec());
    let mut it = v.values();
    let first: Vec<f32> = it.by_ref().take(3).collect();
    let rest: f32 = it.sum(); // fold after a partial next()
    assert_eq!(
        first.iter().sum::<f32>() + rest,
        v.to_vec().iter().sum::<f32>()
    );
    let e = Tensor::arange(0.0, 3.0, 1.0).unsqueeze(1).expand([3, 2]);
    assert_eq!(
        e.values().collect::<Vec<_>>(),
        vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    );
    assert_eq!(e.values().fold(0.0, |a, b| a + b), 6.0);
}

#[test]
fn collecting_back_into_tensors() {
    let x = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]);
    let doubled = x.values().map(|v| v * 2.0).collect_shape([3, 2]).unwrap();
    assert_eq!(doubled.dims(), &[3, 2]);
    assert_eq!(doubled.to_vec(), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    assert!(x.values().collect_shape([4]).is_err());
    assert!(x.values().collect_shape([7]).is_err());
    let back = x.iter().collect_shape([2, 3]).unwrap();
    assert_eq!(back, x);
    let cols = x.iter_dim(1).collect_shape([3, 2]).unwrap();
    assert_eq!(cols, x.t());
    let stacked: Tensor = x.iter().rev().collect();
    assert_eq!(stacked.to_vec(), vec![3.0, 4.0, 5.0, 0.0, 1.0, 2.0]);
    let flat: Tensor = (0..4).map(|i| i as f32).collect();
    assert_eq!(flat.dims(), &[4]);
    let ragged = vec![Tensor::zeros([2]), Tensor::zeros([3])];
    assert!(ragged.into_iter().collect_shape([5]).is_err());
}

/// The `Display` output of tensors built here equals PyTorch's repr of the same
/// tensors (tests/reference/gen_display.py writes display.txt).
#[test]
fn display_matches_pytorch() {
    let fixture = include_str!("reference/display.txt");
    let mut expected = std::collections::HashMap::new();
    let mut name = "";
    let mut body = String::new();
    for line in fixture.lines() {
        if let Some(n) = line.strip_prefix("### ") {
            if !name.is_empty() {
                expected.insert(name, body.trim_end().to_string());
            }
            name = n;
            body.clear();
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    expected.insert(name, body.trim_end().to_string());

    let t = |d: &[f32], s: &[usize]| Tensor::from_slice(d, s).unwrap();
    let cases: Vec<(&str, Tensor)> = vec![
        ("matrix_int", Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3])),
        ("vector_frac", t(&[1.5, -2.25, 3.0], &[3])),
        ("scalar", Tensor::scalar(3.0)),
        ("empty_2d", Tensor::zeros([0, 3])),
        ("empty_1d", Tensor::zeros([0])),
        ("sci_ratio", t(&[1e-5, 1.0, 1e5], &[3])),
        (
            "summarized",
            Tensor::arange(0.0, 2000.0, 1.0).reshape([40, 50]),
        ),
        (
            "specials",
            t(&[f32::NAN, 1.0, f32::INFINITY, f32::NEG_INFINITY], &[4]),
        ),
        ("wrapped_row", Tensor::arange(0.0, 30.0, 1.0)),
        (
            "cube",
            Tensor::from_fn([2, 3, 4], |i| ((i[0] * 12 + i[1] * 4 + i[2]) as f32) / 7.0),
        ),
        ("negative_small", t(&[-0.5, 0.25, -0.125], &[3])),
        ("big_int", t(&[1.0, 2e8], &[2])),
        (
            "transposed",
            Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]).t(),
        ),
        (
            "long_summarized_1d",
            Tensor::from_fn([1001], |i| i[0] as f32 * 0.5),
        ),
        ("all_zero", Tensor::zeros([2, 2])),
    ];
    assert_eq!(cases.len(), expected.len(), "every fixture case is checked");
    for (name, tensor) in cases {
        assert_eq!(format!("{tensor}"), expected[name], "case {name}");
        assert_eq!(format!("{tensor:?}"), expected[name], "case {name} (Debug)");
    }
}
