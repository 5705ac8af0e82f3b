"""Resolved options of a training run, and their validation.

Pure Python: no TensorFlow, no file access beyond what the caller passes in,
so argument errors are reported instantly and the checks are easy to test.
"""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import asdict, dataclass, fields

from .errors import UsageError

ARCHS = ("mlp", "dcgan")  # mirrors models.ARCHS, kept here so the CLI need not import Keras
DATASETS = ("mnist", "fashion_mnist")  # mirrors data.DATASETS; or the path of a .npz
STRATEGIES = ("default", "mirrored", "multi-worker")
DEFAULT_WIDTHS = {"dcgan": (64, 32), "mlp": (256, 256)}  # (G, D); BENCHMARKS.md: why
DEFAULT_D_DROPOUT = {"dcgan": 0.0, "mlp": 0.3}
DEFAULT_R1 = {"dcgan": 0.1, "mlp": 0.0}  # R1's gamma; BENCHMARKS.md, "R1 at 40 epochs": why
LOSSES = ("bce", "hinge")  # mirrors gan.LOSSES
AUGMENTATIONS = ("translation", "cutout")  # mirrors augment.POLICIES
DROPOUT_MASKS = ("threefry", "keras")  # mirrors fast_layers.DROPOUT_MASKS

# Options that define the networks and the data stream: a resumed run must use
# the same values, or its checkpoint would not fit / would not continue exactly.
FIXED_ON_RESUME = ("dataset", "arch", "latent_dim", "g_width", "d_width", "d_dropout",
                   "batch_size", "limit", "seed", "lr", "d_lr", "beta1", "ema",
                   "label_smoothing", "reuse_fakes", "mixed_precision", "loss", "r1",
                   "r1_interval", "diffaugment", "lr_decay", "spectral_norm", "balanced_batches", "dropout_masks",
                   "minibatch_stddev", "mode_seeking")
# What a run's config.json meant by an option it lacks (it predates the option).
BEFORE_OPTION = {"d_lr": None, "ema": 0.0, "label_smoothing": 0.0, "reuse_fakes": False,
                 "loss": "bce", "r1": 0.0, "r1_interval": 1, "diffaugment": "", "lr_decay": 0.0,
                 "spectral_norm": False, "balanced_batches": False, "eval_per_class": 100,
                 "dropout_masks": "keras", "minibatch_stddev": False, "mode_seeking": 0.0}
D_DROPOUT_BEFORE_OPTION = {"dcgan": 0.0, "mlp": 0.3}  # per architecture


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "mnist"
    arch: str = "dcgan"
    epochs: int = 40
    batch_size: int = 64
    latent_dim: int = 100
    g_width: int | None = None   # None: the architecture's default
    d_width: int | None = None
    d_dropout: float | None = None  # dropout rate after each of D's hidden layers; None: arch default
    lr: float = 2e-4
    d_lr: float | None = None    # None: the same as lr
    beta1: float = 0.5
    ema: float = 0.999           # per-step decay of G's moving average (sampled, saved); 0: none
    label_smoothing: float = 0.0  # D's target for real images is 1 - this (one-sided)
    reuse_fakes: bool = True     # G's update reuses the D update's fakes (one G pass per step)
    loss: str = "bce"            # "bce" (non-saturating) or "hinge"
    r1: float | None = None      # weight gamma of the R1 penalty on real images; 0: none;
                                 # None: the architecture's default
    r1_interval: int = 1         # R1 every this many D updates, weighted as many times (lazy)
    diffaugment: str = ""        # DiffAugment policy, e.g. "translation,cutout"; "": none
    lr_decay: float = 0.0        # both rates fall linearly to 0 over this last fraction of steps
    spectral_norm: bool = False  # spectral normalization of D's kernels
    balanced_batches: bool = False  # every batch holds each class equally often (+-1)
    dropout_masks: str = "threefry"  # D's dropout masks under XLA; "keras": Keras's own
    minibatch_stddev: bool = False  # D's features gain the batch's spread (Karras et al. 2018)
    mode_seeking: float = 0.0    # weight of G's mode-seeking term (Mao et al. 2019); 0: none
    seed: int | None = None      # None: drawn at random, then recorded
    outdir: str = "."
    data_dir: str | None = None
    limit: int | None = None
    sample_interval: int = 1
    checkpoint_interval: int = 5
    eval_interval: int | None = None  # None: no quality checks during training
    eval_per_class: int = 100    # samples per class of each quick check (cgan-eval: 1,000)
    xla: bool = True
    mixed_precision: bool = False
    strategy: str = "default"
    resume: bool = False
    overwrite: bool = False
    tensorboard: bool = False    # event files under <outdir>/logs (cgan_mnist.tensorboard)

    def to_dict(self) -> dict:
        return asdict(self)


