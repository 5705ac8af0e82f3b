"""Hostile input: every bad option value, file and environment variable gets one line,
a non-zero exit code, no traceback, and leaves an earlier run's files byte for byte as
they were. Each case runs the command in-process, as a user's shell would run it."""

from __future__ import annotations

import hashlib
import json
import math
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgan_mnist import cli

pytestmark = pytest.mark.slow  # the run they protect is a real (tiny) training run


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_data_dir):
    """A finished 1-epoch run on made-up digits: what every case must leave intact."""
    outdir = tmp_path_factory.mktemp("hostile") / "run"
    code = cli.train_main(["--data-dir", str(tiny_data_dir), "--epochs", "1",
                           "--batch-size", "32",
                           "--limit", "128", "--seed", "5", "--outdir", str(outdir), "--no-xla",
                           "--quiet"])
    assert code == 0
    return outdir


@pytest.fixture(scope="module")
def files(tmp_path_factory, synthetic_npz):
    """Bad files of every kind a command reads."""
    folder = tmp_path_factory.mktemp("bad_files")
    x, y = np.load(synthetic_npz)["x_train"], np.load(synthetic_npz)["y_train"]
    np.savez(folder / "ten.npz", x_train=x[:10], y_train=y[:10])
    np.savez(folder / "float.npz", x_train=x.astype(np.float32), y_train=y)
    np.savez(folder / "labels.npz", x_train=x, y_train=y.astype(np.int64) + 200)
    np.savez(folder / "nolabels.npz", x_train=x)
    np.savez(folder / "shape.npz", x_train=x[:, :20, :20], y_train=y)
    np.savez(folder / "strlabels.npz", x_train=x, y_train=np.array(["a"] * len(y)))
    np.savez(folder / "notest.npz", x_train=x, y_train=y)
    np.savez(folder / "objects.npz", x_train=np.array([x[0], "a"], dtype=object), y_train=y[:2])
    (folder / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "empty.npz").write_bytes(b"")
    (folder / "huge.npz").write_bytes(_npz_claiming_a_huge_array())
    (folder / "model.keras").write_bytes(b"PK\x03\x04 not a model")
    (folder / "text.keras").write_text("hello")
    (folder / "a_file").write_text("")
    few = folder / "few"  # the last sixth of the training split, held out, is all one class
    few.mkdir()
    order = np.argsort(y, kind="stable")[::8]
    np.savez(few / "mnist.npz", x_train=x[order], y_train=y[order], x_test=x[:50], y_test=y[:50])
    other = folder / "other_data"
    other.mkdir()
    np.savez(other / "mnist.npz", x_train=x[::-1], y_train=y[::-1], x_test=x[:50], y_test=y[:50])
    return folder


def _npz_claiming_a_huge_array() -> bytes:
    """A .npz whose x_train header declares 10^12 bytes that are not there."""
    import io
    import zipfile

    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000, 28, 28), }"
    header = header + " " * (63 - (len(header) + 10) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("x_train.npy", npy)
        z.writestr("y_train.npy", npy)
    return buffer.getvalue()


def _snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def _one_line_failure(capsys, code, prog, expected_code=None):
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert code != 0, out
    if expected_code is not None:
        assert code == expected_code, out.err
    assert "Traceback" not in out.err + out.out
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), out.err
    return lines[0]


