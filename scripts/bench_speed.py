"""Training speed of each architecture on this machine, against its measured peak.

For each architecture it runs the real training step (CGAN.train_step, as
cgan-train does) on real MNIST batches from the real input pipeline, after a
warm-up that includes compiling, in a fresh process per configuration (so
peak memory is that configuration's own), and reports:

- images/s, seconds per 60,000-image epoch, minutes for the default 40 epochs;
- training FLOPs per image (from layer shapes) and the share of the machine's
  peak, measured in the same run with a large float32 matmul and convolution;
- the input pipeline's own rate (batches only, no training) and its ratio to
  training;
- peak resident memory;
- the same for the "before" column: the plain loop, no XLA, batch 64, float32,
  and the ratio between the two columns.

    python scripts/bench_speed.py                  # about 5 minutes on 2 cores
    python scripts/bench_speed.py --quick          # about 1 minute
    python scripts/bench_speed.py --write          # also update BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
MARK_BEGIN, MARK_END = "<!-- bench_speed:begin -->", "<!-- bench_speed:end -->"
EPOCH_IMAGES, EPOCHS = 60000, 40
TARGET_MINUTES = {"mlp": 5, "dcgan": 30}  # issue 4: the default 40-epoch run on this CPU
TARGET_SHARE = 0.40                       # of the measured peak


def measure_peak(seconds: float) -> dict:
    """GFLOP/s of large float32 matmuls and a large 3x3 convolution.

    The matmul is timed at several sizes, with and without XLA, and the best
    kept: on this 2-core EPYC a 1024x1024 matmul runs near 150 GFLOP/s while a
    4096x4096 one reaches only 75-100 (it no longer fits the cache).
    """
    import tensorflow as tf

    def rate(fn, flops):
        fn(), fn()  # warm-up (and compilation)
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            fn().numpy()
            n += 1
        return n * flops / (time.perf_counter() - started) / 1e9

    matmul = {}
    for size in (1024, 2048, 4096):
        a = tf.random.normal((size, size))
        for xla in (False, True):
            fn = tf.function(lambda a=a: tf.reduce_sum(tf.matmul(a, a)), jit_compile=xla)
            matmul[f"{size}{' xla' if xla else ''}"] = rate(fn, 2 * size**3)
    best = max(matmul, key=matmul.get)
    x, k = tf.random.normal((64, 56, 56, 64)), tf.random.normal((3, 3, 64, 64))
    conv = tf.function(lambda: tf.reduce_sum(tf.nn.conv2d(x, k, 1, "SAME")))
    return {"matmul": matmul[best], "matmul_all": matmul,
            "conv": rate(conv, 2 * 64 * 56 * 56 * 64 * 9 * 64)}


def measure_config(arch: str, batch_size: int, xla: bool, mixed: bool, steps: int,
                   options: dict | None = None) -> dict:
    """One configuration, in this process: pipeline rate, training rate, memory.
    ``options``: cgan-train options that differ from the defaults (e.g. widths)."""
    import resource

    from cgan_mnist import data
    from cgan_mnist.config import validate_train_options
    from cgan_mnist.models import training_flops_per_image
    from cgan_mnist.training import build_run

    cfg = validate_train_options({**(options or {}), "arch": arch, "batch_size": batch_size,
                                  "seed": 0, "xla": xla, "mixed_precision": mixed})
    run = build_run(cfg, data.load("mnist", None))  # exactly what cgan-train runs

    started, n = time.perf_counter(), 0
    for _ in run.batches(1):
        n += 1
    pipeline = n * batch_size / (time.perf_counter() - started)

    stream = _endless(run)
    for _ in range(20):
        metrics = run.gan.train_step(next(stream))
    float(metrics["d_loss"])
    started = time.perf_counter()
    for _ in range(steps):
        metrics = run.gan.train_step(next(stream))
    float(metrics["d_loss"])
    images_per_s = steps * batch_size / (time.perf_counter() - started)
    return {"images_per_s": images_per_s, "pipeline_images_per_s": pipeline,
            "flops_per_image": training_flops_per_image(run.gan.generator, run.gan.discriminator,
                                                        run.gan.reuse_fakes),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _endless(run):
    """The run's batches, epoch after epoch, as cgan-train feeds them."""
    epoch = 1
    while True:
        yield from run.batches(epoch)
        epoch += 1


