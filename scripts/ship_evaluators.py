"""Make the evaluators shipped in the package: one per dataset, by the fixed recipe.

    python scripts/ship_evaluators.py                      # MNIST and Fashion-MNIST
    python scripts/ship_evaluators.py --dataset mnist

Each is the cached evaluator of ``cgan_mnist.evaluator.load_or_train`` (trained
here on first use, about 6 minutes on 2 cores), saved again without its
optimizer's state (a quarter of the size) into ``cgan_mnist/evaluators/``
with its info: recipe, data fingerprint, accuracies. cgan-eval then uses it
for every copy of that dataset, on every machine.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", action="append", choices=["mnist", "fashion_mnist"],
                   help="dataset (repeatable; default: both)")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)

    from cgan_mnist import data, evaluator, outputs
    from cgan_mnist.cli import _start_tensorflow

    _start_tensorflow()
    for name in args.dataset or ["mnist", "fashion_mnist"]:
        dataset = data.load(name, args.data_dir)
        trained = evaluator.load_or_train(dataset, shipped=None)  # the cache, or trained now
        clean = evaluator.build_classifier(dataset.num_classes)  # no optimizer state
        clean.set_weights(trained.classifier.get_weights())
        paths = evaluator.cache_paths(dataset, evaluator.SHIPPED)
        with outputs.atomic_path(paths.model, suffix=".keras") as tmp:
            clean.save(tmp)
        info = {k: v for k, v in trained.info.items() if k != "data_path"}
        outputs.write_json(paths.info, info)
        print(f"{name}: test accuracy {info['test_accuracy']:.2%}, weights "
              f"{evaluator.Evaluator(clean, info).weights_hash} -> {paths.model} "
              f"({paths.model.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