OPTION_NAMES = tuple(f.name for f in fields(TrainConfig))
_STR = ("dataset", "arch", "outdir", "strategy", "data_dir", "loss", "diffaugment",
        "dropout_masks")
_INT = ("epochs", "batch_size", "latent_dim", "g_width", "d_width", "limit", "sample_interval",
        "checkpoint_interval", "eval_interval", "eval_per_class", "seed", "r1_interval")
_FLOAT = ("d_dropout", "lr", "d_lr", "beta1", "ema", "label_smoothing", "r1", "lr_decay",
          "mode_seeking")
_BOOL = ("xla", "mixed_precision", "resume", "overwrite", "tensorboard", "reuse_fakes",
         "spectral_norm", "balanced_batches", "minibatch_stddev")
# Sizes past these are typos, not experiments; the memory estimate below bounds their products.
UPPER_LIMITS = {"epochs": 100_000, "batch_size": 65_536, "latent_dim": 4096, "g_width": 4096,
                "d_width": 4096, "lr": 1.0, "d_lr": 1.0, "r1": 1000.0, "mode_seeking": 100.0,
                "eval_per_class": 10_000, "r1_interval": 10_000}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_types(options: dict) -> None:
    """Each option of the right type, every number finite: a config.json edited by hand,
    or a caller of the Python API, gets the same one-line error as the command line."""
    for name, value in options.items():
        if value is None:
            continue
        if name in _BOOL:
            ok, kind = isinstance(value, bool), "true or false"
        elif name in _INT:
            ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
        elif name in _FLOAT:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok, kind = ok and math.isfinite(value), "a finite number"
        else:
            ok, kind = isinstance(value, str), "a string"
        if not ok:
            raise UsageError(f"{_flag(name)} must be {kind}, got {value!r}")


def _check_range(options: dict, name: str, low=None, high=None, *, positive=False):
    value = options.get(name)
    if value is None:
        return
    high = UPPER_LIMITS.get(name) if high is None else high
    if positive and not value > 0:
        raise UsageError(f"{_flag(name)} must be positive, got {value}")
    if low is not None and value < low:
        raise UsageError(f"{_flag(name)} must be at least {low}, got {value}")
    if high is not None and value > high:
        raise UsageError(f"{_flag(name)} must be at most {high}, got {value}")


def _check_fraction(options: dict, name: str, meaning: str):
    """0 <= value < 1."""
    _check_range(options, name, 0.0)
    value = options.get(name)
    if value is not None and value >= 1.0:
        raise UsageError(f"{_flag(name)} must be below 1 ({meaning}), got {value}")


