"""What a training run leaves in its folder, epoch by epoch.

``RunOutputs`` is the training loop's one callback object. At the start it
restores a resumed run (falling back to an older checkpoint when the newest is
damaged) or prepares a new one (``--overwrite``'s deletion happens here, after
every check passed); after each epoch it writes the history, the sample grid,
the quality check, TensorBoard records, the checkpoint and generator.keras at
their intervals, and logs the epoch's line; at the end the GIF and the final
config.json. Only the chief writes files; other workers keep their share of
each checkpoint in a scratch folder, as MultiWorkerMirroredStrategy requires.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np

from . import console, outputs, run_folder, tensorboard
from .errors import UserError
from .run_folder import STEP_METRICS, RunPaths

CHECKPOINTS_KEPT = 3


class RunOutputs:
    def __init__(self, run, dataset, paths: RunPaths, log, *, chief: bool = True, quality=None):
        import tensorflow as tf

        from .training import SAMPLE_COLUMNS, fixed_noise

        self.run, self.cfg, self.paths, self.chief = run, run.cfg, paths, chief
        self.log = log if chief else (lambda line: None)
        self.quality = quality
        self.history: list[dict] = []
        self.durations: list[float] = []
        self.saved_step: int | None = None  # the step of the last checkpoint written
        self.columns = SAMPLE_COLUMNS
        self.sample_inputs = fixed_noise(self.cfg.seed, self.cfg.latent_dim, dataset.num_classes)
        self.scratch = None if chief else Path(tempfile.mkdtemp(prefix="cgan-worker-"))
        checkpoint = tf.train.Checkpoint(step=run.step, **run.gan.checkpoint_items())
        self.manager = tf.train.CheckpointManager(checkpoint, str(self.scratch or paths.checkpoints),
                                                  max_to_keep=CHECKPOINTS_KEPT)
        gan = run.gan
        self.run_info = {
            "model": run.model_cfg.to_dict(),
            "data": {**dataset.identity(), "train_examples": run.feeder.num_examples,
                     "steps_per_epoch": run.feeder.steps_per_epoch},
            "params": {"generator": gan.generator.count_params(),
                       "discriminator": gan.discriminator.count_params()},
            "training_flops_per_image": run.flops_per_image,
            "devices": {"replicas": run.strategy.num_replicas_in_sync, "xla": run.xla,
                        "dtype_policy": run.dtype_policy or "float32"},
        }
        self.board_rows = "rows: " + ", ".join(f"{i} {n}" for i, n in
                                               enumerate(dataset.class_names))
        self.board = tensorboard.NoBoard()

    # -- start and end ------------------------------------------------------------------

    def start(self) -> None:
        """Restore a resumed run, or clear (--overwrite) and set up the folder of a new one."""
        if self.chief and self.cfg.overwrite:  # everything was checked: now it may delete
            run_folder.remove_run(self.paths)
        if self.chief:
            for folder in (self.paths.root, self.paths.generated, self.paths.plots):
                folder.mkdir(parents=True, exist_ok=True)
            console.attach(self.log, self.paths.log_file)  # log.txt, for a console.RunLog
        if self.cfg.resume:
            self._restore()
        elif self.chief:
            self.write_config()
        self.board = tensorboard.open_board(  # only the chief writes, as with every output
            self.cfg.tensorboard and self.chief, self.paths.tensorboard_logs,
            self.run.global_step if self.cfg.resume else None)

    def __enter__(self):
        self.board.__enter__()
        return self

    def __exit__(self, *exc):
        self.board.__exit__(*exc)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        return False

    def finish(self) -> None:
        if not self.chief:
            return
        grids = self.paths.epoch_grids()
        if grids:
            outputs.save_gif(self.paths.progress_gif, [outputs.read_png(p) for p in grids])
        self.write_config(finished_step=self.run.global_step, finished_epochs=self.cfg.epochs)
        console.final(self.log, f"done: outputs in {self.paths.root.resolve()}")

    def write_config(self, **extra) -> None:
        run_folder.write_config(self.paths, self.cfg.to_dict(), {**self.run_info, **extra})

    # -- after each epoch ---------------------------------------------------------------

    def epoch_done(self, epoch: int, rows: list[dict], seconds: float, *,
                   finished: bool = True) -> None:
        """An epoch's steps ran (all of them, or up to a signal): record and save what is due."""
        self.history += rows
        self.durations.append(seconds)
        self._to_board(rows, seconds)
        if not finished:  # stopped inside the epoch: a checkpoint, but no epoch grid or line
            self._save(epoch, samples=False, checkpoint=True)
            return
        self.log(self._epoch_line(epoch, rows))
        final = epoch == self.cfg.epochs
        if self.quality and (epoch % self.cfg.eval_interval == 0 or final):
            # Before the checkpoint: a crash in between loses no row that resume keeps.
            self.quality.record(epoch, self.run.global_step, self.run.gan.sampler)
        self._save(epoch, samples=epoch % self.cfg.sample_interval == 0 or final,
                   checkpoint=epoch % self.cfg.checkpoint_interval == 0 or final)

    def checkpoint_now(self, epoch: int) -> None:
        """A checkpoint (and the history) at the current step, unless one was just written."""
        if self.saved_step != self.run.global_step:
            self._save(epoch, samples=False, checkpoint=True)

    def _epoch_line(self, epoch: int, rows: list[dict]) -> str:
        means = {k: np.mean([r[k] for r in rows]) for k in STEP_METRICS}
        speed = len(rows) * self.cfg.batch_size / self.durations[-1]
        steady = self.durations[1:] or self.durations  # the first epoch includes compiling
        eta = (self.cfg.epochs - epoch) * float(np.mean(steady[-3:]))
        return (f"epoch {epoch:>3}/{self.cfg.epochs}  d_loss {means['d_loss']:.3f}  "
                f"g_loss {means['g_loss']:.3f}  D(x) {means['d_real']:.3f}  "
                f"D(G(z)) {means['d_fake']:.3f}  {speed:,.0f} img/s  "
                f"elapsed {_clock(sum(self.durations))}  eta {_clock(eta)}")

    def _to_board(self, rows: list[dict], seconds: float) -> None:
        """The epoch's steps, speed and learning rates to TensorBoard (nothing without it)."""
        if not (self.board.enabled and rows):
            return
        self.board.steps(rows)
        self.board.scalars(rows[-1]["step"], {
            "speed/images_per_second": len(rows) * self.cfg.batch_size / seconds,
            **{f"learning_rate/{net}": lr for net, lr in self.run.gan.learning_rates().items()}})

    def _save(self, epoch: int, *, samples: bool, checkpoint: bool) -> None:
        # on every worker: saving is a collective operation
        saved = self._save_checkpoint() if checkpoint else None
        if not self.chief or not (samples or checkpoint):
            return
        written = [run_folder.write_history(self.paths.history, self.history)]
        step = self.run.global_step
        if samples:
            images = self.run.gan.generate(*self.sample_inputs).numpy()
            grid = outputs.make_grid(images, cols=self.columns)
            written.append(outputs.save_png(self.paths.epoch_grid(epoch), grid))
            self.board.image(step, tensorboard.SAMPLES_TAG, grid, self.board_rows)
            written.append(outputs.plot_losses(self.paths.losses_plot, self.history))
        if checkpoint:
            from .models import portable_generator

            generator = portable_generator(self.run.gan.sampler, self.run.model_cfg,
                                           self.run.dtype_policy)
            with outputs.atomic_path(self.paths.generator, suffix=".keras") as tmp:
                generator.save(tmp)
            written += [saved, self.paths.generator]
        console.detail(self.log, f"  step {step}: wrote " + ", ".join(
            os.path.relpath(p, self.paths.root) for p in written))

    # -- checkpoints --------------------------------------------------------------------

    def latest_checkpoint(self) -> str | None:
        return self.manager.latest_checkpoint

    def _save_checkpoint(self) -> Path:
        import tensorflow as tf

        try:
            prefix = self.manager.save(checkpoint_number=self.run.global_step)
        except tf.errors.OpError as err:  # TensorFlow reports I/O failures its own way
            _remove_unfinished(Path(self.manager.directory))
            message = err.message.splitlines()[0]
            code = errno.ENOSPC if "space left" in message.lower() else errno.EIO
            raise OSError(code, message, str(self.paths.checkpoints)) from None
        self.saved_step = self.run.global_step
        return Path(prefix)

    def _restore(self) -> None:
        """The newest checkpoint that restores; older ones stand in for a damaged newest."""
        candidates = _checkpoints_newest_first(self.manager, self.paths.checkpoints)
        problems = []
        for prefix in candidates:
            status = None
            try:
                status = self.manager.checkpoint.restore(prefix)
                status.assert_existing_objects_matched()
            except Exception as err:  # noqa: BLE001 - any restore failure is the file's fault
                if status is not None:
                    status.expect_partial()  # no "unresolved object" warnings at exit
                problems.append(f"{Path(prefix).name} ({type(err).__name__})")
                continue
            break
        else:
            found = "; ".join(problems) or "none found"
            raise UserError(f"--resume: no checkpoint in {self.paths.checkpoints} can be restored "
                            f"({found}); they are damaged or from another configuration: "
                            "start a new run in another --outdir")
        step = self.run.global_step
        if problems:
            self.log(f"checkpoint {', '.join(problems)} could not be restored; "
                     f"using the older {Path(prefix).name}")
        if self.paths.history.exists():
            self.history = [r for r in run_folder.read_history(self.paths.history)
                            if r["step"] <= step]
        if self.quality:
            self.quality.resume(completed_epochs=step // self.run.feeder.steps_per_epoch)
        self.log(f"resumed from {prefix} at step {step} (epoch {self.run.epoch_of(step)})")


def _checkpoints_newest_first(manager, folder: Path) -> list[str]:
    """Checkpoint prefixes by step, newest first: those the manager lists, else the files."""
    numbered = {}
    for index in Path(folder).glob("ckpt-*.index"):
        number = index.stem.rsplit("-", 1)[-1]
        if number.isdigit():
            numbered[int(number)] = str(index.with_suffix(""))
    listed = [p for p in manager.checkpoints if Path(p + ".index").exists()]
    return sorted(set(listed) | set(numbered.values()),
                  key=lambda p: int(Path(p).name.rsplit("-", 1)[-1]), reverse=True)


def _remove_unfinished(folder: Path) -> None:
    """What a failed checkpoint save leaves (TensorFlow writes ``ckpt-N_temp`` first)."""
    for partial in folder.glob("*_temp*"):
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)


def _clock(seconds: float) -> str:
    """h:mm:ss, the way ``datetime.timedelta`` prints whole seconds."""
    return str(timedelta(seconds=round(seconds)))
