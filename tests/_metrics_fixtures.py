"""Shared, memoised fixtures of the metrics tests (a tiny digits classifier is trained once per session)."""
from __future__ import annotations

import functools

from imagegen.data import build_dataset
from imagegen.metrics.cache import dataset_hash
from imagegen.metrics.classifier import ClassifierConfig, DatasetClassifier, TrainRecipe, classifier_cache_dir, train_classifier

TINY = ClassifierConfig(channels=1, num_classes=10, widths=(8, 8, 16, 16))
QUICK = TrainRecipe(epochs=1, min_steps=120, batch_size=64, lr=1e-2)


@functools.lru_cache(maxsize=None)
def digits_splits():
    """(train, test) of the bundled digits at native 8x8 (do not modify them in place)."""
    return build_dataset("digits", split="train"), build_dataset("digits", split="test")


@functools.lru_cache(maxsize=None)
def tiny_digits_classifier() -> tuple[DatasetClassifier, float]:
    """A 16-feature classifier trained on digits in ~2 s (about 95 % test accuracy)."""
    train, test = digits_splits()
    return train_classifier(train, test, config=TINY, recipe=QUICK)


def install_tiny_classifier(cache) -> DatasetClassifier:
    """Save the tiny classifier where the default recipe would cache the digits classifier, so code that
    trains one on demand (evaluate, TrainingEvaluator) loads it instead and the tests stay fast."""
    model, _ = tiny_digits_classifier()
    train, _ = digits_splits()
    d = classifier_cache_dir("digits", dataset_hash(train), ClassifierConfig(channels=1, num_classes=10),
                             TrainRecipe(), cache)
    model.save(d)
    return model
