"""Measure the training speed of each architecture on this machine.

Runs the real training step (the same CGAN.train_step that cgan-train uses)
on real MNIST batches from the real input pipeline, after a warm-up that
includes compiling, and prints images/s, seconds per 60,000-image epoch,
the projected time of the default 40-epoch run, parameter counts and FLOPs.

    python scripts/epoch_time.py                 # both archs, defaults
    python scripts/epoch_time.py --steps 300 --arch dcgan --no-xla
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def measure(arch: str, steps: int, batch_size: int, xla: bool, data_dir: str | None,
            mixed_precision: bool = False) -> dict:
    from cgan_mnist import data
    from cgan_mnist.config import validate_train_options
    from cgan_mnist.devices import mixed_precision_policy
    from cgan_mnist.gan import CGAN, with_noise
    from cgan_mnist.models import ModelConfig, build_models, training_flops_per_image
    from cgan_mnist.training import seed_everything

    cfg = validate_train_options({"arch": arch, "batch_size": batch_size, "seed": 0})
    seed_everything(0)  # as cgan-train does, op determinism included
    dataset = data.load("mnist", data_dir)
    feeder = data.EpochFeeder(dataset.train, 10, batch_size, seed=0)
    policy = mixed_precision_policy(mixed_precision)
    generator, discriminator = build_models(
        ModelConfig(arch, cfg.latent_dim, 10, cfg.g_width, cfg.d_width), policy)
    gan = CGAN(generator, discriminator, jit_compile=xla, global_batch_size=batch_size,
               loss_scaling=policy == "mixed_float16")
    batches = iter(with_noise(feeder.epoch(1), cfg.latent_dim, 0, 1))
    warmup = 20
    for _ in range(warmup):
        metrics = gan.train_step(next(batches))
    float(metrics["d_loss"])
    started = time.perf_counter()
    for _ in range(steps):
        metrics = gan.train_step(next(batches))
    float(metrics["d_loss"])
    seconds = time.perf_counter() - started
    images_per_s = steps * batch_size / seconds
    flops = training_flops_per_image(generator, discriminator)
    return {"arch": arch, "xla": xla, "batch": batch_size, "dtype": policy or "float32", "img/s": images_per_s,
            "s/epoch": 60000 / images_per_s, "min/40 epochs": 40 * 60000 / images_per_s / 60,
            "G params": generator.count_params(), "D params": discriminator.count_params(),
            "MFLOP/img": flops / 1e6, "GFLOP/s": images_per_s * flops / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["mlp", "dcgan"], action="append")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-xla", dest="xla", action="store_false")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    rows = [measure(arch, args.steps, args.batch_size, args.xla, args.data_dir,
                    args.mixed_precision)
            for arch in args.arch or ["mlp", "dcgan"]]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        cells = [f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int)
                 and not isinstance(v, bool) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
