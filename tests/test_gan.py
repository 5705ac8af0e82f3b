import numpy as np
import pytest

from cgan_mnist import data
from cgan_mnist.gan import CGAN, with_noise
from cgan_mnist.models import ModelConfig, build_models


def _batch(dataset, n, latent_dim, uniforms=0):
    import tensorflow as tf

    images, labels = data.to_model_inputs(dataset.train.images[:n], dataset.train.labels[:n], 10)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(n)
    return next(iter(with_noise(batches, latent_dim, seed=0, epoch=1, uniforms=uniforms)))


def test_noise_is_a_function_of_seed_epoch_and_batch(tiny_data):
    import tensorflow as tf

    train = tiny_data.train
    images, labels = data.to_model_inputs(train.images[:8], train.labels[:8], 10)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)

    def noise(seed, epoch):
        return [b[2].numpy() for b in with_noise(batches, 5, seed, epoch)]

    first = noise(1, 1)
    assert first[0].shape == (4, 5)
    assert np.array_equal(first[1], noise(1, 1)[1])
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], noise(1, 2)[0])
    assert not np.array_equal(first[0], noise(2, 1)[0])
    d_noise, g_noise = (next(iter(with_noise(batches, 5, 1, 1)))[k].numpy() for k in (2, 3))
    assert not np.array_equal(d_noise, g_noise)


@pytest.mark.parametrize("arch, xla, reuse", [
    ("mlp", False, False), pytest.param("dcgan", False, False, marks=pytest.mark.slow),
    ("dcgan", False, True),
    pytest.param("dcgan", True, False, marks=pytest.mark.slow),
    pytest.param("mlp", True, True, marks=pytest.mark.slow)])
def test_one_real_step_changes_both_networks(tiny_data, arch, xla, reuse):
    cfg = ModelConfig(arch, latent_dim=16, g_width=16, d_width=16)
    gan = CGAN(*build_models(cfg), jit_compile=xla, reuse_fakes=reuse)
    batch = _batch(tiny_data, 32, latent_dim=16)
    g_before = [w.numpy() for w in gan.generator.weights]
    d_before = [w.numpy() for w in gan.discriminator.trainable_weights]
    metrics = {k: float(v) for k, v in gan.train_step(batch).items()}
    assert all(np.isfinite(v) for v in metrics.values())
    assert metrics["d_loss"] > 0 and metrics["g_loss"] > 0
    assert 0 < metrics["d_real"] < 1 and 0 < metrics["d_fake"] < 1
    g_changed = [not np.array_equal(a, b.numpy()) for a, b in zip(g_before, gan.generator.weights)]
    d_changed = [not np.array_equal(a, b.numpy())
                 for a, b in zip(d_before, gan.discriminator.trainable_weights)]
    assert all(d_changed), "every discriminator weight must get an update"
    assert all(g_changed), "every generator weight (incl. batch-norm statistics) must change"
    assert gan.g_optimizer.iterations.numpy() == 1 and gan.d_optimizer.iterations.numpy() == 1


@pytest.mark.slow
def test_discriminator_learns_to_tell_real_from_fake(tiny_data):
    """A few D+G steps on real images: D's real probability rises above its fake one."""
    gan = CGAN(*build_models(ModelConfig("dcgan", latent_dim=16, g_width=16, d_width=16)),
               lr=1e-3)
    batch = _batch(tiny_data, 64, latent_dim=16)
    for _ in range(10):
        metrics = gan.train_step(batch)
    assert float(metrics["d_real"]) > float(metrics["d_fake"])


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_step(tiny_data, policy):
    """Layers compute in 16 bits; heads stay float32; float16 gets loss scaling."""
    import keras

    generator, discriminator = build_models(ModelConfig("dcgan", 16, 10, 8, 8), policy)
    assert generator.get_layer("up28").compute_dtype == policy.split("_")[1]
    assert generator.output.dtype == "float32" and discriminator.output.dtype == "float32"
    scaling = policy == "mixed_float16"
    gan = CGAN(generator, discriminator, loss_scaling=scaling)
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer) == scaling
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer) == scaling
    before = discriminator.get_layer("logit_unconditional").get_weights()[0].copy()
    metrics = {k: float(v) for k, v in gan.train_step(_batch(tiny_data, 16, 16)).items()}
    assert all(np.isfinite(v) for v in metrics.values())
    after = discriminator.get_layer("logit_unconditional").get_weights()[0]
    assert not np.array_equal(before, after)
    assert keras.config.dtype_policy().name == "float32", "the global policy is left as it was"


