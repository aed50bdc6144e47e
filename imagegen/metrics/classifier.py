"""The dataset classifier: an offline feature extractor trained on the dataset itself.

Where no Inception weights are available (as here, offline), FID and friends are computed in the
feature space of a compact CNN trained on the training split of the reference dataset. Its
penultimate activations (global average pool, D = 128 by default) serve FID, KID, precision/recall and
density/coverage; its softmax serves IS and the class-conditional sample accuracy (``acc``) and the
mode-collapse check of :class:`~imagegen.metrics.training_eval.TrainingEvaluator`.

Preprocessing (fixed, recorded in every result's protocol): images float32 [-1, 1] are converted to
the classifier's channel count (3 -> 1 by ITU-R 601-2 luma, 1 -> 3 by repetition) and resized to
32 x 32 with ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
antialias=True)`` (antialiasing only matters when downsampling; MNIST's 28 x 28 is upsampled).

Trained classifiers are cached under ``<cache>/classifiers/<dataset>-<data hash>-<recipe hash>/`` as
``model.safetensors`` + ``config.json`` (never pickles), keyed by the SHA-256 of the training split's
content and of the architecture and training recipe, so a changed dataset or recipe never reuses
stale weights. FID values computed with it are comparable only with values computed with the same
classifier weights (``weights_sha256`` in the protocol), not with Inception-based published numbers.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, DataError, ImagegenError
from .cache import cache_dir, dataset_hash, json_hash, safe_name, state_dict_hash
from .extractors import FeatureExtractor, register_extractor

RESIZE_DESCRIPTION = ("bilinear to 32x32 (torch.nn.functional.interpolate, align_corners=False, "
                      "antialias=True)")
RECIPE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of a :class:`DatasetClassifier`.

    Attributes:
        channels: input channels the classifier is trained on (1 or 3).
        num_classes: K, number of classes of the dataset.
        widths: channels of the four conv stages; the last one is the feature dimension D.
        input_size: square input size in pixels (images are resized to it).
        dropout: dropout before the final linear layer (training only).
    """

    channels: int
    num_classes: int
    widths: tuple[int, int, int, int] = (16, 32, 64, 128)
    input_size: int = 32
    dropout: float = 0.2


