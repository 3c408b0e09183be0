"""Binary arithmetic: broadcasting, scalars, views (see gen.py)."""
from common import case, randn


def cases():
    a, b = randn([3, 4], 1), randn([3, 4], 2)
    row, col, s = randn([4], 3), randn([3, 1], 4), randn([], 5)
    big = randn([2, 3, 4], 6)
    pos = randn([3, 4], 7).abs() + 0.5
    out = []
    for name, fn in [
        ("add", lambda x, y: x + y),
        ("sub", lambda x, y: x - y),
        ("mul", lambda x, y: x * y),
        ("div", lambda x, y: x / y),
    ]:
        rhs = pos if name == "div" else b
        out.append(case(f"{name}_same", [a, rhs], fn))
        out.append(case(f"{name}_row", [a, row.abs() + 0.5], fn))
        out.append(case(f"{name}_col", [a, col.abs() + 0.5], fn))
        out.append(case(f"{name}_scalar_tensor", [big, s.abs() + 0.5], fn))
        out.append(case(f"{name}_outer", [col, row.abs() + 0.5], fn))
        out.append(case(f"{name}_transposed", [a, rhs], lambda x, y, fn=fn: fn(x.t(), y.t())))
        out.append(case(f"{name}_sliced", [big, pos], lambda x, y, fn=fn: fn(x[:, :, 1:3], y[:, ::2])))
    out.append(case("add_scalar", [a], lambda x: x + 2.5))
    out.append(case("sub_scalar", [a], lambda x: x - 2.5))
    out.append(case("rsub_scalar", [a], lambda x: 2.5 - x))
    out.append(case("mul_scalar", [a], lambda x: x * -1.5))
    out.append(case("div_scalar", [a], lambda x: x / 4.0))
    out.append(case("rdiv_scalar", [pos], lambda x: 3.0 / x))
    out.append(case("neg", [a], lambda x: -x))
    out.append(case("chain", [a, b, row], lambda x, y, r: (x * y + r) / (y * y + 1.0) - x))
    return out
