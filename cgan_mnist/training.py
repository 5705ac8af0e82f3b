"""A training run: data -> models -> the epoch loop -> files under --outdir.

``train(cfg)`` is the whole run. It resumes exactly from the latest checkpoint
when ``cfg.resume`` is set: the checkpoint holds both networks, both
optimizers, the noise generator's state and the global step; the data order
of every epoch and the fixed sample noise are functions of the seed.
SIGINT/SIGTERM finish the current step, save everything and raise
``Interrupted``.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import console, outputs, tensorboard
from .config import TrainConfig
from .errors import UserError

SAMPLE_COLUMNS = 10  # fixed-noise grid: one row per class, this many columns
CHECKPOINTS_KEPT = 3
STEPS_IN_FLIGHT = 8  # training steps dispatched before the oldest one's losses are read


class Interrupted(Exception):
    """Training stopped by a signal after saving; ``exit_code`` is 128 + signal number."""

    def __init__(self, signum: int, outdir: Path, step: int):
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"{name} received: stopped at step {step} and saved a checkpoint; "
                         f"continue with: cgan-train --outdir {outdir} --resume")


@dataclass(frozen=True)
class RunPaths:
    """Where a run keeps its files."""

    root: Path

    @property
    def generated(self) -> Path:
        return self.root / "generated"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def log_file(self) -> Path:
        return self.root / "log.txt"

    @property
    def tensorboard_logs(self) -> Path:
        return self.root / "logs"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def generator(self) -> Path:
        return self.root / "generator.keras"

    @property
    def losses_plot(self) -> Path:
        return self.plots / "losses.png"

    @property
    def progress_gif(self) -> Path:
        return self.generated / "progress.gif"

    @property
    def quality(self) -> Path:
        return self.root / "quality.csv"

    @property
    def quality_plot(self) -> Path:
        return self.plots / "quality.png"

    @property
    def confusion_plot(self) -> Path:
        return self.plots / "confusion.png"

    def epoch_grid(self, epoch: int) -> Path:
        return self.generated / f"epoch_{epoch:04d}.png"

    def epoch_grids(self) -> list[Path]:
        return sorted(self.generated.glob("epoch_[0-9][0-9][0-9][0-9].png"))

    def holds_run(self) -> bool:
        return self.config.exists() or self.checkpoints.exists()

    def remove_run(self) -> None:
        """Delete a previous run's files (for --overwrite); other files stay."""
        shutil.rmtree(self.checkpoints, ignore_errors=True)
        for path in [self.config, self.history, self.generator, self.losses_plot,
                     self.progress_gif, self.quality, self.quality_plot, self.confusion_plot,
                     *self.epoch_grids()]:
            path.unlink(missing_ok=True)
        shutil.rmtree(self.tensorboard_logs, ignore_errors=True)
        self.log_file.unlink(missing_ok=True)


