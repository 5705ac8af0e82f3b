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

Two layers (``fast_layers``) compute a built-in layer's function more cheaply,
with the same weights: :class:`PixelShuffleConv2DTranspose` and
:class:`OverlapAddConv2DTranspose` (G), and :class:`LabelPlaneConv2D` (D). The generator saved as ``generator.keras`` is
rebuilt from built-in layers (:func:`portable_generator`), so it loads with
plain ``keras.models.load_model`` and no custom objects.

With ``spectral_norm`` (Miyato et al., 2018) every kernel of D, the label
embedding of the projection included, is spectrally normalized in training:
``keras.layers.SpectralNormalization`` around the Dense and Conv2D layers
(in float32, so that under mixed precision the float32 kernel it rewrites is
not rounded to 16 bits), and the same power iteration inside LabelPlaneConv2D.

With ``minibatch_stddev`` (Karras et al., 2018, section 3) D's last features get
one more channel: how much the batch varies (:class:`MinibatchStddev`). A batch of
fakes narrower than a batch of real digits is then visible to D, and G is pushed
towards variety.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass

import keras
from keras import layers, ops

from .config import ARCHS
from .fast_layers import (LabelPlaneConv2D, OverlapAddConv2DTranspose,
                          PixelShuffleConv2DTranspose, ThreefryDropout)

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
    spectral_norm: bool = False  # D's kernels spectrally normalized in training
    dropout_masks: str = "threefry"  # "keras": Keras's own masks (fast_layers.ThreefryDropout)
    minibatch_stddev: bool = False  # D's features gain the batch's spread (MinibatchStddev)

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
        upsample = ((Conv2DTranspose4x4, Conv2DTranspose4x4) if portable else
                    (PixelShuffleConv2DTranspose, OverlapAddConv2DTranspose))
        image = _dcgan_generator_body(x, cfg, *upsample)
    return keras.Model([noise, label], image, name=f"{cfg.arch}_generator")


def build_discriminator(cfg: ModelConfig) -> keras.Model:
    image = keras.Input(IMAGE_SHAPE, name="image")
    label = keras.Input((cfg.num_classes,), name="label")
    body = _mlp_discriminator_features if cfg.arch == "mlp" else _dcgan_discriminator_features
    features = body(image, label, cfg)
    logit = _projection_head(features, label, cfg)
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


