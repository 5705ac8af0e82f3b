"""The benchmark scripts' pure parts: they rewrite only their own sections of BENCHMARKS.md."""

from pathlib import Path

import pytest
from cgan_mnist import measuring


def test_quality_sections_are_per_architecture(load_script):
    bench = load_script("bench_quality")
    text = "# Benchmarks\n\nhand-written notes\n"
    text = bench.replace_section(text, "dcgan table v1", "dcgan")
    text = bench.replace_section(text, "mlp table", "mlp")
    text = bench.replace_section(text, "dcgan table v2", "dcgan")
    assert "hand-written notes" in text and "mlp table" in text and "dcgan table v2" in text
    assert "v1" not in text
    assert text.index("dcgan table v2") < text.index("mlp table")  # replaced in place


def test_tuning_variants_are_typed_cgan_train_options(load_script):
    tune = load_script("tune_quality")
    options = tune.parse_variant("ema=0.999,d_lr=4e-4,g_width=48")
    assert options == {"ema": 0.999, "d_lr": 4e-4, "g_width": 48}
    assert isinstance(options["g_width"], int)
    assert tune.parse_variant("defaults") == {} and tune.slug({}) == "defaults"
    assert tune.slug(options) == "d_lr=0.0004,ema=0.999,g_width=48"
    with pytest.raises(SystemExit, match="not KEY=VALUE"):
        tune.parse_variant("warp=9")


def test_tuning_table_collects_every_variant_run(tmp_path, load_script):
    import json

    tune = load_script("tune_quality")
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
    assert "| `defaults` | 10 | live | 0:10:00 | 99.00% | 97.0% | 3.000" in lines[2]
    assert [line.split(" | ")[2] for line in lines[3:]] == ["live", "average"]


def test_tuning_continues_an_earlier_run_of_the_same_variant(tmp_path, monkeypatch, load_script):
    """Asking for later epochs of a measured variant resumes its run and keeps its
    rows; it never starts it over (an hour of training on a CPU)."""
    import json

    from cgan_mnist import generate, measuring

    tune = load_script("tune_quality")
    trained = []

    def train_to(arch, epoch, args, outdir, options, fresh):
        trained.append((epoch, fresh))
        return 60.0

    column = {"conditional_accuracy": 0.99, "frechet_distance": 3.0, "precision": 0.8,
              "recall": 0.8, "parzen_log_likelihood": 200.0, "parzen_standard_error": 2.0,
              "per_class_accuracy": [0.99] * 9 + [0.97]}
    monkeypatch.setattr(tune.bench_quality, "train_to", train_to)
    monkeypatch.setattr(generate, "load_generator", lambda path: "generator")
    monkeypatch.setattr(measuring, "evaluate", lambda *a, **k: {"generator": column})

    def run(*argv):
        args = tune.parse_args(["--variant", "ema=0.999", "--outdir", str(tmp_path), *argv])
        tune.tune_variant(args.variants[0], args, dataset=None, evaluator=None)

    run("--epochs", "20", "--at", "10,20")
    run("--epochs", "30", "--at", "10,30")
    assert trained == [(10, True), (20, False), (30, False)]
    results = json.loads((tmp_path / "dcgan" / "ema=0.999" / tune.RESULTS).read_text())
    assert [(r["epoch"], r["wall_s"]) for r in results["rows"]] == [(10, 60), (20, 120), (30, 180)]
    assert results["rows"][0]["worst_class_accuracy"] == 0.97
    assert len(results["commands"]) == 2
    with pytest.raises(SystemExit, match="past epoch 25"):
        run("--epochs", "25", "--at", "25")
    run("--seed", "2", "--epochs", "10", "--at", "10")  # another seed: a new run
    assert trained[-1] == (10, True)


