"""cgan-generate: class names, --interpolate, --latent-walk, --format, --scale, labelled grids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cgan_mnist import arguments, data, generate, outputs, run_folder
from cgan_mnist.errors import UsageError


def request(*argv, names=None):
    return arguments.validate_generate_args(arguments.generate_parser().parse_args(list(map(str, argv))),
                                      names)


# --- validation (pure) --------------------------------------------------------------------


@pytest.mark.parametrize("digit, index, file", [
    ("sneaker", 7, "digit_sneaker"), ("Sneaker", 7, "digit_sneaker"),
    ("ankle boot", 9, "digit_ankle_boot"), ("ANKLE_BOOT", 9, "digit_ankle_boot"),
    ("ankle-boot", 9, "digit_ankle_boot"), ("t-shirt/top", 0, "digit_t_shirt_top"),
    ("top", 0, "digit_t_shirt_top"), ("T-Shirt", 0, "digit_t_shirt_top"),
    ("9", 9, "digit_9"), (" 3 ", 3, "digit_3"),
])
def test_digit_by_number_or_class_name(digit, index, file):
    made = request("--digit", digit, names=data.FASHION_NAMES)
    assert made.classes == (index,) and made.mode == "draw"
    assert made.png == Path("generated") / f"{file}.png" and made.npz is None and made.gif is None


def test_digit_all_has_one_row_per_class_of_the_run():
    assert request("--digit", "all").classes == tuple(range(10))
    made = request("--digit", "ALL", names=("a", "b", "c"))
    assert made.classes == (0, 1, 2) and made.class_names == ("a", "b", "c")


@pytest.mark.parametrize("argv, names, phrase", [
    (["--digit", "sneaker"], None, "--digit must be 0..9 or 'all', got 'sneaker'"),
    (["--digit", "hat"], data.FASHION_NAMES,
     "--digit must be 0..9, a class name of this run (t shirt/top, trouser, pullover"),
    (["--digit", "10"], data.FASHION_NAMES, "got '10'"),
    (["--digit", "²"], None, "--digit must be 0..9"),
    (["--interpolate", "3", "3"], None, "two different classes, got 3 twice"),
    (["--interpolate", "3", "all"], None, "--interpolate must be 0..9, got 'all'"),
    (["--interpolate", "3", "8", "--digit", "1"], None, "drop --digit"),
    (["--interpolate", "3", "8", "--latent-walk"], None, "drop --digit and --latent-walk"),
    (["--latent-walk"], None, "say what to draw: --digit D"),
    (["--digit", "all", "--latent-walk"], None, "give --digit D, not 'all'"),
    (["--digit", "2", "--latent-walk", "--n", "101"], None,
     "--n must be in 1..100 with --interpolate/--latent-walk"),
    (["--interpolate", "1", "2", "--n", "0"], None, "--n must be in 1..100"),
    (["--digit", "2", "--scale", "0"], None, "--scale must be in 1..16"),
    (["--digit", "2", "--scale", "17"], None, "--scale must be in 1..16"),
    (["--digit", "2", "--format", "gif"], None, "invalid choice: 'gif'"),
    (["--digit", "2", "--format", "png", "--npz", "x.npz"], None, "--format png writes none"),
    (["--digit", "2", "--format", "npz", "--out", "x.png"], None,
     "--out is about images but --format npz"),
    (["--digit", "2", "--format", "npz", "--scale", "2"], None, "--scale is about images"),
    (["--interpolate", "1"], None, "expected 2 arguments"),
])
def test_bad_generate_arguments(argv, names, phrase):
    with pytest.raises(UsageError) as err:
        request(*argv, names=names)
    assert phrase in str(err.value) and "\n" not in str(err.value)


def test_format_chooses_the_files():
    assert (request("--digit", 3).png, request("--digit", 3).npz) == \
        (Path("generated/digit_3.png"), None)
    made = request("--digit", 3, "--format", "npz", "--outdir", "r")
    assert (made.png, made.npz) == (None, Path("r/generated/digit_3.npz"))
    made = request("--digit", 3, "--format", "both", "--out", "a/b.png")
    assert (made.png, made.npz) == (Path("a/b.png"), Path("a/b.npz"))
    made = request("--digit", 3, "--npz", "x.npz")  # the existing flag: PNG and .npz
    assert (made.png, made.npz) == (Path("generated/digit_3.png"), Path("x.npz"))
    made = request("--digit", 3, "--npz", "x.npz", "--format", "npz")
    assert (made.png, made.npz) == (None, Path("x.npz"))


def test_animation_requests():
    made = request("--interpolate", "sneaker", "ankle_boot", "--scale", 3,
                   names=data.FASHION_NAMES)
    assert made.mode == "interpolate" and made.classes == (7, 9) and made.scale == 3
    assert made.gif == Path("generated/interpolate_sneaker_ankle_boot.gif")
    assert made.png == Path("generated/interpolate_sneaker_ankle_boot.png")
    made = request("--digit", 4, "--latent-walk", "--format", "both", "--n", 9)
    assert made.mode == "latent_walk" and made.classes == (4,) and made.n == 9
    assert (made.gif, made.png, made.npz) == (Path("generated/latent_walk_4.gif"),
                                              Path("generated/latent_walk_4.png"),
                                              Path("generated/latent_walk_4.npz"))
    made = request("--interpolate", 1, 2, "--format", "npz")
    assert (made.gif, made.png, made.npz) == (None, None, Path("generated/interpolate_1_2.npz"))


def test_class_names_come_from_config_json_beside_the_model(tmp_path, trained_run):
    from cgan_mnist.errors import UserError

    assert run_folder.class_names(run_folder.read_config(trained_run)) == data.DIGIT_NAMES
    assert run_folder.class_names(run_folder.read_config(tmp_path)) is None  # none: digits
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(UserError, match="config.json .*damaged"):  # as everywhere else
        run_folder.read_config(tmp_path)


def test_slerp_keeps_the_ends_and_the_radius():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 5, 16))
    b *= np.linalg.norm(a, axis=1, keepdims=True) / np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(generate.slerp(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(generate.slerp(a, b, 1.0), b, atol=1e-12)
    middle = generate.slerp(a, b, 0.5)
    np.testing.assert_allclose(np.linalg.norm(middle, axis=1), np.linalg.norm(a, axis=1))
    np.testing.assert_allclose(generate.slerp(a, a, 0.3), a)  # parallel: no division by zero


# --- real files from a trained run ------------------------------------------------------


@pytest.fixture(scope="module")
def generator(trained_run):
    return generate.load_generator(trained_run / "generator.keras")


def test_interpolation_blends_the_label_with_the_noise_fixed(generator):
    images, labels = generate.interpolate(generator, 3, 8, n=2, seed=1)
    assert images.shape == (generate.INTERPOLATION_STEPS, 2, 28, 28, 1)
    assert labels[0].tolist() == np.eye(10)[3].tolist()
    assert labels[-1].tolist() == np.eye(10)[8].tolist()
    np.testing.assert_allclose(labels.sum(1), 1.0, rtol=1e-6)
    start, _ = generate.sample(generator, [3], 2, seed=1)  # the same noise, one-hot 3
    np.testing.assert_allclose(images[0], start, atol=1e-5)


def test_latent_walk_is_one_class_and_loops(generator):
    images, labels = generate.latent_walk(generator, 5, n=3, seed=2, points=3, frames_per_leg=4)
    assert images.shape == (12, 3, 28, 28, 1)
    assert (labels.argmax(1) == 5).all() and (labels.sum(1) == 1).all()
    steps = np.abs(np.diff(images, axis=0)).mean(axis=(1, 2, 3, 4))
    wrap = np.abs(images[0] - images[-1]).mean()
    assert wrap < 3 * steps.max(), "the last frame leads back into the first"


def test_generate_writes_gif_strip_and_npz(generator, trained_run, tmp_path):
    import imageio.v3 as iio

    made = request("--interpolate", 3, 8, "--n", 4, "--format", "both", "--seed", 1,
                   "--scale", 1,
                   "--model", trained_run / "generator.keras", "--out", tmp_path / "i.png")
    assert generate.generate(made) == [tmp_path / "i.gif", tmp_path / "i.png",
                                       tmp_path / "i.npz"]
    steps = generate.INTERPOLATION_STEPS
    strip = outputs.read_png(tmp_path / "i.png")
    assert strip.shape == (4 * 30 + 2, steps * 30 + 2), "row = one noise, column = one step"
    frames = iio.imread(tmp_path / "i.gif")
    assert frames.shape[1:3] == (2 * 30 + 2,) * 2 and len(frames) >= 2 * steps - 2
    with np.load(tmp_path / "i.npz") as saved:
        assert saved["images"].shape == (steps, 4, 28, 28) and saved["images"].dtype == np.uint8
        assert saved["label_vectors"].shape == (steps, 10)
        np.testing.assert_array_equal(saved["images"][:, 0], strip_cells(strip, 0, steps))


def strip_cells(grid, row, cols, pad=outputs.GRID_PAD):
    top = pad + row * 30
    return np.stack([grid[top:top + 28, pad + c * 30:pad + c * 30 + 28] for c in range(cols)])


def test_scale_enlarges_pngs_by_nearest_neighbour(trained_run, tmp_path):
    model = trained_run / "generator.keras"
    for scale, name in ((1, "one.png"), (3, "three.png")):
        generate.generate(request("--digit", 2, "--n", 4, "--seed", 7, "--scale", scale,
                                  "--model", model, "--out", tmp_path / name))
    one, three = (outputs.read_png(tmp_path / n) for n in ("one.png", "three.png"))
    assert three.shape == (3 * one.shape[0], 3 * one.shape[1])
    np.testing.assert_array_equal(three, np.kron(one, np.ones((3, 3), np.uint8)))


def test_digit_all_grid_has_a_label_margin_of_known_width(generator, trained_run, tmp_path):
    made = request("--digit", "all", "--n", 3, "--seed", 4, "--model",
                   trained_run / "generator.keras", "--out", tmp_path / "all.png", "--scale", 1)
    generate.generate(made)
    labelled = outputs.read_png(tmp_path / "all.png")
    images, _ = generate.sample(generator, range(10), 3, seed=4)
    plain = outputs.make_grid(images, cols=3)
    assert labelled.shape == (plain.shape[0], outputs.LABEL_MARGIN + plain.shape[1])
    np.testing.assert_array_equal(labelled[:, outputs.LABEL_MARGIN:], plain)
    margin = labelled[:, :outputs.LABEL_MARGIN]
    for row in range(10):  # some text beside every row
        assert margin[outputs.GRID_PAD + row * 30:(row + 1) * 30].max() > 100


def test_cli_interpolates_between_named_classes(trained_run, tmp_path, run_cli,
                                                assert_one_line_error):
    run_copy = tmp_path / "run"
    run_copy.mkdir()
    shutil.copy(trained_run / "generator.keras", run_copy)
    config = json.loads((trained_run / "config.json").read_text())
    config["run"]["data"]["class_names"] = list(data.FASHION_NAMES)
    (run_copy / "config.json").write_text(json.dumps(config))
    result = run_cli("generate", "--interpolate", "Sneaker", "ankle boot", "--n", 2,
                     "--seed", 0, "--outdir", run_copy)
    assert result.returncode == 0, result.stderr
    stem = run_copy / "generated" / "interpolate_sneaker_ankle_boot"
    assert result.stdout.split() == [f"{stem}.gif", f"{stem}.png"]
    assert_one_line_error(run_cli("generate", "--digit", "hat", "--outdir", run_copy), 2,
                          "a class name of this run (t shirt/top", "got 'hat'")
