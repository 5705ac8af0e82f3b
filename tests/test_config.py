import pytest

from cgan_mnist.config import TrainConfig, validate_train_options
from cgan_mnist.errors import UsageError


def test_defaults_are_resolved_and_seed_recorded():
    cfg = validate_train_options({})
    assert cfg.arch == "dcgan" and cfg.epochs == 40 and cfg.batch_size == 64
    assert (cfg.g_width, cfg.d_width) == (64, 32)
    assert isinstance(cfg.seed, int) and 0 <= cfg.seed < 2**31
    assert validate_train_options({"arch": "mlp"}).g_width == 256
    assert cfg.ema == 0.999 and validate_train_options({"arch": "mlp"}).ema == 0.999
    assert validate_train_options({"ema": 0}).ema == 0.0


@pytest.mark.parametrize("options, flag", [
    ({"epochs": 0}, "--epochs"),
    ({"batch_size": -1}, "--batch-size"),
    ({"latent_dim": 0}, "--latent-dim"),
    ({"lr": 0.0}, "--lr"),
    ({"lr": -1e-3}, "--lr"),
    ({"beta1": 1.0}, "--beta1"),
    ({"d_lr": 0.0}, "--d-lr"),
    ({"ema": 1.0}, "--ema"),
    ({"ema": -0.5}, "--ema"),
    ({"d_dropout": -0.1}, "--d-dropout"),
    ({"d_dropout": 1.0}, "--d-dropout"),
    ({"label_smoothing": 1.0}, "--label-smoothing"),
    ({"label_smoothing": -0.1}, "--label-smoothing"),
    ({"seed": -5}, "--seed"),
    ({"sample_interval": 0}, "--sample-interval"),
    ({"checkpoint_interval": 0}, "--checkpoint-interval"),
    ({"eval_interval": -1}, "--eval-interval"),
    ({"eval_per_class": 9}, "--eval-per-class"),
    ({"eval_per_class": 10**6}, "--eval-per-class"),
    ({"arch": "resnet"}, "--arch"),
    ({"dataset": "cifar10"}, "--dataset"),
    ({"limit": 10, "batch_size": 64}, "--limit"),
    ({"resume": True, "overwrite": True}, "--resume"),
    ({"loss": "l2"}, "--loss"),
    ({"loss": "hinge", "label_smoothing": 0.1}, "--label-smoothing"),
    ({"r1": -1.0}, "--r1"),
    ({"r1": float("nan")}, "--r1"),
    ({"r1": 1e6}, "--r1"),
    ({"r1": "1"}, "--r1"),
    ({"r1": 1.0, "r1_interval": 0}, "--r1-interval"),
    ({"r1": 1.0, "r1_interval": 2.0}, "--r1-interval"),
    ({"r1": 1.0, "r1_interval": 10**5}, "--r1-interval"),
    ({"arch": "mlp", "r1_interval": 16}, "--r1-interval applies the R1 penalty lazily, and "
     "there is none"),
    ({"r1": 0.0, "r1_interval": 4}, "--r1-interval applies the R1 penalty lazily"),
    ({"lr_decay": 1.0}, "--lr-decay"),
    ({"lr_decay": -0.1}, "--lr-decay"),
    ({"diffaugment": "flip"}, "--diffaugment"),
    ({"diffaugment": "cutout,cutout"}, "--diffaugment"),
    ({"diffaugment": 3}, "--diffaugment"),
    ({"spectral_norm": 1}, "--spectral-norm"),
    ({"balanced_batches": "yes"}, "--balanced-batches"),
    ({"minibatch_stddev": "on"}, "--minibatch-stddev"),
    ({"mode_seeking": -1.0}, "--mode-seeking"),
    ({"mode_seeking": float("inf")}, "--mode-seeking"),
    ({"mode_seeking": 1e4}, "--mode-seeking"),
    ({"mode_seeking": "1"}, "--mode-seeking"),
])
def test_bad_options_name_the_flag(options, flag):
    with pytest.raises(UsageError, match=flag):
        validate_train_options(options)


