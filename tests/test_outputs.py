import numpy as np
import pytest

from cgan_mnist import outputs, run_folder


def test_value_range_maps_to_full_uint8():
    images = np.array([[[-1.0, 0.0, 1.0, 3.0]]])
    assert outputs.to_uint8(images).tolist() == [[[0, 128, 255, 255]]]


def test_grid_has_the_right_pixel_size_and_places_tiles_row_by_row():
    images = np.stack([np.full((28, 28, 1), -1 + 2 * i / 99) for i in range(100)])
    grid = outputs.make_grid(images, cols=10)
    pad = outputs.GRID_PAD
    assert grid.shape == (10 * (28 + pad) + pad,) * 2 == (302, 302)
    cell = lambda r, c: grid[pad + r * 30 + 5, pad + c * 30 + 5]  # noqa: E731
    assert cell(0, 0) == 0 and cell(9, 9) == 255 and cell(1, 0) == outputs.to_uint8(images[10])[0, 0, 0]


def test_png_round_trip(tmp_path):
    grid = outputs.make_grid(np.zeros((6, 28, 28, 1)), cols=3)
    path = outputs.save_png(tmp_path / "sub" / "g.png", grid)
    assert np.array_equal(outputs.read_png(path), grid)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = outputs.write_text(tmp_path / "config.json", "old")
    with pytest.raises(RuntimeError):
        with outputs.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp left behind


def test_history_round_trip_and_loss_plot(tmp_path):
    rows = [{"step": i + 1, "epoch": i // 5 + 1, "d_loss": 1.0 / (i + 1), "g_loss": 0.5 + i / 10,
             "d_real": 0.6, "d_fake": 0.4} for i in range(20)]
    run_folder.write_history(tmp_path / "history.csv", rows)
    back = run_folder.read_history(tmp_path / "history.csv")
    assert [r["step"] for r in back] == list(range(1, 21))
    assert back[3]["d_loss"] == pytest.approx(0.25)
    png = outputs.read_png(outputs.plot_losses(tmp_path / "losses.png", rows))
    assert png.shape[0] > 100 and png.shape[1] > 100


def test_gif_and_samples_npz(tmp_path):
    frames = [outputs.make_grid(np.full((4, 28, 28, 1), v), cols=2) for v in (-1.0, 0.0, 1.0)]
    outputs.save_gif(tmp_path / "p.gif", frames)
    import imageio.v3 as iio

    assert iio.imread(tmp_path / "p.gif").shape[0] >= 3
    outputs.save_samples_npz(tmp_path / "s.npz", np.zeros((5, 28, 28, 1)), np.arange(5))
    with np.load(tmp_path / "s.npz") as npz:
        assert npz["images"].shape == (5, 28, 28) and npz["images"].dtype == np.uint8
        assert npz["labels"].tolist() == [0, 1, 2, 3, 4]


def test_smooth_follows_a_constant_exactly():
    assert np.allclose(outputs.smooth(np.full(50, 2.0)), 2.0)


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = outputs.write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_quality_round_trip_and_plots(tmp_path):
    rows = [{"epoch": e, "step": 10 * e, "conditional_accuracy": 0.1 * e,
             "frechet_distance": 5.0 / e, "frechet_distance_class_mean": 6.0 / e,
             "classifier_score": 1.0 + e, "precision": 0.5, "recall": 0.25} for e in (1, 2, 5)]
    run_folder.write_quality(tmp_path / "quality.csv", rows)
    back = run_folder.read_quality(tmp_path / "quality.csv")
    assert len(back) == 3 and all(b == pytest.approx(r) for b, r in zip(back, rows))
    assert outputs.read_png(outputs.plot_quality(tmp_path / "q.png", rows)).shape[1] > 500
    confusion = np.diag(np.arange(1, 11)) + 1
    png = outputs.read_png(outputs.plot_confusion(tmp_path / "plots" / "c.png", confusion))
    assert png.shape[0] > 300 and png.shape[1] > 300
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["c.png"]