# (command, arguments, expected exit code, a phrase of the message)
# RUN, DATA, FILES are replaced by the run's folder, the synthetic .npz and the bad files' folder.
CASES = [
    # options: NaN, infinities, zero, negatives, huge, wrong types
    ("train", "--ema nan", 2, "--ema must be a finite number"),
    ("train", "--beta1 nan", 2, "--beta1 must be a finite number"),
    ("train", "--label-smoothing nan", 2, "--label-smoothing must be a finite"),
    ("train", "--d-dropout nan", 2, "--d-dropout must be a finite"),
    ("train", "--lr inf", 2, "--lr must be a finite"),
    ("train", "--d-lr=-inf", 2, "--d-lr must be a finite"),
    ("train", "--lr -0.1", 2, "--lr must be positive"),
    ("train", "--lr 5", 2, "--lr must be at most"),
    ("train", "--ema 1", 2, "--ema must be below 1"),
    ("train", "--epochs 0", 2, "--epochs must be at least 1"),
    ("train", "--epochs -3", 2, "--epochs must be at least 1"),
    ("train", "--epochs 1e3", 2, "invalid integer"),
    ("train", "--epochs 10000000", 2, "--epochs must be at most"),
    ("train", "--batch-size 0", 2, "--batch-size must be at least 1"),
    ("train", "--batch-size 99999999999", 2, "--batch-size must be at most"),
    ("train", "--latent-dim 0", 2, "--latent-dim must be at least 1"),
    ("train", "--g-width 100000", 2, "--g-width must be at most"),
    ("train", "--batch-size 60000 --g-width 2048", 2, "GiB of memory"),
    ("train", "--limit 0", 2, "--limit must be at least 1"),
    ("train", "--sample-interval 0", 2, "--sample-interval must be at least 1"),
    ("train", "--eval-interval -1", 2, "--eval-interval must be at least 0"),
    ("train", "--seed -1", 2, "--seed must be at least 0"),
    ("train", "--seed 2147483648", 2, "--seed must be at most"),
    ("train", "--arch gan", 2, "unknown --arch"),
    ("train", "--strategy everywhere", 2, "unknown --strategy"),
    ("train", "--dataset cifar", 2, "unknown --dataset"),
    ("train", "--resume --overwrite", 2, "contradict"),
    ("train", "--r1 nan", 2, "--r1 must be a finite number"),
    ("train", "--r1 -1", 2, "--r1 must be at least 0"),
    ("train", "--lr-decay 1.5", 2, "--lr-decay must be below 1"),
    ("train", "--lr-decay=-inf", 2, "--lr-decay must be a finite"),
    ("train", "--loss l2", 2, "unknown --loss 'l2'"),
    ("train", "--loss hinge --label-smoothing 0.1", 2, "--loss hinge has none"),
    ("train", "--diffaugment flip", 2, "--diffaugment 'flip'"),
    ("train", "--diffaugment translation,translation", 2, "distinct names"),
    ("train", "--spectral-norm=yes", 2, "ignored explicit argument"),
    ("train", "--outdir RUN --resume --r1 1", 2, "--r1 1.0 differs from the run's 0.1"),
    ("train", "--outdir RUN --resume --balanced-batches", 2, "differs from the run's"),
    ("train", "--no-such-option", 2, "unrecognized arguments"),
    # the folder: holds a run, is a file, resume that would change the run
    ("train", "--outdir RUN", 1, "already holds a run"),
    ("train", "--outdir FILES/a_file", 1, "is a file"),
    ("train", "--outdir RUN --resume --arch mlp", 2, "differs from the run's"),
    ("train", "--outdir RUN --resume --batch-size 16", 2, "differs from the run's"),
    ("train", "--outdir RUN --resume --dataset DATA", 2, "differs from the run's"),
    ("train", "--outdir RUN --resume --data-dir FILES/other_data", 1,
     "is not the data this run trained on"),
    ("train", "--outdir RUN --resume --data-dir FILES/nowhere", 1, "not found"),
    # --overwrite validates before it deletes
    ("train", "--outdir RUN --overwrite --dataset typo.npz", 1, "no such file"),
    ("train", "--outdir RUN --overwrite --data-dir FILES/nowhere", 1, "not found"),
    ("train", "--outdir RUN --overwrite --dataset FILES/ten.npz", 1, "not one full batch"),
    ("train", "--outdir RUN --overwrite --ema nan", 2, "finite"),
    ("train", "--outdir RUN --overwrite --dataset DATA --batch-size 2000", 1,
     "not one full batch"),
    # data files: tiny, wrong dtype, labels, shape, types, garbage, empty, a huge header
    ("train", "--dataset FILES/ten.npz --outdir FILES/t1", 1, "not one full batch"),
    ("train", "--dataset FILES/float.npz --outdir FILES/t2", 1, "expected uint8"),
    ("train", "--dataset FILES/labels.npz --outdir FILES/t3", 1, "classes; at most"),
    ("train", "--dataset FILES/nolabels.npz --outdir FILES/t4", 1, "missing arrays y_train"),
    ("train", "--dataset FILES/shape.npz --outdir FILES/t5", 1, "expected uint8 (N, 28, 28)"),
    ("train", "--dataset FILES/strlabels.npz --outdir FILES/t6", 1, "integer labels"),
    ("train", "--dataset FILES/objects.npz --outdir FILES/t7", 1, "Python objects"),
    ("train", "--dataset FILES/garbage.npz --outdir FILES/t8", 1, "cannot read it as .npz"),
    ("train", "--dataset FILES/empty.npz --outdir FILES/t9", 1, "cannot read it as .npz"),
    ("train", "--dataset FILES/huge.npz --outdir FILES/t10", 1, "cannot read it as .npz"),
    ("train", "--dataset FILES/few/mnist.npz --eval-interval 1 --outdir FILES/t11 "
     "--batch-size 32", 1, "too few training images"),
    ("train", "--dataset FILES/notest.npz --eval-interval 1 --outdir FILES/t12", 1,
     "no test split"),
    # cgan-generate
    ("generate", "--outdir RUN --digit -1", 2, "--digit must be"),
    ("generate", "--outdir RUN --digit=-7", 2, "--digit must be"),
    ("generate", "--outdir RUN --digit _3_", 2, "--digit must be"),
    ("generate", "--outdir RUN --digit 10", 2, "--digit must be"),
    ("generate", "--outdir RUN --digit 3 --n 0", 2, "--n must be in"),
    ("generate", "--outdir RUN --digit 3 --n -5", 2, "--n must be in"),
    ("generate", "--outdir RUN --digit 3 --n 100001", 2, "--n must be in"),
    ("generate", "--outdir RUN --digit all --n nan", 2, "invalid integer"),
    ("generate", "--outdir RUN --digit 3 --scale 0", 2, "--scale must be in"),
    ("generate", "--outdir RUN --digit 3 --scale 1000", 2, "--scale must be in"),
    ("generate", "--outdir RUN --digit 3 --seed -1", 2, "--seed must be in"),
    ("generate", "--outdir RUN --interpolate 3 3", 2, "two different classes"),
    ("generate", "--outdir RUN --digit 3 --out x.jpg", 2, "--out must name a .png"),
    ("generate", "--outdir RUN", 2, "say what to draw"),
    ("generate", "--model FILES/model.keras --digit 3", 1, "cannot load"),
    ("generate", "--model FILES/text.keras --digit 3", 1, "cannot load"),
    ("generate", "--model FILES/missing.keras --digit 3", 1, "no trained generator"),
    ("generate", "--model RUN/config.json --digit 3", 1, "cannot load"),
    # cgan-eval
    ("eval", "--outdir RUN --n-per-class 0", 2, "--n-per-class must be in"),
    ("eval", "--outdir RUN --n-per-class 100000", 2, "--n-per-class must be in"),
    ("eval", "--outdir RUN --seed -2", 2, "--seed must be in"),
    ("eval", "--outdir RUN --json out.txt", 2, "--json must name a .json"),
    ("eval", "--model FILES/missing.keras", 1, "no trained generator"),
    ("eval", "--model FILES/model.keras", 1, "cannot load"),
    ("eval", "--outdir RUN --data-dir FILES/few", 1, "too few training images"),
    ("eval", "--outdir RUN --data-dir FILES/nowhere", 1, "not found"),
]


