"""The commands ``cgan-train``, ``cgan-generate`` and ``cgan-eval``: parse, validate, call.

TensorFlow is imported only after the arguments are checked, so ``--help``
and argument errors answer at once. Every failure the user can fix is one
line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import secrets
import sys
from pathlib import Path

from .config import ARCHS, DATASETS, STRATEGIES, TrainConfig, validate_train_options
from .errors import UsageError, UserError

MAX_SAMPLES = 10_000
EVAL_PER_CLASS = 1000

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
  cgan-generate --digit 3 --n 5000 --format npz          # the same, to generated/digit_3.npz
  cgan-generate --interpolate 3 8 --scale 4              # a 3 morphing into an 8: .gif and .png
  cgan-generate --digit sneaker --latent-walk --outdir runs/fashion   # a looping walk, as .gif
"""

EVAL_DESCRIPTION = """\
Measure the quality of a trained generator's samples: conditional accuracy,
Fréchet distance, classifier score, precision and recall, Parzen-window
log-likelihood; beside the same numbers for real training digits."""

EVAL_EXAMPLES = """\
examples:
  cgan-eval --outdir runs/dcgan                          # the full report, 1000 samples per digit
  cgan-eval --outdir runs/mlp --n-per-class 100          # a quicker, noisier look
  cgan-eval --model g.keras --json quality.json          # numbers also as JSON
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (and exit code 2)."""

    def error(self, message):
        raise UsageError(f"{_one_line(message)} (see {self.prog} --help)")


def _one_line(text) -> str:
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None


def train_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = _Parser(prog="cgan-train", description="Train a conditional GAN on MNIST, Fashion-MNIST "
                "or your own labelled 28x28 images.",
                epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--dataset", help=f"dataset: {', '.join(DATASETS)}, or the path of your own .npz "
                          f"(x_train uint8 (N, 28, 28), y_train ints) (default {d.dataset})")
    add("--arch", help=f"architecture: {', '.join(ARCHS)} (default {d.arch})")
    add("--epochs", type=_int, help=f"total epochs to train (default {d.epochs})")
    add("--batch-size", type=_int, help=f"images per step (default {d.batch_size})")
    add("--latent-dim", type=_int, help=f"noise size (default {d.latent_dim})")
    add("--g-width", type=_int,
        help="generator width (dcgan: channels at 14x14, default 64; mlp: first layer, 256)")
    add("--d-width", type=_int,
        help="discriminator width (dcgan: channels of the first conv, default 32; mlp: 256)")
    add("--d-dropout", type=_number,
        help="dropout rate after each hidden layer of the discriminator "
             "(default: dcgan 0, mlp 0.3)")
    add("--lr", type=_number, help=f"Adam learning rate of both networks (default {d.lr})")
    add("--d-lr", type=_number, help="the discriminator's own learning rate (default: --lr)")
    add("--ema", type=_number,
        help="sample and save a moving average of the generator's weights with this decay "
             f"per step; 0: the live weights (default {d.ema})")
    add("--label-smoothing", type=_number,
        help="one-sided label smoothing: D's target for real images is 1 minus this, "
             f"e.g. 0.1 (default {d.label_smoothing}: none)")
    add("--beta1", type=_number, help=f"Adam beta_1 (default {d.beta1})")
    add("--seed", type=_int, help="random seed (default: random, recorded in config.json)")
    add("--outdir", help="folder for all outputs (default: the current folder)")
    add("--data-dir", help="folder holding mnist.npz or the Fashion-MNIST .gz files (default: "
                           "$CGAN_DATA_DIR, then /usr/share/datasets for Fashion-MNIST, then "
                           "~/.keras/datasets, then download)")
    add("--limit", type=_int, help="train on the first N training images only")
    add("--sample-interval", type=_int,
        help=f"write a sample grid every K epochs (default {d.sample_interval})")
    add("--checkpoint-interval", type=_int,
        help=f"write a checkpoint every K epochs (default {d.checkpoint_interval})")
    add("--eval-interval", type=_int,
        help="measure sample quality every K epochs into quality.csv and plots/quality.png "
             "(a quick cgan-eval: 100 samples per digit, no Parzen estimate; default: off; "
             "0 switches them off when resuming a run that had them)")
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
    add("--n", type=_int, default=16,
        help=f"samples (per digit with 'all'), 1..{MAX_SAMPLES}; with --interpolate or "
             "--latent-walk: rows (walks) per frame, 1..100 (default 16)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--outdir", help="folder of a trained run (default: current folder)")
    source.add_argument("--model", help="path of a generator.keras")
    add("--seed", type=_int, help="random seed (default: random, printed)")
    add("--out", help="PNG to write (default: generated/digit_D.png in --outdir)")
    add("--npz", help="also save the samples as .npz: images uint8 (N,28,28), labels (N,)")
    add("--format", choices=("png", "npz", "both"),
        help="png: images (PNG, and GIF for animations); npz: the arrays; both "
             "(default png, or both with --npz)")
    add("--scale", type=_int, default=1,
        help="enlarge PNG and GIF images K times, nearest neighbour, 1..16 (default 1)")
    return p


