"""The conditional GAN algorithm: two networks, two optimizers, one step.

``CGAN.train_step`` reads like the algorithm of Mirza & Osindero (2014) with
the non-saturating generator loss of Goodfellow et al. (2014):

1. take a batch of real images, their labels and two draws of noise;
2. update D on real (target 1, or 1 - label_smoothing) and fake (target 0) logits;
3. update G, with the second noise draw, so that D calls its fakes real (with
   ``reuse_fakes``: through the fakes of step 2, one G forward pass per step);
4. return the losses and D's mean probabilities for real and fake.

With ``ema`` > 0, a second copy of G (``generator_ema``) follows G's weights as
an exponential moving average after every step (Yazici et al., 2019; the
``G_ema`` of StyleGAN). Training never reads it; samples and saved generators
come from it (``sampler``), since the average smooths out the oscillation
that GAN training leaves in the live weights.

``label_smoothing`` > 0 is one-sided label smoothing (Salimans et al., 2016):
D's target for real images becomes 1 - label_smoothing, fakes keep 0, and
G's target stays 1, so D is never rewarded for over-confidence on real data.

Quality levers, all off by default (the step is then the one above, op for op):

* ``loss="hinge"``: D minimizes relu(1 - real) + relu(1 + fake), G maximizes
  D's fake logits (Lim & Ye, 2017; Miyato et al., 2018);
* ``r1`` > 0: the R1 penalty r1/2 * |grad_x D(x)|^2 on real images is added
  to D's loss (Mescheder et al., 2018); with ``r1_interval`` N > 1, only every
  Nth D update, weighted N times (lazy regularization, Karras et al., 2020);
* ``diffaugment``: every image D sees, real or fake, in either update, is
  augmented differentiably (Zhao et al., 2020; ``augment``);
* ``lr_decay`` > 0: both learning rates fall linearly to 0 over that last
  fraction of ``total_steps`` (``schedules.LinearDecayTail``, driven by the optimizers'
  step counts, so it resumes exactly);
* ``mode_seeking`` > 0: G's loss gains that weight times ``mode_seeking_term``,
  which falls as fakes of one class drawn from different noise differ more
  (Mao et al., 2019).

The noise comes with the batch (``with_noise``): it is a pure function of
(seed, epoch, batch index), so a run repeats exactly, a resumed run continues
exactly, and N replicas of a ``tf.distribute`` strategy see the same noise as
one device. So are DiffAugment's random numbers, a third draw. Losses are
averaged over the *global* batch, so the gradients summed across replicas
equal those of one device.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from . import augment
from .run_folder import STEP_METRICS
from .schedules import rate_schedule

LOSSES = ("bce", "hinge")  # mirrored in config.LOSSES


def with_noise(batches: tf.data.Dataset, latent_dim: int, seed: int,
               epoch: int, uniforms: int = 0) -> tf.data.Dataset:
    """Append two noise draws (for the D step and the G step) to every batch, and with
    ``uniforms`` > 0 a third: that many uniform numbers in [0, 1) per image."""
    def add(index, batch):
        images, labels = batch
        shape = (tf.shape(images)[0], latent_dim)
        key = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64) * 2**20 + index])
        d_noise = tf.random.stateless_normal(shape, seed=key)
        g_noise = tf.random.stateless_normal(shape, seed=key + [0, 2**40])
        if not uniforms:
            return images, labels, d_noise, g_noise
        draws = tf.random.stateless_uniform((shape[0], uniforms), seed=key + [0, 2**41])
        return images, labels, d_noise, g_noise, draws

    return batches.enumerate().map(add)


class CGAN:
    """Generator, discriminator and one Adam each, under a tf.distribute strategy.

    Build the networks inside ``strategy.scope()`` before passing them in; the
    optimizers are made here, in the same scope. With ``loss_scaling`` (float16
    mixed precision) both optimizers are wrapped in a LossScaleOptimizer.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *,
                 lr: float = 2e-4, d_lr: float | None = None, beta1: float = 0.5,
                 ema: float = 0.0, label_smoothing: float = 0.0, reuse_fakes: bool = False,
                 loss: str = "bce", r1: float = 0.0, r1_interval: int = 1,
                 diffaugment: str = "", lr_decay: float = 0.0, mode_seeking: float = 0.0,
                 total_steps: int | None = None,
                 global_batch_size: int | None = None,
                 jit_compile: bool = False, loss_scaling: bool = False,
                 strategy: tf.distribute.Strategy | None = None):
        """``lr`` is G's learning rate, and D's unless ``d_lr`` is given; ``ema`` is
        the per-step decay of the generator's moving average (0: none);
        ``label_smoothing`` lowers D's target for real images to 1 - it; ``reuse_fakes``:
        G's update reuses the D update's fakes (one G forward pass per step, as in
        PyTorch's DCGAN example) instead of drawing new ones. ``loss``: "bce" or "hinge";
        ``r1``: the weight gamma of the R1 penalty, applied every ``r1_interval``-th D
        update (weighted that many times); ``diffaugment``: a policy such as
        "translation,cutout"; ``lr_decay``: the last fraction of ``total_steps`` over
        which both learning rates fall linearly to 0; ``mode_seeking``: the weight of
        ``mode_seeking_term`` in G's loss."""
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
        if lr_decay and not total_steps:
            raise ValueError("lr_decay needs total_steps: the length of the run")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.num_classes = int(generator.inputs[1].shape[-1])
        self.strategy = strategy or tf.distribute.get_strategy()
        self.global_batch_size = global_batch_size
        self.ema = float(ema)
        self.real_target = 1.0 - float(label_smoothing)
        self.reuse_fakes = bool(reuse_fakes)
        self.loss, self.r1, self.mode_seeking = loss, float(r1), float(mode_seeking)
        self.r1_interval = int(r1_interval)
        self.policy = augment.parse_policy(diffaugment)
        # DiffAugment's random numbers per image: for the real images, the D update's
        # fakes and the G update's fakes (``with_noise(..., uniforms=...)`` draws them).
        self.uniforms = 3 * augment.draws_needed(self.policy)
        g_rate, d_rate = (rate_schedule(rate, lr_decay, total_steps) for rate in (lr, d_lr or lr))
        with self.strategy.scope():
            self.generator_ema = _copy(generator) if self.ema else None
            self.g_optimizer = _adam(g_rate, beta1, "g_adam", loss_scaling)
            self.d_optimizer = _adam(d_rate, beta1, "d_adam", loss_scaling)
            # Build the optimizers now so that their moments exist before a
            # checkpoint restore (otherwise a restore silently drops them).
            self.g_optimizer.build(generator.trainable_variables)
            self.d_optimizer.build(discriminator.trainable_variables)
        self._bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction="none")
        # Without and with R1, picked per step in Python: a tf.cond in XLA was 3x slower on a CPU.
        replica_steps = [tf.function(functools.partial(self._train_step, penalize=penalize),
                                     jit_compile=jit_compile) for penalize in (False, True)]
        self._steps = [tf.function(functools.partial(self._distributed_step, replica_step))
                       for replica_step in replica_steps]
        # XLA fuses the average's update into one pass over the weights: 7-10% of the
        # mlp's step on a CPU when each op made its own pass (BENCHMARKS.md).
        self._average = tf.function(self._update_average, jit_compile=jit_compile and
                                    self.strategy.num_replicas_in_sync == 1)

    def train_step(self, batch) -> dict:
        """One step on ``batch`` (images, labels, noise[, draws]); the step's metrics."""
        return self._steps[self._penalized_now()](batch)

    def _penalized_now(self) -> bool:
        """Whether this step's D update has R1: always, or (lazy) on D updates 0, N, 2N..."""
        if not self.r1 or self.r1_interval == 1:
            return bool(self.r1)
        return int(self.d_optimizer.iterations.numpy()) % self.r1_interval == 0

    def _distributed_step(self, replica_step, batch):
        per_replica = self.strategy.run(replica_step, args=batch)
        if self.generator_ema is not None:
            self._average()
        return {name: self.strategy.reduce("SUM", value, axis=None)
                for name, value in per_replica.items()}

    def _update_average(self):
        """generator_ema <- decay * generator_ema + (1 - decay) * generator, in
        cross-replica context (every replica's G is the same after the step).

        The decay ramps up as ``(1 + t) / (10 + t)`` over the first steps ``t``
        (as tf.train.ExponentialMovingAverage does), so early samples are not
        dominated by the random initial weights."""
        t = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema, (1.0 + t) / (10.0 + t))
        for average, value in zip(self.generator_ema.weights, self.generator.weights):
            average.assign(decay * average + (1.0 - decay) * value)

    def _mean(self, per_example):
        """This replica's share of the global-batch mean (the replicas' shares sum to it)."""
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)

    def _train_step(self, real_images, labels, d_noise, g_noise, draws=None, penalize=False):
        see_real, see_fake, see_g_fake = self._augmentations(draws)
        if self.reuse_fakes:
            return self._step_reusing_fakes(real_images, labels, d_noise,
                                            (see_real, see_fake, see_g_fake), penalize)
        fake_images = self.generator([d_noise, labels], training=True)
        d_loss, real_logits, fake_logits = self._update_discriminator(
            real_images, labels, fake_images, (see_real, see_fake), penalize)
        with tf.GradientTape() as tape:
            fake_images = self.generator([g_noise, labels], training=True)
            g_loss = self._generator_loss(fake_images, labels, g_noise, see_g_fake)
            g_scaled = _scaled(self.g_optimizer, g_loss)
        _apply(self.g_optimizer, tape, g_scaled, self.generator.trainable_variables)
        return self._metrics(d_loss, g_loss, real_logits, fake_logits)

    def _step_reusing_fakes(self, real_images, labels, noise, augmentations, penalize):
        """The same step with one G forward pass: G's update differentiates through the
        fakes the D update saw (D judging them anew, after its update)."""
        see_real, see_fake, see_g_fake = augmentations
        with tf.GradientTape() as tape:
            fake_images = self.generator([noise, labels], training=True)
            with tape.stop_recording():
                d_loss, real_logits, fake_logits = self._update_discriminator(
                    real_images, labels, fake_images, (see_real, see_fake), penalize)
            g_loss = self._generator_loss(fake_images, labels, noise, see_g_fake)
            g_scaled = _scaled(self.g_optimizer, g_loss)
        _apply(self.g_optimizer, tape, g_scaled, self.generator.trainable_variables)
        return self._metrics(d_loss, g_loss, real_logits, fake_logits)

    def _augmentations(self, draws):
        """What D sees of the real images, the D update's fakes and the G update's fakes:
        each augmented with its own share of ``draws`` (DiffAugment), or as they are."""
        if not self.policy:
            return None, None, None
        n = augment.draws_needed(self.policy)
        return tuple(functools.partial(augment.augment, policy=self.policy,
                                       draws=draws[:, i * n:(i + 1) * n]) for i in range(3))

    def _update_discriminator(self, real_images, labels, fake_images, augmentations=(None, None),
                              penalize=False):
        """One D update on real (target 1 - smoothing) and fake (target 0) logits, or the
        hinge loss; if ``penalize``, plus the R1 penalty on the real images."""
        see_real, see_fake = augmentations
        if see_real is not None:
            real_images, fake_images = see_real(real_images), see_fake(fake_images)
        with tf.GradientTape() as tape:
            real_logits, penalty = self._judge_real(real_images, labels, penalize)
            fake_logits = self.discriminator([fake_images, labels], training=True)
            d_loss = self._discriminator_loss(real_logits, fake_logits)
            if penalty is not None:
                d_loss += penalty
            d_scaled = _scaled(self.d_optimizer, d_loss)
        _apply(self.d_optimizer, tape, d_scaled, self.discriminator.trainable_variables)
        return d_loss, real_logits, fake_logits

    def _judge_real(self, real_images, labels, penalize):
        """D's logits for the real images and, if ``penalize``, the R1 penalty
        r1/2 * |grad_x D(x)|^2, times ``r1_interval`` (lazy R1 applies it on 1 update in
        N); its gradient is taken by the caller's tape: a double backward. Otherwise the
        penalty is None and no gradient is taken. Under float16 loss scaling this inner
        gradient is not scaled (not tried on a GPU)."""
        if not penalize:
            return self.discriminator([real_images, labels], training=True), None
        return self._judge_real_penalized(real_images, labels, self.r1 * self.r1_interval)

    def _judge_real_penalized(self, real_images, labels, gamma):
        """D's logits for the real images and the R1 penalty of weight ``gamma``."""
        with tf.GradientTape() as tape:
            tape.watch(real_images)
            logits = self.discriminator([real_images, labels], training=True)
        slopes = tape.gradient(logits, real_images)  # per image: D has no batch coupling
        squared = tf.reduce_sum(tf.square(tf.cast(slopes, tf.float32)), axis=[1, 2, 3])
        return logits, 0.5 * gamma * self._mean(squared)

    def _discriminator_loss(self, real_logits, fake_logits):
        if self.loss == "hinge":
            return self._mean(tf.nn.relu(1.0 - real_logits[:, 0])
                              + tf.nn.relu(1.0 + fake_logits[:, 0]))
        real_targets = tf.fill(tf.shape(real_logits), self.real_target)
        return self._mean(self._bce(real_targets, real_logits)
                          + self._bce(tf.zeros_like(fake_logits), fake_logits))

    def _generator_loss(self, fake_images, labels, noise, see_fake=None):
        """Non-saturating: G wants D to call its fakes real (target 1); hinge: G raises
        D's logits for its fakes. Plus, with ``mode_seeking``, this replica's share of
        its term (the term of its own fakes, before any augmentation)."""
        spread = 0.0
        if self.mode_seeking:
            spread = self.mode_seeking * mode_seeking_term(fake_images, noise, labels) \
                / self.strategy.num_replicas_in_sync
        if see_fake is not None:
            fake_images = see_fake(fake_images)
        g_logits = self.discriminator([fake_images, labels], training=True)
        if self.loss == "hinge":
            return self._mean(-g_logits[:, 0]) + spread
        return self._mean(self._bce(tf.ones_like(g_logits), g_logits)) + spread

    def _metrics(self, d_loss, g_loss, real_logits, fake_logits) -> dict:
        d_real = self._mean(tf.sigmoid(real_logits)[:, 0])
        d_fake = self._mean(tf.sigmoid(fake_logits)[:, 0])
        return dict(zip(STEP_METRICS, (d_loss, g_loss, d_real, d_fake)))

    @property
    def sampler(self) -> keras.Model:
        """The generator to draw samples from and to save: the average, if kept."""
        return self.generator if self.generator_ema is None else self.generator_ema

    def generate(self, noise, labels) -> tf.Tensor:
        """Images in [-1, 1] for the given noise and one-hot labels (inference mode)."""
        return tf.cast(self.sampler([noise, labels], training=False), tf.float32)

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
            # Dropout's random state lives in Keras seed-generator variables that
            # Keras does not list among a model's weights; without them a
            # resumed run would draw different dropout masks.
            "seed_states": [v for model in (self.generator, self.discriminator)
                            for v in model.variables if "seed_generator_state" in v.path],
            **({"generator_ema": self.generator_ema} if self.generator_ema is not None else {}),
        }


