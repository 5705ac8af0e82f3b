"""Sample-quality metrics as plain NumPy functions on arrays.

No TensorFlow and no files: each function takes features, probabilities or
pixels and returns numbers, so each can be checked against a known answer
(see tests/test_evaluation.py). ``evaluation`` feeds them the evaluator's
outputs. Everything is computed in float64; pairwise distances are computed
in row blocks so that 10,000 x 10,000 comparisons never hold the whole
matrix in memory.
"""

from __future__ import annotations

import numpy as np

BLOCK_ELEMENTS = 2**22  # entries of one block of pairwise distances (32 MiB of float64)


# --- conditional accuracy and the classifier score ------------------------------------


def conditional_accuracy(predicted: np.ndarray, asked: np.ndarray, num_classes: int) -> dict:
    """Share of samples classified as the class they were asked for.

    Returns ``overall``, ``per_class`` (list, NaN for a class never asked for)
    and ``confusion``: counts, row = asked-for class, column = predicted class.
    """
    predicted, asked = np.asarray(predicted, np.int64), np.asarray(asked, np.int64)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (asked, predicted), 1)
    asked_counts = confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / asked_counts
    return {"overall": float(np.mean(predicted == asked)), "per_class": per_class.tolist(),
            "confusion": confusion}


def classifier_score(probs: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))): the Inception score with an MNIST classifier.

    1 when every sample gets the same prediction, at most the number of
    classes (10) when each sample is confidently one class and the classes are
    equally frequent. Computed over the whole set in one split.
    """
    p = np.asarray(probs, np.float64)
    marginal = p.mean(axis=0)
    terms = p * (_log_or_zero(p) - _log_or_zero(marginal)[None, :])
    return float(np.exp(terms.sum(axis=1).mean()))


def _log_or_zero(p: np.ndarray) -> np.ndarray:
    """log(p) where p > 0, else 0 (those entries are multiplied by p = 0 anyway)."""
    return np.log(np.where(p > 0, p, 1.0))


# --- Fréchet distance -------------------------------------------------------------------


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased; zero for a single sample) of row vectors."""
    x = np.asarray(features, np.float64)
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False, ddof=min(1, len(x) - 1)))


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix.

    Via eigh, after symmetrising; eigenvalues that rounding made slightly
    negative are taken as zero.
    """
    m = np.asarray(matrix, np.float64)
    values, vectors = np.linalg.eigh((m + m.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between two Gaussians.

    ||mu1 - mu2||^2 + tr(C1) + tr(C2) - 2 tr((C1 C2)^(1/2)). C1 C2 is not
    symmetric, but it is similar to the PSD matrix C1^(1/2) C2 C1^(1/2), whose
    eigenvalues eigh finds reliably: tr((C1 C2)^(1/2)) is the sum of their
    square roots. Rounding can make a zero distance slightly negative; it is
    clipped to 0.
    """
    root = psd_sqrt(cov1)
    middle = root @ np.asarray(cov2, np.float64) @ root
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt
    return max(float(value), 0.0)


def frechet_distance_of(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


# --- pairwise distances, precision and recall --------------------------------------------


def squared_distance_blocks(a: np.ndarray, b: np.ndarray, block_elements: int = BLOCK_ELEMENTS):
    """Yield (first_row, block): squared Euclidean distances of rows of ``a`` to all of ``b``.

    ``||x||^2 + ||y||^2 - 2 x.y`` in float64, negative rounding clipped to 0,
    a few rows of ``a`` at a time so a block holds about ``block_elements``.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    b_sq = np.einsum("ij,ij->i", b, b)
    rows = max(1, block_elements // max(len(b), 1))
    for start in range(0, len(a), rows):
        part = a[start:start + rows]
        block = np.einsum("ij,ij->i", part, part)[:, None] + b_sq[None, :] - 2.0 * part @ b.T
        yield start, np.maximum(block, 0.0)


def knn_radii_sq(points: np.ndarray, k: int, block_elements: int = BLOCK_ELEMENTS) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point.

    A set of k points or fewer (a collapsed generator's samples, once repeats
    are dropped) reaches to its farthest other point; a single point has radius 0.
    """
    k = min(k, len(points) - 1)
    if k < 1:
        return np.zeros(len(points))
    # Column 0 after partitioning is the point itself (distance 0), so index k
    # is the k-th nearest *other* point. The copy lets each partitioned block go:
    # a view kept them all (60,000 points: 29 GB, and the OOM killer).
    return np.concatenate([np.partition(block, k, axis=1)[:, k].copy()
                           for _, block in squared_distance_blocks(points, points,
                                                                   block_elements)])


def manifold_coverage(queries: np.ndarray, points: np.ndarray, radii_sq: np.ndarray) -> float:
    """Share of ``queries`` inside at least one ball (point, radius) of the manifold."""
    inside = [(block <= radii_sq[None, :]).any(axis=1)
              for _, block in squared_distance_blocks(queries, points)]
    return float(np.concatenate(inside).mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019).

    Each set's manifold is the union of balls around its points reaching their
    k-th nearest neighbour. Precision: share of fake points on the real
    manifold (are the samples realistic?). Recall: share of real points on the
    fake manifold (do the samples cover the variety of real data?). Repeated
    points (an up-sampled reference set) are dropped first: a copy would be
    its own nearest neighbour and shrink its ball to nothing.
    """
    real, fake = np.unique(real, axis=0), np.unique(fake, axis=0)
    precision = manifold_coverage(fake, real, knn_radii_sq(real, k))
    recall = manifold_coverage(real, fake, knn_radii_sq(fake, k))
    return precision, recall


# --- Parzen-window log-likelihood -------------------------------------------------------


def parzen_log_likelihoods(x: np.ndarray, centers: np.ndarray, sigmas) -> np.ndarray:
    """log p(x) under a Gaussian Parzen window on ``centers``, for each sigma.

    p(x) = 1/K sum_i N(x; c_i, sigma^2 I). Returns (len(sigmas), len(x)).
    The pairwise distances are computed once per block and reused for every
    sigma.
    """
    sigmas = np.asarray(sigmas, np.float64)
    out = np.empty((len(sigmas), len(x)))
    for start, block in squared_distance_blocks(x, centers):
        for i, sigma in enumerate(sigmas):
            out[i, start:start + len(block)] = np.logaddexp.reduce(-block / (2 * sigma**2), axis=1)
    dim = np.asarray(centers).shape[1]
    normaliser = np.log(len(centers)) + dim / 2 * np.log(2 * np.pi * sigmas**2)
    return out - normaliser[:, None]


def choose_parzen_sigma(valid: np.ndarray, centers: np.ndarray, sigmas) -> tuple[float, list]:
    """The sigma with the best mean log-likelihood of ``valid``; and every sigma's mean."""
    means = parzen_log_likelihoods(valid, centers, sigmas).mean(axis=1)
    return float(np.asarray(sigmas)[int(np.argmax(means))]), means.tolist()


def parzen_estimate(test: np.ndarray, centers: np.ndarray, sigma: float) -> tuple[float, float]:
    """Mean log-likelihood of ``test`` and its standard error (std / sqrt(N)),
    as in Goodfellow et al. (2014)'s code."""
    ll = parzen_log_likelihoods(test, centers, [sigma])[0]
    return float(ll.mean()), float(ll.std() / np.sqrt(len(ll)))
