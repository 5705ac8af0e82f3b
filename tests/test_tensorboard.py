"""cgan-train --tensorboard: event files TensorBoard can read, continued across --resume;
and the run's own messages: --quiet, --verbose, log.txt, --dry-run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from cgan_mnist import console, tensorboard

TINY = ["--g-width", "8", "--d-width", "8", "--latent-dim", "8", "--no-xla", "--limit", "64",
        "--batch-size", "32", "--seed", "5", "--checkpoint-interval", "1"]
STEP_TAGS = ["loss/d_loss", "loss/g_loss", "D/d_real", "D/d_fake"]
EPOCH_TAGS = ["speed/images_per_second", "learning_rate/generator",
              "learning_rate/discriminator"]


def _images(logdir) -> list[tuple[int, int, int]]:
    """(step, width, height) of every sample-grid record."""
    found = []
    for path in tensorboard.event_files(logdir):
        for event in tensorboard.read_events(path):
            for value in event.summary.value:
                if value.tag == tensorboard.SAMPLES_TAG:
                    assert value.metadata.plugin_data.plugin_name == "images"
                    width, height, png = value.tensor.string_val
                    assert png.startswith(b"\x89PNG")
                    found.append((event.step, int(width), int(height)))
    return found


# --- the writer on its own ---------------------------------------------------------------


def test_board_writes_scalars_and_images_that_read_back(tmp_path):
    board = tensorboard.open_board(True, tmp_path / "logs")
    rows = [{"step": s, "d_loss": 1.0 + s, "g_loss": 2.0, "d_real": 0.6, "d_fake": 0.4}
            for s in range(1, 6)]
    with board:
        board.steps(rows)
        board.scalars(5, {"speed/images_per_second": 123.0, "quality/accuracy": 0.5})
        board.image(5, tensorboard.SAMPLES_TAG, np.zeros((32, 62), np.uint8), "rows: 0 a")
    scalars = tensorboard.read_scalars(tmp_path / "logs")
    assert [s for s, _ in scalars["loss/d_loss"]] == [1, 2, 3, 4, 5]
    assert scalars["loss/d_loss"][2] == (3, 4.0)
    assert scalars["quality/accuracy"] == [(5, 0.5)], "any tag through scalars(step, dict)"
    assert _images(tmp_path / "logs") == [(5, 62, 32)]


def test_trim_drops_only_records_after_the_step(tmp_path):
    with tensorboard.open_board(True, tmp_path) as board:
        board.steps([{"step": s, "d_loss": float(s), "g_loss": 0.0, "d_real": 0.0,
                      "d_fake": 0.0} for s in range(1, 11)])
        board.image(10, tensorboard.SAMPLES_TAG, np.zeros((4, 4), np.uint8))
    files = tensorboard.event_files(tmp_path)
    assert tensorboard.trim(tmp_path, 10) == [], "nothing to drop: the file stays as it is"
    assert tensorboard.trim(tmp_path, 6) == files
    assert [s for s, _ in tensorboard.read_scalars(tmp_path)["loss/d_loss"]] == list(range(1, 7))
    assert _images(tmp_path) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp file left"


def test_no_board_costs_nothing(tmp_path):
    board = tensorboard.open_board(False, tmp_path / "logs")
    with board:
        board.steps([{"step": 1, "d_loss": 1.0, "g_loss": 1.0, "d_real": 0.5, "d_fake": 0.5}])
        board.scalars(1, {"x": 1.0})
        board.image(1, "x", np.zeros((2, 2), np.uint8))
    assert not (tmp_path / "logs").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                    reason="the tensorboard package is not installed (pip install tensorboard)")
def test_tensorboard_itself_reads_the_files(tmp_path):
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    with tensorboard.open_board(True, tmp_path) as board:
        board.steps([{"step": 1, "d_loss": 1.0, "g_loss": 2.0, "d_real": 0.6, "d_fake": 0.4}])
        board.image(1, tensorboard.SAMPLES_TAG, np.zeros((8, 8), np.uint8))
    accumulator = EventAccumulator(str(tmp_path))
    accumulator.Reload()
    tags = accumulator.Tags()["tensors"]
    assert set(STEP_TAGS) | {tensorboard.SAMPLES_TAG} <= set(tags)
    assert accumulator.SummaryMetadata("loss/g_loss").plugin_data.plugin_name == "scalars"
    assert accumulator.SummaryMetadata(tensorboard.SAMPLES_TAG).plugin_data.plugin_name == "images"


# --- a real run: quiet with TensorBoard, then resumed verbosely --------------------------


@pytest.fixture(scope="module")
def board_run(tmp_path_factory, tiny_data_dir, run_cli):
    outdir = tmp_path_factory.mktemp("board_run")
    first = run_cli("train", *TINY, "--epochs", "1", "--outdir", outdir, "--tensorboard",
                    "--quiet", "--data-dir", tiny_data_dir)
    assert first.returncode == 0, first.stderr
    log_after_first = (outdir / "log.txt").read_text()
    # A record logged after the last checkpoint by a run that then crashed:
    with tensorboard.open_board(True, outdir / "logs") as board:
        board.steps([{"step": 3, "d_loss": 999.0, "g_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}])
    second = run_cli("train", "--outdir", outdir, "--resume", "--epochs", "2", "--verbose",
                     "--data-dir", tiny_data_dir)
    assert second.returncode == 0, second.stderr
    return outdir, first, log_after_first, second


@pytest.mark.slow
def test_tensorboard_logs_every_step_and_each_grid_across_resume(board_run):
    outdir = board_run[0]
    scalars = tensorboard.read_scalars(outdir / "logs")
    for tag in STEP_TAGS:
        assert [s for s, _ in scalars[tag]] == [1, 2, 3, 4], tag
    assert scalars["loss/d_loss"][2][1] != 999.0, "the stale record was dropped on resume"
    for tag in EPOCH_TAGS:
        assert [s for s, _ in scalars[tag]] == [2, 4], tag
    assert scalars["learning_rate/generator"][0][1] == pytest.approx(2e-4)
    assert all(v > 0 for _, v in scalars["speed/images_per_second"])
    history = [line.split(",") for line in (outdir / "history.csv").read_text().splitlines()[1:]]
    assert [float(r[3]) for r in history] == pytest.approx([v for _, v in scalars["loss/g_loss"]],
                                                           rel=1e-5)
    assert _images(outdir / "logs") == [(2, 302, 302), (4, 302, 302)]


@pytest.mark.slow
def test_quiet_prints_only_the_final_line(board_run):
    _, first, log_after_first, _ = board_run
    assert first.stdout.splitlines() == [line for line in first.stdout.splitlines()
                                         if line.startswith("done: outputs in")]
    assert len(first.stdout.splitlines()) == 1
    assert "cgan-train" not in first.stderr
    assert log_after_first == first.stdout, "log.txt holds what was printed"


@pytest.mark.slow
def test_verbose_names_the_files_and_log_txt_grows_across_resume(board_run):
    outdir, first, _, second = board_run
    lines = second.stdout.splitlines()
    assert lines[0].startswith("cgan-train: dcgan on mnist")
    assert any(line.startswith("cgan-train: TensorBoard logs in") for line in lines)
    assert any(line.startswith("resumed from") for line in lines)
    assert any(line.startswith("epoch   2/2") for line in lines)
    wrote = [line for line in lines if "wrote" in line]
    assert wrote == ["  step 4: wrote history.csv, generated/epoch_0002.png, plots/losses.png, "
                     "checkpoints/ckpt-4, generator.keras"]
    assert (outdir / "log.txt").read_text() == first.stdout + second.stdout


def test_normal_level_has_no_file_notices(capsys):
    log = console.RunLog("normal")
    log("an epoch line")
    log.detail("wrote something")
    log.final("done")
    assert capsys.readouterr().out == "an epoch line\ndone\n"


def test_run_log_keeps_lines_until_the_folder_is_ready(tmp_path, capsys):
    log = console.RunLog("quiet")
    log("not shown")
    log.final("start")
    log.error("a problem")
    assert not (tmp_path / "log.txt").exists()
    (tmp_path / "log.txt").write_text("earlier run\n")
    log.attach(tmp_path / "log.txt")
    log.final("done")
    log.keep("cgan-train: error: printed elsewhere")
    assert (tmp_path / "log.txt").read_text() == (
        "earlier run\nstart\na problem\ndone\ncgan-train: error: printed elsewhere\n")
    captured = capsys.readouterr()
    assert captured.out == "start\ndone\n" and captured.err == "a problem\n"
    log.path = tmp_path / "missing_folder" / "blocked" / "log.txt"
    (tmp_path / "missing_folder").write_text("a file where a folder should be")
    log.keep("not written, and no exception")


def test_failed_run_records_its_error_in_log_txt(tmp_path, run_cli, assert_one_line_error,
                                                 tiny_data_dir, monkeypatch):
    import errno

    from cgan_mnist.run_outputs import RunOutputs

    refused = run_cli("train", *TINY, "--epochs", "1", "--outdir", tmp_path / "refused",
                      "--data-dir", tmp_path / "no_data")
    assert_one_line_error(refused, 1, "not found")
    assert not (tmp_path / "refused").exists()  # refused before the folder was touched

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.paths.history))

    monkeypatch.setattr(RunOutputs, "epoch_done", disk_full)
    result = run_cli("train", *TINY, "--epochs", "1", "--outdir", tmp_path / "run",
                     "--data-dir", tiny_data_dir)
    assert_one_line_error(result, 1, "no space left")
    kept = (tmp_path / "run" / "log.txt").read_text().splitlines()
    assert kept[0].startswith("cgan-train: dcgan on mnist")
    assert kept[-1] == [line for line in result.stderr.splitlines()
                        if line.startswith("cgan-train")][0]


# --- --dry-run and --quiet/--verbose as options -------------------------------------------


def test_dry_run_prints_the_resolved_options_without_tensorflow_or_files(
        tmp_path, trained_run, run_cli, assert_one_line_error):
    # A fresh interpreter, to see that TensorFlow is not imported (this process has it).
    new_outdir = tmp_path / "not_created"
    code = ("import sys\nfrom cgan_mnist import cli\n"
            f"assert cli.train_main(['--dry-run', '--outdir', {str(new_outdir)!r}, '--epochs', "
            "'3', '--arch', 'mlp', '--tensorboard']) == 0\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["epochs"] == 3 and resolved["arch"] == "mlp" and resolved["g_width"] == 256
    assert resolved["tensorboard"] is True
    assert resolved["seed"] is None  # drawn when a real run starts, not this one's draw
    assert not new_outdir.exists()

    before = {p: p.stat().st_mtime_ns for p in trained_run.rglob("*")}
    resumed = run_cli("train", "--outdir", trained_run, "--resume", "--epochs", "9",
                      "--dry-run")
    assert resumed.returncode == 0, resumed.stderr
    stored = json.loads((trained_run / "config.json").read_text())
    resolved = json.loads(resumed.stdout)
    assert resolved["epochs"] == 9 and resolved["seed"] == stored["seed"] and resolved["resume"]
    assert {p: p.stat().st_mtime_ns for p in trained_run.rglob("*")} == before

    # It refuses what the real run would refuse, and still touches nothing.
    assert_one_line_error(run_cli("train", "--outdir", trained_run, "--dry-run"), 1,
                          "already holds a run")
    assert_one_line_error(run_cli("train", "--outdir", tmp_path, "--resume", "--dry-run"), 2,
                          "no run to resume")
    assert {p: p.stat().st_mtime_ns for p in trained_run.rglob("*")} == before


def test_quiet_and_verbose_exclude_each_other(run_cli, assert_one_line_error):
    assert_one_line_error(run_cli("train", "--quiet", "--verbose"), 2, "not allowed with")
