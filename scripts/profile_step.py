"""Where a training step's time goes: D's update, G's update, the moving average, the input.

Each variant runs in a fresh process, builds exactly what cgan-train builds
(``training.build_run``) and times, on one fixed real MNIST batch after a
warm-up (so no input pipeline), milliseconds per call of:

- ``step``: the whole step (``CGAN.train_step``: D update, G update, average);
- ``d``: D's update alone (G's forward pass for its fakes included);
- ``g``: G's update alone;
- ``ema``: the moving-average copy alone;
- ``input``: one batch from the run's input pipeline (its noise included).

Variants switch off one suspect at a time: D's dropout (random masks under
XLA; "Keras's dropout masks" is the step before ``fast_layers.ThreefryDropout``),
the moving average, CPU op determinism (``seed_everything`` turns it on),
synchronized batch normalization, XLA. The numbers say which one the step pays
for. Two variants put back what an earlier profile removed, side by side with
the default: D's first convolution and G's last upsampling as XLA convolutions,
and the moving average's update as separate ops (not compiled).

``--layers`` instead times each weighted layer of both networks alone, under
XLA, on random inputs of the batch's size: forward, and forward plus backward
(gradients for the input and the weights), with the GFLOP/s that makes counted
as ``models.layer_flops`` counts (a backward pass as twice the forward), and
its share of the float32 matmul peak measured in the same run.

    python scripts/profile_step.py --arch mlp            # about 3 minutes on 2 cores
    python scripts/profile_step.py --arch dcgan --steps 50
    python scripts/profile_step.py --arch dcgan --layers  # about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = {  # name: (cgan-train options, process settings)
    "default": ({}, {}),
    "no dropout in D": ({"d_dropout": 0.0}, {}),
    "no moving average": ({"ema": 0.0}, {}),
    "Keras's dropout masks": ({"dropout_masks": "keras"}, {}),
    "no op determinism": ({}, {"determinism": False}),
    "unsynchronized batch norm": ({}, {"plain_bn": True}),
    "no XLA": ({"xla": False}, {}),
    "D's first conv and G's last as XLA convolutions": ({}, {"xla_convs": True}),
    "moving average not compiled": ({}, {"plain_average": True}),
}


def _timed(fn, args, steps: int) -> float:
    """Milliseconds per call, after two warm-up calls (compilation included there)."""
    import tensorflow as tf

    for _ in range(2):
        tf.nest.map_structure(lambda t: t.numpy(), fn(*args))
    started = time.perf_counter()
    for _ in range(steps):
        out = fn(*args)
    tf.nest.map_structure(lambda t: t.numpy(), out)
    return 1000 * (time.perf_counter() - started) / steps


def _convolutions_as_before() -> None:
    """The forms the two thin layers had before ``profile_step --layers`` found them
    slow: D's first conv and its label table as XLA convolutions, G's last upsampling
    as a pixel shuffle. Same function, same weights."""
    from keras import ops

    from cgan_mnist import fast_layers as fl

    def image_convolution(self, image, kernel):
        return ops.conv(image, kernel, strides=self.strides, padding="same")

    def label_convolution(self, label, kernel):
        unit_planes = ops.broadcast_to(  # plane set c is all ones in channel c
            ops.reshape(ops.eye(self.num_classes, dtype=self.compute_dtype),
                        (self.num_classes, 1, 1, self.num_classes)),
            (self.num_classes, *self.plane_shape, self.num_classes))
        table = ops.conv(unit_planes, kernel, strides=self.strides, padding="same")
        mixed = ops.matmul(label, ops.reshape(table, (self.num_classes, -1)))
        return ops.reshape(mixed, (-1, *self.output_plane, self.filters))

    fl.LabelPlaneConv2D._image_convolution = image_convolution
    fl.LabelPlaneConv2D._label_convolution = label_convolution
    fl.OverlapAddConv2DTranspose.call = fl.PixelShuffleConv2DTranspose.call
    fl.OverlapAddConv2DTranspose.TAPS = fl.PixelShuffleConv2DTranspose.TAPS


def profile(arch: str, options: dict, settings: dict, steps: int) -> dict:
    import keras
    import tensorflow as tf

    from cgan_mnist import data, models, training
    from cgan_mnist.config import validate_train_options

    if settings.get("plain_bn"):
        models._batch_norm = lambda name: keras.layers.BatchNormalization(name=name)
    if settings.get("xla_convs"):
        _convolutions_as_before()
    if not settings.get("determinism", True):  # seeded as cgan-train seeds, less determinism
        training.seed_everything = keras.utils.set_random_seed
    cfg = validate_train_options({"arch": arch, "seed": 0, **options})
    run = training.build_run(cfg, data.load("mnist", None))
    gan = run.gan
    if settings.get("plain_average"):  # as the step ran it before: one op per operation
        gan._average = tf.function(gan._update_average)
    batch = tuple(next(iter(run.batches(1))))
    real, labels, d_noise, g_noise = batch

    def d_update(real, labels, d_noise):  # with the R1 penalty if the run's first step has it
        return gan._update_discriminator(real, labels, gan.generator([d_noise, labels],
                                                                     training=True),
                                         penalize=gan._penalized_now())[0]

    def g_update(labels, g_noise):
        with tf.GradientTape() as tape:
            loss = gan._generator_loss(gan.generator([g_noise, labels], training=True), labels,
                                       g_noise)
        grads = tape.gradient(loss, gan.generator.trainable_variables)
        gan.g_optimizer.apply_gradients(zip(grads, gan.generator.trainable_variables))
        return loss

    def ema():
        gan._average()  # as the step runs it
        return tf.constant(0.0)

    stream = iter(run.batches(1))
    jit = run.xla
    return {
        "step": _timed(gan.train_step, (batch,), steps),
        "d": _timed(tf.function(d_update, jit_compile=jit), (real, labels, d_noise), steps),
        "g": _timed(tf.function(g_update, jit_compile=jit), (labels, g_noise), steps),
        "ema": _timed(tf.function(ema), (), steps) if gan.generator_ema is not None else 0.0,
        "input": _timed(lambda: next(stream)[0], (), steps),
        "batch": cfg.batch_size,
    }


def layer_rows(arch: str, steps: int) -> list[dict]:
    """Each weighted layer of the default networks, timed alone (``--layers``)."""
    import tensorflow as tf

    from cgan_mnist import models, training
    from cgan_mnist.config import validate_train_options

    cfg = validate_train_options({"arch": arch, "seed": 0})  # cgan-train's defaults
    generator, discriminator = models.build_models(training.model_config(cfg, 10))
    rows = []
    for model in (generator, discriminator):
        for layer in (layer for layer in model.layers if layer.trainable_weights):
            inputs = layer.input if isinstance(layer.input, list) else [layer.input]
            xs = [tf.random.normal((cfg.batch_size, *x.shape[1:])) for x in inputs]
            call = lambda layer=layer, xs=xs: layer(xs if len(xs) > 1 else xs[0],  # noqa: E731
                                                    training=True)

            def forward_backward(layer=layer, xs=xs, call=call):
                with tf.GradientTape() as tape:
                    tape.watch(xs)
                    loss = tf.reduce_sum(tf.square(call()))
                grads = tape.gradient(loss, xs + layer.trainable_weights)
                return [g for g in grads if g is not None]  # an integer label's is None

            forward = tf.function(lambda call=call: tf.reduce_sum(call()), jit_compile=True)
            rows.append({"model": model.name, "layer": layer.name,
                         "kind": type(layer).__name__,
                         "flops": models.layer_flops(layer) * cfg.batch_size,
                         "forward": _timed(forward, (), steps),
                         "both": _timed(tf.function(forward_backward, jit_compile=True), (),
                                        steps)})
    return rows


def print_layers(arch: str, steps: int) -> None:
    from machine_peak import measure_peak

    peak = measure_peak(2.0)["matmul"]
    rows = layer_rows(arch, steps)
    print(f"{arch}: each weighted layer alone under XLA, batch 64, {steps} calls after warm-up; "
          f"float32 matmul peak {peak:.0f} GFLOP/s in this run\n")
    print("| network | layer | kind | MFLOP fwd | fwd ms | fwd+bwd ms | GFLOP/s fwd+bwd | "
          "share of peak |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        rate = 3 * r["flops"] / r["both"] / 1e6
        print(f"| {r['model']} | {r['layer']} | {r['kind']} | {r['flops'] / 1e6:.1f} | "
              f"{r['forward']:.2f} | {r['both']:.2f} | {rate:.0f} | {rate / peak:.0%} |")
    total = sum(r["both"] for r in rows)
    print(f"\nAll layers, forward and backward once each: {total:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["mlp", "dcgan"], default="mlp")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--variant", action="append", choices=list(VARIANTS))
    parser.add_argument("--layers", action="store_true",
                        help="time each weighted layer alone instead of the step's parts")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.layers:
        from machine_peak import machine

        print(f"Machine: {machine()}\n")
        print_layers(args.arch, args.steps)
        return
    if args.one:
        print(json.dumps(profile(args.arch, *VARIANTS[args.one], args.steps)))
        return

    from machine_peak import machine

    print(f"Machine: {machine()}\n")
    print(f"{args.arch}: milliseconds per call, {args.steps} calls on one batch after warm-up\n")
    print("| variant | step | D update | G update | average | input batch | img/s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.variant or VARIANTS:
        done = subprocess.run([sys.executable, __file__, "--arch", args.arch, "--steps",
                               str(args.steps), "--one", name], capture_output=True, text=True)
        if done.returncode:
            print(f"| {name} | failed: {done.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['step']:.2f} | {r['d']:.2f} | {r['g']:.2f} | {r['ema']:.2f} | "
              f"{r['input']:.2f} | {1000 * r['batch'] / r['step']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
