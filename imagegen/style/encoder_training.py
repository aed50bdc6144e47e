"""A VGG-19-layout encoder trained by the toolkit itself, for style transfer without ImageNet weights.

Both style-transfer methods (Gatys et al. 2016; Huang & Belongie 2017) are defined on an ImageNet-trained
VGG-19, whose weights cannot be downloaded everywhere. This module trains a network of the same layout
(VGG-19 configuration "E", Simonyan & Zisserman 2015, Table 1: 16 3×3 convolutions in five blocks, each
block ending in 2×2 max pooling) as an image classifier on a labelled dataset at hand (CIFAR-10 here), and
writes it in torchvision's ``features.N.weight/bias`` layout, so that every loader of the ImageNet file
reads it too (``--encoder PATH``; :func:`imagegen.nn.vgg.load_vgg19` reads the widths from the file).

Training network: every convolution is followed by batch normalisation (Ioffe & Szegedy 2015) and ReLU —
a 16-layer plain network does not train from scratch in minutes without it — and the fifth block's pooled
output (global average over what is left of the image) feeds one linear layer over the classes.
Cross-entropy, Adam with a one-cycle learning rate (Smith & Topin 2019), padded random crops and
horizontal flips (:mod:`imagegen.data.augment`). Inputs go through the encoder's own normalisation
(images in [-1, 1] → ImageNet mean/std, :meth:`VGG19Encoder.normalize`), so the exported encoder is used
exactly as the ImageNet one.

Export: the batch normalisations (inference form, running statistics) are folded into the preceding
convolutions, ``W' = W γ / sqrt(σ² + ε)``, ``b' = (b − μ) γ / sqrt(σ² + ε) + β`` (exact in eval mode),
which gives a plain conv + ReLU VGG-19; the classifier head is dropped. The features therefore have
arbitrary per-layer and per-channel scales, which is why :func:`imagegen.style.gatys.stylize_gatys`
normalises each layer by default. :func:`normalize_on_dataset` (``imagegen train-encoder
--normalize-filters``) goes further, as Gatys et al. 2016 (§2) did to the ImageNet VGG-19: every filter
rescaled to mean activation 1 over a set of images, so that no channel dominates a style loss by its scale.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import write_json_atomic, write_torch_atomic
from ..data.augment import AugmentConfig, augment
from ..errors import ConfigError, DataError
from ..metrics.classifier import classifier_accuracy
from ..nn.vgg import VGG19_WIDTHS, VGG19Encoder, normalize_filters_

#: the default widths of a self-trained encoder: VGG-19 at half the standard width (a quarter of its cost)
HALF_WIDTHS = tuple(w // 2 for w in VGG19_WIDTHS)


class VGG19BNClassifier(nn.Module):
    """Training network: :class:`VGG19Encoder` layers with batch norm after every conv, plus a linear head.

    Args:
        widths: the five block widths.
        num_classes: classes of the head.

    ``forward(img)``: img [N, 3, H, W] float32 in [-1, 1] (H, W ≥ 32) → ``(features, logits)``: the fifth
    block's pooled output [N, widths[-1]] and the class logits [N, num_classes] (the
    :class:`~imagegen.metrics.classifier.DatasetClassifier` convention, so its accuracy helper serves both).
    """

    def __init__(self, widths: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.encoder = VGG19Encoder(widths, pooling="max")
        convs = [m for m in self.encoder.features if isinstance(m, nn.Conv2d)]
        self.norms = nn.ModuleList(nn.BatchNorm2d(c.out_channels) for c in convs)
        for conv in convs:
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        self.head = nn.Linear(self.encoder.widths[-1], num_classes)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.encoder.normalize(img)
        k = 0
        for module in self.encoder.features:
            x = module(x)
            if isinstance(module, nn.Conv2d):
                x = self.norms[k](x)
                k += 1
        features = x.mean(dim=(2, 3))
        return features, self.head(features)

    @torch.no_grad()
    def export(self) -> VGG19Encoder:
        """A frozen plain :class:`VGG19Encoder` (CPU, float32) with every batch norm folded into its conv."""
        out = VGG19Encoder(self.encoder.widths, pooling="max")
        convs = [m for m in self.encoder.features if isinstance(m, nn.Conv2d)]
        targets = [m for m in out.features if isinstance(m, nn.Conv2d)]
        for conv, bn, target in zip(convs, self.norms, targets):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            target.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            target.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
        return out.cpu().float().freeze()


def train_vgg_encoder(train: Any, test: Optional[Any] = None, *, widths: Sequence[int] = HALF_WIDTHS,
                      epochs: float = 3.0, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                      crop_pad: int = 4, flip: bool = True, device: Union[str, torch.device] = "cpu",
                      log: Optional[Callable[[str], None]] = None) -> tuple[VGG19Encoder, dict[str, Any]]:
    """Train a VGG-19-layout classifier and return its folded, frozen encoder.

    Args:
        train: labelled RGB :class:`~imagegen.data.ImageDataset` (``get_batch`` → images [B, 3, H, W] float32
            in [-1, 1], labels int64 [B]); H, W ≥ 32 (VGG-19 pools five times).
        test: labelled dataset for the reported accuracy (None: no accuracy).
        widths: the five block widths (default :data:`HALF_WIDTHS`, (32, 64, 128, 256, 256)).
        epochs: passes over ``train`` (fractions allowed); steps = ceil(epochs · len / batch_size).
        batch_size, lr: batch size and peak learning rate (Adam, one-cycle schedule).
        seed: initialisation, batch order and augmentation.
        crop_pad, flip: training augmentation (reflect-padded random crop by this many pixels; mirror).
        device: training device.
        log: called with progress lines; None for silence.

    Returns:
        ``(encoder, info)``: the exported encoder (eval, frozen, CPU) and a dict with ``widths``, ``steps``,
        ``seconds``, ``images_per_second``, ``test_accuracy`` (in [0, 1] or None), ``final_loss``.

    Raises:
        DataError: unlabelled or non-RGB data, or images smaller than 32×32.
        ConfigError: non-positive epochs, batch size or learning rate.
    """
    if getattr(train, "labels", None) is None or train.num_classes < 2:
        raise DataError(f"dataset {train.name!r} has no class labels; the encoder is trained as a classifier "
                        "(use a labelled dataset such as cifar10)")
    if train.channels != 3:
        raise DataError(f"dataset {train.name!r} has {train.channels} channel(s); the VGG encoder needs RGB "
                        "images (load it with 3 channels)")
    if train.resolution < 32:
        raise DataError(f"dataset {train.name!r} images are {train.resolution}x{train.resolution}; VGG-19 needs at "
                        "least 32x32 (load it with a larger resolution)")
    if epochs <= 0 or batch_size < 1 or lr <= 0:
        raise ConfigError(f"epochs={epochs}, batch_size={batch_size}, lr={lr}: all must be positive")
    n = len(train)
    steps = max(1, math.ceil(epochs * n / batch_size))
    aug = AugmentConfig(flip=flip, crop_pad=crop_pad)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = VGG19BNClassifier(widths, train.num_classes).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        model.train()
        t0, order, loss = time.time(), torch.empty(0, dtype=torch.int64), torch.zeros(())
        for step in range(1, steps + 1):
            if len(order) < batch_size:
                order = torch.cat([order, torch.randperm(n, generator=gen)])
            idx, order = order[:batch_size], order[batch_size:]
            img, label = train.get_batch(idx)
            img = augment(img, aug, gen)
            loss = F.cross_entropy(model(img.to(device))[1], label.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if log and (step % 100 == 0 or step == steps):
                log(f"  step {step}/{steps}  loss {loss.item():.4f}  {time.time() - t0:.0f} s")
        seconds = time.time() - t0
    model = model.cpu().eval()
    encoder = model.export()
    accuracy = None if test is None else classifier_accuracy(model, test)
    info = {"widths": list(model.encoder.widths), "steps": steps, "batch_size": batch_size, "epochs": epochs,
            "lr": lr, "seed": seed, "augment": f"flip={flip}, crop_pad={crop_pad}", "seconds": round(seconds, 1),
            "images_per_second": round(steps * batch_size / max(seconds, 1e-9), 1),
            "test_accuracy": accuracy, "final_loss": loss.item(), "dataset": train.name, "num_train": n}
    return encoder, info


#: training images (a seeded random subset) over which :func:`normalize_on_dataset` measures mean activations
NORMALIZE_IMAGES = 2048


def normalize_on_dataset(encoder: VGG19Encoder, dataset: Any, images: int = NORMALIZE_IMAGES, seed: int = 0,
                         batch_size: int = 256) -> dict[str, Any]:
    """Gatys et al.'s network normalisation (:func:`imagegen.nn.vgg.normalize_filters_`, in place) over a
    seeded random subset of ``dataset``, and its record for an encoder file's ``.json``.

    Args:
        encoder: the encoder to normalise (on the CPU).
        dataset: an :class:`~imagegen.data.ImageDataset` of RGB images (``get_batch`` → float32 in [-1, 1]).
        images: how many (all of them if the dataset is smaller).
        seed: seed of the subset.
        batch_size: images per forward pass (memory only; the result does not depend on it).

    Returns:
        ``{"method", "images", "seed", "padding", "channel_means_before"}``.

    Raises:
        ConfigError: ``images`` < 1, or images too small for relu5_4.
    """
    if images < 1:
        raise ConfigError(f"images={images}: normalise over at least one image")
    idx = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:images]
    record = normalize_filters_(encoder, (dataset.get_batch(idx[i:i + batch_size])[0]
                                          for i in range(0, len(idx), batch_size)))
    return {"method": "Gatys et al. 2016 §2: each filter scaled to mean ReLU activation 1 over the images, "
                      "the next conv compensates", "images": record["images"], "seed": seed,
            "padding": encoder.padding, "channel_means_before": record["layers"]}


def save_vgg_encoder(encoder: VGG19Encoder, path: Union[str, os.PathLike], info: Optional[dict[str, Any]] = None,
                     *, force: bool = False) -> Path:
    """Write ``encoder.features`` in torchvision's layout (``features.N.weight/bias``, float32) to ``path``
    atomically (temporary file + rename), and ``info`` beside it as ``<path>.json``.

    Raises:
        ConfigError: ``path`` exists and ``force`` is False.
    """
    path = Path(path)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; choose another --out or pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"features.{k}": v.detach().cpu().contiguous() for k, v in encoder.features.state_dict().items()}
    write_torch_atomic(path, state)
    if info is not None:
        from ..weights import weights_sha256

        write_json_atomic(path.with_name(path.name + ".json"), {**info, "sha256": weights_sha256(path)})
    return path


__all__ = ["VGG19BNClassifier", "train_vgg_encoder", "save_vgg_encoder", "normalize_on_dataset", "HALF_WIDTHS",
           "NORMALIZE_IMAGES"]
