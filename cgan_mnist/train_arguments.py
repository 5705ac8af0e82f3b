"""cgan-train's options: what they are called on the command line and what --help says.

The parser itself (with one-line errors) is ``arguments.train_parser``; the
options are defined here so that each module stays short. Validation is in
``config.validate_train_options``.
"""

from __future__ import annotations

import argparse

from .config import (ARCHS, AUGMENTATIONS, DATASETS, DEFAULT_R1, LOSSES, STRATEGIES,
                     TrainConfig)


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None


def add_model_options(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """cgan-train's options about the data, the networks and the algorithm."""
    add = p.add_argument
    add("--dataset", help=f"dataset: {', '.join(DATASETS)}, or the path of your own .npz "
                          f"(x_train uint8 (N, 28, 28), y_train ints) (default {d.dataset})")
    add("--arch", help=f"architecture: {', '.join(ARCHS)} (default {d.arch})")
    add("--epochs", type=integer, help=f"total epochs to train (default {d.epochs})")
    add("--batch-size", type=integer, help=f"images per step (default {d.batch_size})")
    add("--latent-dim", type=integer, help=f"noise size (default {d.latent_dim})")
    add("--g-width", type=integer,
        help="generator width (dcgan: channels at 14x14, default 64; mlp: first layer, 256)")
    add("--d-width", type=integer,
        help="discriminator width (dcgan: channels of the first conv, default 32; mlp: 256)")
    add("--d-dropout", type=number,
        help="dropout rate after each hidden layer of the discriminator "
             "(default: dcgan 0, mlp 0.3)")
    add("--dropout-masks", metavar="{threefry,keras}",
        help="how D's dropout draws its masks under XLA: threefry (default; fast on a CPU) "
             "or keras (Keras's own, as runs did before; 14%% slower for the mlp on a CPU)")
    add("--lr", type=number, help=f"Adam learning rate of both networks (default {d.lr})")
    add("--d-lr", type=number, help="the discriminator's own learning rate (default: --lr)")
    add("--ema", type=number,
        help="sample and save a moving average of the generator's weights with this decay "
             f"per step; 0: the live weights (default {d.ema})")
    add("--label-smoothing", type=number,
        help="one-sided label smoothing: D's target for real images is 1 minus this, "
             f"e.g. 0.1 (default {d.label_smoothing}: none)")
    add("--beta1", type=number, help=f"Adam beta_1 (default {d.beta1})")
    add("--reuse-fakes", action=argparse.BooleanOptionalAction, default=None,
        help="G's update reuses the fakes of D's update: one generator pass per step, "
             "as PyTorch's DCGAN example does (default); --no-reuse-fakes: a second noise "
             "draw, as runs did before")
    _add_quality_levers(p, d)


def _add_quality_levers(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """The quality issue's levers, all off by default but the dcgan's R1 (docs/USAGE.md
    has a row for each)."""
    add = p.add_argument
    add("--loss", help=f"the GAN loss: {', '.join(LOSSES)} (default {d.loss}: the "
                       "non-saturating cross-entropy; hinge: Lim & Ye 2017, Miyato et al. 2018)")
    add("--r1", type=number, metavar="GAMMA",
        help="R1 penalty on real images (Mescheder et al. 2018): D's loss plus GAMMA/2 times "
             "the mean squared norm of D's gradient with respect to the image, e.g. 1 "
             f"(default {DEFAULT_R1['dcgan']:g} for dcgan, {DEFAULT_R1['mlp']:g}: none for mlp)")
    add("--r1-interval", type=integer, metavar="N",
        help="lazy R1 (Karras et al. 2020): the penalty on every Nth D update only, weighted "
             f"N times, for 1/N of its cost, e.g. 16 (default {d.r1_interval}: every update)")
    add("--mode-seeking", type=number, metavar="LAMBDA",
        help="mode seeking (Mao et al. 2019): G's loss plus LAMBDA over the ratio of image "
             "distance to noise distance between its fakes of one class, pushing fakes "
             f"apart, e.g. 1 (default {d.mode_seeking}: none)")
    add("--diffaugment", metavar="POLICY",
        help=f"DiffAugment (Zhao et al. 2020): augment every image D sees, comma-separated "
             f"among {', '.join(AUGMENTATIONS)}, e.g. translation,cutout (default: none)")
    add("--lr-decay", type=number, metavar="F",
        help="both learning rates fall linearly to 0 over the last fraction F of the steps "
             f"(of --epochs), e.g. 0.2 (default {d.lr_decay}: constant)")
    add("--spectral-norm", action=argparse.BooleanOptionalAction, default=None,
        help="spectral normalization of the discriminator's kernels (Miyato et al. 2018); "
             "default: off")
    add("--balanced-batches", action=argparse.BooleanOptionalAction, default=None,
        help="every batch holds each class equally often (within 1); an epoch keeps its "
             "length, so rare classes' images repeat and common ones' are partly skipped; "
             "default: off (plain shuffling)")
    add("--minibatch-stddev", action=argparse.BooleanOptionalAction, default=None,
        help="D's last features gain one channel, the batch's standard deviation averaged "
             "over features (Karras et al. 2018), so that D sees a batch of fakes that lacks "
             "variety; default: off")


def add_run_options(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """cgan-train's options about the run rather than the model: files, intervals, devices."""
    add = p.add_argument
    add("--seed", type=integer, help="random seed (default: random, recorded in config.json)")
    add("--outdir", help="folder for all outputs (default: the current folder)")
    add("--data-dir", help="folder holding mnist.npz or the Fashion-MNIST .gz files (default: "
                           "$CGAN_DATA_DIR, then /usr/share/datasets for Fashion-MNIST, then "
                           "~/.keras/datasets, then download)")
    add("--limit", type=integer, help="train on the first N training images only")
    add("--sample-interval", type=integer,
        help=f"write a sample grid every K epochs (default {d.sample_interval})")
    add("--checkpoint-interval", type=integer,
        help=f"write a checkpoint every K epochs (default {d.checkpoint_interval})")
    add("--eval-interval", type=integer,
        help="measure sample quality every K epochs into quality.csv and plots/quality.png "
             "(a quick cgan-eval: no Parzen estimate, --eval-per-class samples; default: off; "
             "0 switches them off when resuming a run that had them)")
    add("--eval-per-class", type=integer, metavar="N", help="samples per class of each of "
        f"those checks (default {d.eval_per_class}; 1000 measures as cgan-eval does, slower)")
    add("--no-xla", dest="xla", action="store_false", default=None,
        help="do not compile the training step with XLA")
    add("--mixed-precision", action="store_true", default=None,
        help="compute in float16 on GPUs (with loss scaling) or bfloat16 on CPUs; "
             "output layers stay float32")
    add("--strategy", help=f"tf.distribute strategy: {', '.join(STRATEGIES)} (default "
                           f"{d.strategy}); multi-worker reads TF_CONFIG")
    add("--resume", action="store_true", default=None,
        help="continue the run in --outdir from its latest checkpoint")
    add("--overwrite", action="store_true", default=None,
        help="replace a previous run in --outdir")
    add("--tensorboard", action=argparse.BooleanOptionalAction, default=None,
        help="write TensorBoard logs to OUTDIR/logs (view: tensorboard --logdir OUTDIR/logs)")
    add("--dry-run", action="store_true",
        help="print the resolved options as JSON and exit: no training, no files")
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("--quiet", action="store_true", help="print only errors and the final line")
    talk.add_argument("--verbose", action="store_true",
                      help="also say which files are written at each interval")