def test_tuning_adds_the_live_row_at_the_last_epoch_without_training(tmp_path, monkeypatch,
                                                                      load_script):
    import json

    from cgan_mnist import generate, measuring

    tune = load_script("tune_quality")
    trained, evaluated = [], []
    monkeypatch.setattr(tune.bench_quality, "train_to",
                        lambda arch, epoch, *a, **k: trained.append(epoch) or 60.0)
    monkeypatch.setattr(generate, "load_generator", lambda path: "average")
    monkeypatch.setattr(tune, "live_generator", lambda outdir: "live")
    column = {"conditional_accuracy": 0.99, "frechet_distance": 3.0, "precision": 0.8,
              "recall": 0.8, "parzen_log_likelihood": 200.0, "parzen_standard_error": 2.0,
              "per_class_accuracy": [0.99] * 10}

    def evaluate(sampler, *a, **k):
        evaluated.append(sampler.args[0])  # partial(generate.sample, generator)
        return {"generator": column}

    monkeypatch.setattr(measuring, "evaluate", evaluate)

    def run(*argv):
        args = tune.parse_args(["--variant", "ema=0.999", "--outdir", str(tmp_path), *argv])
        tune.tune_variant(args.variants[0], args, dataset=None, evaluator=None)

    run("--epochs", "20", "--at", "10,20")
    run("--live", "--epochs", "20", "--at", "20")
    assert trained == [10, 20] and evaluated == ["average", "average", "live"]
    rows = json.loads((tmp_path / "dcgan" / "ema=0.999" / tune.RESULTS).read_text())["rows"]
    assert [(r["epoch"], r["generator"], r["wall_s"]) for r in rows] == \
        [(10, "sampled", 60), (20, "sampled", 120), (20, "live", 120)]
    run("--live", "--epochs", "20", "--at", "20")  # nothing left to do
    assert len(evaluated) == 3
    with pytest.raises(SystemExit, match="past epoch 10"):  # its weights are gone
        run("--live", "--epochs", "20", "--at", "10")


def test_tuning_resumes_a_run_stopped_before_its_first_evaluation(tmp_path, load_script):
    """A variant's run killed mid-way has a config.json and checkpoints but no results:
    it is resumed, unless it was made with other options or another seed."""
    import json

    tune = load_script("tune_quality")
    args = tune.parse_args(["--variant", "ema=0.999,label_smoothing=0.1", "--epochs", "10"])
    options = args.variants[0]
    outdir = tmp_path / "run"
    assert not tune.interrupted_run(outdir, options, args)  # nothing there
    (outdir / "checkpoints").mkdir(parents=True)
    stored = {"arch": "dcgan", "seed": 1, "limit": None, "ema": 0.999, "label_smoothing": 0.1}
    (outdir / "config.json").write_text(json.dumps(stored))
    assert not tune.interrupted_run(outdir, options, args)  # no checkpoint yet
    (outdir / "checkpoints" / "ckpt-4685.index").write_bytes(b"")
    assert tune.interrupted_run(outdir, options, args)
    for change in ({"seed": 2}, {"label_smoothing": 0.2}, {"arch": "mlp"}):
        (outdir / "config.json").write_text(json.dumps({**stored, **change}))
        assert not tune.interrupted_run(outdir, options, args), change


@pytest.mark.slow
def test_reference_spread_draws_the_reference_as_cgan_eval_does(monkeypatch, capsys, mnist,
                                                                 tiny_evaluator, trained_run,
                                                                 load_script):
    """The script's real-data Fréchet distance at seed S is cgan-eval's at --seed S."""
    from functools import partial

    from cgan_mnist import data, evaluator
    from cgan_mnist.generate import load_generator, sample

    spread = load_script("fd_reference_spread")
    assert spread.parse_seeds("2-4") == [2, 3, 4] and spread.parse_seeds("0,7") == [0, 7]
    monkeypatch.setattr(data, "load", lambda name, folder: mnist)
    monkeypatch.setattr(evaluator, "load_or_train", lambda dataset: tiny_evaluator)
    spread.main(["--seeds", "0-1", "--n-per-class", "10"])
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("seed")]
    generator = load_generator(trained_run / "generator.keras")
    for seed, line in zip((0, 1), printed, strict=True):
        result = measuring.evaluate(partial(sample, generator), mnist, 10, seed,
                                    evaluator=tiny_evaluator)
        assert line.endswith(f"{result['real']['frechet_distance']:.3f}")
    assert printed[0] != printed[1]


