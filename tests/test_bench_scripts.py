"""The benchmark scripts' pure parts: they rewrite only their own sections of BENCHMARKS.md."""

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
