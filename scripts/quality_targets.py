"""The quality issue's targets, met or not, from cgan-eval's JSON reports.

    cgan-eval --pretrained mnist-dcgan --seed 1 --cas --reference-seeds 5 --json dcgan.json
    cgan-eval --pretrained mnist-dcgan --seed 1 --cas --n-per-class 6000 --json dcgan6k.json
    python scripts/quality_targets.py --arch dcgan dcgan.json dcgan6k.json

The first report gives every metric; the Fréchet distance is set against the
mean real-data reference over the seeds of ``--reference-seeds`` (one seed's
moves by about 20%). CAS is read from every report given, per samples per
class (the issue asks for 1,000 and 6,000). The mlp has targets of its own
(every class >= 98.5%, recall >= 0.8); the other rows are printed for it as
information. A target whose number is missing is "not measured", never met.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MISSING = None


def _fd_ratio(result: dict):
    spread = result.get("real_reference")
    return result["generator"]["frechet_distance"] / spread["mean"] if spread else MISSING


def _cas_gap(gaps: dict, n: int):
    return gaps.get(n, MISSING)


# (name, value from (the first report, CAS gaps by samples per class), test, wanted, format)
TARGETS = {
    "dcgan": [
        ("conditional accuracy", lambda r, g: r["generator"]["conditional_accuracy"],
         lambda v: v >= 0.995, ">= 99.5%", "{:.2%}"),
        ("worst class accuracy", lambda r, g: min(r["generator"]["per_class_accuracy"]),
         lambda v: v >= 0.99, ">= 99%", "{:.2%}"),
        ("Fréchet distance / mean real reference", lambda r, g: _fd_ratio(r),
         lambda v: v <= 2.0, "<= 2x", "{:.2f}x"),
        ("precision", lambda r, g: r["generator"]["precision"], lambda v: v >= 0.85,
         ">= 0.85", "{:.3f}"),
        ("recall", lambda r, g: r["generator"]["recall"], lambda v: v >= 0.85, ">= 0.85",
         "{:.3f}"),
        ("Parzen (nats)", lambda r, g: r["generator"].get("parzen_log_likelihood"),
         lambda v: v >= 225, ">= 225", "{:.1f}"),
        ("CAS gap, 1,000 per class (points)", lambda r, g: _cas_gap(g, 1000),
         lambda v: v <= 0.5, "<= 0.5", "{:.2f}"),
        ("CAS gap, 6,000 per class (points)", lambda r, g: _cas_gap(g, 6000),
         lambda v: v <= 0.5, "<= 0.5", "{:.2f}"),
    ],
}
TARGETS["mlp"] = [
    ("worst class accuracy", lambda r, g: min(r["generator"]["per_class_accuracy"]),
     lambda v: v >= 0.985, ">= 98.5%", "{:.2%}"),
    ("recall", lambda r, g: r["generator"]["recall"], lambda v: v >= 0.8, ">= 0.8", "{:.3f}"),
]


def target_rows(reports: list[dict], arch: str) -> list[list[str]]:
    """[target, measured, wanted, verdict] rows; the dcgan's rows, with the mlp's own targets
    judged and the rest marked as information."""
    first = reports[0]
    gaps = {r["cas"]["cas_n_per_class"]: r["cas"]["cas_gap"] for r in reports if "cas" in r}
    own = {t[0]: t for t in TARGETS[arch]}
    rows = []
    for name, value_of, _, wanted, fmt in TARGETS["dcgan"]:
        value = value_of(first, gaps)
        test = own[name][2] if name in own else None
        wanted = own[name][3] if name in own else wanted
        shown = "not measured" if value is MISSING else fmt.format(value)
        verdict = ("information" if test is None else "not measured" if value is MISSING
                   else "met" if test(value) else "not met")
        rows.append([name, shown, wanted, verdict])
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(TARGETS), default="dcgan")
    parser.add_argument("reports", nargs="+", type=Path, help="cgan-eval --json files")
    args = parser.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.reports]
    print(f"{args.arch}: {', '.join(str(p) for p in args.reports)}\n")
    print("| target | measured | wanted | verdict |\n|---|---|---|---|")
    for row in target_rows(reports, args.arch):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
