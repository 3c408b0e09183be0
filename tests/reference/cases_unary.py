"""Unary math and activations (see gen.py).

Case names are "<op>.<variant>"; tests/ops_unary.rs maps <op> to the Rust call.
Variants: basic (randn or a positive range), special (kinks, zeros, negative
values, NaN, +-inf), big (large |x|, activations only), transposed, sliced.
"""
import torch
import torch.nn.functional as F

from common import case, rand, randn

NAN, INF = float("nan"), float("inf")

OPS = {
    "abs": torch.abs,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt,
    "sin": torch.sin,
    "cos": torch.cos,
    "relu": torch.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "leaky_relu_0.2": lambda x: F.leaky_relu(x, 0.2),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "softplus": F.softplus,
    "softplus_b2_t5": lambda x: F.softplus(x, beta=2.0, threshold=5.0),
    "softplus_b0.5_t10": lambda x: F.softplus(x, beta=0.5, threshold=10.0),
    "square": torch.square,
    "reciprocal": torch.reciprocal,
    "clamp": lambda x: torch.clamp(x, -0.5, 1.0),
    "clamp_min": lambda x: torch.clamp(x, min=-0.5),
    "clamp_max": lambda x: torch.clamp(x, max=1.0),
    "clamp_swapped": lambda x: torch.clamp(x, 1.0, -0.5),
    "clamp_nan_min": lambda x: torch.clamp(x, min=NAN),
}
for p in [0.0, 1.0, 2.0, 3.0, 0.5, -0.5, -1.0, -2.0, 1.5, 2.5, -3.0, 4.0, -1.5]:
    OPS[f"pow_{p:g}"] = lambda x, p=p: x.pow(p)

# Ops only defined (real) on positive inputs get a positive basic range.
POSITIVE = {"log", "sqrt", "rsqrt", "reciprocal"} | {k for k in OPS if k.startswith("pow_")}
ACTIVATIONS = {
    "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu",
    "softplus", "softplus_b2_t5", "softplus_b0.5_t10", "exp",
}
SPECIAL = [-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, NAN, INF, -INF]
BIG = [-100.0, -50.0, -21.0, -20.0, -19.0, -10.0, -5.5, 5.5, 9.9, 10.1, 19.0, 20.0, 21.0, 50.0, 100.0]


def cases():
    basic = randn([3, 4], 21)
    pos = rand([3, 4], 22, 0.2, 3.0)
    cube = randn([2, 3, 4], 23)
    cube_pos = rand([2, 3, 4], 24, 0.2, 3.0)
    out = []
    for i, (name, fn) in enumerate(OPS.items()):
        positive = name in POSITIVE
        x = pos if positive else basic
        c = cube_pos if positive else cube
        special = [v for v in SPECIAL if not (name == "gelu" and v == INF)]
        out.append(case(f"{name}.basic", [x], fn, seed=i))
        out.append(case(f"{name}.special", [torch.tensor(special)], fn, seed=i))
        if name in ACTIVATIONS:
            out.append(case(f"{name}.big", [torch.tensor(BIG)], fn, seed=i))
        out.append(case(f"{name}.transposed", [x], lambda t, fn=fn: fn(t.t()), seed=i))
        out.append(case(f"{name}.sliced", [c], lambda t, fn=fn: fn(t[:, 1:, ::2]), seed=i))
    # pow with a negative base and integral exponents (real results).
    neg = -rand([2, 3], 25, 0.5, 2.0)
    for p in [2.0, 3.0, -1.0, -2.0, 4.0, -3.0, 1.5]:
        out.append(case(f"pow_{p:g}.negative_base", [neg], lambda t, p=p: t.pow(p)))
    return out
