"""Shared fixtures: the real MNIST file, tiny slices of it, and a tiny trained run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]


def _find_mnist() -> Path:
    candidates = [os.environ.get("CGAN_DATA_DIR"), REPO.parent / "shared" / "data"]
    for folder in candidates:
        if folder and (Path(folder) / "mnist.npz").is_file():
            return Path(folder) / "mnist.npz"
    raise FileNotFoundError("tests need the real mnist.npz: set CGAN_DATA_DIR to its folder "
                            "(CI uses ../shared/data)")


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    return _find_mnist()


@pytest.fixture(scope="session")
def mnist(mnist_path):
    from cgan_mnist import data

    return data.load_npz(mnist_path)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory, mnist) -> Path:
    """A data folder holding mnist.npz with the first 1024 train and 256 test images."""
    folder = tmp_path_factory.mktemp("tiny_data")
    np.savez(folder / "mnist.npz",
             x_train=mnist.train.images[:1024], y_train=mnist.train.labels[:1024].astype(np.uint8),
             x_test=mnist.test.images[:256], y_test=mnist.test.labels[:256].astype(np.uint8))
    return folder


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_data_dir) -> Path:
    """A real 2-epoch cgan-train run (dcgan, 256 images), shared by the read-only tests."""
    from cgan_mnist.config import validate_train_options
    from cgan_mnist.training import train

    outdir = tmp_path_factory.mktemp("run")
    cfg = validate_train_options({"epochs": 2, "limit": 256, "batch_size": 32, "seed": 3,
                                  "outdir": str(outdir), "data_dir": str(tiny_data_dir),
                                  "checkpoint_interval": 1, "xla": False})
    train(cfg, log=lambda line: None, progress=False)
    return outdir


@pytest.fixture(scope="session")
def tiny_evaluator(tmp_path_factory, mnist):
    """A rough evaluator (about 90% accurate) trained in seconds on 5,000 training images,
    its accuracy measured on 2,000 test images; cached in a tmp folder."""
    from cgan_mnist import data, evaluation

    small = data.Dataset(mnist.name, mnist.path, data.Split(mnist.train.images[:5000],
                                                            mnist.train.labels[:5000]),
                         data.Split(mnist.test.images[:2000], mnist.test.labels[:2000]))
    recipe = evaluation.Recipe(train_examples=5000, epochs=2, batch_size=32, learning_rate=2e-3)
    return evaluation.load_or_train(small, recipe=recipe, log=lambda line: None,
                                    cache=tmp_path_factory.mktemp("evaluator_cache"))


def synthetic_digits(n: int, seed: int = 0, num_classes: int = 10):
    """``n`` made-up labelled 28x28 uint8 images: class c is a bright bar at a place of its
    own, with noise. Distinct enough to learn and to classify in seconds."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        row, col = 3 + 2 * (c % 10), 4 + (c // 10) * 3
        images[i, row:row + 3, col:col + 20] = 255 - rng.integers(0, 30)
    return images, labels.astype(np.uint8)


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> Path:
    """A data folder whose mnist.npz (Keras's layout) holds made-up digits: 512 training and
    128 test images. What the tests use where the real data is not the point."""
    folder = tmp_path_factory.mktemp("synthetic")
    (x_train, y_train), (x_test, y_test) = synthetic_digits(512, 0), synthetic_digits(128, 1)
    np.savez(folder / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return folder


@pytest.fixture(scope="session")
def synthetic_npz(synthetic_data_dir) -> Path:
    """The same made-up digits as a user's own .npz (``--dataset PATH``)."""
    return synthetic_data_dir / "mnist.npz"
