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


def test_tuning_variants_are_typed_cgan_train_options():
    import pytest

    tune = load("tune_quality")
    options = tune.parse_variant("ema=0.999,d_lr=4e-4,g_width=48")
    assert options == {"ema": 0.999, "d_lr": 4e-4, "g_width": 48}
    assert isinstance(options["g_width"], int)
    assert tune.parse_variant("defaults") == {} and tune.slug({}) == "defaults"
    assert tune.slug(options) == "d_lr=0.0004,ema=0.999,g_width=48"
    with pytest.raises(SystemExit, match="not KEY=VALUE"):
        tune.parse_variant("warp=9")


def test_tuning_table_collects_every_variant_run(tmp_path):
    import json

    tune = load("tune_quality")
    row = {"wall_s": 600.0, "conditional_accuracy": 0.99, "worst_class_accuracy": 0.97,
           "frechet_distance": 3.0, "precision": 0.8, "recall": 0.81,
           "parzen_log_likelihood": 210.0, "parzen_standard_error": 2.0}
    for variant, options, kinds in (("defaults", {}, ["sampled"]),
                                    ("ema=0.999", {"ema": 0.999}, ["sampled", "live"])):
        (tmp_path / variant).mkdir()
        rows = [{**row, "epoch": 10, "generator": kind} for kind in kinds]
        (tmp_path / variant / tune.RESULTS).write_text(
            json.dumps({"variant": variant, "options": options, "rows": rows}))
    lines = tune.table(tmp_path)
    assert len(lines) == 2 + 3
    assert "| `defaults` | 10 | live | 10m00s | 99.00% | 97.0% | 3.000" in lines[2]
    assert [line.split(" | ")[2] for line in lines[3:]] == ["live", "average"]
