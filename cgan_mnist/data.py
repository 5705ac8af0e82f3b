"""Finding, checking and feeding the training data.

Lookup order for ``mnist.npz`` (Keras's layout: x_train, y_train, x_test,
y_test, uint8): ``--data-dir``, ``$CGAN_DATA_DIR``, Keras's cache
(``~/.keras/datasets``), then Keras's own download. Finding and checking the
file is plain NumPy; only ``make_dataset`` needs TensorFlow.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError

DATASETS = ("mnist",)
DATA_ENV_VAR = "CGAN_DATA_DIR"
NUM_CLASSES = 10
_FILES = {"mnist": "mnist.npz"}
_HOW_TO_PROVIDE = (
    "put Keras's mnist.npz (x_train, y_train, x_test, y_test as uint8) in a folder "
    f"and pass --data-dir DIR or set {DATA_ENV_VAR}=DIR"
)


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64 in 0..num_classes-1


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path
    train: Split
    test: Split
    num_classes: int = NUM_CLASSES


def candidate_paths(dataset: str, data_dir: str | None = None,
                    environ: dict | None = None) -> list[Path]:
    """Local places to look for the dataset's file, in priority order."""
    environ = os.environ if environ is None else environ
    filename = _FILES[dataset]
    dirs = [data_dir, environ.get(DATA_ENV_VAR), Path.home() / ".keras" / "datasets"]
    return [Path(d).expanduser() / filename for d in dirs if d]


def locate(dataset: str, data_dir: str | None = None, *, download: bool = True) -> Path:
    """Path of a local copy of the dataset, downloading it as a last resort.

    An explicit ``--data-dir`` that lacks the file is an error rather than a
    reason to look elsewhere: the user asked for that folder.
    """
    paths = candidate_paths(dataset, data_dir)
    if data_dir is not None and not paths[0].is_file():
        raise UserError(f"{paths[0]} not found; {_HOW_TO_PROVIDE}")
    for path in paths:
        if path.is_file():
            return path
    if download:
        downloaded = _keras_download(dataset)
        if downloaded is not None:
            return downloaded
    searched = ", ".join(str(p) for p in paths)
    raise UserError(f"no {dataset} data found (looked in {searched}; download failed); "
                    f"{_HOW_TO_PROVIDE}")


def _keras_download(dataset: str) -> Path | None:
    """Keras's own download into its cache; None when offline."""
    import keras  # heavy; only needed on this last-resort path

    try:
        keras.datasets.mnist.load_data()
    except Exception:  # noqa: BLE001 - offline or blocked: any failure means "not available"
        return None
    path = Path.home() / ".keras" / "datasets" / _FILES[dataset]
    return path if path.is_file() else None


def load_npz(path: Path, name: str = "mnist", num_classes: int = NUM_CLASSES) -> Dataset:
    """Read and check a file in Keras's mnist.npz layout."""
    def bad(problem: str) -> UserError:
        return UserError(f"{path}: {problem}; {_HOW_TO_PROVIDE}")

    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise bad(f"cannot read it as .npz ({type(err).__name__}: {err})") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise bad(f"missing arrays {', '.join(missing)}")
    splits = [_check_split(arrays, part, num_classes, bad) for part in ("train", "test")]
    return Dataset(name, Path(path), *splits, num_classes=num_classes)


def _check_split(arrays: dict, part: str, num_classes: int, bad) -> Split:
    x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise bad(f"x_{part} is {x.dtype} {x.shape}, expected uint8 (N, 28, 28)")
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise bad(f"y_{part} is {y.dtype} {y.shape}, expected {len(x)} integer labels")
    if len(x) == 0:
        raise bad(f"x_{part} is empty")
    if y.min() < 0 or y.max() >= num_classes:
        raise bad(f"y_{part} has labels outside 0..{num_classes - 1}")
    return Split(x, y.astype(np.int64))


def load(dataset: str, data_dir: str | None = None, *, download: bool = True) -> Dataset:
    return load_npz(locate(dataset, data_dir, download=download), dataset)


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
    traced once.
    """

    def __init__(self, split: Split, num_classes: int, batch_size: int, *, seed: int,
                 limit: int | None = None):
        import tensorflow as tf

        x, y = to_model_inputs(split.images[:limit], split.labels[:limit], num_classes)
        self._images, self._labels = tf.constant(x), tf.constant(y)
        self.num_examples = len(x)
        self.batch_size = batch_size
        self.steps_per_epoch = self.num_examples // batch_size
        self.seed = seed

    def epoch(self, epoch: int):
        import tensorflow as tf

        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
        ds = tf.data.Dataset.from_tensor_slices(order)
        ds = ds.batch(self.batch_size, drop_remainder=True)
        ds = ds.map(lambda idx: (tf.gather(self._images, idx), tf.gather(self._labels, idx)))
        return ds.prefetch(tf.data.AUTOTUNE)