def validate_train_options(given: dict, stored: dict | None = None) -> TrainConfig:
    """Turn the options a user gave into a complete, checked ``TrainConfig``.

    ``given`` holds only the options present on the command line (others
    absent or None). ``stored`` is the config.json of the run being resumed:
    options not given are taken from it, and options that must not change on
    resume are refused when they differ. Raises UsageError naming the flag.
    """
    given = {k: v for k, v in given.items() if v is not None and k in OPTION_NAMES}
    _check_types(given)
    lazy_asked = given.get("r1_interval", 1) > 1 and not given.get("resume")  # not the stored
    if "diffaugment" in given:
        given["diffaugment"] = _policy(given["diffaugment"])
    if given.get("resume") and given.get("overwrite"):
        raise UsageError("--resume and --overwrite contradict each other; give one of them")
    if given.get("resume"):
        given = _resumed(given, stored)

    for name, low in (("epochs", 1), ("batch_size", 1), ("latent_dim", 1), ("g_width", 1),
                      ("d_width", 1), ("limit", 1), ("sample_interval", 1),
                      ("checkpoint_interval", 1), ("eval_interval", 0), ("seed", 0),
                      ("eval_per_class", 10), ("r1_interval", 1)):
        _check_range(given, name, low)
    if given.get("eval_interval") == 0:  # 0 switches the checks off, e.g. on --resume
        given["eval_interval"] = None
    _check_range(given, "lr", positive=True)
    _check_range(given, "d_lr", positive=True)
    _check_fraction(given, "ema", "a decay per step, e.g. 0.999")
    _check_fraction(given, "d_dropout", "a rate, e.g. 0.3")
    _check_fraction(given, "label_smoothing", "D's target for real images is 1 minus it, e.g. 0.1")
    _check_fraction(given, "lr_decay", "the last fraction of the steps, e.g. 0.2")
    _check_range(given, "r1", 0.0)
    _check_range(given, "mode_seeking", 0.0)
    _check_range(given, "beta1", 0.0, 0.999999)
    _check_loss(given)
    _check_range(given, "seed", high=2**31 - 1)
    _check_choices(given)
    limit, batch = given.get("limit"), given.get("batch_size", TrainConfig.batch_size)
    if limit is not None and limit < batch:
        raise UsageError(f"--limit {limit} is smaller than --batch-size {batch}: "
                         "not one full batch; raise --limit or lower --batch-size")

    arch = given.get("arch", TrainConfig.arch)
    g_default, d_default = DEFAULT_WIDTHS[arch]
    given.setdefault("g_width", g_default)
    given.setdefault("d_width", d_default)
    if given.get("d_dropout") is None:
        given["d_dropout"] = DEFAULT_D_DROPOUT[arch]
    given.setdefault("r1", DEFAULT_R1[arch])
    if lazy_asked and not given["r1"]:
        raise UsageError("--r1-interval applies the R1 penalty lazily, and there is none: "
                         "give --r1 GAMMA too, or drop --r1-interval")
    if given.get("seed") is None:
        given["seed"] = secrets.randbelow(2**31)
    cfg = TrainConfig(**given)
    check_memory(cfg)
    return cfg


# The options a start-of-run line names when they differ from their defaults.
_SHOWN_WHEN_CHANGED = ("latent_dim", "g_width", "d_width", "d_dropout", "dropout_masks", "beta1",
                       "label_smoothing", "reuse_fakes", "loss", "r1", "r1_interval",
                       "diffaugment", "lr_decay", "spectral_norm", "balanced_batches",
                       "minibatch_stddev", "mode_seeking", "mixed_precision", "xla", "strategy")


def changed_options(cfg: TrainConfig) -> list[str]:
    """The flags of ``cfg`` that differ from a new run's defaults for its architecture,
    e.g. ["--r1 1.0", "--no-reuse-fakes"] (for the log; learning rates are shown apart)."""
    defaults = validate_train_options({"arch": cfg.arch, "seed": 0})
    shown = []
    for name in _SHOWN_WHEN_CHANGED:
        value = getattr(cfg, name)
        if value == getattr(defaults, name):
            continue
        if isinstance(value, bool):
            shown.append(_flag(name) if value else "--no-" + _flag(name)[2:])
        else:
            shown.append(f"{_flag(name)} {value:g}" if isinstance(value, float)
                         else f"{_flag(name)} {value}")
    return shown


def _check_choices(given: dict) -> None:
    """--arch, --strategy, --dropout-masks and --dataset name known choices."""
    for name, choices in (("arch", ARCHS), ("strategy", STRATEGIES),
                          ("dropout_masks", DROPOUT_MASKS)):
        if name in given and given[name] not in choices:
            raise UsageError(f"unknown {_flag(name)} {given[name]!r}; "
                             f"choose one of {', '.join(choices)}")
    dataset = given.get("dataset", "mnist")
    if dataset not in DATASETS and not dataset.lower().endswith(".npz"):
        raise UsageError(f"unknown --dataset {dataset!r}; choose one of {', '.join(DATASETS)} "
                         "or the path of a .npz file")


