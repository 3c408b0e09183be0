"""Shared helpers for the fixture generator (see gen.py)."""
import math

import torch


def enc(v):
    """A float as JSON: exact for float32 values; non-finite values as strings."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def tensor_json(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [enc(v) for v in t.reshape(-1).tolist()]}


def randn(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float32)


def rand(shape, seed, low=0.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float32)


def case(name, inputs, fn, grad=True, seed=0, diff=None):
    """One fixture case.

    inputs: list of float32 tensors (the leaves); fn(*leaves) -> tensor.
    grad:   whether to record gradients of loss = sum(fn(...) * weight).
    diff:   which inputs are differentiable (default: all when grad).
    The weight is random (seeded), so every output element's gradient matters.
    """
    if diff is None:
        diff = [grad] * len(inputs)
    leaves = [x.clone().detach().requires_grad_(bool(d and grad)) for x, d in zip(inputs, diff)]
    out = fn(*leaves)
    weight = randn(out.shape, 1000 + seed)
    grads = [None] * len(leaves)
    if grad and out.requires_grad:
        (out * weight).sum().backward()
        grads = [tensor_json(x.grad) if x.grad is not None else None for x in leaves]
    return {
        "name": name,
        "inputs": [tensor_json(x) for x in inputs],
        "output": tensor_json(out),
        "weight": tensor_json(weight),
        "grads": grads,
        "diff": [bool(d and grad) for d in diff],
    }
