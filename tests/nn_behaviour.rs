//! Layers beyond the PyTorch fixtures (tests/nn_layers.rs): errors that name
//! the layer and shapes, dropout statistics and streams, PyTorch's default
//! initialisation, batch-norm buffers, unbatched and view inputs, empty
//! batches, attention details and layers shared between threads.

// As in the library: errors carry both shapes inline.
#![allow(clippy::result_large_err)]

mod common;

use common::randn;
#[cfg(feature = "std")]
use common::{params, with_params};
use train_station::nn::{
    AdaptiveAvgPool2d, AttnMask, AttnOptions, AvgPool2d, AvgPool2dOptions, BatchNorm1d,
    BatchNorm2d, BatchNormOptions, Conv1d, Conv2d, ConvOptions, Dropout, Embedding, GroupNorm,
    LayerNorm, LayerNormOptions, MaxPool2d, MaxPool2dOptions, Module, MultiheadAttention,
    MultiheadAttentionOptions, Upsample, try_scaled_dot_product_attention,
};
use train_station::{Tensor, manual_seed};

// ------------------------------------------------------------ errors

#[track_caller]
fn err_starts(r: train_station::Result<Tensor>, prefix: &str) {
    let e = r.expect_err("expected an error");
    assert!(
        e.to_string().starts_with(prefix),
        "{e}\n(expected to start with {prefix:?})"
    );
}

#[test]
fn constructor_errors_name_the_layer() {
    let _rng = common::global_rng_turn();
    let msg = |r: train_station::Result<()>| r.unwrap_err().to_string();
    let conv = |cin, cout, k, o| Conv2d::try_new(cin, cout, k, o).map(|_| ());
    assert_eq!(
        msg(conv(4, 6, 3, ConvOptions::default().groups(3))),
        "Conv2d: in_channels must be divisible by groups"
    );
    assert_eq!(
        msg(conv(4, 6, 3, ConvOptions::default().groups(4))),
        "Conv2d: out_channels must be divisible by groups"
    );
    assert_eq!(
        msg(conv(4, 6, 3, ConvOptions::default().groups(0))),
        "Conv2d: groups must be a positive integer"
    );
    assert_eq!(
        msg(conv(4, 6, 0, ConvOptions::default())),
        "Conv2d: kernel_size must be positive"
    );
    assert_eq!(
        msg(conv(4, 6, 3, ConvOptions::default().stride(0))),
        "Conv2d: stride must be positive"
    );
    assert_eq!(
        msg(Conv1d::try_new(2, 2, 3, ConvOptions::default().dilation(0)).map(|_| ())),
        "Conv1d: dilation must be positive"
    );
    assert_eq!(
        msg(MaxPool2d::try_new(2, MaxPool2dOptions::default().padding(2)).map(|_| ())),
        "MaxPool2d: pad should be at most half of the kernel size"
    );
    assert_eq!(
        msg(AvgPool2d::try_new([3, 0], AvgPool2dOptions::default()).map(|_| ())),
        "AvgPool2d: kernel size must be positive"
    );
    assert_eq!(
        msg(
            AvgPool2d::try_new(2, AvgPool2dOptions::default().divisor_override(Some(0)))
                .map(|_| ())
        ),
        "AvgPool2d: divisor must not be zero"
    );
    assert_eq!(
        msg(AdaptiveAvgPool2d::try_new(0, 2).map(|_| ())),
        "AdaptiveAvgPool2d: the output size must be positive"
    );
    assert_eq!(
        msg(GroupNorm::try_new(3, 4, 1e-5, true).map(|_| ())),
        "GroupNorm: num_channels must be divisible by num_groups (and num_groups positive)"
    );
    assert!(
        msg(LayerNorm::try_new(&[], LayerNormOptions::default()).map(|_| ()))
            .starts_with("LayerNorm: ")
    );
    let bad_eps = BatchNormOptions {
        eps: f32::NAN,
        ..Default::default()
    };
    assert!(msg(BatchNorm1d::try_new(3, bad_eps).map(|_| ())).starts_with("BatchNorm1d: "));
    assert_eq!(
        msg(Embedding::try_new(4, 2, Some(4)).map(|_| ())),
        "Embedding: index 4 is out of range for a dimension of size 4"
    );
    assert_eq!(
        msg(Dropout::try_new(1.5, None).map(|_| ())),
        "Dropout: dropout probability has to be between 0 and 1"
    );
    assert_eq!(
        msg(Dropout::try_new(-0.1, None).map(|_| ())),
        msg(Dropout::try_new(f32::NAN, None).map(|_| ()))
    );
    assert_eq!(
        msg(Upsample::try_with_scale(0.0, 2.0).map(|_| ())),
        "Upsample: scale factors must be finite and positive"
    );
    assert_eq!(
        msg(Upsample::try_with_size(3, 0).map(|_| ())),
        "Upsample: the output size must be positive"
    );
    assert_eq!(
        msg(MultiheadAttention::try_new(6, 4, Default::default()).map(|_| ())),
        "MultiheadAttention: embed_dim must be divisible by num_heads"
    );
}

