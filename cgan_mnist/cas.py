"""Classification accuracy score (CAS): train on generated digits, test on real ones.

The number a user who wants synthetic training data needs (Ravuri & Vinyals,
2019): a fresh classifier, trained by the evaluator's recipe on
``n_per_class`` generated samples of each class (labelled with the class that
was asked for), is scored on the real test set; beside it, the same recipe
trained on as many real training images per class (from the evaluator's
training part), and the gap in points. The real baseline depends only on the
dataset, N and the recipe, so it is cached beside the evaluators.
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from . import data, outputs
from .evaluator import Recipe, accuracy, cache_dir, fit_classifier, parts
from .measuring import balanced_indices


def classification_accuracy_score(sampler, dataset: data.Dataset, n_per_class: int, seed: int,
                                  *, recipe: Recipe = Recipe(), cache=None,
                                  log=lambda line: None) -> dict:
    """{"cas", "cas_real", "cas_gap" (points), "cas_seconds"} for a sampler's images."""
    started = time.perf_counter()
    classes = dataset.num_classes
    log(f"CAS: training a classifier on {n_per_class * classes:,} generated images")
    images, labels = sampler(range(classes), n_per_class, seed)
    generated = accuracy(fit_classifier(images, labels, classes, recipe), dataset.test, classes)
    real = _real_baseline(dataset, n_per_class, seed, recipe, cache, log)
    return {"cas": generated, "cas_real": real, "cas_gap": round(100 * (real - generated), 2),
            "cas_n_per_class": n_per_class, "cas_seconds": round(time.perf_counter() - started, 1)}


def _real_baseline(dataset: data.Dataset, n_per_class: int, seed: int, recipe: Recipe, cache,
                   log) -> float:
    """The recipe's test accuracy when trained on n_per_class real images per class (cached)."""
    key = hashlib.sha256(json.dumps([dataset.fingerprint, n_per_class, seed, recipe.to_dict()],
                                    sort_keys=True).encode()).hexdigest()[:16]
    path = (cache_dir() if cache is None else cache) / f"cas_real_{key}.json"
    try:
        return float(json.loads(path.read_text())["accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    log(f"CAS: training the same recipe on {n_per_class * dataset.num_classes:,} real images "
        f"(cached in {path.parent} for later runs)")
    train = parts(len(dataset.train.labels))[0]
    labels = dataset.train.labels[train]
    pick = balanced_indices(labels, n_per_class, dataset.num_classes,
                            np.random.default_rng([seed, 0xCA5]))
    x, _ = data.to_model_inputs(dataset.train.images[train][pick], labels[pick],
                                dataset.num_classes)
    real = accuracy(fit_classifier(x, labels[pick], dataset.num_classes, recipe), dataset.test,
                    dataset.num_classes)
    outputs.write_json(path, {"accuracy": real, "dataset": dataset.name,
                              "n_per_class": n_per_class, "seed": seed,
                              "recipe": recipe.to_dict()})
    return real
