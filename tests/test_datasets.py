"""--dataset mnist | fashion_mnist | PATH.npz: IDX parsing, lookup, a user's own .npz, and
short real trainings on Fashion-MNIST files (made up, and the installed ones when present)
and on a tiny custom dataset."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from cgan_mnist import data, idx, outputs, sources
from cgan_mnist.config import validate_train_options
from cgan_mnist.errors import UsageError, UserError

TINY_MODEL = ["--g-width", "8", "--d-width", "8", "--latent-dim", "8", "--no-xla",
              "--batch-size", "32", "--limit", "64", "--epochs", "1", "--seed", "0"]


def write_fashion_files(folder, n_train=64, n_test=16, labels=None):
    """The four Fashion-MNIST IDX .gz files, tiny, with labels cycling through 0..9."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": (np.arange(n_train) % 10).astype(np.uint8) if labels is None else labels,
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": (np.arange(n_test) % 10).astype(np.uint8)}
    for key, name in sources.FASHION_FILES.items():
        outputs.write_bytes(folder / name, idx.write_idx(name, arrays[key]))
    return arrays


# --- the IDX format --------------------------------------------------------------------


@pytest.mark.parametrize("array", [
    np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28) % 251,
    np.array([3, 1, 4, 1, 5], dtype=np.uint8),
    np.array([[-7, 70000], [1, 2]], dtype=np.int32),
    np.array([0.5, -2.25], dtype=np.float64),
])
@pytest.mark.parametrize("name", ["a-idx.gz", "a-idx"])
def test_idx_round_trip(tmp_path, array, name):
    path = outputs.write_bytes(tmp_path / name, idx.write_idx(name, array))
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    back = idx.read_idx(path)
    assert back.dtype == array.dtype.newbyteorder("=") and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_the_published_layout():
    raw = idx.write_idx("x", np.zeros((3, 28, 28), np.uint8))
    assert raw[:16] == bytes.fromhex("00000803" "00000003" "0000001c" "0000001c")
    assert len(raw) == 16 + 3 * 28 * 28


GOOD = idx.write_idx("x", np.ones((4, 28, 28), np.uint8))