#[test]
fn forward_errors_name_the_layer_and_shapes() {
    let _rng = common::global_rng_turn();
    let conv = Conv2d::new(3, 4, 3);
    err_starts(
        conv.try_forward(&Tensor::zeros([2, 5, 8, 8])),
        "Conv2d: shapes [2, 5, 8, 8] and [4, 3, 3, 3] do not match",
    );
    err_starts(
        conv.try_forward(&Tensor::zeros([8, 8])),
        "Conv2d: shapes [8, 8] and [4, 3, 3, 3] do not match (expects an input [N, C, H, W] or [C, H, W]",
    );
    err_starts(
        conv.try_forward(&Tensor::zeros([1, 3, 2, 8])),
        "Conv2d: shapes [1, 3, 2, 8] and [4, 3, 3, 3] do not match (the (dilated) kernel is larger than the padded input)",
    );
    err_starts(
        Conv1d::new(2, 2, 3).try_forward(&Tensor::zeros([1, 2, 3, 3])),
        "Conv1d: shapes [1, 2, 3, 3] and [2, 2, 3] do not match",
    );
    err_starts(
        MaxPool2d::new(3).try_forward(&Tensor::zeros([1, 1, 2, 5])),
        "MaxPool2d: shapes [1, 1, 2, 5] and [] do not match (the input is too small",
    );
    err_starts(
        MaxPool2d::new(2).try_forward(&Tensor::zeros([4, 4])),
        "MaxPool2d: shapes [4, 4]",
    );
    err_starts(
        AvgPool2d::new(2).try_forward(&Tensor::zeros([2])),
        "AvgPool2d: shapes [2]",
    );
    err_starts(
        Upsample::with_size(2, 2).try_forward(&Tensor::zeros([2, 2])),
        "Upsample: shapes [2, 2] and [] do not match (expects an input [N, C, L] or [N, C, H, W])",
    );
    err_starts(
        Upsample::with_scale(0.1, 0.1).try_forward(&Tensor::zeros([1, 1, 3, 3])),
        "Upsample: shapes [1, 1, 3, 3] and [] do not match (input and output sizes must be positive)",
    );
    err_starts(
        AdaptiveAvgPool2d::new(2, 2).try_forward(&Tensor::zeros([1, 2, 0, 3])),
        "AdaptiveAvgPool2d: shapes [1, 2, 0, 3]",
    );
    err_starts(
        BatchNorm1d::new(3).try_forward(&Tensor::zeros([4, 2])),
        "BatchNorm1d: shapes [4, 2] and [3] do not match",
    );
    err_starts(
        BatchNorm2d::new(3).try_forward(&Tensor::zeros([4, 3, 2])),
        "BatchNorm2d: shapes [4, 3, 2] and [3] do not match",
    );
    err_starts(
        BatchNorm1d::new(3).try_forward(&Tensor::zeros([1, 3])),
        "BatchNorm1d: shapes [1, 3] and [3] do not match (expected more than 1 value per channel when training)",
    );
    let mut bn = BatchNorm1d::new(3);
    bn.eval();
    assert_eq!(
        bn.forward(&Tensor::ones([1, 3])).dims(),
        &[1, 3],
        "eval takes one sample"
    );
    err_starts(
        LayerNorm::new(&[3, 4]).try_forward(&Tensor::zeros([2, 4, 3])),
        "LayerNorm: shapes [2, 4, 3] and [3, 4] do not match",
    );
    err_starts(
        GroupNorm::new(2, 4).try_forward(&Tensor::zeros([2, 6, 3])),
        "GroupNorm: shapes [2, 6, 3] and [4] do not match",
    );
    let e = Embedding::new(10, 2);
    err_starts(
        e.try_forward(&Tensor::from_slice(&[1.0, 10.0], [2]).unwrap()),
        "Embedding: index 10 is out of range for a dimension of size 10",
    );
    err_starts(
        e.try_forward(&Tensor::from_slice(&[-1.0], [1]).unwrap()),
        "Embedding: index -1 is out of range for a dimension of size 10",
    );
    err_starts(
        e.try_forward(&Tensor::from_slice(&[1.5], [1]).unwrap()),
        "Embedding: indices must be whole numbers",
    );
    let m = MultiheadAttention::new(4, 2);
    let (q, k) = (Tensor::zeros([3, 2, 4]), Tensor::zeros([5, 2, 4]));
    let attn =
        |q: &Tensor, k: &Tensor, o: &AttnOptions| m.try_forward_attn(q, k, k, o).map(|r| r.0);
    err_starts(
        attn(&Tensor::zeros([3, 2, 5]), &k, &AttnOptions::default()),
        "MultiheadAttention: shapes [3, 2, 5] and [12, 4] do not match (query, key and value must end in embed_dim)",
    );
    err_starts(
        attn(&q, &Tensor::zeros([5, 3, 4]), &AttnOptions::default()),
        "MultiheadAttention: shapes [3, 2, 4] and [5, 3, 4] do not match (query and key must have the same batch size)",
    );
    let bad = AttnOptions::default().attn_mask(AttnMask::Blocked(Tensor::zeros([3, 4])));
    err_starts(
        attn(&q, &k, &bad),
        "MultiheadAttention: shapes [3, 4] and [4, 3, 5] do not match (attn_mask must be [L, S] or [N * num_heads, L, S])",
    );
    let bad = AttnOptions::default().key_padding_mask(AttnMask::Blocked(Tensor::zeros([5, 2])));
    err_starts(
        attn(&q, &k, &bad),
        "MultiheadAttention: shapes [5, 2] and [2, 5] do not match (key_padding_mask",
    );
    err_starts(
        try_scaled_dot_product_attention(&q, &Tensor::zeros([3, 5, 3]), &k, None, false, None),
        "scaled_dot_product_attention: shapes [3, 2, 4] and [3, 5, 3] do not match",
    );
    let wide = AttnMask::Additive(Tensor::zeros([2, 3, 2, 2]));
    err_starts(
        try_scaled_dot_product_attention(&q, &q, &q, Some(&wide), false, None),
        "scaled_dot_product_attention: shapes [2, 3, 2, 2] and [3, 2, 4] do not match",
    );
}

