"""The benchmark scripts' pure parts: they rewrite only their own sections of BENCHMARKS.md."""

import importlib.util

from conftest import REPO


def load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quality_sections_are_per_architecture():
    bench = load("bench_quality")
    text = "# Benchmarks\n\nhand-written notes\n"
    text = bench.replace_section(text, "dcgan table v1", "dcgan")
    text = bench.replace_section(text, "mlp table", "mlp")
    text = bench.replace_section(text, "dcgan table v2", "dcgan")
    assert "hand-written notes" in text and "mlp table" in text and "dcgan table v2" in text
    assert "v1" not in text
    assert text.index("dcgan table v2") < text.index("mlp table")  # replaced in place


def test_speed_columns_have_the_plain_loop_as_before():
    bench = load("bench_speed")
    for arch in ("mlp", "dcgan"):
        rows = bench.columns(arch)
        before = rows[0]
        assert before[:4] == ("before", False, 64, False)  # no XLA, batch 64, float32
        assert rows[1][0] == "now" and rows[1][1] is True
