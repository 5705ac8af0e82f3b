import numpy as np
import pytest

from cgan_mnist import data
from cgan_mnist.gan import CGAN, with_noise
from cgan_mnist.models import ModelConfig, build_models


def _batch(mnist, n, latent_dim):
    import tensorflow as tf

    images, labels = data.to_model_inputs(mnist.train.images[:n], mnist.train.labels[:n], 10)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(n)
    return next(iter(with_noise(batches, latent_dim, seed=0, epoch=1)))


def test_noise_is_a_function_of_seed_epoch_and_batch(mnist):
    import tensorflow as tf

    images, labels = data.to_model_inputs(mnist.train.images[:8], mnist.train.labels[:8], 10)
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


@pytest.mark.parametrize("arch, xla", [("mlp", False), ("dcgan", False), ("dcgan", True)])
def test_one_real_step_changes_both_networks(mnist, arch, xla):
    cfg = ModelConfig(arch, latent_dim=16, g_width=16, d_width=16)
    gan = CGAN(*build_models(cfg), jit_compile=xla)
    batch = _batch(mnist, 32, latent_dim=16)
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


def test_discriminator_learns_to_tell_real_from_fake(mnist):
    """A few D+G steps on real digits: D's real probability rises above its fake one."""
    gan = CGAN(*build_models(ModelConfig("dcgan", latent_dim=16, g_width=16, d_width=16)),
               lr=1e-3)
    batch = _batch(mnist, 64, latent_dim=16)
    for _ in range(10):
        metrics = gan.train_step(batch)
    assert float(metrics["d_real"]) > float(metrics["d_fake"])


def test_generate_is_deterministic_in_inference_mode():
    gan = CGAN(*build_models(ModelConfig("dcgan", latent_dim=8, g_width=8, d_width=8)))
    noise = np.ones((3, 8), np.float32)
    labels = np.eye(10, dtype=np.float32)[:3]
    assert np.array_equal(np.asarray(gan.generate(noise, labels)),
                          np.asarray(gan.generate(noise, labels)))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_step(mnist, policy):
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
    metrics = {k: float(v) for k, v in gan.train_step(_batch(mnist, 16, 16)).items()}
    assert all(np.isfinite(v) for v in metrics.values())
    after = discriminator.get_layer("logit_unconditional").get_weights()[0]
    assert not np.array_equal(before, after)
    assert keras.config.dtype_policy().name == "float32", "the global policy is left as it was"
