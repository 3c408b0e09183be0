"""cat, stack, index_select, gather, scatter_add, repeat, flip, pad: negative
dims, repeated indices, views as inputs, padding on several dims (see gen.py).
Index tensors are float32 inputs (not differentiable) converted with .long();
Rust applies the same view transforms by case name (tests/ops_shape.rs)."""
import torch
import torch.nn.functional as F

from common import case, randn


def idx(values):
    return torch.tensor(values, dtype=torch.float32)


def cases():
    a, b, c = randn([2, 3], 1), randn([4, 3], 2), randn([2, 1], 3)
    x3, y3 = randn([2, 3, 2], 4), randn([2, 3, 1], 5)
    m = randn([4, 3], 6)
    t3 = randn([2, 3, 4], 7)
    nd = [True, False]  # data differentiable, index not
    out = [
        # cat
        case("cat_dim0", [a, b], lambda p, q: torch.cat([p, q], 0)),
        case("cat_dim1_three", [a, c, randn([2, 4], 8)], lambda p, q, r: torch.cat([p, q, r], 1)),
        case("cat_neg_dim", [x3, y3], lambda p, q: torch.cat([p, q], -1)),
        case("cat_views", [randn([3, 2], 9), randn([2, 6], 10)],
             lambda p, q: torch.cat([p.t(), q[:, ::2]], 0)),
        case("cat_legacy_empty", [torch.zeros(0), a], lambda p, q: torch.cat([p, q], 0)),
        case("cat_single", [a], lambda p: torch.cat([p], 1)),
        # stack
        case("stack_dim0", [a, randn([2, 3], 11)], lambda p, q: torch.stack([p, q], 0)),
        case("stack_neg_dim", [a, randn([2, 3], 12), randn([2, 3], 13)],
             lambda p, q, r: torch.stack([p, q, r], -1)),
        case("stack_middle_views", [randn([3, 2], 14), randn([3, 4], 15)],
             lambda p, q: torch.stack([p.t(), q[:, 1:4:2].t()], 1)),
        case("stack_scalars", [randn([], 16), randn([], 17)], lambda p, q: torch.stack([p, q])),
        # index_select
        case("index_select_dim0", [m, idx([2, 0, 2])],
             lambda p, i: p.index_select(0, i.long()), diff=nd),
        case("index_select_neg_dim", [m, idx([2, 2, 0, 1])],
             lambda p, i: p.index_select(-1, i.long()), diff=nd),
        case("index_select_view", [m, idx([1, 0, 1, 1])],
             lambda p, i: p.t().index_select(1, i.long()), diff=nd),
        case("index_select_3d", [t3, idx([2, 2, 1, 0, 2])],
             lambda p, i: p.index_select(1, i.long()), diff=nd),
        case("index_select_empty", [m, torch.zeros(0)],
             lambda p, i: p.index_select(0, i.long()), diff=nd),
        case("index_select_strided_index", [m, idx([3, 9, 0, 9, 1, 9])],
             lambda p, i: p.index_select(0, i[::2].long()), diff=nd),
        # gather
        case("gather_dim0", [m, idx([[0, 1, 2], [3, 3, 0]])],
             lambda p, i: p.gather(0, i.long()), diff=nd),
        case("gather_dim1_smaller", [m, idx([[0, 0], [2, 1], [1, 1]])],
             lambda p, i: p.gather(1, i.long()), diff=nd),
        case("gather_neg_dim_3d", [t3, idx([[[3, 0], [1, 1], [2, 3]], [[0, 0], [3, 2], [1, 0]]])],
             lambda p, i: p.gather(-1, i.long()), diff=nd),
        case("gather_view", [m, idx([[3, 0, 0, 1], [2, 2, 1, 3]])],
             lambda p, i: p.t().gather(1, i.long()), diff=nd),
        # scatter_add
        case("scatter_add_dim0", [m, idx([[0, 1, 1], [1, 1, 3]]), randn([2, 3], 18)],
             lambda s, i, src: s.scatter_add(0, i.long(), src), diff=[True, False, True]),
        case("scatter_add_dim1", [m, idx([[2, 2], [0, 1], [1, 1], [0, 0]]), randn([4, 2], 19)],
             lambda s, i, src: s.scatter_add(1, i.long(), src), diff=[True, False, True]),
        case("scatter_add_neg_dim_views", [m, idx([[1, 1, 0, 3], [2, 0, 0, 0]]), randn([4, 2], 20)],
             lambda s, i, src: s.t().scatter_add(-1, i.long(), src.t()), diff=[True, False, True]),
        case("scatter_add_big_src", [m, idx([[0, 1], [3, 3]]), randn([3, 4], 21)],
             lambda s, i, src: s.scatter_add(0, i.long(), src), grad=False),
        # repeat
        case("repeat_2d", [a], lambda p: p.repeat(2, 3)),
        case("repeat_more_dims", [randn([3], 22)], lambda p: p.repeat(2, 1, 2)),
        case("repeat_ones", [a], lambda p: p.repeat(1, 1)),
        case("repeat_view", [a], lambda p: p.t().repeat(2, 1)),
        case("repeat_3d", [randn([2, 1, 3], 23)], lambda p: p.repeat(1, 3, 2)),
        case("repeat_zero", [a], lambda p: p.repeat(0, 2)),
        # flip
        case("flip_dim0", [m], lambda p: p.flip(0)),
        case("flip_multi", [t3], lambda p: p.flip(0, 2)),
        case("flip_neg", [t3], lambda p: p.flip(-1)),
        case("flip_all", [t3], lambda p: p.flip(2, 0, 1)),
        case("flip_view", [m], lambda p: p.t().flip(0)),
        # pad (F.pad's flat list, last dimension first)
        case("pad_last", [a], lambda p: F.pad(p, (1, 2))),
        case("pad_two_dims", [a], lambda p: F.pad(p, (1, 0, 2, 1), value=0.5)),
        case("pad_three_dims", [t3], lambda p: F.pad(p, (1, 1, 0, 2, 1, 0), value=-2.0)),
        case("pad_negative", [m], lambda p: F.pad(p, (-1, 2, 1, -2))),
        case("pad_view", [m], lambda p: F.pad(p.t(), (1, 1, 1, 1), value=3.0)),
        case("pad_none", [a], lambda p: F.pad(p, ())),
    ]
    return out
