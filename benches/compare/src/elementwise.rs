//! Element-wise and row-wise workloads through the tensor APIs (allocation and
//! dispatch included) of train-station and candle: add and mul at 1e3..1e7
//! elements, broadcast add [1024,1024]+[1024], sums (1e5, 1e6, the rows of
//! [1024,1024]), exp / sigmoid / tanh / exact GELU on 1e6
//! elements and softmax over the last dimension of [1024,1024], the last five
//! reported as multiples of a plain copy of the same tensor by the same
//! library.

use candle_core::{Device, Tensor as CTensor};
use train_station::Tensor;

use crate::Pools;
use crate::report::Record;
use crate::timing::{Budget, Contender, check_close, data, interleaved, time_iters};

/// `1e{k}` for a power of ten, else the number.
pub fn size_label(n: usize) -> String {
    let k = (n as f64).log10().round() as i32;
    if 10usize.pow(k as u32) == n {
        format!("1e{k}")
    } else {
        n.to_string()
    }
}

/// Sizes of the add / mul sweep.
pub fn sizes(quick: bool) -> Vec<usize> {
    if quick {
        vec![1_000, 100_000, 1_000_000]
    } else {
        vec![1_000, 10_000, 100_000, 1_000_000, 10_000_000]
    }
}

fn ts(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).expect("train-station tensor")
}

fn ct(v: &[f32], shape: &[usize]) -> CTensor {
    CTensor::from_slice(v, shape, &Device::Cpu).expect("candle tensor")
}

fn cvec(t: &CTensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_vec1())
        .expect("candle values")
}

/// Interleaves train-station and candle on `threads` threads; returns their
/// best seconds per call (each call's result is kept from the optimiser).
fn pair<A, B>(
    threads: usize,
    pools: &Pools,
    budget: Budget,
    ours: impl Fn() -> A,
    theirs: impl Fn() -> B + Send + Sync,
) -> (f64, f64) {
    train_station::set_num_threads(threads);
    let mut ours = || {
        std::hint::black_box(ours());
    };
    let mut theirs = || {
        std::hint::black_box(theirs());
    };
    let mut cs = vec![
        Contender::new("train-station", threads, &mut ours),
        Contender {
            lib: "candle",
            run: Box::new(|iters| {
                pools.install(threads, || time_iters(threads, iters, &mut theirs))
            }),
        },
    ];
    let t = interleaved(budget, &mut cs);
    (t[0], t[1])
}

/// Records train-station's and candle's times of `case` in microseconds.
fn push_us(out: &mut Vec<Record>, group: &str, case: &str, threads: usize, ours: f64, theirs: f64) {
    for (lib, t) in [("train-station", ours), ("candle", theirs)] {
        out.push(Record::new(
            group,
            case.to_string(),
            threads,
            lib,
            t,
            t * 1e6,
            "us",
        ));
    }
}

