"""Shared fixtures and helpers.

Two kinds of data:

* made-up data (``tiny_data_dir``, ``synthetic_fashion_dir``): ten classes of simple
  strokes with jitter and noise, built in a tmp folder in milliseconds. The fast
  tier (``pytest -m "not slow"``) needs nothing else.
* the real MNIST file (``mnist_path``, ``mnist``): found through ``CGAN_DATA_DIR``
  or ``../shared/data``; tests that need it skip, with one line, when it is missing.

Helpers shared by several test files are fixtures here (``run_cli``,
``assert_one_line_error``, ``load_script``), so that no test file
imports another.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
NO_REAL_DATA_ENV = "CGAN_TEST_NO_REAL_DATA"  # =1: behave as if mnist.npz were nowhere
REAL_DATA_MISSING = ("needs the real mnist.npz: set CGAN_DATA_DIR to its folder "
                     "(CI uses ../shared/data)")


@pytest.fixture(scope="session", autouse=True)
def _own_evaluator_cache(tmp_path_factory):
    """No test writes to the user's evaluator cache (~/.cache/cgan-mnist)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CGAN_CACHE_DIR", str(tmp_path_factory.mktemp("evaluator_cache")))
        yield


# --- the real data ------------------------------------------------------------------------


def _find_mnist() -> Path | None:
    if os.environ.get(NO_REAL_DATA_ENV) == "1":
        return None
    for folder in (os.environ.get("CGAN_DATA_DIR"), REPO.parent / "shared" / "data"):
        if folder and (Path(folder) / "mnist.npz").is_file():
            return Path(folder) / "mnist.npz"
    return None


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    path = _find_mnist()
    if path is None:
        pytest.skip(REAL_DATA_MISSING)
    return path


@pytest.fixture(scope="session")
def mnist(mnist_path):
    from cgan_mnist import sources

    return sources.load_npz(mnist_path)


@pytest.fixture(scope="session")
def tiny_evaluator(tmp_path_factory, mnist):
    """A rough evaluator (about 88% accurate) trained in seconds on 5,000 real training
    images (the first 6,000 less the held-out sixth), its accuracy measured on 2,000 test
    images; cached in a tmp folder."""
    from cgan_mnist import data, evaluator

    small = data.Dataset(mnist.name, mnist.path, data.Split(mnist.train.images[:6000],
                                                            mnist.train.labels[:6000]),
                         data.Split(mnist.test.images[:2000], mnist.test.labels[:2000]))
    recipe = evaluator.Recipe(train_examples=5000, epochs=2, batch_size=32, learning_rate=2e-3)
    return evaluator.load_or_train(small, recipe=recipe, log=lambda line: None,
                                    cache=tmp_path_factory.mktemp("evaluator_cache"))


# --- made-up data ---------------------------------------------------------------------------


def _stroke_templates() -> np.ndarray:
    """Ten distinct 28x28 shapes in [0, 1]: ring, bars, diagonals, plus, X, square, disc..."""
    y, x = np.mgrid[0:28, 0:28].astype(np.float64)
    r = np.hypot(y - 13.5, x - 13.5)
    inside = (x >= 5) & (x <= 22) & (y >= 5) & (y <= 22)
    vertical = (np.abs(x - 13.5) < 2) & inside
    horizontal = (np.abs(y - 13.5) < 2) & inside
    back = (np.abs(x - y) < 1.5) & inside
    forward = (np.abs(x + y - 27) < 1.5) & inside
    shapes = [
        np.abs(r - 8) < 1.5,                                          # 0 ring
        vertical,                                                     # 1 |
        horizontal,                                                   # 2 -
        back,                                                         # 3 \
        forward,                                                      # 4 /
        vertical | horizontal,                                        # 5 +
        back | forward,                                               # 6 X
        (np.maximum(np.abs(x - 13.5), np.abs(y - 13.5)) >= 7)
        & (np.maximum(np.abs(x - 13.5), np.abs(y - 13.5)) < 9),       # 7 square
        r < 5,                                                        # 8 disc
        ((np.abs(y - 8.5) < 1.5) | (np.abs(y - 18.5) < 1.5)) & inside,  # 9 =
    ]
    return np.stack(shapes).astype(np.float64)


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST-like images (uint8 (n, 28, 28), ink on a black ground) and labels
    (uint8, every class about equally often): each a shape shifted by up to 2 pixels,
    with its own brightness and noise, so that no two images are the same."""
    rng = np.random.default_rng(seed)
    templates = _stroke_templates()
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    shifts = rng.integers(-2, 3, (n, 2))
    images = np.stack([np.roll(templates[c], tuple(s), axis=(0, 1))
                       for c, s in zip(labels, shifts)])
    images *= rng.uniform(0.7, 1.0, (n, 1, 1))
    images += rng.normal(0.0, 0.1, images.shape)
    return np.rint(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8), labels


def write_synthetic_mnist(folder: Path, n_train: int = 1024, n_test: int = 256) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = synthetic_digits(n_train, seed=0)
    x_test, y_test = synthetic_digits(n_test, seed=1)
    np.savez(folder / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)
    return folder / "mnist.npz"


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """A data folder holding a made-up mnist.npz: 1024 train and 256 test images of ten
    stroke shapes (see ``synthetic_digits``), in Keras's layout."""
    folder = tmp_path_factory.mktemp("tiny_data")
    write_synthetic_mnist(folder)
    return folder