def test_speed_figures_name_their_machine(load_script):
    """Issue: the same code ran 2-3x apart on two 2-core machines; a figure needs its CPU."""
    bench = load_script("bench_speed")
    cpuinfo = ("processor : 0\nmodel name : AMD EPYC 7B13\ncpu family : 25\nmodel : 1\n"
               "flags : fpu sse2 avx avx2 fma\n")
    text = bench.machine(cpuinfo, {"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert text.startswith("AMD EPYC 7B13 (family 25, model 1); vector extensions: avx2, fma;")
    assert "avx512" not in text and "TF_ENABLE_ONEDNN_OPTS=0" in text


def test_speed_tables_are_kept_per_kind_of_machine(tmp_path, load_script):
    """One dated table per kind of machine: a run on one CPU never overwrites another's."""
    bench = load_script("bench_speed")
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nhand-written notes\n")
    bench.write_benchmarks("avx2 table v1", "AMD EPYC; vector extensions: avx2", path)
    bench.write_benchmarks("avx512 table", "Xeon; vector extensions: avx2, avx512f", path)
    bench.write_benchmarks("avx2 table v2", "AMD EPYC; vector extensions: avx2", path)
    text = path.read_text()
    assert "hand-written notes" in text and "avx512 table" in text and "avx2 table v2" in text
    assert "v1" not in text and text.index("avx2 table v2") < text.index("avx512 table")


def test_speed_verdicts_print_the_issue_targets(load_script):
    """60% of the measured peak per architecture; the dcgan 8x the keras.io recipe."""
    bench = load_script("bench_speed")

    def row(arch, column, images_per_s, mflop, mib=1200.0):  # each row's own peak: 150
        return {"arch": arch, "column": column, "images_per_s": images_per_s,
                "flops_per_image": mflop * 1e6, "peak_rss_mib": mib,
                "peak_before": 140.0, "peak_after": 150.0}

    rows = [row("mlp", "before", 400, 38.4), row("mlp", "now", 2000, 38.4),
            row("dcgan", "before", 500, 91), row("dcgan", "now", 1000, 91),
            row("dcgan", "--reuse-fakes", 1200, 75, 2100), row("keras.io", "recipe", 100, 656)]
    lines = "\n".join(bench.verdicts(rows))
    assert "mlp: now / before (XLA) = 5.00x" in lines and "51% of peak vs 60% (not met)" in lines
    assert "dcgan: now / before (XLA) = 2.00x; --reuse-fakes / now = 1.20x" in lines
    assert "61% of peak vs 60% (met)" in lines and "10.0x the keras.io recipe vs 8x (met)" in lines
    assert lines.count("the keras.io recipe vs") == 1  # the ratio target is the dcgan's
    assert "peak memory 1,200 MiB vs 2,048 (met)" in lines  # the mlp's largest row
    assert "peak memory 2,100 MiB vs 2,048 (not met)" in lines


@pytest.mark.slow
def test_the_keras_io_recipe_trains_and_samples_through_our_interface(load_script, monkeypatch):
    """The peer of the speed benchmarks: its published shapes, a step that learns, and its G
    behind our [noise, one-hot] -> [-1, 1] interface, so cgan_mnist measures it as ours."""
    import numpy as np
    from cgan_mnist import data, generate, models

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "scripts"))
    peer = load_script("keras_io_cgan")
    model = peer.make_model(seed=0)
    assert model.generator(np.zeros((1, 138))).shape == (1, 28, 28, 1)  # noise 128 + one-hot
    assert model.discriminator(np.zeros((1, 28, 28, 11))).shape == (1, 1)  # image + 10 planes
    assert models.forward_flops(model.generator) > 100e6  # 7x ours per image (bench_speed)
    rng = np.random.default_rng(0)
    labels = np.arange(256) % 10
    tiny = data.Dataset("tiny", None, data.Split(rng.integers(0, 256, (256, 28, 28), np.uint8),
                                                 labels), None)
    weights = [w.copy() for w in model.discriminator.get_weights()]
    result = peer.train_for(model, tiny, seconds=0.0, warmup_steps=2)
    assert result["steps"] == 3 and result["images_per_s"] > 0
    assert any(not np.array_equal(a, b) for a, b in zip(weights, model.discriminator.get_weights()))
    images, drawn = generate.sample(peer.as_sampler_generator(model), [3, 7], 4, seed=0)
    assert images.shape == (8, 28, 28, 1) and list(drawn) == [3] * 4 + [7] * 4
    assert -1.0 <= images.min() and images.max() <= 1.0


