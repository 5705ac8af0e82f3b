"""Drawing labelled samples from a trained generator (library side of cgan-generate)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import outputs
from .errors import UserError

GENERATE_BATCH = 1000
ROW_PER_CLASS_MAX = 30  # --digit all: one row per class up to this many samples per class


@dataclass(frozen=True)
class GenerateRequest:
    classes: tuple[int, ...]   # the classes to draw, e.g. (7,) or (0, ..., 9)
    n: int                     # samples per class
    model: Path
    png: Path
    npz: Path | None
    seed: int


def model_path(outdir: str | None, model: str | None) -> Path:
    return Path(model) if model else Path(outdir or ".") / "generator.keras"


def load_generator(path: Path):
    """Load a saved generator, or raise a UserError that says what to do."""
    if not path.is_file():
        raise UserError(f"no trained generator at {path}; train one with cgan-train "
                        "or point --outdir/--model at one")
    import keras

    try:
        generator = keras.models.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - any failure here means an unusable file
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise UserError(f"cannot load {path} ({reason}); it is corrupt or not a Keras model: "
                        "retrain with cgan-train or pass another --model") from None
    shapes = [tuple(t.shape[1:]) for t in generator.inputs]
    if len(shapes) != 2 or tuple(generator.outputs[0].shape[1:]) != (28, 28, 1):
        raise UserError(f"{path} is not a cgan-mnist generator (inputs {shapes}); "
                        "pass the generator.keras that cgan-train wrote")
    return generator


def sample(generator, classes, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of each class in ``classes``: images (N, 28, 28, 1) in [-1, 1], labels (N,)."""
    latent_dim = int(generator.inputs[0].shape[-1])
    num_classes = int(generator.inputs[1].shape[-1])
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise UserError(f"class {bad[0]} is outside this generator's 0..{num_classes - 1}; "
                        "pick a --digit in that range")
    labels = np.repeat(np.asarray(classes, dtype=np.int64), n)
    noise = np.random.default_rng(seed).standard_normal((len(labels), latent_dim))
    onehot = np.eye(num_classes, dtype=np.float32)[labels]
    chunks = [generator([noise[i:i + GENERATE_BATCH].astype(np.float32),
                         onehot[i:i + GENERATE_BATCH]], training=False)
              for i in range(0, len(labels), GENERATE_BATCH)]
    return np.concatenate([np.asarray(c) for c in chunks]), labels


def grid_columns(num_classes_drawn: int, n: int) -> int:
    """One row per class when that stays readable, else a near-square grid."""
    if num_classes_drawn > 1 and n <= ROW_PER_CLASS_MAX:
        return n
    return math.ceil(math.sqrt(num_classes_drawn * n))


def generate(request: GenerateRequest) -> list[Path]:
    """Draw the samples and write the PNG grid (and the .npz); return the paths written."""
    generator = load_generator(request.model)
    images, labels = sample(generator, request.classes, request.n, request.seed)
    written = [outputs.save_grid(request.png, images, grid_columns(len(request.classes),
                                                                     request.n))]
    if request.npz is not None:
        written.append(outputs.save_samples_npz(request.npz, images, labels))
    return written
