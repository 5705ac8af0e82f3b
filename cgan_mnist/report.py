"""The quality report: the text table of cgan-eval and the Markdown tables of the scripts.

Takes the plain dict that ``measuring.evaluate`` returns (also what
``cgan-eval --json`` writes); computes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from .measuring import NEIGHBOURS


def percent(value) -> str:
    return f"{100 * value:.2f}%"


def number(value) -> str:
    return f"{value:.3f}"


def parzen(column: dict) -> str:
    return f"{column['parzen_log_likelihood']:.1f} ± {column['parzen_standard_error']:.1f}"


def clock(seconds: float) -> str:
    """h:mm:ss, as ``datetime.timedelta`` prints whole seconds."""
    return str(timedelta(seconds=round(seconds)))


def markdown_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + \
        ["| " + " | ".join(str(c) for c in cells) + " |" for cells in rows]


REPORT_ROWS = (  # key in a column of evaluate()'s result, label, format
    ("conditional_accuracy", "conditional accuracy", percent),
    ("frechet_distance", "Fréchet distance (evaluator features)", number),
    ("frechet_distance_class_mean", "Fréchet distance, mean over classes", number),
    ("classifier_score", "classifier score (1..10)", number),
    ("precision", f"precision (k={NEIGHBOURS})", number),
    ("recall", f"recall (k={NEIGHBOURS})", number),
)


def _report_rows(result: dict) -> list[tuple[str, list[str]]]:
    columns = [result[c] for c in ("generator", "real") if c in result]
    rows = [(label, [fmt(col[key]) for col in columns]) for key, label, fmt in REPORT_ROWS]
    if "parzen_log_likelihood" in columns[0]:
        rows.append(("Parzen log-likelihood (nats)", [parzen(c) for c in columns]))
        rows.append(("Parzen sigma", [f"{c['parzen_sigma']:.3f}" for c in columns]))
    names = result.get("class_names") or [str(c) for c in range(len(columns[0]["per_class_accuracy"]))]
    if "cas" in result:
        rows.append(("CAS: trained on these, tested on real",
                     [percent(result["cas"]["cas"]), percent(result["cas"]["cas_real"])][
                         :len(columns)]))
    for c, name in enumerate(names):
        rows.append((f"  accuracy of class {name}",
                     [percent(col["per_class_accuracy"][c]) for col in columns]))
    return rows


def format_report(result: dict) -> str:
    """The evaluator's accuracy, what was compared, and a table: metric x (generator, real)."""
    ev, ref = result["evaluator"], result["reference"]
    target = ev.get("target_accuracy")
    below = "" if not target or ev["test_accuracy"] >= target else "  (BELOW the target)"
    origin = "shipped with cgan-mnist" if ev.get("shipped") else "trained on this machine"
    lines = [f"evaluator: {ev.get('dataset') or result['dataset']}, weights {ev.get('weights')} "
             f"({origin}), test accuracy {percent(ev['test_accuracy'])} "
             f"{f'(target {percent(target)})' if target else ''}{below}; {ev['path']}",
             f"samples: {result['n_per_class']:,} per class ({result['samples']:,}), seed "
             f"{result['seed']}; compared with {ref['test_images_per_class']:,} test images per "
             "class; real data: as many training images the evaluator trained on"]
    if "parzen_test_examples" in ref:
        lines.append(f"Parzen window: sigma from 10 values in [0.1, 1] chosen on "
                     f"{ref['parzen_valid_examples']:,} held-out training images; "
                     f"log-likelihood of the {ref['parzen_test_examples']:,} test images")
    header = ["metric", "generator"] + (["real data"] if "real" in result else [])
    rows = _report_rows(result)
    width = max(len(label) for label, _ in rows) + 2
    cell = max(14, *(len(v) + 2 for _, values in rows for v in values))
    lines.append("")
    lines.append(header[0].ljust(width) + "".join(h.rjust(cell) for h in header[1:]))
    lines += [label.ljust(width) + "".join(v.rjust(cell) for v in values)
              for label, values in rows]
    if "cas" in result:
        cas = result["cas"]
        lines.append(f"CAS: {cas['cas_n_per_class']:,} per class; the real-data classifier "
                     f"scores {cas['cas_gap']:+.2f} points more ({cas['cas_seconds']:.0f} s, "
                     "its real-data baseline cached after the first time)")
    if "real_reference" in result:
        spread, fd = result["real_reference"], result["generator"]["frechet_distance"]
        lines.append(f"real data's Fréchet distance over seeds {spread['seeds'][0]}-"
                     f"{spread['seeds'][-1]}: mean {spread['mean']:.3f} (min {spread['min']:.3f}, "
                     f"max {spread['max']:.3f}); the generator's is {fd / spread['mean']:.2f}x "
                     "that mean")
    if "parzen_test_examples" in ref:
        lines.append("")
        lines.append("Parzen, Mirza & Osindero (2014) Table 1: " + "; ".join(
            f"{m['model']} {m['mean']:g} ± {m['standard_error']:g}"
            for m in result["paper_parzen"]))
    return "\n".join(lines)
