"""Faults a long run meets: read-only or full disks, NaN losses, damaged files.

Each ends in one line on stderr, a non-zero exit, and earlier outputs intact.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

import numpy as np
import pytest

from cgan_mnist import run_folder
from cgan_mnist.config import validate_train_options
from cgan_mnist.errors import UserError
from cgan_mnist.training import train

TINY = ["--arch", "dcgan", "--g-width", "8", "--d-width", "8", "--latent-dim", "8",
        "--limit", "128", "--batch-size", "32", "--seed", "4", "--no-xla",
        "--checkpoint-interval", "1"]


@contextlib.contextmanager
def tmpfs(path, options):
    """A small real filesystem of our own (root in CI); skip where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_read_only_outdir(tmp_path, tiny_data_dir, run_cli, assert_one_line_error):
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        context = contextlib.nullcontext(folder)
    else:
        context = tmpfs(tmp_path / "ro", "ro,size=1m")
    with context as folder:
        result = run_cli("train", *TINY, "--epochs", "1", "--outdir", folder / "run",
                         "--data-dir", tiny_data_dir)
        assert_one_line_error(result, 1, "cannot write", "writable --outdir")


@pytest.mark.slow
def test_full_disk_keeps_earlier_outputs(tmp_path, tiny_data_dir, run_cli,
                                         assert_one_line_error):
    with tmpfs(tmp_path / "small", "size=2m") as disk:
        outdir = disk / "run"
        first = run_cli("train", *TINY, "--epochs", "1", "--outdir", outdir,
                        "--data-dir", tiny_data_dir)
        assert first.returncode == 0, first.stderr
        history = (outdir / "history.csv").read_bytes()
        grid = (outdir / "generated" / "epoch_0001.png").read_bytes()
        # Fill the disk up, then let training continue.
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * free)
        result = run_cli("train", "--outdir", outdir, "--resume", "--epochs", "3",
                         "--data-dir", tiny_data_dir)
        assert_one_line_error(result, 1, "no space left", "--resume")
        assert (outdir / "history.csv").read_bytes() == history
        assert (outdir / "generated" / "epoch_0001.png").read_bytes() == grid
        left = [p for p in outdir.rglob("*") if p.name.startswith(".") and p.name != ".lock"
                or "_temp" in p.name]
        assert not left, "temp files left behind"
        # Free the space again: the run resumes from its last good checkpoint and completes.
        (disk / "filler").unlink()
        done = run_cli("train", "--outdir", outdir, "--resume", "--epochs", "3",
                       "--data-dir", tiny_data_dir)
        assert done.returncode == 0, done.stderr
        assert len(run_folder.read_history(outdir / "history.csv")) == 12


@pytest.mark.slow
def test_nan_losses_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path, tiny_data_dir,
                                                                   monkeypatch):
    import tensorflow as tf

    from cgan_mnist.gan import CGAN

    original = CGAN._train_step

    def poisoned(self, *batch, **options):  # losses turn NaN from the 6th step on
        metrics = original(self, *batch, **options)
        bad = self.d_optimizer.iterations > 5
        metrics["d_loss"] = tf.where(bad, tf.constant(np.nan), metrics["d_loss"])
        return metrics

    monkeypatch.setattr(CGAN, "_train_step", poisoned)
    cfg = validate_train_options({"limit": 128, "batch_size": 32, "epochs": 3, "seed": 1,
                                  "g_width": 8, "d_width": 8, "latent_dim": 8, "xla": False,
                                  "outdir": str(tmp_path), "data_dir": str(tiny_data_dir),
                                  "checkpoint_interval": 1})
    with pytest.raises(UserError, match=r"non-finite at epoch 2, step 6 .*ckpt-4"):
        train(cfg, log=lambda line: None, progress=False)
    assert [r["step"] for r in run_folder.read_history(tmp_path / "history.csv")] == [1, 2, 3, 4]
    assert not (tmp_path / "generated" / "epoch_0002.png").exists()
    assert (tmp_path / "generator.keras").exists()


@pytest.mark.slow
def test_corrupt_checkpoint_is_refused_on_resume(tmp_path, tiny_data_dir, run_cli,
                                                 assert_one_line_error):
    assert run_cli("train", *TINY, "--epochs", "1", "--outdir", tmp_path,
                   "--data-dir", tiny_data_dir).returncode == 0
    for data_file in (tmp_path / "checkpoints").glob("ckpt-*.data-*"):
        data_file.write_bytes(b"garbage")
    assert_one_line_error(run_cli("train", "--outdir", tmp_path, "--resume", "--epochs", "2",
                                  "--data-dir", tiny_data_dir), 1, "can be restored",
                          "another --outdir")


def test_resume_with_another_architecture_is_refused(trained_run, run_cli,
                                                     assert_one_line_error):
    assert_one_line_error(run_cli("train", "--outdir", trained_run, "--resume", "--arch", "mlp"),
                          2, "--arch mlp differs from the run's dcgan")


def test_model_of_the_wrong_kind_is_refused(tmp_path, run_cli, assert_one_line_error):
    from cgan_mnist.models import ModelConfig, build_models

    _, discriminator = build_models(ModelConfig("dcgan", 8, 10, 8, 8))
    discriminator.save(tmp_path / "d.keras")
    assert_one_line_error(run_cli("generate", "--digit", "2", "--model", tmp_path / "d.keras"),
                          1, "not a cgan-mnist generator")


@pytest.mark.slow
@pytest.mark.cpu_only_determinism
def test_same_seed_same_run_bit_for_bit(tmp_path, tiny_data_dir, run_cli):
    import keras

    with_xla = [arg for arg in TINY if arg != "--no-xla"]  # the default, compiled step
    for name in ("a", "b"):
        assert run_cli("train", *with_xla, "--epochs", "2", "--outdir", tmp_path / name,
                       "--data-dir", tiny_data_dir).returncode == 0
    a, b = (keras.models.load_model(tmp_path / n / "generator.keras").get_weights()
            for n in ("a", "b"))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert (tmp_path / "a" / "history.csv").read_bytes() == \
        (tmp_path / "b" / "history.csv").read_bytes()
