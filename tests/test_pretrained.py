"""The generators shipped in the package: usable with no data, no run and no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from cgan_mnist import pretrained


def _package_files():
    return {p: p.stat().st_mtime_ns for p in pretrained.FOLDER.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name, arch, dataset, accuracy", [
    ("mnist-dcgan", "dcgan", "mnist", 0.99), ("mnist-mlp", "mlp", "mnist", 0.99),
    ("fashion_mnist-dcgan", "dcgan", "fashion_mnist", 0.93)])
def test_shipped_with_its_config_and_report(name, arch, dataset, accuracy):
    folder = pretrained.folder(name)
    config = json.loads((folder / "config.json").read_text())
    report = json.loads((folder / "eval.json").read_text())
    assert config["arch"] == arch and config["run"]["finished_epochs"] == config["epochs"] == 40
    assert config["dataset"] == config["run"]["data"]["name"] == dataset
    assert report["n_per_class"] == 1000 and report["evaluator"]["dataset"] == dataset
    assert report["generator"]["conditional_accuracy"] > accuracy
    assert 0.8 < report["cas"]["cas"] <= report["cas"]["cas_real"]


def test_the_readme_table_is_read_from_the_shipped_reports():
    """README's "How good" states each shipped report's accuracy, FD, Parzen and CAS."""
    readme = (pretrained.FOLDER.parents[1] / "README.md").read_text()
    section = readme[readme.index("## How good"):readme.index("## How fast")]
    for name in pretrained.names():
        report = json.loads((pretrained.folder(name) / "eval.json").read_text())
        generator = report["generator"]
        for figure in (f"{100 * generator['conditional_accuracy']:.2f}%",
                       f"{generator['frechet_distance']:.2f}",
                       f"{generator['parzen_log_likelihood']:.1f}",
                       f"{100 * report['cas']['cas']:.2f}%"):
            assert figure in section, (name, figure)


def test_list_and_an_unknown_name(run_cli, assert_one_line_error):
    listed = run_cli("generate", "--pretrained", "list")
    assert listed.returncode == 0
    assert [line.split(":")[0] for line in listed.stdout.splitlines()] == pretrained.names()
    shipped = json.loads((pretrained.folder("fashion_mnist-dcgan") / "eval.json").read_text())
    accuracy = 100 * shipped["generator"]["conditional_accuracy"]
    assert f"fashion_mnist-dcgan: conditional accuracy {accuracy:.2f}%" in listed.stdout
    unknown = run_cli("generate", "--pretrained", "mnist-gan", "--digit", 7)
    assert_one_line_error(unknown, 2, "unknown pretrained generator 'mnist-gan'", "mnist-dcgan")
    assert_one_line_error(run_cli("eval", "--pretrained", "nope"), 2, "choose one of")


@pytest.mark.slow
def test_generate_right_after_install_in_an_empty_folder(tmp_path):
    """A fresh interpreter, an empty folder, no data, no cache, no network: a PNG of sevens."""
    before = _package_files()
    env = {k: v for k, v in os.environ.items() if k != "CGAN_DATA_DIR"}
    env.update(HOME=str(tmp_path / "home"), TF_CPP_MIN_LOG_LEVEL="3")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", "import sys; from cgan_mnist.cli import "
                             "generate_main as m; sys.exit(m())", "--pretrained", "mnist-dcgan",
                             "--digit", "7", "--n", "16", "--seed", "1"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    png = tmp_path / "generated" / "digit_7.png"
    assert result.stdout.split() == [str(png.relative_to(tmp_path))]
    import imageio.v3 as iio

    image = iio.imread(png)
    assert image.shape == (366, 366) and image.max() > 200  # 4x4 digits, enlarged 3 times
    assert _package_files() == before, "nothing is written into the package"
    print(f"cgan-generate --pretrained in a fresh interpreter: {seconds:.1f} s")


@pytest.mark.slow
def test_the_api_loads_a_pretrained_generator_by_name():
    import cgan_mnist as cg

    images, labels = cg.load_generator("mnist-dcgan").sample(["3"], n=5, seed=0)
    assert images.shape == (5, 28, 28) and np.all(labels == 3)
