"""Writes examples/data/digits.safetensors from scikit-learn's bundled copy of
the UCI optical-recognition handwritten digits (see DIGITS.md).

    pip install scikit-learn safetensors numpy
    python examples/data/make_digits.py
"""
import os

import numpy as np
from safetensors.numpy import save_file
from sklearn.datasets import load_digits

d = load_digits()
images = d.data.astype(np.uint8).reshape(-1, 64)  # pixel counts 0..16
labels = d.target.astype(np.uint8)
assert images.max() <= 16 and labels.max() == 9
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.safetensors")
save_file(
    {"images": images, "labels": labels},
    out,
    metadata={
        "source": "UCI ML Optical Recognition of Handwritten Digits (test set copy bundled with scikit-learn)",
        "license": "CC BY 4.0",
        "shape": "images [1797, 64] u8 in 0..16 (8x8, row-major); labels [1797] u8 in 0..9",
    },
)
print(out, images.shape, labels.shape, os.path.getsize(out), "bytes")
