"""Layers that compute a built-in layer's function more cheaply, with the same weights.

:class:`PixelShuffleConv2DTranspose` (the generator's upsampling),
:class:`OverlapAddConv2DTranspose` (its last, one-channel upsampling),
:class:`LabelPlaneConv2D` (the discriminator's first convolution, over the
image and its label) and :class:`ThreefryDropout` (D's dropout). ``models``
builds the networks from them.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

DROPOUT_MASKS = ("threefry", "keras")  # mirrored by config.DROPOUT_MASKS


class _FixedShapeConv2DTranspose(layers.Conv2DTranspose):
    """``Conv2DTranspose(filters, 4, strides=2, padding="same")``, the shape both
    fast forms below compute; only ``filters`` (and the usual options) vary."""

    def __init__(self, filters: int, **kwargs):
        super().__init__(filters, 4, strides=2, padding="same", **kwargs)

    def get_config(self):
        config = super().get_config()
        for fixed in ("kernel_size", "strides", "padding"):
            config.pop(fixed)
        return config

    def _interleaved(self, phases):
        """The output from its four phases ``(a, b)`` (pixels ``(2m + a, 2n + b)``),
        each ``(batch, height, width, filters)``; plus bias, through the activation."""
        _, height, width, f = phases[0].shape
        x = ops.reshape(ops.stack(phases, axis=3), (-1, height, width, 2, 2, f))
        x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, 2 * height, 2 * width, f))
        if self.use_bias:
            x = x + self.bias
        return self.activation(x)


@keras.saving.register_keras_serializable(package="cgan_mnist")
class PixelShuffleConv2DTranspose(_FixedShapeConv2DTranspose):
    """``Conv2DTranspose(filters, 4, strides=2, padding="same")``: same weights,
    same result, computed as one stride-1 convolution and a pixel shuffle.

    Each output pixel ``(2m + a, 2n + b)`` sees a 2x2 window of the input, with
    kernel taps fixed by its phase ``(a, b)``: ``(3, 1)`` for an even row or
    column and ``(2, 0)`` for an odd one. One 2x2 convolution of the input
    padded by one pixel computes all four phases (``4 * filters`` channels);
    each phase is then cropped and the phases interleaved. XLA lowers the
    plain transposed convolution to a convolution over a zero-stuffed input,
    four times the multiply-adds; this form does 1.3x.
    """

    TAPS = ((3, 1), (2, 0))  # kernel row/column used by window row/column 0 and 1, per phase

    def call(self, inputs):
        kernel = ops.transpose(self.kernel, (0, 1, 3, 2))  # (4, 4, in, out), conv layout
        phases = [ops.take(ops.take(kernel, self.TAPS[a], axis=0), self.TAPS[b], axis=1)
                  for a in (0, 1) for b in (0, 1)]
        padded = ops.pad(inputs, ((0, 0), (1, 1), (1, 1), (0, 0)))
        windows = ops.conv(padded, ops.concatenate(phases, axis=-1), padding="valid")
        height, width = inputs.shape[1], inputs.shape[2]
        f = self.filters
        crops = [windows[:, a:a + height, b:b + width, (2 * a + b) * f:(2 * a + b + 1) * f]
                 for a in (0, 1) for b in (0, 1)]
        return self._interleaved(crops)


@keras.saving.register_keras_serializable(package="cgan_mnist")
class OverlapAddConv2DTranspose(_FixedShapeConv2DTranspose):
    """``Conv2DTranspose(filters, 4, strides=2, padding="same")``: same weights,
    same result, computed as one matmul and an overlap-add, for few ``filters``.

    The matmul gives each input pixel its 4x4 patch of output contributions
    (``16 * filters`` columns); output pixel ``o = 2i + k - 1`` of an axis then
    sums the two taps ``k`` that reach it, from input ``i`` and a neighbour.
    For G's last layer (64 channels in, 1 out) this does no wasted multiply-add
    and, fed to XLA on a CPU, runs 2.8x faster forward and backward than
    :class:`PixelShuffleConv2DTranspose`, which wins where ``filters`` is wide
    (its matmul output fits no cache: 2.7x slower at 128 in, 64 out).
    """

    SOURCES = (((1, 0), (3, -1)), ((2, 0), (0, 1)))  # per output phase: (tap, input offset)

    def call(self, inputs):
        height, width, channels = inputs.shape[1:]
        f = self.filters
        kernel = ops.reshape(ops.transpose(self.kernel, (3, 0, 1, 2)), (channels, 16 * f))
        patches = ops.reshape(ops.matmul(ops.reshape(inputs, (-1, channels)), kernel),
                              (-1, height, width, 4, 4, f))
        padded = ops.pad(patches, ((0, 0), (1, 1), (1, 1), (0, 0), (0, 0), (0, 0)))
        phases = [sum(padded[:, 1 + di:1 + di + height, 1 + dj:1 + dj + width, ki, kj, :]
                      for ki, di in self.SOURCES[a] for kj, dj in self.SOURCES[b])
                  for a in (0, 1) for b in (0, 1)]
        return self._interleaved(phases)


@keras.saving.register_keras_serializable(package="cgan_mnist")
class LabelPlaneConv2D(layers.Layer):
    """A "same"-padded Conv2D over the image with the one-hot label appended as
    constant planes, one per class -- computed without building the planes.

    The label's share of the convolution is linear in the label:
    ``conv(planes(y)) = sum_c y_c * conv(planes(e_c))``. A unit plane's
    convolution at an output pixel is the sum of the kernel taps that fall
    inside the image, so the layer computes that ``(classes, h, w, filters)``
    table once per call as one small matmul with a constant 0/1 matrix (which
    taps are inside, per output pixel) and gives each image its row mix by a
    matmul. The result and the weights (kernel ``(k, k, channels + classes,
    filters)``, bias) are those of the plain layer; only the cost differs:
    ``classes * h * w * filters`` multiply-adds per image instead of
    ``k * k * classes * h * w * filters`` (16x less with a 4x4 kernel).

    The image's share is an explicit im2col (one strided slice per tap) and a
    matmul: with one input channel, XLA's convolution on a CPU runs at 12% of
    the matmul peak, and this form (with the table's) makes the layer 1.8x
    faster forward and backward (``scripts/profile_step.py --layers``).

    With ``spectral_norm`` the kernel is spectrally normalized in training calls
    exactly as ``keras.layers.SpectralNormalization`` does it to a Conv2D's
    (which cannot wrap this two-input layer): ``spectral_step`` in float32,
    the kernel and the power iteration's vector ``u`` (a weight, so
    checkpointed) assigned their new values.
    """

    def __init__(self, filters: int, kernel_size: int, strides: int = 1,
                 spectral_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.spectral_norm = spectral_norm

    def build(self, input_shape):
        image_shape, label_shape = input_shape
        self.image_channels, self.num_classes = image_shape[-1], label_shape[-1]
        self.plane_shape = tuple(image_shape[1:3])
        self.output_plane = tuple(-(-n // self.strides) for n in self.plane_shape)
        self.padding, self.inside = same_padding_taps(self.plane_shape, self.kernel_size,
                                                      self.strides)
        self.kernel = self.add_weight(
            name="kernel", initializer="glorot_uniform",
            shape=(self.kernel_size, self.kernel_size,
                   self.image_channels + self.num_classes, self.filters),
            autocast=not self.spectral_norm)  # normalized in float32, cast by call
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        if self.spectral_norm:  # as keras.layers.SpectralNormalization makes it
            self.vector_u = self.add_weight(
                name="vector_u", shape=(1, self.filters), trainable=False, autocast=False,
                initializer=keras.initializers.TruncatedNormal(stddev=0.02))

    def call(self, inputs, training=False):
        image, label = inputs
        kernel = self._normalized_kernel(training) if self.spectral_norm else self.kernel
        image_kernel = kernel[:, :, :self.image_channels, :]
        label_kernel = kernel[:, :, self.image_channels:, :]
        return (self._image_convolution(image, image_kernel)
                + self._label_convolution(label, label_kernel) + self.bias)

    def _image_convolution(self, image, image_kernel):
        """``conv(image, image_kernel, strides, "same")`` as im2col and a matmul."""
        k, stride = self.kernel_size, self.strides
        (top, bottom), (left, right) = self.padding
        padded = ops.pad(image, ((0, 0), (top, bottom), (left, right), (0, 0)))
        out_h, out_w = self.output_plane
        columns = ops.concatenate(
            [padded[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
             for i in range(k) for j in range(k)], axis=-1)  # taps in the kernel's (i, j, c) order
        flat = ops.matmul(ops.reshape(columns, (-1, k * k * self.image_channels)),
                          ops.reshape(image_kernel, (-1, self.filters)))
        return ops.reshape(flat, (-1, out_h, out_w, self.filters))

    def _label_convolution(self, label, label_kernel):
        """The convolution of the label's constant planes, through the per-class table."""
        inside = ops.cast(self.inside, self.compute_dtype)  # (output pixels, taps)
        table = ops.matmul(inside, ops.reshape(label_kernel, (inside.shape[1], -1)))
        table = ops.transpose(ops.reshape(table, (-1, self.num_classes, self.filters)), (1, 0, 2))
        mixed = ops.matmul(label, ops.reshape(table, (self.num_classes, -1)))
        return ops.reshape(mixed, (-1, *self.output_plane, self.filters))

    def _normalized_kernel(self, training):
        """The kernel in the compute dtype; in training, first normalized (in float32)."""
        if training:
            vector_u, kernel = spectral_step(self.kernel.value, self.vector_u.value)
            self.vector_u.assign(vector_u)
            self.kernel.assign(kernel)
        return ops.cast(self.kernel.value, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        (batch, height, width, _), _ = input_shape
        size = lambda n: None if n is None else -(-n // self.strides)  # noqa: E731
        return (batch, size(height), size(width), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "spectral_norm": self.spectral_norm}


def same_padding_taps(plane_shape, kernel_size: int, strides: int):
    """A "same" convolution's padding ``((top, bottom), (left, right))``, as
    TensorFlow pads, and a 0/1 matrix ``(output pixels, kernel taps)``: 1 where
    the tap reads inside the plane (not the padding)."""
    axes = []
    for n in plane_shape:
        out = -(-n // strides)
        total = max((out - 1) * strides + kernel_size - n, 0)
        before = total // 2
        reads = np.arange(out)[:, None] * strides + np.arange(kernel_size)[None, :] - before
        axes.append(((before, total - before), (reads >= 0) & (reads < n)))
    (rows_pad, rows_in), (cols_pad, cols_in) = axes
    inside = rows_in[:, None, :, None] & cols_in[None, :, None, :]  # (oh, ow, k, k)
    return (rows_pad, cols_pad), inside.reshape(-1, kernel_size**2).astype(np.float32)


def spectral_step(kernel, vector_u):
    """One power iteration of ``keras.layers.SpectralNormalization``: the new ``u``
    and ``kernel / sigma``, sigma the estimate of the kernel's largest singular value
    (the kernel flattened to (-1, output channels))."""
    weights = ops.reshape(kernel, (-1, kernel.shape[-1]))
    vector_v = keras.utils.normalize(ops.matmul(vector_u, ops.transpose(weights)), axis=None)
    vector_u = keras.utils.normalize(ops.matmul(vector_v, weights), axis=None)
    vector_u, vector_v = ops.stop_gradient(vector_u), ops.stop_gradient(vector_v)
    sigma = ops.matmul(ops.matmul(vector_v, weights), ops.transpose(vector_u))
    return vector_u, ops.divide(kernel, sigma)


@keras.saving.register_keras_serializable(package="cgan_mnist")
class ThreefryDropout(layers.Dropout):
    """``layers.Dropout`` whose masks, under XLA, come from the ThreeFry generator.

    Keras draws its masks with TensorFlow's "auto_select" generator, Philox on a
    CPU, which XLA on a CPU computes slowly: they cost the mlp 14% of its step,
    and ThreeFry's almost nothing (BENCHMARKS.md, "Where a step's time goes").
    Outside XLA (``--no-xla``), where TensorFlow has no ThreeFry kernel, and with
    ``masks="keras"`` (runs that began before this layer), the masks are Keras's
    own, bit for bit. The seed state is Keras's, so checkpoints and exact resume
    are unchanged; only the stream of masks differs.
    """

    def __init__(self, rate: float, masks: str = "threefry", **kwargs):
        super().__init__(rate, **kwargs)
        if masks not in DROPOUT_MASKS:
            raise ValueError(f"masks must be one of {DROPOUT_MASKS}, not {masks!r}")
        self.masks = masks

    def call(self, inputs, training=False):
        if not training or self.rate == 0 or self.masks == "keras" or not _under_xla():
            return super().call(inputs, training=training)
        seed = self.seed_generator.next()  # Keras's state; TF's stateless ops want int32
        seed = tf.cast(tf.math.floormod(tf.cast(seed, tf.int64), tf.int32.max - 1), tf.int32)
        shape = tf.shape(inputs) if self.noise_shape is None else self.noise_shape
        keep = tf.random.stateless_uniform(shape, seed, alg="threefry") >= self.rate
        scaled = inputs * ops.cast(1 / (1 - self.rate), inputs.dtype)  # as TF's dropout
        return scaled * ops.cast(keep, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "masks": self.masks}


def _under_xla() -> bool:
    """Whether the function being traced is compiled by XLA (``jit_compile=True``).
    TensorFlow says so only in a private module; without it, Keras's masks."""
    try:
        from tensorflow.python.framework import ops as tf_ops
        from tensorflow.python.ops import control_flow_util
    except ImportError:
        return False
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph()))
