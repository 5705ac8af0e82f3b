"""The shipped evaluators can be made again: the recipe, rerun here, reaches the same accuracy.

Minutes of training (6 epochs on 50,000 images), so not part of the default run:
``python -m pytest -m evaluator_retrain``.
"""

from __future__ import annotations

import json

import pytest

from cgan_mnist import evaluator


@pytest.mark.slow
@pytest.mark.evaluator_retrain
def test_retraining_the_mnist_evaluator_matches_the_shipped_one(mnist):
    shipped = json.loads(evaluator.cache_paths(mnist, evaluator.SHIPPED).info.read_text())
    assert shipped["recipe"] == evaluator.Recipe().to_dict()
    _, info = evaluator.train_classifier(mnist, evaluator.Recipe(), log=print)
    assert abs(info["test_accuracy"] - shipped["test_accuracy"]) <= 0.003
