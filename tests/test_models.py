import numpy as np
import pytest

from cgan_mnist.models import (LabelPlaneConv2D, ModelConfig, OverlapAddConv2DTranspose,
                               PixelShuffleConv2DTranspose, build_discriminator, build_models,
                               forward_flops)


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
    d = 2 * (14 * 14 * 32 * (16 * 1 + 10) + 7 * 7 * 64 * 16 * 32
             + features + 10 * features + features)
    assert forward_flops(generator) == g
    assert forward_flops(discriminator) == d


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("size, channels, kernel, stride",  # the default's, then odd shapes
                         [(28, 1, 4, 2), (9, 2, 3, 1), (7, 3, 4, 2)])
def test_label_plane_conv_equals_a_conv_over_concatenated_label_planes(
        soft, size, channels, kernel, stride):
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.standard_normal((6, size, size, channels)).astype(np.float32)
    labels = (rng.dirichlet(np.ones(10), 6) if soft
              else np.eye(10)[rng.integers(0, 10, 6)]).astype(np.float32)
    layer = LabelPlaneConv2D(8, kernel, strides=stride)
    got = np.asarray(layer([images, labels]))
    layer.bias.assign(rng.standard_normal(8).astype(np.float32))

    planes = np.broadcast_to(labels[:, None, None, :], (6, size, size, 10))
    plain = keras.layers.Conv2D(8, kernel, strides=stride, padding="same")
    plain.build((None, size, size, channels + 10))
    plain.set_weights(layer.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        x = tf.constant(images)
        tape.watch(x)
        got = layer([x, labels])
        want = plain(tf.concat([x, planes], axis=-1))
    out = -(-size // stride)
    assert got.shape == want.shape == (6, out, out, 8)
    np.testing.assert_allclose(got, want, atol=1e-5)
    for a, b in [(tape.gradient(got, x), tape.gradient(want, x)),
                 (tape.gradient(got, layer.kernel), tape.gradient(want, plain.kernel))]:
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layer_class", [PixelShuffleConv2DTranspose, OverlapAddConv2DTranspose])
@pytest.mark.parametrize("filters, use_bias", [(8, False), (1, True)])
def test_fast_transposed_convs_equal_keras_conv2d_transpose(layer_class, filters, use_bias):
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((3, 7, 7, 5)).astype(np.float32))
    ours = layer_class(filters, use_bias=use_bias)
    plain = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=use_bias)
    ours.build(x.shape)
    plain.build(x.shape)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in plain.get_weights()]
    ours.set_weights(weights)
    plain.set_weights(weights)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        got, want = ours(x), plain(x)
    assert got.shape == want.shape == (3, 14, 14, filters)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(got, x), tape.gradient(want, x), atol=1e-4)
    np.testing.assert_allclose(tape.gradient(got, ours.kernel), tape.gradient(want, plain.kernel),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_portable_generator_is_built_in_layers_with_the_same_function(tmp_path):
    from cgan_mnist.models import portable_generator

    cfg = ModelConfig("dcgan", latent_dim=16, num_classes=10, g_width=8, d_width=8)
    generator, _ = build_models(cfg)
    portable = portable_generator(generator, cfg)
    assert all(type(layer).__module__.startswith("keras.") for layer in portable.layers)
    noise, labels = _inputs(cfg)
    np.testing.assert_allclose(portable([noise, labels], training=False),
                               generator([noise, labels], training=False), atol=1e-5)
    # It loads with plain Keras in a process that never imported this package
    # (a fresh interpreter: this one has).
    portable.save(tmp_path / "g.keras")
    code = ("import keras, sys; m = keras.models.load_model(sys.argv[1]); "
            "assert 'cgan_mnist' not in sys.modules; print(m.output.shape)")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "g.keras")],
                         capture_output=True, text=True, check=True).stdout
    assert "28, 28, 1" in out


def test_discriminator_dropout_is_active_in_training_only():
    import keras

    for arch in ("mlp", "dcgan"):
        plain = build_models(ModelConfig(arch, latent_dim=16, g_width=8, d_width=8))[1]
        assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
        cfg = ModelConfig(arch, latent_dim=16, g_width=8, d_width=8, d_dropout=0.5)
        discriminator = build_models(cfg)[1]
        rates = [layer.rate for layer in discriminator.layers
                 if isinstance(layer, keras.layers.Dropout)]
        assert rates and set(rates) == {0.5}
        images = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
        labels = np.eye(10, dtype=np.float32)[:4]
        evaluate = [np.asarray(discriminator([images, labels], training=False)) for _ in range(2)]
        train = [np.asarray(discriminator([images, labels], training=True)) for _ in range(2)]
        np.testing.assert_array_equal(evaluate[0], evaluate[1])
        assert not np.allclose(train[0], train[1])