def fixed_noise(seed: int, latent_dim: int, num_classes: int,
                columns: int = SAMPLE_COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """Noise and one-hot labels of the progress grid: row r is class r, and each
    column keeps the same noise in every row and for the whole run."""
    rng = np.random.default_rng([seed, 0xF1ED])
    noise = rng.standard_normal((columns, latent_dim)).astype(np.float32)
    noise = np.tile(noise, (num_classes, 1))
    labels = np.repeat(np.eye(num_classes, dtype=np.float32), columns, axis=0)
    return noise, labels


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; on CPU also make ops deterministic,
    so the same seed repeats a run bit for bit (GPU kernels stay free to be fast)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if not tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()


def model_config(cfg: TrainConfig, num_classes: int):
    """The networks' part of a run's options (a models.ModelConfig)."""
    from .models import ModelConfig

    return ModelConfig(cfg.arch, cfg.latent_dim, num_classes, cfg.g_width, cfg.d_width,
                       cfg.d_dropout)


def gan_options(cfg: TrainConfig) -> dict:
    """The algorithm's part of a run's options: keyword arguments of gan.CGAN."""
    return {"lr": cfg.lr, "d_lr": cfg.d_lr, "beta1": cfg.beta1, "ema": cfg.ema,
            "label_smoothing": cfg.label_smoothing}


# --- the run ------------------------------------------------------------------


def train(cfg: TrainConfig, log=print, progress: bool | None = None,
          evaluator=None) -> RunPaths:
    """Train a cGAN as configured, writing every output under ``cfg.outdir``.

    With ``cfg.eval_interval``, ``evaluator`` (default: the cached one, trained
    on first use) measures sample quality; it is ready before the networks are
    built, so its training cannot shift the run's random state.
    """
    from . import data, devices

    strategy = devices.make_strategy(cfg.strategy)  # first: multi-worker must precede other ops
    paths = RunPaths(Path(cfg.outdir))
    chief = devices.is_chief(strategy)
    if chief:
        _prepare_outdir(paths, cfg)
        console.attach(log, paths.log_file)  # log.txt, when log is a console.RunLog
    dataset = data.load(cfg.dataset, cfg.data_dir)
    feeder = data.EpochFeeder(dataset.train, dataset.num_classes, cfg.batch_size,
                              seed=cfg.seed, limit=cfg.limit)
    quality = _quality_tracker(cfg, paths, dataset, evaluator, log) if chief else None
    with tempfile.TemporaryDirectory(prefix="cgan-worker-") as scratch:
        run = _Run(cfg, paths, dataset, feeder, log if chief else (lambda line: None),
                   strategy=strategy, scratch=None if chief else Path(scratch), quality=quality)
        run.loop(show_progress=chief and (sys.stderr.isatty() if progress is None else progress))
    return paths


def _quality_tracker(cfg: TrainConfig, paths: RunPaths, dataset, evaluator, log):
    if cfg.eval_interval is None:
        return None
    from . import evaluation

    if evaluator is None:
        evaluator = evaluation.load_or_train(dataset, log=log)
    return evaluation.QualityTracker(evaluator, dataset, paths.quality, paths.quality_plot,
                                     cfg.seed, log)


def check_outdir(cfg: TrainConfig) -> None:
    """Refuse an --outdir that the run cannot start in; looks, touches nothing
    (also what ``cgan-train --dry-run`` checks)."""
    paths = RunPaths(Path(cfg.outdir))
    if paths.holds_run() and not (cfg.resume or cfg.overwrite):
        raise UserError(f"{paths.root} already holds a run; pass --resume to continue it, "
                        "--overwrite to replace it, or choose another --outdir")
    if cfg.resume and not paths.checkpoints.exists():
        raise UserError(f"--resume: no checkpoints in {paths.checkpoints}; "
                        "start a new run with --overwrite")


def _prepare_outdir(paths: RunPaths, cfg: TrainConfig) -> None:
    check_outdir(cfg)
    if cfg.overwrite:
        paths.remove_run()
    for folder in (paths.root, paths.generated, paths.plots):
        folder.mkdir(parents=True, exist_ok=True)


class _Run:
    """State of one training run; ``loop`` drives it epoch by epoch."""

    def __init__(self, cfg: TrainConfig, paths: RunPaths, dataset, feeder, log, *,
                 strategy, scratch: Path | None = None, quality=None):
        """``scratch``: a non-chief worker's folder for its checkpoint shards; None on the
        chief. ``quality``: an evaluation.QualityTracker (chief only), or None."""
        import tensorflow as tf

        from .devices import mixed_precision_policy
        from .gan import CGAN
        from .models import build_models, training_flops_per_image

        self.cfg, self.paths, self.feeder, self.log = cfg, paths, feeder, log
        self.strategy, self.chief = strategy, scratch is None
        self.quality = quality
        seed_everything(cfg.seed)
        self.model_cfg = model_config(cfg, dataset.num_classes)
        self.dtype_policy = policy = mixed_precision_policy(cfg.mixed_precision)
        # XLA cannot compile the optimizers' cross-replica merge: one replica only.
        jit = cfg.xla and strategy.num_replicas_in_sync == 1
        with strategy.scope():
            generator, discriminator = build_models(self.model_cfg, policy)
            self.gan = CGAN(generator, discriminator, **gan_options(cfg),
                            global_batch_size=cfg.batch_size, jit_compile=jit,
                            loss_scaling=policy == "mixed_float16", strategy=strategy)
            self.step = tf.Variable(0, dtype=tf.int64, name="step")
        checkpoint = tf.train.Checkpoint(step=self.step, **self.gan.checkpoint_items())
        self.manager = tf.train.CheckpointManager(checkpoint, str(scratch or paths.checkpoints),
                                                  max_to_keep=CHECKPOINTS_KEPT)
        self.history: list[dict] = []
        self.sample_inputs = fixed_noise(cfg.seed, cfg.latent_dim, dataset.num_classes)
        self.flops_per_image = training_flops_per_image(generator, discriminator)
        self.run_info = {
            "config": cfg.to_dict(),
            "model": self.model_cfg.to_dict(),
            "data": {"name": dataset.name, "path": str(dataset.path),
                     "train_examples": feeder.num_examples, "image_shape": [28, 28, 1],
                     "num_classes": dataset.num_classes,
                     "steps_per_epoch": feeder.steps_per_epoch,
                     "class_names": list(dataset.class_names)},
            "params": {"generator": generator.count_params(),
                       "discriminator": discriminator.count_params()},
            "training_flops_per_image": self.flops_per_image,
            "devices": {"replicas": strategy.num_replicas_in_sync, "xla": jit,
                        "dtype_policy": policy or "float32"},
        }
        if cfg.resume:
            self._restore()
        elif self.chief:
            self.write_config()
        self.board = tensorboard.open_board(  # only the chief writes, as with every output
            cfg.tensorboard and self.chief, paths.tensorboard_logs,
            int(self.step.numpy()) if cfg.resume else None)
        self.board_rows = "rows: " + ", ".join(f"{i} {n}" for i, n in
                                               enumerate(dataset.class_names))

    # -- state -----------------------------------------------------------------

    def _restore(self) -> None:
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(str(self.paths.checkpoints))
        if latest is None:
            raise UserError(f"--resume: no checkpoint in {self.paths.checkpoints}; "
                            "start a new run with --overwrite")
        try:
            self.manager.checkpoint.restore(latest).assert_existing_objects_matched()
        except Exception as err:  # noqa: BLE001 - any restore failure is the file's fault
            raise UserError(f"cannot restore {latest} ({type(err).__name__}); it is corrupt or "
                            "from another configuration: start a new run with --overwrite") from None
        step = int(self.step.numpy())
        if self.paths.history.exists():
            self.history = [r for r in outputs.read_history(self.paths.history)
                            if r["step"] <= step]
        if self.quality:
            self.quality.resume(completed_epochs=step // self.feeder.steps_per_epoch)
        self.log(f"resumed from {latest} at step {step} (epoch {self.epoch_of(step)})")

    def epoch_of(self, step: int) -> int:
        """The epoch that step number ``step + 1`` belongs to (1-based)."""
        return step // self.feeder.steps_per_epoch + 1

    def write_config(self, **extra) -> None:
        outputs.write_json(self.paths.config, {**self.run_info["config"], "run": {
            k: v for k, v in self.run_info.items() if k != "config"} | extra})

    # -- the loop --------------------------------------------------------------

    def loop(self, show_progress: bool) -> None:
        steps_per_epoch = self.feeder.steps_per_epoch
        first_epoch = self.epoch_of(int(self.step.numpy()))
        durations: list[float] = []
        with _SignalCatcher() as signals, self.board:
            for epoch in range(first_epoch, self.cfg.epochs + 1):
                skip = int(self.step.numpy()) - (epoch - 1) * steps_per_epoch
                started = time.perf_counter()
                rows = self._run_epoch(epoch, skip, signals, show_progress)
                durations.append(time.perf_counter() - started)
                self._check_finite(rows)
                self.history += rows
                self._to_board(rows, durations[-1])
                if signals.received:
                    self._save(epoch)
                    raise Interrupted(signals.received, self.paths.root, int(self.step.numpy()))
                self.log(self._epoch_line(epoch, rows, durations))
                self._save_at_intervals(epoch)
        self._finish()

    def _run_epoch(self, epoch: int, skip: int, signals, show_progress: bool) -> list[dict]:
        batches = self._batches(epoch, skip)
        bar = _ProgressBar(self.feeder.steps_per_epoch, epoch) if show_progress else None
        done: list[dict] = []
        in_flight: deque = deque()
        for batch in batches:
            in_flight.append(self.gan.train_step(batch))
            # Reading a step's losses waits for it. Without that, memory grew by
            # gigabytes within an epoch in some runs (one was killed at 24 GB),
            # so at most STEPS_IN_FLIGHT steps run unread.
            if len(in_flight) > STEPS_IN_FLIGHT:
                done.append(_floats(in_flight.popleft()))
            if bar:
                bar.update(skip + len(done) + len(in_flight))
            if signals.received:
                break
        if bar:
            bar.close()
        done += [_floats(metrics) for metrics in in_flight]
        first = int(self.step.numpy()) + 1
        self.step.assign_add(len(done))  # once per epoch, not a TF op on every step
        return [{"step": first + i, "epoch": epoch, **metrics} for i, metrics in enumerate(done)]

    def _to_board(self, rows: list[dict], seconds: float) -> None:
        """The epoch's steps, speed and learning rates to TensorBoard (nothing without it)."""
        if not (self.board.enabled and rows):
            return
        self.board.steps(rows)
        self.board.scalars(rows[-1]["step"], {
            "speed/images_per_second": len(rows) * self.cfg.batch_size / seconds,
            **{f"learning_rate/{net}": lr for net, lr in self.gan.learning_rates().items()}})

    def _batches(self, epoch: int, skip: int):
        """This epoch's batches with their noise, from batch ``skip`` on, split over replicas."""
        import tensorflow as tf

        from .gan import with_noise

        batches = with_noise(self.feeder.epoch(epoch), self.cfg.latent_dim, self.cfg.seed, epoch)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        batches = batches.skip(skip).with_options(options)
        return self.strategy.experimental_distribute_dataset(batches)

    def _check_finite(self, rows: list[dict]) -> None:
        for row in rows:
            if not all(math.isfinite(row[k]) for k in ("d_loss", "g_loss")):
                kept = self.manager.latest_checkpoint or "none yet"
                raise UserError(
                    f"losses became non-finite at epoch {row['epoch']}, step {row['step']} "
                    f"(d_loss {row['d_loss']}, g_loss {row['g_loss']}); nothing was saved after "
                    f"the last good checkpoint ({kept}); lower --lr or change --seed")

    def _epoch_line(self, epoch: int, rows: list[dict], durations: list[float]) -> str:
        means = {k: np.mean([r[k] for r in rows]) for k in ("d_loss", "g_loss", "d_real", "d_fake")}
        speed = len(rows) * self.cfg.batch_size / durations[-1]
        steady = durations[1:] or durations  # the first epoch includes compiling the step
        eta = (self.cfg.epochs - epoch) * float(np.mean(steady[-3:]))
        return (f"epoch {epoch:>3}/{self.cfg.epochs}  d_loss {means['d_loss']:.3f}  "
                f"g_loss {means['g_loss']:.3f}  D(x) {means['d_real']:.3f}  "
                f"D(G(z)) {means['d_fake']:.3f}  {speed:,.0f} img/s  "
                f"elapsed {_clock(sum(durations))}  eta {_clock(eta)}")

    # -- outputs ---------------------------------------------------------------

    def _save_at_intervals(self, epoch: int) -> None:
        final = epoch == self.cfg.epochs
        if self.quality and (epoch % self.cfg.eval_interval == 0 or final):
            # Before the checkpoint: a crash in between loses no row that resume keeps.
            self.quality.record(epoch, int(self.step.numpy()), self.gan.sampler)
        self._save(epoch, samples=epoch % self.cfg.sample_interval == 0 or final,
                   checkpoint=epoch % self.cfg.checkpoint_interval == 0 or final)

    def _save(self, epoch: int, *, samples: bool = True, checkpoint: bool = True) -> None:
        # on every worker: saving is a collective operation
        saved = self._save_checkpoint() if checkpoint else None
        if not self.chief or not (samples or checkpoint):
            return
        written = [outputs.write_history(self.paths.history, self.history)]
        if samples:
            images = self.gan.generate(*self.sample_inputs).numpy()
            grid = outputs.make_grid(images, cols=SAMPLE_COLUMNS)
            written.append(outputs.save_png(self.paths.epoch_grid(epoch), grid))
            self.board.image(int(self.step.numpy()), tensorboard.SAMPLES_TAG, grid,
                             self.board_rows)
            written.append(outputs.plot_losses(self.paths.losses_plot, self.history))
        if checkpoint:
            from .models import portable_generator

            generator = portable_generator(self.gan.sampler, self.model_cfg, self.dtype_policy)
            with outputs.atomic_path(self.paths.generator, suffix=".keras") as tmp:
                generator.save(tmp)
            written += [saved, self.paths.generator]
        console.detail(self.log, f"  step {int(self.step.numpy())}: wrote " + ", ".join(
            os.path.relpath(p, self.paths.root) for p in written))

    def _save_checkpoint(self) -> Path:
        import tensorflow as tf

        try:
            prefix = self.manager.save(checkpoint_number=int(self.step.numpy()))
        except tf.errors.OpError as err:  # TensorFlow reports I/O failures its own way
            message = err.message.splitlines()[0]
            code = errno.ENOSPC if "space left" in message.lower() else errno.EIO
            raise OSError(code, message, str(self.paths.checkpoints)) from None
        return Path(prefix)

    def _finish(self) -> None:
        if not self.chief:
            return
        grids = self.paths.epoch_grids()
        if grids:
            outputs.save_gif(self.paths.progress_gif, [outputs.read_png(p) for p in grids])
        self.write_config(finished_step=int(self.step.numpy()), finished_epochs=self.cfg.epochs)
        console.final(self.log, f"done: outputs in {self.paths.root.resolve()}")


# --- small helpers --------------------------------------------------------------


class _SignalCatcher:
    """While active, SIGINT/SIGTERM set ``received`` instead of killing the process."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received = 0
        self._previous = {}

    def _handle(self, signum, frame):
        self.received = signum

    def __enter__(self):
        if _in_main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class _ProgressBar:
    """A one-line progress bar on stderr, for terminals."""

    def __init__(self, total: int, epoch: int, width: int = 30):
        self.total, self.epoch, self.width = total, epoch, width
        self.started = time.perf_counter()

    def update(self, done: int) -> None:
        if done % 10 and done != self.total:
            return
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        sys.stderr.write(f"\r  epoch {self.epoch} [{bar}] {done}/{self.total}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\r" + " " * (self.width + 40) + "\r")
        sys.stderr.flush()


def _floats(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items()}


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
