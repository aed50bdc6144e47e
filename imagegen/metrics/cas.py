"""Classification Accuracy Score (CAS) of class-conditional generative models.

Ravuri & Vinyals 2019, "Classification Accuracy Score for Conditional Generative Models", §3: draw a
labelled data set from the model (here ``samples_per_class`` samples of every class), train a
classifier on these samples only, and report its top-1 accuracy on the real test split. A model whose
class-conditional distributions match the data's gets the accuracy of the same classifier trained
on real data (the paper's "real data" baseline); a model that drops modes or mixes up classes gets
less, however sharp its samples look.

The classifier is a fresh :class:`~imagegen.metrics.classifier.DatasetClassifier` of the dataset
classifier's architecture, trained with its recipe (:class:`~imagegen.metrics.classifier.TrainRecipe`:
Adam, one-cycle learning rate, no augmentation, the seed of the recipe), so CAS is directly comparable
with the dataset classifier's own test accuracy, which is recorded beside it where known. The paper
uses a ResNet-50 on ImageNet; values here are comparable only under the same recipe (recorded in the
protocol), not with published numbers. Generated images are quantised to uint8 levels first, as
every other metric does (the same numbers as for the saved samples).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import torch

from ..errors import ConfigError, DataError, ImagegenError
from ..sampling.api import SAMPLE_BATCH
from .classifier import ClassifierConfig, TrainRecipe, train_classifier

#: the paper the metric follows, recorded in every protocol
PAPER = "Ravuri & Vinyals 2019, Classification Accuracy Score for Conditional Generative Models, §3"
#: the recipe CAS classifiers are trained with (the dataset classifier's default recipe)
CAS_RECIPE = TrainRecipe()
#: stage widths of the CAS classifier (the dataset classifier's default architecture)
CAS_WIDTHS: tuple[int, int, int, int] = ClassifierConfig(channels=1, num_classes=2).widths


def cas_config(channels: int, num_classes: int) -> ClassifierConfig:
    """The CAS classifier's architecture for ``channels`` and ``num_classes``: the dataset classifier's."""
    return ClassifierConfig(channels=channels, num_classes=num_classes, widths=CAS_WIDTHS)


def balanced_labels(num_classes: int, samples_per_class: int) -> torch.Tensor:
    """int64 [K·n] labels 0, 1, …, K-1, 0, 1, … (every class ``samples_per_class`` times, interleaved as
    ``imagegen evaluate`` draws them, so a prefix of its samples is itself balanced)."""
    return torch.arange(num_classes * samples_per_class) % num_classes


def classification_accuracy_score(images: torch.Tensor, labels: torch.Tensor, test: Any, *,
                                  config: Optional[ClassifierConfig] = None, recipe: Optional[TrainRecipe] = None,
                                  device: str | torch.device = "cpu", name: str = "generated",
                                  log: Optional[Callable[[str], None]] = None) -> tuple[float, dict[str, Any]]:
    """Train a classifier on labelled images (generated ones for CAS) and score it on real test data.

    Args:
        images: uint8 [N, C, H, W] in [0, 255], or float [N, C, H, W] in [-1, 1] (quantised to uint8 first).
        labels: int64 [N] class indices in [0, K).
        test: labelled :class:`~imagegen.data.ImageDataset` (the real test split), K classes; any size
            and channel count (the classifier converts and resizes to 32 x 32).
        config: classifier architecture (default :func:`cas_config` for C and K).
        recipe: training recipe (default :data:`CAS_RECIPE`).
        device: training device.
        name: what the images are, for the protocol.
        log: progress lines (e.g. ``print``), None for silence.

    Returns:
        ``(accuracy in [0, 1], protocol)``: the protocol records the paper, the classifier architecture
        and recipe (epochs, steps, batch size, learning rate, seed), the numbers of training images per
        class and of test images.

    Raises:
        DataError: ``test`` has no labels, or its class count is not K.
        ImagegenError: images not [N, C, H, W] with C = 1 or 3, labels not [N], or a class without images.
    """
    from ..data import ImageDataset
    from .evaluate import quantize

    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ImagegenError(f"CAS needs images [N, 1|3, H, W], got shape {tuple(images.shape)}")
    labels = torch.as_tensor(labels, dtype=torch.int64).cpu()
    if labels.shape != (len(images),):
        raise ImagegenError(f"CAS needs one label per image: {len(images)} images, labels of shape "
                            f"{tuple(labels.shape)}")
    if test.labels is None:
        raise DataError(f"CAS needs a labelled test set; {test.name!r} has no labels")
    k = test.num_classes
    counts = torch.bincount(labels, minlength=k) if len(labels) and labels.min() >= 0 else None
    if counts is None or len(counts) != k:
        raise DataError(f"CAS: the images are labelled with classes outside 0..{k - 1} of the test set "
                        f"{test.name!r} ({k} classes); evaluate against the model's own dataset")
    if bool((counts == 0).any()):
        missing = (counts == 0).nonzero().flatten().tolist()
        raise ImagegenError(f"CAS: no training images of class(es) {missing[:10]}; generate every class")
    if images.dtype != torch.uint8:
        images = quantize(images)
    train = ImageDataset(images.permute(0, 2, 3, 1).cpu().numpy(), labels.numpy(), name=name,
                         class_names=getattr(test, "class_names", None))
    config = config or cas_config(train.channels, k)
    recipe = recipe or CAS_RECIPE
    if log:
        log(f"cas: training a classifier on {len(train):,} {name} images ({int(counts.min())}-"
            f"{int(counts.max())} per class), testing on {len(test):,} real images of {test.name}")
    _, acc = train_classifier(train, test, config=config, recipe=recipe, device=device, log=log)
    steps = max(recipe.epochs * -(-len(train) // recipe.batch_size), recipe.min_steps)
    protocol = {
        "metric": "cas", "paper": PAPER,
        "classifier": {"arch": "DatasetClassifier (imagegen.metrics.classifier)",
                       **dataclasses.asdict(config)},
        "recipe": {**dataclasses.asdict(recipe), "steps": steps, "augmentation": "none",
                   "optimizer": "Adam, one-cycle learning rate", "loss": "cross-entropy"},
        "train_images": name, "num_train": len(train),
        "samples_per_class": int(counts.min()) if int(counts.min()) == int(counts.max()) else counts.tolist(),
        "test": {"dataset": test.name, "num_images": len(test)},
    }
    return acc, protocol


def generate_labelled(model: Any, samples_per_class: int, *, seed: int = 0, batch_size: int = SAMPLE_BATCH,
                      **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``samples_per_class`` samples of every class of a class-conditional model.

    Args:
        model: a model with ``num_classes`` K > 0 (e.g. from :func:`imagegen.sampling.load_run`).
        samples_per_class: n >= 1.
        seed: sampling seed (:func:`imagegen.sampling.generate`).
        batch_size: images per forward pass (default :data:`imagegen.sampling.SAMPLE_BATCH`, as
            ``imagegen evaluate``).
        options: passed to ``model.sample``.

    Returns:
        ``(images uint8 [K·n, C, H, W], labels int64 [K·n])`` with the labels of :func:`balanced_labels`.

    Raises:
        ConfigError: an unconditional model, or ``samples_per_class`` < 1.
    """
    from ..sampling import generate
    from .evaluate import quantize

    check_conditional(model)
    if samples_per_class < 1:
        raise ConfigError(f"--cas-per-class {samples_per_class}: must be >= 1")
    labels = balanced_labels(model.num_classes, samples_per_class)
    img = generate(model, len(labels), seed=seed, batch_size=batch_size, labels=labels, **options)
    return quantize(img), labels


def check_conditional(model: Any) -> None:
    """Raise :class:`ConfigError` (one line) unless ``model`` is class-conditional (CAS needs labels)."""
    if not getattr(model, "num_classes", 0):
        raise ConfigError(f"metric cas needs a class-conditional model; {getattr(model, 'model_name', 'this model')} "
                          "is unconditional (train cgan or cvae, or stylegan2/pixelcnn/pixelrnn with --conditional)")
