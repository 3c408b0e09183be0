"""Layer fixtures for tests/nn_layers.rs (see gen.py): Conv1d/2d, MaxPool2d,
AvgPool2d, AdaptiveAvgPool2d, BatchNorm1d/2d, LayerNorm, GroupNorm, Embedding,
MultiheadAttention and scaled_dot_product_attention.

Each case is a layer ("kind" + "cfg", which the Rust test uses to build the
same layer), its initial PyTorch state dict ("state", in state_dict order:
the Rust test loads it and checks its own key list against it) and one or
more "runs". A run sets train/eval mode, calls the layer on "inputs", and
records every output, the gradients of loss = sum_i sum(output_i * weight_i)
with respect to the differentiable inputs and to every parameter, and the
buffers after the run. Parameter gradients are cleared between runs.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import randn, rand


def enc(v):
    """A float32 value as the shortest decimal that reads back as the same
    float32 (halves the file against full float64 digits)."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return float(str(np.float32(v)))


def tensor_json(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [enc(v) for v in t.reshape(-1).tolist()]}

T = torch.tensor


def randomize(module, seed):
    """Random values for every parameter and floating buffer, so that
    identity-like initial values (ones, zeros) do not hide mistakes."""
    with torch.no_grad():
        for i, (name, p) in enumerate(module.named_parameters()):
            p.copy_(randn(p.shape, seed + i))
        for i, (name, b) in enumerate(module.named_buffers()):
            if b.is_floating_point():
                v = rand(b.shape, seed + 50 + i, 0.5, 1.5) if "var" in name else randn(b.shape, seed + 50 + i)
                b.copy_(v)


def run(module, train, inputs, diff, fwd, seed):
    if module is not None:
        module.train(train)
        module.zero_grad(set_to_none=True)
    leaves = [x.clone().detach().requires_grad_(bool(d)) for x, d in zip(inputs, diff)]
    outs = fwd(module, *leaves)
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    outs = [o for o in outs if o is not None]
    weights = []
    loss = None
    for i, o in enumerate(outs):
        if o.is_floating_point() and o.requires_grad:
            w = randn(o.shape, 1000 + seed + i)
            weights.append(tensor_json(w))
            term = (o * w).sum()
            loss = term if loss is None else loss + term
        else:
            weights.append(None)
    if loss is not None:
        loss.backward()
    result = {
        "train": train,
        "inputs": [tensor_json(x) for x in inputs],
        "diff": [bool(d) for d in diff],
        "outputs": [tensor_json(o.float()) for o in outs],
        "weights": weights,
        "input_grads": [tensor_json(x.grad) if x.grad is not None else None for x in leaves],
        "param_grads": [],
        "buffers": [],
    }
    if module is not None:
        result["param_grads"] = [
            [n, tensor_json(p.grad) if p.grad is not None else None] for n, p in module.named_parameters()
        ]
        result["buffers"] = [[n, tensor_json(b)] for n, b in module.named_buffers()]
    return result


def layer_case(name, kind, cfg, module, runs, fwd=None, seed=0):
    """runs: list of (train, inputs, diff)."""
    if fwd is None:
        fwd = lambda m, *xs: m(*xs)
    state = [[k, tensor_json(v)] for k, v in module.state_dict().items()] if module is not None else []
    out = []
    for i, (train, inputs, diff) in enumerate(runs):
        out.append(run(module, train, inputs, diff, fwd, seed + 10 * i))
    return {"name": name, "kind": kind, "cfg": cfg, "state": state, "runs": out}


def one(x, train=True):
    return [(train, [x], [True])]


# ---------------------------------------------------------------- conv