def run_config(arch: str, batch_size: int, xla: bool, mixed: bool, steps: int,
               options: dict | None = None) -> dict:
    spec = json.dumps([arch, batch_size, xla, mixed, steps, options])
    result = subprocess.run([sys.executable, __file__, "--one", spec], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"configuration {spec} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(rows: list[dict], peak: float) -> str:
    header = ["arch", "column", "xla", "batch", "dtype", "img/s", "s/epoch",
              f"min/{EPOCHS} epochs", "MFLOP/img", "GFLOP/s", "% of peak", "pipeline img/s",
              "pipeline/training", "peak RSS MiB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        gflops = r["images_per_s"] * r["flops_per_image"] / 1e9
        cells = [r["arch"], r["column"], "on" if r["xla"] else "off", r["batch"], r["dtype"],
                 f"{r['images_per_s']:,.0f}", f"{EPOCH_IMAGES / r['images_per_s']:.0f}",
                 f"{EPOCHS * EPOCH_IMAGES / r['images_per_s'] / 60:.1f}",
                 f"{r['flops_per_image'] / 1e6:.1f}", f"{gflops:.1f}",
                 f"{100 * gflops / peak:.0f}%", f"{r['pipeline_images_per_s']:,.0f}",
                 f"{r['pipeline_images_per_s'] / r['images_per_s']:.0f}x",
                 f"{r['peak_rss_mib']:,.0f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def columns(arch: str) -> list[tuple]:
    """(column, xla, batch, mixed, options) rows: the plain loop (no XLA, batch 64)
    as "before", the defaults as "now", then variants (cgan-train options)."""
    from cgan_mnist.config import TrainConfig

    batch = TrainConfig.batch_size
    rows = [("before", False, 64, False, None), ("now", True, batch, False, None),
            ("now, bf16", True, batch, True, None)]
    # The cheaper mlp that was tried for speed (BENCHMARKS.md, "Speed experiments"):
    # 5x faster, but 93-95% conditional accuracy after 40 epochs, so not the default.
    if arch == "mlp":
        rows.append(("widths 128/64, batch 256", True, 256, False,
                     {"g_width": 128, "d_width": 64}))
    # One generator pass per step (issue 15): G's update reuses D's fakes.
    rows.append(("--reuse-fakes", True, batch, False, {"reuse_fakes": True}))
    # Tried for quality (BENCHMARKS.md, "Tuning"): dropout in the dcgan's D (its
    # random masks are what it costs), the old, narrower G that "now"
    # (--g-width 64) replaced, and batch 32 (twice the steps per epoch).
    if arch == "dcgan":
        rows.append(("--d-dropout 0.3", True, batch, False, {"d_dropout": 0.3}))
        rows.append(("--g-width 32 (old default)", True, batch, False, {"g_width": 32}))
        rows.append(("batch 32", True, 32, False, None))
    return rows


def write_benchmarks(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{MARK_BEGIN}\n{text}\n{MARK_END}"
    if MARK_BEGIN in old and MARK_END in old:
        new = old[:old.index(MARK_BEGIN)] + block + old[old.index(MARK_END) + len(MARK_END):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)


VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def machine(cpuinfo: str | None = None, environ=None) -> str:
    """The CPU model, its vector extensions, the cores and TensorFlow's settings: what a
    speed figure needs beside it (the same code ran 2-3x apart on two 2-core machines)."""
    import platform

    environ = os.environ if environ is None else environ
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
    try:
        import tensorflow as tf

        version = tf.__version__
    except ImportError:
        version = "not installed"
    settings = ", ".join(f"{k}={environ[k]}" for k in ("TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS",
                                                         "OMP_NUM_THREADS") if k in environ)
    return (f"{model}; vector extensions: {vectors}; {os.cpu_count()} cores; TensorFlow "
            f"{version} (oneDNN on unless TF_ENABLE_ONEDNN_OPTS=0; {settings or 'no TF_* settings'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (about 1 minute)")
    parser.add_argument("--arch", choices=["mlp", "dcgan"], action="append")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_config(*json.loads(args.one))))
        return

    steps = 40 if args.quick else 200
    peak = measure_peak(2 if args.quick else 5)
    best = max(peak["matmul"], peak["conv"])
    rows = []
    for arch in args.arch or ["mlp", "dcgan"]:
        for column, xla, batch, mixed, options in columns(arch):
            # Best of two runs: other tenants of a shared machine only ever slow a run down.
            r = max((run_config(arch, batch, xla, mixed, steps, options) for _ in range(2)),
                    key=lambda result: result["images_per_s"])
            rows.append({"arch": arch, "column": column, "xla": xla, "batch": batch,
                         "dtype": "mixed_bfloat16" if mixed else "float32", **r})
    ratios = []
    for arch in args.arch or ["mlp", "dcgan"]:
        by = {r["column"]: r["images_per_s"] for r in rows if r["arch"] == arch}
        parts = [f"now / before = {by['now'] / by['before']:.2f}x",
                 f"bf16 / now = {by['now, bf16'] / by['now']:.2f}x"]
        for column in sorted(set(by) - {"before", "now", "now, bf16"}):
            parts.append(f"{column} / now = {by[column] / by['now']:.2f}x")
        ratios.append(f"- {arch}: " + "; ".join(parts))
        now = next(r for r in rows if r["arch"] == arch and r["column"] == "now")
        minutes = EPOCHS * EPOCH_IMAGES / now["images_per_s"] / 60
        share = now["images_per_s"] * now["flops_per_image"] / 1e9 / best
        ratios.append(
            f"  - targets: {EPOCHS} epochs in {minutes:.1f} min vs {TARGET_MINUTES[arch]} "
            f"({'met' if minutes <= TARGET_MINUTES[arch] else 'not met'}); "
            f"{100 * share:.0f}% of peak vs {100 * TARGET_SHARE:.0f}% "
            f"({'met' if share >= TARGET_SHARE else 'not met'})")
    text = "\n".join([
        f"## Training speed (`python scripts/bench_speed.py{' --quick' if args.quick else ''}`)",
        "",
        f"Machine: {machine()}. "
        f"Measured peak: matmul {peak['matmul']:.0f} GFLOP/s (best of "
        + ", ".join(f"{k}: {v:.0f}" for k, v in peak["matmul_all"].items())
        + f"), conv {peak['conv']:.0f} GFLOP/s "
        f"(shares below are of the larger, {best:.0f}). {steps} timed steps per row, after "
        "20 warm-up steps; each row in its own process.",
        "",
        table(rows, best),
        "",
        *ratios,
    ])
    print(text)
    if args.write:
        write_benchmarks(text)


if __name__ == "__main__":
    main()
