"""The three commands as a user runs them, called in this process (``run_cli``): exit codes,
what they print, real files. Only the check that --help imports no TensorFlow needs a
fresh interpreter."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgan_mnist import arguments, cli, outputs, run_folder
from cgan_mnist.errors import UsageError


# --- the whole path: train, then generate --------------------------------------------


def _copy_of_run(run, folder):
    """A run folder of our own holding ``run``'s generator (to write generated/ into)."""
    folder.mkdir()
    for name in ("generator.keras", "config.json"):
        shutil.copy(run / name, folder)
    return folder


def test_train_writes_every_output(trained_run_result):
    outdir, result = trained_run_result
    stdout = result.stdout
    epoch_lines = [line for line in stdout.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 2
    for word in ("d_loss", "g_loss", "D(x)", "D(G(z))", "img/s", "elapsed", "eta"):
        assert word in epoch_lines[0]
    for epoch in (1, 2):
        grid = outputs.read_png(outdir / "generated" / f"epoch_{epoch:04d}.png")
        assert grid.shape == (302, 302) and grid.dtype == np.uint8 and grid.max() > 0
    import imageio.v3 as iio

    assert iio.imread(outdir / "generated" / "progress.gif").shape[1:3] == (302, 302)
    assert outputs.read_png(outdir / "plots" / "losses.png").ndim == 3
    history = run_folder.read_history(outdir / "history.csv")
    assert [r["step"] for r in history] == list(range(1, 17))

    import keras
    import tensorflow as tf

    assert tf.train.latest_checkpoint(str(outdir / "checkpoints")).endswith("ckpt-16")
    generator = keras.models.load_model(outdir / "generator.keras")
    assert generator.output_shape == (None, 28, 28, 1)
    config = json.loads((outdir / "config.json").read_text())
    for option in ("dataset", "arch", "epochs", "batch_size", "latent_dim", "lr", "beta1",
                   "seed", "outdir", "data_dir", "limit", "sample_interval",
                   "checkpoint_interval", "g_width", "d_width", "xla"):
        assert option in config
    assert config["run"]["data"]["image_shape"] == [28, 28, 1]
    assert config["run"]["data"]["num_classes"] == 10
    assert config["run"]["finished_epochs"] == 2
    # The dcgan's default R1 penalty is in the recorded cost.
    from cgan_mnist import models, training
    from cgan_mnist.config import validate_train_options

    cfg = validate_train_options(config)
    assert (cfg.r1, cfg.r1_interval) == (0.1, 1)
    g, d = models.build_models(training.model_config(cfg, 10))
    assert config["run"]["training_flops_per_image"] == \
        models.training_flops_per_image(g, d, True, 1.0) > \
        models.training_flops_per_image(g, d, True, 0.0)


def test_generate_digit_png_and_npz(trained_run, tmp_path, run_cli):
    outdir = _copy_of_run(trained_run, tmp_path / "run")
    npz = tmp_path / "sevens.npz"
    result = run_cli("generate", "--digit", 7, "--n", 16, "--outdir", outdir, "--seed", 4,
                     "--npz", npz)
    assert result.returncode == 0, result.stderr
    png = outdir / "generated" / "digit_7.png"
    assert result.stdout.split() == [str(png), str(npz)]
    assert outputs.read_png(png).shape == (3 * (4 * 30 + 2),) * 2  # enlarged to >= 256 px
    with np.load(npz) as samples:  # Keras's layout, and the names of earlier versions
        assert samples["x_train"].shape == (16, 28, 28) and samples["x_train"].dtype == np.uint8
        assert samples["y_train"].tolist() == samples["labels"].tolist() == [7] * 16
        assert np.array_equal(samples["images"], samples["x_train"])
        assert samples["class_names"].tolist() == [str(d) for d in range(10)]
        first = samples["images"].copy()
    again = run_cli("generate", "--digit", 7, "--n", 16, "--outdir", outdir, "--seed", 4,
                    "--npz", npz)
    assert again.returncode == 0
    with np.load(npz) as samples:
        assert np.array_equal(samples["images"], first), "same seed, same images"


def test_generate_all_digits_one_row_each(trained_run, tmp_path, run_cli):
    outdir = trained_run
    out = tmp_path / "all.png"
    result = run_cli("generate", "--digit", "all", "--n", 5, "--model",
                     outdir / "generator.keras", "--out", out, "--scale", 1)
    assert result.returncode == 0, result.stderr
    assert outputs.read_png(out).shape == (10 * 30 + 2, outputs.LABEL_MARGIN + 5 * 30 + 2)
    assert run_cli("generate", "--digit", "all", "--n", 5, "--model", outdir / "generator.keras",
                   "--out", out).returncode == 0  # by default: enlarged to >= 256 px across
    assert outputs.read_png(out).shape == (2 * (10 * 30 + 2), 2 * (outputs.LABEL_MARGIN + 152))


# --- bad input: one line, a non-zero code, no traceback ------------------------------


@pytest.mark.parametrize("args, code, phrase", [
    (["--digit", "11"], 2, "--digit must be 0..9"),
    (["--digit", "seven"], 2, "--digit must be 0..9"),
    (["--digit", "3", "--n", "-4"], 2, "--n must be in 1..10000"),
    (["--digit", "3", "--n", "0"], 2, "--n must be in 1..10000"),
    (["--digit", "3", "--n", "10001"], 2, "--n must be in 1..10000"),
    (["--digit", "3", "--n", "many"], 2, "invalid integer"),
    (["--digit", "3", "--out", "x.jpg"], 2, "--out must name a .png"),
    (["--n", "3"], 2, "--digit"),
])
def test_generate_bad_arguments(args, code, phrase, run_cli, assert_one_line_error):
    assert_one_line_error(run_cli("generate", *args), code, phrase)


def test_generate_missing_and_corrupt_model(tmp_path, run_cli, assert_one_line_error):
    assert_one_line_error(run_cli("generate", "--digit", "1", "--outdir", tmp_path), 1,
                          "no trained generator", "cgan-train")
    (tmp_path / "generator.keras").write_bytes(b"\x00garbage" * 100)
    assert_one_line_error(run_cli("generate", "--digit", "1", "--outdir", tmp_path), 1,
                          "cannot load", "corrupt")


@pytest.mark.parametrize("args, phrase", [
    (["--epochs", "-1"], "--epochs must be at least 1"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--lr", "-0.1"], "--lr must be positive"),
    (["--lr", "fast"], "invalid number"),
    (["--d-dropout", "1"], "--d-dropout must be below 1"),
    (["--label-smoothing", "1.5"], "--label-smoothing must be below 1"),
    (["--arch", "vgg"], "unknown --arch"),
    (["--dataset", "svhn"], "unknown --dataset"),
    (["--bogus"], "unrecognized arguments"),
])
def test_train_bad_arguments(args, phrase, run_cli, assert_one_line_error):
    assert_one_line_error(run_cli("train", *args), 2, phrase)


def test_train_missing_and_damaged_data(tmp_path, run_cli, assert_one_line_error):
    assert_one_line_error(run_cli("train", "--data-dir", tmp_path / "none", "--outdir",
                                  tmp_path), 1, "not found", "--data-dir")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "mnist.npz").write_bytes(b"PK\x03\x04 truncated")
    assert_one_line_error(run_cli("train", "--data-dir", bad, "--outdir", tmp_path / "o"),
                          1, "cannot read it as .npz")


def test_train_unwritable_outdir(tmp_path, tiny_data_dir, run_cli, assert_one_line_error):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert_one_line_error(run_cli("train", "--outdir", blocker / "run", "--data-dir",
                                  tiny_data_dir), 1, "cannot write", "a_file")


def test_train_refuses_used_outdir(trained_run, run_cli, assert_one_line_error):
    before = (trained_run / "history.csv").read_bytes()
    assert_one_line_error(run_cli("train", "--outdir", trained_run), 1, "already holds a run",
                          "--resume", "--overwrite")
    assert (trained_run / "history.csv").read_bytes() == before


def test_help_and_argument_errors_do_not_import_tensorflow():
    """A fresh interpreter: this process has imported TensorFlow long ago."""
    code = ("import sys\nfrom cgan_mnist import cli\n"
            "for main, args in ((cli.train_main, ['--help']), (cli.generate_main, ['--help']),\n"
            "                   (cli.eval_main, ['--help']),\n"
            "                   (cli.eval_main, ['--n-per-class', '0']),\n"
            "                   (cli.train_main, ['--epochs', '0']),"
            " (cli.generate_main, ['--digit', '12'])):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "assert 'matplotlib' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "examples:" in result.stdout


# --- cgan-eval --------------------------------------------------------------------------


@pytest.mark.slow
def test_eval_prints_the_table_and_writes_json_and_heat_map(trained_run, mnist_path,
                                                              tmp_path, run_cli):
    model = tmp_path / "run" / "generator.keras"
    model.parent.mkdir()
    model.write_bytes((trained_run / "generator.keras").read_bytes())
    report = tmp_path / "quality.json"
    result = run_cli("eval", "--model", model, "--n-per-class", 10, "--seed", 1, "--json",
                     report, "--data-dir", mnist_path.parent,
                     env={"CGAN_CACHE_DIR": tmp_path / "empty_cache"})
    assert result.returncode == 0, result.stderr
    assert "training the" not in result.stdout  # the shipped evaluator: nothing to train
    assert not (tmp_path / "empty_cache").exists()
    numbers = json.loads(report.read_text())
    assert numbers["samples"] == 100 and numbers["n_per_class"] == 10
    ev = numbers["evaluator"]
    assert (f"evaluator: mnist, weights {ev['weights']} (shipped with cgan-mnist), test accuracy "
            f"{100 * ev['test_accuracy']:.2f}%") in result.stdout
    for column in ("generator", "real"):
        col = numbers[column]
        assert 0 <= col["conditional_accuracy"] <= 1 and col["frechet_distance"] >= 0
        assert 1 <= col["classifier_score"] <= 10 and 0 <= col["precision"] <= 1
        assert np.isfinite(col["parzen_log_likelihood"]) and col["parzen_standard_error"] > 0
        assert np.array(col["confusion"]).sum() == 100
    assert numbers["real"]["conditional_accuracy"] > 0.8
    table = result.stdout.splitlines()
    row = next(line for line in table if line.startswith("conditional accuracy"))
    assert row.split()[-2:] == [f"{100 * numbers[c]['conditional_accuracy']:.2f}%"
                                for c in ("generator", "real")]
    for label in ("Fréchet distance", "classifier score", "precision (k=3)", "recall (k=3)",
                  "Parzen log-likelihood", "accuracy of class 9"):
        assert label in result.stdout
    heat_map = outputs.read_png(model.parent / "plots" / "confusion.png")
    assert heat_map.shape[0] > 300 and heat_map.shape[1] > 300


@pytest.mark.parametrize("args, phrase", [
    (["--n-per-class", "0"], "--n-per-class must be in 1..10000"),
    (["--n-per-class", "10001"], "--n-per-class must be in 1..10000"),
    (["--n-per-class", "-4"], "--n-per-class must be in 1..10000"),
    (["--n-per-class", "many"], "invalid integer"),
    (["--seed", "-1"], "--seed must be in"),
    (["--json", "out.txt"], "--json must name a .json"),
    (["--reference-seeds", "-1"], "--reference-seeds must be in 0..20, got -1"),
    (["--reference-seeds", "21"], "--reference-seeds must be in 0..20, got 21"),
    (["--model", "a", "--outdir", "b"], "not allowed with"),
])
def test_eval_bad_arguments(args, phrase, run_cli, assert_one_line_error):
    assert_one_line_error(run_cli("eval", *args), 2, phrase)


def test_eval_missing_corrupt_model_and_partial_data(tmp_path, trained_run, tiny_data,
                                                     run_cli):
    missing = run_cli("eval", "--outdir", tmp_path)
    (tmp_path / "generator.keras").write_bytes(b"\x00garbage" * 100)
    corrupt = run_cli("eval", "--outdir", tmp_path)
    few = tmp_path / "few"  # 60 images, in class order: the held-out last sixth is all 9s
    few.mkdir()
    order = np.argsort(tiny_data.train.labels, kind="stable")[::17][:60]
    np.savez(few / "mnist.npz", x_train=tiny_data.train.images[order],
             y_train=tiny_data.train.labels[order], x_test=tiny_data.test.images,
             y_test=tiny_data.test.labels)
    partial = run_cli("eval", "--outdir", trained_run, "--data-dir", few)
    for result, phrases in ((missing, ("no trained generator",)),
                            (corrupt, ("cannot load", "corrupt")),
                            (partial, ("too few training images", "full data file"))):
        stderr = result.stderr
        assert result.returncode == 1
        assert stderr.count("\n") == 1 and stderr.startswith("cgan-eval: error:"), stderr
        assert all(phrase in stderr for phrase in phrases), stderr


# --- argument handling never crashes, whatever it is given ----------------------------

_tokens = st.one_of(
    st.sampled_from(["--epochs", "--batch-size", "--lr", "--arch", "--digit", "--n", "--seed",
                     "--limit", "--latent-dim", "--beta1", "--resume", "--overwrite", "--model",
                     "--n-per-class", "--json", "--eval-interval",
                     "all", "mlp", "dcgan", "7", "-3", "0", "1e-3", "nan", "inf", "11", "x"]),
    st.text(max_size=6))


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.lists(_tokens, max_size=6))
def test_argument_handling_fails_only_with_usage_errors(argv):
    for parse, check in ((arguments.train_parser, lambda a: cli.validate_train_options(vars(a))),
                         (arguments.generate_parser, arguments.validate_generate_args),
                         (arguments.eval_parser, arguments.validate_eval_args)):
        try:
            check(parse().parse_args(argv))
        except UsageError as err:
            assert str(err) and "\n" not in str(err)
        except SystemExit as exit_:  # --help
            assert exit_.code == 0
