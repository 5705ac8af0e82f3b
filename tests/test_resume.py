"""Stopping and resuming loses nothing: same weights and history as a straight run."""

import json
import signal

import numpy as np
import pytest

from cgan_mnist import run_folder
from cgan_mnist.config import validate_train_options
from cgan_mnist.errors import UserError
from cgan_mnist.training import train


def _train(outdir, data_dir, arch, epochs, **extra):
    options = {"arch": arch, "epochs": epochs, "limit": 128, "batch_size": 32, "seed": 11,
               "g_width": 8, "d_width": 8, "latent_dim": 8, "outdir": str(outdir),
               "data_dir": str(data_dir), "xla": False, "checkpoint_interval": 1, **extra}
    stored = None
    if extra.get("resume"):
        import json

        stored = json.loads((outdir / "config.json").read_text())
    train(validate_train_options(options, stored), log=lambda line: None, progress=False)


def _weights(outdir):
    import keras

    return [w for w in keras.models.load_model(outdir / "generator.keras").get_weights()]


@pytest.mark.slow
@pytest.mark.cpu_only_determinism
@pytest.mark.parametrize("arch, ema", [("mlp", 0.0), ("dcgan", 0.9)])
def test_resumed_run_equals_uninterrupted_run(tmp_path, tiny_data_dir, arch, ema):
    """With ``ema`` the saved generator is the average, so it must be checkpointed too.
    The step (one generator pass, ``--reuse-fakes``, the default) is fixed on resume."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    _train(straight, tiny_data_dir, arch, epochs=3, ema=ema)
    _train(stopped, tiny_data_dir, arch, epochs=1, ema=ema)
    with pytest.raises(UserError, match="--reuse-fakes False differs from the run's True"):
        _train(stopped, tiny_data_dir, arch, epochs=3, resume=True, reuse_fakes=False)
    _train(stopped, tiny_data_dir, arch, epochs=3, resume=True)
    assert json.loads((stopped / "config.json").read_text())["reuse_fakes"] is True
    for a, b in zip(_weights(straight), _weights(stopped)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    h1, h2 = (run_folder.read_history(d / "history.csv") for d in (straight, stopped))
    assert [r["step"] for r in h2] == list(range(1, 13))
    np.testing.assert_allclose([r["g_loss"] for r in h1], [r["g_loss"] for r in h2], rtol=1e-5)
    assert len(list((stopped / "generated").glob("epoch_*.png"))) == 3


@pytest.mark.slow
def test_used_outdir_is_refused_without_resume_or_overwrite(tmp_path, tiny_data_dir):
    _train(tmp_path, tiny_data_dir, "mlp", epochs=1)
    before = (tmp_path / "history.csv").read_text()
    with pytest.raises(UserError, match="already holds a run"):
        _train(tmp_path, tiny_data_dir, "mlp", epochs=1)
    assert (tmp_path / "history.csv").read_text() == before
    _train(tmp_path, tiny_data_dir, "mlp", epochs=1, overwrite=True)
    assert len(run_folder.read_history(tmp_path / "history.csv")) == 4


@pytest.mark.slow
def test_resume_finds_the_data_where_the_run_found_it(tmp_path, tiny_data_dir, monkeypatch,
                                                      run_cli, assert_one_line_error):
    """--resume from a new shell without CGAN_DATA_DIR used to fail: no data found."""
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data_dir)
    tiny = ["--arch", "mlp", "--g-width", "8", "--d-width", "8", "--latent-dim", "8",
            "--limit", "64", "--batch-size", "32", "--no-xla", "--outdir", tmp_path / "run"]
    assert run_cli("train", *tiny, "--epochs", 1,
                   env={"CGAN_DATA_DIR": data_dir}).returncode == 0
    monkeypatch.delenv("CGAN_DATA_DIR", raising=False)
    resumed = run_cli("train", "--outdir", tmp_path / "run", "--resume", "--epochs", 2)
    assert resumed.returncode == 0, resumed.stderr
    (data_dir / "mnist.npz").rename(tmp_path / "moved.npz")
    gone = run_cli("train", "--outdir", tmp_path / "run", "--resume", "--epochs", 3)
    assert_one_line_error(gone, 1, f"the run's data {data_dir / 'mnist.npz'} is gone",
                          "--data-dir")
    moved = run_cli("train", "--outdir", tmp_path / "run", "--resume", "--epochs", 3,
                    "--data-dir", tmp_path / "elsewhere")
    assert_one_line_error(moved, 1, "not found")


def test_the_progress_bar_shows_rate_and_losses_within_the_epoch(tmp_path, tiny_data_dir,
                                                                 capsys):
    """The in-epoch bar used to show neither a rate nor a time estimate."""
    cfg = validate_train_options({"arch": "mlp", "epochs": 1, "limit": 256, "batch_size": 8,
                                  "g_width": 8, "d_width": 8, "latent_dim": 8, "seed": 1,
                                  "outdir": str(tmp_path), "data_dir": str(tiny_data_dir),
                                  "xla": False})
    train(cfg, log=lambda line: None, progress=True)
    out = capsys.readouterr().out
    assert "32/32" in out and "/step" in out and "d_loss:" in out and "g_loss:" in out


class _StopAtStep:
    """Stands in for training._SignalCatcher: SIGINT "arrives" during step ``steps``."""

    def __init__(self, steps: int):
        self.steps, self.checks = steps, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @property
    def received(self) -> int:  # read once after every step, then once after the epoch
        self.checks += 1
        return signal.SIGINT if self.checks >= self.steps else 0


@pytest.mark.slow
@pytest.mark.cpu_only_determinism
@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_a_run_with_every_quality_lever_resumes_exactly(tmp_path, tiny_data_dir, arch,
                                                        monkeypatch):
    """The levers with state or randomness: the learning-rate schedule and lazy R1 (the
    optimizers' step counts), spectral normalization's vectors u, DiffAugment's draws and
    the balanced order; with the hinge loss, the minibatch standard deviation and mode
    seeking. The run is interrupted after its first epoch (a shorter run would have another
    schedule); all are fixed on resume."""
    from cgan_mnist import training

    levers = {"lr_decay": 0.5, "spectral_norm": True, "diffaugment": "translation,cutout",
              "balanced_batches": True, "r1": 1.0, "r1_interval": 3, "loss": "hinge",
              "minibatch_stddev": True, "mode_seeking": 1.0}  # R1 on D updates 0, 3, 6
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    _train(straight, tiny_data_dir, arch, epochs=2, **levers)
    with monkeypatch.context() as patch:
        patch.setattr(training, "_SignalCatcher", lambda: _StopAtStep(4))  # 4 steps an epoch
        with pytest.raises(training.Interrupted):
            _train(stopped, tiny_data_dir, arch, epochs=2, **levers)
    assert len(run_folder.read_history(stopped / "history.csv")) == 4
    config = json.loads((stopped / "config.json").read_text())
    assert {k: config[k] for k in levers} == levers
    with pytest.raises(Exception, match="--r1 0.0 differs from the run's 1.0"):
        _train(stopped, tiny_data_dir, arch, epochs=2, resume=True, r1=0.0)
    _train(stopped, tiny_data_dir, arch, epochs=2, resume=True)
    for a, b in zip(_weights(straight), _weights(stopped)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    h1, h2 = (run_folder.read_history(d / "history.csv") for d in (straight, stopped))
    assert len(h1) == len(h2) == 8
    np.testing.assert_allclose([r["d_loss"] for r in h1], [r["d_loss"] for r in h2], rtol=1e-5)