def _dcgan_generator_body(x, cfg: ModelConfig, upsample, upsample_to_pixels):
    wide = cfg.g_width * 2
    x = layers.Dense(7 * 7 * wide, use_bias=False, name="project")(x)
    x = _batch_norm("bn0")(x)
    x = layers.ReLU(name="relu0")(x)
    x = layers.Reshape((7, 7, wide), name="map7")(x)
    x = upsample(cfg.g_width, use_bias=False, name="up14")(x)
    x = _batch_norm("bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = upsample_to_pixels(1, name="up28")(x)
    return layers.Activation("tanh", dtype="float32", name="image")(x)



# --- discriminator bodies (image + label -> feature vector) -----------------


def _mlp_discriminator_features(image, label, cfg: ModelConfig):
    x = layers.Flatten(name="pixels")(image)
    x = layers.Concatenate(name="pixels_and_label")([x, label])
    for i, units in enumerate((cfg.d_width * 4, cfg.d_width * 2, cfg.d_width)):
        x = _normalized(cfg, layers.Dense(units, name=f"dense{i + 1}"))(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
        x = _dropout(cfg, f"dropout{i + 1}")(x)
    return _with_spread(cfg, x)


def _dcgan_discriminator_features(image, label, cfg: ModelConfig):
    x = LabelPlaneConv2D(cfg.d_width, 4, strides=2, spectral_norm=cfg.spectral_norm,
                         name="down14")([image, label])
    x = layers.LeakyReLU(0.2, name="lrelu1")(x)
    x = _dropout(cfg, "dropout1")(x)
    x = _normalized(cfg, layers.Conv2D(cfg.d_width * 2, 4, strides=2, padding="same",
                                       name="down7"))(x)
    x = layers.LeakyReLU(0.2, name="lrelu2")(x)
    x = _dropout(cfg, "dropout2")(x)
    return layers.Flatten(name="features")(_with_spread(cfg, x))


def _with_spread(cfg: ModelConfig, x):
    return MinibatchStddev(name="minibatch_stddev")(x) if cfg.minibatch_stddev else x


@keras.saving.register_keras_serializable(package="cgan_mnist")
class MinibatchStddev(layers.Layer):
    """One more channel, the same for every sample of the batch: the standard
    deviation of each feature (at each position) over the batch, averaged over
    features and positions (Karras et al., 2018, section 3; the whole batch is
    one group). D is called on a batch of real or of generated images, never a
    mix, so the channel tells a narrow batch from a varied one."""

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        spread = ops.mean(ops.sqrt(ops.var(x, axis=0) + 1e-8))
        channel = ops.ones_like(inputs[..., :1]) * ops.cast(spread, inputs.dtype)
        return ops.concatenate([inputs, channel], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)


def _dropout(cfg: ModelConfig, name: str):
    """Dropout at rate ``cfg.d_dropout``; the identity (no layer at all) at 0, so a
    model without dropout has exactly the layers and variables it had before."""
    if not cfg.d_dropout:
        return lambda x: x
    return ThreefryDropout(cfg.d_dropout, masks=cfg.dropout_masks, name=name)



def _normalized(cfg: ModelConfig, layer: layers.Layer):
    """``layer``, spectrally normalized with ``cfg.spectral_norm`` (the wrapper in float32:
    it rewrites the float32 kernel, which a 16-bit computation would round)."""
    if not cfg.spectral_norm:
        return layer
    return layers.SpectralNormalization(layer, dtype="float32", name=f"{layer.name}_sn")


def _projection_head(features, label, cfg: ModelConfig):
    """Unconditional logit plus the label projection <embed(y), phi(x)>."""
    unconditional = _normalized(cfg, layers.Dense(1, name="logit_unconditional"))(features)
    embedded = _normalized(cfg, layers.Dense(features.shape[-1], use_bias=False,
                                             name="label_embedding"))(label)
    projection = layers.Dot(axes=1, name="label_projection")([embedded, features])
    return layers.Add(dtype="float32", name="logit")([unconditional, projection])


CUSTOM_LAYERS = {cls.__name__: cls for cls in (PixelShuffleConv2DTranspose,
                                                OverlapAddConv2DTranspose, LabelPlaneConv2D)}


# --- cost accounting ----------------------------------------------------------


def forward_flops(model: keras.Model) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass for one example.

    Counted from layer shapes for the layers that dominate the cost (dense,
    convolution, transposed convolution, dot); element-wise layers are ignored.
    """
    return sum(layer_flops(layer) for layer in model.layers)


def layer_flops(wrapped: layers.Layer) -> int:
    """``forward_flops``' count for one layer of a built model (0: not counted);
    a spectral normalization's wrapper counts as its layer."""
    layer = wrapped.layer if isinstance(wrapped, layers.Wrapper) else wrapped
    if isinstance(layer, LabelPlaneConv2D):
        h, w, c_out = wrapped.output.shape[1:]
        per_pixel = layer.kernel_size**2 * layer.image_channels + layer.num_classes
        return 2 * h * w * c_out * per_pixel  # the per-class table is per batch: not counted
    if isinstance(layer, layers.Conv2DTranspose):  # before Conv2D: it subclasses it
        h, w, c_in = wrapped.input.shape[1:]
        k_h, k_w = layer.kernel_size
        return 2 * h * w * c_in * k_h * k_w * layer.filters
    if isinstance(layer, layers.Conv2D):
        c_in = wrapped.input.shape[-1]
        h, w, c_out = wrapped.output.shape[1:]
        k_h, k_w = layer.kernel_size
        return 2 * h * w * c_out * k_h * k_w * c_in
    if isinstance(layer, layers.Dense):
        return 2 * wrapped.input.shape[-1] * layer.units
    if isinstance(layer, layers.Dot):
        return 2 * wrapped.input[0].shape[-1]
    return 0


def training_flops_per_image(generator: keras.Model, discriminator: keras.Model,
                             reuse_fakes: bool = False, r1: float = 0.0) -> int:
    """FLOPs of one training step divided by the batch size.

    With a backward pass costing twice its forward pass:
    D step = G forward + D forward/backward on a real and a fake image (1 G + 6 D);
    G step = G forward/backward + D forward/backward (3 G + 3 D), or with
    ``reuse_fakes`` G backward only, through the D step's fakes (2 G + 3 D).
    ``r1``, the share of D updates with the R1 penalty (1: every one; 1/N with
    ``--r1-interval N``), adds that share of, per real image, the gradient with
    respect to the image (a backward pass: 2 D) and the backward pass through that
    one (twice it: 4 D): 6 D in all, a rough count, not a measurement. DiffAugment and spectral normalization add
    little (per-image 28x28 matrix products; one power iteration per layer and
    batch) and are not counted.
    """
    g, d = forward_flops(generator), forward_flops(discriminator)
    return (3 if reuse_fakes else 4) * g + round((9 + 6 * r1) * d)