@pytest.mark.parametrize("masks", ["threefry", "keras"])
def test_threefry_dropout_is_dropout_and_keras_masks_outside_xla(masks):
    """At its rate, scaled by 1/(1 - rate), new masks each call, the same ones from the
    same seed state (exact resume); Keras's own masks bit for bit without XLA, and
    with XLA for masks="keras"; ThreeFry's under XLA."""
    import keras
    import tensorflow as tf

    from cgan_mnist.fast_layers import ThreefryDropout

    ours, theirs = ThreefryDropout(0.3, masks=masks, seed=7), keras.layers.Dropout(0.3, seed=7)
    x = tf.random.stateless_normal((64, 7, 7, 32), seed=[1, 2])
    for compiled in (True, False):
        start = ours.seed_generator.state.numpy()
        drop = {layer: tf.function(lambda x, layer=layer: layer(x, training=True),
                                   jit_compile=compiled) for layer in (ours, theirs)}
        first, second = drop[ours](x).numpy(), drop[ours](x).numpy()
        kept = first != 0
        assert abs(1 - kept.mean() - 0.3) < 0.01 and not np.array_equal(first, second)
        np.testing.assert_allclose(first[kept], x.numpy()[kept] / 0.7, rtol=1e-6)
        ours.seed_generator.state.assign(start)
        np.testing.assert_array_equal(drop[ours](x).numpy(), first)
        theirs.seed_generator.state.assign(start)
        same_as_keras = np.array_equal(drop[theirs](x).numpy(), first)
        assert same_as_keras == (masks == "keras" or not compiled)
    np.testing.assert_array_equal(ours(x, training=False).numpy(), x.numpy())


def test_a_runs_options_give_its_model_config():
    """cgan-train and bench_speed build their networks from this one mapping."""
    from cgan_mnist.config import validate_train_options
    from cgan_mnist.training import model_config

    cfg = validate_train_options({"arch": "mlp", "latent_dim": 12, "g_width": 20, "d_width": 24})
    assert model_config(cfg, 7) == ModelConfig("mlp", 12, 7, 20, 24, d_dropout=0.3)
    keras_masks = validate_train_options({"arch": "mlp", "dropout_masks": "keras"})
    assert model_config(keras_masks, 10).dropout_masks == "keras"


def test_a_runs_options_give_its_gan_options():
    """The algorithm's options reach gan.CGAN by one mapping, for cgan-train and bench_speed."""
    import inspect

    from cgan_mnist.config import validate_train_options
    from cgan_mnist.gan import CGAN
    from cgan_mnist.training import gan_options

    cfg = validate_train_options({"lr": 1e-4, "d_lr": 3e-4, "beta1": 0.4, "ema": 0.99,
                                  "label_smoothing": 0.2, "reuse_fakes": True, "r1": 0.5,
                                  "r1_interval": 4,
                                  "diffaugment": "translation, cutout", "lr_decay": 0.25,
                                  "mode_seeking": 2.0, "epochs": 7})
    options = gan_options(cfg, steps_per_epoch=30)
    assert options == {"lr": 1e-4, "d_lr": 3e-4, "beta1": 0.4, "ema": 0.99,
                       "label_smoothing": 0.2, "reuse_fakes": True, "loss": "bce", "r1": 0.5,
                       "r1_interval": 4, "diffaugment": "translation,cutout", "lr_decay": 0.25,
                       "mode_seeking": 2.0, "total_steps": 210}
    assert set(options) <= set(inspect.signature(CGAN).parameters)
    assert gan_options(validate_train_options({"loss": "hinge"}), 1)["loss"] == "hinge"
    # Resumed with more epochs, a decaying run's schedule is recomputed from the new total.
    resumed = validate_train_options({"resume": True, "epochs": 10}, cfg.to_dict())
    assert gan_options(resumed, steps_per_epoch=30)["total_steps"] == 300


def test_spectral_norm_is_a_model_option():
    from cgan_mnist.config import validate_train_options
    from cgan_mnist.training import model_config

    cfg = validate_train_options({"spectral_norm": True})
    assert model_config(cfg, 10).spectral_norm is True
    assert model_config(validate_train_options({}), 10).spectral_norm is False