def test_resume_takes_stored_options_and_refuses_changes():
    stored = TrainConfig(arch="mlp", latent_dim=64, g_width=128, d_width=128, seed=9,
                         epochs=10).to_dict()
    cfg = validate_train_options({"resume": True, "epochs": 20}, stored)
    assert (cfg.arch, cfg.latent_dim, cfg.seed, cfg.epochs) == ("mlp", 64, 9, 20)
    assert cfg.resume and not cfg.overwrite
    with pytest.raises(UsageError, match="--latent-dim 100 differs"):
        validate_train_options({"resume": True, "latent_dim": 100}, stored)
    with pytest.raises(UsageError, match="no run to resume"):
        validate_train_options({"resume": True}, None)


def test_resuming_a_run_from_before_an_option_keeps_its_old_meaning():
    """A config.json without ``ema``/``d_lr`` was trained without an average and
    with one learning rate: resuming keeps that, and refuses to switch it on."""
    stored = TrainConfig(arch="dcgan", seed=4, epochs=5).to_dict()
    del stored["ema"], stored["d_lr"], stored["label_smoothing"], stored["reuse_fakes"]
    for name in ("loss", "r1", "r1_interval", "diffaugment", "lr_decay", "spectral_norm",
                 "balanced_batches", "minibatch_stddev", "mode_seeking"):
        del stored[name]
    cfg = validate_train_options({"resume": True, "epochs": 10}, stored)
    assert cfg.ema == 0.0 and cfg.d_lr is None and cfg.label_smoothing == 0.0
    assert cfg.reuse_fakes is False
    assert (cfg.loss, cfg.r1, cfg.diffaugment, cfg.lr_decay) == ("bce", 0.0, "", 0.0)
    assert cfg.spectral_norm is False and cfg.balanced_batches is False
    for flag, value in (("--r1 1.0", {"r1": 1.0}), ("--loss hinge", {"loss": "hinge"}),
                        ("--diffaugment cutout", {"diffaugment": "cutout"}),
                        ("--lr-decay 0.2", {"lr_decay": 0.2}),
                        ("--spectral-norm True", {"spectral_norm": True}),
                        ("--balanced-batches True", {"balanced_batches": True}),
                        ("--minibatch-stddev True", {"minibatch_stddev": True}),
                        ("--mode-seeking 1.0", {"mode_seeking": 1.0}),
                        ("--r1-interval 4", {"r1_interval": 4})):
        with pytest.raises(UsageError, match=f"{flag} differs"):
            validate_train_options({"resume": True, **value}, stored)
    with pytest.raises(UsageError, match="--label-smoothing 0.1 differs"):
        validate_train_options({"resume": True, "label_smoothing": 0.1}, stored)
    with pytest.raises(UsageError, match="--ema 0.999 differs"):
        validate_train_options({"resume": True, "ema": 0.999}, stored)
    plain = TrainConfig(seed=4, ema=0.0).to_dict()
    assert validate_train_options({"resume": True}, plain).ema == 0.0


def test_eval_interval_zero_switches_quality_checks_off_on_resume():
    stored = TrainConfig(seed=4, epochs=5, eval_interval=2).to_dict()
    assert validate_train_options({"resume": True}, stored).eval_interval == 2
    assert validate_train_options({"resume": True, "eval_interval": 0}, stored).eval_interval is None
    assert validate_train_options({"eval_interval": 0}).eval_interval is None


def test_discriminator_dropout_defaults_per_architecture():
    assert validate_train_options({"arch": "mlp"}).d_dropout == 0.3
    assert validate_train_options({"arch": "dcgan"}).d_dropout == 0.0
    assert validate_train_options({"arch": "mlp", "d_dropout": 0.0}).d_dropout == 0.0


def test_resuming_a_run_from_before_d_dropout_keeps_the_dropout_it_had():
    """Before the option, the mlp's D had dropout 0.3 and the dcgan's none."""
    for arch, before in (("mlp", 0.3), ("dcgan", 0.0)):
        stored = TrainConfig(arch=arch, seed=4, epochs=5).to_dict()
        del stored["d_dropout"]
        assert validate_train_options({"resume": True}, stored).d_dropout == before
        with pytest.raises(UsageError, match="--d-dropout 0.25 differs"):
            validate_train_options({"resume": True, "d_dropout": 0.25}, stored)


