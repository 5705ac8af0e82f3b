"""The run folder: its layout, its one writer, and the formats of the files in it.

This module is the only owner of a run's folder. It knows

* the layout (``RunPaths``): config.json, history.csv, quality.csv,
  generator.keras, log.txt, checkpoints/, logs/, generated/, plots/;
* config.json: written by ``write_config``, read by ``read_config`` (for
  resuming, cgan-generate, cgan-eval and the scripts alike), a damaged file
  being one clear error;
* the schemas of history.csv (``STEP_METRICS`` are the training step's
  numbers) and quality.csv;
* the lock (``RunLock``): one cgan-train per folder;
* what ``--overwrite`` may delete (``remove_run``).

Pure Python (no TensorFlow), so the CLI can use it before TensorFlow starts.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import outputs
from .errors import UserError

STEP_METRICS = ("d_loss", "g_loss", "d_real", "d_fake")  # what the training step returns
HISTORY_FIELDS = ("step", "epoch", *STEP_METRICS)
QUALITY_METRICS = ("conditional_accuracy", "frechet_distance", "frechet_distance_class_mean",
                   "classifier_score", "precision", "recall")
QUALITY_FIELDS = ("epoch", "step", *QUALITY_METRICS)
LOCK_NAME = ".lock"


@dataclass(frozen=True)
class RunPaths:
    """Where a run keeps its files."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    generated = property(lambda self: self.root / "generated")
    plots = property(lambda self: self.root / "plots")
    checkpoints = property(lambda self: self.root / "checkpoints")
    log_file = property(lambda self: self.root / "log.txt")
    tensorboard_logs = property(lambda self: self.root / "logs")
    config = property(lambda self: self.root / "config.json")
    history = property(lambda self: self.root / "history.csv")
    generator = property(lambda self: self.root / "generator.keras")
    quality = property(lambda self: self.root / "quality.csv")
    lock = property(lambda self: self.root / LOCK_NAME)
    losses_plot = property(lambda self: self.plots / "losses.png")
    quality_plot = property(lambda self: self.plots / "quality.png")
    confusion_plot = property(lambda self: self.plots / "confusion.png")
    progress_gif = property(lambda self: self.generated / "progress.gif")

    def epoch_grid(self, epoch: int) -> Path:
        return self.generated / f"epoch_{epoch:04d}.png"

    def epoch_grids(self) -> list[Path]:
        return sorted(self.generated.glob("epoch_[0-9][0-9][0-9][0-9].png"))

    def holds_run(self) -> bool:
        return self.config.exists() or self.checkpoints.exists()

    def run_files(self) -> list[Path]:
        """Every file and folder a run writes, that --overwrite may remove."""
        return [self.checkpoints, self.tensorboard_logs, self.config, self.history,
                self.generator, self.quality, self.log_file, self.losses_plot,
                self.quality_plot, self.confusion_plot, self.progress_gif, *self.epoch_grids()]


def for_model(model: str | os.PathLike) -> RunPaths:
    """The run folder a generator.keras lies in."""
    return RunPaths(Path(model).parent)


# --- checks and the one writer ----------------------------------------------------------


def check_outdir(paths: RunPaths, *, resume: bool, overwrite: bool) -> None:
    """Refuse a folder the run cannot start in; looks, touches nothing
    (also what ``cgan-train --dry-run`` checks)."""
    if paths.root.exists() and not paths.root.is_dir():
        raise UserError(f"--outdir {paths.root} is a file, not a folder; choose another --outdir")
    if paths.holds_run() and not (resume or overwrite):
        raise UserError(f"{paths.root} already holds a run; pass --resume to continue it, "
                        "--overwrite to replace it, or choose another --outdir")
    if resume and not paths.checkpoints.is_dir():
        raise UserError(f"--resume: no checkpoints in {paths.checkpoints}; "
                        "start a new run in another --outdir")


