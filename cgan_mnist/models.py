"""Generator and discriminator networks, built with the Keras functional API.

This module knows nothing about training. Every model has two inputs:

* generator:     ``noise`` (latent_dim,) and ``label`` one-hot (num_classes,)
                 -> image (28, 28, 1) in [-1, 1] (tanh).
* discriminator: ``image`` (28, 28, 1) and ``label`` one-hot (num_classes,)
                 -> one real/fake *logit* (no sigmoid; the loss takes logits).

Both discriminators see the label twice: once at the input (concatenated to
the image) and once at the output, as a projection term (Miyato & Koyama,
2018): ``logit = w.phi(x) + b + embed(y).phi(x)``. The projection makes the
discriminator judge "is this a real *7*?" rather than only "is this real?",
which is what makes the generator draw the asked-for digit.

Two layers of this module compute a built-in layer's function more cheaply,
with the same weights: :class:`PixelShuffleConv2DTranspose` (G) and
:class:`LabelPlaneConv2D` (D). The generator saved as ``generator.keras`` is
rebuilt from built-in layers (:func:`portable_generator`), so it loads with
plain ``keras.models.load_model`` and no custom objects.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass

import keras
from keras import layers, ops

from .config import ARCHS

IMAGE_SHAPE = (28, 28, 1)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild both networks (stored in config.json)."""

    arch: str = "dcgan"
    latent_dim: int = 100
    num_classes: int = 10
    g_width: int = 32   # dcgan: channels of G's 14x14 map (its 7x7 map has 2x); mlp: G's first hidden width
    d_width: int = 32   # dcgan: channels of D's first conv (its second has 2x); mlp: D's last hidden width
    d_dropout: float = 0.0  # dropout rate after each of D's hidden layers (0: none)

    def to_dict(self) -> dict:
        return asdict(self)


def build_generator(cfg: ModelConfig, portable: bool = False) -> keras.Model:
    """``portable``: built-in Keras layers only (slower under XLA, same function)."""
    noise = keras.Input((cfg.latent_dim,), name="noise")
    label = keras.Input((cfg.num_classes,), name="label")
    x = layers.Concatenate(name="noise_and_label")([noise, label])
    if cfg.arch == "mlp":
        image = _mlp_generator_body(x, cfg)
    else:
        image = _dcgan_generator_body(x, cfg, Conv2DTranspose4x4 if portable
                                      else PixelShuffleConv2DTranspose)
    return keras.Model([noise, label], image, name=f"{cfg.arch}_generator")


def build_discriminator(cfg: ModelConfig) -> keras.Model:
    image = keras.Input(IMAGE_SHAPE, name="image")
    label = keras.Input((cfg.num_classes,), name="label")
    body = _mlp_discriminator_features if cfg.arch == "mlp" else _dcgan_discriminator_features
    features = body(image, label, cfg)
    logit = _projection_head(features, label)
    return keras.Model([image, label], logit, name=f"{cfg.arch}_discriminator")


def build_models(cfg: ModelConfig, dtype_policy: str | None = None
                 ) -> tuple[keras.Model, keras.Model]:
    """Both networks; ``dtype_policy`` (e.g. "mixed_float16") applies to their
    layers except the output heads, which stay float32 for a stable loss."""
    if cfg.arch not in ARCHS:
        raise ValueError(f"unknown architecture {cfg.arch!r}; expected one of {ARCHS}")
    with _dtype_policy(dtype_policy):
        return build_generator(cfg), build_discriminator(cfg)


def portable_generator(generator: keras.Model, cfg: ModelConfig,
                       dtype_policy: str | None = None) -> keras.Model:
    """``generator`` rebuilt from built-in Keras layers, with its weights: the
    model to save, so that it loads anywhere without this package."""
    with _dtype_policy(dtype_policy):
        portable = build_generator(cfg, portable=True)
    portable.set_weights(generator.get_weights())
    return portable


@contextmanager
def _dtype_policy(name: str | None):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name or "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# --- generator bodies -------------------------------------------------------


def _batch_norm(name: str):
    # Synchronized: under a multi-replica tf.distribute strategy the batch
    # statistics are those of the global batch, as on one device.
    return layers.BatchNormalization(synchronized=True, name=name)


