"""The evaluator: a small CNN trained once per dataset, the yardstick of sample quality.

Its recipe (``Recipe``) is fixed; it is trained on the first five sixths of
the dataset's training split (``parts``: train[0:50000] for MNIST), the last
sixth staying unseen (it chooses the Parzen window), and cached, keyed by the
dataset's content fingerprint and the recipe. Its softmax gives the
conditional accuracy and the classifier score; its penultimate layer (128
ReLU units) is the feature space of the Fréchet distance and of
precision/recall. Fashion-MNIST gets its own evaluator, trained on
Fashion-MNIST; so does a user's .npz.

The evaluators of MNIST and Fashion-MNIST are shipped in the package
(``evaluators/``, made by ``scripts/ship_evaluators.py`` with the recipe
below): they are used whenever the data's content matches, so numbers from
two machines come from the same yardstick and the first cgan-eval trains
nothing. Other data gets an evaluator trained on first use and cached.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import data, outputs

CACHE_ENV_VAR = "CGAN_CACHE_DIR"
SHIPPED = Path(__file__).parent / "evaluators"  # package data: the fixed evaluators
RECIPE_VERSION = 1                 # bump when build_classifier or train_classifier change
HELD_OUT = 6                       # the last 1/6 of the training split is held out
TARGET_ACCURACY = 0.992            # MNIST's; Fashion-MNIST's shipped evaluator reaches 91.6%
FEATURE_LAYER = "features"
PREDICT_BATCH = 1000


def parts(train_size: int) -> tuple[slice, slice]:
    """(the evaluator's training part, the held-out part) of a training split:
    train[0:50000] and train[50000:60000] for MNIST's 60,000 images."""
    held = train_size // HELD_OUT
    return slice(0, train_size - held), slice(train_size - held, train_size)


@dataclass(frozen=True)
class Recipe:
    """How the evaluator is trained. Every field is part of its cache key.

    The defaults give >= 99.2% test accuracy on MNIST; tests shrink
    ``train_examples`` and ``epochs`` to train a rough evaluator in seconds.
    """

    train_examples: int = 50_000
    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0
    version: int = RECIPE_VERSION

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CachePaths:
    model: Path  # the classifier, .keras
    info: Path   # its fingerprint, recipe and accuracies, .json


def cache_dir(environ: dict | None = None) -> Path:
    """$CGAN_CACHE_DIR, else $XDG_CACHE_HOME/cgan-mnist, else ~/.cache/cgan-mnist."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV_VAR):
        return Path(environ[CACHE_ENV_VAR]).expanduser()
    base = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cgan-mnist"


def cache_paths(dataset: data.Dataset, folder: str | os.PathLike | None = None) -> CachePaths:
    """evaluator_mnist.keras/.json; a user's dataset also gets its fingerprint in the name."""
    folder = Path(folder) if folder is not None else cache_dir()
    name = dataset.name if dataset.name in data.DATASETS else \
        re.sub(r"[^A-Za-z0-9]+", "_", Path(dataset.name).stem).strip("_") + \
        "_" + dataset.fingerprint[:12]
    stem = folder / f"evaluator_{name}"
    return CachePaths(stem.with_suffix(".keras"), stem.with_suffix(".json"))


def fingerprint(dataset: data.Dataset, recipe: Recipe) -> str:
    """What a cached evaluator must match: the data's content and the recipe."""
    key = json.dumps({"data_sha256": dataset.fingerprint, "recipe": recipe.to_dict()},
                     sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()


class Evaluator:
    """The trained classifier, seen as images in [-1, 1] -> (probabilities, features)."""

    def __init__(self, classifier, info: dict, path: Path | None = None):
        import keras

        self.classifier, self.info, self.path = classifier, info, path
        digest = hashlib.sha256()
        for weights in classifier.get_weights():
            digest.update(np.ascontiguousarray(weights).tobytes())
        self.weights_hash = digest.hexdigest()[:12]  # names the yardstick in every report
        features = classifier.get_layer(FEATURE_LAYER).output
        self._both = keras.Model(classifier.input, [features, classifier.output])

    @property
    def test_accuracy(self) -> float:
        return float(self.info["test_accuracy"])

    def classify(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Softmax probabilities (N, classes) and features (N, 128), both float64."""
        features, logits = self._both.predict(images, batch_size=PREDICT_BATCH, verbose=0)
        return _softmax(logits.astype(np.float64)), features.astype(np.float64)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def load_or_train(dataset: data.Dataset, *, recipe: Recipe = Recipe(), cache=None,
                  log=print, shipped: Path | None = SHIPPED) -> Evaluator:
    """The shipped evaluator for this dataset and recipe, else the cached one.

    A missing, stale (other data or recipe) or corrupt cache entry is replaced
    by a freshly trained evaluator; the reason is logged.
    """
    expected = fingerprint(dataset, recipe)
    if shipped is not None:
        evaluator, _ = _load_cached(cache_paths(dataset, shipped), expected)
        if evaluator is not None:
            return evaluator
    paths = cache_paths(dataset, cache)
    evaluator, problem = _load_cached(paths, expected)
    if evaluator is not None:
        return evaluator
    log(f"training the {dataset.name} evaluator ({problem}); it is cached in "
        f"{paths.model.parent} for later runs")
    classifier, info = train_classifier(dataset, recipe, log)
    return store(paths, classifier, {**info, "fingerprint": expected, "dataset": dataset.name})


def _load_cached(paths: CachePaths, expected: str) -> tuple[Evaluator | None, str]:
    if not (paths.info.is_file() and paths.model.is_file()):
        return None, "none cached yet"
    try:
        info = json.loads(paths.info.read_text())
        stored, _ = info["fingerprint"], float(info["test_accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"{paths.info.name} in the cache is unreadable"
    if stored != expected:
        return None, "the cached one is stale: made for other data or another recipe"
    import keras

    try:
        return Evaluator(keras.models.load_model(paths.model, compile=False), info,
                         paths.model), ""
    except Exception:  # noqa: BLE001 - any failure means an unusable file
        return None, f"{paths.model.name} in the cache is corrupt"


def store(paths: CachePaths, classifier, info: dict) -> Evaluator:
    """Cache a trained classifier and its info (the info last: it marks the entry complete)."""
    with outputs.atomic_path(paths.model, suffix=".keras") as tmp:
        classifier.save(tmp)
    outputs.write_json(paths.info, info)
    return Evaluator(classifier, info, paths.model)


def build_classifier(num_classes: int = data.NUM_CLASSES):
    """conv 3x3 32 (same) -> pool -> conv 3x3 64 (valid) -> pool -> dense 128 -> dropout -> logits.

    Batch norm after each convolution; the dense layer's 128 ReLU units are
    the feature space. About 3.2 M multiply-adds per image: cheap enough to
    train on a CPU in minutes.
    """
    import keras
    from keras import layers

    image = keras.Input((28, 28, 1), name="image")
    x = image
    for i, (filters, padding) in enumerate(((32, "same"), (64, "valid")), start=1):
        x = layers.Conv2D(filters, 3, padding=padding, use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.25, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(image, logits, name="evaluator")


def train_classifier(dataset: data.Dataset, recipe: Recipe, log=print):
    """Train on the training part (or its first ``recipe.train_examples``); return (model, info).

    Adam with a cosine-decaying learning rate; no augmentation. The info
    holds the accuracies on the held-out part and on the whole test set.
    """
    split, classes = dataset.train, dataset.num_classes
    train_part, held_part = parts(len(split.labels))
    y = split.labels[train_part][:recipe.train_examples]
    x, _ = data.to_model_inputs(split.images[train_part][:recipe.train_examples], y, classes)
    started = time.perf_counter()
    classifier = fit_classifier(x, y, classes, recipe, _epoch_logger(log, recipe.epochs))
    valid = data.Split(split.images[held_part], split.labels[held_part])
    info = {"recipe": recipe.to_dict(), "data_path": str(dataset.path), "train_examples": len(x),
            "train_seconds": round(time.perf_counter() - started, 1),
            "valid_accuracy": accuracy(classifier, valid, classes) if len(valid.labels) else None,
            "test_accuracy": accuracy(classifier, dataset.test, classes)}
    log(f"  evaluator trained in {info['train_seconds']:.0f} s: validation accuracy "
        f"{info['valid_accuracy'] or float('nan'):.2%}, test accuracy {info['test_accuracy']:.2%}")
    return classifier, info


def fit_classifier(x: np.ndarray, y: np.ndarray, num_classes: int, recipe: Recipe,
                   *callbacks):
    """A fresh classifier trained by the recipe on images ``x`` in [-1, 1] with int labels
    ``y``: the evaluator's training, and the classification accuracy score's."""
    import keras

    keras.utils.set_random_seed(recipe.seed)
    classifier = build_classifier(num_classes)
    _compile(classifier, recipe, len(x))
    classifier.fit(x, y, batch_size=recipe.batch_size, epochs=recipe.epochs, verbose=0,
                   callbacks=list(callbacks))
    return classifier


def _compile(classifier, recipe: Recipe, examples: int) -> None:
    import keras

    steps = recipe.epochs * math.ceil(examples / recipe.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, steps)
    classifier.compile(keras.optimizers.Adam(schedule),
                       keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])


def _epoch_logger(log, epochs: int):
    import keras

    def line(epoch, logs):
        log(f"  evaluator epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f}, "
            f"train accuracy {logs['accuracy']:.2%}")

    return keras.callbacks.LambdaCallback(on_epoch_end=line)


def accuracy(classifier, split: data.Split, num_classes: int) -> float:
    x, _ = data.to_model_inputs(split.images, split.labels, num_classes)
    logits = classifier.predict(x, batch_size=PREDICT_BATCH, verbose=0)
    return float(np.mean(logits.argmax(axis=1) == split.labels))