def test_time_to_quality_reports_the_first_epoch_that_meets_both_targets(load_script):
    ttq = load_script("bench_time_to_quality")

    def row(epoch, accuracy, fd, minutes):
        return {"epoch": epoch, "conditional_accuracy": accuracy, "frechet_distance": fd,
                "minutes": minutes}

    rows = [row(1, 0.95, 20.0, 2.0), row(2, 0.991, 6.0, 3.5), row(3, 0.992, 4.9, 5.0)]
    assert [ttq.reached(r) for r in rows] == [False, False, True]
    dcgan = {"arch": "dcgan", "rows": rows, "hit": rows[2], "minutes": 5.0}
    mlp = {"arch": "mlp", "rows": rows[:2], "hit": None, "minutes": 40.2}
    peer = {**row(0, 0.62, 80.0, 5.0), "epochs": 0.4}
    lines = "\n".join(ttq.table([dcgan, mlp], peer, budget=40))
    assert "| dcgan | 5.0 | 3 | 99.20%, FD 4.90 |" in lines
    assert "| mlp | not within 40 | 2 | 99.10%, FD 6.00 |" in lines
    assert "after the same 5.0 min of training | not reached | 0.4 | 62.00%, FD 80.00 |" in lines


def test_speed_rows_are_measured_in_rounds_and_keep_their_best(load_script, monkeypatch):
    """A burst of other work slows different rows in each round; each row keeps its best."""
    bench = load_script("bench_speed")
    calls, rates = [], iter([100, 50, 80, 90, 120, 60])
    peaks = iter([(150, 150), (150, 150), (150, 150), (150, 150), (150, 100), (100, 100)])

    def run(*config):
        calls.append(config[0])
        before, after = next(peaks)
        return {"images_per_s": next(rates), "peak_before": before, "peak_after": after}

    monkeypatch.setattr(bench, "run_config", run)
    best = bench.best_of(3, [("mlp",), ("dcgan",)])
    assert calls == ["mlp", "dcgan"] * 3
    # the mlp's 120 came while the machine changed under it (peaks 150 -> 100): not kept
    assert [r["images_per_s"] for r in best] == [100, 90]


def test_quality_targets_judge_each_target_and_say_what_was_not_measured(load_script):
    """The quality issue's targets from cgan-eval reports: the FD against the mean real
    reference, CAS per samples per class, the mlp's own targets judged, the rest informative."""
    targets = load_script("quality_targets")
    generator = {"conditional_accuracy": 0.996, "per_class_accuracy": [0.995] * 9 + [0.987],
                 "frechet_distance": 2.4, "precision": 0.86, "recall": 0.82,
                 "parzen_log_likelihood": 230.0}
    first = {"generator": generator, "real_reference": {"mean": 1.3},
             "cas": {"cas_n_per_class": 1000, "cas_gap": 0.4}}
    rows = {r[0]: r[1:] for r in targets.target_rows([first], "dcgan")}
    assert rows["conditional accuracy"] == ["99.60%", ">= 99.5%", "met"]
    assert rows["worst class accuracy"] == ["98.70%", ">= 99%", "not met"]
    assert rows["Fréchet distance / mean real reference"] == ["1.85x", "<= 2x", "met"]
    assert rows["recall"][2] == "not met" and rows["Parzen (nats)"][2] == "met"
    assert rows["CAS gap, 1,000 per class (points)"] == ["0.40", "<= 0.5", "met"]
    assert rows["CAS gap, 6,000 per class (points)"] == ["not measured", "<= 0.5",
                                                         "not measured"]
    bare = {"generator": generator}
    mlp = {r[0]: r[1:] for r in targets.target_rows([bare], "mlp")}
    assert mlp["worst class accuracy"] == ["98.70%", ">= 98.5%", "met"]
    assert mlp["recall"] == ["0.820", ">= 0.8", "met"]
    assert mlp["precision"][2] == "information"
    assert mlp["Fréchet distance / mean real reference"][0] == "not measured"


