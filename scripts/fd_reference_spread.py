"""How much cgan-eval's real-data Fréchet distance moves with the evaluation seed.

The reference row of ``cgan-eval`` is itself a Fréchet distance between two
random draws (real training images against test images, in the evaluator's
features), so the "FD ≤ 2x the real-data reference" target is measured
against a yardstick that depends on ``--seed``. This prints that reference for
several seeds, drawn exactly as ``cgan-eval --seed S`` draws it
(``cgan-eval --reference-seeds K`` reports the same for seeds 0..K-1):

    python scripts/fd_reference_spread.py --seeds 0-9
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def parse_seeds(text: str) -> list[int]:
    """"0-9" or "0,1,5" -> a list of seeds."""
    if "-" in text:
        low, high = (int(part) for part in text.split("-"))
        return list(range(low, high + 1))
    return [int(part) for part in text.split(",")]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-9"))
    p.add_argument("--n-per-class", type=int, default=1000)
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)

    from cgan_mnist import data, measuring
    from cgan_mnist.cli import _start_tensorflow
    from cgan_mnist.evaluator import load_or_train

    _start_tensorflow()
    dataset = data.load("mnist", args.data_dir)
    evaluator = load_or_train(dataset)
    spread = measuring.real_reference_spread(dataset, evaluator, args.n_per_class, args.seeds)
    for seed, distance in zip(spread["seeds"], spread["frechet_distance"]):
        print(f"seed {seed}: real-data Fréchet distance {distance:.3f}")
    print(f"{len(args.seeds)} seeds: mean {spread['mean']:.3f}, "
          f"min {spread['min']:.3f}, max {spread['max']:.3f}")

if __name__ == "__main__":
    main()
