"""Finding, checking and feeding the training data.

Three kinds of ``--dataset``, all read by ``load`` into one ``Dataset``:

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

The class count and the class names come from the data. Finding and checking
the files is plain NumPy; only ``EpochFeeder`` needs TensorFlow.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
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
FASHION_FILES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
                 "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
FASHION_SUBDIR = "fashion-mnist"  # Keras's cache folder name, also tried inside data folders
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian: dataset-fashion-mnist
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
    path: Path            # the file (mnist, .npz) or the folder of the IDX files
    train: Split
    test: Split | None    # None: a user's .npz without x_test/y_test
    num_classes: int = NUM_CLASSES
    class_names: tuple[str, ...] = DIGIT_NAMES


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


def is_npz_path(dataset: str) -> bool:
    """A ``--dataset`` value that names a user's own .npz rather than a known dataset."""
    return dataset not in DATASETS and dataset.lower().endswith(".npz")


def load(dataset: str, data_dir: str | None = None, *, download: bool = True) -> Dataset:
    """The dataset named by ``--dataset``, found, read and checked (the one entry point)."""
    if dataset == "fashion_mnist":
        return load_fashion(locate_fashion(data_dir, download=download))
    if is_npz_path(dataset):
        return load_custom_npz(Path(dataset).expanduser(), name=dataset)
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)} "
                        "or the path of a .npz file")
    return load_npz(locate(dataset, data_dir, download=download), dataset)


# --- Fashion-MNIST: four IDX files ------------------------------------------------

_HOW_TO_PROVIDE_FASHION = (
    f"install Debian's dataset-fashion-mnist (files in {FASHION_SYSTEM_DIR}), or put "
    f"{', '.join(FASHION_FILES.values())} in a folder and pass --data-dir DIR or set "
    f"{DATA_ENV_VAR}=DIR"
)


def fashion_candidate_dirs(data_dir: str | None = None,
                           environ: dict | None = None) -> list[tuple[Path, bool]]:
    """Folders that may hold the Fashion-MNIST files, in priority order.

    Each comes with ``explicit``: a folder the user named (``--data-dir``,
    ``$CGAN_DATA_DIR``), where a partial set of files is an error rather than
    a reason to look elsewhere.
    """
    environ = os.environ if environ is None else environ
    folders: list[tuple[Path, bool]] = []
    for named in (data_dir, environ.get(DATA_ENV_VAR)):
        if named:
            folders += [(Path(named).expanduser(), True),
                        (Path(named).expanduser() / FASHION_SUBDIR, True)]
    folders += [(FASHION_SYSTEM_DIR, False),
                (Path.home() / ".keras" / "datasets" / FASHION_SUBDIR, False)]
    return folders


def locate_fashion(data_dir: str | None = None, *, download: bool = True,
                   environ: dict | None = None) -> Path:
    """The folder holding all four Fashion-MNIST files, downloading them as a last resort."""
    candidates = fashion_candidate_dirs(data_dir, environ)
    for folder, explicit in candidates:
        present = [name for name in FASHION_FILES.values() if (folder / name).is_file()]
        if len(present) == len(FASHION_FILES):
            return folder
        if present and explicit:
            missing = [name for name in FASHION_FILES.values() if name not in present]
            raise UserError(f"{folder} holds {', '.join(present)} but lacks "
                            f"{', '.join(missing)}; add the missing files "
                            "(Fashion-MNIST needs all four)")
    if data_dir is not None:
        raise UserError(f"no Fashion-MNIST files in {Path(data_dir).expanduser()} "
                        f"(or its {FASHION_SUBDIR}/ subfolder); {_HOW_TO_PROVIDE_FASHION}")
    if download:
        downloaded = _keras_download_fashion()
        if downloaded is not None:
            return downloaded
    searched = ", ".join(str(folder) for folder, _ in candidates)
    raise UserError(f"no fashion_mnist data found (looked in {searched}; download failed); "
                    f"{_HOW_TO_PROVIDE_FASHION}")


