"""softmax and log_softmax: every dim of a 3-D input, large values, -inf
entries, NaN, views (see gen.py)."""
import torch

from common import case, randn

nan, inf = float("nan"), float("inf")
T = torch.tensor


def cases():
    x = randn([2, 3, 4], 31)
    big = randn([3, 5], 32) * 1000.0
    neginf = T([[-inf, -inf, -inf, -inf], [-inf, 1.0, 2.0, -inf], [0.5, -1.0, 3.0, 0.0]])
    weird = T([[inf, 1.0, 0.0], [nan, 1.0, 2.0], [1.0, 2.0, 3.0]])
    row = randn([4], 33)
    c = []
    for op in ("softmax", "log_softmax"):
        f = getattr(torch, op)
        for d in (0, 1, 2, -1, -3):
            c.append(case(f"{op}_d{d}", [x], lambda t, f=f, d=d: f(t, d)))
        c += [
            case(f"{op}_large_last", [big], lambda t, f=f: f(t, -1)),
            case(f"{op}_large_d0", [big], lambda t, f=f: f(t, 0)),
            case(f"{op}_neginf", [neginf], lambda t, f=f: f(t, 1)),
            case(f"{op}_neginf_d0", [neginf], lambda t, f=f: f(t, 0)),
            case(f"{op}_inf_nan", [weird], lambda t, f=f: f(t, 1), grad=False),
            case(f"{op}_transposed", [x], lambda t, f=f: f(t.transpose(0, 2), 1)),
            case(f"{op}_transposed_last", [x], lambda t, f=f: f(t.transpose(1, 2), -1)),
            case(f"{op}_sliced", [x], lambda t, f=f: f(t[:, 1:, ::2], -1)),
            case(f"{op}_sliced_d1", [x], lambda t, f=f: f(t[:, 1:, ::2], 1)),
            case(f"{op}_expanded", [row], lambda t, f=f: f(t.expand(3, 4), 0)),
            case(f"{op}_expanded_last", [row], lambda t, f=f: f(t.expand(3, 4), 1)),
            case(f"{op}_scalar", [T(2.5)], lambda t, f=f: f(t, 0)),
            case(f"{op}_single", [T([[7.0], [-3.0]])], lambda t, f=f: f(t, 1)),
        ]
    return c
