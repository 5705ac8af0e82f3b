"""DiffAugment (cgan_mnist.augment): what each policy does to known images, and that the
gradient flows back through it."""

import numpy as np
import pytest

from cgan_mnist import augment


def _draw(k: int, count: int) -> float:
    """The uniform number that ``augment`` turns into integer k of ``count`` choices."""
    return (k + 0.5) / count


def _pixel_image(y: int, x: int) -> np.ndarray:
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, y, x, 0] = 0.75
    return image


def test_policies_are_parsed_and_unknown_names_refused():
    assert augment.parse_policy("") == ()
    assert augment.parse_policy("translation, cutout") == ("translation", "cutout")
    assert augment.draws_needed(("translation", "cutout")) == 4
    for bad in ("flip", "translation,translation", "translation,"):
        with pytest.raises(ValueError):
            augment.parse_policy(bad)


@pytest.mark.parametrize("dy, dx", [(3, -3), (-2, 1), (0, 0)])
def test_translation_moves_a_known_pixel(dy, dx):
    draws = np.array([[_draw(dy + 3, 7), _draw(dx + 3, 7)]], np.float32)
    moved = np.asarray(augment.translate(_pixel_image(10, 12), draws))
    assert moved.shape == (1, 28, 28, 1)
    assert moved[0, 10 + dy, 12 + dx, 0] == 0.75 and np.count_nonzero(moved) == 1


def test_translation_fills_with_zeros_and_covers_every_shift():
    ones = np.ones((7, 28, 28, 1), np.float32)
    draws = np.stack([np.array([_draw(k, 7) for k in range(7)])] * 2, axis=1).astype(np.float32)
    shifted = np.asarray(augment.translate(ones, draws))
    for k, image in enumerate(shifted[..., 0]):  # shift (k - 3, k - 3)
        kept = (28 - abs(k - 3)) ** 2
        assert image.sum() == kept and set(np.unique(image)) <= {0.0, 1.0}
    edge = np.asarray(augment.translate(_pixel_image(27, 0), np.array([[0.99, 0.0]], np.float32)))
    assert not edge.any(), "a pixel shifted out of the image is gone"


def test_cutout_zeros_exactly_one_half_size_square():
    ones = np.ones((2, 28, 28, 1), np.float32)
    draws = np.array([[_draw(14, 29), _draw(10, 29)], [_draw(0, 29), _draw(28, 29)]], np.float32)
    cut = np.asarray(augment.cutout(ones, draws))[..., 0]
    expected = np.ones((28, 28), np.float32)
    expected[7:21, 3:17] = 0.0  # centre (14, 10): rows 14-7 .. 14+6
    np.testing.assert_array_equal(cut[0], expected)
    corner = np.ones((28, 28), np.float32)
    corner[0:7, 21:28] = 0.0  # centre (0, 28): the square reaches past the corner
    np.testing.assert_array_equal(cut[1], corner)


@pytest.mark.parametrize("jit", [False, True])
def test_the_gradient_flows_through_the_augmentation(jit):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32))
    draws = tf.constant(rng.uniform(0, 1, (4, 4)).astype(np.float32))
    weights = tf.constant(rng.standard_normal((28, 28, 1)).astype(np.float32))

    @tf.function(jit_compile=jit)
    def gradient(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            seen = augment.augment(images, ("translation", "cutout"), draws)
            score = tf.reduce_sum(seen * weights)
        return seen, tape.gradient(score, images)

    seen, grad = (np.asarray(t) for t in gradient(images))
    assert seen.shape == images.shape
    assert seen.min() >= -1.0 and seen.max() <= 1.0
    assert np.count_nonzero(grad) > 0.5 * grad.size
    # Pixels D never sees (cut out or shifted away) get no gradient.
    assert 0 < np.count_nonzero(grad == 0)