@pytest.mark.slow
@pytest.mark.cpu_only_determinism
def test_moving_average_follows_the_generator_and_is_what_is_sampled(tiny_data):
    """After one step the average is decay * (G before) + (1 - decay) * (G after),
    with the ramped decay (1 + t) / (10 + t); training itself never reads it."""
    import keras

    cfg = ModelConfig("dcgan", latent_dim=16, g_width=8, d_width=8)
    keras.utils.set_random_seed(3)
    plain = CGAN(*build_models(cfg))
    keras.utils.set_random_seed(3)
    averaged = CGAN(*build_models(cfg), ema=0.9)
    assert plain.generator_ema is None and plain.sampler is plain.generator
    assert averaged.sampler is averaged.generator_ema
    before = averaged.generator.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, averaged.generator_ema.get_weights()))

    batch = _batch(tiny_data, 32, latent_dim=16)
    plain.train_step(batch)
    averaged.train_step(batch)
    after = averaged.generator.get_weights()
    for a, b in zip(plain.generator.get_weights(), after):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # the average changes no update
    decay = min(0.9, 2 / 11)  # t = 1 after the first step
    for average, b, a in zip(averaged.generator_ema.get_weights(), before, after):
        np.testing.assert_allclose(average, decay * b + (1 - decay) * a, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(m, a) for m, a in zip(averaged.generator_ema.get_weights(), after))

    noise, labels = np.ones((2, 16), np.float32), np.eye(10, dtype=np.float32)[:2]
    np.testing.assert_array_equal(
        np.asarray(averaged.generate(noise, labels)),
        np.asarray(averaged.generator_ema([noise, labels], training=False)))
    assert "generator_ema" in averaged.checkpoint_items()
    assert "generator_ema" not in plain.checkpoint_items()


def test_discriminator_can_have_its_own_learning_rate():
    gan = CGAN(*build_models(ModelConfig("mlp", 8, 10, 8, 8)), lr=1e-4, d_lr=4e-4)
    assert gan.learning_rates() == pytest.approx({"generator": 1e-4, "discriminator": 4e-4})
    same = CGAN(*build_models(ModelConfig("mlp", 8, 10, 8, 8)), lr=3e-4)
    assert same.learning_rates() == pytest.approx({"generator": 3e-4, "discriminator": 3e-4})


@pytest.mark.slow
@pytest.mark.cpu_only_determinism
def test_label_smoothing_lowers_only_the_real_target(tiny_data):
    """BCE(t, z) = softplus(z) - t z, so with a real target of 1 - s, D's loss on the
    same weights and batch is higher by s times the mean real logit; fakes keep 0."""
    import keras

    cfg = ModelConfig("dcgan", latent_dim=16, g_width=8, d_width=8)
    batch = _batch(tiny_data, 32, latent_dim=16)
    losses = {}
    for smoothing in (0.0, 0.2):
        keras.utils.set_random_seed(5)
        gan = CGAN(*build_models(cfg), label_smoothing=smoothing)
        real_logits = gan.discriminator([batch[0], batch[1]], training=True)
        losses[smoothing] = float(gan.train_step(batch)["d_loss"])
    assert gan.real_target == pytest.approx(0.8)
    assert abs(float(np.mean(real_logits))) > 1e-3, "the check needs a logit away from 0"
    assert losses[0.2] - losses[0.0] == pytest.approx(0.2 * float(np.mean(real_logits)),
                                                      abs=1e-5)


@pytest.mark.parametrize("reuse, passes", [(False, 2), (True, 1)])
def test_reusing_the_fakes_runs_the_generator_once_per_step(tiny_data, reuse, passes):
    """--reuse-fakes (issue 15): G's update differentiates through the D update's fakes."""
    gan = CGAN(*build_models(ModelConfig("dcgan", latent_dim=16, g_width=8, d_width=8)),
               reuse_fakes=reuse)
    calls, forward = [], gan.generator.call
    gan.generator.call = lambda *args, **kwargs: calls.append(1) or forward(*args, **kwargs)
    images, labels, d_noise, g_noise = _batch(tiny_data, 16, latent_dim=16)
    g_before = [w.numpy() for w in gan.generator.trainable_weights]
    metrics = gan._train_step(images, labels, d_noise, g_noise)  # eagerly: count the calls
    assert len(calls) == passes
    assert all(not np.array_equal(a, b.numpy())
               for a, b in zip(g_before, gan.generator.trainable_weights))
    assert np.isfinite(float(metrics["g_loss"]))


