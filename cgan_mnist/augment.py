"""DiffAugment (Zhao et al., 2020): differentiable augmentations of every image D sees.

D is trained on augmented real *and* fake images, and G's gradient flows back
through the augmentation of its fakes, so D cannot overfit a small set of
real images while G is not taught to draw the augmentations. Two policies,
as in the paper's "translation,cutout" for small datasets:

* ``translation``: shift each image by up to 1/8 of its size (3 pixels on
  28x28) in each direction, filling with zeros (-1 is black in [-1, 1], but
  DiffAugment pads with zeros too: the padding is part of the augmentation);
* ``cutout``: zero one square of half the image's size (14x14) per image, at a
  random centre (the square may reach past the border; that part is lost).

Pure TensorFlow and stateless: the randomness comes in as ``draws``, uniform
numbers in [0, 1), one row per image (``gan.with_noise`` draws them from the
batch's seed), so a resumed run and N replicas augment exactly as one run.
Both policies are products with 0/1 matrices, so they are differentiable with
respect to the images, exact in float32, and compile under XLA.
"""

from __future__ import annotations

import tensorflow as tf

POLICIES = ("translation", "cutout")
DRAWS_PER_POLICY = 2  # (rows, columns): a shift, or the centre of the square


def parse_policy(text: str) -> tuple[str, ...]:
    """``"translation,cutout"`` -> ("translation", "cutout"); "" -> (). ValueError if unknown."""
    names = tuple(name.strip() for name in text.split(",")) if text.strip() else ()
    unknown = [name for name in names if name not in POLICIES]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"{text!r}: expected distinct names among {', '.join(POLICIES)}")
    return names


def draws_needed(policy: tuple[str, ...]) -> int:
    """Uniform numbers per image that ``augment`` consumes for this policy."""
    return DRAWS_PER_POLICY * len(policy)


def augment(images: tf.Tensor, policy: tuple[str, ...], draws: tf.Tensor) -> tf.Tensor:
    """``images`` (N, H, W, C) with each policy applied in order; ``draws`` (N, >= needed)."""
    for i, name in enumerate(policy):
        pair = draws[:, DRAWS_PER_POLICY * i:DRAWS_PER_POLICY * (i + 1)]
        images = translate(images, pair) if name == "translation" else cutout(images, pair)
    return images


def _integers(draws: tf.Tensor, low: int, high: int) -> tf.Tensor:
    """Uniform [0, 1) -> integers in low..high (inclusive), int32."""
    count = tf.cast(high - low + 1, draws.dtype)
    return tf.minimum(tf.cast(tf.floor(draws * count), tf.int32), high - low) + low


def translate(images: tf.Tensor, draws: tf.Tensor) -> tf.Tensor:
    """Shift each image by (dy, dx) in -size//8..size//8 pixels, zeros shifted in.

    out[i, j] = image[i - dy, j - dx] (0 outside), as ``S_y @ image @ S_x^T`` with
    one-hot shift matrices (``one_hot`` of an index out of range is a zero row)."""
    height, width = images.shape[1], images.shape[2]
    dy = _integers(draws[:, 0], -(height // 8), height // 8)
    dx = _integers(draws[:, 1], -(width // 8), width // 8)
    rows = tf.one_hot(tf.range(height)[None, :] - dy[:, None], height, dtype=images.dtype)
    cols = tf.one_hot(tf.range(width)[None, :] - dx[:, None], width, dtype=images.dtype)
    return tf.einsum("bij,bjkc,blk->bilc", rows, images, cols)


def cutout(images: tf.Tensor, draws: tf.Tensor) -> tf.Tensor:
    """Zero a (size/2)x(size/2) square per image: rows cy - size/4 .. cy + size/4 - 1
    (likewise columns), its centre cy, cx drawn in 0..size."""
    height, width = images.shape[1], images.shape[2]
    half_h, half_w = (height + 1) // 4, (width + 1) // 4
    cy, cx = _integers(draws[:, 0], 0, height), _integers(draws[:, 1], 0, width)
    in_rows = tf.abs(2 * tf.range(height)[None, :] - 2 * cy[:, None] + 1) < 2 * half_h
    in_cols = tf.abs(2 * tf.range(width)[None, :] - 2 * cx[:, None] + 1) < 2 * half_w
    square = tf.logical_and(in_rows[:, :, None], in_cols[:, None, :])
    return images * tf.cast(tf.logical_not(square), images.dtype)[..., None]
