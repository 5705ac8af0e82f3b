"""Measuring labelled images against real ones: the reference sets and every metric.

The arithmetic is in ``metrics`` (plain NumPy); the yardstick is the
``evaluator``. The real reference is ``n_per_class`` test images per class;
the real-data row (what real training images score) is drawn from the
evaluator's training part; the Parzen window's sigma is chosen on the
held-out part and the log-likelihood is that of the whole test set, on raw
pixels in [0, 1], as in Goodfellow et al. (2014) and Mirza & Osindero (2014).
A dataset without a test split cannot be measured: there is nothing unseen
to compare with, and ``require_splits`` says so in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import data, metrics
from .errors import UserError
from .evaluator import SHIPPED, TARGET_ACCURACY, Evaluator, parts

NEIGHBOURS = 3                     # k of precision and recall
PARZEN_SIGMAS = tuple(float(s) for s in np.logspace(-1, 0, 10))
PARZEN_VALID_EXAMPLES = 2_000      # random subsample of the held-out part that chooses sigma
PAPER_PARZEN = (  # Mirza & Osindero (2014), Table 1: Parzen log-likelihood on MNIST's test set
    ("adversarial nets (Goodfellow et al., 2014)", 225.0, 2.0),
    ("conditional adversarial nets (Mirza & Osindero, 2014)", 132.0, 1.8),
)


def balanced_indices(labels: np.ndarray, n_per_class: int, num_classes: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``n_per_class`` indices of each class, class after class.

    Drawn without replacement while a class has enough images; past that the
    class's images are all used, repeated as evenly as possible (tiled).
    """
    chosen = []
    for c in range(num_classes):
        pool = rng.permutation(np.flatnonzero(labels == c))
        if len(pool) == 0:
            raise UserError(f"the data has no image of class {c}; measuring needs every class "
                            "in the training and the test split")
        chosen.append(np.tile(pool, -(-n_per_class // len(pool)))[:n_per_class])
    return np.concatenate(chosen)


def _pixels(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float64 (N, 784) in [0, 1], the Parzen window's space."""
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


@dataclass(frozen=True)
class Reference:
    """Real test images that every measured set is compared with."""

    features: np.ndarray             # evaluator features of n_per_class test images per class
    labels: np.ndarray
    parzen_valid: np.ndarray | None  # pixels of validation images: choose sigma
    parzen_test: np.ndarray | None   # pixels of the whole test set: the reported likelihood


def evaluation_rng(seed: int) -> np.random.Generator:
    """The random draws of an evaluation at ``seed`` (real images, reference, Parzen subsample)."""
    return np.random.default_rng([seed, 0xE7A1])


def build_reference(dataset: data.Dataset, evaluator: Evaluator, n_per_class: int,
                    rng: np.random.Generator, parzen: bool) -> Reference:
    test = dataset.test
    idx = balanced_indices(test.labels, n_per_class, dataset.num_classes, rng)
    x, _ = data.to_model_inputs(test.images[idx], test.labels[idx], dataset.num_classes)
    _, features = evaluator.classify(x)
    if not parzen:
        return Reference(features, test.labels[idx], None, None)
    valid = dataset.train.images[parts(len(dataset.train.labels))[1]]
    pick = np.sort(rng.choice(len(valid), min(PARZEN_VALID_EXAMPLES, len(valid)), replace=False))
    return Reference(features, test.labels[idx], _pixels(valid[pick]), _pixels(test.images))


def real_images(dataset: data.Dataset, n_per_class: int, rng: np.random.Generator):
    """The real-data row's stand-in for samples: images from the evaluator's training part."""
    train_part = parts(len(dataset.train.labels))[0]
    labels = dataset.train.labels[train_part]
    idx = balanced_indices(labels, n_per_class, dataset.num_classes, rng)
    x, _ = data.to_model_inputs(dataset.train.images[train_part][idx], labels[idx],
                                dataset.num_classes)
    return x, labels[idx]


# --- measuring -------------------------------------------------------------------------


def measure(images: np.ndarray, labels: np.ndarray, evaluator: Evaluator,
            reference: Reference, num_classes: int) -> dict:
    """Every metric of labelled images (N, 28, 28, 1) in [-1, 1], as plain Python numbers."""
    probs, features = evaluator.classify(images)
    accuracy = metrics.conditional_accuracy(probs.argmax(axis=1), labels, num_classes)
    per_class_fd = [metrics.frechet_distance_of(features[labels == c],
                                                reference.features[reference.labels == c])
                    for c in range(num_classes)]
    precision, recall = metrics.precision_recall(reference.features, features, NEIGHBOURS)
    result = {
        "conditional_accuracy": accuracy["overall"],
        "per_class_accuracy": accuracy["per_class"],
        "confusion": accuracy["confusion"].tolist(),
        "frechet_distance": metrics.frechet_distance_of(features, reference.features),
        "frechet_distance_per_class": per_class_fd,
        "frechet_distance_class_mean": float(np.mean(per_class_fd)),
        "classifier_score": metrics.classifier_score(probs),
        "precision": precision,
        "recall": recall,
    }
    if reference.parzen_test is not None:
        result.update(parzen_window(images, reference))
    return result


def parzen_window(images: np.ndarray, reference: Reference) -> dict:
    """Parzen-window log-likelihood of the test set, the window on ``images``."""
    centers = (images.reshape(len(images), -1).astype(np.float64) + 1.0) / 2.0
    sigma, means = metrics.choose_parzen_sigma(reference.parzen_valid, centers, PARZEN_SIGMAS)
    mean, error = metrics.parzen_estimate(reference.parzen_test, centers, sigma)
    return {"parzen_log_likelihood": mean, "parzen_standard_error": error,
            "parzen_sigma": sigma, "parzen_valid_means": means}


def require_splits(dataset: data.Dataset) -> None:
    """Measuring needs a test split, and every class in the held-out part of the training split."""
    if not dataset.has_test:
        raise UserError(f"{dataset.path} has no test split (x_test, y_test): sample quality is "
                        "measured against unseen real images; add them to the .npz")
    held = dataset.train.labels[parts(len(dataset.train.labels))[1]]
    if len(np.unique(held)) < dataset.num_classes:
        raise UserError(f"{dataset.path} has too few training images ({len(dataset.train.labels):,})"
                        " for its last sixth, held out from the evaluator, to hold every class: "
                        "pass the full data file")


def evaluate(sampler, dataset: data.Dataset, n_per_class: int = 1000, seed: int = 0, *,
             evaluator: Evaluator, parzen: bool = True, real: bool = True,
             log=lambda line: None) -> dict:
    """Measure ``n_per_class`` samples of each class, and the same count of real training
    images as a reference row; return a plain dict (JSON-ready).

    ``sampler(classes, n, seed)`` returns (images (N, 28, 28, 1) in [-1, 1], labels),
    e.g. ``functools.partial(generate.sample, generator)``. ``parzen=False`` skips the
    slow Parzen estimate, ``real=False`` the real-data row.
    """
    require_splits(dataset)
    classes = dataset.num_classes
    rng = evaluation_rng(seed)
    log("measuring: the real test reference")
    reference = build_reference(dataset, evaluator, n_per_class, rng, parzen)
    log(f"measuring: {n_per_class * classes:,} samples")
    columns = {"generator": measure(*sampler(range(classes), n_per_class, seed),
                                    evaluator, reference, classes)}
    if real:
        log(f"measuring: {n_per_class * classes:,} real training images (the reference row)")
        columns["real"] = measure(*real_images(dataset, n_per_class, rng), evaluator, reference,
                                  classes)
    return {"dataset": dataset.name, "data_path": str(dataset.path),
            "class_names": list(dataset.class_names), "n_per_class": n_per_class,
            "samples": n_per_class * classes, "seed": seed,
            "evaluator": _evaluator_summary(evaluator),
            "reference": _reference_summary(reference, n_per_class),
            **columns,
            "paper_parzen": [{"model": m, "mean": v, "standard_error": e}
                             for m, v, e in PAPER_PARZEN]}


def real_reference_spread(dataset: data.Dataset, evaluator: Evaluator, n_per_class: int,
                          seeds) -> dict:
    """The real-data row's Fréchet distance at each evaluation seed, drawn exactly as
    ``evaluate(..., seed=s)`` draws it, and their mean: one seed's moves by about 20%,
    so a target such as "FD at most twice the real data's" is set against the mean."""
    distances = []
    for seed in seeds:
        rng = evaluation_rng(seed)
        reference = build_reference(dataset, evaluator, n_per_class, rng, parzen=True)
        _, features = evaluator.classify(real_images(dataset, n_per_class, rng)[0])
        distances.append(metrics.frechet_distance_of(features, reference.features))
    return {"seeds": list(seeds), "frechet_distance": distances,
            "mean": float(np.mean(distances)), "min": float(np.min(distances)),
            "max": float(np.max(distances))}


def _evaluator_summary(evaluator: Evaluator) -> dict:
    return {"dataset": evaluator.info.get("dataset"), "weights": evaluator.weights_hash,
            "shipped": evaluator.path is not None and evaluator.path.parent == SHIPPED,
            "test_accuracy": evaluator.test_accuracy,
            "target_accuracy": TARGET_ACCURACY if evaluator.info.get("dataset") == "mnist" else None,
            "valid_accuracy": evaluator.info.get("valid_accuracy"),
            "train_seconds": evaluator.info.get("train_seconds"),
            "path": str(evaluator.path) if evaluator.path else None}


def _reference_summary(reference: Reference, n_per_class: int) -> dict:
    summary = {"test_images_per_class": n_per_class, "neighbours": NEIGHBOURS}
    if reference.parzen_test is not None:
        summary |= {"parzen_valid_examples": len(reference.parzen_valid),
                    "parzen_test_examples": len(reference.parzen_test),
                    "parzen_sigmas": list(PARZEN_SIGMAS)}
    return summary


