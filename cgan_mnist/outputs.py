"""Image and plot files: grids, PNGs, GIFs, .npz samples, the loss, quality and
confusion plots; and the atomic writes every file of the project goes through.

Every file is written whole: to a temporary name in the same folder, then
renamed over the target, so a crash or kill never leaves half a file and the
previous good version stays until the new one is complete. Nothing here
imports TensorFlow; images arrive as NumPy arrays with values in [-1, 1].
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

GRID_PAD = 2  # pixels of background between and around the cells of a grid
VALUE_RANGE = (-1.0, 1.0)  # what the tanh generator outputs
LABEL_MARGIN = 64  # pixels of the text margin that label_rows adds at the left of a grid
LABEL_GRAY = 200   # text colour of the row labels (the background is 0, like the grid's)


# --- atomic writes ------------------------------------------------------------


def _new_file_mode() -> int:
    """The mode open() would give a new file: 0666 less the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp",
                               dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _new_file_mode())  # mkstemp makes 0600; outputs are ordinary files
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


# --- images -------------------------------------------------------------------


def to_uint8(images: np.ndarray, value_range=VALUE_RANGE) -> np.ndarray:
    """Map images from ``value_range`` to 0..255, clipping, dropping a channel axis."""
    low, high = value_range
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    scaled = (images - low) / (high - low) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, cols: int, value_range=VALUE_RANGE,
              pad: int = GRID_PAD) -> np.ndarray:
    """Tile (N, H, W[, 1]) images row by row into one uint8 (rows*H+pad.., cols*W+pad..) image."""
    tiles = to_uint8(images, value_range)
    n, h, w = tiles.shape
    rows = -(-n // cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top:top + h, left:left + w] = tile
    return grid


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement: every pixel becomes a ``factor`` x ``factor`` block."""
    if factor == 1:
        return image
    return np.kron(image, np.ones((factor, factor), dtype=image.dtype))


def label_rows(grid: np.ndarray, names, cell: int = 28, pad: int = GRID_PAD,
               margin: int = LABEL_MARGIN) -> np.ndarray:
    """The grid with a ``margin``-pixel text column at its left naming each row.

    The grid's own pixels are unchanged: ``labelled[:, margin:] == grid``, so
    a labelled grid is as easy to check as a plain one. Row r of cells spans
    ``pad + r * (cell + pad)`` to ``+ cell``; its name is centred on it, cut
    with ".." when it does not fit.
    """
    from PIL import Image, ImageDraw

    height = grid.shape[0]
    text = Image.new("L", (margin, height), 0)
    draw = ImageDraw.Draw(text)
    font = _label_font()
    for row, name in enumerate(names):
        name = _fit(draw, str(name), font, margin - 4)
        top, bottom = draw.textbbox((0, 0), name, font=font)[1::2]
        centre = pad + row * (cell + pad) + cell / 2
        draw.text((2, centre - (top + bottom) / 2), name, fill=LABEL_GRAY, font=font)
    return np.concatenate([np.asarray(text, dtype=np.uint8), grid], axis=1)


def _label_font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font only
        return ImageFont.load_default()


def _fit(draw, name: str, font, width: int) -> str:
    if draw.textlength(name, font=font) <= width:
        return name
    while name and draw.textlength(name + "..", font=font) > width:
        name = name[:-1]
    return name + ".."


def encode_png(image: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", image, extension=".png")


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    return write_bytes(path, encode_png(image))


def save_gif(path: str | os.PathLike, frames: list[np.ndarray], seconds_per_frame: float = 0.4,
             hold_last: int = 4) -> Path:
    """Animate equal-sized uint8 frames; the last one is shown a little longer."""
    import imageio.v3 as iio

    frames = list(frames) + [frames[-1]] * hold_last
    data = iio.imwrite("<bytes>", np.stack(frames), extension=".gif",
                       duration=int(seconds_per_frame * 1000), loop=0)
    return write_bytes(path, data)


def read_png(path: str | os.PathLike) -> np.ndarray:
    import imageio.v3 as iio

    return iio.imread(path)


def save_samples_npz(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray,
                     class_names=None) -> Path:
    """Samples as a labelled training set in Keras's mnist.npz layout: ``x_train`` uint8
    (N, 28, 28), ``y_train`` int64 (N,) and ``class_names``, so that ``np.load`` gives what
    ``keras.datasets.mnist.load_data()`` users expect and ``cgan-train --dataset`` takes it;
    also as ``images`` and ``labels``, the names of earlier versions."""
    pixels, labels = to_uint8(images), np.asarray(labels, np.int64)
    names = {"class_names": np.asarray(class_names, dtype=str)} if class_names else {}
    return write_npz(path, x_train=pixels, y_train=labels, images=pixels, labels=labels, **names)


def write_npz(path: str | os.PathLike, **arrays) -> Path:
    """NumPy arrays as one compressed .npz, written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return write_bytes(path, buffer.getvalue())


# --- the loss plot ----------------------------------------------------------


def smooth(values: np.ndarray, weight: float | None = None) -> np.ndarray:
    """Exponential moving average with bias correction (TensorBoard-style).

    By default the averaging window grows with the run: about 1/20 of the steps,
    between roughly 3 and 100 steps.
    """
    if weight is None:
        weight = float(np.clip(1 - 20 / max(len(values), 1), 0.6, 0.99))
    out = np.empty(len(values))
    avg = 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out[i] = avg / (1 - weight ** (i + 1))
    return out


def plot_losses(path: str | os.PathLike, rows: list[dict]) -> Path:
    """G and D losses per step (raw, faint; smoothed, solid) with epoch means (dots)."""
    steps = np.array([r["step"] for r in rows])
    epochs = np.array([r["epoch"] for r in rows])
    fig = _figure(figsize=(8, 4.5))
    ax = fig.subplots()
    for key, name, color in (("d_loss", "D loss", "tab:blue"), ("g_loss", "G loss", "tab:orange")):
        values = np.array([r[key] for r in rows])
        ax.plot(steps, values, color=color, alpha=0.2, linewidth=0.6)
        ax.plot(steps, smooth(values), color=color, linewidth=1.5, label=f"{name} (smoothed)")
        ends = [steps[epochs == e].max() for e in np.unique(epochs)]
        means = [values[epochs == e].mean() for e in np.unique(epochs)]
        ax.plot(ends, means, "o", color=color, markersize=4, label=f"{name}, epoch mean")
    ax.set_xlabel("training step")
    ax.set_ylabel("binary cross-entropy")
    ax.set_title("cGAN losses")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return save_figure(path, fig)


def _figure(figsize):
    """A matplotlib Figure of its own: no pyplot, so no global state and no GUI backend."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=100)


def save_figure(path: str | os.PathLike, fig) -> Path:
    """Lay out a matplotlib figure, render it to PNG and write it atomically."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return write_bytes(path, buffer.getvalue())


# --- sample quality: its plot over a run, the confusion heat map ---------------


def plot_quality(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Conditional accuracy and Fréchet distance (log scale) over the epochs of a run."""
    epochs = [r["epoch"] for r in rows]
    fig = _figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [100 * r["conditional_accuracy"] for r in rows], "o-", color="tab:green")
    left.set_ylabel("conditional accuracy (%)")
    left.set_ylim(0, 100)
    right.plot(epochs, [r["frechet_distance"] for r in rows], "o-", label="all samples")
    right.plot(epochs, [r["frechet_distance_class_mean"] for r in rows], "s--",
               label="mean over digits")
    right.set_ylabel("Fréchet distance (evaluator features)")
    right.set_yscale("log")  # it falls by orders of magnitude early on
    right.legend(fontsize="small")
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle("sample quality during training")
    return save_figure(path, fig)


def plot_confusion(path: str | os.PathLike, confusion) -> Path:
    """Heat map of the share of each asked-for digit (row) given each class (column)."""
    counts = np.asarray(confusion, dtype=np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = _figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (row, col), share in np.ndenumerate(shares):
        if share >= 0.005:
            text = f"{100 * share:.0f}" if share >= 0.1 else f"{100 * share:.1f}"
            ax.text(col, row, text, ha="center", va="center", fontsize=8,
                    color="white" if share > 0.5 else "black")
    ticks = range(len(shares))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("evaluator's class")
    ax.set_ylabel("asked-for digit")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"conditional accuracy {100 * accuracy:.2f}% (cells: % of the row)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    return save_figure(path, fig)
