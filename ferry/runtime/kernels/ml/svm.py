"""ai.onnx.ml support vector machines: SVMClassifier (libsvm one-vs-one) and SVMRegressor.

Conventions where the spec is silent follow onnxruntime: the classifier's label comes
from one-vs-one votes (ties: the first class), the raw scores of a two-class model are
``[-d, d]`` for its single decision value ``d``, probabilities (when ``prob_a``/``prob_b``
are set) come from Platt-scaled pairwise estimates coupled with Wu, Lin and Weng's
second method (libsvm's), and a model without support vectors is linear:
``X @ coefficients.T + rho`` whatever the kernel type.
"""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels.ml._common import ML, as_matrix, class_labels, floats
from ferry.runtime.kernels.ml._common import post_transform as apply_transform
from ferry.runtime.registry import kernel

_KERNELS = ("LINEAR", "POLY", "RBF", "SIGMOID")


def _gram(x: np.ndarray, vectors: np.ndarray, kernel_type: str, params) -> np.ndarray:
    """K(x_n, v_m) for every row and vector, [N, M]."""
    gamma, coef0, degree = (list(params or []) + [0.0, 0.0, 0.0])[:3]
    if kernel_type == "RBF":
        distances = ((x[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=-1)
        return np.exp(-gamma * distances)
    dots = x @ vectors.T
    if kernel_type == "LINEAR":
        return dots
    if kernel_type == "POLY":
        return (gamma * dots + coef0) ** degree
    if kernel_type == "SIGMOID":
        return np.tanh(gamma * dots + coef0)
    raise ValueError(f"SVM kernel_type must be one of {_KERNELS}, got {kernel_type!r}")


def _rows(values: np.ndarray, rows: int, op: str, what: str) -> np.ndarray:
    if rows == 0 or values.size % rows:
        raise ValueError(f"{op}: {values.size} {what} do not split into {rows} rows")
    return values.reshape(rows, -1)


def _bias(rho: np.ndarray, count: int, op: str) -> np.ndarray:
    if rho.size not in (1, count):
        raise ValueError(f"{op}: expected 1 or {count} rho values, got {rho.size}")
    return rho if rho.size == count else np.full(count, rho[0])


def _pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def _platt(decision: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(first class of the pair) = 1 / (1 + exp(A d + B)), kept inside [1e-7, 1 - 1e-7]."""
    with np.errstate(over="ignore"):
        probability = 1.0 / (1.0 + np.exp(decision * a + b))
    return np.clip(probability, 1e-7, 1 - 1e-7)


def _couple(pairwise: np.ndarray, n: int) -> np.ndarray:
    """Class probabilities from pairwise ones r[i, j] = P(i | i or j): minimise
    sum_i sum_{j != i} (r[j, i] p_i - r[i, j] p_j)^2 with sum p = 1, by coordinate steps."""
    q = -pairwise.T * pairwise
    np.fill_diagonal(q, 0.0)
    np.fill_diagonal(q, (pairwise.T**2).sum(axis=1) - np.diag(pairwise) ** 2)
    p = np.full(n, 1.0 / n)
    for _ in range(max(100, n)):
        qp = q @ p
        pqp = p @ qp
        if np.abs(qp - pqp).max() < 0.005 / n:
            break
        for t in range(n):
            step = (pqp - qp[t]) / q[t, t]
            p[t] += step
            pqp = (pqp + step * (step * q[t, t] + 2 * qp[t])) / (1 + step) ** 2
            qp = (qp + step * q[t]) / (1 + step)
            p /= 1 + step
    return p


def _probabilities(decisions: np.ndarray, n: int, prob_a, prob_b, op: str) -> np.ndarray:
    pairs = _pairs(n)
    a, b = floats(prob_a, op, "prob_a"), floats(prob_b, op, "prob_b")
    if a.size != len(pairs) or b.size != len(pairs):
        raise ValueError(f"{op}: prob_a and prob_b need {len(pairs)} values each, got {a.size} and {b.size}")
    first = _platt(decisions, a, b)
    out = np.empty((decisions.shape[0], n))
    for row, probabilities in enumerate(first):
        pairwise = np.zeros((n, n))
        for (i, j), value in zip(pairs, probabilities):
            pairwise[i, j], pairwise[j, i] = value, 1.0 - value
        out[row] = _couple(pairwise, n)
    return out


def _one_vs_one(x, vectors, per_class, coefficients, rho, kernel_type, params, op) -> np.ndarray:
    """libsvm decision values d_ij (i < j) for every row, [N, n(n-1)/2]."""
    n = len(per_class)
    vectors = _rows(vectors, sum(per_class), op, "support vector values")
    if vectors.shape[1] != x.shape[1]:
        raise ValueError(f"{op}: support vectors have {vectors.shape[1]} features, input has {x.shape[1]}")
    gram = _gram(x, vectors, kernel_type, params)
    duals = _rows(coefficients, n - 1, op, "coefficients")
    bounds = np.concatenate([[0], np.cumsum(per_class)])
    rho = _bias(rho, len(_pairs(n)), op)
    columns = []
    for p, (i, j) in enumerate(_pairs(n)):
        own = slice(bounds[i], bounds[i + 1])
        other = slice(bounds[j], bounds[j + 1])
        columns.append(gram[:, own] @ duals[j - 1, own] + gram[:, other] @ duals[i, other] + rho[p])
    return np.stack(columns, axis=1) if columns else np.zeros((x.shape[0], 0))


@kernel("SVMClassifier", since=1, domain=ML)
def svm_classifier(
    x,
    *,
    classlabels_ints,
    classlabels_strings,
    coefficients,
    kernel_params,
    kernel_type,
    post_transform,
    prob_a,
    prob_b,
    rho,
    support_vectors,
    vectors_per_class,
):
    """SVM classification: one-vs-one votes (or a linear per-class model when there are no
    support vectors); scores are decision values or coupled Platt probabilities, post-transformed."""
    op = "SVMClassifier"
    labels = class_labels(classlabels_ints, classlabels_strings, op)
    x = as_matrix(x, op)
    n = labels.size
    coefficients, rho = floats(coefficients, op, "coefficients"), floats(rho, op, "rho")
    vectors = floats(support_vectors, op, "support_vectors")
    if vectors_per_class and vectors.size:
        if len(vectors_per_class) != n:
            raise ValueError(f"{op}: vectors_per_class has {len(vectors_per_class)} entries for {n} classes")
        decisions = _one_vs_one(x, vectors, list(vectors_per_class), coefficients, rho, kernel_type, kernel_params, op)
        votes = np.zeros((x.shape[0], n), dtype=np.int64)
        for p, (i, j) in enumerate(_pairs(n)):
            votes[np.arange(x.shape[0]), np.where(decisions[:, p] > 0, i, j)] += 1
        chosen = np.argmax(votes, axis=1)
        if prob_a:
            scores = _probabilities(decisions, n, prob_a, prob_b, op)
        else:
            scores = np.concatenate([-decisions, decisions], axis=1) if n == 2 else decisions
    else:
        weights = _rows(coefficients, n, op, "coefficients")
        scores = x @ weights.T + _bias(rho, n, op)
        chosen = np.argmax(scores, axis=1)
    return labels[chosen], apply_transform(scores, post_transform).astype(np.float32)


@kernel("SVMRegressor", since=1, domain=ML)
def svm_regressor(
    x,
    *,
    coefficients,
    kernel_params,
    kernel_type,
    n_supports,
    one_class,
    post_transform,
    rho,
    support_vectors,
):
    """sum_i coefficients[i] * K(x, sv_i) + rho (linear X @ coefficients + rho without support
    vectors), post-transformed; one-class models output +1 / -1 by the sign of that score."""
    op = "SVMRegressor"
    x = as_matrix(x, op)
    weights = floats(coefficients, op, "coefficients", required=True)
    bias = floats(rho, op, "rho")
    offset = bias[0] if bias.size else 0.0
    if n_supports:
        vectors = _rows(floats(support_vectors, op, "support_vectors"), n_supports, op, "support vector values")
        if weights.size != n_supports:
            raise ValueError(f"{op}: expected {n_supports} coefficients, got {weights.size}")
        score = _gram(x, vectors, kernel_type, kernel_params) @ weights + offset
    else:
        if weights.size != x.shape[1]:
            raise ValueError(f"{op}: linear model has {weights.size} coefficients, input has {x.shape[1]} features")
        score = x @ weights + offset
    score = score[:, None]
    if one_class:
        return np.where(score > 0, 1.0, -1.0).astype(np.float32)
    return apply_transform(score, post_transform).astype(np.float32)