# --- the quality levers (all off by default) ----------------------------------------------


def test_with_all_levers_off_the_step_is_the_one_from_before_them(tiny_data):
    """Defaults take the old code path: no schedule, no augmentation draws, no penalty,
    the bce loss, and the same noise (a one-epoch run's weights and losses were checked
    bit for bit against the code before the levers; the exact-resume tests keep it)."""
    import keras

    gan = CGAN(*build_models(ModelConfig("dcgan", latent_dim=16, g_width=8, d_width=8)))
    assert (gan.loss, gan.r1, gan.policy, gan.uniforms) == ("bce", 0.0, (), 0)
    for optimizer in (gan.g_optimizer, gan.d_optimizer):
        assert not isinstance(optimizer._learning_rate,
                              keras.optimizers.schedules.LearningRateSchedule)
    batch = _batch(tiny_data, 8, latent_dim=16)
    assert len(batch) == 4
    assert gan._augmentations(None) == (None, None, None)
    assert not gan._penalized_now()
    assert gan._judge_real(batch[0], batch[1], False)[1] is None
    assert not any("vector_u" in v.path for v in gan.discriminator.variables)
    with_draws = _batch(tiny_data, 8, latent_dim=16, uniforms=12)
    assert len(with_draws) == 5 and with_draws[4].shape == (8, 12)
    draws = with_draws[4].numpy()
    assert draws.min() >= 0.0 and draws.max() < 1.0
    for a, b in zip(batch, with_draws):  # the third draw leaves the noise as it was
        np.testing.assert_array_equal(a.numpy(), b.numpy())


SN, MBSTD = {"spectral_norm": True}, {"minibatch_stddev": True}
LEVERS = {"hinge": ({"loss": "hinge"}, {}), "r1": ({"r1": 2.0}, {}),  # (CGAN's, ModelConfig's)
          "diffaugment": ({"diffaugment": "translation,cutout"}, {}),
          "lr_decay": ({"lr_decay": 0.5, "total_steps": 4}, {}),
          "spectral_norm": ({}, SN), "minibatch_stddev": ({}, MBSTD),
          "mode_seeking": ({"mode_seeking": 1.0}, {}),
          "all": ({"loss": "hinge", "r1": 1.0, "diffaugment": "cutout,translation",
                   "lr_decay": 0.2, "total_steps": 100, "reuse_fakes": True,
                   "mode_seeking": 1.0}, {**SN, **MBSTD})}


@pytest.mark.parametrize("arch, lever", [  # the fast tier takes "all"; one at a time is slow
    pytest.param("dcgan", name, marks=[pytest.mark.slow] * (name != "all")) for name in LEVERS]
    + [("mlp", "all"), pytest.param("mlp", "spectral_norm", marks=pytest.mark.slow)])
def test_one_step_with_each_lever_changes_both_networks(tiny_data, arch, lever):
    options, model_options = LEVERS[lever]
    spectral_norm = model_options.get("spectral_norm", False)
    cfg = ModelConfig(arch, latent_dim=16, g_width=8, d_width=8, **model_options)
    gan = CGAN(*build_models(cfg), **options)
    batch = _batch(tiny_data, 16, latent_dim=16, uniforms=gan.uniforms)
    g_before = [w.numpy() for w in gan.generator.trainable_weights]
    # Not the biases: with the hinge loss and every logit within (-1, 1), the logit's
    # bias gets -1 from the real and +1 from the fake images: a zero gradient.
    d_weights = [w for w in gan.discriminator.weights if not w.path.endswith("bias")]
    d_before = [w.numpy() for w in d_weights]
    metrics = {k: float(v) for k, v in gan.train_step(batch).items()}
    assert all(np.isfinite(v) for v in metrics.values())
    assert all(not np.array_equal(a, b.numpy())
               for a, b in zip(g_before, gan.generator.trainable_weights))
    assert all(not np.array_equal(a, b.numpy())  # vector_u too, with spectral_norm
               for a, b in zip(d_before, d_weights))
    assert any("vector_u" in w.path for w in d_weights) == spectral_norm