@dataclasses.dataclass(frozen=True)
class TrainRecipe:
    """How a :class:`DatasetClassifier` is trained (part of its cache key).

    Attributes:
        epochs: passes over the training split (at least ``min_steps`` steps are taken).
        min_steps: minimum number of optimiser steps (for small datasets).
        batch_size: images per step.
        lr: peak learning rate of Adam with a one-cycle schedule.
        seed: seed of initialisation, shuffling and dropout.
    """

    epochs: int = 2
    min_steps: int = 1000
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class DatasetClassifier(FeatureExtractor):
    """Compact CNN classifier used as a feature extractor.

    Architecture (for input 32 x 32, widths w1..w4): conv(w1) -> maxpool -> conv(w2) -> maxpool ->
    conv(w3) -> conv(w3) -> maxpool -> conv(w4) -> global average pool (features, D = w4) ->
    dropout -> linear(K) (logits). Each conv is 3x3, no bias, followed by batch norm and ReLU.
    About 6 M multiply-adds per image with the default widths.

    Args:
        config: the architecture.
        dataset: name of the dataset it was trained on.
        data_sha256: content hash of that training split.
        test_accuracy: accuracy on the test split (or a held-out part), recorded in the protocol.
    """

    name = "classifier"

    def __init__(self, config: ClassifierConfig, *, dataset: str = "", data_sha256: str = "",
                 test_accuracy: Optional[float] = None) -> None:
        super().__init__()
        w1, w2, w3, w4 = config.widths
        self.config = config
        self.dataset = dataset
        self.data_sha256 = data_sha256
        self.test_accuracy = test_accuracy
        self.feature_dim = w4
        self.num_logits = config.num_classes
        self.directory: Optional[Path] = None  # where it was saved or loaded from
        self.trunk = nn.Sequential(
            *_block(config.channels, w1), nn.MaxPool2d(2),  # [N, w1, 16, 16]
            *_block(w1, w2), nn.MaxPool2d(2),  # [N, w2, 8, 8]
            *_block(w2, w3), *_block(w3, w3), nn.MaxPool2d(2),  # [N, w3, 4, 4]
            *_block(w3, w4), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # [N, w4]
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(w4, config.num_classes)

    def prepare(self, img: torch.Tensor) -> torch.Tensor:
        """Channel conversion and resize: float32 [N, C, H, W] in [-1, 1] -> [N, channels, 32, 32]."""
        c = img.shape[1]
        if c != self.config.channels:
            if c == 3 and self.config.channels == 1:
                luma = torch.tensor([0.299, 0.587, 0.114], dtype=img.dtype, device=img.device)
                img = (img * luma[None, :, None, None]).sum(dim=1, keepdim=True)
            elif c == 1 and self.config.channels == 3:
                img = img.expand(-1, 3, -1, -1)
            else:
                raise ImagegenError(f"the {self.dataset} classifier takes {self.config.channels}-channel "
                                    f"images, got {c} channels")
        s = self.config.input_size
        if img.shape[2:] != (s, s):
            img = F.interpolate(img, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return img

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features float32 [N, D] (penultimate, >= 0) and logits float32 [N, K] of images
        float32 [N, C, H, W] in [-1, 1]."""
        h = self.trunk(self.prepare(img))  # [N, D]
        return h, self.head(self.dropout(h))

    # ---- identity ---------------------------------------------------------------------------
    @property
    def weights_hash(self) -> str:
        """SHA-256 of the current weights (recomputed each time: in-place edits are always seen; ~1 ms)."""
        return state_dict_hash(self.state_dict())

    def protocol(self) -> dict[str, Any]:
        return {"name": self.name, "dataset": self.dataset, "weights_sha256": self.weights_hash,
                "feature_dim": self.feature_dim, "input_size": self.config.input_size,
                "resize": RESIZE_DESCRIPTION, "channels": self.config.channels,
                "test_accuracy": self.test_accuracy}

    # ---- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path, extra: Optional[dict[str, Any]] = None) -> None:
        """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created)."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        tmp = d / "model.safetensors.tmp"
        save_file(state, str(tmp))
        meta = {"config": dataclasses.asdict(self.config), "dataset": self.dataset,
                "data_sha256": self.data_sha256, "test_accuracy": self.test_accuracy,
                "weights_sha256": self.weights_hash, **(extra or {})}
        (d / "config.json.tmp").write_text(json.dumps(meta, indent=2))
        tmp.replace(d / "model.safetensors")
        (d / "config.json.tmp").replace(d / "config.json")
        self.directory = d

    @classmethod
    def load(cls, directory: str | Path) -> "DatasetClassifier":
        """Load a classifier saved by :meth:`save` (eval mode, CPU).

        Raises:
            CheckpointError: missing or corrupt files.
        """
        from safetensors.torch import load_file

        d = Path(directory)
        try:
            meta = json.loads((d / "config.json").read_text())
            cfg = meta["config"]
            config = ClassifierConfig(**{**cfg, "widths": tuple(cfg["widths"])})
            model = cls(config, dataset=meta.get("dataset", ""), data_sha256=meta.get("data_sha256", ""),
                        test_accuracy=meta.get("test_accuracy"))
            model.load_state_dict(load_file(str(d / "model.safetensors")))
            model.directory = d
        except Exception as e:  # json, safetensors and torch raise many types for corrupt files
            raise CheckpointError(f"cannot load the dataset classifier in {d} ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''}); delete the directory "
                                  "and run `imagegen train-classifier` again") from None
        return model.eval()


# ---- training -----------------------------------------------------------------------------------
@torch.inference_mode()
def classifier_accuracy(model: nn.Module, dataset: Any, *, batch_size: int = 500,
                        indices: Optional[torch.Tensor] = None) -> float:
    """Top-1 accuracy (fraction in [0, 1]) of ``model`` on a labelled ImageDataset (or a subset);
    ``model(img)`` returns ``(features, logits)`` (a :class:`DatasetClassifier`, or the VGG encoder's
    training network of :mod:`imagegen.style.encoder_training`). Puts ``model`` in eval mode."""
    model.eval()
    idx = torch.arange(len(dataset)) if indices is None else indices
    correct = 0
    for part in idx.split(batch_size):
        img, label = dataset.get_batch(part)
        correct += int((model(img)[1].argmax(dim=1) == label).sum())
    return correct / max(1, len(idx))


def train_classifier(train: Any, test: Optional[Any] = None, *, config: Optional[ClassifierConfig] = None,
                     recipe: TrainRecipe = TrainRecipe(), device: str | torch.device = "cpu",
                     log: Optional[Callable[[str], None]] = None) -> tuple[DatasetClassifier, float]:
    """Train a :class:`DatasetClassifier` on a labelled dataset.

    Args:
        train: labelled :class:`imagegen.data.ImageDataset` (the training split).
        test: labelled dataset to report accuracy on; if None, a seeded 10 % of ``train`` is held out
            from training and used instead.
        config: architecture (default: :class:`ClassifierConfig` for the dataset's channels/classes).
        recipe: the training recipe (Adam, one-cycle learning rate, cross-entropy, no augmentation).
        device: training device.
        log: called with progress lines (e.g. ``print``); None for silence.

    Returns:
        ``(model, accuracy)``: the classifier in eval mode on the CPU, and its test accuracy in [0, 1].

    Raises:
        DataError: if the dataset has no labels or a single class.
    """
    if train.labels is None or train.num_classes < 2:
        raise DataError(f"dataset {train.name!r} has no class labels; the dataset classifier needs a "
                        "labelled dataset (or use Inception weights: --inception-weights)")
    config = config or ClassifierConfig(channels=train.channels, num_classes=train.num_classes)
    n = len(train)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        gen = torch.Generator().manual_seed(recipe.seed)
        pool = torch.arange(n)
        held_out = None
        if test is None:
            perm = torch.randperm(n, generator=gen)
            held_out, pool = perm[: max(1, n // 10)], perm[max(1, n // 10):]
        model = DatasetClassifier(config, dataset=train.name, data_sha256=dataset_hash(train)).to(device)
        steps_per_epoch = math.ceil(len(pool) / recipe.batch_size)
        steps = max(recipe.epochs * steps_per_epoch, recipe.min_steps)
        opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps)
        model.train()
        t0, step, order = time.time(), 0, torch.empty(0, dtype=torch.int64)
        while step < steps:
            if len(order) < recipe.batch_size:
                order = torch.cat([order, pool[torch.randperm(len(pool), generator=gen)]])
            batch, order = order[: recipe.batch_size], order[recipe.batch_size:]
            img, label = train.get_batch(batch)
            loss = F.cross_entropy(model(img.to(device))[1], label.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if log and (step % 200 == 0 or step == steps):
                log(f"  step {step}/{steps}  loss {loss.item():.4f}  {time.time() - t0:.0f} s")
    model = model.cpu().eval()
    if test is not None:
        acc = classifier_accuracy(model, test)
    else:
        acc = classifier_accuracy(model, train, indices=held_out)
    model.test_accuracy = acc
    return model, acc


# ---- cache --------------------------------------------------------------------------------------
def classifier_cache_dir(dataset_name: str, data_sha256: str, config: ClassifierConfig, recipe: TrainRecipe,
                         cache: Optional[str | Path] = None) -> Path:
    """``<cache>/classifiers/<dataset>-<data hash[:16]>-<recipe hash[:8]>``."""
    recipe_key = json_hash({"config": dataclasses.asdict(config), "recipe": dataclasses.asdict(recipe),
                            "version": RECIPE_VERSION})
    return cache_dir(cache) / "classifiers" / f"{safe_name(dataset_name)}-{data_sha256[:16]}-{recipe_key[:8]}"


def classifier_for_dataset(train: Any, test: Optional[Any | Callable[[], Optional[Any]]] = None, *, cache: Optional[str | Path] = None,
                           train_if_missing: bool = True, retrain: bool = False, recipe: TrainRecipe = TrainRecipe(),
                           config: Optional[ClassifierConfig] = None, device: str | torch.device = "cpu",
                           log: Optional[Callable[[str], None]] = None) -> DatasetClassifier:
    """The cached classifier of a labelled in-memory training set, trained (and cached) if needed.

    Args:
        train: labelled :class:`imagegen.data.ImageDataset`; its content hash keys the cache.
        test: labelled dataset for the reported accuracy, or a function returning one (or None), called
            only if the classifier has to be trained (None: 10 % of ``train`` held out).
        cache: cache root (default :func:`~imagegen.metrics.cache.cache_dir`).
        train_if_missing: train when nothing is cached; else raise.
        retrain: train again even if cached.
        recipe, config: training recipe and architecture (defaults for the dataset).
        device: training device.
        log: progress messages (e.g. ``print``), None for silence.

    Returns:
        The classifier in eval mode on the CPU, with ``test_accuracy`` set.

    Raises:
        DataError: the dataset has no labels.
        ImagegenError: nothing is cached and ``train_if_missing`` is False.
    """
    if train.labels is None or train.num_classes < 2:
        raise DataError(f"dataset {train.name!r} has no class labels, so no dataset classifier can be trained; "
                        "give Inception weights (--inception-weights) or a labelled dataset")
    config = config or ClassifierConfig(channels=train.channels, num_classes=train.num_classes)
    directory = classifier_cache_dir(train.name, dataset_hash(train), config, recipe, cache)
    if (directory / "config.json").exists() and not retrain:
        return DatasetClassifier.load(directory)
    if not train_if_missing:
        raise ImagegenError(f"no dataset classifier cached for {train.name!r}; run "
                            f"`imagegen train-classifier --data {train.name}` first")
    if callable(test):
        test = test()
    if log:
        log(f"training the {train.name} classifier on {len(train)} images "
            f"({'test split' if test is not None else '10% held out'} for accuracy)")
    model, acc = train_classifier(train, test, config=config, recipe=recipe, device=device, log=log)
    model.save(directory, extra={"recipe": dataclasses.asdict(recipe),
                                 "accuracy_on": "test split" if test is not None else "10% held out"})
    if log:
        log(f"{train.name} classifier: test accuracy {acc * 100:.2f}%, saved to {directory}")
    return model


def load_or_train_classifier(dataset: str, *, data_root: Optional[str] = None,
                             cache: Optional[str | Path] = None, train_if_missing: bool = True,
                             retrain: bool = False, recipe: TrainRecipe = TrainRecipe(),
                             config: Optional[ClassifierConfig] = None, device: str | torch.device = "cpu",
                             log: Optional[Callable[[str], None]] = None) -> DatasetClassifier:
    """The cached classifier of a named dataset's training split (native resolution and channels),
    trained first if needed; accuracy is measured on its test split when it has one.

    Args:
        dataset: dataset name (``mnist``, ...) or image folder/zip with class sub-folders.
        data_root: the dataset's directory (see :func:`imagegen.data.build_dataset`).
        Other arguments: as :func:`classifier_for_dataset`.

    Raises:
        DataError: the dataset cannot be loaded or has no labels.
        ImagegenError: nothing is cached and ``train_if_missing`` is False.
    """
    from ..data import build_dataset, dataset_loaders

    train = build_dataset(dataset, root=data_root, split="train")

    def test_split() -> Optional[Any]:  # loaded only to train
        if dataset not in dataset_loaders():
            return None
        try:
            return build_dataset(dataset, root=data_root, split="test")
        except DataError:
            return None

    return classifier_for_dataset(train, test_split, cache=cache, train_if_missing=train_if_missing, retrain=retrain,
                                  recipe=recipe, config=config, device=device, log=log)


@register_extractor("classifier")
def build_classifier(dataset: str, data_root: Optional[str] = None, cache: Optional[str | Path] = None,
                     train_if_missing: bool = True, device: str | torch.device = "cpu",
                     log: Optional[Callable[[str], None]] = None) -> DatasetClassifier:
    """Registry factory: :func:`load_or_train_classifier` with default recipe (stderr logging)."""
    return load_or_train_classifier(dataset, data_root=data_root, cache=cache, train_if_missing=train_if_missing,
                                    device=device, log=log if log is not None else
                                    (lambda s: print(s, file=sys.stderr)))
