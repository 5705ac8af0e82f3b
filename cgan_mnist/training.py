"""A training run: data -> models -> the epoch loop -> files under --outdir.

``train(cfg)`` is the whole run; ``build_run`` makes the networks, the step
and the data stream (``scripts/bench_speed.py`` times exactly that). A run
resumes exactly from its latest checkpoint when ``cfg.resume`` is set: the
checkpoint holds both networks, both optimizers, the noise generator's state
and the global step; the data order of every epoch and the fixed sample noise
are functions of the seed. SIGINT/SIGTERM finish the current step, save
everything and raise ``Interrupted``.

Everything a run needs is checked before its folder is touched: the
options, the data, the lock (one cgan-train per folder), the folder itself,
and on resume the checkpoint. Only then does ``--overwrite`` delete anything.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import run_folder
from .config import TrainConfig
from .errors import UserError
from .run_folder import RunPaths

SAMPLE_COLUMNS = 10  # fixed-noise grid: one row per class, this many columns
STEPS_IN_FLIGHT = 8  # training steps dispatched before the oldest one's losses are read


class Interrupted(Exception):
    """Training stopped by a signal after saving; ``exit_code`` is 128 + signal number."""

    def __init__(self, signum: int, outdir: Path, step: int):
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"{name} received: stopped at step {step} and saved a checkpoint; "
                         f"continue with: cgan-train --outdir {outdir} --resume")


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
                       cfg.d_dropout, cfg.spectral_norm, cfg.dropout_masks, cfg.minibatch_stddev)


def gan_options(cfg: TrainConfig, steps_per_epoch: int) -> dict:
    """The algorithm's part of a run's options: keyword arguments of gan.CGAN.

    ``total_steps`` (for --lr-decay) is that of the configured --epochs: a run
    resumed with more epochs recomputes its schedule from the new total."""
    return {"lr": cfg.lr, "d_lr": cfg.d_lr, "beta1": cfg.beta1, "ema": cfg.ema,
            "label_smoothing": cfg.label_smoothing, "reuse_fakes": cfg.reuse_fakes,
            "loss": cfg.loss, "r1": cfg.r1, "r1_interval": cfg.r1_interval,
            "diffaugment": cfg.diffaugment,
            "lr_decay": cfg.lr_decay, "mode_seeking": cfg.mode_seeking,
            "total_steps": cfg.epochs * steps_per_epoch}


# --- the data a run trains on ------------------------------------------------------


def load_data(cfg: TrainConfig, stored: dict | None = None):
    """The run's dataset, checked against the options and, on resume, against the run.

    A resumed run without --data-dir or $CGAN_DATA_DIR finds its data where it
    recorded it; different data (another fingerprint) is refused.
    """
    from . import data

    recorded, fingerprint = run_folder.recorded_data(stored)
    dataset = data.load_recorded(cfg.dataset, recorded if cfg.resume else None, cfg.data_dir)
    if cfg.resume and fingerprint and dataset.fingerprint != fingerprint:
        raise UserError(f"--resume: {dataset.path} is not the data this run trained on (its "
                        f"content differs from what the run recorded); pass --data-dir with the "
                        "run's own data, or start a new run in another --outdir")
    examples = min(len(dataset.train.labels), cfg.limit or len(dataset.train.labels))
    if examples < cfg.batch_size:
        raise UserError(f"--batch-size {cfg.batch_size} is more than the {examples} training "
                        f"images of {dataset.path}: not one full batch; lower --batch-size")
    return dataset


# --- the networks, the step and the data stream ---------------------------------------


@dataclass
class Run:
    """What one training run computes with; ``build_run`` makes it, ``train`` drives it."""

    cfg: TrainConfig
    model_cfg: object      # models.ModelConfig
    gan: object            # gan.CGAN
    step: object           # tf.Variable: the global step, saved in every checkpoint
    feeder: object         # data.EpochFeeder
    strategy: object
    dtype_policy: str | None
    xla: bool

    @property
    def global_step(self) -> int:
        return int(self.step.numpy())

    @property
    def flops_per_image(self) -> int:
        """Training FLOPs per image of this run's step (``models.training_flops_per_image``)."""
        from .models import training_flops_per_image

        gan = self.gan
        return training_flops_per_image(gan.generator, gan.discriminator, gan.reuse_fakes,
                                        1 / gan.r1_interval if gan.r1 else 0.0)

    def epoch_of(self, step: int) -> int:
        """The epoch that step number ``step + 1`` belongs to (1-based)."""
        return step // self.feeder.steps_per_epoch + 1

    def batches(self, epoch: int, skip: int = 0):
        """This epoch's batches with their noise, from batch ``skip`` on, split over replicas."""
        import tensorflow as tf

        from .gan import with_noise

        batches = with_noise(self.feeder.epoch(epoch), self.cfg.latent_dim, self.cfg.seed, epoch,
                             uniforms=self.gan.uniforms)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        batches = batches.skip(skip).with_options(options)
        return self.strategy.experimental_distribute_dataset(batches)


def build_run(cfg: TrainConfig, dataset, strategy=None) -> Run:
    """Seed, then build both networks, the CGAN step and the epoch feeder, as cgan-train does."""
    import tensorflow as tf

    from .data import EpochFeeder
    from .devices import mixed_precision_policy
    from .gan import CGAN
    from .models import build_models

    strategy = strategy or tf.distribute.get_strategy()
    seed_everything(cfg.seed)
    feeder = EpochFeeder(dataset.train, dataset.num_classes, cfg.batch_size, seed=cfg.seed,
                         limit=cfg.limit, balanced=cfg.balanced_batches)  # draws nothing
    model_cfg = model_config(cfg, dataset.num_classes)
    policy = mixed_precision_policy(cfg.mixed_precision)
    # XLA cannot compile the optimizers' cross-replica merge: one replica only.
    jit = cfg.xla and strategy.num_replicas_in_sync == 1
    with strategy.scope():
        generator, discriminator = build_models(model_cfg, policy)
        gan = CGAN(generator, discriminator, **gan_options(cfg, feeder.steps_per_epoch),
                   global_batch_size=cfg.batch_size, jit_compile=jit,
                   loss_scaling=policy == "mixed_float16", strategy=strategy)
        step = tf.Variable(0, dtype=tf.int64, name="step")
    return Run(cfg, model_cfg, gan, step, feeder, strategy, policy, jit)


