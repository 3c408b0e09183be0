//! Multi-process tests of `distributed` (feature `mpi`). Run under MPI with
//! any number of ranks dividing 24, e.g.
//!
//! ```text
//! CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="mpirun -np 4" cargo test --features mpi --test mpi
//! ```
//!
//! (run without `mpirun` it is a job of one rank). Every rank runs every
//! check; a failed assertion panics, which aborts the whole job with a
//! non-zero exit code. Rank 0 prints one line per check.
//!
//! Two arguments run a deliberate failure instead (CI checks that the job
//! ends with a clear message and does not hang): `mismatch` (the last rank's
//! model has another shape) and `fail` (the last rank panics while the others
//! wait in a collective).

use std::path::PathBuf;

use train_station::data::{DistributedSampler, TensorDataset};
use train_station::distributed::{AllReduce, Distributed, DistributedDataParallel};
use train_station::io::{load_checkpoint, save_checkpoint};
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::nn::{BatchNorm1d, Linear, Module, Relu, Sequential};
use train_station::optim::{Adam, AdamConfig, Optimizer};
use train_station::{Result, Tensor, manual_seed};

/// Samples in the test data set; divisible by 1, 2, 3, 4, 6, 8, 12, 24 ranks.
const N: usize = 48;
/// Global batch.
const B: usize = 24;

fn mlp() -> Sequential {
    Sequential::new()
        .with(Linear::new(6, 16))
        .with(Relu)
        .with(Linear::new(16, 3))
}

/// `N` samples of 6 features and 3 classes, the same on every rank.
fn data() -> TensorDataset {
    let x = Tensor::randn([N, 6], Some(5));
    let y = Tensor::from_fn([N], |i| ((i[0] * 7) % 3) as f32);
    TensorDataset::new(vec![x, y]).unwrap()
}

fn loss(model: &dyn Module, batch: &[Tensor]) -> Tensor {
    cross_entropy(
        &model.forward(&batch[0]),
        &batch[1],
        &CrossEntropyOptions::default(),
    )
}

/// Every value of every parameter, in order.
fn values(model: &dyn Module) -> Vec<f32> {
    model.parameters().iter().flat_map(|p| p.to_vec()).collect()
}

