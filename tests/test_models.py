import numpy as np
import pytest

from cgan_mnist.models import (ModelConfig, build_models, forward_flops,
                               training_flops_per_image)


@pytest.fixture(scope="module", params=["mlp", "dcgan"])
def models(request):
    cfg = ModelConfig(request.param, latent_dim=16, num_classes=10, g_width=16, d_width=16)
    return cfg, *build_models(cfg)


def _inputs(cfg, n=8, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, cfg.latent_dim)).astype(np.float32)
    labels = np.eye(cfg.num_classes, dtype=np.float32)[rng.integers(0, cfg.num_classes, n)]
    return noise, labels


def test_shapes_and_value_ranges(models):
    cfg, generator, discriminator = models
    noise, labels = _inputs(cfg)
    images = np.asarray(generator([noise, labels], training=False))
    assert images.shape == (8, 28, 28, 1)
    assert images.min() >= -1.0 and images.max() <= 1.0
    logits = np.asarray(discriminator([images, labels], training=False))
    assert logits.shape == (8, 1) and np.isfinite(logits).all()


def test_two_named_inputs_each(models):
    _, generator, discriminator = models
    assert [t.shape[1:] for t in generator.inputs] == [(16,), (10,)]
    assert [tuple(t.shape[1:]) for t in discriminator.inputs] == [(28, 28, 1), (10,)]


def test_discriminator_outputs_a_logit_not_a_probability(models):
    _, _, discriminator = models
    activations = [getattr(layer, "activation", None) for layer in discriminator.layers]
    assert not any(getattr(a, "__name__", "") == "sigmoid" for a in activations)
    # A logit can leave [0, 1]: push a big input through and look.
    big = np.full((4, 28, 28, 1), 50.0, np.float32)
    labels = np.eye(10, dtype=np.float32)[:4]
    logits = np.asarray(discriminator([big, labels], training=False))
    assert (logits < 0).any() or (logits > 1).any()


def test_label_changes_the_image_for_the_same_noise(models):
    cfg, generator, _ = models
    noise = np.repeat(_inputs(cfg, 1)[0], 10, axis=0)
    images = np.asarray(generator([noise, np.eye(10, dtype=np.float32)], training=False))
    diffs = [np.abs(images[0] - images[k]).mean() for k in range(1, 10)]
    assert min(diffs) > 1e-4


def test_label_changes_the_discriminator_logit(models):
    cfg, generator, discriminator = models
    image = np.asarray(generator([_inputs(cfg, 1)[0], np.eye(10, dtype=np.float32)[:1]]))
    logits = np.asarray(discriminator([np.repeat(image, 10, 0), np.eye(10, dtype=np.float32)]))
    assert np.ptp(logits) > 1e-5


def test_flops_of_dcgan_match_a_hand_count():
    cfg = ModelConfig("dcgan", latent_dim=100, num_classes=10, g_width=32, d_width=32)
    generator, discriminator = build_models(cfg)
    g = 2 * (110 * 7 * 7 * 64 + 7 * 7 * 64 * 16 * 32 + 14 * 14 * 32 * 16 * 1)
    features = 7 * 7 * 64
    d = 2 * (14 * 14 * 32 * 16 * 11 + 7 * 7 * 64 * 16 * 32
             + features + 10 * features + features)
    assert forward_flops(generator) == g
    assert forward_flops(discriminator) == d
    assert training_flops_per_image(generator, discriminator) == 4 * g + 9 * d
