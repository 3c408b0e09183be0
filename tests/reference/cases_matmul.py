"""matmul (every rank combination, 1-D promotions, broadcast batch dims,
transposed / sliced / expanded operands, empty dims), bmm, outer (see gen.py).
Rust applies the same view transforms by case name (tests/ops_matmul.rs)."""
import torch

from common import case, randn


def cases():
    mm = lambda x, y: x @ y
    out = [
        # Rank combinations.
        case("dot", [randn([5], 1), randn([5], 2)], mm),
        case("mv", [randn([3, 5], 3), randn([5], 4)], mm),
        case("vm", [randn([5], 5), randn([5, 4], 6)], mm),
        case("mm", [randn([3, 5], 7), randn([5, 4], 8)], mm),
        case("mm_1x1", [randn([1, 1], 9), randn([1, 1], 10)], mm),
        case("mm_row_col", [randn([1, 7], 11), randn([7, 1], 12)], mm),
        case("mm_col_row", [randn([7, 1], 13), randn([1, 6], 14)], mm),
        case("batched", [randn([2, 3, 5], 15), randn([2, 5, 4], 16)], mm),
        case("batched_4d", [randn([2, 3, 2, 5], 17), randn([2, 3, 5, 3], 18)], mm),
        # 1-D promotions with a batch.
        case("vec_batched", [randn([5], 19), randn([2, 5, 4], 20)], mm),
        case("batched_vec", [randn([2, 3, 5], 21), randn([5], 22)], mm),
        case("vec_batched_4d", [randn([5], 23), randn([2, 1, 5, 3], 24)], mm),
        # Broadcast batch dims.
        case("batched_mat", [randn([2, 3, 5], 25), randn([5, 4], 26)], mm),
        case("mat_batched", [randn([3, 5], 27), randn([2, 5, 4], 28)], mm),
        case("broadcast_ones", [randn([2, 1, 3, 5], 29), randn([4, 5, 6], 30)], mm),
        case("broadcast_both", [randn([3, 1, 2, 4], 31), randn([1, 2, 4, 3], 32)], mm),
        # Views as operands.
        case("mm_tn", [randn([5, 3], 33), randn([5, 4], 34)], lambda x, y: x.t() @ y),
        case("mm_nt", [randn([3, 5], 35), randn([4, 5], 36)], lambda x, y: x @ y.t()),
        case("mm_tt", [randn([5, 3], 37), randn([4, 5], 38)], lambda x, y: x.t() @ y.t()),
        case("linear_3d", [randn([2, 3, 5], 39), randn([4, 5], 40)], lambda x, w: x @ w.t()),
        case("batched_transposed", [randn([2, 5, 3], 41), randn([2, 4, 5], 42)],
             lambda x, y: x.transpose(1, 2) @ y.transpose(-1, -2)),
        case("sliced", [randn([4, 10], 43), randn([6, 8], 44)],
             lambda x, y: x[1:, ::2] @ y[1:, 2:6]),
        case("expanded", [randn([1, 5], 45), randn([5, 4], 46)],
             lambda x, y: x.expand(3, 5) @ y),
        case("batch_expanded", [randn([3, 5], 47), randn([5, 4], 48)],
             lambda x, y: x.unsqueeze(0).expand(2, 3, 5) @ y.unsqueeze(0).expand(2, 5, 4)),
        case("permuted_batch", [randn([3, 2, 5], 49), randn([5, 4], 50)],
             lambda x, y: x.permute(1, 0, 2) @ y),
        # Empty dims.
        case("k_zero", [randn([3, 0], 51), randn([0, 4], 52)], mm),
        case("m_zero", [randn([0, 5], 53), randn([5, 4], 54)], mm),
        case("n_zero", [randn([3, 5], 55), randn([5, 0], 56)], mm),
        case("batch_zero", [randn([0, 3, 5], 57), randn([5, 4], 58)], mm),
        case("dot_empty", [randn([0], 59), randn([0], 60)], mm),
        # bmm and outer.
        case("bmm", [randn([3, 2, 5], 61), randn([3, 5, 4], 62)], torch.bmm),
        case("bmm_transposed", [randn([3, 5, 2], 63), randn([3, 4, 5], 64)],
             lambda x, y: torch.bmm(x.transpose(1, 2), y.transpose(1, 2))),
        case("outer", [randn([3], 65), randn([4], 66)], torch.outer),
        case("outer_strided", [randn([6], 67), randn([8], 68)],
             lambda x, y: torch.outer(x[::2], y[1::2])),
        # A chain: gradients through two products.
        case("chain", [randn([2, 4, 3], 69), randn([3, 5], 70), randn([5, 2], 71)],
             lambda x, w1, w2: (x @ w1) @ w2),
    ]
    return out