# --- the run ---------------------------------------------------------------------------


def train(cfg: TrainConfig, log=print, progress: bool | None = None,
          evaluator=None) -> RunPaths:
    """Train a cGAN as configured, writing every output under ``cfg.outdir``.

    Every check comes first (folder, data, lock), and nothing is written or
    deleted before them. With ``cfg.eval_interval``, ``evaluator`` (default:
    the dataset's own: shipped, cached, or trained on first use) measures
    sample quality; it is ready before the networks are built, so its training
    cannot shift the run's random state.
    """
    from . import devices
    from .run_outputs import RunOutputs

    strategy = devices.make_strategy(cfg.strategy)  # first: multi-worker must precede other ops
    paths, chief = RunPaths(Path(cfg.outdir)), devices.is_chief(strategy)
    if chief:  # looks only; checked again under the lock
        run_folder.check_outdir(paths, resume=cfg.resume, overwrite=cfg.overwrite)
    stored = run_folder.read_config(paths.root) if cfg.resume else None
    dataset = load_data(cfg, stored)
    lock = run_folder.RunLock(paths.root) if chief else contextlib.nullcontext()
    with lock:
        if chief:
            run_folder.check_outdir(paths, resume=cfg.resume, overwrite=cfg.overwrite)
        quality = _quality_check(cfg, paths, dataset, evaluator, log) if chief else None
        run = build_run(cfg, dataset, strategy)
        outputs = RunOutputs(run, dataset, paths, log, chief=chief, quality=quality)
        outputs.start()  # restores, or (after --overwrite's deletion) writes config.json
        show = chief and (sys.stdout.isatty() if progress is None else progress)
        _loop(run, outputs, show)
    return paths


def _quality_check(cfg: TrainConfig, paths: RunPaths, dataset, evaluator, log):
    if cfg.eval_interval is None:
        return None
    from . import evaluation

    return evaluation.QualityTracker.for_run(dataset, paths, cfg.seed, evaluator, log,
                                             n_per_class=cfg.eval_per_class)


def _loop(run: Run, outputs, show_progress: bool) -> None:
    """Epoch after epoch: run the steps, check the losses, hand the epoch to the outputs."""
    with _SignalCatcher() as signals, outputs:
        for epoch in range(run.epoch_of(run.global_step), run.cfg.epochs + 1):
            started = time.perf_counter()
            rows = _run_epoch(run, epoch, signals, show_progress)
            seconds = time.perf_counter() - started
            _check_finite(rows, outputs)
            finished = run.global_step == epoch * run.feeder.steps_per_epoch
            outputs.epoch_done(epoch, rows, seconds, finished=finished)
            if signals.received:  # during the steps or while their files were written
                outputs.checkpoint_now(epoch)
                raise Interrupted(signals.received, outputs.paths.root, run.global_step)
        outputs.finish()


def _run_epoch(run: Run, epoch: int, signals, show_progress: bool) -> list[dict]:
    """The epoch's remaining steps; their numbers as history rows."""
    import keras

    total = run.feeder.steps_per_epoch
    skip = run.global_step - (epoch - 1) * total
    bar = keras.utils.Progbar(total, unit_name="step") if show_progress else None
    if bar:
        bar.update(skip)
    done: list[dict] = []
    in_flight: deque = deque()
    for batch in run.batches(epoch, skip):
        in_flight.append(run.gan.train_step(batch))
        # Reading a step's losses waits for it. Without that, memory grew by
        # gigabytes within an epoch in some runs (one was killed at 24 GB),
        # so at most STEPS_IN_FLIGHT steps run unread.
        if len(in_flight) > STEPS_IN_FLIGHT:
            done.append(_floats(in_flight.popleft()))
            if bar:
                bar.update(skip + len(done), [(k, done[-1][k]) for k in ("d_loss", "g_loss")])
        if signals.received:
            break
    done += [_floats(metrics) for metrics in in_flight]
    if bar and skip + len(done) < total:
        print(flush=True)  # stopped mid-epoch: end the bar's line
    elif bar:
        bar.update(total, [(k, done[-1][k]) for k in ("d_loss", "g_loss")] if done else None)
    first = run.global_step + 1
    run.step.assign_add(len(done))  # once per epoch, not a TF op on every step
    return [{"step": first + i, "epoch": epoch, **metrics} for i, metrics in enumerate(done)]


def _check_finite(rows: list[dict], outputs) -> None:
    for row in rows:
        if not all(math.isfinite(row[k]) for k in ("d_loss", "g_loss")):
            raise UserError(
                f"losses became non-finite at epoch {row['epoch']}, step {row['step']} "
                f"(d_loss {row['d_loss']}, g_loss {row['g_loss']}); nothing was saved after "
                f"the last good checkpoint ({outputs.latest_checkpoint() or 'none yet'}); "
                "lower --lr or change --seed")


def _floats(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items()}


class _SignalCatcher:
    """While active, SIGINT/SIGTERM set ``received`` instead of killing the process."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received = 0
        self._previous = {}

    def _handle(self, signum, frame):
        self.received = signum

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False
