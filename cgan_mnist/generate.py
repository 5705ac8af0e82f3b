"""Drawing labelled samples from a trained generator (library side of cgan-generate).

Three modes, all from fixed seeds so the same request gives the same files:

* ``draw``: ``n`` samples of one class, or of every class (one row each);
* ``interpolate``: morph from class A to class B, the noise held fixed and the
  label input blended from one-hot A to one-hot B (the generator takes any
  vector there, not only one-hot ones);
* ``latent_walk``: one class, the noise walking smoothly through a few random
  points and back to the first (spherical interpolation), so the GIF loops.

Images go to PNG/GIF (optionally enlarged ``scale`` times, nearest neighbour),
arrays to .npz. Class names come from the run's config.json (``run_folder.class_names``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import outputs
from .errors import UsageError, UserError

GENERATE_BATCH = 1000
ROW_PER_CLASS_MAX = 30  # --digit all: one row per class up to this many samples per class
INTERPOLATION_STEPS = 10  # frames from A to B (both ends included)
WALK_POINTS = 4           # random noise points a latent walk passes through
WALK_FRAMES_PER_LEG = 12  # frames between two of them
SECONDS_PER_FRAME = {"interpolate": 0.15, "latent_walk": 0.08}
MAX_ANIMATED = 100  # --interpolate / --latent-walk: rows (walks) per frame
MAX_SCALE = 16      # --scale
MIN_WIDTH = 256     # pixels across that images are enlarged to by default


@dataclass(frozen=True)
class GenerateRequest:
    classes: tuple[int, ...]   # draw: the classes, e.g. (7,) or (0, ..., 9); interpolate: (A, B)
    n: int                     # samples per class (draw), or parallel rows/walks (animations)
    model: Path
    png: Path | None           # None: no PNG (--format npz)
    npz: Path | None           # None: no .npz
    seed: int
    mode: str = "draw"
    gif: Path | None = None    # interpolate / latent_walk: the animation
    scale: int | None = None   # nearest-neighbour enlargement of PNG and GIF; None: auto
    class_names: tuple[str, ...] | None = None  # for the row labels of --digit all


def model_path(outdir: str | None, model: str | None) -> Path:
    return Path(model) if model else Path(outdir or ".") / "generator.keras"


def class_of(text, names, flag: str = "--digit", allow_all: bool = True) -> tuple[int, str]:
    """A class given by number or by name -> (its index, a file-name-safe spelling of it).

    Names match ignoring case, with '_' or '-' for spaces ("ankle_boot"), and a
    name of several parts matches each part ("T-shirt/top": "t-shirt", "top").
    Raises a UsageError that lists the choices (``flag`` says which option).
    """
    from .data import normalize_class_name

    text = str(text).strip()
    if re.fullmatch(r"[+-]?[0-9]+", text):  # a number is a class index, never a name
        if text.isdigit() and int(text) < len(names):
            return int(text), str(int(text))
        wanted = ""
    else:
        wanted = normalize_class_name(text)
    for index, name in enumerate(names):
        full = normalize_class_name(name)
        if full.isdigit():  # numbered classes answer to their number only ("_3_" is no 3)
            continue
        if wanted and wanted in {full, *(normalize_class_name(p) for p in name.split("/"))}:
            return index, re.sub(r"[^a-z0-9]+", "_", full).strip("_") or str(index)
    choices = f"0..{len(names) - 1}"
    named = [normalize_class_name(n) for i, n in enumerate(names)
             if normalize_class_name(n) != str(i)]
    if named:
        choices += f", a class name of this run ({', '.join(named[:10])}"
        choices += ", ...)" if len(named) > 10 else ")"
    if allow_all:
        choices += " or 'all'"
    raise UsageError(f"{flag} must be {choices}, got {text!r}")


def load_generator(path: Path):
    """Load a saved generator, or raise a UserError that says what to do."""
    if not path.is_file():
        raise UserError(f"no trained generator at {path}; train one with cgan-train "
                        "or point --outdir/--model at one")
    import keras

    from .models import CUSTOM_LAYERS

    try:  # generator.keras holds built-in layers only; other files may hold ours
        generator = keras.models.load_model(path, compile=False, custom_objects=CUSTOM_LAYERS)
    except Exception as err:  # noqa: BLE001 - any failure here means an unusable file
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise UserError(f"cannot load {path} ({reason}); it is corrupt or not a Keras model: "
                        "retrain with cgan-train or pass another --model") from None
    shapes = [tuple(t.shape[1:]) for t in generator.inputs]
    if len(shapes) != 2 or tuple(generator.outputs[0].shape[1:]) != (28, 28, 1):
        raise UserError(f"{path} is not a cgan-mnist generator (inputs {shapes}); "
                        "pass the generator.keras that cgan-train wrote")
    return generator


def _dims(generator) -> tuple[int, int]:
    return int(generator.inputs[0].shape[-1]), int(generator.inputs[1].shape[-1])


def _check_classes(classes, num_classes: int) -> None:
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise UserError(f"class {bad[0]} is outside this generator's 0..{num_classes - 1}; "
                        "pick a --digit in that range")


def run_generator(generator, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28, 1) in [-1, 1] for noise (N, latent) and label vectors (N, classes)."""
    images = generator.predict([noise.astype(np.float32), labels.astype(np.float32)],
                               batch_size=GENERATE_BATCH, verbose=0)
    return np.asarray(images, dtype=np.float32)


