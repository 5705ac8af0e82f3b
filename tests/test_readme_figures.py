"""scripts/make_readme_figures.py on a tiny run: four figures, into a folder of our choice.

Its ``main(argv)`` runs in this process, its output captured."""

import pytest

from cgan_mnist import outputs


@pytest.fixture
def figures(load_script, capsys):
    """``figures(*args)`` -> (exit code, stdout, stderr) of the script's main."""
    script = load_script("make_readme_figures")

    def run(*args):
        code = script.main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_figures_of_a_tiny_run(trained_run, tmp_path, figures):
    import imageio.v3 as iio

    code, out, err = figures(trained_run, "--out", tmp_path, "--prefix", "tiny", "--n", 4)
    assert code == 0, err
    names = ["tiny_epoch_0002.png", "tiny_progress.gif", "tiny_losses.png",
             "tiny_interpolate_3_8.gif"]
    assert out.split() == [str(tmp_path / n) for n in names]
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
def test_bad_arguments_are_one_line(trained_run, tmp_path, args, phrase, figures):
    code, _, err = figures(trained_run, "--out", tmp_path, *args)
    assert code != 0 and phrase in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_not_a_run_folder(tmp_path, figures):
    code, _, err = figures(tmp_path, "--out", tmp_path / "figs")
    assert code == 1 and "config.json not found" in err
