"""Compare training options by sample quality: the tuning tables of BENCHMARKS.md.

Each ``--variant`` is a set of cgan-train options (``key=value`` pairs, comma
separated, e.g. ``ema=0.999,d_lr=4e-4``; ``defaults`` for none). Every variant
is trained from the same seed in its own folder, OUTDIR/ARCH/VARIANT, and
evaluated with cgan-eval's full numbers (Parzen included) at each epoch of
``--at``, resuming in between. With ``--live`` a run that keeps a moving
average of G is also evaluated with the live weights of its latest checkpoint,
so one run measures the average against no average.

Results are kept as ``tune.json`` in each run's folder; the markdown table is
rebuilt from all of them under OUTDIR/ARCH, so variants can be run one at a
time, or in parallel processes, and the table collects them all. A variant
that was run before (same options, seed and sample count) is continued: its
evaluated epochs are kept and its run resumes, so ``--epochs 60 --at 60``
extends a 40-epoch run instead of starting it again, and ``--live`` at the
run's last epoch adds the live weights' row without training. A run that was
stopped before its first evaluation resumes from its last checkpoint.

    python scripts/tune_quality.py --arch dcgan --variant ema=0.999 --live --epochs 40 --at 10,20,40
    python scripts/tune_quality.py --arch dcgan --variant ema=0.999,d_lr=4e-4 --epochs 20 --at 20
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_quality  # noqa: E402 (after the path set-up)

MARKERS = "<!-- tune_quality:{arch}:begin -->", "<!-- tune_quality:{arch}:end -->"
RESULTS = "tune.json"


def parse_variant(text: str) -> dict:
    """``"ema=0.999,d_lr=4e-4"`` -> {"ema": 0.999, "d_lr": 0.0004}, typed like TrainConfig."""
    from cgan_mnist.config import TrainConfig

    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    options = {}
    for pair in filter(None, text.split(",")):
        if pair == "defaults":
            continue
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types:
            raise SystemExit(f"--variant: {pair!r} is not KEY=VALUE with a cgan-train option")
        kind = str(types[key])
        options[key] = int(value) if "int" in kind else float(value) if "float" in kind else value
    return options


def slug(options: dict) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in sorted(options.items())) or "defaults"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=["mlp", "dcgan"], default="dcgan")
    p.add_argument("--variant", action="append", default=None,
                   help="cgan-train options as key=value,... (repeatable; default: defaults)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--at", default="10,20,40", help="epochs to evaluate at, comma-separated")
    p.add_argument("--live", action="store_true",
                   help="also evaluate the live generator of runs that keep a moving average")
    p.add_argument("--n-per-class", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1, help="seed of training and of the samples")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--outdir", default="runs/tune", help="the runs go to OUTDIR/ARCH/VARIANT")
    p.add_argument("--out", default="BENCHMARKS.md", help="markdown file to update")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--table-only", action="store_true",
                   help="train nothing: rebuild the table from the runs under OUTDIR/ARCH")
    args = p.parse_args(argv)
    args.variants = [parse_variant(v) for v in args.variant or ["defaults"]]
    args.at = sorted({int(e) for e in args.at.split(",")} | {args.epochs})
    args.at = [e for e in args.at if 1 <= e <= args.epochs]
    return args


def live_generator(outdir: Path):
    """The generator of the run's latest checkpoint: its live weights, not the average."""
    import tensorflow as tf

    from cgan_mnist import run_folder
    from cgan_mnist.models import ModelConfig, build_generator

    stored = run_folder.read_config(outdir)
    generator = build_generator(ModelConfig(**stored["run"]["model"]))
    latest = tf.train.latest_checkpoint(str(outdir / "checkpoints"))
    tf.train.Checkpoint(generator=generator).restore(latest).assert_existing_objects_matched()
    return generator


def summary(column: dict) -> dict:
    keys = ("conditional_accuracy", "frechet_distance", "precision", "recall",
            "parzen_log_likelihood", "parzen_standard_error")
    return {**{k: column[k] for k in keys}, "worst_class_accuracy": min(column["per_class_accuracy"])}