/// Add, mul and broadcast add on `threads` threads.
pub fn binary(threads: usize, quick: bool, pools: &Pools, budget: Budget, out: &mut Vec<Record>) {
    train_station::set_num_threads(threads);
    let mut cases: Vec<(String, Vec<usize>, Vec<usize>)> = Vec::new();
    for n in sizes(quick) {
        cases.push((format!("add {}", size_label(n)), vec![n], vec![n]));
        cases.push((format!("mul {}", size_label(n)), vec![n], vec![n]));
    }
    cases.push((
        "broadcast add [1024,1024]+[1024]".to_string(),
        vec![1024, 1024],
        vec![1024],
    ));
    for (case, sa, sb) in cases {
        let mul = case.starts_with("mul");
        let (na, nb): (usize, usize) = (sa.iter().product(), sb.iter().product());
        let (va, vb) = (data(na, 11 + na as u64), data(nb, 12 + nb as u64));
        let want: Vec<f64> = (0..na)
            .map(|i| {
                let (x, y) = (va[i] as f64, vb[i % nb] as f64);
                if mul { x * y } else { x + y }
            })
            .collect();
        let (a, b) = (ts(&va, &sa), ts(&vb, &sb));
        let (ca, cb) = (ct(&va, &sa), ct(&vb, &sb));
        let op_ours = |a: &Tensor, b: &Tensor| if mul { a * b } else { a + b };
        let op_candle = |a: &CTensor, b: &CTensor| {
            if mul {
                a.broadcast_mul(b).expect("candle mul")
            } else {
                a.broadcast_add(b).expect("candle add")
            }
        };
        // f32 add / mul of f32 inputs is correctly rounded: half an ulp.
        check_close(
            &format!("{case} (train-station)"),
            &op_ours(&a, &b).to_vec(),
            &want,
            None,
            1e-7,
            1e-30,
        );
        let cr = pools.install(threads, || op_candle(&ca, &cb));
        check_close(
            &format!("{case} (candle)"),
            &cvec(&cr),
            &want,
            None,
            1e-7,
            1e-30,
        );
        let (t_ours, t_candle) = pair(
            threads,
            pools,
            budget,
            || op_ours(&a, &b),
            || op_candle(&ca, &cb),
        );
        push_us(out, "elementwise", &case, threads, t_ours, t_candle);
    }
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Exact GELU `x Phi(x)` in `f64`.
fn gelu64(x: f64) -> f64 {
    0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// exp, sigmoid, tanh, exact GELU (1e6) and softmax ([1024,1024], last dim) as multiples
/// of a copy of the same tensor, on `threads` threads.
pub fn transcendental(threads: usize, pools: &Pools, budget: Budget, out: &mut Vec<Record>) {
    train_station::set_num_threads(threads);
    let n = 1_000_000;
    // Inputs in [-4, 4]: the range where the functions are not saturated.
    let v: Vec<f32> = data(n, 21).iter().map(|x| x * 4.0).collect();
    let vs: Vec<f32> = data(1 << 20, 22).iter().map(|x| x * 4.0).collect();
    let (x, cx) = (ts(&v, &[n]), ct(&v, &[n]));
    let (xs, cxs) = (ts(&vs, &[1024, 1024]), ct(&vs, &[1024, 1024]));

    // Copies first: the baselines.
    let (copy_ours, copy_candle) = pair(
        threads,
        pools,
        budget,
        || x.deep_clone(),
        || cx.copy().expect("candle copy"),
    );
    let (copys_ours, copys_candle) = pair(
        threads,
        pools,
        budget,
        || xs.deep_clone(),
        || cxs.copy().expect("candle copy"),
    );
    for (case, lib, t) in [
        ("copy 1e6", "train-station", copy_ours),
        ("copy 1e6", "candle", copy_candle),
        ("copy [1024,1024]", "train-station", copys_ours),
        ("copy [1024,1024]", "candle", copys_candle),
    ] {
        out.push(Record::new(
            "copy",
            case.to_string(),
            threads,
            lib,
            t,
            t * 1e6,
            "us",
        ));
    }

    type F<'a> = (
        &'a str,
        fn(&Tensor) -> Tensor,
        fn(&CTensor) -> CTensor,
        fn(f64) -> f64,
    );
    let unary: [F; 4] = [
        ("exp 1e6", |t| t.exp(), |t| t.exp().expect("exp"), f64::exp),
        (
            "sigmoid 1e6",
            |t| t.sigmoid(),
            |t| candle_nn::ops::sigmoid(t).expect("sigmoid"),
            sigmoid64,
        ),
        (
            "tanh 1e6",
            |t| t.tanh(),
            |t| t.tanh().expect("tanh"),
            f64::tanh,
        ),
        (
            "gelu 1e6",
            |t| t.gelu(),
            |t| t.gelu_erf().expect("gelu"),
            gelu64,
        ),
    ];
    for (case, f_ours, f_candle, f64_ref) in unary {
        let want: Vec<f64> = v.iter().map(|&x| f64_ref(x as f64)).collect();
        check_close(
            &format!("{case} (train-station)"),
            &f_ours(&x).to_vec(),
            &want,
            None,
            1e-5,
            1e-6,
        );
        let cr = pools.install(threads, || f_candle(&cx));
        check_close(
            &format!("{case} (candle)"),
            &cvec(&cr),
            &want,
            None,
            1e-5,
            1e-6,
        );
        let (to, tc) = pair(threads, pools, budget, || f_ours(&x), || f_candle(&cx));
        out.push(Record::new(
            "transcendental",
            case.to_string(),
            threads,
            "train-station",
            to,
            to / copy_ours,
            "x copy",
        ));
        out.push(Record::new(
            "transcendental",
            case.to_string(),
            threads,
            "candle",
            tc,
            tc / copy_candle,
            "x copy",
        ));
    }

    let mut want = Vec::with_capacity(1 << 20);
    for row in vs.chunks(1024) {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let e: Vec<f64> = row.iter().map(|&x| (x as f64 - m).exp()).collect();
        let s: f64 = e.iter().sum();
        want.extend(e.iter().map(|x| x / s));
    }
    check_close(
        "softmax (train-station)",
        &xs.softmax(-1).to_vec(),
        &want,
        None,
        1e-5,
        1e-9,
    );
    let cr = pools.install(threads, || {
        candle_nn::ops::softmax_last_dim(&cxs).expect("softmax")
    });
    check_close("softmax (candle)", &cvec(&cr), &want, None, 1e-5, 1e-9);
    let (to, tc) = pair(
        threads,
        pools,
        budget,
        || xs.softmax(-1),
        || candle_nn::ops::softmax_last_dim(&cxs).expect("softmax"),
    );
    let case = "softmax [1024,1024]".to_string();
    out.push(Record::new(
        "transcendental",
        case.clone(),
        threads,
        "train-station",
        to,
        to / copys_ours,
        "x copy",
    ));
    out.push(Record::new(
        "transcendental",
        case,
        threads,
        "candle",
        tc,
        tc / copys_candle,
        "x copy",
    ));
}

/// Sums: of every element of 1e5 and 1e6 elements, and of each row of
/// [1024,1024] (over the last dimension), on `threads` threads.
pub fn reductions(threads: usize, pools: &Pools, budget: Budget, out: &mut Vec<Record>) {
    train_station::set_num_threads(threads);
    // The dimension summed over (`None`: every element).
    type Case = (&'static str, Vec<usize>, Option<usize>);
    let cases: [Case; 4] = [
        ("sum 1e5", vec![100_000], None),
        ("sum 1e6", vec![1_000_000], None),
        ("sum rows [1024,1024]", vec![1024, 1024], Some(1)),
        ("sum columns [1024,1024]", vec![1024, 1024], Some(0)),
    ];
    for (case, shape, dim) in cases {
        let n: usize = shape.iter().product();
        let v = data(n, 31 + n as u64);
        let (x, cx) = (ts(&v, &shape), ct(&v, &shape));
        // The f64 sums (and sums of magnitudes) of each output's terms.
        let groups: Vec<Vec<f64>> = match dim {
            None => vec![v.iter().map(|&x| x as f64).collect()],
            Some(1) => v
                .chunks(shape[1])
                .map(|r| r.iter().map(|&x| x as f64).collect())
                .collect(),
            _ => (0..shape[1])
                .map(|c| {
                    v.iter()
                        .skip(c)
                        .step_by(shape[1])
                        .map(|&x| x as f64)
                        .collect()
                })
                .collect(),
        };
        let want: Vec<f64> = groups.iter().map(|g| g.iter().sum()).collect();
        let scale: Vec<f64> = groups
            .iter()
            .map(|g| g.iter().map(|x| x.abs()).sum())
            .collect();
        let ours = |t: &Tensor| match dim {
            None => t.sum(),
            Some(d) => t.sum_dims([d], false),
        };
        let theirs = |t: &CTensor| match dim {
            None => t.sum_all().expect("candle sum"),
            Some(d) => t.sum(d).expect("candle sum"),
        };
        // A sum's error grows with the terms' magnitudes, not its value.
        check_close(
            &format!("{case} (train-station)"),
            &ours(&x).to_vec(),
            &want,
            Some(&scale),
            1e-6,
            1e-30,
        );
        let cr = pools.install(threads, || theirs(&cx));
        check_close(
            &format!("{case} (candle)"),
            &cvec(&cr),
            &want,
            Some(&scale),
            1e-6,
            1e-30,
        );
        let (t_ours, t_candle) = pair(threads, pools, budget, || ours(&x), || theirs(&cx));
        push_us(out, "reduction", case, threads, t_ours, t_candle);
    }
}
