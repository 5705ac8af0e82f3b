"""Ship a finished run's generator in the package: cgan-generate --pretrained NAME.

    python scripts/ship_pretrained.py runs/mnist-dcgan mnist-dcgan --data-dir ../shared/data

Copies the run's generator.keras and config.json into
``cgan_mnist/pretrained/NAME/`` and measures it as ``cgan-eval --cas`` does
(1,000 samples per class, ``--seed``, the shipped evaluator of its dataset) into
``eval.json`` there: the numbers the README's "how good" table is read from.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished cgan-train run folder")
    p.add_argument("name", help="e.g. mnist-dcgan, mnist-mlp, fashion_mnist-dcgan")
    p.add_argument("--seed", type=int, default=1, help="cgan-eval's --seed (default 1)")
    p.add_argument("--n-per-class", type=int, default=1000)
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)

    from cgan_mnist import evaluation, outputs, pretrained, run_folder
    from cgan_mnist.cli import _start_tensorflow
    from cgan_mnist.report import format_report

    stored = run_folder.read_config(args.run)
    if not stored or run_folder.run_section(stored, "finished_epochs") != stored.get("epochs"):
        raise SystemExit(f"{args.run} holds no finished run; let cgan-train finish it first")
    _start_tensorflow()
    target = pretrained.FOLDER / args.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("generator.keras", "config.json"):
        shutil.copyfile(args.run / name, target / name)
    request = evaluation.request_for(target / "generator.keras", args.n_per_class, args.seed,
                                     target / "eval.json", args.data_dir, cas=True)
    result = evaluation.run(request, log=print)
    outputs.write_json(target / "eval.json", result)
    print(format_report(result))
    size = sum(f.stat().st_size for f in pretrained.FOLDER.rglob("*") if f.is_file())
    print(f"shipped {args.name} in {target}; all pretrained generators: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