def sample(generator, classes, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of each class in ``classes``: images (N, 28, 28, 1) in [-1, 1], labels (N,)."""
    latent_dim, num_classes = _dims(generator)
    _check_classes(classes, num_classes)
    labels = np.repeat(np.asarray(classes, dtype=np.int64), n)
    noise = np.random.default_rng(seed).standard_normal((len(labels), latent_dim))
    onehot = np.eye(num_classes, dtype=np.float32)[labels]
    return run_generator(generator, noise, onehot), labels


def interpolate(generator, a: int, b: int, n: int, seed: int,
                steps: int = INTERPOLATION_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Morph class ``a`` into ``b``: images (steps, n, 28, 28, 1), label vectors (steps, classes).

    Each of the ``n`` noise vectors is held fixed while the label input moves
    in a straight line from one-hot ``a`` to one-hot ``b``.
    """
    latent_dim, num_classes = _dims(generator)
    _check_classes((a, b), num_classes)
    noise = np.random.default_rng(seed).standard_normal((n, latent_dim))
    eye = np.eye(num_classes, dtype=np.float32)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    blends = (1 - t) * eye[a] + t * eye[b]
    images = run_generator(generator, np.tile(noise, (steps, 1)), np.repeat(blends, n, axis=0))
    return images.reshape(steps, n, *images.shape[1:]), blends


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between vectors ``a`` and ``b`` (rows), at fraction ``t``.

    Gaussian noise lives near a sphere; a straight line between two points cuts
    through its low-density inside, where samples look washed out. Falls back
    to a straight line when the vectors are (nearly) parallel.
    """
    unit_a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    unit_b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    omega = np.arccos(np.clip((unit_a * unit_b).sum(-1, keepdims=True), -1.0, 1.0))
    sin = np.sin(omega)
    safe = np.where(sin < 1e-6, 1.0, sin)
    curved = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / safe
    return np.where(sin < 1e-6, (1 - t) * a + t * b, curved)


def latent_walk(generator, cls: int, n: int, seed: int, points: int = WALK_POINTS,
                frames_per_leg: int = WALK_FRAMES_PER_LEG) -> tuple[np.ndarray, np.ndarray]:
    """``n`` parallel walks for class ``cls``: images (frames, n, 28, 28, 1), labels (frames, classes).

    Each walk passes through ``points`` random noise vectors and returns to the
    first, ``frames_per_leg`` frames per leg; the last frame is one step short
    of the first, so the animation loops without a stutter.
    """
    latent_dim, num_classes = _dims(generator)
    _check_classes((cls,), num_classes)
    stops = np.random.default_rng(seed).standard_normal((points, n, latent_dim))
    noise = [slerp(stops[k], stops[(k + 1) % points], i / frames_per_leg)
             for k in range(points) for i in range(frames_per_leg)]
    frames = len(noise)
    labels = np.tile(np.eye(num_classes, dtype=np.float32)[cls], (frames, 1))
    images = run_generator(generator, np.concatenate(noise), np.repeat(labels, n, axis=0))
    return images.reshape(frames, n, *images.shape[1:]), labels


def grid_columns(num_classes_drawn: int, n: int) -> int:
    """One row per class when that stays readable, else a near-square grid."""
    if num_classes_drawn > 1 and n <= ROW_PER_CLASS_MAX:
        return n
    return math.ceil(math.sqrt(num_classes_drawn * n))


def generate(request: GenerateRequest) -> list[Path]:
    """Make the files the request asks for; return the paths written."""
    generator = load_generator(request.model)
    if request.mode == "interpolate":
        return _write_animation(request, *interpolate(generator, *request.classes, request.n,
                                                      request.seed))
    if request.mode == "latent_walk":
        return _write_animation(request, *latent_walk(generator, request.classes[0], request.n,
                                                      request.seed))
    images, labels = sample(generator, request.classes, request.n, request.seed)
    written = []
    if request.png is not None:
        cols = grid_columns(len(request.classes), request.n)
        grid = outputs.make_grid(images, cols)
        if cols == request.n and len(request.classes) > 1 and request.class_names:
            grid = outputs.label_rows(grid, [request.class_names[c] for c in request.classes])
        written.append(outputs.save_png(request.png, _enlarged(grid, request.scale)))
    if request.npz is not None:
        written.append(outputs.save_samples_npz(request.npz, images, labels, request.class_names))
    return written


def _enlarged(image: np.ndarray, scale: int | None) -> np.ndarray:
    """``image`` enlarged ``scale`` times; by default enough to be MIN_WIDTH pixels across."""
    if scale is None:
        scale = min(MAX_SCALE, max(1, math.ceil(MIN_WIDTH / image.shape[1])))
    return outputs.upscale(image, scale)


def _write_animation(request: GenerateRequest, images: np.ndarray,
                     label_vectors: np.ndarray) -> list[Path]:
    """GIF (a grid of the ``n`` rows per frame), PNG strip (row = one noise, column = one
    frame) and/or .npz (images uint8 (frames, n, 28, 28), label_vectors (frames, classes))."""
    frames, n = images.shape[:2]
    written = []
    if request.gif is not None:
        cols = math.ceil(math.sqrt(n))
        grids = [_enlarged(outputs.make_grid(frame, cols), request.scale) for frame in images]
        if request.mode == "interpolate":  # there and back again, pausing at both ends
            grids = [grids[0]] * 3 + grids + [grids[-1]] * 3 + grids[-2:0:-1]
        written.append(outputs.save_gif(request.gif, grids, SECONDS_PER_FRAME[request.mode],
                                        hold_last=0))
    if request.png is not None:
        strip = outputs.make_grid(images.transpose(1, 0, 2, 3, 4).reshape(-1, 28, 28, 1),
                                  cols=frames)
        written.append(outputs.save_png(request.png, _enlarged(strip, request.scale)))
    if request.npz is not None:
        written.append(outputs.write_npz(request.npz, images=outputs.to_uint8(images)[..., 0],
                                         label_vectors=label_vectors.astype(np.float32)))
    return written