def _mlp_generator_body(x, cfg: ModelConfig):
    for i, units in enumerate((cfg.g_width, cfg.g_width * 2, cfg.g_width * 4)):
        x = layers.Dense(units, use_bias=False, name=f"dense{i + 1}")(x)
        x = _batch_norm(f"bn{i + 1}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
    x = layers.Dense(28 * 28, name="to_pixels")(x)
    x = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return layers.Reshape(IMAGE_SHAPE, name="image")(x)


def Conv2DTranspose4x4(filters: int, **kwargs):  # noqa: N802 (a layer factory)
    """The built-in layer that PixelShuffleConv2DTranspose computes."""
    return layers.Conv2DTranspose(filters, 4, strides=2, padding="same", **kwargs)


def _dcgan_generator_body(x, cfg: ModelConfig, upsample):
    wide = cfg.g_width * 2
    x = layers.Dense(7 * 7 * wide, use_bias=False, name="project")(x)
    x = _batch_norm("bn0")(x)
    x = layers.ReLU(name="relu0")(x)
    x = layers.Reshape((7, 7, wide), name="map7")(x)
    x = upsample(cfg.g_width, use_bias=False, name="up14")(x)
    x = _batch_norm("bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = upsample(1, name="up28")(x)
    return layers.Activation("tanh", dtype="float32", name="image")(x)


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


# --- discriminator bodies (image + label -> feature vector) -----------------


def _mlp_discriminator_features(image, label, cfg: ModelConfig):
    x = layers.Flatten(name="pixels")(image)
    x = layers.Concatenate(name="pixels_and_label")([x, label])
    for i, units in enumerate((cfg.d_width * 4, cfg.d_width * 2, cfg.d_width)):
        x = layers.Dense(units, name=f"dense{i + 1}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
        x = _dropout(cfg, f"dropout{i + 1}")(x)
    return x


def _dcgan_discriminator_features(image, label, cfg: ModelConfig):
    x = LabelPlaneConv2D(cfg.d_width, 4, strides=2, name="down14")([image, label])
    x = layers.LeakyReLU(0.2, name="lrelu1")(x)
    x = _dropout(cfg, "dropout1")(x)
    x = layers.Conv2D(cfg.d_width * 2, 4, strides=2, padding="same", name="down7")(x)
    x = layers.LeakyReLU(0.2, name="lrelu2")(x)
    x = _dropout(cfg, "dropout2")(x)
    return layers.Flatten(name="features")(x)


def _dropout(cfg: ModelConfig, name: str):
    """Dropout at rate ``cfg.d_dropout``; the identity (no layer at all) at 0, so a
    model without dropout has exactly the layers and variables it had before."""
    if not cfg.d_dropout:
        return lambda x: x
    return layers.Dropout(cfg.d_dropout, name=name)


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
    """

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides

    def build(self, input_shape):
        image_shape, label_shape = input_shape
        self.image_channels, self.num_classes = image_shape[-1], label_shape[-1]
        self.plane_shape = tuple(image_shape[1:3])
        self.kernel = self.add_weight(
            name="kernel", initializer="glorot_uniform",
            shape=(self.kernel_size, self.kernel_size,
                   self.image_channels + self.num_classes, self.filters))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, inputs):
        image, label = inputs
        image_kernel = self.kernel[:, :, :self.image_channels, :]
        label_kernel = self.kernel[:, :, self.image_channels:, :]
        from_image = ops.conv(image, image_kernel, strides=self.strides, padding="same")
        unit_planes = ops.broadcast_to(  # plane set c is all ones in channel c
            ops.reshape(ops.eye(self.num_classes, dtype=self.compute_dtype),
                        (self.num_classes, 1, 1, self.num_classes)),
            (self.num_classes, *self.plane_shape, self.num_classes))
        per_class = ops.conv(unit_planes, label_kernel, strides=self.strides, padding="same")
        table = ops.reshape(per_class, (self.num_classes, -1))
        from_label = ops.reshape(ops.matmul(label, table), ops.shape(from_image))
        return from_image + from_label + self.bias

    def compute_output_shape(self, input_shape):
        (batch, height, width, _), _ = input_shape
        size = lambda n: None if n is None else -(-n // self.strides)  # noqa: E731
        return (batch, size(height), size(width), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides}


def _projection_head(features, label):
    """Unconditional logit plus the label projection <embed(y), phi(x)>."""
    unconditional = layers.Dense(1, name="logit_unconditional")(features)
    embedded = layers.Dense(features.shape[-1], use_bias=False, name="label_embedding")(label)
    projection = layers.Dot(axes=1, name="label_projection")([embedded, features])
    return layers.Add(dtype="float32", name="logit")([unconditional, projection])


CUSTOM_LAYERS = {cls.__name__: cls for cls in (PixelShuffleConv2DTranspose, LabelPlaneConv2D)}


# --- cost accounting ----------------------------------------------------------


def forward_flops(model: keras.Model) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass for one example.

    Counted from layer shapes for the layers that dominate the cost (dense,
    convolution, transposed convolution, dot); element-wise layers are ignored.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, LabelPlaneConv2D):
            h, w, c_out = layer.output.shape[1:]
            per_pixel = layer.kernel_size**2 * layer.image_channels + layer.num_classes
            total += 2 * h * w * c_out * per_pixel  # the per-class table is per batch: not counted
        elif isinstance(layer, layers.Conv2DTranspose):  # before Conv2D: it subclasses it
            h, w, c_in = layer.input.shape[1:]
            k_h, k_w = layer.kernel_size
            total += 2 * h * w * c_in * k_h * k_w * layer.filters
        elif isinstance(layer, layers.Conv2D):
            c_in = layer.input.shape[-1]
            h, w, c_out = layer.output.shape[1:]
            k_h, k_w = layer.kernel_size
            total += 2 * h * w * c_out * k_h * k_w * c_in
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
        elif isinstance(layer, layers.Dot):
            total += 2 * layer.input[0].shape[-1]
    return int(total)


def training_flops_per_image(generator: keras.Model, discriminator: keras.Model,
                             reuse_fakes: bool = False) -> int:
    """FLOPs of one training step divided by the batch size.

    With a backward pass costing twice its forward pass:
    D step = G forward + D forward/backward on a real and a fake image (1 G + 6 D);
    G step = G forward/backward + D forward/backward (3 G + 3 D), or with
    ``reuse_fakes`` G backward only, through the D step's fakes (2 G + 3 D).
    """
    g, d = forward_flops(generator), forward_flops(discriminator)
    return (3 if reuse_fakes else 4) * g + 9 * d