/// Every parameter's gradient, in order.
fn grads(model: &dyn Module) -> Vec<f32> {
    model
        .parameters()
        .iter()
        .flat_map(|p| p.grad().expect("a gradient").to_vec())
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Bits of `v` hashed, to compare values across ranks exactly.
fn bits_hash(v: &[f32]) -> u64 {
    v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ u64::from(x.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Asserts every rank has the same `value`.
fn assert_same_on_all_ranks(dist: &Distributed, value: u64, what: &str) {
    let all = dist.all_gather_u64(&[value]);
    assert!(
        all.iter().all(|&v| v == all[0]),
        "{what} differs between ranks: {all:x?}"
    );
}

fn report(dist: &Distributed, name: &str, detail: &str) {
    if dist.is_root() {
        println!("mpi test {name} ({} ranks): ok {detail}", dist.world_size());
    }
}

fn broadcast_gives_every_rank_the_weights_and_buffers_of_rank_0(dist: &Distributed) {
    manual_seed(100 + dist.rank() as u64);
    let mut model = Sequential::new()
        .with(Linear::new(6, 4))
        .with(BatchNorm1d::new(4));
    // Give the buffers rank-dependent values too.
    model.forward(&Tensor::randn([5, 6], Some(dist.rank() as u64)));
    let before: Vec<f32> = model
        .state_dict()
        .iter()
        .flat_map(|(_, t)| t.to_vec())
        .collect();
    let p0 = model.parameters()[0].clone();
    dist.broadcast_module(&mut model).unwrap();
    let after: Vec<f32> = model
        .state_dict()
        .iter()
        .flat_map(|(_, t)| t.to_vec())
        .collect();
    assert_eq!(
        p0.id(),
        model.parameters()[0].id(),
        "parameters keep their identity"
    );
    if dist.is_root() {
        assert_eq!(before, after, "rank 0 keeps its state");
    }
    assert_same_on_all_ranks(dist, bits_hash(&after), "the broadcast state");
    report(dist, "broadcast", "");
}

/// This rank's shard of the global batch `t` (unshuffled sampler order).
fn shard(dist: &Distributed, ds: &TensorDataset, t: usize) -> Vec<Tensor> {
    let s = DistributedSampler::new(N, dist.world_size(), dist.rank())
        .unwrap()
        .shuffle(false);
    let local = B / dist.world_size();
    s.batches(ds, local).nth(t).unwrap()
}

fn averaged_gradients_equal_the_whole_batch_gradients(dist: &Distributed) {
    let ds = data();
    let whole = ds.select(&(0..B).collect::<Vec<_>>()).unwrap();
    for mode in [AllReduce::Deterministic, AllReduce::Native] {
        manual_seed(1);
        let mut model = mlp();
        let mut ddp = DistributedDataParallel::new(dist, &mut model)
            .unwrap()
            .reduction(mode)
            .bucket_cap_bytes(256); // 64 elements: [96], [16, 48], [3]
        let mut single = mlp();
        single.load_state_dict(&model.state_dict()).unwrap();
        loss(&single, &whole).backward();
        let want = grads(&single);

        let stats = ddp
            .backward(&loss(&model, &shard(dist, &ds, 0)), &model)
            .unwrap();
        assert_eq!(stats.params, 4);
        assert_eq!(stats.bytes, 4 * model.num_parameters());
        assert_eq!(stats.buckets, 3);
        let got = grads(&model);
        let diff = max_diff(&got, &want);
        let scale = want.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        assert!(
            diff <= 1e-6 * scale.max(1.0),
            "{mode:?}: max difference {diff:e}"
        );
        assert_same_on_all_ranks(dist, bits_hash(&got), "the averaged gradient");
        report(
            dist,
            "gradients",
            &format!(
                "{mode:?}: max |ddp - single process| = {diff:.1e} (largest gradient {scale:.2})"
            ),
        );
    }
}

/// A module whose parameters are: `a` (used on every rank), `b` (used on
/// rank 0 only), `c` (frozen), `d` (trainable, never used).
struct Heads {
    a: Linear,
    b: Linear,
    c: Linear,
    d: Linear,
}

impl Module for Heads {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        self.c.try_forward(&self.a.try_forward(x)?)
    }
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        for (n, l) in [
            ("a.", &self.a),
            ("b.", &self.b),
            ("c.", &self.c),
            ("d.", &self.d),
        ] {
            l.visit_params(&format!("{prefix}{n}"), f);
        }
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        self.a.visit_params_mut(&format!("{prefix}a."), f);
        self.b.visit_params_mut(&format!("{prefix}b."), f);
        self.c.visit_params_mut(&format!("{prefix}c."), f);
        self.d.visit_params_mut(&format!("{prefix}d."), f);
    }
}

fn frozen_and_unused_parameters_are_handled_alike_on_every_rank(dist: &Distributed) {
    manual_seed(3);
    let mut m = Heads {
        a: Linear::new(6, 4),
        b: Linear::new(6, 2),
        c: Linear::new(4, 3),
        d: Linear::new(2, 2),
    };
    m.c.set_requires_grad(false);
    let mut ddp = DistributedDataParallel::new(dist, &mut m).unwrap();
    let ds = data();
    let batch = shard(dist, &ds, 1);
    let mut l = loss(&m, &batch);
    if dist.is_root() {
        l = &l + &m.b.forward(&batch[0]).square().mean();
    }
    let stats = ddp.backward(&l, &m).unwrap();
    assert_eq!(stats.params, 4, "a and b (weight and bias each)");
    assert!(m.c.weight.grad().is_none(), "frozen: no gradient");
    assert!(
        m.d.weight.grad().is_none(),
        "unused everywhere: no gradient"
    );
    // b's average is rank 0's gradient over the number of ranks.
    let rank0 = {
        let s = DistributedSampler::new(N, dist.world_size(), 0)
            .unwrap()
            .shuffle(false);
        let x = s.batches(&ds, B / dist.world_size()).nth(1).unwrap()[0].clone();
        let mut b = Linear::new(6, 2);
        b.load_state_dict(&m.b.state_dict()).unwrap();
        b.forward(&x).square().mean().backward();
        b.weight.grad().unwrap().to_vec()
    };
    let want: Vec<f32> = rank0.iter().map(|g| g / dist.world_size() as f32).collect();
    let got = m.b.weight.grad().unwrap().to_vec();
    assert!(max_diff(&got, &want) <= 1e-6, "{got:?} vs {want:?}");
    report(dist, "frozen-and-unused", "");
}

/// Trains `steps` global batches with Adam from the same start; returns the
/// parameters. `dist: None` is one process on whole batches.
fn train(dist: Option<&Distributed>, steps: usize) -> Vec<f32> {
    let ds = data();
    manual_seed(1);
    let mut model = mlp();
    let mut opt = Adam::new(&model.parameters(), AdamConfig::default());
    match dist {
        None => {
            let s = DistributedSampler::new(N, 1, 0).unwrap().seed(9);
            for batch in s.batches(&ds, B).cycle().take(steps) {
                model.zero_grad();
                loss(&model, &batch).backward();
                opt.step_module(&mut model).unwrap();
            }
        }
        Some(d) => {
            let mut ddp = DistributedDataParallel::new(d, &mut model).unwrap();
            let s = DistributedSampler::new(N, d.world_size(), d.rank())
                .unwrap()
                .seed(9);
            for batch in s.batches(&ds, B / d.world_size()).cycle().take(steps) {
                model.zero_grad();
                ddp.backward(&loss(&model, &batch), &model).unwrap();
                opt.step_module(&mut model).unwrap();
            }
        }
    }
    values(&model)
}

fn runs_are_bit_identical_and_track_one_process(dist: &Distributed) {
    let steps = 20;
    let a = train(Some(dist), steps);
    let b = train(Some(dist), steps);
    assert!(a == b, "two runs on the same ranks must be bit-identical");
    assert_same_on_all_ranks(dist, bits_hash(&a), "the trained parameters");
    let single = train(None, steps);
    let diff = max_diff(&a, &single);
    assert!(diff <= 1e-4, "{steps} Adam steps: max difference {diff:e}");
    report(
        dist,
        "determinism",
        &format!(
            "{steps} Adam steps: bit-identical reruns; max |ddp - single process| = {diff:.1e}"
        ),
    );
}

fn disagreement_is_the_same_error_on_every_rank(dist: &Distributed) {
    manual_seed(2);
    let mut model = mlp();
    let mut ddp = DistributedDataParallel::new(dist, &mut model).unwrap();
    if dist.world_size() == 1 {
        return;
    }
    // The last rank froze a bias the others train.
    if dist.rank() == dist.world_size() - 1 {
        model.parameters_mut()[1].set_requires_grad(false);
    }
    let ds = data();
    let err = ddp
        .backward(&loss(&model, &shard(dist, &ds, 0)), &model)
        .expect_err("the ranks disagree");
    assert!(err.message.contains("ranks disagree"), "{err}");
    // Every rank failed before moving data, so all can go on together.
    model.parameters_mut()[1].set_requires_grad(true);
    model.zero_grad();
    ddp.backward(&loss(&model, &shard(dist, &ds, 0)), &model)
        .unwrap();
    report(dist, "disagreement", &format!("every rank got: {err}"));
}

fn sampler_covers_every_sample_once_per_epoch(dist: &Distributed) {
    for (len, drop_last) in [
        (12 * dist.world_size(), false),
        (12 * dist.world_size() + 1, false),
    ] {
        let mut s = DistributedSampler::new(len, dist.world_size(), dist.rank())
            .unwrap()
            .seed(4)
            .drop_last(drop_last);
        for epoch in 0..3 {
            s.set_epoch(epoch);
            let mine: Vec<u64> = s.indices().iter().map(|&i| i as u64).collect();
            let mut all = dist.all_gather_u64(&mine);
            all.sort_unstable();
            let distinct = {
                let mut d = all.clone();
                d.dedup();
                d
            };
            assert_eq!(
                distinct,
                (0..len as u64).collect::<Vec<_>>(),
                "every sample, epoch {epoch}"
            );
            let padding = s.total_size() - len;
            assert_eq!(all.len() - distinct.len(), padding, "padding only");
            if len % dist.world_size() == 0 {
                assert_eq!(padding, 0);
            }
        }
    }
    report(dist, "sampler", "");
}

fn checkpoint_path() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mpi-resume.safetensors")
}