def tune_variant(options: dict, args, dataset, evaluator) -> None:
    from functools import partial

    from cgan_mnist import generate, measuring, outputs

    outdir = Path(args.outdir) / args.arch / slug(options)
    results_path = outdir / RESULTS
    results = earlier_results(results_path, options, args) or {
        "variant": slug(options), "options": options, "seed": args.seed,
        "n_per_class": args.n_per_class, "rows": [], "commands": []}
    results["commands"].append("python scripts/tune_quality.py " + " ".join(sys.argv[1:]))
    done = {(row["epoch"], row["generator"]) for row in results["rows"]}
    last = max((row["epoch"] for row in results["rows"]), default=0)
    wall = max((row["wall_s"] for row in results["rows"]), default=0.0)
    wanted = ["sampled"] + (["live"] if args.live and options.get("ema") else [])
    generators = {"sampled": lambda: generate.load_generator(outdir / "generator.keras"),
                  "live": lambda: live_generator(outdir)}  # loaded when evaluated
    for epoch in args.at:
        missing = [which for which in wanted if (epoch, which) not in done]
        if not missing:
            continue
        if epoch < last:
            raise SystemExit(f"{slug(options)}: the run is past epoch {epoch} already "
                             f"(evaluated up to {last}); ask for later epochs")
        if epoch > last:  # at `last` the run's latest checkpoint is this epoch's: no training
            print(f"{slug(options)}: training to epoch {epoch}", flush=True)
            fresh = not results["rows"] and not interrupted_run(outdir, options, args)
            wall += bench_quality.train_to(args.arch, epoch, args, outdir, options, fresh=fresh)
            last, missing = epoch, wanted
        for which in missing:
            print(f"{slug(options)}: evaluating epoch {epoch} ({which})", flush=True)
            result = measuring.evaluate(partial(generate.sample, generators[which]()), dataset,
                                        args.n_per_class, args.seed, evaluator=evaluator,
                                        real=False)
            results["rows"].append({"epoch": epoch, "generator": which, "wall_s": wall,
                                    **summary(result["generator"])})
        outputs.write_json(results_path, results)


def interrupted_run(outdir: Path, options: dict, args) -> bool:
    """Whether ``outdir`` holds a checkpointed run of this variant that stopped before
    its first evaluation (killed, or stopped by a signal): it is resumed, not restarted."""
    from cgan_mnist import run_folder

    stored = run_folder.read_config(outdir)
    if stored is None or not any(outdir.glob("checkpoints/*.index")):
        return False
    wanted = {**options, "arch": args.arch, "seed": args.seed, "limit": args.limit}
    return all(stored.get(key) == value for key, value in wanted.items())


def earlier_results(path: Path, options: dict, args) -> dict | None:
    """The kept results of this variant, if an earlier run measured it the same way."""
    if not path.exists():
        return None
    earlier = json.loads(path.read_text())
    if (earlier.get("options"), earlier.get("seed"), earlier.get("n_per_class")) != \
            (options, args.seed, args.n_per_class):
        return None
    earlier["commands"] = commands_of(earlier)
    return earlier


def commands_of(results: dict) -> list[str]:
    """The commands that made these results (older files kept one, as "command")."""
    return results.get("commands") or ([results["command"]] if "command" in results else [])


def all_results(outdir: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(outdir.glob(f"*/{RESULTS}"))]


def table(outdir: Path) -> list[str]:
    from cgan_mnist.report import clock, markdown_table, parzen

    head = ["variant", "epoch", "generator", "train wall time", "cond. acc.", "worst digit",
            "FD", "precision", "recall", "Parzen (nats)"]
    cells = []
    for results in all_results(outdir):
        for row in sorted(results["rows"], key=lambda r: (r["epoch"], r["generator"])):
            which = "average" if row["generator"] == "sampled" and results["options"].get("ema") \
                else "live"
            cells.append([
                f"`{results['variant']}`", str(row["epoch"]), which, clock(row["wall_s"]),
                f"{100 * row['conditional_accuracy']:.2f}%",
                f"{100 * row['worst_class_accuracy']:.1f}%",
                f"{row['frechet_distance']:.3f}", f"{row['precision']:.3f}",
                f"{row['recall']:.3f}", parzen(row)])
    return markdown_table(head, cells)


def main(argv=None) -> None:
    args = parse_args(argv)
    from cgan_mnist import outputs
    from cgan_mnist.report import clock

    started = time.perf_counter()
    if not args.table_only:
        from cgan_mnist import data
        from cgan_mnist.cli import _start_tensorflow
        from cgan_mnist.evaluator import load_or_train

        _start_tensorflow()
        dataset = data.load("mnist", args.data_dir)
        evaluator = load_or_train(dataset)
        for options in args.variants:
            tune_variant(options, args, dataset, evaluator)
    runs = Path(args.outdir) / args.arch
    commands = sorted({c for r in all_results(runs) for c in commands_of(r)})
    body = "\n".join([f"## Tuning runs: {args.arch}", "",
                      "Each row: cgan-eval's full evaluation (1,000 samples per digit unless "
                      "the command says otherwise) of the run's generator at that epoch; "
                      "*average* is the moving average that `--ema` samples from, *live* the "
                      "training weights of the same run. Made by:", "",
                      *[f"- `{c}`" for c in commands], "", *table(runs)])
    out = Path(args.out)
    text = out.read_text() if out.exists() else ""
    outputs.write_text(out, bench_quality.replace_section(text, body, args.arch, MARKERS))
    print(body)
    print(f"\nwrote {out} ({clock(time.perf_counter() - started)})")


if __name__ == "__main__":
    main()
