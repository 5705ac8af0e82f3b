"""Measuring sample quality (library side of cgan-eval and of cgan-train --eval-interval).

The yardstick is the *evaluator*, a small CNN that classifies MNIST digits.
It is trained once on train[0:50000] (train[50000:60000] stays unseen: it
tunes the Parzen window) and cached, keyed by the data file and the recipe.
Its softmax gives the conditional accuracy and the classifier score; its
penultimate layer (128 ReLU units) is the feature space of the Fréchet
distance and of precision/recall. The Parzen-window estimate works on raw
pixels in [0, 1], as in Goodfellow et al. (2014) and Mirza & Osindero (2014).

The arithmetic is in ``metrics`` (plain NumPy). TensorFlow and Keras are
imported only inside the functions that need them, so the CLI can check its
arguments first.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import data, generate, metrics, outputs
from .errors import UserError

CACHE_ENV_VAR = "CGAN_CACHE_DIR"
RECIPE_VERSION = 1                 # bump when build_classifier or train_classifier change
TRAIN_PART = slice(0, 50_000)      # trains the evaluator; the real-data row is drawn from it
VALID_PART = slice(50_000, 60_000)  # held out: chooses the Parzen window's sigma
FULL_TRAIN_SIZE = 60_000
TARGET_ACCURACY = 0.992
FEATURE_LAYER = "features"
PREDICT_BATCH = 1000
NEIGHBOURS = 3                     # k of precision and recall
PARZEN_SIGMAS = tuple(float(s) for s in np.logspace(-1, 0, 10))
PARZEN_VALID_EXAMPLES = 2_000      # random subsample of train[50000:60000] that chooses sigma
QUICK_PER_CLASS = 100              # cgan-train --eval-interval
PAPER_PARZEN = (  # Mirza & Osindero (2014), Table 1: Parzen log-likelihood on MNIST's test set
    ("adversarial nets (Goodfellow et al., 2014)", 225.0, 2.0),
    ("conditional adversarial nets (Mirza & Osindero, 2014)", 132.0, 1.8),
)


# --- the evaluator: recipe, cache, training -------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How the evaluator is trained. Every field is part of its cache key.

    The defaults give >= 99.2% test accuracy; tests shrink ``train_examples``
    and ``epochs`` to train a rough evaluator in seconds.
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


def cache_paths(dataset_name: str, folder: str | os.PathLike | None = None) -> CachePaths:
    folder = Path(folder) if folder is not None else cache_dir()
    stem = folder / f"evaluator_{dataset_name}"
    return CachePaths(stem.with_suffix(".keras"), stem.with_suffix(".json"))


def fingerprint(data_path: Path, recipe: Recipe) -> str:
    """A hash of the data file's bytes and the recipe: what the cached evaluator must match."""
    digest = hashlib.sha256()
    with open(data_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    key = json.dumps({"data_sha256": digest.hexdigest(), "recipe": recipe.to_dict()},
                     sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()


class Evaluator:
    """The trained classifier, seen as images in [-1, 1] -> (probabilities, features)."""

    def __init__(self, classifier, info: dict, path: Path | None = None):
        import keras

        self.classifier, self.info, self.path = classifier, info, path
        features = classifier.get_layer(FEATURE_LAYER).output
        self._both = _compiled(keras.Model(classifier.input, [features, classifier.output]))

    @property
    def test_accuracy(self) -> float:
        return float(self.info["test_accuracy"])

    def classify(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Softmax probabilities (N, classes) and features (N, 128), both float64."""
        parts = [self._both(images[i:i + PREDICT_BATCH])
                 for i in range(0, len(images), PREDICT_BATCH)]
        features = np.concatenate([np.asarray(f) for f, _ in parts]).astype(np.float64)
        logits = np.concatenate([np.asarray(z) for _, z in parts]).astype(np.float64)
        return _softmax(logits), features


def _compiled(model):
    """``model`` in inference mode as one traced graph: twice as fast as eager calls on a CPU."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, *model.input.shape[1:]], tf.float32)
    return tf.function(lambda x: model(x, training=False), input_signature=[spec])


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def load_or_train(dataset: data.Dataset, *, recipe: Recipe = Recipe(), cache=None,
                  log=print) -> Evaluator:
    """The cached evaluator for this data file and recipe.

    A missing, stale (other data or recipe) or corrupt cache entry is replaced
    by a freshly trained evaluator; the reason is logged.
    """
    paths = cache_paths(dataset.name, cache)
    expected = fingerprint(dataset.path, recipe)
    evaluator, problem = _load_cached(paths, expected)
    if evaluator is not None:
        return evaluator
    log(f"training the evaluator ({problem}); it is cached in {paths.model.parent} for later runs")
    classifier, info = train_classifier(dataset, recipe, log)
    return store(paths, classifier, {**info, "fingerprint": expected})


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
    """Train on train[0:50000] (or its first ``recipe.train_examples``); return (model, info).

    Adam with a cosine-decaying learning rate; no augmentation. The info
    holds the accuracies on the validation part and on the whole test set.
    """
    import keras

    keras.utils.set_random_seed(recipe.seed)
    split, classes = dataset.train, dataset.num_classes
    y = split.labels[TRAIN_PART][:recipe.train_examples]
    x, _ = data.to_model_inputs(split.images[TRAIN_PART][:recipe.train_examples], y, classes)
    classifier = build_classifier(classes)
    _compile(classifier, recipe, len(x))
    started = time.perf_counter()
    classifier.fit(x, y, batch_size=recipe.batch_size, epochs=recipe.epochs, verbose=0,
                   callbacks=[_epoch_logger(log, recipe.epochs)])
    valid = data.Split(split.images[VALID_PART], split.labels[VALID_PART])
    info = {"recipe": recipe.to_dict(), "data_path": str(dataset.path), "train_examples": len(x),
            "train_seconds": round(time.perf_counter() - started, 1),
            "valid_accuracy": _accuracy(classifier, valid, classes) if len(valid.labels) else None,
            "test_accuracy": _accuracy(classifier, dataset.test, classes)}
    log(f"  evaluator trained in {info['train_seconds']:.0f} s: validation accuracy "
        f"{info['valid_accuracy'] or float('nan'):.2%}, test accuracy {info['test_accuracy']:.2%}")
    return classifier, info


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


def _accuracy(classifier, split: data.Split, num_classes: int) -> float:
    x, _ = data.to_model_inputs(split.images, split.labels, num_classes)
    forward = _compiled(classifier)
    logits = np.concatenate([np.asarray(forward(x[i:i + PREDICT_BATCH]))
                             for i in range(0, len(x), PREDICT_BATCH)])
    return float(np.mean(logits.argmax(axis=1) == split.labels))


# --- the sets that are measured and compared -------------------------------------------


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
            raise UserError(f"the data has no image of class {c}; use the full {FULL_TRAIN_SIZE:,}"
                            "-image MNIST file")
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
    valid = dataset.train.images[VALID_PART]
    pick = np.sort(rng.choice(len(valid), min(PARZEN_VALID_EXAMPLES, len(valid)), replace=False))
    return Reference(features, test.labels[idx], _pixels(valid[pick]), _pixels(test.images))


def real_images(dataset: data.Dataset, n_per_class: int, rng: np.random.Generator):
    """The real-data row's stand-in for samples: training images from train[0:50000]."""
    labels = dataset.train.labels[TRAIN_PART]
    idx = balanced_indices(labels, n_per_class, dataset.num_classes, rng)
    x, _ = data.to_model_inputs(dataset.train.images[TRAIN_PART][idx], labels[idx],
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


def require_full_training_set(dataset: data.Dataset) -> None:
    """cgan-eval's splits need MNIST's 60,000 training images."""
    if len(dataset.train.images) < FULL_TRAIN_SIZE:
        raise UserError(f"{dataset.path} has {len(dataset.train.images):,} training images; "
                        f"cgan-eval needs the full {FULL_TRAIN_SIZE:,} (train[0:50000] for the "
                        "evaluator, train[50000:60000] for the Parzen window): "
                        "pass --data-dir with Keras's full mnist.npz")


def evaluate(generator, dataset: data.Dataset, n_per_class: int = 1000, seed: int = 0, *,
             evaluator: Evaluator, parzen: bool = True, real: bool = True,
             log=lambda line: None) -> dict:
    """Measure ``n_per_class`` samples of each class, and the same count of real training
    images as a reference row; return a plain dict (JSON-ready).

    ``parzen=False`` skips the slow Parzen estimate, ``real=False`` the real-data row.
    """
    require_full_training_set(dataset)
    classes = dataset.num_classes
    rng = evaluation_rng(seed)
    log("measuring: the real test reference")
    reference = build_reference(dataset, evaluator, n_per_class, rng, parzen)
    log(f"measuring: {n_per_class * classes:,} samples")
    columns = {"generator": measure(*generate.sample(generator, range(classes), n_per_class, seed),
                                    evaluator, reference, classes)}
    if real:
        log(f"measuring: {n_per_class * classes:,} real training images (the reference row)")
        columns["real"] = measure(*real_images(dataset, n_per_class, rng), evaluator, reference,
                                  classes)
    return {"dataset": dataset.name, "data_path": str(dataset.path), "n_per_class": n_per_class,
            "samples": n_per_class * classes, "seed": seed,
            "evaluator": _evaluator_summary(evaluator),
            "reference": _reference_summary(reference, n_per_class),
            **columns,
            "paper_parzen": [{"model": m, "mean": v, "standard_error": e}
                             for m, v, e in PAPER_PARZEN]}


def _evaluator_summary(evaluator: Evaluator) -> dict:
    return {"test_accuracy": evaluator.test_accuracy, "target_accuracy": TARGET_ACCURACY,
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


# --- the report --------------------------------------------------------------------------


def _percent(value) -> str:
    return f"{100 * value:.2f}%"


def _number(value) -> str:
    return f"{value:.3f}"


REPORT_ROWS = (  # key in a column of evaluate()'s result, label, format
    ("conditional_accuracy", "conditional accuracy", _percent),
    ("frechet_distance", "Fréchet distance (evaluator features)", _number),
    ("frechet_distance_class_mean", "Fréchet distance, mean over digits", _number),
    ("classifier_score", "classifier score (1..10)", _number),
    ("precision", f"precision (k={NEIGHBOURS})", _number),
    ("recall", f"recall (k={NEIGHBOURS})", _number),
)


def _report_rows(result: dict) -> list[tuple[str, list[str]]]:
    columns = [result[c] for c in ("generator", "real") if c in result]
    rows = [(label, [fmt(col[key]) for col in columns]) for key, label, fmt in REPORT_ROWS]
    if "parzen_log_likelihood" in columns[0]:
        rows.append(("Parzen log-likelihood (nats)",
                     [f"{c['parzen_log_likelihood']:.1f} ± {c['parzen_standard_error']:.1f}"
                      for c in columns]))
        rows.append(("Parzen sigma", [f"{c['parzen_sigma']:.3f}" for c in columns]))
    for digit in range(len(columns[0]["per_class_accuracy"])):
        rows.append((f"  accuracy of digit {digit}",
                     [_percent(c["per_class_accuracy"][digit]) for c in columns]))
    return rows


def format_report(result: dict) -> str:
    """The evaluator's accuracy, what was compared, and a table: metric x (generator, real)."""
    ev, ref = result["evaluator"], result["reference"]
    below = "" if ev["test_accuracy"] >= ev["target_accuracy"] else "  (BELOW the target)"
    lines = [f"evaluator: test accuracy {_percent(ev['test_accuracy'])} "
             f"(target {_percent(ev['target_accuracy'])}){below}; {ev['path']}",
             f"samples: {result['n_per_class']:,} per digit ({result['samples']:,}), seed "
             f"{result['seed']}; compared with {ref['test_images_per_class']:,} test images per "
             "digit; real data: as many training images from train[0:50000]"]
    if "parzen_test_examples" in ref:
        lines.append(f"Parzen window: sigma from 10 values in [0.1, 1] chosen on "
                     f"{ref['parzen_valid_examples']:,} validation images (train[50000:60000]); "
                     f"log-likelihood of the {ref['parzen_test_examples']:,} test images")
    header = ["metric", "generator"] + (["real data"] if "real" in result else [])
    rows = _report_rows(result)
    width = max(len(label) for label, _ in rows) + 2
    cell = max(14, *(len(v) + 2 for _, values in rows for v in values))
    lines.append("")
    lines.append(header[0].ljust(width) + "".join(h.rjust(cell) for h in header[1:]))
    lines += [label.ljust(width) + "".join(v.rjust(cell) for v in values)
              for label, values in rows]
    if "parzen_test_examples" in ref:
        lines.append("")
        lines.append("Parzen, Mirza & Osindero (2014) Table 1: " + "; ".join(
            f"{m['model']} {m['mean']:g} ± {m['standard_error']:g}"
            for m in result["paper_parzen"]))
    return "\n".join(lines)


# --- cgan-eval, start to end ------------------------------------------------------------


@dataclass(frozen=True)
class EvalRequest:
    model: Path
    n_per_class: int
    seed: int
    json: Path | None
    confusion_png: Path
    data_dir: str | None = None
    dataset: str = "mnist"


def run(request: EvalRequest, log=print) -> tuple[dict, list[Path]]:
    """Load (failing fast on a bad model), measure, write the heat map and the JSON."""
    generator = generate.load_generator(request.model)
    dataset = data.load(request.dataset, request.data_dir)
    require_full_training_set(dataset)
    evaluator = load_or_train(dataset, log=log)
    result = evaluate(generator, dataset, request.n_per_class, request.seed,
                      evaluator=evaluator, log=log)
    written = [outputs.plot_confusion(request.confusion_png, result["generator"]["confusion"])]
    if request.json is not None:
        written.append(outputs.write_json(request.json, result))
    return result, written


# --- during training ----------------------------------------------------------------------


class QualityTracker:
    """cgan-train --eval-interval: a quick quality check every K epochs.

    Quick: ``QUICK_PER_CLASS`` samples per class from the same noise each time
    (so epochs compare), no Parzen estimate and no real-data row. The rows go
    to quality.csv and plots/quality.png, both rewritten whole each time.
    """

    def __init__(self, evaluator: Evaluator, dataset: data.Dataset, csv_path: Path,
                 plot_path: Path, seed: int, log=print, n_per_class: int = QUICK_PER_CLASS):
        self.evaluator, self.csv_path, self.plot_path = evaluator, csv_path, plot_path
        self.seed, self.log, self.n_per_class = seed, log, n_per_class
        self.num_classes = dataset.num_classes
        rng = evaluation_rng(seed)
        self.reference = build_reference(dataset, evaluator, n_per_class, rng, parzen=False)
        self.rows: list[dict] = []
        log(f"quality every few epochs: evaluator test accuracy {_percent(evaluator.test_accuracy)}"
            f", {n_per_class} samples per digit")

    def resume(self, completed_epochs: int) -> None:
        """Keep the rows of epochs that the restored checkpoint has completed."""
        if self.csv_path.exists():
            self.rows = [r for r in outputs.read_quality(self.csv_path)
                         if r["epoch"] <= completed_epochs]

    def record(self, epoch: int, step: int, generator) -> dict:
        images, labels = generate.sample(generator, range(self.num_classes), self.n_per_class,
                                         self.seed)
        measured = measure(images, labels, self.evaluator, self.reference, self.num_classes)
        row = {"epoch": epoch, "step": step,
               **{k: measured[k] for k in outputs.QUALITY_FIELDS[2:]}}
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        outputs.write_quality(self.csv_path, self.rows)
        outputs.plot_quality(self.plot_path, self.rows)
        self.log(f"quality {epoch:>3}: conditional accuracy {_percent(row['conditional_accuracy'])}"
                 f"  Fréchet {row['frechet_distance']:.3f}  classifier score "
                 f"{row['classifier_score']:.2f}  precision {row['precision']:.3f}  "
                 f"recall {row['recall']:.3f}")
        return row
