//! Partial fine-tuning without adapters: freezing all but the last layers,
//! and BitFit (biases only).

use crate::common::{self, randn};
use train_station::nn::{Conv2d, LayerNorm, Linear, LoraConfig, Module, Relu, Sequential};

use super::{flags, mlp};

#[test]
fn freeze_all_but_last_sets_exactly_the_last_layers() {
    let _rng = common::global_rng_turn();
    let mut model = Sequential::new()
        .with(Linear::new(4, 8))
        .with(Relu)
        .with(LayerNorm::new(&[8]))
        .with(Linear::new_no_bias(8, 8))
        .with(Relu)
        .with(Linear::new(8, 2));
    let kept = model.freeze_all_but_last(2);
    assert_eq!(kept, ["3", "5"]);
    let want = [
        ("0.weight", false),
        ("0.bias", false),
        ("2.weight", false),
        ("2.bias", false),
        ("3.weight", true),
        ("5.weight", true),
        ("5.bias", true),
    ];
    let got = flags(&model);
    assert_eq!(got.len(), want.len());
    for ((n, on), (wn, won)) in got.iter().zip(want) {
        assert_eq!((n.as_str(), *on), (wn, won));
    }
    assert_eq!(model.freeze_all_but_last(0), Vec::<String>::new());
    assert!(flags(&model).iter().all(|(_, on)| !on));
    assert_eq!(model.freeze_all_but_last(10).len(), 4);
    assert!(flags(&model).iter().all(|(_, on)| *on));
    // A LoRA layer counts as one layer.
    let mut lm = mlp();
    lm.add_lora(&LoraConfig::new(1, 1.0, &["2"])).unwrap();
    assert_eq!(lm.freeze_all_but_last(1), ["2"]);
    let on: Vec<bool> = flags(&lm).iter().map(|(_, on)| *on).collect();
    assert_eq!(on, [false, false, true, true, true, true]);
}

#[test]
fn bitfit_trains_biases_only() {
    let _rng = common::global_rng_turn();
    let mut model = Sequential::new()
        .with(Conv2d::new(1, 2, 3))
        .with(Linear::new_no_bias(4, 4))
        .with(LayerNorm::new(&[4]))
        .with(Linear::new(4, 2));
    assert_eq!(model.train_bias_only(), 3);
    let trainable: Vec<String> = flags(&model)
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(trainable, ["0.bias", "2.bias", "3.bias"]);
    assert_eq!(model.trainable_parameters().len(), 3);
    // Training updates only the biases.
    let x = randn(&[2, 4], 1);
    let head = Sequential::new()
        .with(Linear::new(4, 3))
        .with(Linear::new(3, 2));
    let mut head = head;
    head.train_bias_only();
    head.forward(&x).sum().backward();
    for (n, p) in head.named_parameters() {
        assert_eq!(p.grad().is_some(), n.ends_with("bias"), "{n}");
    }
}