def eval_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cgan-eval", description=EVAL_DESCRIPTION,
                epilog=EVAL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    source = p.add_mutually_exclusive_group()
    source.add_argument("--outdir", help="folder of a trained run (default: current folder)")
    source.add_argument("--model", help="path of a generator.keras")
    add("--n-per-class", type=_int, default=EVAL_PER_CLASS, metavar="N",
        help=f"samples per digit, 1..{MAX_SAMPLES} (default {EVAL_PER_CLASS})")
    add("--seed", type=_int, default=0, help="random seed of the samples (default 0)")
    add("--json", metavar="FILE", help="also write the numbers to this .json file")
    add("--data-dir", help="folder holding mnist.npz (default: $CGAN_DATA_DIR, then "
                           "~/.keras/datasets, then download)")
    return p


# --- validation (pure) -----------------------------------------------------------


def validate_generate_args(args: argparse.Namespace, class_names=None):
    """Check cgan-generate's arguments; return a GenerateRequest or raise UsageError.

    ``class_names`` are the run's (from its config.json, read by the caller);
    without them the classes are the ten digits.
    """
    from .data import DIGIT_NAMES
    from .generate import MAX_ANIMATED, MAX_SCALE, GenerateRequest, class_of, model_path

    names = tuple(class_names) if class_names else DIGIT_NAMES
    animated = args.interpolate is not None or args.latent_walk
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

    high = MAX_ANIMATED if animated else MAX_SAMPLES
    if not 1 <= args.n <= high:
        what = " with --interpolate/--latent-walk" if animated else ""
        raise UsageError(f"--n must be in 1..{high}{what}, got {args.n}")
    if args.seed is not None and not 0 <= args.seed < 2**31:
        raise UsageError(f"--seed must be in 0..{2**31 - 1}, got {args.seed}")
    if not 1 <= args.scale <= MAX_SCALE:
        raise UsageError(f"--scale must be in 1..{MAX_SCALE}, got {args.scale}")
    if args.out is not None and not args.out.lower().endswith(".png"):
        raise UsageError(f"--out must name a .png file, got {args.out!r}")
    if args.npz is not None and not args.npz.lower().endswith(".npz"):
        raise UsageError(f"--npz must name a .npz file, got {args.npz!r}")
    fmt = args.format or ("both" if args.npz else "png")
    if fmt == "png" and args.npz is not None:
        raise UsageError("--npz FILE asks for a .npz but --format png writes none; "
                         "drop one of them (or use --format both)")
    if fmt == "npz" and (args.out is not None or args.scale != 1):
        flag = "--out" if args.out is not None else "--scale"
        raise UsageError(f"{flag} is about images but --format npz writes none; "
                         "drop it or use --format both")

    base = Path(args.out) if args.out else Path(args.outdir or ".") / "generated" / f"{stem}.png"
    png = base if fmt != "npz" else None
    npz = (Path(args.npz) if args.npz else base.with_suffix(".npz")) if fmt != "png" else None
    gif = base.with_suffix(".gif") if animated and png is not None else None
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    return GenerateRequest(classes, args.n, model_path(args.outdir, args.model), png, npz, seed,
                           mode=mode, gif=gif, scale=args.scale, class_names=names)


def validate_eval_args(args: argparse.Namespace):
    """Check cgan-eval's arguments; return an EvalRequest or raise UsageError."""
    from .evaluation import request_for
    from .generate import model_path

    if not 1 <= args.n_per_class <= MAX_SAMPLES:
        raise UsageError(f"--n-per-class must be in 1..{MAX_SAMPLES}, got {args.n_per_class}")
    if not 0 <= args.seed < 2**31:
        raise UsageError(f"--seed must be in 0..{2**31 - 1}, got {args.seed}")
    if args.json is not None and not args.json.lower().endswith(".json"):
        raise UsageError(f"--json must name a .json file, got {args.json!r}")
    return request_for(model_path(args.outdir, args.model), args.n_per_class, args.seed,
                       Path(args.json) if args.json else None, args.data_dir)


# --- entry points --------------------------------------------------------------------


