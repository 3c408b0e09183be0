"""Comparison masks, maximum/minimum, pow(tensor, tensor), where and
masked_fill (see gen.py).

Case names are "<op>.<variant>"; tests/ops_compare.rs maps <op> to the Rust
call and applies the variant's view (transposed: .t() on every input; sliced:
x[:, 1:, ::2] and y[1:, 1:3]). Integer-valued inputs make ties common.
"""
import torch

from common import case, rand, randn

NAN, INF = float("nan"), float("inf")


def ints(shape, seed):
    return (randn(shape, seed) * 1.5).round()


def with_nan(t, every=3):
    t = t.clone().reshape(-1)
    t[::every] = NAN
    return t


COMPARE = {
    "eq": torch.eq, "ne": torch.ne, "lt": torch.lt,
    "le": torch.le, "gt": torch.gt, "ge": torch.ge,
}


def mask(t):
    return t.float()


def cases():
    out = []
    a, b = ints([3, 4], 31), ints([3, 4], 32)
    row, col = ints([4], 33), ints([3, 1], 34)
    na = torch.tensor([NAN, 1.0, NAN, -INF, INF, 0.0, NAN])
    nb = torch.tensor([NAN, NAN, 1.0, -INF, 2.0, -0.0, 0.0])
    for name, fn in COMPARE.items():
        f = lambda x, y, fn=fn: mask(fn(x, y))
        out.append(case(f"{name}.same", [a, b], f, grad=False))
        out.append(case(f"{name}.row", [a, row], f, grad=False))
        out.append(case(f"{name}.outer", [col, row], f, grad=False))
        out.append(case(f"{name}.nan", [na, nb], f, grad=False))
        out.append(case(f"{name}.transposed", [a, b], lambda x, y, f=f: f(x.t(), y.t()), grad=False))
        out.append(case(f"{name}.scalar_tensor", [a, torch.tensor(1.0)], f, grad=False))
        out.append(case(f"{name}_scalar.basic", [a], lambda x, fn=fn: mask(fn(x, 1.0)), grad=False))
        out.append(case(f"{name}_scalar.nan", [na], lambda x, fn=fn: mask(fn(x, 1.0)), grad=False))
        out.append(case(f"{name}_scalar.nan_scalar", [a], lambda x, fn=fn: mask(fn(x, NAN)), grad=False))

    cube, sq = ints([2, 3, 4], 35), ints([3, 4], 36)
    for name, fn in [("maximum", torch.maximum), ("minimum", torch.minimum)]:
        out.append(case(f"{name}.same", [a, b], fn))
        out.append(case(f"{name}.row", [a, row], fn))
        out.append(case(f"{name}.outer", [col, row], fn))
        out.append(case(f"{name}.nan", [na, nb], fn))
        out.append(case(f"{name}.transposed", [a, b], lambda x, y, fn=fn: fn(x.t(), y.t())))
        out.append(case(f"{name}.sliced", [cube, sq], lambda x, y, fn=fn: fn(x[:, 1:, ::2], y[1:, 1:3])))
        out.append(case(f"{name}.scalar_tensor", [a, torch.tensor(0.0)], fn))
        out.append(case(f"{name}.random", [randn([3, 4], 37), randn([3, 4], 38)], fn))

    base = rand([3, 4], 39, 0.3, 2.5)
    expo = randn([3, 4], 40)
    pw = torch.pow
    out.append(case("pow.same", [base, expo], pw))
    out.append(case("pow.row", [base, randn([4], 41)], pw))
    out.append(case("pow.col_base", [rand([3, 1], 42, 0.3, 2.5), expo], pw))
    out.append(case("pow.scalar_tensor", [base, torch.tensor(1.7)], pw))
    out.append(case("pow.transposed", [base, expo], lambda x, y: pw(x.t(), y.t())))
    out.append(case("pow.sliced", [rand([2, 3, 4], 43, 0.3, 2.5), expo], lambda x, y: pw(x[:, 1:, ::2], y[1:, 1:3])))
    sb = torch.tensor([0.0, 0.0, 0.0, -0.0, -2.0, -2.0, -2.0, 2.0, NAN, NAN, 1.0, 3.0, -1.5, INF, 0.5])
    se = torch.tensor([0.0, 2.0, -1.0, 0.5, 2.0, 3.0, 0.5, NAN, 0.0, 1.0, NAN, -2.0, -1.0, -0.5, INF])
    out.append(case("pow.special", [sb, se], pw))

    cond = mask(randn([3, 4], 44) > 0)
    wh = lambda c, x, y: torch.where(c != 0, x, y)
    d3 = [False, True, True]
    out.append(case("where.same", [cond, randn([3, 4], 45), randn([3, 4], 46)], wh, diff=d3))
    out.append(case("where.broadcast", [mask(randn([3, 1], 47) > 0), randn([3, 4], 48), randn([4], 49)], wh, diff=d3))
    out.append(case("where.cond_bigger", [mask(randn([2, 3, 4], 50) > 0), randn([3, 4], 51), torch.tensor(2.5)], wh, diff=d3))
    out.append(case("where.transposed", [cond, randn([3, 4], 52), randn([3, 4], 53)], lambda c, x, y: wh(c.t(), x.t(), y.t()), diff=d3))
    out.append(case("where.nonbinary_cond", [torch.tensor([0.5, -1.0, 0.0, NAN, -0.0, 3.0]), randn([6], 54), randn([6], 55)], wh, diff=d3))

    m = mask(randn([3, 4], 56) > 0)
    x = randn([3, 4], 57)
    d2 = [True, False]
    out.append(case("masked_fill.same", [x, m], lambda t, k: t.masked_fill(k != 0, -7.5), diff=d2))
    out.append(case("masked_fill.row", [x, mask(randn([4], 58) > 0)], lambda t, k: t.masked_fill(k != 0, -7.5), diff=d2))
    out.append(case("masked_fill.bigger", [x, mask(randn([2, 1, 4], 59) > 0)], lambda t, k: t.masked_fill(k != 0, -7.5), diff=d2))
    out.append(case("masked_fill.transposed", [x, m], lambda t, k: t.t().masked_fill(k.t() != 0, -7.5), diff=d2))
    out.append(case("masked_fill_nan.same", [x, m], lambda t, k: t.masked_fill(k != 0, NAN), diff=d2))
    out.append(case("masked_fill_inf.same", [x, m], lambda t, k: t.masked_fill(k != 0, -INF), diff=d2))
    return out