#[test]
#[should_panic(expected = "Conv2d: shapes [2, 5, 8, 8] and [4, 3, 3, 3] do not match")]
fn plain_forward_panics_with_the_same_message() {
    let _rng = common::global_rng_turn();
    Conv2d::new(3, 4, 3).forward(&Tensor::zeros([2, 5, 8, 8]));
}

#[test]
#[should_panic(expected = "Conv2d: in_channels must be divisible by groups")]
fn plain_constructor_panics_with_the_same_message() {
    let _rng = common::global_rng_turn();
    Conv2d::with_options(4, 6, 3, ConvOptions::default().groups(3));
}

// ------------------------------------------------------------ dropout

#[test]
fn dropout_keeps_one_minus_p_and_scales() {
    let _rng = common::global_rng_turn();
    let x = Tensor::full([200, 500], 2.0).with_requires_grad();
    for p in [0.1f32, 0.5, 0.8] {
        x.zero_grad();
        let d = Dropout::with_seed(p, 42);
        let y = d.forward(&x);
        let n = y.numel() as f32;
        let kept = y.values().filter(|&v| v != 0.0).count() as f32;
        // Binomial: sd of the kept fraction is sqrt(p (1 - p) / n) < 0.0012.
        assert!(
            (kept / n - (1.0 - p)).abs() < 0.006,
            "p {p}: kept {}",
            kept / n
        );
        let scale = 1.0 / (1.0 - p);
        assert!(
            y.values()
                .all(|v| v == 0.0 || (v - 2.0 * scale).abs() < 1e-5)
        );
        // The gradient uses the same mask and scale.
        let w = randn(y.dims(), 3);
        (&y * &w).sum().backward();
        let g = x.grad().unwrap();
        for ((gv, yv), wv) in g.values().zip(y.values()).zip(w.values()) {
            let want = if yv == 0.0 { 0.0 } else { wv * scale };
            assert!((gv - want).abs() < 1e-5, "{gv} vs {want}");
        }
        // The mean is kept in expectation.
        let mean = y.values().map(f64::from).sum::<f64>() / n as f64;
        assert!((mean - 2.0).abs() < 0.05, "p {p}: mean {mean}");
    }
}

