"""Layers that compute a built-in layer's function more cheaply, with the same weights.

:class:`PixelShuffleConv2DTranspose` (the generator's upsampling),
:class:`LabelPlaneConv2D` (the discriminator's first convolution, over the
image and its label) and :class:`ThreefryDropout` (D's dropout). ``models``
builds the networks from them.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

DROPOUT_MASKS = ("threefry", "keras")  # mirrored by config.DROPOUT_MASKS


@keras.saving.register_keras_serializable(package="cgan_mnist")
class PixelShuffleConv2DTranspose(layers.Conv2DTranspose):
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

    def __init__(self, filters: int, **kwargs):
        super().__init__(filters, 4, strides=2, padding="same", **kwargs)

    def get_config(self):
        config = super().get_config()
        for fixed in ("kernel_size", "strides", "padding"):
            config.pop(fixed)
        return config

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
        x = ops.reshape(ops.stack(crops, axis=3), (-1, height, width, 2, 2, f))
        x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, 2 * height, 2 * width, f))
        if self.use_bias:
            x = x + self.bias
        return self.activation(x)


@keras.saving.register_keras_serializable(package="cgan_mnist")
class LabelPlaneConv2D(layers.Layer):
    """A "same"-padded Conv2D over the image with the one-hot label appended as
    constant planes, one per class -- computed without building the planes.

    The label's share of the convolution is linear in the label:
    ``conv(planes(y)) = sum_c y_c * conv(planes(e_c))``. So the layer convolves
    the ``num_classes`` unit planes once per call (a ``(classes, h, w, filters)``
    table, independent of the batch) and gives each image its row mix by a
    matmul. The result and the weights (kernel ``(k, k, channels + classes,
    filters)``, bias) are those of the plain layer; only the cost differs:
    ``classes * h * w * filters`` multiply-adds per image instead of
    ``k * k * classes * h * w * filters`` (16x less with a 4x4 kernel).

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
        from_image = ops.conv(image, image_kernel, strides=self.strides, padding="same")
        unit_planes = ops.broadcast_to(  # plane set c is all ones in channel c
            ops.reshape(ops.eye(self.num_classes, dtype=self.compute_dtype),
                        (self.num_classes, 1, 1, self.num_classes)),
            (self.num_classes, *self.plane_shape, self.num_classes))
        per_class = ops.conv(unit_planes, label_kernel, strides=self.strides, padding="same")
        table = ops.reshape(per_class, (self.num_classes, -1))
        from_label = ops.reshape(ops.matmul(label, table), ops.shape(from_image))
        return from_image + from_label + self.bias

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
