"""Measuring a generator: ``cgan-eval``'s flow, and the quick check of ``--eval-interval``.

The pieces: ``evaluator`` (the yardstick, trained once per dataset and
cached), ``measuring`` (reference sets and metrics), ``report`` (the table).
A run is measured against its own dataset, read from its config.json:
Fashion-MNIST with the Fashion-MNIST evaluator, never silently MNIST's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from . import data, generate, outputs, run_folder
from .config import DATASETS, TrainConfig
from .errors import UsageError
from .evaluator import load_or_train
from .measuring import (build_reference, evaluate, evaluation_rng, measure,
                        real_reference_spread, require_splits)
from .report import percent

QUICK_PER_CLASS = TrainConfig.eval_per_class  # cgan-train --eval-interval


@dataclass(frozen=True)
class EvalRequest:
    model: Path
    n_per_class: int
    seed: int
    json: Path | None
    confusion_png: Path | None
    data_dir: str | None = None
    dataset: str = "mnist"            # the run's dataset, from its config.json
    data_path: str | None = None      # where the run found it
    cas: bool = False                 # also the classification accuracy score (trains: minutes)
    reference_seeds: int = 0          # also the real-data FD at seeds 0..K-1, and its mean


def request_for(model: Path, n_per_class: int, seed: int, json: Path | None,
                data_dir: str | None, cas: bool = False, reference_seeds: int = 0,
                dataset: str | None = None) -> EvalRequest:
    """A request that measures ``model`` against the dataset its run trained on; for a
    model without its run's config.json, against ``dataset`` (default: MNIST)."""
    if dataset is not None and dataset not in DATASETS and not data.is_npz_path(dataset):
        raise UsageError(f"unknown --dataset {dataset!r}; choose one of {', '.join(DATASETS)} "
                         f"or a .npz file")
    stored = run_folder.read_config(model.parent)
    name, path = run_folder.run_section(stored, "data", "name"), run_folder.recorded_data(stored)[0]
    if isinstance(name, str) and dataset not in (None, name):
        raise UsageError(f"{model} was trained on {name}, not {dataset}: drop --dataset (its "
                         f"run's config.json names the data)")
    paths = run_folder.for_model(model)
    return EvalRequest(model, n_per_class, seed, json, paths.confusion_plot, data_dir,
                       name if isinstance(name, str) else dataset or "mnist", path, cas,
                       reference_seeds)


def run(request: EvalRequest, log=print) -> dict:
    """Load (failing fast on a bad model or data), then measure; writes nothing."""
    generator = generate.load_generator(request.model)
    dataset = data.load_recorded(request.dataset, request.data_path, request.data_dir)
    require_splits(dataset)
    evaluator = load_or_train(dataset, log=log)
    sampler = partial(generate.sample, generator)
    result = evaluate(sampler, dataset, request.n_per_class, request.seed, evaluator=evaluator,
                      log=log)
    if request.reference_seeds:
        log(f"measuring: the real data's Fréchet distance at seeds 0-{request.reference_seeds - 1}")
        result["real_reference"] = real_reference_spread(
            dataset, evaluator, request.n_per_class, range(request.reference_seeds))
    if request.cas:
        from .cas import classification_accuracy_score

        result["cas"] = classification_accuracy_score(sampler, dataset, request.n_per_class,
                                                      request.seed, log=log)
    return result


def write_json(request: EvalRequest, result: dict) -> list[Path]:
    """The numbers as --json (not optional: a failure is an error)."""
    return [outputs.write_json(request.json, result)] if request.json is not None else []


def write_extras(request: EvalRequest, result: dict, warn=print) -> list[Path]:
    """Optional files (the confusion heat map): a failure is a warning, never an error."""
    if request.confusion_png is None:
        return []
    try:
        return [outputs.plot_confusion(request.confusion_png, result["generator"]["confusion"])]
    except OSError as err:
        warn(f"warning: could not write {request.confusion_png} ({err.strerror or err}); "
             "the numbers above are complete")
        return []


class QualityTracker:
    """cgan-train --eval-interval: a quick quality check every K epochs.

    Quick: ``QUICK_PER_CLASS`` samples per class from the same noise each time
    (so epochs compare), no Parzen estimate and no real-data row. The rows go
    to quality.csv and plots/quality.png, both rewritten whole each time.
    """

    def __init__(self, evaluator, dataset: data.Dataset, csv_path: Path, plot_path: Path,
                 seed: int, log=print, n_per_class: int = QUICK_PER_CLASS):
        self.evaluator, self.csv_path, self.plot_path = evaluator, csv_path, plot_path
        self.seed, self.log, self.n_per_class = seed, log, n_per_class
        self.num_classes = dataset.num_classes
        rng = evaluation_rng(seed)
        self.reference = build_reference(dataset, evaluator, n_per_class, rng, parzen=False)
        self.rows: list[dict] = []
        log(f"quality every few epochs: {dataset.name} evaluator, test accuracy "
            f"{percent(evaluator.test_accuracy)}, {n_per_class} samples per class")

    @classmethod
    def for_run(cls, dataset: data.Dataset, paths, seed: int, evaluator=None, log=print,
                n_per_class: int = QUICK_PER_CLASS):
        """The tracker of a run, with the dataset's own evaluator unless one is given."""
        require_splits(dataset)
        evaluator = evaluator or load_or_train(dataset, log=log)
        return cls(evaluator, dataset, paths.quality, paths.quality_plot, seed, log, n_per_class)

    def resume(self, completed_epochs: int) -> None:
        """Keep the rows of epochs that the restored checkpoint has completed."""
        if self.csv_path.exists():
            self.rows = [r for r in run_folder.read_quality(self.csv_path)
                         if r["epoch"] <= completed_epochs]

    def record(self, epoch: int, step: int, generator) -> dict:
        images, labels = generate.sample(generator, range(self.num_classes), self.n_per_class,
                                         self.seed)
        measured = measure(images, labels, self.evaluator, self.reference, self.num_classes)
        row = {"epoch": epoch, "step": step,
               **{k: measured[k] for k in run_folder.QUALITY_METRICS}}
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        run_folder.write_quality(self.csv_path, self.rows)
        outputs.plot_quality(self.plot_path, self.rows)
        self.log(f"quality {epoch:>3}: conditional accuracy {percent(row['conditional_accuracy'])}"
                 f"  Fréchet {row['frechet_distance']:.3f}  classifier score "
                 f"{row['classifier_score']:.2f}  precision {row['precision']:.3f}  "
                 f"recall {row['recall']:.3f}")
        return row
