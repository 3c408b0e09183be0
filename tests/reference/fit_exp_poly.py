"""Fits the exp polynomial of src/kernels/generic/math.rs (EXP_Q).

e^r = 1 + r + r^2 Q(r) on |r| <= ln(2)/2, Q of degree 4, minimising the
largest relative error of e^r (Lawson's iteratively reweighted least squares
on Chebyshev points, the target evaluated with mpmath at 40 digits). Prints
the coefficients rounded to f32 (highest degree first, as `poly` takes them)
and the relative error with those rounded coefficients.

Run: python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy mpmath &&
/tmp/np/bin/python tests/reference/fit_exp_poly.py
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 40
DEGREE = 4
HALF_LN2 = float(mp.log(2) / 2)


def q_exact(r):
    return (mp.exp(r) - 1 - r) / r**2 if r != 0 else mp.mpf(0.5)


def fit(points=4000, iterations=60):
    x = np.cos(np.linspace(0, np.pi, points)) * HALF_LN2
    target = np.array([float(q_exact(mp.mpf(v))) for v in x])
    # Error of e^r from an error in Q: r^2 / e^r.
    weight = np.array([float(mp.mpf(v) ** 2 / mp.exp(v)) for v in x])
    a = np.vstack([x**k for k in range(DEGREE + 1)]).T
    lw = np.full(points, 1.0 / points)
    for _ in range(iterations):
        w = np.sqrt(lw) * weight
        c, *_ = np.linalg.lstsq(a * w[:, None], target * w, rcond=None)
        e = np.abs((a @ c - target) * weight)
        lw = lw * e
        lw /= lw.sum()
    return c


def main():
    c32 = np.float32(fit())
    worst = mp.mpf(0)
    for r in np.linspace(-HALF_LN2, HALF_LN2, 4001):
        r = mp.mpf(float(r))
        q = sum(mp.mpf(float(c32[k])) * r**k for k in range(DEGREE + 1))
        worst = max(worst, abs((1 + r + r * r * q) / mp.exp(r) - 1))
    print("EXP_Q (highest degree first):", [repr(np.float32(v)) for v in c32[::-1]])
    print("relative error of e^r with f32 coefficients: %.3g" % worst)


if __name__ == "__main__":
    main()
