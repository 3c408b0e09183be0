"""Fits the polynomials of src/kernels/generic/math.rs that are ours.

- EXP_Q: e^r = 1 + r + r^2 Q(r) on |r| <= ln(2)/2, Q of degree 4.
- EXP_Q8: the same on |r| <= ln(2)/16 (eighths of an octave), Q of degree
  1; and the table T_j = 2^(j/8) rounded to f32 with D_j = ln(2^(j/8) / T_j).
- TANH_P: tanh(x) = x + x^3 P(x^2) on 0 < x <= 0.375 (TANH_SMALL), P of
  degree 3.

Each minimises the largest relative error of the function (Lawson's
iteratively reweighted least squares on Chebyshev points, targets evaluated
with mpmath at 40 digits), then prints the coefficients rounded to f32
(highest degree first, as `poly` takes them) and the relative error with those
rounded coefficients.

Run: python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy mpmath &&
/tmp/np/bin/python tests/reference/fit_polys.py
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 40


def lawson(x, target, weight, degree, iterations=80):
    """Minimax coefficients (lowest degree first) of a polynomial in `x`
    approximating `target`, the error measured as `weight * difference`."""
    a = np.vstack([x**k for k in range(degree + 1)]).T
    lw = np.full(len(x), 1.0 / len(x))
    for _ in range(iterations):
        w = np.sqrt(lw) * weight
        c, *_ = np.linalg.lstsq(a * w[:, None], target * w, rcond=None)
        e = np.abs((a @ c - target) * weight)
        lw = lw * e
        lw /= lw.sum()
    return np.float32(c)


def horner(c, x):
    return sum(mp.mpf(float(c[k])) * x**k for k in range(len(c)))


def fit_exp(a=float(mp.log(2) / 2), degree=4):
    """Q of `degree` on |r| <= a."""
    r = np.cos(np.linspace(0, np.pi, 4000)) * a
    q = [(mp.exp(v) - 1 - v) / v**2 if v != 0 else mp.mpf(0.5) for v in map(mp.mpf, r)]
    # An error in Q changes e^r by r^2 / e^r times as much, relatively.
    weight = np.array([float(v**2 / mp.exp(v)) for v in map(mp.mpf, r)])
    c = lawson(r, np.array([float(v) for v in q]), weight, degree)
    worst = max(
        abs((1 + v + v * v * horner(c, v)) / mp.exp(v) - 1)
        for v in map(mp.mpf, np.linspace(-a, a, 4001))
    )
    return c, worst


def fit_tanh(small=0.375):
    x = np.cos(np.linspace(0, np.pi / 2, 3000)) * small + 1e-9
    p = [(mp.tanh(v) - v) / v**3 for v in map(mp.mpf, x)]
    weight = np.array([float(v**3 / mp.tanh(v)) for v in map(mp.mpf, x)])
    c = lawson(x * x, np.array([float(v) for v in p]), weight, 3)
    worst = max(
        abs((v + v**3 * horner(c, v * v)) / mp.tanh(v) - 1)
        for v in map(mp.mpf, np.linspace(1e-4, small, 3000))
    )
    return c, worst


def eighth_table():
    """T_j = 2^(j/8) rounded to f32 (bit patterns) and D_j = ln(2^(j/8) / T_j)."""
    for j in range(8):
        t = mp.mpf(2) ** (mp.mpf(j) / 8)
        th = np.float32(float(t))
        d = np.float32(float(mp.log(t / mp.mpf(float(th)))))
        print("  j=%d T=%s (0x%08x) D=%r" % (j, repr(th), th.view(np.uint32), d))


def main():
    fits = [
        ("EXP_Q", fit_exp),
        # A little past ln(2)/16: the rounding of N leaves |r| a hair larger.
        ("EXP_Q8", lambda: fit_exp(float(mp.log(2) / 16) * 1.0001, 1)),
        ("TANH_P", fit_tanh),
    ]
    for name, fit in fits:
        c, worst = fit()
        print(name, "(highest degree first):", [repr(np.float32(v)) for v in c[::-1]])
        print("  relative error with f32 coefficients: %.3g" % worst)
    print("EXP_T8 / EXP_D8:")
    eighth_table()


if __name__ == "__main__":
    main()
