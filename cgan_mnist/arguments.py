"""The three commands' arguments: parsers, and their checks as pure functions.

Nothing here imports TensorFlow or touches a file beyond reading a run's
config.json (through ``run_folder``), so ``--help`` and every argument error
answer at once, and the checks are easy to test.
"""

from __future__ import annotations

import argparse
import secrets
from dataclasses import replace
from pathlib import Path

from .config import TrainConfig
from .errors import UsageError
from .train_arguments import add_model_options, add_run_options, integer

MAX_SAMPLES = 10_000
EVAL_PER_CLASS = 1000
MAX_REFERENCE_SEEDS = 20

TRAIN_EXAMPLES = """\
examples:
  cgan-train --dataset mnist --epochs 40                 # the full DCGAN run
  cgan-train --arch mlp --epochs 40 --outdir runs/mlp    # the paper-style MLP
  cgan-train --limit 2000 --epochs 2 --outdir /tmp/try   # a quick try
  cgan-train --outdir runs/mlp --resume --epochs 60      # continue a run to 60 epochs
  cgan-train --dataset fashion_mnist --outdir runs/fashion --tensorboard
                                 # Fashion-MNIST; watch: tensorboard --logdir runs/fashion/logs
  cgan-train --dataset letters.npz --outdir runs/letters # your own labelled 28x28 images
  cgan-train --outdir runs/mlp --resume --dry-run        # show the resolved options, do nothing
  cgan-train --quiet --outdir runs/q                     # print only errors and the final line
"""

GENERATE_EXAMPLES = """\
examples:
  cgan-generate --digit 7 --n 16                         # 16 sevens -> generated/digit_7.png
  cgan-generate --digit all --n 10 --outdir runs/mlp     # a 10x10 grid, one row per digit
  cgan-generate --digit 3 --n 5000 --npz threes.npz      # labelled synthetic data
  cgan-generate --digit all --n-per-class 6000 --npz synthetic_mnist.npz   # a 60,000-image set
  cgan-generate --digit 3 --n 5000 --format npz          # the same, to generated/digit_3.npz
  cgan-generate --interpolate 3 8 --scale 4              # a 3 morphing into an 8: .gif and .png
  cgan-generate --digit sneaker --latent-walk --outdir runs/fashion   # a looping walk, as .gif
"""

EVAL_DESCRIPTION = """\
Measure the quality of a trained generator's samples: conditional accuracy,
Fréchet distance, classifier score, precision and recall, Parzen-window
log-likelihood; beside the same numbers for real training digits.

The yardstick is a small classifier, the evaluator. MNIST's and
Fashion-MNIST's are shipped with cgan-mnist, so measuring takes about a
minute; any other dataset's is trained on first use (about 6 minutes on 2
CPU cores for 60,000 images) and cached in $CGAN_CACHE_DIR or
~/.cache/cgan-mnist."""

EVAL_EXAMPLES = """\
examples:
  cgan-eval --outdir runs/dcgan                          # the full report, 1000 samples per digit
  cgan-eval --outdir runs/mlp --n-per-class 100          # a quicker, noisier look
  cgan-eval --model g.keras --json quality.json          # numbers also as JSON
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (and exit code 2)."""

    def error(self, message):
        raise UsageError(f"{one_line(message)} (see {self.prog} --help)")

    def parse_args(self, args=None, namespace=None):
        """argparse's, refusing what it lets through: ``--seed=--`` parses as an empty list."""
        parsed = super().parse_args(args, namespace)
        for action in self._actions:
            value = getattr(parsed, action.dest, None)
            expected = 1 if action.nargs is None else action.nargs
            if isinstance(value, list) and (not isinstance(expected, int) or len(value) != expected
                                            or action.nargs is None):
                self.error(f"argument {action.option_strings[0]}: expected {expected} value(s)")
        return parsed