def test_hinge_losses_are_those_of_lim_and_ye():
    import tensorflow as tf

    gan = CGAN(*build_models(ModelConfig("mlp", 8, 10, 8, 8)), loss="hinge")
    real, fake = tf.constant([[2.0], [0.5], [-1.0]]), tf.constant([[-3.0], [0.0], [0.5]])
    # relu(1 - real): 0, 0.5, 2; relu(1 + fake): 0, 1, 1.5
    assert float(gan._discriminator_loss(real, fake)) == pytest.approx((2.5 + 2.5) / 3)
    calls = []
    gan.discriminator = lambda inputs, training: calls.append(training) or fake
    assert float(gan._generator_loss(None, None, None)) == pytest.approx(-(-3.0 + 0.0 + 0.5) / 3)
    with pytest.raises(ValueError, match="unknown loss"):
        CGAN(*build_models(ModelConfig("mlp", 8, 10, 8, 8)), loss="l2")


def test_the_r1_penalty_is_half_gamma_times_the_squared_input_gradient(tiny_data):
    import tensorflow as tf

    gan = CGAN(*build_models(ModelConfig("dcgan", latent_dim=16, g_width=8, d_width=8)), r1=3.0)
    images, labels = _batch(tiny_data, 8, latent_dim=16)[:2]
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = gan.discriminator([images, labels], training=True)
    slopes = tape.gradient(logits, images).numpy()
    want = 1.5 * np.mean(np.sum(slopes**2, axis=(1, 2, 3)))
    assert gan._penalized_now()  # every D update
    got_logits, penalty = gan._judge_real(images, labels, True)
    assert want > 0
    assert float(penalty) == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(got_logits.numpy(), logits.numpy(), rtol=1e-6)