#[test]
fn dropout_modes_edges_and_streams() {
    let _rng = common::global_rng_turn();
    let x = randn(&[4, 5], 1);
    let mut d = Dropout::with_seed(0.5, 1);
    d.eval();
    assert_eq!(d.forward(&x), x, "eval is the identity");
    assert!(!d.is_training());
    d.train();
    assert_ne!(d.forward(&x), x);
    assert_eq!(Dropout::with_seed(0.0, 1).forward(&x), x, "p = 0");
    let xg = x.clone().with_requires_grad();
    let y = Dropout::with_seed(1.0, 1).forward(&xg);
    assert!(y.values().all(|v| v == 0.0), "p = 1 gives zeros");
    y.sum().backward();
    assert!(xg.grad().unwrap().values().all(|v| v == 0.0));
    // Seeded: the same sequence of masks; each call draws a new mask.
    let (a, b) = (Dropout::with_seed(0.5, 9), Dropout::with_seed(0.5, 9));
    let (a1, a2) = (a.forward(&x), a.forward(&x));
    assert_eq!(a1, b.forward(&x));
    assert_eq!(a2, b.forward(&x));
    assert_ne!(a1, a2);
    // State save / restore and clone continue the stream.
    let s = a.rng_state();
    let next = a.forward(&x);
    a.set_rng_state(s);
    assert_eq!(a.forward(&x), next);
    let c = a.clone();
    assert_eq!(a.forward(&x), c.forward(&x));
    // The default seed comes from the global generator.
    manual_seed(77);
    let d1 = Dropout::new(0.5).forward(&x);
    manual_seed(77);
    assert_eq!(Dropout::new(0.5).forward(&x), d1);
}

// ------------------------------------------------------------ init

fn bound_and_var(t: &Tensor, bound: f32) {
    assert!(t.values().all(|v| v.abs() <= bound), "outside ±{bound}");
    let n = t.numel() as f32;
    let var = t.values().map(|v| v * v).sum::<f32>() / n;
    let want = bound * bound / 3.0;
    assert!(
        (var - want).abs() < 0.15 * want,
        "variance {var}, want {want}"
    );
}

