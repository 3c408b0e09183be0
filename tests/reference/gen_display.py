"""Writes tests/reference/display.txt: PyTorch's repr of tensors that
tests/tensor.rs builds the same way (by name). Run with `pip install torch`:

    python tests/reference/gen_display.py
"""
import math
import os
import torch

CASES = {
    "matrix_int": torch.arange(6.0).reshape(2, 3),
    "vector_frac": torch.tensor([1.5, -2.25, 3.0]),
    "scalar": torch.tensor(3.0),
    "empty_2d": torch.zeros(0, 3),
    "empty_1d": torch.zeros(0),
    "sci_ratio": torch.tensor([1e-5, 1.0, 1e5]),
    "summarized": torch.arange(2000.0).reshape(40, 50),
    "specials": torch.tensor([float("nan"), 1.0, float("inf"), -float("inf")]),
    "wrapped_row": torch.arange(30.0),
    "cube": torch.arange(24.0).reshape(2, 3, 4) / 7.0,
    "negative_small": torch.tensor([-0.5, 0.25, -0.125]),
    "big_int": torch.tensor([1.0, 2e8]),
    "transposed": torch.arange(6.0).reshape(2, 3).t(),
    "long_summarized_1d": torch.arange(1001.0) * 0.5,
    "all_zero": torch.zeros(2, 2),
}

out = os.path.join(os.path.dirname(__file__), "display.txt")
with open(out, "w") as f:
    for name, t in CASES.items():
        f.write(f"### {name}\n{t!r}\n")
print("wrote", out)