def _argv(text, run, files, data):
    return [a.replace("RUN", str(run)).replace("FILES", str(files)).replace("DATA", str(data))
            for a in text.split()]


@pytest.mark.parametrize("command, args, code, phrase", CASES,
                         ids=[f"{c}: {a}" for c, a, _, _ in CASES])
def test_hostile_case(command, args, code, phrase, run, files, synthetic_npz, capsys,
                      monkeypatch):
    monkeypatch.chdir(files)
    before = _snapshot(run)
    main = getattr(cli, f"{command}_main")
    returned = main(_argv(args, run, files, synthetic_npz))
    line = _one_line_failure(capsys, returned, f"cgan-{command}", code)
    assert phrase in line
    assert _snapshot(run) == before


@pytest.mark.parametrize("change, phrase", [
    (lambda c: {**c, "epochs": "40"}, "--epochs must be a whole number"),
    (lambda c: {**c, "lr": None, "seed": [1]}, "--seed must be a whole number"),
    (lambda c: {**c, "batch_size": True}, "--batch-size must be a whole number"),
    (lambda c: {**c, "ema": "0.999"}, "--ema must be a finite number"),
    (lambda c: {**c, "arch": 7}, "--arch must be a string"),
])
def test_resume_refuses_a_config_with_wrong_types(run, tmp_path, capsys, change, phrase):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(change(config)))
    before = _snapshot(copy)
    line = _one_line_failure(capsys, cli.train_main(["--outdir", str(copy), "--resume"]),
                             "cgan-train", 2)
    assert phrase in line and "damaged" in line
    assert _snapshot(copy) == before