class RunLock:
    """An exclusive OS lock on ``<root>/.lock`` for a training run's whole life.

    ``flock`` locks die with the process, so a crash or ``kill -9`` never
    leaves a stale lock. The file holds the owner's pid, for the message a
    second cgan-train prints. Readers (cgan-generate, cgan-eval) take no lock:
    every file is written whole and renamed into place.
    """

    def __init__(self, root: Path):
        self.path = Path(root) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise UserError(f"{self.path.parent} is in use by another cgan-train (pid {holder}); "
                            "wait for it to finish, or choose another --outdir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def remove_run(paths: RunPaths) -> list[Path]:
    """Delete a previous run's files (``--overwrite``): only the files a run writes,
    and never through a symbolic link that leads out of the run folder (the link
    itself is removed, what it points to stays). Returns what was removed."""
    root = paths.root.resolve()
    removed = []
    for path in paths.run_files():
        if not (path.exists() or path.is_symlink()):
            continue
        if not _inside(path.parent.resolve(), root):
            continue  # e.g. generated/ is a link to a folder elsewhere: not the run's to delete
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path)
    return removed


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


# --- config.json ----------------------------------------------------------------------


def write_config(paths: RunPaths, options: dict, run_info: dict) -> Path:
    """config.json: the run's options at the top level, what it ran on under "run"."""
    return outputs.write_json(paths.config, {**options, "run": run_info})


def read_config(root: str | os.PathLike) -> dict | None:
    """A run folder's config.json as a dict; None when there is none.

    A file that is not a JSON object is one UserError that names it; the
    values are checked where they are used (``config.validate_train_options``).
    """
    path = Path(root) / "config.json"
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path} ({_first_line(err)}); it is damaged: restore it "
                        "from a backup, or start a new run in another --outdir") from None
    if not isinstance(stored, dict):
        raise UserError(f"{path} is not a cgan-train config (not a JSON object); restore it "
                        "from a backup, or start a new run in another --outdir")
    return stored


def run_section(stored: dict | None, *keys: str):
    """``stored["run"][keys[0]][keys[1]]...``, or None where any level is missing or not a dict."""
    value = stored.get("run") if isinstance(stored, dict) else None
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def class_names(stored: dict | None) -> tuple[str, ...] | None:
    """The class names a run recorded; None when absent or malformed (old runs: digits)."""
    names = run_section(stored, "data", "class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return None
    return tuple(names)


def recorded_data(stored: dict | None) -> tuple[str | None, str | None]:
    """(path, content fingerprint) of the data a run trained on; None for what it lacks."""
    path, fingerprint = run_section(stored, "data", "path"), run_section(stored, "data",
                                                                          "fingerprint")
    return (path if isinstance(path, str) else None,
            fingerprint if isinstance(fingerprint, str) else None)


def _first_line(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:160]


# --- history.csv and quality.csv -------------------------------------------------------


def write_history(path: str | os.PathLike, rows: list[dict]) -> Path:
    return _write_csv(path, HISTORY_FIELDS, rows)


def read_history(path: str | os.PathLike) -> list[dict]:
    return _read_csv(path, HISTORY_FIELDS)


def write_quality(path: str | os.PathLike, rows: list[dict]) -> Path:
    return _write_csv(path, QUALITY_FIELDS, rows)


def read_quality(path: str | os.PathLike) -> list[dict]:
    return _read_csv(path, QUALITY_FIELDS)


def _write_csv(path, fields: tuple[str, ...], rows: list[dict]) -> Path:
    """Rows as CSV with a header; floats with 6 significant digits."""
    lines = [",".join(fields)]
    lines += [",".join(f"{row[k]:.6g}" if isinstance(row[k], float) else str(row[k])
                       for k in fields) for row in rows]
    return outputs.write_text(path, "\n".join(lines) + "\n")


def _read_csv(path, fields: tuple[str, ...]) -> list[dict]:
    """Rows of a file written by ``_write_csv``; the first two fields are ints.

    A damaged file is a UserError: a run would otherwise resume with a history
    that silently lost rows."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [{k: (int(r[k]) if i < 2 else float(r[k])) for i, k in enumerate(fields)}
                    for r in csv.DictReader(f)]
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is damaged ({type(err).__name__}: {_first_line(err)}); "
                        "delete it to continue without the earlier rows") from None
