"""Safetensors interop with PyTorch, both directions.

1. Writes fixtures/torch_saved.safetensors with safetensors.torch.save_file
   (several dtypes) and fixtures/torch_saved.json with the expected f32 values;
   tests/io.rs loads the file and compares.
2. Writes fixtures/torch_mlp.safetensors, the state dict of a small
   nn.Sequential MLP saved by PyTorch, and torch_mlp.json with its output on a
   fixed input; tests/io.rs loads it into the same model built here.
3. If target/interop/rust_saved.safetensors exists (written by
   `cargo test --test io`), loads it with safetensors.torch.load_file and checks
   its values, so a file written here is proven readable by PyTorch.

    pip install torch safetensors
    python tests/reference/gen_io.py
"""
import json
import os

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

g = torch.Generator().manual_seed(7)
tensors = {
    "f32": torch.randn(3, 4, generator=g),
    "f16": torch.randn(5, generator=g).to(torch.float16),
    "bf16": torch.randn(2, 3, generator=g).to(torch.bfloat16),
    "f64": torch.randn(2, 2, generator=g).to(torch.float64),
    "i64": torch.tensor([[-3, 0, 7], [123456, -1, 2]], dtype=torch.int64),
    "u8": torch.tensor([0, 16, 255], dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "scalar": torch.tensor(2.5),
    "empty": torch.zeros(0, 3),
    "layer.0.weight": torch.randn(4, 2, generator=g),
}
os.makedirs(os.path.join(HERE, "fixtures"), exist_ok=True)
path = os.path.join(HERE, "fixtures", "torch_saved.safetensors")
save_file(tensors, path, metadata={"format": "pt", "note": "written by gen_io.py"})
expected = {
    k: {"shape": list(v.shape), "data": [float(x) for x in v.to(torch.float32).reshape(-1).tolist()]}
    for k, v in tensors.items()
}
with open(os.path.join(HERE, "fixtures", "torch_saved.json"), "w") as f:
    json.dump(expected, f)
print("wrote", os.path.relpath(path))

# 2. A model's state dict saved by PyTorch, and its output on a fixed input.
torch.manual_seed(3)
mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
save_file(mlp.state_dict(), os.path.join(HERE, "fixtures", "torch_mlp.safetensors"))
x = torch.randn(5, 4, generator=torch.Generator().manual_seed(4))
with torch.no_grad():
    y = mlp(x)
with open(os.path.join(HERE, "fixtures", "torch_mlp.json"), "w") as f:
    json.dump(
        {
            "input": [float(v) for v in x.reshape(-1).tolist()],
            "output": [float(v) for v in y.reshape(-1).tolist()],
            "keys": list(mlp.state_dict().keys()),
        },
        f,
    )
print("wrote", os.path.relpath(os.path.join(HERE, "fixtures", "torch_mlp.safetensors")))

rust = os.path.join(ROOT, "target", "interop", "rust_saved.safetensors")
if os.path.exists(rust):
    loaded = load_file(rust)
    a = loaded["a"]
    assert a.dtype == torch.float32 and list(a.shape) == [2, 3], a
    assert torch.equal(a, torch.arange(6.0).reshape(2, 3).t().contiguous().t()), a
    t = loaded["transposed"]
    assert torch.equal(t, torch.arange(6.0).reshape(2, 3).t()), t
    assert loaded["scalar"].shape == () and loaded["scalar"].item() == -1.5
    print("PyTorch read", os.path.relpath(rust), "correctly:", sorted(loaded))
else:
    print("no", os.path.relpath(rust), "(run `cargo test --test io` first to check that direction)")
