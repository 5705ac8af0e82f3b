"""Regenerate the README's pictures from a trained run folder.

    python scripts/make_readme_figures.py runs/dcgan
    python scripts/make_readme_figures.py runs/fashion --interpolate sneaker "ankle boot"

Writes into scripts/figures/ (or --out DIR), each name starting with the run
folder's name (or --prefix):

    <prefix>_epoch_NNNN.png           the run's last fixed-noise grid, rows labelled
                                      with the class names (a 64-pixel margin at the left)
    <prefix>_progress.gif             the run's generated/progress.gif
    <prefix>_losses.png               the loss plot, redrawn from history.csv
    <prefix>_interpolate_A_B.gif      class A morphing into class B, the noise fixed

It reads the run and writes only under --out. Meant for a finished run; for
a quick look at a tiny run, point --out somewhere else, so that
scripts/figures/ keeps the README's pictures.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FIGURES = Path(__file__).resolve().parent / "figures"


def make_figures(run: Path, out: Path, prefix: str, pair: tuple[str, str] | None,
                 seed: int, scale: int, n: int) -> list[Path]:
    """Write the four figures of ``run`` into ``out``; return their paths."""
    from cgan_mnist import data, generate, outputs
    from cgan_mnist.errors import UserError
    from cgan_mnist.run_folder import RunPaths, class_names, read_config, read_history

    paths = RunPaths(run)
    grids = paths.epoch_grids()
    for needed in (paths.config, paths.history, paths.generator):
        if not needed.is_file():
            raise UserError(f"{needed} not found; point at a folder that cgan-train has "
                            "finished writing")
    if not grids:
        raise UserError(f"no generated/epoch_NNNN.png in {run}; train with a --sample-interval "
                        "that writes at least one grid")
    names = class_names(read_config(paths.root)) or data.DIGIT_NAMES
    if pair is None:
        pair = ("3", "8") if len(names) > 8 else ("0", str(len(names) - 1))
    (a, slug_a), (b, slug_b) = (generate.class_of(text, names, "--interpolate", allow_all=False)
                                for text in pair)
    written = []

    grid = outputs.read_png(grids[-1])
    if grid.ndim == 2 and grid.shape[0] == len(names) * (28 + outputs.GRID_PAD) + outputs.GRID_PAD:
        grid = outputs.label_rows(grid, names)
    written.append(outputs.save_png(out / f"{prefix}_{grids[-1].name}", grid))

    gif = out / f"{prefix}_progress.gif"
    if paths.progress_gif.is_file():
        written.append(outputs.write_bytes(gif, paths.progress_gif.read_bytes()))
    else:  # an unfinished run: make it from the grids so far
        written.append(outputs.save_gif(gif, [outputs.read_png(p) for p in grids]))

    written.append(outputs.plot_losses(out / f"{prefix}_losses.png",
                                       read_history(paths.history)))

    request = generate.GenerateRequest((a, b), n, paths.generator, png=None, npz=None, seed=seed,
                                       mode="interpolate", scale=scale,
                                       gif=out / f"{prefix}_interpolate_{slug_a}_{slug_b}.gif")
    written += generate.generate(request)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="folder of a trained run (its --outdir)")
    parser.add_argument("--out", type=Path, default=FIGURES,
                        help=f"folder for the figures (default {FIGURES})")
    parser.add_argument("--prefix", help="start of the file names (default: the run folder's name)")
    parser.add_argument("--interpolate", nargs=2, metavar=("A", "B"),
                        help="classes of the morph, numbers or names (default 3 8)")
    parser.add_argument("--seed", type=int, default=0, help="noise of the morph (default 0)")
    parser.add_argument("--scale", type=int, default=2,
                        help="enlargement of the morph GIF, 1..16 (default 2)")
    parser.add_argument("--n", type=int, default=16,
                        help="morphs side by side in the GIF, 1..100 (default 16)")
    args = parser.parse_args(argv)

    from cgan_mnist.errors import UserError

    try:
        if not 1 <= args.scale <= 16 or not 1 <= args.n <= 100:
            raise UserError("--scale must be in 1..16 and --n in 1..100")
        prefix = args.prefix or args.run.resolve().name
        for path in make_figures(args.run, args.out, prefix, args.interpolate, args.seed,
                                 args.scale, args.n):
            print(path)
    except UserError as err:
        print(f"make_readme_figures: error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