def _keras_download_fashion() -> Path | None:
    """Keras's own download into its cache; None when offline."""
    import keras  # heavy; only needed on this last-resort path

    try:
        keras.datasets.fashion_mnist.load_data()
    except Exception:  # noqa: BLE001 - offline or blocked: any failure means "not available"
        return None
    folder = Path.home() / ".keras" / "datasets" / FASHION_SUBDIR
    return folder if all((folder / n).is_file() for n in FASHION_FILES.values()) else None


def load_fashion(folder: Path) -> Dataset:
    """Read and check the four Fashion-MNIST IDX files in ``folder``."""
    from .idx import read_idx

    fix = ("replace it with a complete copy (reinstall dataset-fashion-mnist, or delete it "
           "so that Keras downloads it again)")
    arrays = {key: read_idx(folder / name, fix) for key, name in FASHION_FILES.items()}

    def bad(problem: str) -> UserError:
        return UserError(f"{folder}: {problem}; {fix}")

    splits = [_check_split(arrays, part, NUM_CLASSES, bad) for part in ("train", "test")]
    return Dataset("fashion_mnist", folder, *splits, num_classes=NUM_CLASSES,
                   class_names=FASHION_NAMES)


# --- a user's own .npz -------------------------------------------------------------

_HOW_TO_MAKE_NPZ = (
    "save x_train as uint8 (N, 28, 28) and y_train as integer labels 0..K-1 with numpy.savez "
    "(x_test, y_test and class_names, a str array of K names, are optional)"
)


def load_custom_npz(path: Path, name: str | None = None) -> Dataset:
    """Read and check a user's labelled .npz; the classes are 0..max label (or class_names)."""
    def bad(problem: str) -> UserError:
        return UserError(f"{path}: {problem}; {_HOW_TO_MAKE_NPZ}")

    if not path.is_file():
        raise UserError(f"--dataset {path}: no such file; give the path of an existing .npz "
                        f"({_HOW_TO_MAKE_NPZ})")
    arrays = _read_npz_arrays(path, bad)
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise bad(f"missing arrays {', '.join(missing)}")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise bad("has only one of x_test and y_test; give both or neither")
    parts = ["train", "test"] if "x_test" in arrays else ["train"]
    names = _class_names(arrays, bad)
    num_classes = len(names) if names else _max_label(arrays, parts, bad) + 1
    if num_classes > MAX_CLASSES:
        raise bad(f"{num_classes} classes; at most {MAX_CLASSES} are supported")
    splits = [_check_split(arrays, part, num_classes, bad) for part in parts]
    return Dataset(name or str(path), path, splits[0], splits[1] if len(splits) > 1 else None,
                   num_classes=num_classes,
                   class_names=names or tuple(str(c) for c in range(num_classes)))


def _read_npz_arrays(path: Path, bad) -> dict:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {}
            for key in npz.files:
                try:
                    arrays[key] = npz[key]
                except ValueError as err:
                    if "allow_pickle" in str(err):  # an object array, e.g. a list of mixed types
                        raise bad(f"array {key} holds Python objects, not plain numbers or "
                                  "strings") from None
                    raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise bad(f"cannot read it as .npz ({type(err).__name__}: {err})") from None
    return arrays


def _class_names(arrays: dict, bad) -> tuple[str, ...] | None:
    if "class_names" not in arrays:
        return None
    raw = arrays["class_names"]
    if raw.ndim != 1 or raw.dtype.kind not in "US" or len(raw) == 0:
        raise bad(f"class_names is {raw.dtype} {raw.shape}, expected a non-empty 1-D str array")
    names = tuple((n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)).strip()
                  for n in raw.tolist())
    keys = [normalize_class_name(n) for n in names]
    if "" in keys or len(set(keys)) != len(keys):
        raise bad("class_names has empty or repeated names (ignoring case, '_' and spaces)")
    if "all" in keys:
        raise bad("class_names may not contain 'all' (cgan-generate --digit all means every class)")
    return names


def _max_label(arrays: dict, parts: list[str], bad) -> int:
    top = 0
    for part in parts:
        y = arrays[f"y_{part}"]
        if not np.issubdtype(y.dtype, np.integer):
            raise bad(f"y_{part} is {y.dtype}, expected integer labels")
        if y.size:
            top = max(top, int(y.max()))
    return top


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