def conv_cases():
    c = []
    specs1 = [
        ("conv1d_basic", dict(cin=3, cout=4, k=[3]), [2, 3, 9]),
        ("conv1d_stride_pad", dict(cin=2, cout=3, k=[4], stride=[2], padding=[2]), [2, 2, 11]),
        ("conv1d_dilation", dict(cin=2, cout=2, k=[3], dilation=[3], padding=[1]), [1, 2, 12]),
        ("conv1d_groups", dict(cin=4, cout=6, k=[2], groups=2, stride=[3]), [2, 4, 10]),
        ("conv1d_no_bias", dict(cin=3, cout=2, k=[1], bias=False), [3, 3, 5]),
        ("conv1d_unbatched", dict(cin=2, cout=3, k=[3], padding=[1]), [2, 7]),
    ]
    specs2 = [
        ("conv2d_basic", dict(cin=3, cout=4, k=[3, 3]), [2, 3, 6, 7]),
        ("conv2d_stride_pad", dict(cin=2, cout=3, k=[3, 3], stride=[2, 1], padding=[1, 2]), [2, 2, 7, 6]),
        ("conv2d_dilation", dict(cin=2, cout=2, k=[3, 2], dilation=[2, 3], padding=[2, 1]), [1, 2, 8, 9]),
        ("conv2d_mixed", dict(cin=2, cout=4, k=[2, 3], stride=[2, 3], padding=[1, 1], dilation=[1, 2]), [2, 2, 7, 9]),
        ("conv2d_groups", dict(cin=4, cout=6, k=[3, 3], groups=2, padding=[1, 1]), [2, 4, 5, 5]),
        ("conv2d_depthwise", dict(cin=3, cout=6, k=[3, 3], groups=3, stride=[2, 2], padding=[1, 1]), [2, 3, 6, 6]),
        ("conv2d_no_bias", dict(cin=3, cout=2, k=[1, 1], bias=False), [2, 3, 4, 5]),
        ("conv2d_kernel_eq_input", dict(cin=2, cout=3, k=[4, 5]), [3, 2, 4, 5]),
        ("conv2d_unbatched", dict(cin=3, cout=2, k=[2, 2], stride=[1, 2], padding=[1, 0]), [3, 5, 6]),
    ]
    for i, (name, cfg, shape) in enumerate(specs1 + specs2):
        d = len(cfg["k"])
        full = dict(stride=[1] * d, padding=[0] * d, dilation=[1] * d, groups=1, bias=True)
        full.update(cfg)
        cls = nn.Conv1d if d == 1 else nn.Conv2d
        torch.manual_seed(100 + i)
        m = cls(full["cin"], full["cout"], full["k"], stride=full["stride"], padding=full["padding"],
                dilation=full["dilation"], groups=full["groups"], bias=full["bias"])
        c.append(layer_case(name, f"conv{d}d", full, m, one(randn(shape, 200 + i)), seed=i))
    return c


# ---------------------------------------------------------------- pooling