@pytest.mark.slow  # compiles 24 small XLA functions: about 10 s
def test_layer_profile_times_every_weighted_layer_with_its_counted_flops(load_script):
    """profile_step --layers: each weighted layer of cgan-train's default networks, once,
    timed, with models.layer_flops' count for the batch."""
    from cgan_mnist import models, training
    from cgan_mnist.config import validate_train_options

    rows = load_script("profile_step").layer_rows("mlp", steps=1)
    cfg = validate_train_options({"arch": "mlp", "seed": 0})
    weighted = [layer for m in models.build_models(training.model_config(cfg, 10))
                for layer in m.layers if layer.trainable_weights]
    assert [r["layer"] for r in rows] == [layer.name for layer in weighted]
    assert all(r["forward"] > 0 and r["both"] > 0 for r in rows)
    assert [r["flops"] for r in rows] == [cfg.batch_size * models.layer_flops(layer)
                                          for layer in weighted]
    assert rows[0]["flops"] > 0


def test_speed_shares_are_refused_when_the_peak_moved_during_the_run(load_script):
    """A busy host once halved the measured peak mid-session: the shares then mean nothing."""
    bench = load_script("bench_speed")
    peak = lambda gflops: {"matmul": gflops, "conv": 100.0}  # noqa: E731
    assert bench.steady_peak(peak(180.0), peak(170.0)) == (peak(180.0), "")
    kept, warning = bench.steady_peak(peak(88.0), peak(179.0))
    assert kept == peak(179.0)
    assert "88 to 179" in warning and "not quiet" in warning
    assert bench.is_steady({"peak_before": 150.0, "peak_after": 130.0})
    assert not bench.is_steady({"peak_before": 150.0, "peak_after": 124.0})
    line = bench.table([{"arch": "mlp", "column": "now", "xla": True, "batch": 64,
                         "dtype": "float32", "images_per_s": 2000.0, "flops_per_image": 40e6,
                         "pipeline_images_per_s": 50000.0, "peak_rss_mib": 1200.0,
                         "peak_before": 100.0, "peak_after": 160.0}]).splitlines()[-1]
    assert "| 80.0 | 100 / 160 (unsteady) | 50% |" in line  # of the row's own, larger peak


def test_only_an_unsteady_row_that_a_target_is_judged_on_blocks_writing(load_script):
    """Stop 23's run was refused for a comparison row (one thread) alone; now such a row is
    written marked, and only "now" or the keras.io recipe without a steady round blocks."""
    bench = load_script("bench_speed")

    def row(arch, column, ips, before=100.0, after=100.0):
        return {"arch": arch, "column": column, "images_per_s": ips, "flops_per_image": 40e6,
                "peak_rss_mib": 1000.0, "peak_before": before, "peak_after": after}

    rows = [row("mlp", "before", 1000.0), row("mlp", "now", 2000.0),
            row("mlp", "now, 1 intra-op thread", 1200.0, after=60.0),
            row("keras.io", "recipe, Model.fit", 100.0)]
    assert bench.unsteady_judged(rows) == []
    assert "now, 1 intra-op thread / now = 0.60x (unsteady)" in bench.verdicts(rows)[0]
    assert "now / before (XLA) = 2.00x;" in bench.verdicts(rows)[0]  # steady: unmarked
    rows[1]["peak_after"] = 130.0
    rows[3]["peak_before"] = 70.0
    assert bench.unsteady_judged(rows) == ["mlp now", "keras.io recipe, Model.fit"]