#[test]
fn default_initialisation_follows_pytorch() {
    let _rng = common::global_rng_turn();
    manual_seed(3);
    // Conv: U(±1/sqrt(fan_in)), fan_in = in/groups * prod(k).
    let c = Conv2d::with_options(16, 32, [3, 5], ConvOptions::default().groups(4));
    assert_eq!(c.weight.dims(), &[32, 4, 3, 5]);
    let b = 1.0 / (4.0f32 * 15.0).sqrt();
    bound_and_var(&c.weight, b);
    assert!(c.bias.as_ref().unwrap().values().all(|v| v.abs() <= b));
    assert!(c.weight.requires_grad() && c.bias.as_ref().unwrap().requires_grad());
    assert_eq!(c.in_channels(), 16);
    assert_eq!(c.out_channels(), 32);
    assert!(
        Conv1d::with_options(2, 2, 3, ConvOptions::default().bias(false))
            .bias
            .is_none()
    );
    // Embedding: N(0, 1), padding row zero.
    let e = Embedding::with_padding_idx(400, 50, 7);
    let row = e.weight.select(0, 7);
    assert!(row.values().all(|v| v == 0.0));
    let n = e.weight.numel() as f32;
    let mean = e.weight.values().sum::<f32>() / n;
    let var = e
        .weight
        .values()
        .map(|v| (v - mean) * (v - mean))
        .sum::<f32>()
        / n;
    assert!(
        mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
        "{mean} {var}"
    );
    // MHA: Xavier-uniform in_proj (fan_in E, fan_out 3E), zero biases.
    let m = MultiheadAttention::new(32, 4);
    bound_and_var(&m.in_proj_weight, (6.0f32 / (32.0 + 96.0)).sqrt());
    assert!(m.in_proj_bias.as_ref().unwrap().values().all(|v| v == 0.0));
    assert!(m.out_proj.bias.as_ref().unwrap().values().all(|v| v == 0.0));
    bound_and_var(&m.out_proj.weight, 1.0 / 32.0f32.sqrt());
    let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "in_proj_weight",
            "in_proj_bias",
            "out_proj.weight",
            "out_proj.bias"
        ]
    );
    let nb = MultiheadAttention::with_options(
        8,
        2,
        MultiheadAttentionOptions {
            bias: false,
            ..Default::default()
        },
    );
    let names: Vec<String> = nb.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["in_proj_weight", "out_proj.weight"]);
    // Norms: ones and zeros; running stats zeros / ones / 0.
    let bn = BatchNorm2d::new(3);
    assert_eq!(bn.weight().unwrap().to_vec(), vec![1.0; 3]);
    assert_eq!(bn.bias().unwrap().to_vec(), vec![0.0; 3]);
    assert_eq!(bn.running_mean().unwrap().to_vec(), vec![0.0; 3]);
    assert_eq!(bn.running_var().unwrap().to_vec(), vec![1.0; 3]);
    assert_eq!(bn.num_batches_tracked().unwrap().dims(), &[] as &[usize]);
    let keys: Vec<String> = bn.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        keys,
        [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked"
        ]
    );
    let plain = BatchNorm1d::with_options(
        3,
        BatchNormOptions {
            affine: false,
            track_running_stats: false,
            ..Default::default()
        },
    );
    assert!(plain.state_dict().is_empty());
    let ln = LayerNorm::new(&[2, 3]);
    assert_eq!(ln.weight.as_ref().unwrap().dims(), &[2, 3]);
    assert_eq!(ln.normalized_shape(), &[2, 3]);
}

// ------------------------------------------------------------ behaviour

#[test]
fn batch_norm_buffers_set_and_load() {
    let _rng = common::global_rng_turn();
    let mut bn = BatchNorm1d::new(2);
    let m = Tensor::from_slice(&[1.0, -2.0], [2]).unwrap();
    let v = Tensor::from_slice(&[4.0, 0.25], [2]).unwrap();
    assert!(bn.set_buffer("running_mean", &m).unwrap());
    assert!(bn.set_buffer("running_var", &v).unwrap());
    assert!(!bn.set_buffer("nope", &m).unwrap());
    let e = bn
        .set_buffer("running_var", &Tensor::zeros([3]))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("BatchNorm1d: shapes [2] and [3] do not match"),
        "{e}"
    );
    bn.eval();
    let x = Tensor::from_slice(&[3.0, -1.0], [1, 2]).unwrap();
    let y = bn.forward(&x).to_vec();
    let want = [
        (3.0 - 1.0) / (4.0f32 + 1e-5).sqrt(),
        (-1.0 + 2.0) / (0.25f32 + 1e-5).sqrt(),
    ];
    assert!(
        (y[0] - want[0]).abs() < 1e-6 && (y[1] - want[1]).abs() < 1e-6,
        "{y:?}"
    );
    // Training updates the stats (through &self) and counts batches.
    bn.train();
    let batch = randn(&[8, 2], 5);
    let bn_ref = &bn;
    bn_ref.forward(&batch);
    assert_eq!(bn.num_batches_tracked().unwrap().item(), 1.0);
    assert_ne!(bn.running_mean().unwrap(), m);
    // A state dict round trip carries the buffers.
    let mut other = BatchNorm1d::new(2);
    other.load_state_dict(&bn.state_dict()).unwrap();
    assert_eq!(other.running_mean(), bn.running_mean());
    assert_eq!(other.running_var(), bn.running_var());
    assert_eq!(other.num_batches_tracked().unwrap().item(), 1.0);
    // Buffers never require grad.
    assert!(bn.running_mean().unwrap().grad_fn_name().is_none());
    assert!(!bn.running_var().unwrap().requires_grad());
}