def one_line(text) -> str:
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def train_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = _Parser(prog="cgan-train", description="Train a conditional GAN on MNIST, Fashion-MNIST "
                "or your own labelled 28x28 images.",
                epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(p, d)
    add_run_options(p, d)
    return p


def generate_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cgan-generate", description="Draw digits (or the run's classes) from a "
                "trained generator.", epilog=GENERATE_EXAMPLES,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--digit", help="the class to draw: its number (0..9 for MNIST), its name from the run "
                        "(e.g. sneaker, 'ankle boot'), or 'all' (one row per class)")
    add("--interpolate", nargs=2, metavar=("A", "B"),
        help="morph class A into class B (numbers or names), the noise fixed: "
             "generated/interpolate_A_B.gif and a .png strip")
    add("--latent-walk", action="store_true",
        help="with --digit D: a looping walk through the noise for class D: "
             "generated/latent_walk_D.gif and a .png strip")
    add("--n", "--n-per-class", dest="n", type=integer, default=16,
        help=f"samples (per class with 'all'), 1..{MAX_SAMPLES}; with --interpolate or "
             "--latent-walk: rows (walks) per frame, 1..100 (default 16)")
    _add_source(p, "e.g. mnist-dcgan; 'list' names them (files go to generated/ in this folder)")
    add("--seed", type=integer, help="random seed (default: random, printed)")
    add("--out", help="PNG to write (default: generated/digit_D.png in --outdir)")
    add("--npz", help="also save the samples as .npz in Keras's layout: x_train uint8 "
                      "(N,28,28), y_train (N,), class_names (also as images, labels)")
    add("--format", choices=("png", "npz", "both"),
        help="png: images (PNG, and GIF for animations); npz: the arrays; both "
             "(default png, or both with --npz)")
    add("--scale", type=integer,
        help="enlarge PNG and GIF images K times, nearest neighbour, 1..16 (default: enough "
             "for at least 256 pixels across, e.g. 3 for 16 digits; 1 keeps the raw size)")
    return p


def _add_source(p: argparse.ArgumentParser, pretrained_help: str) -> None:
    """The generator to use: a run folder, a generator.keras, or a shipped one (one of them)."""
    source = p.add_mutually_exclusive_group()
    source.add_argument("--outdir", help="folder of a trained run (default: current folder)")
    source.add_argument("--model", help="path of a generator.keras")
    source.add_argument("--pretrained", metavar="NAME",
                        help=f"a generator shipped with cgan-mnist: {pretrained_help}")


def eval_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cgan-eval", description=EVAL_DESCRIPTION,
                epilog=EVAL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    _add_source(p, "cgan-generate --pretrained list names them; its heat map goes to plots/ "
                   "in this folder")
    add("--n-per-class", type=integer, default=EVAL_PER_CLASS, metavar="N",
        help=f"samples per class, 1..{MAX_SAMPLES} (default {EVAL_PER_CLASS})")
    add("--seed", type=integer, default=0, help="random seed of the samples (default 0)")
    add("--json", metavar="FILE", help="also write the numbers to this .json file")
    add("--cas", action="store_true",
        help="also the classification accuracy score: a classifier trained on the samples "
             "(N per class), tested on real images, beside one trained on as many real ones "
             "(trains two classifiers: about a minute each for N=1000 on 2 cores)")
    add("--reference-seeds", type=integer, default=0, metavar="K",
        help="also the real data's Fréchet distance at evaluation seeds 0..K-1 and its mean, "
             "the yardstick of the 'FD at most 2x real' target (one seed's moves by about "
             "20%%; 5 seeds: about half a minute more on 2 cores)")
    add("--dataset", metavar="NAME",
        help="the dataset a lone --model was trained on: mnist (default), fashion_mnist or "
             "a .npz file (a run's config.json names it otherwise)")
    add("--data-dir", help="folder of the run's dataset (default: where the run found it, "
                           "then $CGAN_DATA_DIR, then ~/.keras/datasets, then download)")
    return p


# --- validation (pure) -----------------------------------------------------------


def validate_generate_args(args: argparse.Namespace, class_names=None):
    """Check cgan-generate's arguments; return a GenerateRequest or raise UsageError.

    ``class_names`` are the run's (from its config.json, read by the caller);
    without them the classes are the ten digits.
    """
    from .data import DIGIT_NAMES
    from .generate import MAX_ANIMATED, MAX_SCALE, GenerateRequest

    names = tuple(class_names) if class_names else DIGIT_NAMES
    animated = args.interpolate is not None or args.latent_walk
    mode, classes, stem = _what_to_draw(args, names)
    high = MAX_ANIMATED if animated else MAX_SAMPLES
    if not 1 <= args.n <= high:
        what = " with --interpolate/--latent-walk" if animated else ""
        raise UsageError(f"--n must be in 1..{high}{what}, got {args.n}")
    if args.seed is not None and not 0 <= args.seed < 2**31:
        raise UsageError(f"--seed must be in 0..{2**31 - 1}, got {args.seed}")
    if args.scale is not None and not 1 <= args.scale <= MAX_SCALE:
        raise UsageError(f"--scale must be in 1..{MAX_SCALE}, got {args.scale}")
    if args.out is not None and not args.out.lower().endswith(".png"):
        raise UsageError(f"--out must name a .png file, got {args.out!r}")
    if args.npz is not None and not args.npz.lower().endswith(".npz"):
        raise UsageError(f"--npz must name a .npz file, got {args.npz!r}")
    fmt = args.format or ("both" if args.npz else "png")
    if fmt == "png" and args.npz is not None:
        raise UsageError("--npz FILE asks for a .npz but --format png writes none; "
                         "drop one of them (or use --format both)")
    if fmt == "npz" and (args.out is not None or args.scale is not None):
        flag = "--out" if args.out is not None else "--scale"
        raise UsageError(f"{flag} is about images but --format npz writes none; "
                         "drop it or use --format both")

    if not animated:
        _check_generate_memory(len(classes), args.n, args.scale if fmt != "npz" else 0)
    base = Path(args.out) if args.out else Path(args.outdir or ".") / "generated" / f"{stem}.png"
    png = base if fmt != "npz" else None
    npz = (Path(args.npz) if args.npz else base.with_suffix(".npz")) if fmt != "png" else None
    gif = base.with_suffix(".gif") if animated and png is not None else None
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    return GenerateRequest(classes, args.n, model_of(args), png, npz, seed,
                           mode=mode, gif=gif, scale=args.scale, class_names=names)


def _what_to_draw(args: argparse.Namespace, names) -> tuple[str, tuple[int, ...], str]:
    """(mode, classes, file stem) of cgan-generate's --digit / --interpolate / --latent-walk."""
    from .generate import class_of

    if args.interpolate is not None and (args.digit is not None or args.latent_walk):
        raise UsageError("--interpolate A B names its own classes; drop --digit and --latent-walk")
    if args.interpolate is None and args.digit is None:
        raise UsageError("say what to draw: --digit D (or 'all'), --digit D --latent-walk, "
                         "or --interpolate A B")
    if args.interpolate is not None:
        (a, slug_a), (b, slug_b) = (class_of(text, names, "--interpolate", allow_all=False)
                                    for text in args.interpolate)
        if a == b:
            raise UsageError(f"--interpolate needs two different classes, got {slug_a} twice")
        mode, classes, stem = "interpolate", (a, b), f"interpolate_{slug_a}_{slug_b}"
    elif str(args.digit).strip().lower() == "all":
        if args.latent_walk:
            raise UsageError("--latent-walk walks through one class; give --digit D, not 'all'")
        mode, classes, stem = "draw", tuple(range(len(names))), "digit_all"
    else:
        cls, slug = class_of(args.digit, names, "--digit", allow_all=not args.latent_walk)
        mode = "latent_walk" if args.latent_walk else "draw"
        classes, stem = (cls,), f"{'latent_walk' if args.latent_walk else 'digit'}_{slug}"
    return mode, classes, stem


def _check_generate_memory(num_classes: int, n: int, scale: int | None,
                           available: int | None = None) -> None:
    """Refuse, before any allocation, samples and a grid that cannot fit in memory: the
    images as float32 (three copies at most) and the grid, enlarged, as uint8 (two)."""
    from .config import physical_memory
    from .generate import grid_columns

    available = physical_memory() if available is None else available
    images = num_classes * n
    cols = grid_columns(num_classes, n)
    pixels = ((-(-images // cols)) * 30 + 2) * (cols * 30 + 2) * (scale or 1) ** 2
    need = 3 * 4 * 784 * images + 2 * pixels
    if available and need > available:
        raise UsageError(f"{images:,} samples{f' in a grid enlarged {scale} times' if scale else ''}"
                         f" would need about {need / 2**30:.0f} GiB of memory; this machine has "
                         f"{available / 2**30:.0f} GiB: lower --n{' or --scale' if scale else ''}")


def validate_eval_args(args: argparse.Namespace):
    """Check cgan-eval's arguments; return an EvalRequest or raise UsageError."""
    from .evaluation import request_for

    if not 1 <= args.n_per_class <= MAX_SAMPLES:
        raise UsageError(f"--n-per-class must be in 1..{MAX_SAMPLES}, got {args.n_per_class}")
    if not 0 <= args.seed < 2**31:
        raise UsageError(f"--seed must be in 0..{2**31 - 1}, got {args.seed}")
    if args.json is not None and not args.json.lower().endswith(".json"):
        raise UsageError(f"--json must name a .json file, got {args.json!r}")
    if not 0 <= args.reference_seeds <= MAX_REFERENCE_SEEDS:
        raise UsageError(f"--reference-seeds must be in 0..{MAX_REFERENCE_SEEDS}, "
                         f"got {args.reference_seeds}")
    request = request_for(model_of(args), args.n_per_class, args.seed,
                          Path(args.json) if args.json else None, args.data_dir, args.cas,
                          args.reference_seeds, args.dataset)
    if args.pretrained:  # measured against the data found here; nothing written in the package
        request = replace(request, data_path=None, confusion_png=Path("plots") / "confusion.png")
    return request


def model_of(args: argparse.Namespace) -> Path:
    """The generator.keras that --pretrained, --model or --outdir names."""
    from . import pretrained
    from .generate import model_path

    if args.pretrained is not None:
        return pretrained.folder(args.pretrained) / "generator.keras"
    return model_path(args.outdir, args.model)

