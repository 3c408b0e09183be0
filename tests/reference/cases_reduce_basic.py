"""sum and mean (the rest of the reductions live in cases_reduce.py)."""
from common import case, randn


def cases():
    x = randn([2, 3, 4], 11)
    return [
        case("sum_all", [x], lambda t: t.sum()),
        case("sum_dim0", [x], lambda t: t.sum(0)),
        case("sum_dims_keep", [x], lambda t: t.sum((0, 2), keepdim=True)),
        case("sum_neg_dim", [x], lambda t: t.sum(-1)),
        case("sum_transposed", [x], lambda t: t.transpose(0, 2).sum(1)),
        case("mean_all", [x], lambda t: t.mean()),
        case("mean_dims", [x], lambda t: t.mean((1, 2))),
        case("mean_keep", [x], lambda t: t.mean(1, keepdim=True)),
        case("mean_sliced", [x], lambda t: t[:, 1:, ::2].mean(0)),
    ]