def _run(prog: str, body, argv) -> int:
    """Run a command body, turning every expected failure into one line and an exit code.

    In a real process (``argv`` None) nothing may follow that line: TensorFlow's
    messages at interpreter exit are silenced by closing stderr behind it."""
    try:
        return body(argv)
    except UserError as err:
        message, code = _one_line(err), err.exit_code
    except OSError as err:
        message, code = _one_line(_os_error_message(err)), 1
    except MemoryError:
        message, code = "out of memory; lower the sizes asked for (--n, --batch-size, widths)", 1
    except KeyboardInterrupt:
        message, code = "interrupted", 130
    print(f"{prog}: {'error: ' if code != 130 else ''}{message}", file=sys.stderr, flush=True)
    if argv is None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    return code


def _os_error_message(err: OSError) -> str:
    where = err.filename or "an output file"
    reason = err.strerror or str(err)
    if err.errno == errno.ENOSPC:
        return (f"no space left on the device while writing {where}; files written earlier are "
                "intact: free some space and run again (cgan-train: add --resume)")
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write {where} ({reason}); choose a writable --outdir or --out"
    return f"cannot write or read {where} ({reason}); check the path and free disk space"


def _start_tensorflow() -> str:
    """Import TensorFlow without its start-up chatter; return the device it will use.

    TensorFlow's C++ side prints CUDA probing messages to stderr before its own
    log level applies, so stderr is pointed at /dev/null while it starts.
    An import error still surfaces, after stderr is restored.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return f"{len(gpus)} GPU(s)" if gpus else "CPU"


def _train(argv) -> int:
    from . import run_folder

    args = train_parser().parse_args(argv)
    given = vars(args)
    stored = run_folder.read_config(args.outdir or ".") if args.resume else None
    cfg = validate_train_options(given, stored)
    if args.dry_run:  # before TensorFlow, and before anything touches --outdir
        run_folder.check_outdir(run_folder.RunPaths(cfg.outdir), resume=cfg.resume,
                                overwrite=cfg.overwrite)
        resolved = cfg.to_dict()
        if args.seed is None and not cfg.resume:  # the real run draws its own
            resolved["seed"] = None
        print(json.dumps(resolved, indent=2, sort_keys=True), flush=True)
        return 0
    from .console import RunLog

    log = RunLog("quiet" if args.quiet else "verbose" if args.verbose else "normal")
    device = _start_tensorflow()
    from .training import Interrupted, train

    rates = f"lr {cfg.lr}" + (f" (D {cfg.d_lr})" if cfg.d_lr else "")
    log(f"cgan-train: {cfg.arch} on {cfg.dataset}"
        f"{f' (first {cfg.limit} images)' if cfg.limit else ''}, {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, {rates}{f', G average {cfg.ema}' if cfg.ema else ''}"
        f"{f', real target {1 - cfg.label_smoothing:g}' if cfg.label_smoothing else ''}, "
        f"seed {cfg.seed}, outdir {cfg.outdir}, on {device}")
    if cfg.tensorboard:
        log(f"cgan-train: TensorBoard logs in {Path(cfg.outdir) / 'logs'} "
            f"(tensorboard --logdir {Path(cfg.outdir) / 'logs'})")
    try:
        train(cfg, log=log, progress=False if args.quiet else None)
    except Interrupted as stop:
        log.error(f"cgan-train: {stop}")
        return stop.exit_code
    except (UserError, OSError) as err:  # printed by _run; also kept in log.txt
        text = _os_error_message(err) if not isinstance(err, UserError) else err
        log.keep(f"cgan-train: error: {_one_line(text)}")
        raise
    return 0


def _generate(argv) -> int:
    from . import run_folder
    from .generate import model_path

    args = generate_parser().parse_args(argv)
    stored = run_folder.read_config(model_path(args.outdir, args.model).parent)
    request = validate_generate_args(args, run_folder.class_names(stored))
    _start_tensorflow()
    from .generate import generate

    for path in generate(request):
        print(path, flush=True)
    print(f"seed {request.seed}", file=sys.stderr)
    return 0


def _eval(argv) -> int:
    args = eval_parser().parse_args(argv)
    request = validate_eval_args(args)
    device = _start_tensorflow()
    from . import evaluation
    from .report import format_report

    def say(line):
        print(line, flush=True)

    say(f"cgan-eval: {request.model} on {request.dataset}, {request.n_per_class} samples per "
        f"class, seed {request.seed}, on {device}")
    result = evaluation.run(request, log=say)
    say(f"\n{format_report(result)}\n")  # the numbers first: nothing after this can lose them
    for path in evaluation.write_json(request, result) + evaluation.write_extras(request, result,
                                                                                 say):
        say(f"wrote {path}")
    return 0


def train_main(argv=None) -> int:
    return _run("cgan-train", _train, argv)


def generate_main(argv=None) -> int:
    return _run("cgan-generate", _generate, argv)


def eval_main(argv=None) -> int:
    return _run("cgan-eval", _eval, argv)
