//! Every loss against PyTorch's fixtures (tests/reference/cases_loss.py).

use std::collections::HashMap;

use crate::common::{FIXTURE, check_fixtures};
use train_station::Tensor;
use train_station::nn::loss::{
    BceWithLogitsOptions, CrossEntropyOptions, NllLossOptions, Reduction, binary_cross_entropy,
    binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div, l1_loss, mse_loss,
    nll_loss, smooth_l1_loss, soft_margin_loss,
};

/// Runs the fixture case `name` (`<loss>:<key=value,...>`, see
/// tests/reference/cases_loss.py).
fn loss_case(name: &str, x: &[Tensor]) -> Option<Tensor> {
    let (loss, rest) = name.split_once(':')?;
    let kv: HashMap<&str, &str> = rest.split(',').filter_map(|p| p.split_once('=')).collect();
    let num = |k: &str| kv.get(k).map(|v| v.parse::<f32>().unwrap());
    let red = match kv["red"] {
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        "none" => Reduction::None,
        _ => return None,
    };
    let input = if kv.contains_key("xt") {
        x[0].t()
    } else {
        x[0].clone()
    };
    let target = if kv.contains_key("tt") {
        x[1].t()
    } else {
        x[1].clone()
    };
    let mut extra = x[2..].iter().cloned();
    let weight = kv.contains_key("w").then(|| extra.next().unwrap());
    let pos_weight = kv.contains_key("pw").then(|| extra.next().unwrap());
    assert!(extra.next().is_none(), "{name}: unused inputs");
    let ignore_index = match kv.get("ig") {
        None => Some(-100),
        Some(&"none") => None,
        Some(v) => Some(v.parse().unwrap()),
    };
    Some(match loss {
        "mse_loss" => mse_loss(&input, &target, red),
        "l1_loss" => l1_loss(&input, &target, red),
        "smooth_l1_loss" => smooth_l1_loss(&input, &target, red, num("beta")?),
        "huber_loss" => huber_loss(&input, &target, red, num("delta")?),
        "bce" => binary_cross_entropy(&input, &target, weight.as_ref(), red),
        "bce_logits" => binary_cross_entropy_with_logits(
            &input,
            &target,
            &BceWithLogitsOptions {
                weight,
                pos_weight,
                reduction: red,
            },
        ),
        "ce" | "cep" => cross_entropy(
            &input,
            &target,
            &CrossEntropyOptions {
                weight,
                ignore_index,
                reduction: red,
                label_smoothing: num("ls").unwrap_or(0.0),
            },
        ),
        "kl_div" => kl_div(&input, &target, red, kv["logt"] == "1"),
        "soft_margin" => soft_margin_loss(&input, &target, red),
        "nll" => nll_loss(
            &input,
            &target,
            &NllLossOptions {
                weight,
                ignore_index,
                reduction: red,
            },
        ),
        _ => return None,
    })
}

#[test]
fn losses_match_pytorch() {
    // Also the large-value cases (logits of 1e4, regression values of 1e4)
    // agree within the default tolerance.
    check_fixtures("loss", |_| FIXTURE, loss_case);
}