#[test]
fn unbatched_equals_batched() {
    let _rng = common::global_rng_turn();
    manual_seed(4);
    let x = randn(&[3, 6, 7], 1);
    let xb = x.unsqueeze(0);
    let layers: Vec<Box<dyn Module>> = vec![
        Box::new(Conv2d::with_options(
            3,
            2,
            3,
            ConvOptions::default().padding(1).stride(2),
        )),
        Box::new(MaxPool2d::with_options(
            3,
            MaxPool2dOptions::default().stride(2).padding(1),
        )),
        Box::new(AvgPool2d::new(2)),
        Box::new(AdaptiveAvgPool2d::new(2, 3)),
    ];
    for l in &layers {
        assert_eq!(l.forward(&x), l.forward(&xb).squeeze_dim(0));
    }
    let c1 = Conv1d::new(6, 2, 3);
    assert_eq!(
        c1.forward(&x.select(0, 0)),
        c1.forward(&x.narrow(0, 0, 1)).squeeze_dim(0)
    );
    let m = MultiheadAttention::new(4, 2);
    let q = randn(&[3, 4], 2);
    let (o, w) = m.forward_attn(&q, &q, &q, &AttnOptions::default());
    let (ob, wb) = m.forward_attn(
        &q.unsqueeze(1),
        &q.unsqueeze(1),
        &q.unsqueeze(1),
        &AttnOptions::default(),
    );
    assert!(o.allclose(&ob.squeeze_dim(1), 1e-6, 1e-6));
    assert!(w.unwrap().allclose(&wb.unwrap().squeeze_dim(0), 1e-6, 1e-6));
}

/// A layer on non-contiguous inputs equals the layer on contiguous copies,
/// values and input gradients.
#[test]
fn views_equal_contiguous_copies() {
    let _rng = common::global_rng_turn();
    manual_seed(5);
    let layers: Vec<(&str, Box<dyn Module>)> = vec![
        (
            "conv2d",
            Box::new(Conv2d::with_options(
                4,
                2,
                3,
                ConvOptions::default().padding(1).groups(2),
            )),
        ),
        ("conv2d no padding", Box::new(Conv2d::new(4, 2, [2, 3]))),
        (
            "maxpool",
            Box::new(MaxPool2d::with_options(
                2,
                MaxPool2dOptions::default().stride(1),
            )),
        ),
        (
            "avgpool",
            Box::new(AvgPool2d::with_options(
                2,
                AvgPool2dOptions::default().padding(1),
            )),
        ),
        ("adaptive", Box::new(AdaptiveAvgPool2d::new(2, 2))),
        ("batchnorm", Box::new(BatchNorm2d::new(4))),
        ("layernorm", Box::new(LayerNorm::new(&[5]))),
        ("groupnorm", Box::new(GroupNorm::new(2, 4))),
    ];
    // Each view: a leaf shape and a non-contiguous [2, 4, 5, 5] view of it.
    type View = fn(&Tensor) -> Tensor;
    let views: [(&str, [usize; 4], View); 4] = [
        ("transposed", [2, 4, 5, 5], |t| t.transpose(2, 3)),
        ("sliced", [2, 5, 5, 10], |t| {
            t.slice(3, 0, 10, 2).narrow(1, 1, 4)
        }),
        ("permuted", [2, 5, 5, 4], |t| t.permute([0, 3, 1, 2])),
        ("expanded", [2, 4, 1, 5], |t| t.expand([2, 4, 5, 5])),
    ];
    for (name, layer) in &layers {
        for (i, (vname, shape, view)) in views.iter().enumerate() {
            let base = randn(shape, 9 + i as u64);
            let leaf_v = base.clone().with_requires_grad();
            let leaf_c = base.clone().with_requires_grad();
            let xv = view(&leaf_v);
            let xc = view(&leaf_c).contiguous();
            assert!(!xv.is_contiguous() && xv.dims() == [2, 4, 5, 5]);
            let (yv, yc) = (layer.forward(&xv), layer.forward(&xc));
            assert!(yv.allclose(&yc, 1e-6, 1e-6), "{name} on a {vname} view");
            let w = randn(yv.dims(), 1);
            (&yv * &w).sum().backward();
            (&yc * &w).sum().backward();
            let (gv, gc) = (leaf_v.grad().unwrap(), leaf_c.grad().unwrap());
            assert!(
                gv.allclose(&gc, 1e-5, 1e-5),
                "{name} gradient on a {vname} view"
            );
        }
    }
}

