"""Sample quality over training for each architecture: the quality tables of BENCHMARKS.md.

Trains each architecture with the default options through ``training.train``,
stopping at each epoch of ``--at`` to run the full evaluation (cgan-eval's
numbers, Parzen included) and resuming from there; a resumed run equals an
uninterrupted one, so this is one run per architecture. Writes two markdown
tables between this script's markers in ``--out`` (other sections of the file
stay): every metric per evaluated epoch with the training wall time so far,
and the Parzen estimates beside Mirza & Osindero (2014)'s Table 1.

    python scripts/bench_quality.py                       # 40 epochs, at 5,10,20,40: hours on a CPU
    python scripts/bench_quality.py --quick --out /tmp/bench.md   # a smoke run of a few minutes

The evaluator is the cached one (trained on first use, a few minutes on a CPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Each architecture has its own section, so one can be re-measured alone.
MARKERS = "<!-- bench_quality:{arch}:begin -->", "<!-- bench_quality:{arch}:end -->"
QUICK = {"epochs": 2, "at": "1,2", "limit": 2048, "n_per_class": 100}
HEADINGS = {"conditional_accuracy": "cond. acc.", "frechet_distance": "FD",  # report.REPORT_ROWS keys
            "frechet_distance_class_mean": "FD per digit", "classifier_score": "classifier score",
            "precision": "precision", "recall": "recall"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", action="append", choices=["mlp", "dcgan"],
                   help="architecture (repeatable; default: both)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--at", default="5,10,20,40", help="epochs to evaluate at, comma-separated")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--n-per-class", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="seed of training and of the samples")
    p.add_argument("--outdir", default="runs/bench", help="the runs go to OUTDIR/ARCH")
    p.add_argument("--out", default="BENCHMARKS.md", help="markdown file to update")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: " + ", ".join(f"--{k.replace('_', '-')} {v}"
                                                  for k, v in QUICK.items()))
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    args.at = sorted({int(e) for e in str(args.at).split(",")} | {args.epochs})
    args.at = [e for e in args.at if 1 <= e <= args.epochs]
    return args


def train_to(arch: str, epoch: int, args, outdir: Path, options: dict | None = None,
             fresh: bool | None = None) -> float:
    """Train (or resume) the run in ``outdir`` up to ``epoch``, with the default options
    or ``options``; return the seconds it took. ``fresh``: start the run anew (by
    default, at the first epoch of ``args.at``)."""
    from cgan_mnist import run_folder
    from cgan_mnist.config import validate_train_options
    from cgan_mnist.training import train

    fresh = epoch == args.at[0] if fresh is None else fresh
    resume = run_folder.RunPaths(outdir).config.exists() and not fresh
    given = {**(options or {}), "arch": arch, "epochs": epoch, "seed": args.seed,
             "outdir": str(outdir), "data_dir": args.data_dir, "limit": args.limit,
             "resume": resume or None, "overwrite": None if resume else True}
    stored = run_folder.read_config(outdir) if resume else None
    started = time.perf_counter()
    train(validate_train_options(given, stored), log=lambda line: print(f"  {line}", flush=True),
          progress=False)
    return time.perf_counter() - started


def bench_arch(arch: str, args, dataset, evaluator) -> list[dict]:
    from functools import partial

    from cgan_mnist.generate import load_generator, sample
    from cgan_mnist.measuring import evaluate

    outdir, wall, rows = Path(args.outdir) / arch, 0.0, []
    for epoch in args.at:
        print(f"{arch}: training to epoch {epoch}", flush=True)
        wall += train_to(arch, epoch, args, outdir)
        generator = load_generator(outdir / "generator.keras")
        print(f"{arch}: evaluating epoch {epoch}", flush=True)
        result = evaluate(partial(sample, generator), dataset, args.n_per_class, args.seed,
                          evaluator=evaluator, real=not rows)
        rows.append({"arch": arch, "epoch": epoch, "wall_s": wall, "result": result})
    return rows


def metrics_table(rows: list[dict], real: dict) -> list[str]:
    from cgan_mnist.report import REPORT_ROWS, clock, markdown_table, parzen

    formats = [(key, {k: f for k, _, f in REPORT_ROWS}[key]) for key in HEADINGS]
    head = ["arch", "epoch", "train wall time", *HEADINGS.values(), "Parzen (nats)"]
    cells = [[row["arch"], str(row["epoch"]), clock(row["wall_s"])]
             + [fmt(row["result"]["generator"][key]) for key, fmt in formats]
             + [parzen(row["result"]["generator"])] for row in rows]
    cells.append(["real data", "", ""] + [fmt(real[key]) for key, fmt in formats] + [parzen(real)])
    return markdown_table(head, cells)


def parzen_table(rows: list[dict], real: dict, n_samples: int) -> list[str]:
    from cgan_mnist.measuring import PAPER_PARZEN
    from cgan_mnist.report import markdown_table, parzen

    cells = [[model, f"{mean:g} ± {error:g}", "Mirza & Osindero (2014), Table 1"]
             for model, mean, error in PAPER_PARZEN]
    finals = {row["arch"]: row for row in rows}
    cells += [[f"cgan-mnist {arch}, epoch {row['epoch']}", parzen(row["result"]["generator"]),
               f"this run, {n_samples:,} samples"] for arch, row in finals.items()]
    cells.append(["real training images", parzen(real), f"this run, {n_samples:,} images"])
    return markdown_table(["model", "Parzen log-likelihood, MNIST test set", "source"], cells)


def section(rows: list[dict], args, evaluator, device: str, seconds: float) -> str:
    from cgan_mnist.report import clock

    first = rows[0]["result"]
    real, ref = first["real"], first["reference"]
    command = "python scripts/bench_quality.py " + " ".join(sys.argv[1:])
    return "\n".join([
        f"## Sample quality over training: {rows[0]['arch']}",
        "",
        f"Made by `{command.strip()}` on {time.strftime('%Y-%m-%d')}, {device}, "
        f"{os.cpu_count()} CPU cores ({platform.machine()}), in {clock(seconds)}. Default options"
        f"{f', first {args.limit} training images' if args.limit else ''}, seed {args.seed}. "
        f"Each row: {first['samples']:,} samples ({args.n_per_class} per digit) under the "
        f"evaluator (test accuracy {100 * evaluator.test_accuracy:.2f}%); Fréchet distance and "
        f"precision/recall (k=3) against {ref['test_images_per_class']} test images per digit; "
        f"Parzen sigma chosen on {ref['parzen_valid_examples']:,} validation images. "
        "Train wall time: training only, cumulative. The real-data row measures "
        f"{first['samples']:,} training images in place of samples.",
        "",
        *metrics_table(rows, real),
        "",
        "Parzen-window estimates beside the paper's:",
        "",
        *parzen_table(rows, real, first["samples"]),
    ])


def replace_section(text: str, body: str, arch: str, markers=MARKERS) -> str:
    """Put ``body`` between the ``markers`` (templates, this script's by default)
    for ``arch``, keeping everything else in ``text``."""
    begin, end = (marker.format(arch=arch) for marker in markers)
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        return before + block + rest.split(end, 1)[1]
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + block + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    from cgan_mnist import data, outputs
    from cgan_mnist.cli import _start_tensorflow
    from cgan_mnist.evaluator import load_or_train

    device = _start_tensorflow()
    dataset = data.load("mnist", args.data_dir)
    evaluator = load_or_train(dataset)
    out = Path(args.out)
    for arch in args.arch or ["mlp", "dcgan"]:
        arch_started = time.perf_counter()
        rows = bench_arch(arch, args, dataset, evaluator)
        body = section(rows, args, evaluator, device, time.perf_counter() - arch_started)
        text = out.read_text() if out.exists() else ""
        outputs.write_text(out, replace_section(text, body, arch))
        print(body)
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
