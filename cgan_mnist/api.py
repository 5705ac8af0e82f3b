"""The Python API, for notebooks and scripts: the three commands as functions.

    import cgan_mnist as cg

    generator = cg.load_generator("runs/dcgan")           # a run folder or a generator.keras
    images, labels = generator.sample([3, 7], n=8, seed=0)  # uint8 (16, 28, 28), labels (16,)
    grid = generator.grid(n=10, seed=0)                     # uint8 image: one row per class
    run = cg.train(epochs=2, limit=2048, outdir="runs/try")  # what cgan-train runs
    numbers = cg.evaluate(run, n_per_class=100)              # what cgan-eval --json writes

The checks and the errors are the commands' own: a bad value raises
``UsageError`` or ``UserError`` (``cgan_mnist.errors``) with the same one-line
message the command prints.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np

from . import outputs, run_folder
from .arguments import MAX_SAMPLES
from .errors import UsageError
from .generate import MAX_SCALE

MAX_SEED = 2**31 - 1


class Generator:
    """A trained generator with its class names; draws uint8 images of the classes asked for."""

    def __init__(self, model, class_names: tuple[str, ...], path: Path):
        self.model, self.class_names, self.path = model, tuple(class_names), path
        self.latent_dim = int(model.inputs[0].shape[-1])
        self.num_classes = int(model.inputs[1].shape[-1])

    def __repr__(self) -> str:
        return f"Generator({str(self.path)!r}, classes {', '.join(self.class_names)})"

    def classes(self, which="all") -> tuple[int, ...]:
        """Class indices of ``which``: 'all', a number or a name, or a list of those."""
        from .generate import class_of

        if isinstance(which, str) and which.strip().lower() == "all":
            return tuple(range(self.num_classes))
        items = which if isinstance(which, (list, tuple, range, np.ndarray)) else [which]
        return tuple(class_of(str(item), self.class_names, "classes", allow_all=False)[0]
                     for item in items)

    def sample(self, classes="all", n: int = 16, seed: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` images of each class asked for: uint8 (N, 28, 28) and int labels (N,)."""
        from .generate import sample

        n = _count(n, "n")
        seed = secrets.randbelow(2**31) if seed is None else _count(seed, "seed", 0, MAX_SEED)
        images, labels = sample(self.model, self.classes(classes), n, seed)
        return outputs.to_uint8(images), labels

    def grid(self, classes="all", n: int = 10, seed: int | None = None,
             scale: int = 1) -> np.ndarray:
        """A uint8 image: one row of ``n`` samples per class asked for, enlarged ``scale`` times."""
        images, _ = self.sample(classes, n, seed)
        return outputs.upscale(outputs.make_grid(images, cols=n, value_range=(0, 255)),
                               _count(scale, "scale", 1, MAX_SCALE))


def _count(value, name: str, low: int = 1, high: int = MAX_SAMPLES) -> int:
    """The commands' ranges: counts 1..MAX_SAMPLES, seeds 0..2**31-1, scales 1..MAX_SCALE."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not low <= value <= high:
        raise UsageError(f"{name} must be a whole number in {low}..{high}, got {value!r}")
    return int(value)


def load_generator(source: str | Path) -> Generator:
    """The generator of a run folder, a generator.keras file, or a pretrained one by name
    (``"mnist-dcgan"``: see ``cgan-generate --pretrained list``)."""
    from . import pretrained
    from .generate import load_generator as load_model
    from .generate import model_path

    if isinstance(source, str) and not Path(source).exists() and source in pretrained.names():
        source = pretrained.folder(source)
    source = Path(source)
    path = model_path(str(source), None) if source.is_dir() else source
    model = load_model(path)
    names = run_folder.class_names(run_folder.read_config(path.parent))
    num_classes = int(model.inputs[1].shape[-1])
    if not names or len(names) != num_classes:
        names = tuple(str(c) for c in range(num_classes))
    return Generator(model, names, path)


def train(dataset: str = "mnist", epochs: int = 40, outdir: str | Path = ".", *,
          log=print, **options) -> Path:
    """Run what ``cgan-train`` runs, with its options as keyword arguments
    (``arch="mlp"``, ``batch_size=32``, ``resume=True``, ...); return the run folder."""
    from .config import OPTION_NAMES, validate_train_options
    from .training import train as run_training

    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r}; the options are those of cgan-train: "
                         + ", ".join(OPTION_NAMES))
    given = {**options, "dataset": dataset, "epochs": epochs, "outdir": str(outdir)}
    stored = run_folder.read_config(outdir) if options.get("resume") else None
    cfg = validate_train_options(given, stored)
    return run_training(cfg, log=log, progress=False).root


def evaluate(source: str | Path, n_per_class: int = 1000, seed: int = 0, *,
             data_dir: str | None = None, cas: bool = False, dataset: str | None = None,
             log=print) -> dict:
    """Measure a run folder's (or a generator.keras file's) samples: the dict that
    ``cgan-eval --json`` writes (``cas``: with the classification accuracy score;
    ``dataset``: the data of a generator.keras without its run's config.json)."""
    from . import evaluation

    source = Path(source)
    model = source / "generator.keras" if source.is_dir() else source
    n_per_class = _count(n_per_class, "n_per_class")
    request = evaluation.request_for(model, n_per_class, _count(seed, "seed", 0, MAX_SEED), None,
                                     data_dir, cas, dataset=dataset)
    return evaluation.run(request, log=log)
