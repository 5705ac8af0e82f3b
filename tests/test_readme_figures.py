"""scripts/make_readme_figures.py on a tiny run: four figures, into a folder of our choice."""

import os
import subprocess
import sys

import pytest

from cgan_mnist import outputs
from conftest import REPO

SCRIPT = REPO / "scripts" / "make_readme_figures.py"


def figures(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_figures_of_a_tiny_run(trained_run, tmp_path):
    import imageio.v3 as iio

    result = figures(trained_run, "--out", tmp_path, "--prefix", "tiny", "--n", 4)
    assert result.returncode == 0, result.stderr
    names = ["tiny_epoch_0002.png", "tiny_progress.gif", "tiny_losses.png",
             "tiny_interpolate_3_8.gif"]
    assert result.stdout.split() == [str(tmp_path / n) for n in names]
    grid = outputs.read_png(tmp_path / "tiny_epoch_0002.png")
    original = outputs.read_png(trained_run / "generated" / "epoch_0002.png")
    assert grid.shape == (302, outputs.LABEL_MARGIN + 302)
    assert (grid[:, outputs.LABEL_MARGIN:] == original).all(), "the grid itself is unchanged"
    assert (tmp_path / "tiny_progress.gif").read_bytes() == \
        (trained_run / "generated" / "progress.gif").read_bytes()
    assert iio.imread(tmp_path / "tiny_interpolate_3_8.gif").shape[1:3] == (2 * 62, 2 * 62)


@pytest.mark.parametrize("args, phrase", [
    (["--interpolate", "3", "eleven"], "--interpolate must be 0..9"),
    (["--scale", "0"], "--scale must be in 1..16"),
])
def test_bad_arguments_are_one_line(trained_run, tmp_path, args, phrase):
    result = figures(trained_run, "--out", tmp_path, *args)
    assert result.returncode != 0 and phrase in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_not_a_run_folder(tmp_path):
    result = figures(tmp_path, "--out", tmp_path / "figs")
    assert result.returncode == 1 and "config.json not found" in result.stderr