#[test]
fn empty_batches() {
    let _rng = common::global_rng_turn();
    let x = Tensor::zeros([0, 3, 5, 5]);
    assert_eq!(
        Conv2d::with_options(3, 4, 3, ConvOptions::default().padding(1))
            .forward(&x)
            .dims(),
        &[0, 4, 5, 5]
    );
    assert_eq!(MaxPool2d::new(2).forward(&x).dims(), &[0, 3, 2, 2]);
    assert_eq!(AvgPool2d::new(2).forward(&x).dims(), &[0, 3, 2, 2]);
    assert_eq!(
        AdaptiveAvgPool2d::new(1, 1).forward(&x).dims(),
        &[0, 3, 1, 1]
    );
    assert_eq!(LayerNorm::new(&[5]).forward(&x).dims(), &[0, 3, 5, 5]);
    assert_eq!(GroupNorm::new(3, 3).forward(&x).dims(), &[0, 3, 5, 5]);
    assert_eq!(
        Embedding::new(3, 2).forward(&Tensor::zeros([0, 4])).dims(),
        &[0, 4, 2]
    );
}

#[test]
fn self_attention_packed_projection_equals_separate() {
    let _rng = common::global_rng_turn();
    manual_seed(6);
    let m = MultiheadAttention::new(6, 3);
    let x = randn(&[4, 2, 6], 3);
    let copy = x.deep_clone(); // a different tensor: the separate projections
    let o = AttnOptions::default().causal(true);
    let (a, wa) = m.forward_attn(&x, &x, &x, &o);
    let (b, wb) = m.forward_attn(&x, &copy, &copy.deep_clone(), &o);
    assert!(a.allclose(&b, 1e-6, 1e-6));
    assert!(wa.unwrap().allclose(&wb.unwrap(), 1e-6, 1e-6));
    assert!(m.forward(&x).allclose(
        &m.forward_attn(&x, &x, &x, &AttnOptions::default()).0,
        0.0,
        0.0
    ));
}

#[test]
fn attention_dropout_only_in_training() {
    let _rng = common::global_rng_turn();
    let m = MultiheadAttention::with_options(
        4,
        2,
        MultiheadAttentionOptions {
            dropout: 0.5,
            seed: Some(1),
            ..Default::default()
        },
    );
    let x = randn(&[5, 1, 4], 2);
    let (_, w) = m.forward_attn(
        &x,
        &x,
        &x,
        &AttnOptions::default().average_attn_weights(false),
    );
    let w = w.unwrap();
    assert!(w.values().any(|v| v == 0.0), "some weights dropped");
    assert!(w.values().all(|v| v >= 0.0));
    let mut m = m;
    m.eval();
    let (_, w) = m.forward_attn(&x, &x, &x, &AttnOptions::default());
    let sums = w.unwrap().sum_dims([2], false);
    assert!(
        sums.values().all(|s| (s - 1.0).abs() < 1e-5),
        "eval rows sum to 1"
    );
}

#[cfg(feature = "std")]
#[test]
fn layers_shared_between_threads() {
    let _rng = common::global_rng_turn();
    manual_seed(10);
    let conv = Conv2d::new(2, 3, 2);
    let bn = BatchNorm2d::new(3);
    let drop = Dropout::with_seed(0.5, 3);
    let x = randn(&[2, 2, 4, 4], 1);
    // A serial reference on copies of the parameters.
    let (conv1, bn1) = (with_params(&conv, &params(&conv)), BatchNorm2d::new(3));
    for p in params(&conv1).iter() {
        assert!(!p.requires_grad());
    }
    let mut conv1 = conv1;
    conv1.set_requires_grad(true);
    bn1.forward(&conv1.forward(&x)).sum().backward();
    let one = conv1.weight.grad().unwrap();
    let step = || {
        bn.forward(&conv.forward(&x)).sum().backward();
        drop.forward(&x);
    };
    std::thread::scope(|s| {
        s.spawn(step);
        s.spawn(step);
    });
    // Both threads' gradients accumulated, both updated the statistics and
    // both drew a mask from the one dropout stream.
    assert!(
        conv.weight
            .grad()
            .unwrap()
            .allclose(&(&one * 2.0), 1e-5, 1e-6)
    );
    assert_eq!(bn.num_batches_tracked().unwrap().item(), 2.0);
    let serial = Dropout::with_seed(0.5, 3);
    serial.forward(&x);
    serial.forward(&x);
    assert_eq!(drop.rng_state(), serial.rng_state());
}