@pytest.fixture(scope="session")
def synthetic_npz(tiny_data_dir) -> Path:
    """The same made-up data as a user's own .npz (``--dataset PATH``)."""
    return tiny_data_dir / "mnist.npz"


@pytest.fixture(scope="session")
def tiny_data(tiny_data_dir):
    """``tiny_data_dir``'s mnist.npz, loaded (a ``data.Dataset``)."""
    from cgan_mnist import sources

    return sources.load_npz(tiny_data_dir / "mnist.npz")


@pytest.fixture(scope="session")
def synthetic_fashion_dir(tmp_path_factory) -> Path:
    """A folder with the four Fashion-MNIST IDX .gz files, made up: 256 train, 64 test."""
    from cgan_mnist import idx, outputs, sources

    folder = tmp_path_factory.mktemp("fashion")
    x_train, y_train = synthetic_digits(256, seed=2)
    x_test, y_test = synthetic_digits(64, seed=3)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key, name in sources.FASHION_FILES.items():
        outputs.write_bytes(folder / name, idx.write_idx(name, arrays[key]))
    return folder


@pytest.fixture(scope="session")
def trained_run_result(tmp_path_factory, tiny_data_dir):
    """``cgan-train --epochs 2 --limit 256 --batch-size 32 ...`` (dcgan, made-up data found
    through CGAN_DATA_DIR), run once in this process: (outdir, CliResult)."""
    outdir = tmp_path_factory.mktemp("run")
    result = _run_cli("train", "--epochs", 2, "--limit", 256, "--batch-size", 32, "--seed", 3,
                      "--checkpoint-interval", 1, "--no-xla", "--outdir", outdir,
                      env={"CGAN_DATA_DIR": tiny_data_dir})
    assert result.returncode == 0, result.stderr
    return outdir, result


@pytest.fixture(scope="session")
def trained_run(trained_run_result) -> Path:
    """The folder of that run, shared by tests that only read it (copy it to write)."""
    return trained_run_result[0]


# --- running the commands in this process ----------------------------------------------------


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def _run_cli(command: str, *args, env: dict | None = None) -> CliResult:
    """``cgan-<command> ARGS`` in this process: its exit code and what it printed.

    ``env`` adds environment variables for the call only. ``--help`` (SystemExit)
    gives its exit code like the real command.
    """
    from cgan_mnist import cli

    main = getattr(cli, f"{command}_main")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in (env or {}).items():
            patch.setenv(key, str(value))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exit_:
                code = exit_.code
    return CliResult(code, out.getvalue(), err.getvalue())


def _assert_one_line_error(result, code: int, *phrases: str) -> None:
    """The command failed with ``code`` and said why in one line, no traceback."""
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines()
             if line.startswith(("cgan-train", "cgan-generate", "cgan-eval"))]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli("train", "--epochs", 2, ..., env={...})`` -> CliResult (in this process)."""
    return _run_cli


@pytest.fixture(scope="session")
def assert_one_line_error():
    """``assert_one_line_error(result, code, *phrases)`` on a CliResult or CompletedProcess."""
    return _assert_one_line_error


@pytest.fixture(scope="session")
def load_script():
    """``load_script("bench_speed")``: a file of scripts/ as a module (not run as __main__)."""
    def load(name):
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


# --- tests that hold only on a CPU ------------------------------------------------------------


@functools.cache
def _visible_gpus() -> int:
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


CPU_ONLY_MARKERS = {
    "two_cpu_devices": "splits the CPU into two logical devices; with a GPU the strategy "
                       "would use the GPU instead",
    "cpu_only_determinism": "compares two trainings to within float rounding, which holds on "
                            "a CPU only (GPU kernels may reorder sums)",
}


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core this process may use, at most 4 (each worker is a
    TensorFlow process of about 1.5 GB; more than 4 gained nothing on tests this small)."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


def pytest_runtest_setup(item):
    for name, why in CPU_ONLY_MARKERS.items():
        if item.get_closest_marker(name) is not None and _visible_gpus():
            pytest.skip(f"{name}: {why}; run with CUDA_VISIBLE_DEVICES= to test it here")
