//! Element-wise ops over broadcast and strided operands split their walk
//! between threads: results equal an element-by-element reference and are
//! bit-identical for one, two and three threads; so are row, column and
//! whole sums.
//!
//! The thread count is global, so this file is its own test binary with one
//! test. The thread count exists only with `std`.

#![cfg(feature = "std")]

use train_station::{Tensor, set_num_threads};

/// The elements of `x` in logical order, read one by one with `get` (no
/// walker, no copy kernel).
fn by_index(x: &Tensor) -> Vec<f32> {
    let dims = x.dims().to_vec();
    let mut idx = vec![0usize; dims.len()];
    (0..x.numel())
        .map(|mut flat| {
            for d in (0..dims.len()).rev() {
                idx[d] = flat % dims[d];
                flat /= dims[d];
            }
            x.get(&idx)
        })
        .collect()
}

/// `f(a, b)` element by element, `a` and `b` broadcast to the output shape.
fn naive_binary(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
    let shape = (a + b).dims().to_vec();
    let (va, vb) = (
        by_index(&a.expand(&shape[..])),
        by_index(&b.expand(&shape[..])),
    );
    va.iter().zip(&vb).map(|(&x, &y)| f(x, y)).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn strided_and_broadcast_ops_do_not_depend_on_the_thread_count() {
    let val =
        |i: &[usize]| ((i.iter().fold(7usize, |h, &j| h * 31 + j) % 1009) as f32) * 0.003 - 1.5;
    let big = Tensor::from_fn([1024, 1024], val);
    let row = Tensor::from_fn([1024], val);
    let col = Tensor::from_fn([300, 1], val);
    let line = Tensor::from_fn([1, 500], val);
    let wide = Tensor::from_fn([300, 1000], val);
    let tall = Tensor::from_fn([1000, 300], val);
    let long = Tensor::from_fn([140_003], val);
    let half = Tensor::from_fn([70_002], val);
    // Operand pairs: many runs with a broadcast row; an outer-product
    // broadcast; a transposed operand; one long strided run.
    let pairs: [(&str, Tensor, Tensor); 4] = [
        ("[1024,1024]+[1024]", big.clone(), row.clone()),
        ("[300,1]+[1,500]", col.clone(), line.clone()),
        ("[1000,300].t()+[300,1000]", tall.t(), wide.clone()),
        (
            "[140003][::2]+[70002]",
            long.slice(0, 0, 140_003, 2),
            half.clone(),
        ),
    ];
    let unary: [(&str, Tensor); 5] = [
        ("[1000,300].t()", tall.t()),
        ("[140003][::2]", long.slice(0, 0, 140_003, 2)),
        ("[1024]->[64,1024]", row.unsqueeze(0).expand([64, 1024])),
        ("[300,1000][:, ::3]", wide.slice(1, 0, 1000, 3)),
        ("[1024,1024]", big.clone()),
    ];
    let mut seen: Vec<Vec<Vec<u32>>> = Vec::new();
    for threads in [1, 2, 3] {
        set_num_threads(threads);
        let mut results = Vec::new();
        for (name, a, b) in &pairs {
            let sum = a + b;
            let prod = a * b;
            assert_eq!(sum.to_vec(), naive_binary(a, b, |x, y| x + y), "{name} add");
            assert_eq!(
                prod.to_vec(),
                naive_binary(a, b, |x, y| x * y),
                "{name} mul"
            );
            results.push(bits(&sum.to_vec()));
            results.push(bits(&(a / b).to_vec()));
            // In place: a contiguous accumulator, the other operand broadcast
            // or strided.
            let mut acc = sum.clone().contiguous();
            acc -= b;
            let want: Vec<f32> = sum
                .to_vec()
                .iter()
                .zip(naive_binary(&sum, b, |_, y| y))
                .map(|(s, y)| s - y)
                .collect();
            assert_eq!(acc.to_vec(), want, "{name} sub_");
            results.push(bits(&acc.to_vec()));
        }
        for (name, x) in &unary {
            let e = x.exp().to_vec();
            let dense = by_index(x);
            // Copies of the view (the walker's split, the tiled transpose).
            assert_eq!(x.contiguous().to_vec(), dense, "{name} copy");
            assert_eq!(x.deep_clone().to_vec(), dense, "{name} deep_clone");
            assert_eq!(e.len(), dense.len());
            for (i, (&got, &v)) in e.iter().zip(&dense).enumerate() {
                let want = (v as f64).exp();
                assert!(
                    ((got as f64 - want) / want).abs() < 1e-6,
                    "{name} exp at {i}: {got} vs {want}"
                );
            }
            results.push(bits(&e));
            results.push(bits(&x.tanh().to_vec()));
        }
        // Sums over trailing dimensions of contiguous tensors (rows summed in
        // parallel): each output equals the sum of its row alone, bit for bit.
        let cube = Tensor::from_fn([40, 30, 50], val);
        let sums: [(&str, Tensor, Tensor); 3] = [
            ("[1024,1024] rows", big.sum_dims([1], false), big.clone()),
            ("[300,1000] rows", wide.sum_dims([-1], true), wide.clone()),
            (
                "[40,30,50] over 1,2",
                cube.sum_dims([1, 2], false),
                cube.reshape([40, 1500]),
            ),
        ];
        for (name, fast, rows) in &sums {
            let each: Vec<f32> = (0..rows.dims()[0])
                .map(|r| rows.slice(0, r, r + 1, 1).sum().to_vec()[0])
                .collect();
            assert_eq!(bits(&fast.to_vec()), bits(&each), "{name} sum");
            results.push(bits(&fast.to_vec()));
        }
        // Sums over leading dimensions of contiguous tensors (column blocks
        // in parallel) equal the general walk's, which a column slice of a
        // wider tensor takes: bit for bit.
        let wider = Tensor::from_fn([1024, 1100], val);
        let view = wider.slice(1, 0, 1024, 1);
        let dense = view.contiguous();
        assert!(!view.is_contiguous() && dense.is_contiguous());
        let cube_view = Tensor::from_fn([40, 30, 60], val).slice(2, 0, 50, 1);
        let leading: [(&str, Tensor, Tensor); 3] = [
            (
                "[1024,1024] over 0",
                dense.sum_dims([0], false),
                view.sum_dims([0], false),
            ),
            (
                "[1024,1024] mean over 0",
                dense.mean_dims([0], true),
                view.mean_dims([0], true),
            ),
            (
                "[40,30,50] over 0,1",
                cube_view.contiguous().sum_dims([0, 1], true),
                cube_view.sum_dims([0, 1], true),
            ),
        ];
        for (name, fast, walked) in &leading {
            assert_eq!(fast.dims(), walked.dims(), "{name} shape");
            assert_eq!(bits(&fast.to_vec()), bits(&walked.to_vec()), "{name} sum");
            results.push(bits(&fast.to_vec()));
        }
        // Whole sums long enough to be cut into blocks (each thread takes a
        // run of consecutive blocks): close to the f64 sum, so no block is
        // skipped or summed twice whatever the thread count (a block is at
        // most a third of these sums), and the same bits on every count.
        for n in [32_768, 100_000, 1_000_003] {
            let x = Tensor::from_fn([n], |i: &[usize]| 1.0 + (i[0] % 1013) as f32 * 1e-3);
            let want: f64 = (0..n)
                .map(|i| 1.0 + f64::from((i % 1013) as f32 * 1e-3))
                .sum();
            let got = x.sum().to_vec()[0];
            let err = (f64::from(got) - want).abs() / want;
            assert!(
                err < 1e-6,
                "sum of {n} on {threads} threads: {got} vs {want}"
            );
            results.push(bits(&[got]));
        }
        seen.push(results);
    }
    set_num_threads(0);
    assert!(seen[1] == seen[0], "two threads differ from one");
    assert!(seen[2] == seen[0], "three threads differ from one");
}