def pool_cases():
    c = []
    ties = T([[[[1.0, 3.0, 3.0, 2.0, 0.0],
                [3.0, 1.0, 2.0, 3.0, 3.0],
                [0.0, 0.0, 0.0, 0.0, -1.0],
                [5.0, 5.0, 5.0, 5.0, 5.0]]]])
    nan = float("nan")
    withnan = T([[[[1.0, nan, 2.0, 7.0],
                   [nan, 0.5, 3.0, 1.0],
                   [4.0, 4.0, -2.0, nan],
                   [0.0, 9.0, 1.0, 2.0]]]])
    neg = -rand([1, 2, 5, 5], 301, 1.0, 3.0)  # all negative: padding must not win
    maxspecs = [
        ("maxpool_k2", dict(k=[2, 2]), randn([2, 3, 6, 7], 302)),
        ("maxpool_k3_s2_p1", dict(k=[3, 3], stride=[2, 2], padding=[1, 1]), randn([2, 2, 7, 8], 303)),
        ("maxpool_mixed_dilation", dict(k=[2, 3], stride=[1, 2], padding=[1, 1], dilation=[2, 1]), randn([1, 2, 7, 9], 304)),
        ("maxpool_ceil", dict(k=[3, 3], stride=[2, 2], ceil_mode=True), randn([1, 2, 6, 8], 305)),
        ("maxpool_ceil_pad", dict(k=[3, 2], stride=[2, 2], padding=[1, 1], ceil_mode=True), randn([2, 1, 5, 6], 306)),
        ("maxpool_ties", dict(k=[2, 2], stride=[1, 1]), ties),
        ("maxpool_ties_overlap", dict(k=[3, 3], stride=[1, 2], padding=[1, 1]), ties),
        ("maxpool_nan", dict(k=[2, 2], stride=[1, 1]), withnan),
        ("maxpool_negative_padded", dict(k=[3, 3], stride=[2, 2], padding=[1, 1]), neg),
        ("maxpool_window_1", dict(k=[1, 1]), randn([1, 2, 3, 3], 307)),
        ("maxpool_unbatched", dict(k=[2, 2], stride=[1, 1]), randn([2, 4, 5], 308)),
    ]
    for i, (name, cfg, x) in enumerate(maxspecs):
        full = dict(stride=None, padding=[0, 0], dilation=[1, 1], ceil_mode=False, return_indices=False)
        full.update(cfg)
        m = nn.MaxPool2d(full["k"], stride=full["stride"], padding=full["padding"], dilation=full["dilation"],
                         ceil_mode=full["ceil_mode"])
        c.append(layer_case(name, "maxpool2d", full, m, one(x), seed=i))
    # return_indices: the values (with gradient) and the indices.
    m = nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)
    c.append(layer_case("maxpool_indices", "maxpool2d",
                        dict(k=[3, 3], stride=[2, 2], padding=[1, 1], dilation=[1, 1], ceil_mode=False,
                             return_indices=True),
                        m, one(randn([2, 2, 6, 5], 309)), seed=20))

    avgspecs = [
        ("avgpool_k2", dict(k=[2, 2]), [2, 3, 6, 7]),
        ("avgpool_k3_s2_p1", dict(k=[3, 3], stride=[2, 2], padding=[1, 1]), [2, 2, 7, 8]),
        ("avgpool_k3_s2_p1_exclude", dict(k=[3, 3], stride=[2, 2], padding=[1, 1], count_include_pad=False), [2, 2, 7, 8]),
        ("avgpool_ceil", dict(k=[3, 3], stride=[2, 2], ceil_mode=True), [1, 2, 6, 8]),
        ("avgpool_ceil_pad", dict(k=[3, 2], stride=[2, 2], padding=[1, 1], ceil_mode=True), [2, 1, 6, 7]),
        ("avgpool_ceil_pad_exclude", dict(k=[3, 2], stride=[2, 2], padding=[1, 1], ceil_mode=True,
                                          count_include_pad=False), [2, 1, 6, 7]),
        ("avgpool_divisor", dict(k=[2, 3], stride=[1, 2], padding=[1, 1], divisor_override=5), [1, 2, 5, 6]),
        ("avgpool_unbatched", dict(k=[2, 2], stride=[1, 1]), [2, 4, 5]),
    ]
    for i, (name, cfg, shape) in enumerate(avgspecs):
        full = dict(stride=None, padding=[0, 0], ceil_mode=False, count_include_pad=True, divisor_override=None)
        full.update(cfg)
        m = nn.AvgPool2d(full["k"], stride=full["stride"], padding=full["padding"], ceil_mode=full["ceil_mode"],
                         count_include_pad=full["count_include_pad"], divisor_override=full["divisor_override"])
        c.append(layer_case(name, "avgpool2d", full, m, one(randn(shape, 320 + i)), seed=30 + i))

    adaptive = [
        ("adaptive_1x1", [1, 1], [2, 3, 5, 7]),
        ("adaptive_2x3", [2, 3], [2, 2, 5, 7]),
        ("adaptive_grow", [4, 4], [1, 2, 3, 5]),
        ("adaptive_3x2", [3, 2], [2, 1, 7, 4]),
        ("adaptive_same", [4, 5], [1, 2, 4, 5]),
        ("adaptive_unbatched", [2, 2], [3, 5, 5]),
    ]
    for i, (name, out, shape) in enumerate(adaptive):
        m = nn.AdaptiveAvgPool2d(out)
        c.append(layer_case(name, "adaptive_avgpool2d", dict(out=out), m, one(randn(shape, 340 + i)), seed=50 + i))
    return c


# ---------------------------------------------------------------- norms