def mode_seeking_term(images, noise, labels):
    """1 / (d_image / d_noise + 1e-5) (Mao et al., 2019, as their code computes it): d_image
    and d_noise are the mean absolute differences of images and of noise over pairs of one
    class, the neighbours of a batch sorted by class (their pairs: two draws for one
    label). G lowers it by drawing one class's fakes apart. 0 when no class has a pair."""
    classes = tf.argmax(labels, axis=-1)
    order = tf.argsort(classes, stable=True)
    classes = tf.gather(classes, order)
    images = tf.cast(tf.gather(images, order), tf.float32)
    noise = tf.cast(tf.gather(noise, order), tf.float32)
    pair = tf.cast(tf.equal(classes[1:], classes[:-1]), tf.float32)
    d_image = tf.reduce_sum(pair * tf.reduce_mean(tf.abs(images[1:] - images[:-1]), [1, 2, 3]))
    d_noise = tf.reduce_sum(pair * tf.reduce_mean(tf.abs(noise[1:] - noise[:-1]), 1))
    ratio = tf.math.divide_no_nan(d_image, d_noise)
    return tf.where(tf.reduce_sum(pair) > 0, 1.0 / (ratio + 1e-5), 0.0)


def _copy(model: keras.Model) -> keras.Model:
    """Same layers (dtype policies included), same weights, separate variables."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _adam(lr, beta1: float, name: str, loss_scaling: bool):
    adam = keras.optimizers.Adam(lr, beta_1=beta1, name=name)
    return keras.optimizers.LossScaleOptimizer(adam, name=f"{name}_scaled") if loss_scaling \
        else adam


def _scaled(optimizer, loss):
    """With loss scaling (float16), the loss the gradient is taken of is scaled up so
    small gradients do not underflow; the optimizer unscales them (and skips the step
    on overflow). Must be computed inside the tape."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss


def _apply(optimizer, tape, loss, variables) -> None:
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
