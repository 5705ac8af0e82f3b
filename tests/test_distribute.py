"""tf.distribute on CPU: two logical devices, and two worker processes on loopback.

Both need fresh processes: logical devices must be set before TensorFlow starts its
runtime (this process started it long ago), and each worker is its own process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cgan_mnist import run_folder

TINY = {"arch": "dcgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "limit": 128,
        "batch_size": 32, "epochs": 1, "seed": 7, "xla": False, "checkpoint_interval": 1,
        "ema": 0.9}  # the moving average is updated in cross-replica context: covered too


@pytest.mark.slow
@pytest.mark.two_cpu_devices
@pytest.mark.cpu_only_determinism
def test_mirrored_on_two_devices_matches_one_device(tmp_path, tiny_data_dir):
    """Same global batch, same noise, synchronized batch norm: same weights."""
    script = textwrap.dedent(f"""
        import json, sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from cgan_mnist.config import validate_train_options
        from cgan_mnist.training import train
        for strategy in ("default", "mirrored"):
            options = dict({TINY!r}, strategy=strategy, outdir=sys.argv[1] + "/" + strategy,
                           data_dir={str(tiny_data_dir)!r})
            train(validate_train_options(options), log=print, progress=False)
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "mirrored" / "config.json").read_text())
    assert config["run"]["devices"]["replicas"] == 2

    import keras

    one, two = (keras.models.load_model(tmp_path / s / "generator.keras").get_weights()
                for s in ("default", "mirrored"))
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    h1, h2 = (run_folder.read_history(tmp_path / s / "history.csv") for s in ("default", "mirrored"))
    np.testing.assert_allclose([r["d_loss"] for r in h1], [r["d_loss"] for r in h2], rtol=1e-4)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_and_write_one_set_of_outputs(tmp_path, tiny_data_dir):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    outdir = tmp_path / "run"
    args = ["--strategy", "multi-worker", "--arch", "dcgan", "--g-width", "8", "--d-width", "8",
            "--latent-dim", "8", "--limit", "128", "--batch-size", "32", "--epochs", "2",
            "--seed", "3", "--no-xla", "--outdir", str(outdir), "--data-dir", str(tiny_data_dir)]
    code = "import sys; from cgan_mnist.cli import train_main as m; sys.exit(m())"
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(tf_config)}
        procs.append(subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
    epoch_lines = [[line for line in out.splitlines() if line.startswith("epoch ")]
                   for out, _ in results]
    assert [len(lines) for lines in epoch_lines] == [2, 0]  # only the chief reports and writes
    config = json.loads((outdir / "config.json").read_text())
    assert config["run"]["devices"]["replicas"] == 2
    history = run_folder.read_history(outdir / "history.csv")
    assert [r["step"] for r in history] == list(range(1, 9))  # 128 // 32 per epoch
    assert sorted(p.name for p in (outdir / "generated").iterdir()) == [
        "epoch_0001.png", "epoch_0002.png", "progress.gif"]
    assert sorted(p.name for p in outdir.iterdir()) == [
        ".lock", "checkpoints", "config.json", "generated", "generator.keras", "history.csv", "log.txt",
        "plots"]
    assert (outdir / "log.txt").read_text() == results[0][0], "the chief's log only"
