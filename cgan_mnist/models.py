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

Only built-in Keras layers are used, so a saved ``generator.keras`` loads
without custom objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers

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

    def to_dict(self) -> dict:
        return asdict(self)


def build_generator(cfg: ModelConfig) -> keras.Model:
    noise = keras.Input((cfg.latent_dim,), name="noise")
    label = keras.Input((cfg.num_classes,), name="label")
    x = layers.Concatenate(name="noise_and_label")([noise, label])
    body = _mlp_generator_body if cfg.arch == "mlp" else _dcgan_generator_body
    image = body(x, cfg)
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
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy or "float32")
    try:
        return build_generator(cfg), build_discriminator(cfg)
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


def _dcgan_generator_body(x, cfg: ModelConfig):
    wide = cfg.g_width * 2
    x = layers.Dense(7 * 7 * wide, use_bias=False, name="project")(x)
    x = _batch_norm("bn0")(x)
    x = layers.ReLU(name="relu0")(x)
    x = layers.Reshape((7, 7, wide), name="map7")(x)
    x = layers.Conv2DTranspose(cfg.g_width, 4, strides=2, padding="same", use_bias=False,
                               name="up14")(x)
    x = _batch_norm("bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.Conv2DTranspose(1, 4, strides=2, padding="same", name="up28")(x)
    return layers.Activation("tanh", dtype="float32", name="image")(x)


# --- discriminator bodies (image + label -> feature vector) -----------------


def _mlp_discriminator_features(image, label, cfg: ModelConfig):
    x = layers.Flatten(name="pixels")(image)
    x = layers.Concatenate(name="pixels_and_label")([x, label])
    for i, units in enumerate((cfg.d_width * 4, cfg.d_width * 2, cfg.d_width)):
        x = layers.Dense(units, name=f"dense{i + 1}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
        x = layers.Dropout(0.3, name=f"dropout{i + 1}")(x)
    return x


def _dcgan_discriminator_features(image, label, cfg: ModelConfig):
    # One-hot label broadcast to constant 28x28 planes, one per class.
    planes = layers.RepeatVector(28 * 28, name="label_repeat")(label)
    planes = layers.Reshape((28, 28, cfg.num_classes), name="label_planes")(planes)
    x = layers.Concatenate(name="image_and_label")([image, planes])
    x = layers.Conv2D(cfg.d_width, 4, strides=2, padding="same", name="down14")(x)
    x = layers.LeakyReLU(0.2, name="lrelu1")(x)
    x = layers.Conv2D(cfg.d_width * 2, 4, strides=2, padding="same", name="down7")(x)
    x = layers.LeakyReLU(0.2, name="lrelu2")(x)
    return layers.Flatten(name="features")(x)


def _projection_head(features, label):
    """Unconditional logit plus the label projection <embed(y), phi(x)>."""
    unconditional = layers.Dense(1, name="logit_unconditional")(features)
    embedded = layers.Dense(features.shape[-1], use_bias=False, name="label_embedding")(label)
    projection = layers.Dot(axes=1, name="label_projection")([embedded, features])
    return layers.Add(dtype="float32", name="logit")([unconditional, projection])


# --- cost accounting ----------------------------------------------------------


def forward_flops(model: keras.Model) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass for one example.

    Counted from layer shapes for the layers that dominate the cost (dense,
    convolution, transposed convolution, dot); element-wise layers are ignored.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):  # before Conv2D: it subclasses it
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


def training_flops_per_image(generator: keras.Model, discriminator: keras.Model) -> int:
    """FLOPs of one training step divided by the batch size.

    With a backward pass costing twice its forward pass:
    D step = G forward + D forward/backward on a real and a fake image (1 G + 6 D);
    G step = G forward/backward + D forward/backward (3 G + 3 D).
    """
    g, d = forward_flops(generator), forward_flops(discriminator)
    return 4 * g + 9 * d