@pytest.mark.parametrize("raw, problem", [
    (b"", "too short for an IDX header"),
    (b"\x00\x00", "too short for an IDX header"),
    (b"PK\x03\x04" + GOOD[4:], "not an IDX file (magic number 50 4b 03 04"),
    (b"\x00\x00\x07\x03" + GOOD[4:], "not an IDX file"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (GOOD[:10], "truncated IDX header"),
    (GOOD[:-1], "truncated: header says 4x28x28 values (3136 bytes) but only 3135"),
    (GOOD[:16], "truncated"),
    (GOOD + b"\x00\x00", "2 unexpected bytes after"),
])
def test_bad_idx_bytes_are_named(tmp_path, raw, problem):
    path = outputs.write_bytes(tmp_path / "train-images-idx3-ubyte", raw)
    with pytest.raises(UserError) as err:
        idx.read_idx(path, fix="get a good copy")
    message = str(err.value)
    assert problem in message and str(path) in message and message.endswith("get a good copy")
    assert "\n" not in message


def test_bad_gzip_is_named(tmp_path):
    compressed = gzip.compress(GOOD)
    cut = outputs.write_bytes(tmp_path / "cut.gz", compressed[: len(compressed) // 2])
    with pytest.raises(UserError, match=r"cut\.gz: truncated gzip data; replace it"):
        idx.read_idx(cut)
    fake = outputs.write_bytes(tmp_path / "fake.gz", GOOD)
    with pytest.raises(UserError, match=r"fake\.gz: not a gzip file although named \.gz"):
        idx.read_idx(fake)
    damaged = outputs.write_bytes(tmp_path / "damaged.gz",
                                  compressed[:20] + b"\xff" * 40 + compressed[60:])
    with pytest.raises(UserError, match=r"damaged\.gz: "):
        idx.read_idx(damaged)
    with pytest.raises(UserError, match=r"missing\.gz: cannot read it"):
        idx.read_idx(tmp_path / "missing.gz")


# --- Fashion-MNIST lookup ----------------------------------------------------------------


@pytest.fixture
def no_fashion_anywhere(tmp_path, monkeypatch):
    """No data folder, an empty home and no system copy: only what a test puts in place."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(sources, "FASHION_SYSTEM_DIR", tmp_path / "usr_share")
    return tmp_path


def test_fashion_lookup_order(no_fashion_anywhere, monkeypatch):
    root = no_fashion_anywhere
    places = {"flag": root / "flag", "flag_sub": root / "flag2" / "fashion-mnist",
              "env": root / "env", "system": root / "usr_share",
              "cache": root / "home" / ".keras" / "datasets" / "fashion-mnist"}
    for folder in places.values():
        write_fashion_files(folder)
    monkeypatch.setenv(data.DATA_ENV_VAR, str(places["env"]))
    assert sources.locate_fashion(str(places["flag"]), download=False) == places["flag"]
    assert sources.locate_fashion(str(root / "flag2"), download=False) == places["flag_sub"]
    assert sources.locate_fashion(None, download=False) == places["env"]
    monkeypatch.delenv(data.DATA_ENV_VAR)
    assert sources.locate_fashion(None, download=False) == places["system"]
    monkeypatch.setattr(sources, "FASHION_SYSTEM_DIR", root / "nowhere")
    assert sources.locate_fashion(None, download=False) == places["cache"]


def test_fashion_missing_or_partial_files_say_what_to_do(no_fashion_anywhere):
    root = no_fashion_anywhere
    with pytest.raises(UserError, match="no fashion_mnist data found .*dataset-fashion-mnist"):
        sources.locate_fashion(None, download=False)
    with pytest.raises(UserError, match="no Fashion-MNIST files in .*--data-dir DIR"):
        sources.locate_fashion(str(root / "empty"), download=False)
    write_fashion_files(root / "partial")
    (root / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="lacks t10k-labels-idx1-ubyte.gz; add the missing"):
        sources.locate_fashion(str(root / "partial"), download=False)


def test_fashion_loads_with_its_class_names(tmp_path):
    arrays = write_fashion_files(tmp_path)
    dataset = data.load("fashion_mnist", str(tmp_path))
    assert dataset.name == "fashion_mnist" and dataset.path == tmp_path
    assert dataset.num_classes == 10 and dataset.class_names[7] == "Sneaker"
    assert dataset.class_names[9] == "Ankle boot"
    np.testing.assert_array_equal(dataset.train.images, arrays["x_train"])
    assert dataset.train.labels.dtype == np.int64
    assert dataset.test.images.shape == (16, 28, 28)


def test_fashion_file_with_wrong_content_is_named(tmp_path):
    write_fashion_files(tmp_path, labels=np.full(64, 12, np.uint8))
    with pytest.raises(UserError, match="labels outside 0..9"):
        data.load("fashion_mnist", str(tmp_path))
    write_fashion_files(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-100]))
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte\.gz: truncated.*reinstall "
                                        "dataset-fashion-mnist"):
        data.load("fashion_mnist", str(tmp_path))


# --- a user's own .npz -------------------------------------------------------------------


def _custom(path, n=64, classes=3, **extra):
    rng = np.random.default_rng(2)
    arrays = {"x_train": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "y_train": np.arange(n) % classes, **extra}
    np.savez(path, **arrays)
    return path


def test_custom_npz_class_count_is_max_label_plus_one(tmp_path):
    dataset = data.load(str(_custom(tmp_path / "three.npz")))
    assert dataset.num_classes == 3 and dataset.class_names == ("0", "1", "2")
    assert dataset.test is None and dataset.train.images.shape == (64, 28, 28)
    assert dataset.name == str(tmp_path / "three.npz")


def test_custom_npz_with_test_split_and_class_names(tmp_path):
    path = _custom(tmp_path / "shapes.npz", classes=2,
                   x_test=np.zeros((4, 28, 28), np.uint8), y_test=np.array([0, 1, 2, 2]),
                   class_names=np.array(["circle", "square", "Cross_Mark"]))
    dataset = data.load(str(path))
    assert dataset.num_classes == 3, "class_names, not the labels, fix the count"
    assert dataset.class_names == ("circle", "square", "Cross_Mark")
    assert dataset.test.labels.tolist() == [0, 1, 2, 2]


@pytest.mark.parametrize("extra, problem", [
    ({"y_train": np.arange(64) - 1}, "labels outside 0..62"),
    ({"y_train": np.arange(64) * 0.5}, "expected integer labels"),
    ({"x_train": np.zeros((64, 28, 27), np.uint8)}, "expected uint8 (N, 28, 28)"),
    ({"x_test": np.zeros((2, 28, 28), np.uint8)}, "only one of x_test and y_test"),
    ({"class_names": np.array(["a", "b"])}, "labels outside 0..1"),
    ({"class_names": np.array(["a", "A", "b"])}, "repeated names"),
    ({"class_names": np.array(["a", "all", "b"])}, "may not contain 'all'"),
    ({"class_names": np.array([1, 2, 3])}, "expected a non-empty 1-D str array"),
    ({"y_train": np.arange(64) * 10}, "631 classes; at most 100"),
])
def test_custom_npz_problems_are_named(tmp_path, extra, problem):
    path = _custom(tmp_path / "mine.npz", **extra)
    with pytest.raises(UserError) as err:
        data.load(str(path))
    assert problem in str(err.value) and str(path) in str(err.value)
    assert "numpy.savez" in str(err.value)


def test_custom_npz_missing_unreadable_or_holding_objects(tmp_path):
    with pytest.raises(UserError, match="no such file; give the path of an existing .npz"):
        data.load(str(tmp_path / "absent.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read it as .npz"):
        data.load(str(tmp_path / "junk.npz"))
    np.savez(tmp_path / "objects.npz", x_train=np.zeros((4, 28, 28), np.uint8),
             y_train=np.zeros(4, int), class_names=np.array(["a", 1], dtype=object))
    with pytest.raises(UserError, match="class_names holds Python objects"):
        data.load(str(tmp_path / "objects.npz"))
    np.savez(tmp_path / "nolabels.npz", x_train=np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(UserError, match="missing arrays y_train"):
        data.load(str(tmp_path / "nolabels.npz"))


def test_dataset_option_accepts_known_names_and_npz_paths_only():
    assert validate_train_options({"dataset": "fashion_mnist"}).dataset == "fashion_mnist"
    assert validate_train_options({"dataset": "not/there/yet.NPZ"}).dataset == "not/there/yet.NPZ"
    for bad in ("svhn", "mnist.npy", "fashion-mnist"):
        with pytest.raises(UsageError, match="choose one of mnist, fashion_mnist or the path"):
            validate_train_options({"dataset": bad})


def test_class_names_compare_loosely():
    assert data.normalize_class_name(" Ankle_Boot ") == data.normalize_class_name("ankle boot")
    assert data.normalize_class_name("T-shirt/top") == "t shirt/top"


# --- short real trainings ---------------------------------------------------------------


@pytest.mark.slow
def test_training_on_a_custom_npz_takes_its_classes(tmp_path, run_cli, assert_one_line_error):
    path = _custom(tmp_path / "shapes.npz", n=64, classes=3,
                   class_names=np.array(["circle", "square", "cross"]))
    outdir = tmp_path / "run"
    result = run_cli("train", *TINY_MODEL, "--dataset", path, "--outdir", outdir)
    assert result.returncode == 0, result.stderr
    stored = json.loads((outdir / "config.json").read_text())
    assert stored["dataset"] == str(path)
    assert stored["run"]["data"]["num_classes"] == 3
    assert stored["run"]["data"]["class_names"] == ["circle", "square", "cross"]
    grid = outputs.read_png(outdir / "generated" / "epoch_0001.png")
    assert grid.shape == (3 * 30 + 2, 10 * 30 + 2), "one row per class"
    made = run_cli("generate", "--digit", "Square", "--n", 4, "--outdir", outdir, "--seed", 1,
                   "--format", "npz")
    assert made.returncode == 0, made.stderr
    with np.load(outdir / "generated" / "digit_square.npz") as samples:
        assert samples["labels"].tolist() == [1] * 4
    assert_one_line_error(run_cli("generate", "--digit", "7", "--outdir", outdir), 2,
                          "--digit must be 0..2, a class name of this run (circle, square, "
                          "cross) or 'all'")


def test_missing_custom_npz_is_one_line(tmp_path, run_cli, assert_one_line_error):
    assert_one_line_error(run_cli("train", "--dataset", tmp_path / "nope.npz", "--outdir",
                                  tmp_path / "o"), 1, "nope.npz: no such file")


def _installed_fashion():
    try:
        return sources.locate_fashion(None, download=False)
    except UserError:
        return None


@pytest.fixture(params=["made_up", pytest.param("installed", marks=pytest.mark.skipif(
    _installed_fashion() is None, reason="Fashion-MNIST IDX files not found (install Debian's "
                                         "dataset-fashion-mnist, or put them in $CGAN_DATA_DIR)"))])
def fashion_files(request, synthetic_fashion_dir):
    """(--data-dir arguments, the folder they lead to): made-up files (always), or the
    installed ones, found without --data-dir."""
    if request.param == "made_up":
        return ["--data-dir", synthetic_fashion_dir], synthetic_fashion_dir
    return [], _installed_fashion()


@pytest.mark.slow
def test_short_fashion_mnist_training_and_a_sneaker(tmp_path, fashion_files, run_cli):
    data_dir_args, fashion_dir = fashion_files
    outdir = tmp_path / "fashion"
    result = run_cli("train", *TINY_MODEL, "--dataset", "fashion_mnist", "--outdir", outdir,
                     *data_dir_args)
    assert result.returncode == 0, result.stderr
    assert "on fashion_mnist" in result.stdout
    stored = json.loads((outdir / "config.json").read_text())
    assert stored["run"]["data"]["class_names"] == list(data.FASHION_NAMES)
    assert stored["run"]["data"]["path"] == str(fashion_dir)
    for spelling, file, label in (("sneaker", "digit_sneaker", 7),
                                  ("ANKLE_BOOT", "digit_ankle_boot", 9)):
        made = run_cli("generate", "--digit", spelling, "--n", 2, "--outdir", outdir,
                       "--seed", 0, "--format", "npz")
        assert made.returncode == 0, made.stderr
        with np.load(outdir / "generated" / f"{file}.npz") as samples:
            assert samples["labels"].tolist() == [label, label]
