import numpy as np
import pytest

from cgan_mnist import data
from cgan_mnist.gan import CGAN, with_noise
from cgan_mnist.models import ModelConfig, build_models


def _batch(dataset, n, latent_dim):
    import tensorflow as tf

    images, labels = data.to_model_inputs(dataset.train.images[:n], dataset.train.labels[:n], 10)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(n)
    return next(iter(with_noise(batches, latent_dim, seed=0, epoch=1)))


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
    ("mlp", False, False), ("dcgan", False, False), ("dcgan", False, True),
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
