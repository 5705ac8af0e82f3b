"""The commands ``cgan-train``, ``cgan-generate`` and ``cgan-eval``: parse, validate, call.

Parsing and the checks are in ``arguments`` (pure); this module runs the
library functions. TensorFlow is imported only after the arguments are
checked, so ``--help`` and argument errors answer at once. Every failure the
user can fix is one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

from .arguments import (eval_parser, generate_parser, model_of, one_line, train_parser,
                        validate_eval_args, validate_generate_args)
from .config import changed_options, validate_train_options
from .errors import UserError

# --- entry points --------------------------------------------------------------------


def _run(prog: str, body, argv) -> int:
    """Run a command body, turning every expected failure into one line and an exit code.

    In a real process (``argv`` None) nothing may follow that line: TensorFlow's
    messages at interpreter exit are silenced by closing stderr behind it."""
    try:
        return body(argv)
    except UserError as err:
        message, code = one_line(err), err.exit_code
    except OSError as err:
        message, code = one_line(_os_error_message(err)), 1
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
    if cfg.strategy == "multi-worker":
        from .devices import check_tf_config

        check_tf_config()
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
    changed = ", ".join(changed_options(cfg))
    log(f"cgan-train: {cfg.arch} on {cfg.dataset}"
        f"{f' (first {cfg.limit} images)' if cfg.limit else ''}, {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, {rates}{f', G average {cfg.ema}' if cfg.ema else ''}, "
        f"seed {cfg.seed}, outdir {cfg.outdir}, on {device}"
        f"{f'; not the defaults: {changed}' if changed else ''}")
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
        log.keep(f"cgan-train: error: {one_line(text)}")
        raise
    return 0


def _generate(argv) -> int:
    from . import pretrained, run_folder

    args = generate_parser().parse_args(argv)
    if args.pretrained == pretrained.LIST:
        print("\n".join(pretrained.describe() or ["no pretrained generator is shipped"]))
        return 0
    stored = run_folder.read_config(model_of(args).parent)
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
