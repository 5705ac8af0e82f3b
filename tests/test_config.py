import pytest

from cgan_mnist.config import TrainConfig, validate_train_options
from cgan_mnist.errors import UsageError


def test_defaults_are_resolved_and_seed_recorded():
    cfg = validate_train_options({})
    assert cfg.arch == "dcgan" and cfg.epochs == 40 and cfg.batch_size == 64
    assert (cfg.g_width, cfg.d_width) == (32, 32)
    assert isinstance(cfg.seed, int) and 0 <= cfg.seed < 2**31
    assert validate_train_options({"arch": "mlp"}).g_width == 256


@pytest.mark.parametrize("options, flag", [
    ({"epochs": 0}, "--epochs"),
    ({"batch_size": -1}, "--batch-size"),
    ({"latent_dim": 0}, "--latent-dim"),
    ({"lr": 0.0}, "--lr"),
    ({"lr": -1e-3}, "--lr"),
    ({"beta1": 1.0}, "--beta1"),
    ({"seed": -5}, "--seed"),
    ({"sample_interval": 0}, "--sample-interval"),
    ({"checkpoint_interval": 0}, "--checkpoint-interval"),
    ({"eval_interval": 0}, "--eval-interval"),
    ({"arch": "resnet"}, "--arch"),
    ({"dataset": "cifar10"}, "--dataset"),
    ({"limit": 10, "batch_size": 64}, "--limit"),
    ({"resume": True, "overwrite": True}, "--resume"),
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
