"""SIGINT/SIGTERM: finish the step, save, say how to resume, exit 130/143; resume completes."""

import os
import signal
import subprocess
import sys

import pytest

from cgan_mnist import outputs


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_and_resume_finishes(tmp_path, tiny_data_dir, sig, code):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CGAN_DATA_DIR": str(tiny_data_dir),
           "PYTHONUNBUFFERED": "1"}
    train = [sys.executable, "-c", "import sys; from cgan_mnist.cli import train_main as m; "
             "sys.exit(m())"]
    args = ["--arch", "mlp", "--limit", "1024", "--batch-size", "8", "--epochs", "6",
            "--seed", "2", "--outdir", str(tmp_path), "--no-xla", "--checkpoint-interval", "6"]
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
    stopped_at = len(outputs.read_history(tmp_path / "history.csv"))
    assert 128 <= stopped_at < 768  # after epoch 1, before the end
    assert list((tmp_path / "checkpoints").glob("ckpt-*.index"))

    done = subprocess.run(train + ["--outdir", str(tmp_path), "--resume"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    history = outputs.read_history(tmp_path / "history.csv")
    assert [r["step"] for r in history] == list(range(1, 769))
    assert (tmp_path / "generator.keras").exists()