def _check_loss(given: dict) -> None:
    """--loss names a known loss; the hinge loss has no targets to smooth."""
    loss = given.get("loss", TrainConfig.loss)
    if loss not in LOSSES:
        raise UsageError(f"unknown --loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if loss == "hinge" and given.get("label_smoothing"):
        raise UsageError("--label-smoothing smooths the targets of the bce loss; --loss hinge "
                         "has none: drop one of them")


def _policy(text: str) -> str:
    """A --diffaugment policy checked and written canonically: "translation, cutout" ->
    "translation,cutout" (the order is kept: it is the order of application)."""
    names = [name.strip() for name in text.split(",")] if text.strip() else []
    if any(name not in AUGMENTATIONS for name in names) or len(set(names)) < len(names):
        raise UsageError(f"--diffaugment {text!r}: give distinct names among "
                         f"{', '.join(AUGMENTATIONS)}, comma-separated (e.g. translation,cutout)")
    return ",".join(names)


def physical_memory() -> int | None:
    """Bytes of RAM of this machine; None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def estimated_memory(cfg: TrainConfig) -> int:
    """A generous estimate of the bytes a run's networks and one step need.

    Parameters (times 6: weights, two Adam moments, gradients, the average,
    slack) and each image's activations (times 8: kept for the backward pass,
    their gradients, real and fake through D), all float32. MNIST itself
    (about 0.2 GB as float32) is not counted.
    """
    g, d, z, k = cfg.g_width or 1, cfg.d_width or 1, cfg.latent_dim, 100  # k: classes, at most
    if cfg.arch == "mlp":
        params = (z + k) * g + 2 * g * g + 8 * g * g + 4 * g * 784 \
            + (784 + k) * 4 * d + 8 * d * d + d * (1 + k)
        activations = 7 * g + 784 + 7 * d
    else:
        params = (z + k) * 98 * g + 32 * g * g + 16 * g + 16 * (1 + k) * d + 32 * d * d \
            + 49 * 2 * d * (1 + k)
        activations = 98 * g + 196 * g + 784 + 196 * d + 98 * d
    return 4 * (6 * params + 8 * activations * cfg.batch_size)


def check_memory(cfg: TrainConfig, available: int | None = None) -> None:
    """Refuse sizes whose product needs more memory than the machine has, before any
    allocation (TensorFlow on a CPU would otherwise be killed by the kernel)."""
    available = physical_memory() if available is None else available
    need = estimated_memory(cfg)
    if available and need > available:
        raise UsageError(
            f"--batch-size {cfg.batch_size}, --latent-dim {cfg.latent_dim}, --g-width "
            f"{cfg.g_width} and --d-width {cfg.d_width} would need about {need / 2**30:.0f} GiB "
            f"of memory; this machine has {available / 2**30:.0f} GiB: lower them")


def _resumed(given: dict, stored: dict | None) -> dict:
    """The options of a resumed run: the stored ones, overridden by those given that may change."""
    if stored is None:
        raise UsageError("--resume: no run to resume in the output folder "
                         "(no config.json); start a new run without --resume")
    stored = {**BEFORE_OPTION,
              "d_dropout": D_DROPOUT_BEFORE_OPTION.get(stored.get("arch"), 0.0), **stored}
    base = {k: stored[k] for k in OPTION_NAMES if k in stored}
    try:
        _check_types(base)
    except UsageError as err:
        raise UsageError(f"--resume: the run's config.json is damaged: {err}; restore it "
                         "from a backup") from None
    _refuse_changes(given, base)
    return {**base, "resume": True, "overwrite": False, **given}


def _refuse_changes(given: dict, stored: dict) -> None:
    for name in FIXED_ON_RESUME:
        if name in given and name in stored and given[name] != stored[name]:
            raise UsageError(
                f"--resume: {_flag(name)} {given[name]} differs from the run's "
                f"{stored[name]}; drop {_flag(name)} or start a new run in another --outdir")
