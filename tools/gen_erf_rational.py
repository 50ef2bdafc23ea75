"""Derive the rational fit of erf used by ferry's fused float32 GELU (ferry/runtime/kernels/fused.py).

Dev-time only: ``python tools/gen_erf_rational.py`` prints the coefficients.
erf(x) = x * P(x^2) / Q(x^2) on |x| <= 3.92 (beyond, erf rounds to +-1 in float32), with P of
degree 5 and Q of degree 5 (Q(0) = 1), fitted by linearised least squares on the relative
error, re-weighted by the previous denominator (Loeb's iteration), then checked in float32
against math.erf: the script prints the largest error in float32 ulps.
"""

from __future__ import annotations

import math

import numpy as np

DEGREES = (5, 5)
CLIP = 3.92


def fit(p: int, q: int, iterations: int = 8) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0.0, 4.0, 20001)
    ratio = np.array([math.erf(v) / v if v else 2 / math.sqrt(math.pi) for v in x])
    s = x * x
    weight = np.ones_like(s)
    for _ in range(iterations):
        powers_p = np.stack([s**i for i in range(p + 1)], axis=1)
        powers_q = np.stack([s**j for j in range(1, q + 1)], axis=1)
        system = np.concatenate([powers_p, -ratio[:, None] * powers_q], axis=1)
        scale = (weight * ratio)[:, None]
        solution, *_ = np.linalg.lstsq(system / scale, 1.0 / weight, rcond=None)
        numerator = solution[: p + 1]
        denominator = np.concatenate([[1.0], solution[p + 1 :]])
        weight = np.polynomial.polynomial.polyval(s, denominator)
    return numerator, denominator


def max_ulp_error(numerator: np.ndarray, denominator: np.ndarray) -> float:
    x = np.concatenate([np.linspace(-5, 5, 200001), np.geomspace(1e-8, 5, 20001)]).astype(np.float32)
    u = np.clip(x, -CLIP, CLIP)
    s = u * u
    num = np.polynomial.polynomial.polyval(s, numerator.astype(np.float32)).astype(np.float32)
    den = np.polynomial.polynomial.polyval(s, denominator.astype(np.float32)).astype(np.float32)
    got = (u * num / den).astype(np.float64)
    want = np.array([math.erf(float(v)) for v in x])
    return float((np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32))).max())


if __name__ == "__main__":
    numerator, denominator = fit(*DEGREES)
    print("P (lowest degree first):", ", ".join(repr(float(c)) for c in numerator))
    print("Q (lowest degree first):", ", ".join(repr(float(c)) for c in denominator))
    print(f"max error in float32: {max_ulp_error(numerator, denominator):.2f} ulp")
