"""Sample-quality metrics against known answers; the evaluator, its cache, and the
quality checks during training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cgan_mnist import (api, arguments, data, evaluation, evaluator, measuring, metrics, outputs,
                        run_folder, sources)
from cgan_mnist.errors import UsageError

# --- Fréchet distance ------------------------------------------------------------------


def _rotation(dim, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return q


def test_psd_sqrt_squares_back_and_ignores_rounding_below_zero():
    a = np.random.default_rng(0).standard_normal((6, 4))
    cov = a @ a.T  # rank 4 of 6: two eigenvalues are zero, or rounding's -1e-16
    root = metrics.psd_sqrt(cov)
    np.testing.assert_allclose(root @ root, cov, atol=1e-10)
    np.testing.assert_allclose(root, root.T)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(1).standard_normal((500, 32)) @ _rotation(32, 2)
    assert metrics.frechet_distance_of(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form_for_two_gaussians():
    # Same eigenvectors: d = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    q = _rotation(5, 3)
    a, b = np.array([1.0, 2.0, 0.5, 4.0, 0.1]), np.array([3.0, 1.0, 0.5, 1.0, 2.0])
    mu1, mu2 = np.arange(5.0), np.arange(5.0)[::-1]
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    d = metrics.frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert d == pytest.approx(closed, rel=1e-10)


def test_frechet_distance_of_non_commuting_covariances():
    rng = np.random.default_rng(4)
    c1, c2 = (m @ m.T + 0.1 * np.eye(4) for m in rng.standard_normal((2, 4, 4)))
    # tr((C1 C2)^(1/2)) from the eigenvalues of the non-symmetric product itself.
    trace_sqrt = np.sum(np.sqrt(np.linalg.eigvals(c1 @ c2).real))
    expected = np.trace(c1) + np.trace(c2) - 2 * trace_sqrt
    assert metrics.frechet_distance(np.zeros(4), c1, np.zeros(4), c2) == pytest.approx(expected)


def test_frechet_distance_from_samples_approaches_the_closed_form():
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 1.0, (100_000, 2))
    y = rng.normal(1.0, 2.0, (100_000, 2))
    closed = 2 * 1.0**2 + 2 * (1.0 - 2.0) ** 2  # |mu diff|^2 + sum (sigma1 - sigma2)^2 = 4
    assert metrics.frechet_distance_of(x, y) == pytest.approx(closed, rel=0.02)


# --- classifier score and conditional accuracy -------------------------------------------


def test_classifier_score_bounds():
    assert metrics.classifier_score(np.eye(10)[np.arange(1000) % 10]) == pytest.approx(10.0)
    constant = np.tile(np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum(), (50, 1))
    assert metrics.classifier_score(constant) == pytest.approx(1.0)
    assert metrics.classifier_score(np.full((7, 10), 0.1)) == pytest.approx(1.0)


def test_conditional_accuracy_and_confusion():
    asked = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    result = metrics.conditional_accuracy(predicted, asked, 3)
    assert result["overall"] == pytest.approx(4 / 6)
    assert result["per_class"] == pytest.approx([0.5, 1.0, 0.5])
    assert result["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


# --- precision and recall ----------------------------------------------------------------


def test_precision_and_recall_of_identical_and_of_far_apart_sets():
    points = np.random.default_rng(6).standard_normal((300, 8))
    assert metrics.precision_recall(points, points.copy()) == (1.0, 1.0)
    assert metrics.precision_recall(points, points + 100.0) == (0.0, 0.0)


def test_precision_recall_tell_mode_collapse_from_noise():
    rng = np.random.default_rng(7)
    real = rng.standard_normal((2000, 2))
    collapsed = 0.1 * rng.standard_normal((2000, 2))  # realistic but not varied
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision > 0.95 and recall < 0.3


def test_knn_radii_and_chunking_agree_with_brute_force():
    points = np.random.default_rng(8).standard_normal((50, 3))
    brute = np.sort(((points[:, None] - points[None]) ** 2).sum(-1), axis=1)[:, 3]
    blocks = list(metrics.squared_distance_blocks(points, points, block_elements=100))
    assert len(blocks) > 1
    np.testing.assert_allclose(np.concatenate([b for _, b in blocks]),
                               ((points[:, None] - points[None]) ** 2).sum(-1), atol=1e-12)
    np.testing.assert_allclose(metrics.knn_radii_sq(points, 3), brute, atol=1e-12)
    np.testing.assert_allclose(metrics.knn_radii_sq(points, 3, block_elements=100), brute,
                               atol=1e-12)


def test_knn_radii_hold_one_block_at_a_time():
    """cgan-eval --n-per-class 6000 was OOM-killed at 22 GB: each radius was a view that kept
    its whole partitioned block of distances alive. 250 blocks of 512 KiB here."""
    import tracemalloc

    points = np.random.default_rng(9).standard_normal((4000, 2))
    tracemalloc.start()
    try:
        metrics.knn_radii_sq(points, 3, block_elements=2**16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # the leak: 125 MiB


# --- Parzen window -----------------------------------------------------------------------


def _brute_parzen(x, centers, sigma):
    """log of the mean over centers of a product of 1-D normal densities."""
    density = np.exp(-((x[:, None, :] - centers[None]) ** 2) / (2 * sigma**2))
    density = density / np.sqrt(2 * np.pi * sigma**2)
    return np.log(density.prod(axis=2).mean(axis=1))


def test_parzen_log_likelihood_matches_brute_force():
    rng = np.random.default_rng(9)
    x, centers = rng.uniform(size=(6, 3)), rng.uniform(size=(9, 3))
    sigmas = [0.2, 0.5, 1.0]
    got = metrics.parzen_log_likelihoods(x, centers, sigmas)
    for i, sigma in enumerate(sigmas):
        np.testing.assert_allclose(got[i], _brute_parzen(x, centers, sigma), rtol=1e-10)
    best, means = metrics.choose_parzen_sigma(x, centers, sigmas)
    assert best == sigmas[int(np.argmax([_brute_parzen(x, centers, s).mean() for s in sigmas]))]
    mean, error = metrics.parzen_estimate(x, centers, 0.5)
    brute = _brute_parzen(x, centers, 0.5)
    assert (mean, error) == pytest.approx((brute.mean(), brute.std() / np.sqrt(6)))


def test_parzen_stays_finite_where_every_density_underflows():
    x, centers = np.zeros((2, 784)), np.ones((3, 784))  # exp(-784 / 0.02) == 0.0 in float64
    ll = metrics.parzen_log_likelihoods(x, centers, [0.1])[0]
    expected = -784 / (2 * 0.01) - 784 / 2 * np.log(2 * np.pi * 0.01)
    np.testing.assert_allclose(ll, expected)


# --- reference sets and the cache location ------------------------------------------------


def test_balanced_indices_draw_without_repeats_then_tile():
    labels = np.array([0] * 5 + [1] * 2)
    rng = np.random.default_rng(0)
    idx = measuring.balanced_indices(labels, 4, 2, rng)
    assert labels[idx].tolist() == [0] * 4 + [1] * 4
    assert len(set(idx[:4])) == 4
    assert sorted(idx[4:].tolist()) == [5, 5, 6, 6]  # 2 images, each used twice


def test_cache_dir_follows_the_environment(tmp_path):
    assert evaluator.cache_dir({"CGAN_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert evaluator.cache_dir({"XDG_CACHE_HOME": "/x"}) == evaluation.Path("/x/cgan-mnist")
    assert evaluator.cache_dir({}).parts[-2:] == (".cache", "cgan-mnist")


# --- the evaluator ---------------------------------------------------------------------


@pytest.mark.slow
def test_evaluator_tells_real_digits_from_noise(tiny_evaluator, mnist):
    assert tiny_evaluator.test_accuracy > 0.85
    x, _ = data.to_model_inputs(mnist.test.images[-1000:], mnist.test.labels[-1000:], 10)
    probs, features = tiny_evaluator.classify(x)
    assert features.shape == (1000, 128) and np.allclose(probs.sum(1), 1.0)
    assert np.mean(probs.argmax(1) == mnist.test.labels[-1000:]) > 0.85
    noise = np.random.default_rng(0).uniform(-1, 1, (1000, 28, 28, 1)).astype(np.float32)
    asked = np.arange(1000) % 10
    noise_accuracy = metrics.conditional_accuracy(
        tiny_evaluator.classify(noise)[0].argmax(1), asked, 10)["overall"]
    assert 0.03 < noise_accuracy < 0.2, noise_accuracy


def _small_recipe(**changes):
    return evaluator.Recipe(train_examples=128, epochs=1, batch_size=64, **changes)


@pytest.mark.slow
def test_cache_is_reused_and_rebuilt_when_stale_or_corrupt(tmp_path, tiny_data):
    tiny = tiny_data
    paths = evaluator.cache_paths(tiny, tmp_path)

    def load(recipe=_small_recipe()):
        lines = []
        trained = evaluator.load_or_train(tiny, recipe=recipe, cache=tmp_path,
                                          log=lines.append, shipped=None)
        return trained, " ".join(lines)

    first, log = load()
    assert "none cached yet" in log and paths.model.is_file()
    assert json.loads(paths.info.read_text())["test_accuracy"] == first.test_accuracy
    again, log = load()
    assert log == "" and again.test_accuracy == first.test_accuracy
    assert "stale" in load(_small_recipe(seed=1))[1]
    paths.info.write_text("{not json")
    assert "unreadable" in load()[1]
    paths.model.write_bytes(b"\x00garbage" * 50)
    assert "corrupt" in load()[1]
    assert load()[1] == ""


def test_fingerprint_is_the_content_whatever_the_file_format(tmp_path, tiny_data,
                                                            synthetic_fashion_dir):
    """It used to hash the data file's bytes, and failed on Fashion-MNIST's IDX folder."""
    fashion = data.load("fashion_mnist", str(synthetic_fashion_dir))
    copy = tmp_path / "copy.npz"
    np.savez(copy, x_train=tiny_data.train.images, y_train=tiny_data.train.labels,
             x_test=tiny_data.test.images, y_test=tiny_data.test.labels)
    recipe = evaluator.Recipe()
    ours = evaluator.fingerprint(tiny_data, recipe)
    assert ours == evaluator.fingerprint(sources.load_custom_npz(copy), recipe)
    assert ours != evaluator.fingerprint(tiny_data, _small_recipe())
    assert evaluator.fingerprint(fashion, recipe) not in (ours, None)
    paths = evaluator.cache_paths(fashion, tmp_path)
    assert paths.model.name == "evaluator_fashion_mnist.keras"  # its own, never MNIST's


def test_measuring_refuses_a_held_out_part_without_every_class_or_no_test_split(tiny_data):
    from cgan_mnist.errors import UserError

    order = np.argsort(tiny_data.train.labels, kind="stable")
    sorted_data = data.Dataset("sorted", Path("sorted.npz"), data.Split(
        tiny_data.train.images[order], tiny_data.train.labels[order]), tiny_data.test)
    with pytest.raises(UserError, match="too few training images"):
        measuring.evaluate(None, sorted_data, 10, evaluator=None)
    big = data.Dataset("mine.npz", Path("mine.npz"), data.Split(
        np.zeros((6000, 28, 28), np.uint8), np.arange(6000) % 10), None)
    with pytest.raises(UserError, match="mine.npz has no test split"):
        measuring.require_splits(big)


# --- during training: quality.csv survives resume and changes nothing else -----------------


def _train(outdir, data_dir, evaluator, epochs, **extra):
    from cgan_mnist.config import validate_train_options
    from cgan_mnist.training import train

    options = {"arch": "mlp", "epochs": epochs, "limit": 128, "batch_size": 32, "seed": 5,
               "g_width": 8, "d_width": 8, "latent_dim": 8, "outdir": str(outdir),
               "data_dir": str(data_dir), "xla": False, "checkpoint_interval": 1, **extra}
    stored = json.loads((outdir / "config.json").read_text()) if extra.get("resume") else None
    train(validate_train_options(options, stored), log=lambda line: None, progress=False,
          evaluator=evaluator)


def _generator_weights(outdir):
    import keras

    return keras.models.load_model(outdir / "generator.keras").get_weights()


@pytest.fixture(scope="module")
def shapes_evaluator(tmp_path_factory, tiny_data):
    """An evaluator of the made-up shapes (1 epoch on 128 images): enough to measure with."""
    return evaluator.load_or_train(tiny_data, recipe=_small_recipe(), log=lambda line: None,
                                    cache=tmp_path_factory.mktemp("shapes_evaluator"))


@pytest.mark.slow
@pytest.mark.cpu_only_determinism
def test_quality_during_training_survives_resume_and_disturbs_nothing(tmp_path, tiny_data_dir,
                                                                        shapes_evaluator):
    plain, stopped = tmp_path / "plain", tmp_path / "stopped"
    _train(plain, tiny_data_dir, None, epochs=2)
    _train(stopped, tiny_data_dir, shapes_evaluator, epochs=1, eval_interval=1)
    first = run_folder.read_quality(stopped / "quality.csv")
    # A row from an epoch that the checkpoint never reached (a crash after the check):
    run_folder.write_quality(stopped / "quality.csv", first + [{**first[0], "epoch": 7}])
    _train(stopped, tiny_data_dir, shapes_evaluator, epochs=2, resume=True)

    rows = run_folder.read_quality(stopped / "quality.csv")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0] == first[0]
    assert [r["step"] for r in rows] == [4, 8]
    assert 0.0 <= rows[1]["conditional_accuracy"] <= 1.0 and rows[1]["frechet_distance"] > 0
    assert outputs.read_png(stopped / "plots" / "quality.png").ndim == 3
    # Measuring (and resuming) leaves training exactly as a plain run without checks.
    for a, b in zip(_generator_weights(plain), _generator_weights(stopped)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_quick_check_measures_eval_per_class_samples(tmp_path, tiny_data, shapes_evaluator):
    """--eval-per-class sizes each check (the time-to-quality benchmark measures 1,000)."""
    from cgan_mnist import training
    from cgan_mnist.config import validate_train_options

    cfg = validate_train_options({"eval_interval": 1, "eval_per_class": 12, "seed": 3})
    tracker = training._quality_check(cfg, run_folder.RunPaths(tmp_path), tiny_data,
                                      shapes_evaluator, log=lambda line: None)
    assert tracker.n_per_class == 12
    assert len(tracker.reference.features) == 12 * tiny_data.num_classes


def test_the_real_reference_spread_is_the_real_row_of_each_seed(tiny_data, shapes_evaluator):
    """--reference-seeds K: the real-data FD that cgan-eval --seed s reports, for s < K,
    and their mean, which the report sets the generator's FD against."""
    from cgan_mnist import measuring
    from cgan_mnist.report import format_report

    def sampler(classes, n, seed):  # real test images stand in for samples
        return measuring.real_images(tiny_data, n, np.random.default_rng(seed))

    rows = [measuring.evaluate(sampler, tiny_data, 8, seed, evaluator=shapes_evaluator)
            ["real"]["frechet_distance"] for seed in (0, 1, 2)]
    spread = measuring.real_reference_spread(tiny_data, shapes_evaluator, 8, range(3))
    np.testing.assert_allclose(spread["frechet_distance"], rows, rtol=1e-6)
    assert spread["mean"] == pytest.approx(np.mean(rows)) and len(set(rows)) == 3
    result = measuring.evaluate(sampler, tiny_data, 8, 0, evaluator=shapes_evaluator)
    report = format_report({**result, "real_reference": spread})
    ratio = result["generator"]["frechet_distance"] / spread["mean"]
    assert f"real data's Fréchet distance over seeds 0-2: mean {spread['mean']:.3f}" in report
    assert f"the generator's is {ratio:.2f}x that mean" in report