/// Trains epochs `from..to` (global batch `B`, Adam) on `dist`'s ranks,
/// starting from the checkpoint if `from > 0`, and saves one on rank 0.
fn train_epochs(dist: &Distributed, from: u64, to: u64) -> Vec<f32> {
    let ds = data();
    manual_seed(50 + dist.rank() as u64); // any start: rank 0's or the file's wins
    let mut model = mlp();
    let mut ddp = DistributedDataParallel::new(dist, &mut model).unwrap();
    let mut opt = Adam::new(&model.parameters(), AdamConfig::default());
    if from > 0 {
        let info = load_checkpoint(checkpoint_path(), &mut model, Some(&mut opt), None).unwrap();
        assert_eq!(info.step, from);
    }
    let mut s = DistributedSampler::new(N, dist.world_size(), dist.rank())
        .unwrap()
        .seed(9);
    for epoch in from..to {
        s.set_epoch(epoch);
        for batch in s.batches(&ds, B / dist.world_size()) {
            model.zero_grad();
            ddp.backward(&loss(&model, &batch), &model).unwrap();
            opt.step_module(&mut model).unwrap();
        }
    }
    if dist.is_root() {
        let n = dist.world_size().to_string();
        save_checkpoint(
            checkpoint_path(),
            &model,
            Some(&opt),
            None,
            to,
            &[("world_size", &n)],
        )
        .unwrap();
    }
    dist.barrier();
    values(&model)
}

