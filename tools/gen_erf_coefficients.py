"""Derive the polynomial coefficients of ferry's vectorized Erf (ferry/runtime/kernels/math_unary.py).

Dev-time only (needs mpmath): ``python tools/gen_erf_coefficients.py`` prints the pieces.
erf(x) = x * g(x^2) on |x| < 1 with g(u) = erf(sqrt(u)) / sqrt(u); for |x| >= 1,
erf(x) = 1 - exp(-x^2) * h(|x|) with h(x) = erfc(x) * exp(x^2). Each function is
interpolated at Chebyshev nodes with 50-digit arithmetic, truncated where the tail drops
below the target precision, and printed in power form (highest degree first).
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 50
N = 48


def cheb(f, a, b):
    xs = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / N) for k in range(N)]
    fs = [f((b - a) / 2 * x + (a + b) / 2) for x in xs]
    return [
        (2 if j else 1)
        * sum(fs[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / N) for k in range(N))
        / N
        for j in range(N)
    ]


def g(u):
    return 2 / mp.sqrt(mp.pi) if u == 0 else mp.erf(mp.sqrt(u)) / mp.sqrt(u)


def h(x):
    return mp.erfc(x) * mp.exp(x * x)


def mono(c, deg):
    # Chebyshev series (truncated) -> monomial coefficients in t, highest first
    T = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
    for n in range(2, deg + 1):
        prev, pp = T[-1], T[-2]
        T.append(
            [(2 * prev[i - 1] if i else 0) - (pp[i] if i < len(pp) else 0) for i in range(n + 1)]
        )
    a = [mp.mpf(0)] * (deg + 1)
    for j in range(deg + 1):
        for i, v in enumerate(T[j]):
            a[i] += c[j] * v
    return a[::-1]


def piece(name, f, a, b, tol):
    c = cheb(f, a, b)
    fmin = min(abs(f(a)), abs(f(b)))
    deg = max(j for j in range(N) if abs(c[j]) > tol * fmin) + 1
    m = mono(c, deg)
    print(
        f"    # {name} on [{a}, {b}], degree {deg}, sum|a|={float(sum(abs(v) for v in m)):.3g}, fmin={float(fmin):.3g}"
    )
    print(f"    ({a}, {b}, ({', '.join(repr(float(v)) for v in m)},)),")



def main() -> None:
    print("F64")
    piece("g", g, 0, 1, 1e-17)
    piece("h", h, 1, 2, 5e-17)
    piece("h", h, 2, 3, 2e-15)
    piece("h", h, 3, 6, 4e-13)
    print("F32")
    piece("g", g, 0, 1, 3e-10)
    piece("h", h, 1, 4, 1.5e-9)


if __name__ == "__main__":
    main()
