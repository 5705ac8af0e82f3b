"""TensorBoard event files of a run (``cgan-train --tensorboard``), under ``<outdir>/logs``.

``tensorboard --logdir <outdir>/logs`` then shows, while the run goes on:

* per step, the four numbers of history.csv: ``loss/d_loss``, ``loss/g_loss``,
  ``D/d_real`` (D(x)) and ``D/d_fake`` (D(G(z))). Per step rather than per
  epoch mean because GAN losses swing from step to step and TensorBoard's
  smoothing slider is made for that; the values are the ones the epoch loop
  has already fetched for history.csv, and one compiled call writes a whole
  epoch of them, so this costs no extra device syncs and a few milliseconds;
* per epoch, ``speed/images_per_second`` and ``learning_rate/generator`` /
  ``learning_rate/discriminator`` (read from the optimizers);
* at each sample interval, ``samples/fixed_noise``: the same PNG as
  ``generated/epoch_NNNN.png`` (row r = class r; the description names the rows);
* anything else a caller logs with ``scalars(step, {tag: value})``.

The records are written with ``tf.summary.write`` and the same plugin metadata
that TensorBoard's own ``tf.summary.scalar``/``image`` use, so writing needs
no ``tensorboard`` package (TensorFlow 2.20+ no longer installs it); viewing
does: ``pip install tensorboard``.

Every number is logged at its global step, so a resumed run continues the same
step axis. Records after the step a run resumes from (written after its last
checkpoint, before a crash) are removed first, so no step appears twice.
``NoBoard`` is what a run without ``--tensorboard`` gets: its methods do
nothing and TensorFlow's summary machinery is never touched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import outputs
from .run_folder import STEP_METRICS

STEP_TAGS = {name: f"{'loss' if name.endswith('_loss') else 'D'}/{name}" for name in STEP_METRICS}
DESCRIPTIONS = {
    "loss/d_loss": "discriminator loss (binary cross-entropy, real + fake), per step",
    "loss/g_loss": "generator loss (non-saturating binary cross-entropy), per step",
    "D/d_real": "D(x): the discriminator's mean probability that real images are real",
    "D/d_fake": "D(G(z)): the discriminator's mean probability that generated images are real",
    "speed/images_per_second": "training images per second over the epoch",
    "learning_rate/generator": "Adam learning rate of the generator",
    "learning_rate/discriminator": "Adam learning rate of the discriminator",
}
SAMPLES_TAG = "samples/fixed_noise"
EVENT_FILE_MARK = "tfevents"  # TensorBoard reads the files whose names contain this


def open_board(enabled: bool, logdir: Path, resume_step: int | None = None):
    """A ``Board`` writing under ``logdir``, or a ``NoBoard`` when ``enabled`` is false."""
    return Board(logdir, resume_step) if enabled else NoBoard()


class NoBoard:
    """The board of a run without --tensorboard: every call is free."""

    enabled = False

    def steps(self, rows: list[dict]) -> None:
        pass

    def scalars(self, step: int, values: dict) -> None:
        pass

    def image(self, step: int, tag: str, image: np.ndarray, description: str = "") -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Board(NoBoard):
    """Writes scalars and images as TensorBoard event files in one folder."""

    enabled = True

    def __init__(self, logdir: Path, resume_step: int | None = None):
        import tensorflow as tf

        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            trim(self.logdir, resume_step)
        self._writer = tf.summary.create_file_writer(str(self.logdir))
        self._series = _series_writer([STEP_TAGS[k] for k in STEP_TAGS])

    def steps(self, rows: list[dict]) -> None:
        """The per-step metrics of history rows (``step`` and the STEP_TAGS keys)."""
        if not rows:
            return
        import tensorflow as tf

        steps = np.array([r["step"] for r in rows], dtype=np.int64)
        values = np.array([[r[k] for k in STEP_TAGS] for r in rows], dtype=np.float32)
        with self._writer.as_default():
            self._series(tf.constant(steps), tf.constant(values))
        self.flush()

    def scalars(self, step: int, values: dict) -> None:
        """One value per tag at ``step``; the generic entry point (e.g. quality metrics)."""
        import tensorflow as tf

        with self._writer.as_default():
            for tag, value in values.items():
                tf.summary.write(tag, tf.constant(float(value), tf.float32), step=int(step),
                                 metadata=_metadata("scalars", DESCRIPTIONS.get(tag, "")))
        self.flush()

    def image(self, step: int, tag: str, image: np.ndarray, description: str = "") -> None:
        """A uint8 (H, W) or (H, W, C) image, stored as PNG like TensorBoard's image summary."""
        import tensorflow as tf

        height, width = image.shape[:2]
        record = tf.constant([str(width).encode(), str(height).encode(),
                              outputs.encode_png(image)])
        with self._writer.as_default():
            tf.summary.write(tag, record, step=int(step),
                             metadata=_metadata("images", description))
        self.flush()

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _metadata(plugin: str, description: str = ""):
    """The SummaryMetadata TensorBoard's own summaries carry (scalars / images plugin)."""
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(summary_description=description)
    metadata.plugin_data.plugin_name = plugin
    return metadata