def norm_cases():
    c = []
    bn = [
        ("bn1d_2d", 1, dict(c=4), [[6, 4], [5, 4], [3, 4]], [True, True, False]),
        ("bn1d_3d", 1, dict(c=3), [[4, 3, 5], [2, 3, 7], [3, 3, 2]], [True, True, False]),
        ("bn1d_cumulative", 1, dict(c=3, momentum=None), [[5, 3], [4, 3], [6, 3], [2, 3]], [True, True, True, False]),
        ("bn1d_no_affine", 1, dict(c=2, affine=False), [[4, 2, 3], [3, 2, 3]], [True, False]),
        ("bn1d_eval_first", 1, dict(c=3), [[4, 3], [4, 3]], [False, True]),
        ("bn2d", 2, dict(c=3), [[2, 3, 4, 5], [3, 3, 2, 2], [2, 3, 3, 3]], [True, True, False]),
        ("bn2d_momentum", 2, dict(c=2, momentum=0.3, eps=1e-3), [[2, 2, 3, 3], [2, 2, 3, 3]], [True, False]),
        ("bn2d_untracked", 2, dict(c=2, track_running_stats=False), [[3, 2, 2, 3], [2, 2, 3, 2]], [True, False]),
    ]
    for i, (name, d, cfg, shapes, modes) in enumerate(bn):
        full = dict(eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)
        full.update(cfg)
        cls = nn.BatchNorm1d if d == 1 else nn.BatchNorm2d
        m = cls(full["c"], eps=full["eps"], momentum=full["momentum"], affine=full["affine"],
                track_running_stats=full["track_running_stats"])
        randomize(m, 400 + 10 * i)
        runs = [(t, [randn(s, 500 + 10 * i + j) * 2 + 0.5], [True]) for j, (s, t) in enumerate(zip(shapes, modes))]
        c.append(layer_case(name, f"batchnorm{d}d", full, m, runs, seed=60 + i))

    ln = [
        ("ln_last", dict(shape=[5]), [3, 5]),
        ("ln_two", dict(shape=[4, 5]), [2, 3, 4, 5]),
        ("ln_three", dict(shape=[2, 3, 4]), [2, 2, 3, 4]),
        ("ln_no_affine", dict(shape=[6], elementwise_affine=False), [2, 3, 6]),
        ("ln_no_bias", dict(shape=[3, 4], bias=False, eps=1e-3), [2, 3, 4]),
        ("ln_exact_shape", dict(shape=[3, 4]), [3, 4]),
    ]
    for i, (name, cfg, shape) in enumerate(ln):
        full = dict(eps=1e-5, elementwise_affine=True, bias=True)
        full.update(cfg)
        m = nn.LayerNorm(full["shape"], eps=full["eps"], elementwise_affine=full["elementwise_affine"],
                         bias=full["bias"])
        randomize(m, 600 + 10 * i)
        c.append(layer_case(name, "layernorm", full, m, one(randn(shape, 700 + i) * 3 - 1), seed=80 + i))

    gn = [
        ("gn_2_of_4", dict(groups=2, c=4), [3, 4, 5]),
        ("gn_3_of_6", dict(groups=3, c=6), [2, 6, 2, 3]),
        ("gn_one_group", dict(groups=1, c=3), [2, 3, 4]),
        ("gn_per_channel", dict(groups=4, c=4, eps=1e-3), [2, 4, 3, 2]),
        ("gn_no_affine", dict(groups=2, c=4, affine=False), [2, 4, 3]),
        ("gn_2d_input", dict(groups=2, c=6), [3, 6]),
    ]
    for i, (name, cfg, shape) in enumerate(gn):
        full = dict(eps=1e-5, affine=True)
        full.update(cfg)
        m = nn.GroupNorm(full["groups"], full["c"], eps=full["eps"], affine=full["affine"])
        randomize(m, 800 + 10 * i)
        c.append(layer_case(name, "groupnorm", full, m, one(randn(shape, 900 + i) * 2 + 1), seed=90 + i))
    return c


# ---------------------------------------------------------------- embedding

def embedding_cases():
    c = []
    idx2 = T([[1.0, 2.0, 1.0], [9.0, 0.0, 1.0]])
    specs = [
        ("embedding_repeated", dict(num=10, dim=4), idx2),
        ("embedding_padding", dict(num=10, dim=4, padding_idx=1), idx2),
        ("embedding_1d", dict(num=5, dim=3), T([4.0, 4.0, 0.0, 2.0])),
        ("embedding_0d", dict(num=5, dim=3), T(3.0)),
        ("embedding_3d_index", dict(num=6, dim=2, padding_idx=0), T([[[0.0, 5.0], [0.0, 0.0]], [[1.0, 5.0], [2.0, 3.0]]])),
    ]
    for i, (name, cfg, idx) in enumerate(specs):
        full = dict(padding_idx=None)
        full.update(cfg)
        m = nn.Embedding(full["num"], full["dim"], padding_idx=full["padding_idx"])
        randomize(m, 1000 + 10 * i)  # the padding row too: lookups return it, it gets no gradient
        fwd = lambda m, x: m(x.long())
        c.append(layer_case(name, "embedding", full, m, [(True, [idx], [False])], fwd=fwd, seed=100 + i))
    return c


# ---------------------------------------------------------------- attention

def causal(l, s):
    return torch.ones(l, s).triu(1).bool()