def test_a_damaged_config_json_is_one_line_for_every_command(run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "config.json").write_text('{"epochs": 4')
    for prog, argv in (("train", ["--outdir", str(copy), "--resume"]),
                       ("generate", ["--outdir", str(copy), "--digit", "3"]),
                       ("eval", ["--outdir", str(copy)])):
        line = _one_line_failure(capsys, getattr(cli, f"{prog}_main")(argv), f"cgan-{prog}")
        assert "config.json" in line and "damaged" in line


def test_multi_worker_refuses_a_bad_tf_config(monkeypatch, capsys, tmp_path):
    for value in ("not json", "[]", '{"cluster": {"worker": ["a:1"]}, "task": {"type": '
                  '"worker", "index": 3}}', '{"cluster": {"worker": "a:1"}, "task": {}}'):
        monkeypatch.setenv("TF_CONFIG", value)
        code = cli.train_main(["--strategy", "multi-worker", "--outdir", str(tmp_path / "mw")])
        assert "TF_CONFIG" in _one_line_failure(capsys, code, "cgan-train", 2)
    assert not (tmp_path / "mw").exists()


def test_a_crashed_newest_checkpoint_resumes_from_an_older_one(run, tmp_path, capsys,
                                                               synthetic_npz):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    common = ["--outdir", str(copy), "--resume", "--no-xla", "--quiet"]
    assert cli.train_main(common + ["--epochs", "2", "--checkpoint-interval", "1"]) == 0
    newest = max(copy.glob("checkpoints/ckpt-*.index"), key=lambda p: int(p.stem.split("-")[1]))
    data = next(copy.glob(f"checkpoints/{newest.stem}.data-*"))
    data.write_bytes(data.read_bytes()[:100])  # cut off, as a full disk would leave it
    capsys.readouterr()
    assert cli.train_main(["--outdir", str(copy), "--resume", "--no-xla", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "could not be restored; using the older ckpt-4" in out and "epoch   2/3" in out


def test_eval_prints_its_numbers_even_when_the_heat_map_cannot_be_written(
        tmp_path, capsys, monkeypatch, synthetic_npz):
    """Results first: the plot is optional, its failure a warning after the table."""
    from cgan_mnist import evaluation

    fake = {"generator": {"confusion": [[1]]}}
    monkeypatch.setattr(evaluation, "run", lambda request, log: fake)
    monkeypatch.setattr("cgan_mnist.report.format_report", lambda result: "THE TABLE")
    (tmp_path / "plots").write_text("a file where the plots folder would go")
    (tmp_path / "generator.keras").write_text("")
    code = cli.eval_main(["--outdir", str(tmp_path), "--json", str(tmp_path / "q.json")])
    out = capsys.readouterr().out
    assert code == 0 and json.loads((tmp_path / "q.json").read_text()) == fake
    assert out.index("THE TABLE") < out.index("warning: could not write")


# --- fuzzing: option values of every hostile kind, for all three commands -------------

HOSTILE = st.one_of(st.sampled_from(["nan", "-nan", "inf", "-inf", "1e309", "0", "-1", "",
                                     "9" * 30, "-9" * 12, "0x10", "1_000", "true", "None",
                                     "all", "ünïcode", "a\nb", "--", "3.5"]),
                    st.integers(-2**70, 2**70).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr))
TRAIN_FLAGS = ["--epochs", "--batch-size", "--latent-dim", "--g-width", "--d-width", "--d-dropout",
               "--lr", "--d-lr", "--ema", "--label-smoothing", "--beta1", "--seed", "--limit",
               "--sample-interval", "--checkpoint-interval", "--eval-interval", "--arch",
               "--dataset", "--strategy", "--r1", "--lr-decay", "--loss", "--diffaugment"]
GENERATE_FLAGS = ["--digit", "--n", "--seed", "--scale", "--out", "--npz", "--format"]
EVAL_FLAGS = ["--n-per-class", "--seed", "--json"]


def _check_outcome(code, out, prog):
    """``out``: what capsys read (or capsys itself)."""
    out = out.readouterr() if hasattr(out, "readouterr") else out
    assert "Traceback" not in out.err + out.out
    if code != 0:
        lines = [line for line in out.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), out.err


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(TRAIN_FLAGS), HOSTILE), max_size=4))
def test_fuzz_train_options(tmp_path, capsys, options):
    argv = ["--dry-run", "--outdir", str(tmp_path / "never")]
    for flag, value in options:
        argv += [f"{flag}={value}"]
    code = cli.train_main(argv)
    out = capsys.readouterr()
    _check_outcome(code, out, "cgan-train")
    if code == 0:  # a dry run accepted it: every number is finite and nothing was written
        resolved = json.loads(out.out)
        assert all(math.isfinite(v) for v in resolved.values() if isinstance(v, float))
    assert not (tmp_path / "never").exists()


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(GENERATE_FLAGS), HOSTILE), max_size=4))
def test_fuzz_generate_options(run, capsys, options):
    argv = ["--model", str(run / "missing.keras")]
    for flag, value in options:
        argv += [f"{flag}={value}"]
    _check_outcome(cli.generate_main(argv), capsys, "cgan-generate")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(EVAL_FLAGS), HOSTILE), max_size=3))
