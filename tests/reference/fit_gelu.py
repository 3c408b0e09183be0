"""Fits the exact-GELU tables of src/kernels/generic/math/gelu.rs.

GELU is evaluated from H(a) = a Q(a) e^(a^2/2), where a = |x| and
Q(a) = Phi(-a) = erfc(a / sqrt 2) / 2 is the normal tail: then
x Phi(x) = -H(a) e^(-a^2/2) for x < 0 and x - H(a) e^(-a^2/2) for x >= 0.
H is smooth and bounded (0 at a = 0, tending to 1/sqrt(2 pi)), so it takes
one polynomial of degree 7 per interval: the half-octaves of a + 1, i.e.
[0, 0.5), [0.5, 1), [1, 2), [2, 3), [3, 5), [5, 7), [7, 11), [11, 15]. Each
is in u = a - c (c the interval's centre, 0 for the first, so u = a there
and the constant term is 0), minimising the largest
relative error (Lawson's iteratively reweighted least squares on Chebyshev
points, targets from mpmath at 40 digits, a 1e-4 relative margin past each
end). The constant term is kept as an f32 pair (hi + lo).

Prints the Rust tables (highest degree first) and, per interval, the largest
error in ulp of the f32 evaluation the kernel does (Horner with FMA, the
last step `fma(y, u, lo) + hi`) over 3000 points.

Run: python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy mpmath &&
/tmp/np/bin/python tests/reference/fit_gelu.py
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 40
DEGREE = 7
# The half-octaves of a + 1 (the kernel's index: exponent and first mantissa
# bit): a + 1 in [1, 1.5), [1.5, 2), [2, 3), ..., [12, 16).
INTERVALS = [
    (0.0, 0.5, 0.0),
    (0.5, 1.0, 0.75),
    (1.0, 2.0, 1.5),
    (2.0, 3.0, 2.5),
    (3.0, 5.0, 4.0),
    (5.0, 7.0, 6.0),
    (7.0, 11.0, 9.0),
    (11.0, 15.0, 13.0),
]


def h(a):
    a = mp.mpf(a)
    return a * mp.erfc(a / mp.sqrt(2)) / 2 * mp.exp(a * a / 2)


def lawson(x, target, weight, degree, iterations=200):
    """Minimax coefficients (lowest degree first), error `weight * diff`."""
    a = np.vstack([x**k for k in range(degree + 1)]).T
    lw = np.full(len(x), 1.0 / len(x))
    best = None
    for _ in range(iterations):
        w = np.sqrt(lw) * weight
        c, *_ = np.linalg.lstsq(a * w[:, None], target * w, rcond=None)
        e = np.abs((a @ c - target) * weight)
        if best is None or e.max() < best[0]:
            best = (e.max(), c)
        lw = lw * e + 1e-30
        lw /= lw.sum()
    return best[1]


def fit(lo, hi, centre):
    a = lo + (hi - lo) * (np.cos(np.linspace(0, np.pi, 800)) + 1) / 2
    if centre == 0:
        a = a[a > 0]
        tgt = np.array([float(h(v) / v) for v in a])
        c = np.concatenate([[0.0], lawson(a, tgt, 1 / tgt, DEGREE - 1)])
    else:
        a = lo * (1 - 1e-4) + (hi * (1 + 1e-4) - lo * (1 - 1e-4)) * (a - lo) / (hi - lo)
        tgt = np.array([float(h(v)) for v in a])
        c = lawson(a - centre, tgt, 1 / tgt, DEGREE)
    c32 = [np.float32(v) for v in c]
    return c32, np.float32(c[0] - float(c32[0]))


def fma32(a, b, c):
    return np.float32(np.float64(a) * np.float64(b) + np.float64(c))


def evaluate(c32, lo32, u):
    y = c32[-1]
    for k in range(len(c32) - 2, 0, -1):
        y = fma32(y, u, c32[k])
    return np.float32(np.float64(fma32(y, u, lo32)) + np.float64(c32[0]))


def worst_ulp(lo, hi, centre, c32, lo32):
    worst = 0.0
    for v in np.linspace(lo, hi, 3001)[:-1]:
        a = np.float32(v)
        if a == 0:
            continue
        r = float(h(float(a)))
        got = evaluate(c32, lo32, np.float32(a - np.float32(centre)))
        worst = max(worst, abs(float(got) - r) / 2.0 ** (np.floor(np.log2(r)) - 23))
    return worst


def rust(name, rows):
    body = ",\n".join("    [" + ", ".join(str(np.float32(v)) for v in r) + "]" for r in rows)
    return f"const {name}: [[f32; 8]; {len(rows)}] = [\n{body},\n];"


def main():
    fits = [fit(*iv) for iv in INTERVALS]
    print("const GELU_CENTRE: [f32; 8] = [" + ", ".join(str(np.float32(c)) for _, _, c in INTERVALS) + "];")
    print(rust("GELU_H", [[f[0][k] for f in fits] for k in range(DEGREE, -1, -1)]))
    print("const GELU_H_LO: [f32; 8] = [" + ", ".join(str(f[1]) for f in fits) + "];")
    for iv, (c32, lo32) in zip(INTERVALS, fits):
        print("// [%g, %g): %.3f ulp" % (iv[0], iv[1], worst_ulp(*iv, c32, lo32)))


if __name__ == "__main__":
    main()