def test_new_runs_draw_threefry_dropout_masks_and_old_runs_keep_kerass():
    """Runs from before the choice drew Keras's masks; resumed, they still do."""
    assert validate_train_options({"arch": "mlp"}).dropout_masks == "threefry"
    stored = TrainConfig(arch="mlp", seed=4, epochs=5).to_dict()
    del stored["dropout_masks"]
    assert validate_train_options({"resume": True}, stored).dropout_masks == "keras"
    with pytest.raises(UsageError, match="--dropout-masks threefry differs"):
        validate_train_options({"resume": True, "dropout_masks": "threefry"}, stored)
    with pytest.raises(UsageError, match="unknown --dropout-masks 'philox'; choose one of "
                                         "threefry, keras"):
        validate_train_options({"dropout_masks": "philox"})


def test_the_start_of_run_line_names_the_options_that_differ_from_the_defaults():
    from cgan_mnist.config import changed_options

    assert changed_options(validate_train_options({"arch": "mlp", "seed": 3})) == []
    cfg = validate_train_options({"r1": 1.0, "loss": "hinge", "spectral_norm": True,
                                  "d_width": 64, "dropout_masks": "keras", "xla": False})
    assert changed_options(cfg) == ["--d-width 64", "--dropout-masks keras", "--loss hinge",
                                    "--r1 1", "--spectral-norm", "--no-xla"]
    # The mlp's width and dropout are its defaults; the dcgan's would show.
    assert changed_options(validate_train_options({"arch": "dcgan", "d_dropout": 0.3})) == [
        "--d-dropout 0.3"]


def test_sizes_whose_product_cannot_fit_are_refused_before_any_allocation():
    """Each size within its range, the product not: one line, before TensorFlow starts."""
    from cgan_mnist.arguments import _check_generate_memory
    from cgan_mnist.config import check_memory, estimated_memory

    gib = 2**30
    huge = TrainConfig(batch_size=60_000, g_width=2048, d_width=32)
    assert estimated_memory(TrainConfig(g_width=64, d_width=32)) < gib  # the default: small
    with pytest.raises(UsageError, match=r"would need about \d+ GiB of memory; this machine "
                                         r"has 24 GiB: lower them"):
        check_memory(huge, available=24 * gib)
    check_memory(huge, available=10**6 * gib)  # a big enough machine
    _check_generate_memory(10, 6000, None, available=24 * gib)  # 60,000 digits: fine
    with pytest.raises(UsageError, match="100,000 samples in a grid enlarged 16 times"):
        _check_generate_memory(10, 10_000, 16, available=24 * gib)


def test_the_quality_levers_are_off_by_default_but_the_dcgans_r1_and_checked():
    cfg = validate_train_options({})
    assert (cfg.loss, cfg.r1, cfg.r1_interval) == ("bce", 0.1, 1)  # BENCHMARKS.md: why
    assert (cfg.diffaugment, cfg.lr_decay) == ("", 0.0)
    assert cfg.spectral_norm is False and cfg.balanced_batches is False
    assert cfg.minibatch_stddev is False and cfg.mode_seeking == 0.0
    mlp = validate_train_options({"arch": "mlp"})
    assert (mlp.r1, mlp.r1_interval) == (0.0, 1)
    assert validate_train_options({"r1": 0.0}).r1 == 0.0  # the dcgan's R1 switched off
    assert validate_train_options({"r1": 1.0, "r1_interval": 16}).r1_interval == 16
    resumed = validate_train_options({"resume": True, "epochs": 3}, mlp.to_dict())
    assert (resumed.r1, resumed.r1_interval) == (0.0, 1)
    assert validate_train_options({"diffaugment": " translation , cutout"}).diffaugment == \
        "translation,cutout"
    assert validate_train_options({"diffaugment": "cutout,translation"}).diffaugment == \
        "cutout,translation"  # the order of application is kept
    hinge = validate_train_options({"loss": "hinge", "label_smoothing": 0.0, "r1": 10})
    assert (hinge.loss, hinge.r1) == ("hinge", 10)
    with pytest.raises(UsageError, match="--loss hinge has none: drop one of them"):
        validate_train_options({"loss": "hinge", "label_smoothing": 0.1})
    stored = validate_train_options({"seed": 1, "diffaugment": "translation,cutout"}).to_dict()
    resumed = validate_train_options({"resume": True, "diffaugment": "translation, cutout"},
                                     stored)
    assert resumed.diffaugment == "translation,cutout"