def _top_singular_value(kernel) -> float:
    return float(np.linalg.svd(np.reshape(kernel, (-1, kernel.shape[-1])), compute_uv=False)[0])


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_spectral_norm_normalizes_every_kernel_of_the_discriminator(arch):
    import keras

    keras.utils.set_random_seed(0)
    plain = build_models(ModelConfig(arch, latent_dim=8, g_width=8, d_width=8))[1]
    cfg = ModelConfig(arch, latent_dim=8, g_width=8, d_width=8, spectral_norm=True)
    discriminator = build_models(cfg)[1]
    kernels = [v for v in discriminator.trainable_variables if v.path.endswith("kernel")]
    assert len(kernels) == len([v for v in plain.trainable_variables
                                if v.path.endswith("kernel")])
    assert len([v for v in discriminator.variables if "vector_u" in v.path]) == len(kernels)
    assert forward_flops(discriminator) == forward_flops(plain)
    assert max(_top_singular_value(k.numpy()) for k in kernels) > 1.5, "the check needs it"
    images = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[:4]
    before = np.asarray(discriminator([images, labels], training=False))
    assert not any(isinstance(layer, keras.layers.Wrapper) for layer in plain.layers)
    for _ in range(100):  # power iterations: one per training call
        discriminator([images, labels], training=True)
    for kernel in kernels:
        assert _top_singular_value(kernel.numpy()) == pytest.approx(1.0, rel=0.05), kernel.path
    assert not np.allclose(before, discriminator([images, labels], training=False))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_spectral_norm_under_mixed_precision_keeps_float32_kernels(policy):
    """The normalized kernels are written back in float32, not rounded to 16 bits
    (keras.layers.SpectralNormalization in a 16-bit policy would round them)."""
    import tensorflow as tf

    cfg = ModelConfig("dcgan", latent_dim=8, g_width=8, d_width=8, spectral_norm=True)
    discriminator = build_models(cfg, policy)[1]
    assert discriminator.get_layer("down7_sn").layer.compute_dtype == policy.split("_")[1]
    assert discriminator.output.dtype == "float32"
    if policy == "mixed_float16":
        return  # float16 convolutions need a GPU; built is what can be checked here
    images = np.zeros((2, 28, 28, 1), np.float32)
    discriminator([images, np.eye(10, dtype=np.float32)[:2]], training=True)
    for kernel in (v for v in discriminator.trainable_variables if v.path.endswith("kernel")):
        value = kernel.numpy()
        assert value.dtype == np.float32
        rounded = tf.cast(tf.cast(value, tf.bfloat16), tf.float32).numpy()
        assert not np.array_equal(value, rounded), kernel.path


def test_r1_is_counted_in_the_training_flops():
    from cgan_mnist.models import training_flops_per_image

    generator, discriminator = build_models(ModelConfig("dcgan", 16, 10, 8, 8))
    g, d = forward_flops(generator), forward_flops(discriminator)
    assert training_flops_per_image(generator, discriminator) == 4 * g + 9 * d
    assert training_flops_per_image(generator, discriminator, r1=True) == 4 * g + 15 * d
    lazy = training_flops_per_image(generator, discriminator, r1=1 / 4)  # --r1-interval 4
    assert lazy == 4 * g + round(10.5 * d)


def test_minibatch_stddev_adds_the_batch_spread_as_one_channel():
    """Karras et al. (2018): the per-feature standard deviation over the batch, averaged,
    as one more channel for every sample; a batch of copies gets (almost) 0."""
    from cgan_mnist.models import MinibatchStddev

    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 7, 7, 5)).astype("float32") * 2.0
    out = MinibatchStddev()(x).numpy()
    assert out.shape == (6, 7, 7, 6)
    np.testing.assert_array_equal(out[..., :5], x)
    want = np.mean(np.sqrt(x.var(axis=0) + 1e-8))
    np.testing.assert_allclose(out[..., 5], want, rtol=1e-5)
    copies = MinibatchStddev()(np.repeat(x[:1], 6, axis=0)).numpy()[..., 5]
    assert np.all(copies < 1e-3) and want > 1.0
    flat = MinibatchStddev()(x.reshape(6, -1)).numpy()
    assert flat.shape == (6, 246) and np.allclose(flat[:, -1], want, rtol=1e-5)


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_with_minibatch_stddev_d_judges_a_sample_by_its_batch(arch):
    """D's logit for one image changes with the rest of the batch (and only then)."""
    cfg = ModelConfig(arch, latent_dim=8, g_width=8, d_width=8, minibatch_stddev=True)
    discriminator = build_discriminator(cfg)
    assert discriminator.get_layer("minibatch_stddev") is not None
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(4, 28, 28, 1)).astype("float32")
    labels = np.eye(10, dtype="float32")[[1, 2, 3, 4]]
    varied = discriminator([images, labels], training=False).numpy()[0]
    same = np.repeat(images[:1], 4, axis=0)
    narrow = discriminator([same, labels[[0, 0, 0, 0]]], training=False).numpy()[0]
    assert not np.allclose(varied, narrow)
    plain = build_discriminator(ModelConfig(arch, latent_dim=8, g_width=8, d_width=8))
    assert all(layer.name != "minibatch_stddev" for layer in plain.layers)