def mha_cases():
    c = []
    E, H, N, L, S = 6, 2, 2, 3, 4

    def mha(name, cfg, runs, fwd, seed):
        full = dict(e=E, heads=H, bias=True, batch_first=False)
        full.update(cfg)
        torch.manual_seed(1100 + seed)
        m = nn.MultiheadAttention(full["e"], full["heads"], bias=full["bias"], batch_first=full["batch_first"])
        randomize(m, 1200 + 10 * seed)
        c.append(layer_case(name, "mha", full, m, runs, fwd=fwd, seed=120 + seed))

    q, k, v = randn([L, N, E], 1301), randn([S, N, E], 1302), randn([S, N, E], 1303)
    qkv = [q, k, v]
    d3 = [True, True, True]

    # Masks travel as extra (non-differentiable) inputs; cfg says how the
    # Rust test reads them.
    def with_masks(make):
        def f(m, q, k, v, *ms):
            return m(q, k, v, **make(*ms))
        return f

    x = randn([L, N, E], 1304)
    mha("mha_self", dict(self_attention=True), [(True, [x], [True]), (False, [x], [True])],
        lambda m, x: m(x, x, x), 0)
    mha("mha_cross", {}, [(True, qkv, d3)], lambda m, q, k, v: m(q, k, v), 1)
    mha("mha_batch_first", dict(batch_first=True),
        [(True, [q.transpose(0, 1).contiguous(), k.transpose(0, 1).contiguous(), v.transpose(0, 1).contiguous()], d3)],
        lambda m, q, k, v: m(q, k, v), 2)
    mha("mha_unbatched", {}, [(True, [q[:, 0], k[:, 0], v[:, 0]], d3)], lambda m, q, k, v: m(q, k, v), 3)
    mha("mha_no_bias", dict(bias=False), [(True, qkv, d3)], lambda m, q, k, v: m(q, k, v), 4)
    mha("mha_heads_unaveraged", dict(heads=3, average=False), [(True, qkv, d3)],
        lambda m, q, k, v: m(q, k, v, average_attn_weights=False), 5)

    fmask = randn([L, S], 1310)
    bmask = T([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    bmask3 = (rand([N * H, L, S], 1311) > 0.6).float()
    bmask3[:, :, 0] = 0.0  # keep one key per query
    kpm = T([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    mha("mha_float_mask", dict(attn_mask="additive"), [(True, qkv + [fmask], d3 + [False])],
        with_masks(lambda a: dict(attn_mask=a)), 6)
    mha("mha_bool_mask", dict(attn_mask="blocked"), [(True, qkv + [bmask], d3 + [False])],
        with_masks(lambda a: dict(attn_mask=a.bool())), 7)
    mha("mha_bool_mask_3d", dict(attn_mask="blocked"), [(True, qkv + [bmask3], d3 + [False])],
        with_masks(lambda a: dict(attn_mask=a.bool())), 8)
    mha("mha_key_padding", dict(key_padding_mask="blocked"), [(True, qkv + [kpm], d3 + [False])],
        with_masks(lambda p: dict(key_padding_mask=p.bool())), 9)
    mha("mha_key_padding_float_mask", dict(attn_mask="additive", key_padding_mask="blocked"),
        [(True, qkv + [fmask, kpm], d3 + [False, False])],
        with_masks(lambda a, p: dict(attn_mask=a, key_padding_mask=p.bool())), 10)
    kpm_add = kpm * -2.5
    mha("mha_key_padding_additive", dict(key_padding_mask="additive"), [(True, qkv + [kpm_add], d3 + [False])],
        with_masks(lambda p: dict(key_padding_mask=p)), 11)
    xs = randn([S, N, E], 1312)
    mha("mha_causal", dict(self_attention=True, causal=True), [(True, [xs], [True])],
        lambda m, x: m(x, x, x, attn_mask=causal(S, S), is_causal=True), 12)
    mha("mha_causal_cross", dict(causal=True), [(True, qkv, d3)],
        lambda m, q, k, v: m(q, k, v, attn_mask=causal(L, S)), 13)
    mha("mha_causal_and_padding", dict(causal=True, key_padding_mask="blocked"),
        [(True, qkv + [kpm], d3 + [False])],
        with_masks(lambda p: dict(attn_mask=causal(L, S), key_padding_mask=p.bool())), 14)
    # A query with every key blocked: NaN with need_weights (forward only),
    # zero attention without it (with gradients).
    dead = T([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    mha("mha_fully_masked_weights", dict(attn_mask="blocked", no_grad_check=True),
        [(True, qkv + [dead], [False, False, False, False])],
        with_masks(lambda a: dict(attn_mask=a.bool())), 15)
    mha("mha_fully_masked_no_weights", dict(attn_mask="blocked", need_weights=False),
        [(True, qkv + [dead], d3 + [False])],
        with_masks(lambda a: dict(attn_mask=a.bool(), need_weights=False)), 16)
    mha("mha_no_weights", dict(need_weights=False), [(True, qkv, d3)],
        lambda m, q, k, v: m(q, k, v, need_weights=False), 17)
    return c


def sdpa_cases():
    c = []
    q, k, v = randn([2, 3, 4], 1401), randn([2, 5, 4], 1402), randn([2, 5, 6], 1403)
    allowed = (rand([3, 5], 1404) > 0.4).float()
    allowed[:, 1] = 1.0
    fmask = randn([2, 3, 5], 1405)
    dead = T([[0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    q4, k4, v4 = randn([2, 2, 3, 4], 1406), randn([2, 2, 3, 4], 1407), randn([2, 2, 3, 4], 1408)
    sd = F.scaled_dot_product_attention
    specs = [
        ("sdpa_plain", dict(), [q, k, v], lambda _, q, k, v: sd(q, k, v)),
        ("sdpa_scale", dict(scale=0.3), [q, k, v], lambda _, q, k, v: sd(q, k, v, scale=0.3)),
        ("sdpa_allowed_mask", dict(mask="allowed"), [q, k, v, allowed], lambda _, q, k, v, m: sd(q, k, v, attn_mask=m.bool())),
        ("sdpa_float_mask", dict(mask="additive"), [q, k, v, fmask], lambda _, q, k, v, m: sd(q, k, v, attn_mask=m)),
        ("sdpa_causal", dict(causal=True), [q4, k4, v4], lambda _, q, k, v: sd(q, k, v, is_causal=True)),
        ("sdpa_causal_rect", dict(causal=True), [q, k, v], lambda _, q, k, v: sd(q, k, v, is_causal=True)),
        ("sdpa_fully_masked", dict(mask="allowed"), [q, k, v, dead], lambda _, q, k, v, m: sd(q, k, v, attn_mask=m.bool())),
    ]
    for i, (name, cfg, inputs, fwd) in enumerate(specs):
        diff = [True, True, True] + [False] * (len(inputs) - 3)
        c.append(layer_case(name, "sdpa", cfg, None, [(True, inputs, diff)], fwd=fwd, seed=140 + i))
    return c


def upsample_cases():
    c = []
    specs = [
        ("upsample_size_2d", dict(size=[5, 7]), [2, 2, 3, 4]),
        ("upsample_size_down", dict(size=[2, 3]), [1, 2, 5, 7]),
        ("upsample_double", dict(scale=[2.0, 2.0]), [1, 2, 3, 4]),
        ("upsample_scale_mixed", dict(scale=[1.5, 0.5]), [2, 1, 3, 4]),
        ("upsample_scale_odd", dict(scale=[1.7, 3.0]), [1, 1, 5, 3]),
        ("upsample_1d_size", dict(size=[1, 7]), [2, 3, 5]),
        ("upsample_1d_scale", dict(scale=[1.0, 2.5]), [1, 2, 4]),
    ]
    for i, (name, cfg, shape) in enumerate(specs):
        d = len(shape) - 2
        if "size" in cfg:
            m = nn.Upsample(size=tuple(cfg["size"][2 - d:]), mode="nearest")
        else:
            m = nn.Upsample(scale_factor=tuple(cfg["scale"][2 - d:]), mode="nearest")
        c.append(layer_case(name, "upsample", cfg, m, one(randn(shape, 1600 + i)), seed=160 + i))
    return c


def model_cases():
    """A small CNN in nn.Sequential: state-dict keys across indices, and
    train -> train -> eval through every kind of layer at once."""
    torch.manual_seed(1500)
    m = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False),
        nn.GroupNorm(2, 4),
        nn.AvgPool2d(2, stride=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Dropout(0.0),
        nn.LayerNorm(4),
        nn.Linear(4, 3),
    )
    runs = [(True, [randn([3, 2, 6, 6], 1501)], [True]),
            (True, [randn([2, 2, 6, 6], 1502)], [True]),
            (False, [randn([2, 2, 6, 6], 1503)], [True])]
    return [layer_case("seq_cnn", "seq_cnn", {}, m, runs, seed=150)]


def cases():
    torch.manual_seed(0)
    return (conv_cases() + pool_cases() + norm_cases() + embedding_cases() + mha_cases() + sdpa_cases()
            + upsample_cases() + model_cases())
