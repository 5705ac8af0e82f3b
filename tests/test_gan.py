import numpy as np
import pytest

from cgan_mnist import data
from cgan_mnist.gan import CGAN
from cgan_mnist.models import ModelConfig, build_models


@pytest.mark.parametrize("arch, xla", [("mlp", False), ("dcgan", False), ("dcgan", True)])
def test_one_real_step_changes_both_networks(mnist, arch, xla):
    cfg = ModelConfig(arch, latent_dim=16, g_width=16, d_width=16)
    gan = CGAN(*build_models(cfg), seed=0, jit_compile=xla)
    images, labels = data.to_model_inputs(mnist.train.images[:32], mnist.train.labels[:32], 10)
    g_before = [w.numpy() for w in gan.generator.weights]
    d_before = [w.numpy() for w in gan.discriminator.trainable_weights]
    metrics = {k: float(v) for k, v in gan.train_step(images, labels).items()}
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
               seed=1, lr=1e-3)
    images, labels = data.to_model_inputs(mnist.train.images[:64], mnist.train.labels[:64], 10)
    for _ in range(10):
        metrics = gan.train_step(images, labels)
    assert float(metrics["d_real"]) > float(metrics["d_fake"])


def test_generate_is_deterministic_in_inference_mode():
    gan = CGAN(*build_models(ModelConfig("dcgan", latent_dim=8, g_width=8, d_width=8)))
    noise = np.ones((3, 8), np.float32)
    labels = np.eye(10, dtype=np.float32)[:3]
    assert np.array_equal(np.asarray(gan.generate(noise, labels)),
                          np.asarray(gan.generate(noise, labels)))
