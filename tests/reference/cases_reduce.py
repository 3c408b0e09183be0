"""max/min (values, indices, ties, NaN), argmax/argmin, var/std, norm,
logsumexp and prod (see gen.py; sum/mean are in cases_reduce_basic.py)."""
import torch

from common import case, rand, randn

nan, inf = float("nan"), float("inf")
T = torch.tensor


def vnorm(p, dim=None, keepdim=False):
    return lambda t: torch.linalg.vector_norm(t, p, dim=dim, keepdim=keepdim)


def cases():
    x = randn([2, 3, 4], 21)                  # distinct values: no ties
    tie = T([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, -1.0], [5.0, 1.0, 5.0, 5.0]])
    nanx = T([[1.0, nan, 3.0, nan], [0.0, 2.0, 2.0, -1.0]])
    signed = T([[-2.0, 2.0, 1.0, 0.5], [0.0, 0.0, 0.0, 0.0], [3.0, -1.0, -3.0, 3.0]])
    pos = rand([2, 3, 4], 22, 0.5, 1.5)       # products stay near 1
    zeros = T([[0.0, 2.0, 3.0, 0.5], [0.0, 0.0, 4.0, 1.5], [1.0, 2.0, -1.0, 3.0]])
    big = randn([3, 5], 23) * 1000.0
    neginf = T([[-inf, -inf, -inf], [-inf, 1.0, 2.0], [0.5, -1.0, 3.0]])
    large_mean = 1.0e4 + randn([3, 40], 24) * 0.01
    s = T(2.5)
    c = []
    # max / min over everything: the gradient is split evenly among ties, and
    # among NaNs when the result is NaN.
    for op in ("max", "min"):
        f = getattr(torch.Tensor, op)
        a = "a" + op                          # amax / amin
        c += [
            case(f"{op}_all", [x], lambda t, f=f: f(t)),
            case(f"{op}_all_ties", [tie], lambda t, f=f: f(t)),
            case(f"{op}_all_nan", [nanx], lambda t, f=f: f(t)),
            case(f"{op}_all_transposed", [x], lambda t, f=f: f(t.transpose(0, 2))),
            case(f"{op}_all_scalar", [s], lambda t, f=f: f(t)),
            # amax / amin over dims: ties share; a NaN group gets NaN gradients.
            case(f"{a}_dim1", [x], lambda t, a=a: getattr(t, a)(1)),
            case(f"{a}_dims_keep", [x], lambda t, a=a: getattr(t, a)((0, 2), keepdim=True)),
            case(f"{a}_neg_dim", [x], lambda t, a=a: getattr(t, a)(-1)),
            case(f"{a}_all_dims", [x], lambda t, a=a: getattr(t, a)((0, 1, 2))),
            case(f"{a}_ties", [tie], lambda t, a=a: getattr(t, a)(1)),
            case(f"{a}_ties_dim0", [tie], lambda t, a=a: getattr(t, a)(0, keepdim=True)),
            case(f"{a}_nan", [nanx], lambda t, a=a: getattr(t, a)(1)),
            case(f"{a}_transposed", [x], lambda t, a=a: getattr(t.transpose(0, 2), a)(1)),
            case(f"{a}_sliced", [x], lambda t, a=a: getattr(t[:, 1:, ::2], a)(0)),
        ]
        # max(dim) / min(dim): values (gradient to the returned index) and
        # indices (first occurrence; first NaN).
        for tag, inp, args in [
            ("d1", x, (1,)),
            ("d0", x, (0,)),
            ("keep", x, (-1, True)),
            ("ties", tie, (1,)),
            ("ties_d0", tie, (0,)),
            ("nan", nanx, (1,)),
            ("scalar", s, (0,)),
        ]:
            c.append(case(f"{op}dim_{tag}", [inp], lambda t, f=f, args=args: f(t, *args).values))
            c.append(case(f"{op}dim_{tag}_idx", [inp],
                          lambda t, f=f, args=args: f(t, *args).indices.float(), grad=False))
        c.append(case(f"{op}dim_transposed", [x], lambda t, f=f: f(t.transpose(0, 1), 2).values))
        c.append(case(f"{op}dim_transposed_idx", [tie],
                      lambda t, f=f: f(t.t(), 0).indices.float(), grad=False))
        # argmax / argmin
        g = getattr(torch.Tensor, "arg" + op)
        for tag, inp, kw in [
            ("all", x, {}),
            ("all_ties", tie, {}),
            ("all_nan", nanx, {}),
            ("dim1", x, {"dim": 1}),
            ("dim0", x, {"dim": 0}),
            ("dim_keep", x, {"dim": -1, "keepdim": True}),
            ("dim_ties", tie, {"dim": 1}),
            ("dim_nan", nanx, {"dim": 1}),
            ("scalar", s, {}),
        ]:
            c.append(case(f"arg{op}_{tag}", [inp], lambda t, g=g, kw=kw: g(t, **kw).float(), grad=False))
        c.append(case(f"arg{op}_transposed", [tie], lambda t, g=g: g(t.t(), 0).float(), grad=False))

    # var / std
    for op in ("var", "std"):
        f = getattr(torch.Tensor, op)
        c += [
            case(f"{op}_all", [x], lambda t, f=f: f(t)),
            case(f"{op}_dim1", [x], lambda t, f=f: f(t, 1)),
            case(f"{op}_dims_keep", [x], lambda t, f=f: f(t, (0, 2), keepdim=True)),
            case(f"{op}_neg_dim", [x], lambda t, f=f: f(t, -1)),
            case(f"{op}_pop", [x], lambda t, f=f: f(t, 1, correction=0)),
            case(f"{op}_corr2", [x], lambda t, f=f: f(t, (0, 2), correction=2)),
            case(f"{op}_all_pop", [x], lambda t, f=f: f(t, correction=0)),
            case(f"{op}_transposed", [x], lambda t, f=f: f(t.transpose(0, 2), 1)),
            case(f"{op}_sliced", [x], lambda t, f=f: f(t[:, 1:, ::2], 0)),
            case(f"{op}_const", [T([[3.0, 3.0, 3.0], [1.0, 2.0, 4.0]])], lambda t, f=f: f(t, 1)),
            # Values only: with a mean of 1e4, x - mean is quantized to
            # ulp(1e4) in f32, so gradients are checked against f64 in Rust.
            case(f"{op}_large_mean", [large_mean], lambda t, f=f: f(t, 1), grad=False),
            case(f"{op}_nan", [nanx], lambda t, f=f: f(t, 1)),
            # degrees of freedom <= 0
            case(f"{op}_single", [T([[3.0]])], lambda t, f=f: f(t)),
            case(f"{op}_corr_gt_n", [T([1.0, 2.0])], lambda t, f=f: f(t, correction=3)),
            case(f"{op}_dims_corr_eq_n", [T([[1.0, 2.0]])], lambda t, f=f: f(t, 1, correction=2)),
            case(f"{op}_dims_corr_gt_n", [T([[1.0, 2.0]])], lambda t, f=f: f(t, 1, correction=3)),
            case(f"{op}_scalar", [s], lambda t, f=f: f(t)),
            case(f"{op}_empty", [torch.zeros(0, 3)], lambda t, f=f: f(t, 0), grad=False),
        ]

    # vector norms
    for p, tag in [(1.0, "1"), (2.0, "2"), (inf, "inf")]:
        c += [
            case(f"norm{tag}_all", [x], vnorm(p)),
            case(f"norm{tag}_dim1", [x], vnorm(p, 1)),
            case(f"norm{tag}_dims_keep", [x], vnorm(p, (0, 2), True)),
            case(f"norm{tag}_neg_dim", [x], vnorm(p, -1)),
            case(f"norm{tag}_signed", [signed], vnorm(p, 1)),      # zero row, ties in |x|
            case(f"norm{tag}_transposed", [x], lambda t, p=p: vnorm(p, 1)(t.transpose(0, 2))),
            case(f"norm{tag}_sliced", [x], lambda t, p=p: vnorm(p, 0)(t[:, 1:, ::2])),
            case(f"norm{tag}_scalar", [s], vnorm(p)),
        ]
    c.append(case("norm2_all_zero", [torch.zeros(2, 3)], vnorm(2.0)))
    c.append(case("norm2_empty", [torch.zeros(0)], vnorm(2.0), grad=False))

    # logsumexp
    c += [
        case("logsumexp_dim1", [x], lambda t: torch.logsumexp(t, 1)),
        case("logsumexp_dims_keep", [x], lambda t: torch.logsumexp(t, (0, 2), keepdim=True)),
        case("logsumexp_neg_dim", [x], lambda t: torch.logsumexp(t, -1)),
        case("logsumexp_all", [x], lambda t: torch.logsumexp(t, (0, 1, 2))),
        case("logsumexp_large", [big], lambda t: torch.logsumexp(t, 1)),
        case("logsumexp_large_dim0", [big], lambda t: torch.logsumexp(t, 0)),
        case("logsumexp_neginf", [neginf], lambda t: torch.logsumexp(t, 1)),
        case("logsumexp_posinf", [T([[inf, 1.0], [1.0, 2.0]])], lambda t: torch.logsumexp(t, 1)),
        case("logsumexp_nan", [nanx], lambda t: torch.logsumexp(t, 1)),
        case("logsumexp_transposed", [x], lambda t: torch.logsumexp(t.transpose(0, 2), 1)),
        case("logsumexp_sliced", [x], lambda t: torch.logsumexp(t[:, 1:, ::2], 0)),
        case("logsumexp_scalar", [s], lambda t: torch.logsumexp(t, 0)),
        case("logsumexp_empty", [torch.zeros(2, 0)], lambda t: torch.logsumexp(t, 1), grad=False),
    ]

    # prod: gradients with no, one and several zeros per group.
    c += [
        case("prod_all", [pos], lambda t: t.prod()),
        case("prod_dim1", [pos], lambda t: t.prod(1)),
        case("prod_keep", [pos], lambda t: t.prod(-1, keepdim=True)),
        case("prod_dims02", [pos], lambda t: t.prod(2, keepdim=True).prod(0, keepdim=True)),
        case("prod_zeros_dim1", [zeros], lambda t: t.prod(1)),
        case("prod_zeros_dim0", [zeros], lambda t: t.prod(0)),
        case("prod_all_one_zero", [zeros[2:, :].clone() * 0 + T([[1.5, 0.0, 2.0, -1.0]])], lambda t: t.prod()),
        case("prod_all_two_zeros", [zeros], lambda t: t.prod()),
        case("prod_transposed", [pos], lambda t: t.transpose(0, 2).prod(1)),
        case("prod_sliced", [pos], lambda t: t[:, 1:, ::2].prod(0)),
        case("prod_nan", [nanx], lambda t: t.prod(1)),
        case("prod_scalar", [s], lambda t: t.prod()),
        case("prod_empty", [torch.zeros(0, 3)], lambda t: t.prod(0), grad=False),
    ]

    # Kahan summation keeps an infinity infinite when runs accumulate.
    c.append(case("sum_inf_dim0", [T([[inf, 1.0], [1.0, -inf], [2.0, 3.0]])], lambda t: t.sum(0)))
    return c
