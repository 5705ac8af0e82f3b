"""Training must measurably learn: samples move from noise toward the asked-for digit.

The yardstick is a nearest-class-mean classifier fitted on real MNIST (about
81% accurate on the test set, no training needed). It calls an untrained
generator's samples the asked-for digit about 10% of the time (chance); after
a short real training run it must do so far more often. A generator that
ignores its label, or that does not learn, fails.
"""

import numpy as np
import pytest

from cgan_mnist.config import validate_train_options
from cgan_mnist.generate import load_generator, sample
from cgan_mnist.models import ModelConfig, build_generator
from cgan_mnist.training import train


def _class_means(mnist, n=10000):
    x = mnist.train.images[-n:].reshape(n, -1) / 255.0  # not the slice we train on
    y = mnist.train.labels[-n:]
    return np.stack([x[y == c].mean(0) for c in range(10)])


def _conditional_accuracy(images, labels, means):
    pixels = (images.reshape(len(images), -1) + 1) / 2
    distances = ((pixels[:, None, :] - means[None]) ** 2).sum(-1)
    return float((distances.argmin(1) == labels).mean())


@pytest.mark.slow
def test_short_training_makes_samples_look_like_the_asked_for_digit(tmp_path, mnist,
                                                                    mnist_path):
    means = _class_means(mnist)
    cfg = validate_train_options({"arch": "mlp", "limit": 4096, "epochs": 4, "seed": 0,
                                  "outdir": str(tmp_path), "data_dir": str(mnist_path.parent),
                                  "sample_interval": 4, "checkpoint_interval": 4})
    untrained = build_generator(ModelConfig("mlp", cfg.latent_dim, 10, cfg.g_width, cfg.d_width))
    before = _conditional_accuracy(*sample(untrained, range(10), 100, seed=1), means)

    train(cfg, log=lambda line: None, progress=False)
    generator = load_generator(tmp_path / "generator.keras")
    images, labels = sample(generator, range(10), 100, seed=1)
    after = _conditional_accuracy(images, labels, means)

    assert before < 0.2, before
    assert after > 0.3, f"conditional accuracy {after:.2f} after training (was {before:.2f})"
    # Real digits are mostly background: the samples' ink must look like it too.
    assert 0.05 < ((images + 1) / 2 > 0.5).mean() < 0.35
