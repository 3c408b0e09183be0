//! The Module trait, Linear, Sequential and state dicts.

use train_station::nn::{Flatten, Linear, Module, Relu, Sequential};
use train_station::{Error, Tensor, manual_seed};

fn mlp() -> Sequential {
    Sequential::new()
        .with(Linear::new(4, 8))
        .with(Relu)
        .with(Linear::new(8, 3))
}

#[test]
fn linear_computes_x_wt_plus_b() {
    let w = Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]).unwrap();
    let b = Tensor::from_slice(&[0.5, -0.5], [2]).unwrap();
    let l = Linear::from_parameters(w, Some(b)).unwrap();
    let x = Tensor::from_slice(&[1.0, 0.0, -1.0, 2.0, 1.0, 0.0], [2, 3]).unwrap();
    assert_eq!(l.forward(&x).to_vec(), vec![-1.5, -2.5, 4.5, 12.5]);
    // Any leading dims.
    assert_eq!(l.forward(&x.reshape([1, 2, 3])).dims(), &[1, 2, 2]);
    let e = l.try_forward(&Tensor::zeros([2, 4])).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Linear: shapes [2, 4] and [2, 3]"),
        "{e}"
    );
}

#[test]
fn default_init_matches_pytorch_bounds() {
    manual_seed(0);
    let l = Linear::new(100, 50);
    let bound = 1.0 / 10.0;
    assert!(l.weight.values().all(|v| v.abs() <= bound));
    assert!(l.bias.as_ref().unwrap().values().all(|v| v.abs() <= bound));
    // Roughly uniform: the variance of U(-b, b) is b²/3.
    let n = l.weight.numel() as f32;
    let var = l.weight.values().map(|v| v * v).sum::<f32>() / n;
    assert!(
        (var - bound * bound / 3.0).abs() < 0.2 * bound * bound / 3.0,
        "{var}"
    );
    assert!(l.weight.requires_grad() && l.weight.is_leaf());
}

#[test]
fn names_follow_pytorch_state_dict_keys() {
    let m = mlp().with(Flatten::default());
    let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(m.num_parameters(), 4 * 8 + 8 + 8 * 3 + 3);
    assert_eq!(m.parameters().len(), 4);
}

#[test]
fn state_dict_round_trip_keeps_parameter_identity() {
    let a = mlp();
    let mut b = mlp();
    let ids: Vec<u64> = b.parameters().iter().map(|p| p.id()).collect();
    b.load_state_dict(&a.state_dict()).unwrap();
    let x = Tensor::randn([5, 4], Some(1));
    assert_eq!(a.forward(&x), b.forward(&x));
    let after: Vec<u64> = b.parameters().iter().map(|p| p.id()).collect();
    assert_eq!(ids, after, "loading copies in place");
    assert!(b.parameters().iter().all(|p| p.requires_grad()));
}

#[test]
fn load_state_dict_names_bad_keys_and_changes_nothing() {
    let mut m = mlp();
    let before = m.state_dict();
    let mut sd = mlp().state_dict();
    sd.retain(|(n, _)| n != "2.bias");
    sd.push(("9.weight".into(), Tensor::zeros([1])));
    sd[0].1 = Tensor::zeros([3, 3]);
    let e = m.load_state_dict(&sd).unwrap_err();
    match &e {
        Error::StateDict {
            missing,
            unexpected,
            mismatched,
            keys,
        } => {
            assert_eq!((*missing, *unexpected, *mismatched), (1, 1, 1));
            assert_eq!(
                keys.as_str(),
                "mis-shaped: 0.weight; missing: 2.bias; unexpected: 9.weight"
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .starts_with("load_state_dict: 1 missing, 1 unexpected and 1 mis-shaped")
    );
    for ((_, x), (_, y)) in before.iter().zip(m.state_dict().iter()) {
        assert_eq!(x, y, "nothing changed");
    }
    // Non-strict loading skips missing/unexpected keys but not bad shapes.
    let mut ok = mlp().state_dict();
    ok.retain(|(n, _)| n.starts_with('0'));
    let report = m.load_state_dict_with(&ok, false).unwrap();
    assert_eq!(report.missing, ["2.weight", "2.bias"]);
}

#[test]
fn freezing_and_training_mode() {
    let mut m = mlp();
    assert!(m.is_training());
    m.eval();
    assert!(!m.is_training());
    m.train();
    m.set_requires_grad(false);
    assert!(m.parameters().iter().all(|p| !p.requires_grad()));
    let y = m.forward(&Tensor::randn([2, 4], Some(3)));
    assert!(!y.requires_grad());
    m.set_requires_grad(true);
    let y = m.forward(&Tensor::randn([2, 4], Some(3))).sum();
    y.backward();
    assert!(m.parameters().iter().all(|p| p.grad().is_some()));
    m.zero_grad();
    assert!(m.parameters().iter().all(|p| p.grad().is_none()));
}

/// MultiheadAttention's `out_proj` is a `Linear` that LoRA can target (by
/// its dotted path inside a `Sequential`, as PEFT names it): the adapter's
/// parameters join the state dict under PEFT's names, everything else is
/// frozen, and the output equals attention whose `out_proj` weight is
/// `W + scaling * B A`.
#[test]
fn lora_targets_the_attention_output_projection() {
    use train_station::nn::{LoraConfig, MultiheadAttention};
    use train_station::no_grad;
    manual_seed(9);
    let mha = MultiheadAttention::new(8, 2);
    let mut reference = mha.clone();
    let mut model = Sequential::new().with(mha);
    let mut names = Vec::new();
    model.visit_linears("", &mut |n, _| names.push(n.to_string()));
    assert_eq!(names, ["0.out_proj"]);
    let adapted = model
        .add_lora(&LoraConfig::new(2, 4.0, &["out_proj"]))
        .unwrap();
    assert_eq!(adapted, ["0.out_proj"]);
    let mut trainable = Vec::new();
    model.visit_params("", &mut |n, t| {
        trainable.push((n.to_string(), t.requires_grad()))
    });
    assert_eq!(
        trainable,
        [
            ("0.in_proj_weight".to_string(), false),
            ("0.in_proj_bias".to_string(), false),
            ("0.out_proj.base_layer.weight".to_string(), false),
            ("0.out_proj.base_layer.bias".to_string(), false),
            ("0.out_proj.lora_A.default.weight".to_string(), true),
            ("0.out_proj.lora_B.default.weight".to_string(), true),
        ]
    );
    let x = Tensor::randn([2, 3, 8], Some(4));
    let before = model.forward(&x);
    // B starts at zero (PEFT), so the adapter changes nothing until trained.
    let delta = Tensor::randn([8, 2], Some(5));
    let mut merged = None;
    model.visit_linears_mut("", &mut |_, l| {
        let w = l.weight.clone();
        let lora = l.lora_mut().unwrap();
        no_grad(|| lora.b.copy_from(&delta));
        merged = Some(&w + &(&lora.b.matmul(&lora.a) * lora.scaling()));
    });
    no_grad(|| reference.out_proj.weight.copy_from(&merged.unwrap()));
    let after = model.forward(&x);
    let want = reference.forward(&x);
    assert_ne!(
        after.to_vec(),
        before.to_vec(),
        "the adapter is not applied"
    );
    for (g, w) in after.to_vec().iter().zip(want.to_vec()) {
        assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
    }
}
