"""Our own messages during a run: printed by verbosity, and kept in ``<outdir>/log.txt``.

Three levels (``cgan-train --quiet`` / default / ``--verbose``):

* quiet: only errors and the final line (``done: outputs in ...``);
* normal: also the start-up line, ``resumed from ...`` and one line per epoch;
* verbose: also a notice each time files are written at an interval.

``log.txt`` holds exactly what was printed, in order, appended across resumes.
Lines printed before the output folder is ready (the start-up line) wait in
memory and go to the file once training has claimed the folder, so a refused
run never touches a folder that holds another run. Each addition rewrites the
file whole through ``outputs.write_text`` (temporary file, then rename): a
crash never leaves half a line, and the file is small (a line or two per epoch).

Not the ``logging`` module: its FileHandler appends in place (a crash can
leave half a line) and cannot hold lines until the folder is claimed.

The training loop calls a plain ``log(line)`` callable; ``attach``, ``detail``
and ``final`` below reach the extra methods of a ``RunLog`` when it is one,
so a bare ``print`` or ``lambda line: None`` still works as ``log``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import outputs

LEVELS = ("quiet", "normal", "verbose")


class RunLog:
    """A ``log`` callable for ``training.train`` that knows levels and log.txt."""

    def __init__(self, level: str = "normal"):
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")
        self.level = level
        self.path: Path | None = None
        self._pending: list[str] = []   # printed before attach
        self._text = ""                 # what log.txt holds

    def __call__(self, line: str) -> None:
        """A normal message (epoch lines and the like)."""
        if self.level != "quiet":
            self._emit(line, sys.stdout)

    def detail(self, line: str) -> None:
        """A verbose-only message (which files were written)."""
        if self.level == "verbose":
            self._emit(line, sys.stdout)

    def final(self, line: str) -> None:
        """The last line of a run: printed even when quiet."""
        self._emit(line, sys.stdout)

    def error(self, line: str) -> None:
        """An error or stop notice, printed on stderr whatever the level."""
        self._emit(line, sys.stderr)

    def keep(self, line: str) -> None:
        """Add a line that someone else printed (an error) to log.txt, if it can be written.

        Best effort: the error may be the disk being full.
        """
        try:
            self._record(line)
        except OSError:
            pass

    def attach(self, path: str | Path) -> None:
        """Start keeping log.txt at ``path`` (appending to a resumed run's file)."""
        self.path = Path(path)
        try:
            self._text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            self._text = ""
        if self._text and not self._text.endswith("\n"):
            self._text += "\n"
        pending, self._pending = self._pending, []
        for line in pending:
            self._record(line)

    def _emit(self, line: str, stream) -> None:
        print(line, file=stream, flush=True)
        self._record(line)

    def _record(self, line: str) -> None:
        if self.path is None:
            self._pending.append(line)
            return
        self._text += line + "\n"
        outputs.write_text(self.path, self._text)


# --- reaching a RunLog through a plain ``log`` callable -------------------------------


def attach(log, path: Path) -> None:
    """Tell ``log`` where log.txt goes, if it keeps one."""
    method = getattr(log, "attach", None)
    if method is not None:
        method(path)


def detail(log, line: str) -> None:
    """A verbose-only message; dropped by loggers without levels."""
    method = getattr(log, "detail", None)
    if method is not None:
        method(line)


def final(log, line: str) -> None:
    """The final line: shown even when quiet; a plain ``log`` just gets it."""
    getattr(log, "final", log)(line)
