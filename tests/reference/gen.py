"""Writes the PyTorch golden fixtures in tests/reference/fixtures/, one JSON
file per op family, from the case lists in cases_<family>.py.

    pip install torch
    python tests/reference/gen.py            # every family
    python tests/reference/gen.py binary     # one family

Fixtures are committed, so `cargo test` needs no PyTorch. Each case holds the
inputs, the output, a random weight w and the gradients of sum(output * w)
with respect to each input (see common.case).
"""
import importlib
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

FAMILIES = sorted(
    f[len("cases_"):-3] for f in os.listdir(HERE) if f.startswith("cases_") and f.endswith(".py")
)


def main(argv):
    torch.set_num_threads(1)
    families = argv or FAMILIES
    os.makedirs(os.path.join(HERE, "fixtures"), exist_ok=True)
    for fam in families:
        mod = importlib.import_module(f"cases_{fam}")
        cases = mod.cases()
        names = [c["name"] for c in cases]
        assert len(names) == len(set(names)), f"duplicate case names in {fam}"
        path = os.path.join(HERE, "fixtures", f"{fam}.json")
        with open(path, "w") as f:
            json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        print(f"{fam}: {len(cases)} cases -> {os.path.relpath(path)}")


if __name__ == "__main__":
    main(sys.argv[1:])