def test_cgan_eval_measures_a_run_against_its_own_dataset(tmp_path):
    """cgan-eval used to score every run with MNIST's evaluator, Fashion-MNIST runs too."""
    (tmp_path / "config.json").write_text(json.dumps(
        {"run": {"data": {"name": "fashion_mnist", "path": "/data/fashion-mnist"}}}))
    request = evaluation.request_for(tmp_path / "generator.keras", 10, 0, None, None)
    assert (request.dataset, request.data_path) == ("fashion_mnist", "/data/fashion-mnist")
    bare = evaluation.request_for(tmp_path / "model" / "g.keras", 10, 0, None, None)
    assert (bare.dataset, bare.data_path) == ("mnist", None)  # a model alone: MNIST


def test_cgan_eval_dataset_names_a_lone_models_data_and_cannot_contradict_a_run(tmp_path):
    """A generator.keras copied away from its run was measured as MNIST, whatever it drew."""
    lone = tmp_path / "lone" / "g.keras"
    args = arguments.eval_parser().parse_args(["--model", str(lone), "--dataset", "fashion_mnist"])
    assert arguments.validate_eval_args(args).dataset == "fashion_mnist"
    (tmp_path / "config.json").write_text(json.dumps({"run": {"data": {"name": "mnist"}}}))
    for dataset, error in (("fashion_mnist", "was trained on mnist, not fashion_mnist: drop "
                                             "--dataset"),
                           ("cifar", "unknown --dataset 'cifar'")):
        args = arguments.eval_parser().parse_args(["--model", str(tmp_path / "generator.keras"),
                                                   "--dataset", dataset])
        with pytest.raises(UsageError, match=error):
            arguments.validate_eval_args(args)
    args = arguments.eval_parser().parse_args(["--outdir", str(tmp_path), "--dataset", "mnist"])
    assert arguments.validate_eval_args(args).dataset == "mnist"  # agreeing is fine
    with pytest.raises(UsageError, match="not fashion_mnist"):  # the notebook API checks it too
        api.evaluate(tmp_path, dataset="fashion_mnist")


@pytest.mark.slow
@pytest.mark.skipif(not (sources.FASHION_SYSTEM_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_is_measured_with_the_shipped_fashion_evaluator(tmp_path):
    fashion = data.load("fashion_mnist", None)
    chosen = evaluator.load_or_train(fashion, cache=tmp_path, log=pytest.fail)  # trains nothing
    assert chosen.info["dataset"] == "fashion_mnist" and chosen.path.parent == evaluator.SHIPPED
    assert 0.9 < chosen.test_accuracy < 0.95  # Fashion-MNIST's, not MNIST's 99%