fn resume_on_a_different_number_of_ranks(dist: &Distributed) {
    // Reference: the 4 epochs in one process on whole batches.
    let full = {
        // Same start as train_epochs: rank 0's weights after manual_seed(50).
        manual_seed(50);
        let mut model = mlp();
        let mut opt = Adam::new(&model.parameters(), AdamConfig::default());
        let ds = data();
        let mut s = DistributedSampler::new(N, 1, 0).unwrap().seed(9);
        for epoch in 0..4 {
            s.set_epoch(epoch);
            for batch in s.batches(&ds, B) {
                model.zero_grad();
                loss(&model, &batch).backward();
                opt.step_module(&mut model).unwrap();
            }
        }
        values(&model)
    };
    // Two epochs on every rank, then two on half of them (or the one).
    train_epochs(dist, 0, 2);
    let half = (dist.world_size() / 2).max(1);
    let sub = dist.split((dist.rank() < half).then_some(0));
    if let Some(sub) = &sub {
        let resumed = train_epochs(sub, 2, 4);
        let diff = max_diff(&resumed, &full);
        assert!(
            diff <= 1e-4,
            "resumed vs one process: max difference {diff:e}"
        );
        if dist.is_root() {
            println!(
                "mpi test resume ({} ranks, then {}): ok max |resumed - single process| = {diff:.1e}",
                dist.world_size(),
                sub.world_size()
            );
        }
    }
    drop(sub);
    dist.barrier();
}

fn main() {
    let dist = Distributed::init().expect("MPI initialises");
    let last = dist.world_size() - 1;
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "mismatch") {
        manual_seed(0);
        let mut model = if dist.rank() == last && last > 0 {
            Sequential::new().with(Linear::new(6, 17))
        } else {
            Sequential::new().with(Linear::new(6, 16))
        };
        if let Err(e) = DistributedDataParallel::new(&dist, &mut model) {
            dist.abort(&e);
        }
        println!("rank {}: no mismatch detected", dist.rank());
        return;
    }
    if args.iter().any(|a| a == "fail") {
        if dist.rank() == last {
            panic!("deliberate failure on rank {last}");
        }
        dist.barrier();
        println!("rank {}: passed the barrier", dist.rank());
        return;
    }
    assert!(
        B.is_multiple_of(dist.world_size()),
        "run on a number of ranks dividing {B}"
    );
    broadcast_gives_every_rank_the_weights_and_buffers_of_rank_0(&dist);
    averaged_gradients_equal_the_whole_batch_gradients(&dist);
    frozen_and_unused_parameters_are_handled_alike_on_every_rank(&dist);
    runs_are_bit_identical_and_track_one_process(&dist);
    disagreement_is_the_same_error_on_every_rank(&dist);
    sampler_covers_every_sample_once_per_epoch(&dist);
    resume_on_a_different_number_of_ranks(&dist);
    dist.barrier();
    if dist.is_root() {
        println!("mpi tests: all passed on {} ranks", dist.world_size());
    }
}
