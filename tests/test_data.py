from pathlib import Path

import numpy as np
import pytest

from cgan_mnist import data, sources
from cgan_mnist.errors import UserError


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def _good_arrays(n=64):
    rng = np.random.default_rng(0)
    return dict(x_train=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                y_train=np.arange(n, dtype=np.uint8) % 10,
                x_test=rng.integers(0, 256, (16, 28, 28), dtype=np.uint8),
                y_test=np.arange(16, dtype=np.uint8) % 10)


@pytest.mark.slow
def test_real_mnist_loads(mnist):
    assert mnist.train.images.shape == (60000, 28, 28)
    assert mnist.test.images.shape == (10000, 28, 28)
    assert set(np.unique(mnist.train.labels)) == set(range(10))


def test_lookup_order_data_dir_then_env_then_cache(tmp_path, monkeypatch):
    flag_dir, env_dir, home = tmp_path / "flag", tmp_path / "env", tmp_path / "home"
    for folder in (flag_dir, env_dir, home / ".keras" / "datasets"):
        folder.mkdir(parents=True)
        _write(folder / "mnist.npz", **_good_arrays())
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv(data.DATA_ENV_VAR, str(env_dir))
    assert sources.locate("mnist", str(flag_dir), download=False) == flag_dir / "mnist.npz"
    assert sources.locate("mnist", None, download=False) == env_dir / "mnist.npz"
    monkeypatch.delenv(data.DATA_ENV_VAR)
    assert sources.locate("mnist", None, download=False) == home / ".keras/datasets/mnist.npz"


def test_no_data_anywhere_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    with pytest.raises(UserError, match="--data-dir DIR or set CGAN_DATA_DIR"):
        sources.locate("mnist", None, download=False)
    with pytest.raises(UserError, match="not found"):
        sources.locate("mnist", str(tmp_path / "nowhere"), download=False)


@pytest.mark.parametrize("change, problem", [
    (lambda a: a.pop("y_test"), "missing arrays y_test"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), "expected uint8"),
    (lambda a: a.update(x_train=a["x_train"][:, :20]), "expected uint8"),
    (lambda a: a.update(y_train=a["y_train"][:10]), "integer labels"),
    (lambda a: a.update(y_train=a["y_train"] + 5), "labels outside 0..9"),
])
def test_wrong_layout_is_named(tmp_path, change, problem):
    arrays = _good_arrays()
    change(arrays)
    path = _write(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(UserError, match=problem):
        sources.load_npz(path)


def test_truncated_or_garbage_file_is_reported(tmp_path):
    path = _write(tmp_path / "mnist.npz", **_good_arrays())
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(UserError, match="cannot read it as .npz"):
        sources.load_npz(path)
    path.write_text("not a zip file")
    with pytest.raises(UserError, match="cannot read it as .npz"):
        sources.load_npz(path)


def test_model_inputs_scaled_to_tanh_range_and_one_hot():
    x, y = data.to_model_inputs(np.array([[[0, 255]]], np.uint8), np.array([3]), 10)
    assert x.shape == (1, 1, 2, 1) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert y.tolist() == [[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]]


def test_feeder_keeps_pairs_together_and_reshuffles_per_epoch(tiny_data):
    feeder = data.EpochFeeder(tiny_data.train, 10, batch_size=32, seed=5, limit=200)
    assert feeder.steps_per_epoch == 6  # 200 // 32, last partial batch dropped
    batches = list(feeder.epoch(1))
    assert len(batches) == 6
    images, labels = (np.concatenate([np.asarray(b[i]) for b in batches]) for i in (0, 1))
    assert images.shape == (192, 28, 28, 1) and labels.shape == (192, 10)
    assert images.min() >= -1 and images.max() <= 1
    # Every (image, label) pair is one of the first 200 training pairs.
    train = tiny_data.train
    originals = {train.images[i].tobytes(): train.labels[i] for i in range(200)}
    assert len(originals) == 200, "the check needs 200 different images"
    as_uint8 = np.rint((images[..., 0] + 1) * 127.5).astype(np.uint8)
    for image, onehot in zip(as_uint8, labels):
        assert originals[image.tobytes()] == onehot.argmax()
    first = [np.asarray(b[1]).argmax(1).tolist() for b in batches]
    again = [np.asarray(b[1]).argmax(1).tolist() for b in feeder.epoch(1)]
    other = [np.asarray(b[1]).argmax(1).tolist() for b in feeder.epoch(2)]
    assert first == again and first != other


@pytest.mark.slow  # a second pytest process: about 6 s
def test_without_the_real_data_its_tests_skip_in_one_line(tmp_path):
    """Without mnist.npz the suite used to give 52 errors with 1,000-line tracebacks."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "CGAN_TEST_NO_REAL_DATA": "1", "CGAN_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-n0", "-p",
                             "no:cacheprovider", f"{__file__}::test_real_mnist_loads"],
                            env=env, capture_output=True,
                            text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "error" not in result.stdout.lower()
    assert "needs the real mnist.npz: set CGAN_DATA_DIR to its folder" in result.stdout


def _label_counts(order, labels, batch_size, num_classes=10):
    batches = order[:len(order) // batch_size * batch_size].reshape(-1, batch_size)
    return np.stack([np.bincount(labels[batch], minlength=num_classes) for batch in batches])


@pytest.mark.parametrize("batch_size", [10, 30, 64])
def test_balanced_batches_hold_each_class_equally_often(tiny_data, batch_size):
    """--balanced-batches: label counts within a batch differ by at most 1, on data whose
    classes are not equally large; the epoch keeps its length."""
    labels = tiny_data.train.labels[:500].copy()
    labels[labels == 3] = 7  # class 3 gone, class 7 twice as large as the others
    feeder = data.EpochFeeder(data.Split(tiny_data.train.images[:500], labels), 10, batch_size,
                              seed=4, balanced=True)
    order = feeder.order(1)
    assert len(order) == 500 and feeder.steps_per_epoch == 500 // batch_size
    counts = _label_counts(order, labels, batch_size)
    present = [c for c in range(10) if c != 3]
    assert (counts[:, present].max(axis=1) - counts[:, present].min(axis=1)).max() <= 1
    assert counts[:, 3].sum() == 0
    plain = data.EpochFeeder(data.Split(tiny_data.train.images[:500], labels), 10, batch_size,
                             seed=4)
    plain_counts = _label_counts(plain.order(1), labels, batch_size)[:, present]
    assert (plain_counts.max(axis=1) - plain_counts.min(axis=1)).max() > 1, "shuffling is not"


def test_balanced_order_is_a_function_of_seed_and_epoch(tiny_data):
    def order(seed, epoch, balanced=True):
        return data.EpochFeeder(tiny_data.train, 10, 32, seed=seed, limit=300,
                                balanced=balanced).order(epoch)

    first = order(1, 1)
    np.testing.assert_array_equal(first, order(1, 1))
    assert not np.array_equal(first, order(1, 2)) and not np.array_equal(first, order(2, 1))
    labels = tiny_data.train.labels[:300]
    assert np.bincount(labels[first], minlength=10).tolist() == [30] * 10
    # Without the option, the order is the plain permutation it always was.
    np.testing.assert_array_equal(order(1, 1, balanced=False),
                                  np.random.default_rng([1, 1]).permutation(300))
    images, batch_labels = next(iter(data.EpochFeeder(tiny_data.train, 10, 20, seed=1, limit=300,
                                                      balanced=True).epoch(1)))
    assert sorted(np.argmax(batch_labels.numpy(), axis=1).tolist()) == sorted(list(range(10)) * 2)
