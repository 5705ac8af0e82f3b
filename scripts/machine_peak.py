"""The machine a speed figure was measured on, and its float32 peak.

``machine()`` describes the CPU (model, vector extensions), the cores and
TensorFlow's settings; ``measure_peak`` times large float32 matmuls and a
convolution; ``row_peak`` is its short form, timed beside each benchmark row,
so that a share of the peak holds on a host whose speed drifts. Used by
``bench_speed.py``, ``bench_time_to_quality.py`` and ``profile_step.py``.
"""

from __future__ import annotations

import os
import time

VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def _rate(fn, flops: float, seconds: float) -> float:
    """GFLOP/s of ``fn`` (``flops`` a call), timed for ``seconds`` after two warm-up calls."""
    fn(), fn()  # warm-up (and compilation)
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn().numpy()
        n += 1
    return n * flops / (time.perf_counter() - started) / 1e9


def _matmul_rate(size: int, xla: bool, seconds: float) -> float:
    import tensorflow as tf

    a = tf.random.normal((size, size))
    fn = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)), jit_compile=xla)
    return _rate(fn, 2 * size**3, seconds)


def measure_peak(seconds: float) -> dict:
    """GFLOP/s of large float32 matmuls and a large 3x3 convolution.

    The matmul is timed at several sizes, with and without XLA, and the best
    kept: on this 2-core EPYC a 1024x1024 matmul runs near 150 GFLOP/s while a
    4096x4096 one reaches only 75-100 (it no longer fits the cache).
    """
    import tensorflow as tf

    matmul = {f"{size}{' xla' if xla else ''}": _matmul_rate(size, xla, seconds)
              for size in (1024, 2048, 4096) for xla in (False, True)}
    best = max(matmul, key=matmul.get)
    x, k = tf.random.normal((64, 56, 56, 64)), tf.random.normal((3, 3, 64, 64))
    conv = tf.function(lambda: tf.reduce_sum(tf.nn.conv2d(x, k, 1, "SAME")))
    return {"matmul": matmul[best], "matmul_all": matmul,
            "conv": _rate(conv, 2 * 64 * 56 * 56 * 64 * 9 * 64, seconds)}


def row_peak(seconds: float = 1.0) -> float:
    """The matmul peak at the two sizes that were best on every machine measured so far
    (1024 and 2048, with XLA), for one row's own share; with the thread settings of the
    row's process (so a one-thread row is judged against one core)."""
    return max(_matmul_rate(size, True, seconds) for size in (1024, 2048))


def is_steady(row: dict, tolerance: float = 0.15) -> bool:
    """Whether the row's peaks before and after its timed steps agree within ``tolerance``."""
    low, high = sorted((row["peak_before"], row["peak_after"]))
    return low >= (1 - tolerance) * high


def own_peak(row: dict) -> float:
    return max(row["peak_before"], row["peak_after"])


def steady_peak(first: dict, last: dict, tolerance: float = 0.15) -> tuple[dict, str]:
    """The larger of the run's peaks measured before and after all rows, and a warning
    when they differ by more than ``tolerance``: something else used the CPU (another
    process, or the host). Once, a busy host halved the measured peak; so each row's
    share is of its own peak (:func:`row_peak`), and this one is only printed."""
    low, high = sorted((first, last), key=lambda peak: peak["matmul"])
    if low["matmul"] >= (1 - tolerance) * high["matmul"]:
        return high, ""
    return high, (f"the matmul peak moved from {first['matmul']:.0f} to {last['matmul']:.0f} "
                  "GFLOP/s during the run: the machine was not quiet (each row's share is "
                  "of its own peak, measured beside it)")


def cpu(cpuinfo: str | None = None) -> str:
    """The CPU model and its vector extensions: what makes two machines' speed comparable."""
    import platform

    if cpuinfo is None:
        try:
            cpuinfo = open("/proc/cpuinfo").read()
        except OSError:
            cpuinfo = ""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    model = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields:
        model += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    flags = set(fields.get("flags", "").split())
    vectors = ", ".join(f for f in VECTOR_FLAGS if f in flags) or "unknown"
    return f"{model}; vector extensions: {vectors}"


def machine(cpuinfo: str | None = None, environ=None) -> str:
    """The CPU, the cores and TensorFlow's settings: what a speed figure needs beside it
    (the same code ran 2-3x apart on two 2-core machines)."""
    environ = os.environ if environ is None else environ
    try:
        import tensorflow as tf

        version = tf.__version__
    except ImportError:
        version = "not installed"
    settings = ", ".join(f"{k}={environ[k]}" for k in ("TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS",
                                                         "OMP_NUM_THREADS") if k in environ)
    return (f"{cpu(cpuinfo)}; {os.cpu_count()} cores; TensorFlow "
            f"{version} (oneDNN on unless TF_ENABLE_ONEDNN_OPTS=0; {settings or 'no TF_* settings'})")
