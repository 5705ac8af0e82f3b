"""The training data: what a dataset is, where it came from, and feeding it to a run.

Three kinds of ``--dataset``, all read by ``load`` into one ``Dataset``
(``sources`` finds and checks the files):

* ``mnist``: ``mnist.npz`` (Keras's layout: x_train, y_train, x_test, y_test,
  uint8), looked up in ``--data-dir``, ``$CGAN_DATA_DIR``, Keras's cache
  (``~/.keras/datasets``), then Keras's own download.
* ``fashion_mnist``: the four IDX ``.gz`` files of Fashion-MNIST, looked up in
  ``--data-dir``, ``$CGAN_DATA_DIR`` (each also in its ``fashion-mnist/``
  subfolder), Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist``), Keras's cache
  (``~/.keras/datasets/fashion-mnist``), then Keras's own download.
* the path of a user's own ``.npz``: ``x_train`` uint8 (N, 28, 28) and
  ``y_train`` integer labels; ``x_test``/``y_test`` and ``class_names`` optional.

A ``Dataset`` carries its identity: name, source path, class names, whether
it has a test split, and a fingerprint of its content, which a run records
so that a resume on other data is refused and a cached evaluator is matched
to the data it was trained on. Only ``EpochFeeder`` needs TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import UserError

DATASETS = ("mnist", "fashion_mnist")  # plus the path of any .npz (see is_npz_path)
DATA_ENV_VAR = "CGAN_DATA_DIR"
NUM_CLASSES = 10
MAX_CLASSES = 100  # a user's .npz: more would make the one-hot inputs and grids unwieldy
DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64 in 0..num_classes-1


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path            # the file (mnist, .npz) or the folder of the IDX files
    train: Split
    test: Split | None    # None: a user's .npz without x_test/y_test
    num_classes: int = NUM_CLASSES
    class_names: tuple[str, ...] = DIGIT_NAMES

    @property
    def has_test(self) -> bool:
        return self.test is not None

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the content (images, labels, class names), whatever the file format."""
        digest = hashlib.sha256(repr((self.num_classes, self.class_names)).encode())
        for split in (self.train, self.test):
            if split is not None:
                for array in (split.images, split.labels.astype(np.int64)):
                    digest.update(repr(array.shape).encode())
                    digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def identity(self) -> dict:
        """What a run records of its data (config.json's run.data)."""
        return {"name": self.name, "path": str(self.path), "fingerprint": self.fingerprint,
                "num_classes": self.num_classes, "class_names": list(self.class_names),
                "train_examples": len(self.train.labels), "has_test": self.has_test,
                "image_shape": [28, 28, 1]}


def load_recorded(dataset: str, recorded_path: str | None, data_dir: str | None = None) -> Dataset:
    """The data a run recorded: where --data-dir or $CGAN_DATA_DIR say, else where the run
    found it (so ``--resume`` and ``cgan-eval`` work from a new shell), else the usual lookup."""
    if (data_dir is None and recorded_path and not os.environ.get(DATA_ENV_VAR)
            and not is_npz_path(dataset)):
        recorded = Path(recorded_path)
        if not recorded.exists():
            raise UserError(f"the run's data {recorded} is gone; pass --data-dir with the folder "
                            f"that now holds it (or set {DATA_ENV_VAR})")
        data_dir = str(recorded if recorded.is_dir() else recorded.parent)
    return load(dataset, data_dir)


def is_npz_path(dataset: str) -> bool:
    """A ``--dataset`` value that names a user's own .npz rather than a known dataset."""
    return dataset not in DATASETS and dataset.lower().endswith(".npz")


def load(dataset: str, data_dir: str | None = None, *, download: bool = True) -> Dataset:
    """The dataset named by ``--dataset``, found, read and checked (the one entry point)."""
    from . import sources

    if dataset == "fashion_mnist":
        return sources.load_fashion(sources.locate_fashion(data_dir, download=download))
    if is_npz_path(dataset):
        return sources.load_custom_npz(Path(dataset).expanduser(), name=dataset)
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)} "
                        "or the path of a .npz file")
    return sources.load_npz(sources.locate(dataset, data_dir, download=download), dataset)


def normalize_class_name(name: str) -> str:
    """How class names are compared: case-insensitive, '_' and '-' as spaces, spaces collapsed."""
    return " ".join(str(name).lower().replace("_", " ").replace("-", " ").split())


def to_model_inputs(images: np.ndarray, labels: np.ndarray, num_classes: int):
    """uint8 images -> float32 (N, 28, 28, 1) in [-1, 1]; int labels -> float32 one-hot."""
    x = images.astype(np.float32)[..., None] / 127.5 - 1.0
    y = np.eye(num_classes, dtype=np.float32)[labels]
    return x, y


class EpochFeeder:
    """Feeds epochs of shuffled, batched (image, one-hot label) pairs.

    The images are converted to float tensors once. Each epoch's order is a
    permutation seeded by (seed, epoch), so it is fixed by the run's seed alone
    and a resumed run sees the same batches. Images and labels are gathered
    with the same indices, so they are never shuffled apart. The last partial
    batch is dropped: every step has the same shape and the compiled step is
    traced once. With ``balanced``, the order is ``balanced_order`` instead.
    """

    def __init__(self, split: Split, num_classes: int, batch_size: int, *, seed: int,
                 limit: int | None = None, balanced: bool = False):
        import tensorflow as tf

        x, y = to_model_inputs(split.images[:limit], split.labels[:limit], num_classes)
        self._images, self._labels = tf.constant(x), tf.constant(y)
        self._classes = np.asarray(split.labels[:limit]) if balanced else None
        self.num_examples = len(x)
        self.batch_size = batch_size
        self.steps_per_epoch = self.num_examples // batch_size
        self.seed = seed

    def order(self, epoch: int) -> np.ndarray:
        """The indices of the epoch's images, in the order they are fed: a function of
        (seed, epoch) alone."""
        rng = np.random.default_rng([self.seed, epoch])
        if self._classes is None:
            return rng.permutation(self.num_examples)
        return balanced_order(self._classes, rng)

    def epoch(self, epoch: int):
        import tensorflow as tf

        order = self.order(epoch)
        ds = tf.data.Dataset.from_tensor_slices(order)
        ds = ds.batch(self.batch_size, drop_remainder=True)
        ds = ds.map(lambda idx: (tf.gather(self._images, idx), tf.gather(self._labels, idx)))
        return ds.prefetch(tf.data.AUTOTUNE)


def balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As many indices as labels, the classes taking turns in one order (drawn per
    epoch), so that any run of n consecutive indices, every batch among them, holds
    each class n // K or n // K + 1 times (K: the classes present).

    Each class's images follow a permutation of their own, cycled when a class has
    fewer than its share (len(labels) / K): the epoch keeps its length, so images of
    rarer classes repeat within it, and those of commoner classes are partly left
    out, a different part each epoch.
    """
    classes = rng.permutation(np.unique(labels))
    share = -(-len(labels) // len(classes))
    table = np.stack([np.resize(rng.permutation(np.flatnonzero(labels == c)), share)
                      for c in classes])  # (K, share): row k is class k's turns
    turns = np.arange(len(labels))
    return table[turns % len(classes), turns // len(classes)]
