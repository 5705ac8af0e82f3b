"""The keras.io conditional-GAN recipe, the peer our benchmarks time side by side.

Rebuilt from the published description of keras.io's "Conditional GAN" example
(Sayak Paul, 2021; keras-io/examples/generative/conditional_gan.py), in our own
code, so that ``bench_speed.py`` and ``bench_time_to_quality.py`` can run it
on the same machine, in the same run, on the same MNIST batches as ours:

- images scaled to [0, 1]; batch 64; latent size 128; the one-hot label is
  concatenated to G's noise, and broadcast to ten extra image channels for D;
- G: Dense(7*7*138), LeakyReLU(0.2), reshape to 7x7x138, two Conv2DTranspose
  (128 filters, 4x4, stride 2) each with LeakyReLU(0.2), Conv2D(1, 7x7, sigmoid);
- D: Conv2D(64, 3x3, stride 2), LeakyReLU(0.2), Conv2D(128, 3x3, stride 2),
  LeakyReLU(0.2), GlobalMaxPooling2D, Dense(1) (a logit);
- one Adam(3e-4) each, binary cross-entropy from logits; each step updates D
  on fakes (target 1) and reals (target 0), then G, with fresh noise, toward 0;
- trained by ``Model.fit``, which compiles the step (with XLA where Keras's
  ``jit_compile="auto"`` allows it, as the published example runs).

    python scripts/keras_io_cgan.py --seconds 60     # train a minute, print img/s
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
LATENT_DIM, NUM_CLASSES, BATCH_SIZE, LEARNING_RATE = 128, 10, 64, 3e-4


def build_generator():
    import keras
    from keras import layers

    channels = LATENT_DIM + NUM_CLASSES
    return keras.Sequential([
        keras.Input((channels,)),
        layers.Dense(7 * 7 * channels), layers.LeakyReLU(0.2), layers.Reshape((7, 7, channels)),
        layers.Conv2DTranspose(128, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2DTranspose(128, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2D(1, 7, padding="same", activation="sigmoid"),
    ], name="keras_io_generator")


def build_discriminator():
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input((28, 28, 1 + NUM_CLASSES)),
        layers.Conv2D(64, 3, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2D(128, 3, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.GlobalMaxPooling2D(), layers.Dense(1),
    ], name="keras_io_discriminator")


def training_flops_per_image() -> int:
    """Counted as ours are (``models.training_flops_per_image``): the recipe's step is
    also one G forward pass for D's update, D on a real and a fake image, then G's update."""
    from cgan_mnist.models import training_flops_per_image as count

    return count(build_generator(), build_discriminator())


def make_model(seed: int = 1337):
    """The recipe's keras.Model, compiled as the example compiles it."""
    import keras
    import tensorflow as tf

    class ConditionalGAN(keras.Model):
        def __init__(self):
            super().__init__()
            self.generator, self.discriminator = build_generator(), build_discriminator()
            self.seed_generator = keras.random.SeedGenerator(seed)
            self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
            self.d_optimizer = keras.optimizers.Adam(LEARNING_RATE)
            self.g_optimizer = keras.optimizers.Adam(LEARNING_RATE)

        def _with_labels(self, images, one_hot):
            channels = tf.tile(one_hot[:, None, None, :], [1, 28, 28, 1])
            return tf.concat([images, channels], axis=-1)

        def train_step(self, data):
            real, one_hot = data
            n = tf.shape(real)[0]
            noise = keras.random.normal((n, LATENT_DIM), seed=self.seed_generator)
            fake = self.generator(tf.concat([noise, one_hot], axis=1))
            images = tf.concat([self._with_labels(fake, one_hot),
                                self._with_labels(real, one_hot)], axis=0)
            targets = tf.concat([tf.ones((n, 1)), tf.zeros((n, 1))], axis=0)
            with tf.GradientTape() as tape:
                d_loss = self.loss_fn(targets, self.discriminator(images))
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

            noise = keras.random.normal((n, LATENT_DIM), seed=self.seed_generator)
            with tf.GradientTape() as tape:
                fake = self.generator(tf.concat([noise, one_hot], axis=1))
                g_loss = self.loss_fn(tf.zeros((n, 1)),
                                      self.discriminator(self._with_labels(fake, one_hot)))
            grads = tape.gradient(g_loss, self.generator.trainable_weights)
            self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
            return {"d_loss": d_loss, "g_loss": g_loss}

    model = ConditionalGAN()
    model.compile()
    return model


def batches(dataset, repeat: bool = True):
    """The recipe's input: every image of the dataset (train and test) in [0, 1] with
    one-hot labels, shuffled, in batches of 64."""
    import numpy as np
    import tensorflow as tf

    splits = [dataset.train] + ([dataset.test] if dataset.test is not None else [])
    images = np.concatenate([s.images for s in splits]).astype(np.float32)[..., None] / 255.0
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[np.concatenate([s.labels for s in splits])]
    stream = tf.data.Dataset.from_tensor_slices((images, one_hot)).shuffle(10_000, seed=0)
    stream = stream.repeat() if repeat else stream
    return stream.batch(BATCH_SIZE, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def train_for(model, dataset, seconds: float, warmup_steps: int = 20) -> dict:
    """Train by ``Model.fit`` for ``seconds`` of wall-clock time after ``warmup_steps``
    (compiling included); return the steady images/s and the steps taken."""
    import keras

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.steps = batch + 1
            if self.steps == warmup_steps:
                self.started = time.perf_counter()
            elif self.steps > warmup_steps and time.perf_counter() - self.started >= seconds:
                self.model.stop_training = True

    clock = Clock()
    model.fit(batches(dataset), epochs=1, steps_per_epoch=10**9, verbose=0, shuffle=False,
              callbacks=[clock])
    timed = clock.steps - warmup_steps
    return {"steps": clock.steps,
            "images_per_s": timed * BATCH_SIZE / (time.perf_counter() - clock.started)}


def as_sampler_generator(model):
    """The recipe's G behind our generators' interface ([noise, one-hot] in, images in
    [-1, 1] out), so that cgan_mnist's sampling and measuring take it as it is."""
    import keras

    noise, one_hot = keras.Input((LATENT_DIM,)), keras.Input((NUM_CLASSES,))
    images = model.generator(keras.layers.Concatenate()([noise, one_hot]))
    return keras.Model([noise, one_hot], keras.layers.Rescaling(2.0, offset=-1.0)(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    from cgan_mnist import data

    dataset = data.load("mnist", args.data_dir)
    print(train_for(make_model(), dataset, args.seconds))


if __name__ == "__main__":
    main()
