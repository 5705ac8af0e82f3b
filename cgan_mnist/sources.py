"""Finding and reading dataset files: mnist.npz, Fashion-MNIST's IDX files, a user's .npz.

Plain NumPy (Keras only for its download, the last resort). Every problem
with a file is a ``UserError`` that names the file and says how to fix it.
``data.load`` is the entry point; this module is what it calls.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .data import (DATA_ENV_VAR, FASHION_NAMES, MAX_CLASSES, NUM_CLASSES, Dataset,
                   Split, normalize_class_name)
from .errors import UserError

FASHION_FILES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
                 "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
FASHION_SUBDIR = "fashion-mnist"  # Keras's cache folder name, also tried inside data folders
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian: dataset-fashion-mnist
_FILES = {"mnist": "mnist.npz"}
_HOW_TO_PROVIDE = (
    "put Keras's mnist.npz (x_train, y_train, x_test, y_test as uint8) in a folder "
    f"and pass --data-dir DIR or set {DATA_ENV_VAR}=DIR"
)


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
    except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile) as err:
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
    except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile) as err:
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


