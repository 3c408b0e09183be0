"""LoRA interop with Hugging Face PEFT, both directions.

    pip install torch safetensors peft
    python tests/reference/gen_lora.py          # write the fixtures
    python tests/reference/gen_lora.py verify   # check the adapter Rust saved

Writing (the fixtures are committed, so `cargo test` needs neither PyTorch nor
PEFT):
- fixtures/lora_base.safetensors: the state dict of a small
  nn.Sequential(Linear(4, 8), ReLU(), Linear(8, 3)) (modules "0" and "2", as
  train-station's Sequential names them);
- fixtures/lora_adapter/: PEFT's save_pretrained output (adapter_model.safetensors
  and adapter_config.json; the generated README.md is dropped) for
  LoraConfig(r=2, lora_alpha=6, target_modules=["0", "2"], lora_dropout=0)
  with non-zero A and B;
- fixtures/lora.json: a fixed input, the LoRA model's output, the weight w of
  the loss sum(output * w), and the gradients of that loss with respect to
  every lora_A / lora_B (keys as in the adapter file) and to the input.

tests/lora/ loads the base weights and the PEFT adapter and compares.

`verify` loads target/interop/lora_rust/ (written by `cargo test --test lora`:
an adapter saved by train-station, plus expected.json with an input and
train-station's output) into the same base model with
PeftModel.from_pretrained, and checks PEFT's output against train-station's.
"""
import json
import os
import shutil
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(HERE, "fixtures")
BASE = os.path.join(FIX, "lora_base.safetensors")
ADAPTER = os.path.join(FIX, "lora_adapter")


def base_model():
    torch.manual_seed(11)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def floats(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def write():
    torch.set_num_threads(1)
    os.makedirs(FIX, exist_ok=True)
    base = base_model()
    save_file(base.state_dict(), BASE)

    config = LoraConfig(r=2, lora_alpha=6, target_modules=["0", "2"], lora_dropout=0.0)
    model = get_peft_model(base, config)
    g = torch.Generator().manual_seed(12)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    if os.path.exists(ADAPTER):
        shutil.rmtree(ADAPTER)
    model.save_pretrained(ADAPTER)
    readme = os.path.join(ADAPTER, "README.md")
    if os.path.exists(readme):
        os.remove(readme)

    x = torch.randn(5, 4, generator=g).requires_grad_(True)
    y = model(x)
    w = torch.randn(y.shape, generator=g)
    (y * w).sum().backward()
    grads = {}
    for name, p in model.named_parameters():
        if "lora_" in name:
            # base_model.model.0.lora_A.default.weight -> the adapter file's key
            grads[name.replace(".default", "")] = {"shape": list(p.shape), "data": floats(p.grad)}
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    with open(os.path.join(FIX, "lora.json"), "w") as f:
        json.dump(
            {
                "torch": torch.__version__,
                "input": floats(x),
                "output": floats(y),
                "loss_weight": floats(w),
                "input_grad": floats(x.grad),
                "grads": grads,
                "scaling": 6 / 2,
                "state_dict_keys": list(model.base_model.model.state_dict().keys()),
                "frozen": frozen,
            },
            f,
        )
    print("wrote", os.path.relpath(ADAPTER), "and", os.path.relpath(os.path.join(FIX, "lora.json")))


def verify():
    rust = os.path.join(ROOT, "target", "interop", "lora_rust")
    if not os.path.exists(os.path.join(rust, "adapter_config.json")):
        sys.exit(f"no {os.path.relpath(rust)}: run `cargo test --test lora` first")
    base = base_model()
    base.load_state_dict(load_file(BASE))
    model = PeftModel.from_pretrained(base, rust)
    model.eval()
    with open(os.path.join(rust, "expected.json")) as f:
        expected = json.load(f)
    x = torch.tensor(expected["input"]).reshape(expected["input_shape"])
    with torch.no_grad():
        y = model(x)
    want = torch.tensor(expected["output"]).reshape(y.shape)
    err = (y - want).abs().max().item()
    loaded = load_file(os.path.join(rust, "adapter_model.safetensors"))
    print(f"PEFT loaded {os.path.relpath(rust)} ({sorted(loaded)}); config {model.peft_config['default']}")
    print(f"max |PEFT output - train-station output| = {err:.3g}")
    assert torch.allclose(y, want, rtol=1e-5, atol=1e-5), err
    # The adapter must actually change the output (B is non-zero).
    with model.disable_adapter(), torch.no_grad():
        plain = model(x)
    assert (plain - y).abs().max().item() > 1e-3
    print("ok: PEFT reproduces train-station's output with the adapter saved by train-station")


if __name__ == "__main__":
    verify() if sys.argv[1:] == ["verify"] else write()
