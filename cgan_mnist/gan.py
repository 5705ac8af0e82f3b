"""The conditional GAN algorithm: two networks, two optimizers, one step.

``CGAN.train_step`` reads like the algorithm of Mirza & Osindero (2014) with
the non-saturating generator loss of Goodfellow et al. (2014):

1. sample noise, generate fakes for the batch's labels;
2. update D on real (target 1) and fake (target 0) logits;
3. sample fresh noise, update G so that D calls its fakes real (target 1);
4. return the losses and D's mean probabilities for real and fake.
"""

from __future__ import annotations

import keras
import tensorflow as tf

STEP_METRICS = ("d_loss", "g_loss", "d_real", "d_fake")


class CGAN:
    """Generator, discriminator, one Adam each, and the noise source."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *,
                 lr: float = 2e-4, beta1: float = 0.5, seed: int = 0,
                 jit_compile: bool = False):
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.num_classes = int(generator.inputs[1].shape[-1])
        self.g_optimizer = keras.optimizers.Adam(lr, beta_1=beta1, name="g_adam")
        self.d_optimizer = keras.optimizers.Adam(lr, beta_1=beta1, name="d_adam")
        # Build the optimizers now so that their moments exist before a
        # checkpoint restore (otherwise a restore silently drops them).
        self.g_optimizer.build(generator.trainable_variables)
        self.d_optimizer.build(discriminator.trainable_variables)
        self.rng = tf.random.Generator.from_seed(seed)
        self._bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.train_step = tf.function(self._train_step, jit_compile=jit_compile)

    def _train_step(self, real_images, labels):
        batch_size = tf.shape(real_images)[0]
        noise = self.rng.normal((batch_size, self.latent_dim))
        fake_images = self.generator([noise, labels], training=True)

        with tf.GradientTape() as tape:
            real_logits = self.discriminator([real_images, labels], training=True)
            fake_logits = self.discriminator([fake_images, labels], training=True)
            d_loss = (self._bce(tf.ones_like(real_logits), real_logits)
                      + self._bce(tf.zeros_like(fake_logits), fake_logits))
        d_vars = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))

        noise = self.rng.normal((batch_size, self.latent_dim))
        with tf.GradientTape() as tape:
            fake_images = self.generator([noise, labels], training=True)
            g_logits = self.discriminator([fake_images, labels], training=True)
            g_loss = self._bce(tf.ones_like(g_logits), g_logits)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))

        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits)),
        }

    def generate(self, noise, labels) -> tf.Tensor:
        """Images in [-1, 1] for the given noise and one-hot labels (inference mode)."""
        return self.generator([noise, labels], training=False)

    def learning_rates(self) -> dict:
        """The optimizers' current learning rates, as Python floats (for logging)."""
        return {"generator": float(keras.ops.convert_to_numpy(self.g_optimizer.learning_rate)),
                "discriminator": float(keras.ops.convert_to_numpy(self.d_optimizer.learning_rate))}

    def checkpoint_items(self) -> dict:
        """What a training checkpoint must hold to continue this GAN exactly."""
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
            "rng": self.rng,
            # Dropout's random state lives in Keras seed-generator variables that
            # Keras does not list among a model's weights; without them a
            # resumed run would draw different dropout masks.
            "seed_states": [v for model in (self.generator, self.discriminator)
                            for v in model.variables if "seed_generator_state" in v.path],
        }