def test_lazy_r1_is_n_times_the_penalty_on_every_nth_d_update_and_none_between(tiny_data):
    """--r1-interval N (Karras et al. 2020): D updates 0, N, 2N... pay N times the penalty,
    the others none (a step compiled without it: a conditional inside XLA was 3x slower),
    and their logits are D's as without R1."""
    cfg = ModelConfig("dcgan", latent_dim=16, g_width=8, d_width=8)
    every = CGAN(*build_models(cfg), r1=3.0)
    lazy = CGAN(every.generator, every.discriminator, r1=3.0, r1_interval=4)
    images, labels = _batch(tiny_data, 8, latent_dim=16)[:2]
    logits, penalty = every._judge_real(images, labels, every._penalized_now())
    for updates, weight in ((0, 4.0), (1, None), (3, None), (8, 4.0)):
        lazy.d_optimizer.iterations.assign(updates)
        assert lazy._penalized_now() is (weight is not None), updates
        got_logits, got = lazy._judge_real(images, labels, lazy._penalized_now())
        if weight is None:
            assert got is None, updates  # and no double backward
        else:
            assert float(got) == pytest.approx(weight * float(penalty), rel=1e-5), updates
        np.testing.assert_allclose(got_logits.numpy(), logits.numpy(), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.cpu_only_determinism
def test_r1_and_diffaugment_compile_with_xla_to_the_same_step(tiny_data):
    """The double backward of R1 (lazy: the two compiled steps in turn) and the augmentations
    compile under XLA and agree with the step without it (the dcgan: its convolutions
    and augmented images are the harder case; the mlp's step is the same code over dense
    layers)."""
    import keras

    cfg = ModelConfig("dcgan", latent_dim=16, g_width=8, d_width=8, spectral_norm=True)
    results = []
    for jit in (False, True):
        keras.utils.set_random_seed(2)
        gan = CGAN(*build_models(cfg), r1=1.0, r1_interval=2, diffaugment="translation,cutout",
                   loss="hinge", jit_compile=jit)
        batch = _batch(tiny_data, 16, latent_dim=16, uniforms=gan.uniforms)
        steps = [gan.train_step(batch) for _ in range(2)]  # with R1 (lazy), then without
        results.append(([{k: float(v) for k, v in step.items()} for step in steps],
                        gan.discriminator.get_weights()))
    (plain, d_plain), (xla, d_xla) = results
    for step_plain, step_xla in zip(plain, xla):
        assert step_plain == pytest.approx(step_xla, rel=1e-4, abs=1e-5)
    for a, b in zip(d_plain, d_xla):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_learning_rates_decay_linearly_over_the_last_fraction(tiny_data):
    from cgan_mnist.schedules import LinearDecayTail

    schedule = LinearDecayTail(1e-3, total_steps=100, fraction=0.25)
    rates = [float(schedule(step)) for step in (0, 75, 80, 99, 100, 120)]
    assert rates == pytest.approx([1e-3, 1e-3, 0.8e-3, 0.04e-3, 0.0, 0.0])
    gan = CGAN(*build_models(ModelConfig("mlp", 8, 10, 8, 8)), lr=1e-4, d_lr=4e-4,
               lr_decay=0.5, total_steps=10)
    assert gan.learning_rates() == pytest.approx({"generator": 1e-4, "discriminator": 4e-4})
    gan.g_optimizer.iterations.assign(8)  # the optimizers' step counts drive the schedule
    gan.d_optimizer.iterations.assign(9)
    assert gan.learning_rates() == pytest.approx({"generator": 0.4e-4, "discriminator": 0.8e-4})
    with pytest.raises(ValueError, match="total_steps"):
        CGAN(*build_models(ModelConfig("mlp", 8, 10, 8, 8)), lr_decay=0.5)


def test_diffaugment_shows_d_augmented_images_in_both_updates(tiny_data):
    """Every image D judges, real or fake, in the D and the G update, is augmented,
    each with its own draws."""
    import tensorflow as tf

    gan = CGAN(*build_models(ModelConfig("dcgan", latent_dim=16, g_width=8, d_width=8)),
               diffaugment="cutout")
    assert gan.uniforms == 6
    images, labels, d_noise, g_noise, draws = _batch(tiny_data, 8, 16, uniforms=gan.uniforms)
    seen, judge = [], gan.discriminator
    gan.discriminator = lambda inputs, training: seen.append(inputs[0]) or judge(inputs,
                                                                               training=training)
    gan.discriminator.trainable_variables = judge.trainable_variables
    gan._train_step(images, labels, d_noise, g_noise, draws)  # eagerly: see what D sees
    assert len(seen) == 3
    cut = [int(tf.reduce_sum(tf.cast(tf.reduce_all(x == 0, axis=-1), tf.int32), axis=[1, 2])[0])
           for x in seen]
    assert all(count >= 49 for count in cut), "each image has a zeroed square (>= 7x7)"
    real = np.asarray(seen[0])
    assert not np.array_equal(real, images.numpy()) and np.array_equal(
        real[real != 0], images.numpy()[real != 0])


def test_mode_seeking_term_is_noise_distance_over_image_distance_within_a_class():
    """Mao et al. (2019): 1 / (mean |x_i - x_j| / mean |z_i - z_j| + 1e-5) over pairs of
    one class (here the neighbours once sorted by class: 0-3 and 3-5 of class 2, 1-4 of
    class 7; the lone class 1 has no pair)."""
    import tensorflow as tf

    from cgan_mnist.gan import mode_seeking_term

    rng = np.random.default_rng(0)
    classes = np.array([2, 7, 1, 2, 7, 2])
    images = rng.uniform(-1, 1, (6, 4, 4, 1)).astype("float32")
    noise = rng.normal(size=(6, 3)).astype("float32")
    labels = np.eye(10, dtype="float32")[classes]
    pairs = [(0, 3), (3, 5), (1, 4)]
    d_image = sum(np.abs(images[i] - images[j]).mean() for i, j in pairs)
    d_noise = sum(np.abs(noise[i] - noise[j]).mean() for i, j in pairs)
    got = float(mode_seeking_term(images, noise, labels))
    assert got == pytest.approx(1 / (d_image / d_noise + 1e-5), rel=1e-5)
    # Fakes of one class drawn further apart lower it; G's gradient pushes them apart.
    spread = images.copy()
    spread[3] = np.clip(images[0] + 2 * (images[3] - images[0]), -1, 1)
    assert float(mode_seeking_term(spread, noise, labels)) < got
    x = tf.Variable(images)
    with tf.GradientTape() as tape:
        term = mode_seeking_term(x, noise, labels)
    stepped = images - 0.1 * tf.convert_to_tensor(tape.gradient(term, x)).numpy()
    assert float(mode_seeking_term(stepped, noise, labels)) < got
    assert float(mode_seeking_term(images[:3], noise[:3], labels[:3])) == 0.0  # no pair