def _series_writer(tags: list[str]):
    """A compiled function writing values (N, len(tags)) at steps (N,): one call per epoch."""
    import tensorflow as tf

    metadata = [_metadata("scalars", DESCRIPTIONS.get(tag, "")).SerializeToString()
                for tag in tags]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64),
                                  tf.TensorSpec([None, len(tags)], tf.float32)])
    def write(steps, values):
        for i in tf.range(tf.shape(steps)[0]):
            for j, tag in enumerate(tags):
                tf.summary.write(tag, values[i, j], step=steps[i], metadata=metadata[j])

    return write


# --- reading and trimming event files ----------------------------------------------


def event_files(logdir: Path) -> list[Path]:
    """The event files in ``logdir``, in the order TensorBoard reads them (by name)."""
    logdir = Path(logdir)
    if not logdir.is_dir():
        return []
    return sorted(p for p in logdir.iterdir()
                  if EVENT_FILE_MARK in p.name and not p.name.startswith(".") and p.is_file())


def read_events(path: Path) -> list:
    """The Event protos of one file; a record cut off by a crash ends the list quietly."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    events = []
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            events.append(event_pb2.Event.FromString(record.numpy()))
    except tf.errors.DataLossError:
        pass
    return events


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar under ``logdir``: tag -> [(step, value), ...] in file order."""
    from tensorflow.python.framework import tensor_util

    found: dict[str, list[tuple[int, float]]] = {}
    for path in event_files(logdir):
        for event in read_events(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars" or value.HasField("simple_value"):
                    number = (value.simple_value if value.HasField("simple_value")
                              else float(tensor_util.MakeNdarray(value.tensor)))
                    found.setdefault(value.tag, []).append((event.step, number))
    return found


def trim(logdir: Path, last_step: int) -> list[Path]:
    """Drop the records after ``last_step`` from the event files in ``logdir``.

    A run resumed from its checkpoint at ``last_step`` logs those steps again;
    without this, TensorBoard would show them twice. Files that need no change
    are left alone; the others are rewritten whole and renamed into place.
    Returns the files rewritten.
    """
    import tensorflow as tf

    rewritten = []
    for path in event_files(logdir):
        events = read_events(path)
        kept = [e for e in events if not (e.step > last_step and e.HasField("summary"))]
        if len(kept) == len(events) and _complete(path, events):
            continue
        with outputs.atomic_path(path, suffix=".tmp") as tmp:
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for event in kept:
                    writer.write(event.SerializeToString())
        rewritten.append(path)
    return rewritten


def _complete(path: Path, events: list) -> bool:
    """Whether the file holds exactly these records (no cut-off record at its end)."""
    # Each TFRecord: 8-byte length, 4-byte CRC, data, 4-byte CRC.
    return path.stat().st_size == sum(16 + len(e.SerializeToString()) for e in events)
