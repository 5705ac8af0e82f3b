"""SIGINT/SIGTERM: finish the step, save, say how to resume, exit 130/143; resume completes.

The interrupted run is a real process (the signal is the point); the resume runs here."""

import os
import signal
import subprocess
import sys

import pytest

from cgan_mnist import run_folder


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_and_resume_finishes(tmp_path, tiny_data_dir, sig, code, run_cli):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CGAN_DATA_DIR": str(tiny_data_dir),
           "PYTHONUNBUFFERED": "1"}
    train = [sys.executable, "-c", "import sys; from cgan_mnist.cli import train_main as m; "
             "sys.exit(m())"]
    args = ["--arch", "mlp", "--limit", "256", "--batch-size", "8", "--epochs", "4",
            "--seed", "2", "--outdir", str(tmp_path), "--no-xla", "--checkpoint-interval", "4"]
    proc = subprocess.Popen(train + args, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # Wait until it is really training (the first epoch line), then interrupt.
    for line in proc.stdout:
        if line.startswith("epoch"):
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "--resume" in err and "Traceback" not in err
    stopped_at = len(run_folder.read_history(tmp_path / "history.csv"))
    assert 32 <= stopped_at < 128  # after epoch 1 (32 steps), before the end
    assert list((tmp_path / "checkpoints").glob("ckpt-*.index"))
    # A grid for each finished epoch only: the one the signal cut short has none.
    grids = sorted(p.name for p in (tmp_path / "generated").glob("epoch_*.png"))
    assert grids == [f"epoch_{e:04d}.png" for e in range(1, stopped_at // 32 + 1)]

    done = run_cli("train", "--outdir", tmp_path, "--resume",
                   env={"CGAN_DATA_DIR": tiny_data_dir})
    assert done.returncode == 0, done.stderr
    history = run_folder.read_history(tmp_path / "history.csv")
    assert [r["step"] for r in history] == list(range(1, 129))
    assert (tmp_path / "generator.keras").exists()
