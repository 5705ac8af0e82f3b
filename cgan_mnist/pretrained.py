"""Generators shipped in the package, to draw digits right after ``pip install``.

Each is a folder ``cgan_mnist/pretrained/<name>/`` made from a run of the
project's own ``cgan-train`` with the defaults of its day (``scripts/
ship_pretrained.py``): ``generator.keras``, the run's ``config.json`` and
``eval.json``, what ``cgan-eval`` measured of it. ``cgan-generate --pretrained
NAME`` and ``cgan-eval --pretrained NAME`` read them; nothing is ever written
there.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UsageError

FOLDER = Path(__file__).parent / "pretrained"
LIST = "list"  # --pretrained list: name them


def names() -> list[str]:
    """The shipped generators' names, e.g. ``mnist-dcgan``."""
    if not FOLDER.is_dir():
        return []
    return sorted(p.name for p in FOLDER.iterdir() if (p / "generator.keras").is_file())


def folder(name: str) -> Path:
    """The folder of the shipped generator ``name``; a one-line error names the known ones."""
    known = names()
    if name not in known:
        raise UsageError(f"unknown pretrained generator {name!r}; choose one of "
                         f"{', '.join(known) or '(none shipped in this installation)'}, or see "
                         "cgan-generate --pretrained list")
    return FOLDER / name


def describe() -> list[str]:
    """One line per shipped generator: its name, dataset, architecture and measured quality."""
    lines = []
    for name in names():
        try:
            report = json.loads((FOLDER / name / "eval.json").read_text())
            column = report["generator"]
            quality = (f"conditional accuracy {100 * column['conditional_accuracy']:.2f}%, "
                       f"FD {column['frechet_distance']:.2f}, precision {column['precision']:.3f}"
                       f", recall {column['recall']:.3f}")
        except (OSError, ValueError, KeyError, TypeError):
            quality = "not measured"
        lines.append(f"{name}: {quality}")
    return lines
