//! Checkpoints: resuming continues bit for bit, and bad checkpoints are errors.

use train_station::data::{DataLoader, TensorDataset};
use train_station::io::{CheckpointInfo, checkpoint_from_bytes, checkpoint_to_bytes};
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::nn::{Dropout, Linear, Module, Relu, Sequential};
use train_station::optim::{Adam, AdamConfig, CosineAnnealingLr, LrScheduler, Optimizer};
use train_station::{Error, Tensor, manual_seed};

/// The tests of this file use the global generator (layer initialisation,
/// noise), which is process-wide: they take turns.
static GLOBAL_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn model() -> Sequential {
    Sequential::new()
        .with(Linear::new(6, 16))
        .with(Relu)
        .with(Dropout::with_seed(0.2, 5))
        .with(Linear::new(16, 3))
}

fn data() -> TensorDataset {
    let x = Tensor::randn([40, 6], Some(1));
    let y = Tensor::from_fn([40], |i| (i[0] % 3) as f32);
    TensorDataset::new(vec![x, y]).unwrap()
}

struct Run {
    model: Sequential,
    opt: Adam,
    sched: CosineAnnealingLr,
}

fn fresh() -> Run {
    let model = model();
    let mut opt = Adam::new(
        &model.parameters(),
        AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        },
    );
    let sched = CosineAnnealingLr::new(&mut opt, 20, 1e-4);
    Run { model, opt, sched }
}

/// One epoch of training; also draws from the global generator each step
/// (as random augmentation would), so its state matters too.
fn epoch(r: &mut Run, loader: &mut DataLoader) {
    for batch in loader.epoch() {
        let noise = Tensor::randn(batch[0].dims(), None);
        let x = &batch[0] + &(&noise * 0.01);
        let loss = cross_entropy(
            &r.model.forward(&x),
            &batch[1],
            &CrossEntropyOptions::default(),
        );
        r.model.zero_grad();
        loss.backward();
        r.opt.step_module(&mut r.model).unwrap();
    }
    r.sched.step(&mut r.opt);
}

fn hex(s: [u64; 4]) -> String {
    s.map(|w| format!("{w:x}")).join(",")
}

fn unhex(s: &str) -> [u64; 4] {
    let v: Vec<u64> = s
        .split(',')
        .map(|w| u64::from_str_radix(w, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// Epochs before and after the checkpoint: 1 under miri (each training step
/// is ~1000x slower there), 3 natively; the same checks.
const EPOCHS: usize = if cfg!(miri) { 1 } else { 3 };

#[test]
fn resuming_continues_bit_identically() {
    let _g = serial();
    manual_seed(3);
    let ds = data();
    let mut r = fresh();
    let mut loader = DataLoader::new(&ds, 8).shuffle(11);
    for _ in 0..EPOCHS {
        epoch(&mut r, &mut loader);
    }
    let loader_state = hex(loader.rng_state().unwrap());
    let bytes = checkpoint_to_bytes(
        &r.model,
        Some(&r.opt),
        Some(&r.sched),
        EPOCHS as u64,
        &[("loader", &loader_state)],
    )
    .unwrap();
    let saved_lrs = r.opt.lrs();
    // Continue the original run.
    for _ in 0..EPOCHS {
        epoch(&mut r, &mut loader);
    }
    let expected = r.model.state_dict();

    // Disturb everything global, then resume into freshly built objects.
    manual_seed(999);
    let _ = Tensor::randn([10], None);
    let mut s = fresh();
    let info: CheckpointInfo =
        checkpoint_from_bytes(&bytes, &mut s.model, Some(&mut s.opt), Some(&mut s.sched)).unwrap();
    assert_eq!(info.step, EPOCHS as u64);
    let mut loader2 = DataLoader::new(&ds, 8);
    loader2.set_rng_state(unhex(info.extra("loader").unwrap()));
    assert_eq!(
        s.opt.lrs(),
        saved_lrs,
        "the scheduled learning rate is restored"
    );
    for _ in 0..EPOCHS {
        epoch(&mut s, &mut loader2);
    }
    let resumed = s.model.state_dict();
    for ((n, a), (_, b)) in expected.iter().zip(&resumed) {
        let (a, b) = (a.to_vec(), b.to_vec());
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{n} differs after resuming"
        );
    }
}

#[test]
fn bad_checkpoints_are_errors() {
    let _g = serial();
    let r = fresh();
    let bytes = checkpoint_to_bytes(&r.model, Some(&r.opt), None, 0, &[]).unwrap();
    // A plain safetensors file is not a checkpoint.
    let plain = train_station::io::module_to_bytes(&r.model).unwrap();
    let mut m = model();
    assert!(matches!(
        checkpoint_from_bytes(&plain, &mut m, None, None),
        Err(Error::Format { .. })
    ));
    // A different architecture names its keys.
    let mut other = Sequential::new().with(Linear::new(6, 4));
    let e = checkpoint_from_bytes(&bytes, &mut other, None, None).unwrap_err();
    assert!(matches!(e, Error::StateDict { .. }), "{e}");
    // The optimizer state of a model without one.
    let without = checkpoint_to_bytes(&r.model, None, None, 0, &[]).unwrap();
    let mut f = fresh();
    assert!(checkpoint_from_bytes(&without, &mut f.model, Some(&mut f.opt), None).is_err());
    // Truncations never panic.
    for cut in [0, 8, bytes.len() / 2, bytes.len() - 1] {
        let mut f = fresh();
        assert!(
            checkpoint_from_bytes(&bytes[..cut], &mut f.model, Some(&mut f.opt), None).is_err()
        );
    }
}

#[test]
fn module_weights_round_trip_with_pytorch_names() {
    let _g = serial();
    let a = model();
    let bytes = train_station::io::module_to_bytes(&a).unwrap();
    let file = train_station::io::from_safetensors(&bytes).unwrap();
    let mut names: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(names, ["0.bias", "0.weight", "3.bias", "3.weight"]);
    let mut b = model();
    train_station::io::module_from_bytes(&mut b, &bytes).unwrap();
    let x = Tensor::randn([2, 6], Some(4));
    let (mut a, mut b) = (a, b);
    a.eval();
    b.eval();
    assert_eq!(a.forward(&x), b.forward(&x));
}
