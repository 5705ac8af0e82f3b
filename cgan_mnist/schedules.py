"""The learning-rate schedule of ``--lr-decay``: constant, then linearly down to 0."""

from __future__ import annotations

import keras
import tensorflow as tf


class LinearDecayTail(keras.optimizers.schedules.LearningRateSchedule):
    """``rate`` until the last ``fraction`` of ``total_steps``, then linearly down to 0
    at ``total_steps``. A function of the optimizer's step count only, which the
    checkpoint holds, so a resumed run continues the schedule exactly."""

    def __init__(self, rate: float, total_steps: int, fraction: float):
        self.rate, self.total_steps, self.fraction = float(rate), int(total_steps), float(fraction)

    def __call__(self, step):
        left = (self.total_steps - tf.cast(step, tf.float32)) / (self.fraction * self.total_steps)
        return self.rate * tf.clip_by_value(left, 0.0, 1.0)

    def get_config(self) -> dict:
        return {"rate": self.rate, "total_steps": self.total_steps, "fraction": self.fraction}


def rate_schedule(lr: float, decay: float, total_steps: int | None):
    """A constant rate (a float, as before the option) or, with ``decay``, its schedule."""
    return LinearDecayTail(lr, total_steps, decay) if decay else lr
