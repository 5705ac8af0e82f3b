"""The Python API: the commands as functions, with the same checks and errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import cgan_mnist as cg
from cgan_mnist.errors import UsageError, UserError


@pytest.fixture(scope="module")
def generator(trained_run):
    return cg.load_generator(trained_run)


def test_sample_gives_uint8_images_of_the_classes_asked_for(generator, trained_run):
    images, labels = generator.sample([3, "7"], n=4, seed=0)
    assert images.shape == (8, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [3] * 4 + [7] * 4
    again, _ = cg.load_generator(trained_run / "generator.keras").sample([3, 7], n=4, seed=0)
    assert np.array_equal(images, again)
    assert generator.sample("all", n=2, seed=1)[1].tolist() == sorted(list(range(10)) * 2)


def test_grid_has_one_row_per_class(generator):
    grid = generator.grid(n=5, seed=0)
    assert grid.shape == (10 * 30 + 2, 5 * 30 + 2) and grid.dtype == np.uint8 and grid.max() > 0
    assert generator.grid([1, 2], n=3, seed=0, scale=2).shape == (2 * 62, 2 * 92)


@pytest.mark.parametrize("call, error, phrase", [
    (lambda g: g.sample(-1), UsageError, "must be 0..9"),
    (lambda g: g.sample(["_3_"]), UsageError, "must be 0..9"),
    (lambda g: g.sample(3, n=0), UsageError, "n must be a whole number in 1..10000"),
    (lambda g: g.sample(3, n=2.5), UsageError, "n must be a whole number"),
    (lambda g: g.sample(3, seed=-1), UsageError, "seed must be"),
    (lambda g: g.grid(scale=100), UsageError, "scale must be"),
])
def test_bad_values_raise_the_commands_errors(generator, call, error, phrase):
    with pytest.raises(error, match=phrase):
        call(generator)


def test_train_and_evaluate_check_their_options_first(tmp_path):
    with pytest.raises(UsageError, match="--ema must be a finite number"):
        cg.train(epochs=1, outdir=tmp_path / "run", ema=float("nan"))
    with pytest.raises(UsageError, match="unknown option 'epoch'"):
        cg.train(epoch=1, outdir=tmp_path / "run")
    with pytest.raises(UserError, match="no trained generator"):
        cg.evaluate(tmp_path)
    with pytest.raises(UserError, match="no trained generator"):
        cg.load_generator(tmp_path)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_readmes_python_snippet_runs_as_written(tmp_path, tiny_data_dir, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CGAN_DATA_DIR", str(tiny_data_dir))
    namespace = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["images"].shape == (16, 28, 28)
    assert (tmp_path / "grid.png").stat().st_size > 1000
    assert (tmp_path / "runs" / "try" / "generator.keras").is_file()