def test_fuzz_eval_options(run, capsys, options):
    argv = ["--model", str(run / "missing.keras")]
    for flag, value in options:
        argv += [f"{flag}={value}"]
    _check_outcome(cli.eval_main(argv), capsys, "cgan-eval")


def test_a_collapsed_generator_is_measured_not_a_traceback(tmp_path, tiny_data_dir, capsys):
    """A generator whose every sample is the same image used to crash cgan-eval (and a run
    with --eval-interval) in the k-nearest-neighbour radii of precision and recall."""
    import keras

    noise, label = keras.Input((8,), name="noise"), keras.Input((10,), name="label")
    flat = keras.layers.Concatenate()([noise, label])
    constant = keras.layers.Dense(784, kernel_initializer="zeros", bias_initializer="zeros",
                                  activation="tanh")(flat)
    keras.Model([noise, label], keras.layers.Reshape((28, 28, 1))(constant)).save(
        tmp_path / "collapsed.keras")
    code = cli.eval_main(["--model", str(tmp_path / "collapsed.keras"), "--n-per-class", "20",
                          "--data-dir", str(tiny_data_dir), "--json", str(tmp_path / "q.json")])
    out = capsys.readouterr()
    assert code == 0, out.err
    numbers = json.loads((tmp_path / "q.json").read_text())["generator"]
    assert numbers["recall"] == 0.0 and numbers["classifier_score"] < 1.5
    assert math.isfinite(numbers["frechet_distance"])
