"""Projection of real images into the latent space of a style-based generator (GAN inversion by
optimisation), as in Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"
(StyleGAN2), §5 and Appendix D, and the official ``projector.py`` of NVlabs/stylegan2-ada-pytorch.

The method (Appendix D; ``t`` = step / steps ∈ [0, 1)):

* **Start** at w̄, the mean of the w of 10,000 prior samples z mapped by ``G_ema``'s mapping network;
  σ_w = sqrt(Σ‖w − w̄‖² / 10,000), the root mean squared distance to it (as ``projector.py``).
* **Variables**: one w (``space="w"``, broadcast to every layer) or one w per layer (``space="w+"``,
  Abdal et al. 2019's W+) [1, num_ws, w_dim], and the per-layer noise maps n_i [1, 1, r, r] of the
  synthesis network's noise inputs (the buffers that ``noise_mode="const"`` reads), initialised
  ~ N(0, I).
* **Optimiser**: Adam, β = (0.9, 0.999), peak learning rate 0.1, ramped up linearly over the first 5 %
  of the steps and down to zero with a cosine over the last 25 % (``lr_rampdown = 0.25`` as in the
  paper and ``projector.py``).
* **Exploration noise**: w + N(0, (σ_w · 0.05 · max(0, 1 − t / 0.75)²)²) at every step, so the noise
  is ramped to zero over the first 75 % of the steps.
* **Noise regularisation** (Appendix D): for every map and every level of its pyramid (the map,
  2×2 average-pooled, ... down to 8×8) the squared autocorrelation at a one-pixel shift,
  ``L = Σ_ij ((1/r²) Σ_xy n(x, y) n(x−1, y))² + ((1/r²) Σ_xy n(x, y) n(x, y−1))²`` (wrapping at the
  borders), weighted by 10⁵; after every step each map is re-normalised to zero mean and unit
  variance (``n ← (n − μ) / sqrt(mean((n − μ)²))``).
* **Distance**: ``projector.py`` uses LPIPS (Zhang et al. 2018, VGG-16 with learned linear weights).
  No LPIPS weights are available offline, so :func:`resolve_features` picks the best network that is:
  ImageNet VGG-19 features if its weights are found, else the dataset classifier of the run's training
  set if it is cached, else pixels. Feature distances are LPIPS' Eq. 1 with unit weights ("lin" = 1):
  activations unit-normalised along channels, squared differences summed over channels, averaged over
  positions and summed over layers. A pixel mean squared error (images in [-1, 1]) weighted by
  ``pixel_weight`` (0.1) is always added; with ``pixels`` the distance *is* that error.

Python API::

    from imagegen.sampling import load_run
    from imagegen.sampling.interpolate import load_images
    from imagegen.sampling.project import project, load_noise
    model = load_run("runs/ffhq-sg2")
    target = load_images(["face.png"], model.config.resolution, model.config.channels)  # [1, C, R, R]
    result = project(model, target, steps=1000, space="w", features="auto")
    load_noise(model, result.noise)  # the projection's noise maps into model's const noise
    img = model.synthesize(result.ws, noise_mode="const")  # == result.image
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import write_npz_atomic
from ..errors import ConfigError, DataError, ImagegenError, WeightsError
from ..nn.styled import NoiseInput
from .images import make_grid, save_png_atomic, to_uint8_nhwc
from .api import run_train_config

Space = Literal["w", "w+"]
SPACES = ("w", "w+")
#: ``auto`` picks the first available of vgg, classifier, pixels (see :func:`resolve_features`)
FEATURES = ("auto", "vgg", "classifier", "pixels")

#: prior samples for the estimate of w̄ and σ_w (StyleGAN2 Appendix D; ``w_avg_samples`` of projector.py)
W_AVG_SAMPLES = 10_000
#: the VGG-19 counterparts of LPIPS' VGG-16 layers conv1_2, conv2_2, conv3_3, conv4_3, conv5_3 (after ReLU)
VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")
#: images are brought to at least this size for VGG (LPIPS' 64×64 patches) and at most 256 (projector.py)
VGG_MIN_SIZE, VGG_MAX_SIZE = 64, 256
#: format tag of the ``.npz`` written by :func:`save_projection`
NPZ_FORMAT = "imagegen-projection"


# ---------------------------------------------------------------------------------------------- distance
@dataclasses.dataclass
class FeatureDistance:
    """The distance that a projection minimises.

    Attributes:
        name: ``vgg``, ``classifier`` or ``pixels``.
        description: one line saying which network and why (printed by the CLI, stored in the ``.npz``).
        extract: images float32 [N, C, R, R] in [-1, 1] → a list of activations [N, C_l, H_l, W_l]
            (differentiable); None for ``pixels``.
        network: the feature network (moved to the model's device by :func:`project`), or None.
    """

    name: str
    description: str
    extract: Optional[Callable[[torch.Tensor], list[torch.Tensor]]] = None
    network: Optional[nn.Module] = None

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Activations of img float32 [N, C, R, R] in [-1, 1]; for ``pixels`` the image itself."""
        return [img] if self.extract is None else self.extract(img)

    def distance(self, a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        """Scalar distance between two feature lists of single images (see the module docstring):
        the mean squared error for ``pixels``, LPIPS' Eq. 1 with unit weights otherwise."""
        if self.extract is None:
            return (a[0] - b[0]).square().mean()
        total = a[0].new_zeros([])
        for fa, fb in zip(a, b):
            fa = fa / (fa.norm(dim=1, keepdim=True) + 1e-10)  # unit length along channels (LPIPS §3)
            fb = fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
            total = total + (fa - fb).square().sum(1).mean()
        return total


def vgg_distance(enc: nn.Module, why: str = "") -> FeatureDistance:
    """LPIPS-style distance (unit weights) on the :data:`VGG_LAYERS` of a VGG-19 encoder
    (:func:`~imagegen.nn.vgg.load_vgg19`); grayscale images are repeated to RGB and resized to between
    64×64 (bilinear) and 256×256 (area, as projector.py)."""

    def extract(img: torch.Tensor) -> list[torch.Tensor]:
        x = img.expand(-1, 3, -1, -1) if img.shape[1] == 1 else img  # grayscale → RGB
        size = x.shape[-1]
        if size > VGG_MAX_SIZE:
            x = F.interpolate(x, size=(VGG_MAX_SIZE, VGG_MAX_SIZE), mode="area")
        elif size < VGG_MIN_SIZE:
            x = F.interpolate(x, size=(VGG_MIN_SIZE, VGG_MIN_SIZE), mode="bilinear", align_corners=False)
        return list(enc(x, VGG_LAYERS).values())

    return FeatureDistance("vgg", f"vgg: VGG-19 {enc.source}, layers {','.join(VGG_LAYERS)}, LPIPS-style "
                                  f"with unit weights{why}", extract, enc)


def classifier_distance(clf: Any, why: str = "") -> FeatureDistance:
    """LPIPS-style distance (unit weights) on the activations of every conv stage of a dataset classifier
    (:class:`~imagegen.metrics.classifier.DatasetClassifier`, its input preparation included); the
    classifier is put in eval mode and frozen."""
    clf.eval().requires_grad_(False)

    def extract(img: torch.Tensor) -> list[torch.Tensor]:
        x, out = clf.prepare(img), []  # [N, c, 32, 32]
        for module in clf.trunk:
            x = module(x)
            if isinstance(module, nn.ReLU):
                out.append(x)  # every conv stage's activations [N, w_l, r_l, r_l]
        return out

    return FeatureDistance("classifier", f"classifier: the {clf.dataset} dataset classifier (weights "
                                         f"{clf.weights_hash[:12]}), its conv activations LPIPS-style with "
                                         f"unit weights{why}", extract, clf)


def _run_dataset(model: Any) -> tuple[Optional[str], Optional[str]]:
    """(dataset name, data root) the run was trained on, from ``model.checkpoint_meta`` (None if unknown)."""
    tc = run_train_config(model)
    return tc.get("data"), tc.get("data_root")


def resolve_features(model: Any, features: str = "auto", *, vgg_weights: Optional[Union[str, os.PathLike]] = None,
                     cache: Optional[Union[str, os.PathLike]] = None) -> FeatureDistance:
    """The feature network of a projection.

    ``auto`` takes the first available of:

    1. ``vgg``: ImageNet VGG-19 (:mod:`imagegen.nn.vgg`), if its weights file is found without
       downloading: ``vgg_weights`` (used as given), ``$IMAGEGEN_VGG19_WEIGHTS`` or
       ``<cache>/weights/vgg19-dcbb9e9d.pth`` (these two must have the model zoo's checksum);
    2. ``classifier``: the dataset classifier (:mod:`imagegen.metrics.classifier`) of the run's training
       set, if that is a named dataset (``mnist``, ``digits``, ...) whose classifier is already cached
       (none is trained here);
    3. ``pixels``: the mean squared pixel error.

    Args:
        model: a style-based model; a run loaded with :func:`~imagegen.sampling.load_run` knows its
            training set (``model.checkpoint_meta``), one built in code does not (no classifier).
        features: ``auto``, ``vgg``, ``classifier`` or ``pixels``.
        vgg_weights: path of torchvision's ``vgg19-dcbb9e9d.pth`` (or a file of that layout).
        cache: cache root (default ``$IMAGEGEN_CACHE`` or ``~/.cache/imagegen``).

    Returns:
        A :class:`FeatureDistance` on the CPU.

    Raises:
        ConfigError: unknown ``features``; ``vgg_weights`` with ``classifier``/``pixels``; ``classifier``
            for a run whose training set is not a named dataset; an unreadable weights file.
        WeightsError: ``vgg`` and no VGG-19 weights found, ``vgg_weights`` is not a file, or the file
            found by the variable or in the cache is not the model zoo's (its SHA-256).
        ImagegenError: ``classifier`` and none cached (the message names the command that trains one).
    """
    from ..data import dataset_loaders
    from ..weights import VGG19, locate_weights, weights_dir

    if features not in FEATURES:
        raise ConfigError(f"--features {features}: use one of {', '.join(FEATURES)}")
    if vgg_weights and features in ("classifier", "pixels"):
        raise ConfigError("--vgg-weights is for --features vgg or auto; drop it or use --features vgg")
    if features == "pixels":
        return FeatureDistance("pixels", "pixels: mean squared pixel error (--features pixels)")
    notes = []
    if features in ("auto", "vgg"):
        path = locate_weights(VGG19, vgg_weights, cache_dir=cache)
        if path is not None:
            from ..nn.vgg import load_vgg19
            from ..weights import verify_weights

            if not vgg_weights:  # found in the standard places: it must be the model zoo's file
                verify_weights(VGG19, path, instead="pass it with --vgg-weights to use other weights of this layout")
            found = " (ImageNet VGG-19 weights found)" if not vgg_weights else f" (--vgg-weights {vgg_weights})"
            return vgg_distance(load_vgg19(str(path)), "" if features == "vgg" else found)
        if features == "vgg":
            raise WeightsError(f"--features vgg needs the ImageNet VGG-19 weights {VGG19.filename} ({VGG19.url}): "
                               f"pass --vgg-weights FILE, set ${VGG19.env_var} or put it in "
                               f"{weights_dir(cache)}; or use --features auto")
        notes.append(f"no {VGG19.filename} found")
    data, data_root = _run_dataset(model)
    named = data is not None and data in dataset_loaders()
    if features == "classifier" and not named:
        raise ConfigError(f"--features classifier needs a run trained on a named dataset (mnist, digits, ...), "
                          f"not {data or 'an unknown dataset'}; use --features auto or pixels")
    if named:
        from ..metrics.classifier import load_or_train_classifier
        try:
            clf = load_or_train_classifier(data, data_root=data_root, cache=cache, train_if_missing=False)
        except ImagegenError as e:
            if features == "classifier":
                raise
            notes.append(f"no {data} classifier cached" if str(e).startswith("no dataset classifier cached")
                         else f"{data} classifier unavailable: {e}")
        else:
            return classifier_distance(clf, f" ({'; '.join(notes)})" if notes else "")
    else:
        notes.append("no named training set for a dataset classifier")
    return FeatureDistance("pixels", f"pixels: mean squared pixel error ({'; '.join(notes)})")


# ---------------------------------------------------------------------------------------------- noise maps
def noise_inputs(model: Any) -> dict[str, NoiseInput]:
    """The noise inputs of ``model.G_ema``'s synthesis network by module name (e.g.
    ``blocks.1.conv0.noise``), in network order; their ``noise_const`` buffers [1, 1, r, r] are the
    noise of ``noise_mode="const"``."""
    return _noise_modules(model.G_ema.synthesis)


def _noise_modules(synthesis: nn.Module) -> dict[str, NoiseInput]:
    return {name: m for name, m in synthesis.named_modules() if isinstance(m, NoiseInput)}


def load_noise(model: Any, noise: Mapping[str, Union[torch.Tensor, np.ndarray]]) -> None:
    """Copy a projection's noise maps into ``model.G_ema``'s constant noise buffers, so that
    ``model.synthesize(ws, noise_mode="const")`` reproduces the projection (``model.G`` is unchanged).

    Args:
        model: the style-based model the noise maps were projected with.
        noise: ``{name: [1, 1, r, r] float32}`` as in :attr:`ProjectionResult.noise` (or the ``noise/NAME``
            arrays of the ``.npz``, see :func:`read_projection`).

    Raises:
        DataError: names or shapes that do not match the model's noise inputs.
    """
    problem = _noise_mismatch(model, noise)
    if problem:
        raise DataError(f"{problem}; use the run the projection was made with")
    for name, m in noise_inputs(model).items():
        value = torch.as_tensor(np.asarray(noise[name]) if isinstance(noise[name], np.ndarray) else noise[name])
        with torch.no_grad():
            m.noise_const.copy_(value.to(m.noise_const))


def _noise_mismatch(model: Any, noise: Mapping[str, Any]) -> Optional[str]:
    """How ``noise`` (``{name: [1, 1, r, r]}``) fails to fit ``model``'s noise inputs, or None if it fits."""
    mods = noise_inputs(model)
    if set(noise) != set(mods):
        return (f"the noise maps ({', '.join(sorted(noise)) or 'none'}) do not match this model's noise inputs "
                f"({', '.join(mods)})")
    for name, m in mods.items():
        shape, want = tuple(np.shape(noise[name])), tuple(m.noise_const.shape)
        if shape != want:
            return f"noise map {name} has shape {shape}, the model's is {want}"
    return None


def noise_regularization(maps: list[torch.Tensor]) -> torch.Tensor:
    """The noise regulariser of StyleGAN2 Appendix D: for each map n [1, 1, r, r] and each level of its
    pyramid (2×2 average pooling down to 8×8, or the map itself if smaller), the squared mean products
    of n with n shifted by one pixel along x and along y (wrapping), summed. Returns a scalar."""
    reg = maps[0].new_zeros([])
    for n in maps:
        while True:
            reg = reg + (n * torch.roll(n, shifts=1, dims=3)).mean().square()
            reg = reg + (n * torch.roll(n, shifts=1, dims=2)).mean().square()
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return reg


# ---------------------------------------------------------------------------------------------- projection
@dataclasses.dataclass
class ProjectionStep:
    """What :func:`project` reports to its ``progress`` callback after every step.

    Attributes:
        step: 1-based step; ``steps`` in all.
        losses: this step's entry of :attr:`ProjectionResult.losses`.
    """

    step: int
    steps: int
    losses: dict[str, float]


@dataclasses.dataclass
class ProjectionResult:
    """The outcome of :func:`project`.

    Attributes:
        ws: float32 [1, num_ws, w_dim] on the CPU, the projected w of every layer (``space="w"``: all
            rows equal), without exploration noise.
        noise: ``{name: float32 [1, 1, r, r]}`` on the CPU: the optimised noise maps (zero mean, unit
            variance), keyed like :func:`noise_inputs`; load them with :func:`load_noise`.
        image: float32 [1, C, R, R] in [-1, 1] on the CPU, ``synthesize(ws, noise_mode="const")`` with
            these noise maps.
        losses: one dict per step: ``loss`` (the total minimised), ``distance`` (feature distance),
            ``pixel_mse`` (mean squared error in [-1, 1] units), ``noise_reg`` (unweighted), ``lr``.
        feature_network: one line naming the feature network (:attr:`FeatureDistance.description`).
        space: ``w`` or ``w+``.
        w_avg: float32 [w_dim], the starting point w̄.
        w_std: σ_w, the root mean squared distance of mapped w to w̄.
    """

    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    image: torch.Tensor
    losses: list[dict[str, float]]
    feature_network: str
    space: str = "w"
    w_avg: Optional[torch.Tensor] = None
    w_std: float = 0.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images float [..., C, H, W] in [-1, 1] (peak-to-peak 2,
    so equal to PSNR on [0, 255]): ``10 log10(2² / MSE)``, torchmetrics' ``peak_signal_noise_ratio`` with
    ``data_range`` 2; ``inf`` for identical images."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(a.detach().float().cpu(), b.detach().float().cpu(), data_range=2.0))


def check_style_model(model: Any) -> None:
    """Raise :class:`ConfigError` unless ``model`` has a mapping network (``has_style_latents``)."""
    if not getattr(model, "has_style_latents", False):
        raise ConfigError(f"project needs a style-based run (stylegan2, stylegan); {model.model_name} has no "
                          "mapping network")


@torch.no_grad()
def w_statistics(model: Any, samples: int = W_AVG_SAMPLES, seed: int = 0) -> tuple[torch.Tensor, float]:
    """w̄ and σ_w of StyleGAN2 Appendix D: the mean of ``samples`` mapped prior samples z (conditional
    models: classes drawn uniformly) and the root mean squared Euclidean distance to it.

    Returns:
        (float32 [w_dim] on the model's device, σ_w ≥ 0).
    """
    gen = torch.Generator(device=model.device).manual_seed(int(seed))
    z = model.sample_latents(samples, gen)  # [S, z_dim]
    labels = (torch.randint(0, model.num_classes, (samples,), generator=gen, device=model.device)
              if model.num_classes else None)
    w = model.mapping(z, labels)[:, 0]  # [S, w_dim]: no truncation, every layer's w is the same
    w_avg = w.mean(0)
    return w_avg, float((w - w_avg).square().sum(1).mean().sqrt())


def lr_schedule(t: float, lr: float = 0.1, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """The learning rate at progress ``t`` = step / steps ∈ [0, 1) (StyleGAN2 Appendix D, projector.py):
    ``lr`` ramped up linearly over the first ``rampup`` and down with a half cosine over the last
    ``rampdown`` of the steps."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return lr * ramp * min(1.0, t / rampup)


def project(model: Any, target: torch.Tensor, *, steps: int = 1000, space: Space = "w",
            features: Union[str, FeatureDistance] = "auto", seed: int = 0,
            progress: Optional[Callable[[ProjectionStep], None]] = None, lr: float = 0.1,
            noise_weight: float = 1e5, pixel_weight: float = 0.1, w_noise_factor: float = 0.05,
            w_noise_ramp: float = 0.75, lr_rampup: float = 0.05, lr_rampdown: float = 0.25,
            w_avg_samples: int = W_AVG_SAMPLES) -> ProjectionResult:
    """Find the w (or w+) and noise maps whose image matches ``target`` (StyleGAN2 §5, Appendix D; see
    the module docstring for every term). The model is not changed: a copy of ``G_ema``'s synthesis
    network is optimised.

    Args:
        model: a style-based model (``has_style_latents``: stylegan2, stylegan).
        target: float32 [1, C, R, R] (or [C, R, R]) in [-1, 1] at the model's channels and resolution
            (e.g. from :func:`~imagegen.sampling.interpolate.load_images`).
        steps: optimisation steps (the paper: 1000).
        space: ``w`` (one w for every layer) or ``w+`` (one w per layer).
        features: ``auto``/``vgg``/``classifier``/``pixels`` (:func:`resolve_features`) or a
            :class:`FeatureDistance`.
        seed: seed of the w̄ estimate, the initial noise maps and the exploration noise.
        progress: called with a :class:`ProjectionStep` after every step.
        lr: peak Adam learning rate (0.1).
        noise_weight: weight of the noise regulariser (10⁵).
        pixel_weight: weight of the added pixel MSE for feature distances (0.1; unused with pixels).
        w_noise_factor, w_noise_ramp: exploration noise σ_w · factor · max(0, 1 − t / ramp)².
        lr_rampup, lr_rampdown: fractions of the steps of the learning-rate ramps (:func:`lr_schedule`).
        w_avg_samples: prior samples for w̄ and σ_w (10,000).

    Returns:
        A :class:`ProjectionResult` (tensors on the CPU).

    Raises:
        ConfigError: a model without a mapping network, ``steps`` < 1, an unknown ``space``, or (from
            :func:`resolve_features`) an unavailable feature network.
        DataError: a target of the wrong shape or outside [-1, 1].
    """
    check_style_model(model)
    if int(steps) < 1:
        raise ConfigError(f"--steps {steps}: must be ≥ 1")
    if space not in SPACES:
        raise ConfigError(f"--space {space}: use w or w+")
    C, R = model.config.channels or 1, model.config.resolution
    target = target[None] if target.ndim == 3 else target
    if tuple(target.shape) != (1, C, R, R):
        raise DataError(f"the target has shape {tuple(target.shape)} but the model generates [1, {C}, {R}, {R}] "
                        "images; load it with load_images(paths, resolution, channels)")
    if not torch.isfinite(target).all() or target.min() < -1 - 1e-6 or target.max() > 1 + 1e-6:
        raise DataError("the target must be float in [-1, 1]; convert uint8 images with uint8_to_float")
    dist_fn = features if isinstance(features, FeatureDistance) else resolve_features(model, features)
    dev = model.device
    if dist_fn.network is not None:
        dist_fn.network.to(dev)
    target = target.to(dev, torch.float32)

    w_avg, w_std = w_statistics(model, w_avg_samples, seed)
    gen = torch.Generator(device=dev).manual_seed(int(seed) + 1)
    synthesis = copy.deepcopy(model.G_ema.synthesis).eval().requires_grad_(False)
    mods = _noise_modules(synthesis)
    for m in mods.values():  # fresh N(0, I) maps as projector.py; the copy's buffers become variables
        m.noise_const = torch.randn(m.noise_const.shape, generator=gen, device=dev).requires_grad_(True)
    maps = [m.noise_const for m in mods.values()]
    num_ws = model.num_ws
    w_opt = w_avg.detach().clone()[None, None].repeat(1, num_ws if space == "w+" else 1, 1).requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt, *maps], lr=lr, betas=(0.9, 0.999))

    with torch.no_grad():
        target_feats = dist_fn.features(target)
    losses: list[dict[str, float]] = []
    for step in range(steps):
        t = step / steps
        w_noise_scale = w_std * w_noise_factor * max(0.0, 1.0 - t / w_noise_ramp) ** 2
        step_lr = lr_schedule(t, lr, lr_rampup, lr_rampdown)
        for group in optimizer.param_groups:
            group["lr"] = step_lr
        w_noise = torch.randn(w_opt.shape, generator=gen, device=dev) * w_noise_scale
        ws = (w_opt + w_noise).expand(1, num_ws, -1)  # [1, num_ws, w_dim]
        img = synthesis(ws, "const")  # [1, C, R, R], not clamped (as projector.py)
        distance = dist_fn.distance(dist_fn.features(img), target_feats)
        pixel_mse = (img - target).square().mean()
        reg = noise_regularization(maps) if maps else img.new_zeros([])
        loss = distance + reg * noise_weight
        if dist_fn.extract is not None:
            loss = loss + pixel_mse * pixel_weight
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # back to zero mean, unit variance (Appendix D)
            for n in maps:
                n -= n.mean()
                n *= n.square().mean().rsqrt()
        entry = {"loss": loss.item(), "distance": distance.item(), "pixel_mse": pixel_mse.item(),
                 "noise_reg": reg.item(), "lr": step_lr}
        losses.append(entry)
        if progress is not None:
            progress(ProjectionStep(step + 1, steps, entry))

    with torch.no_grad():
        ws = w_opt.detach().expand(1, num_ws, -1).contiguous()  # [1, num_ws, w_dim]
        image = synthesis(ws, "const").clamp(-1, 1)  # exactly model.synthesize(ws, "const") after load_noise
    noise = {name: m.noise_const.detach().cpu().clone() for name, m in mods.items()}
    return ProjectionResult(ws=ws.cpu(), noise=noise, image=image.float().cpu(), losses=losses,
                            feature_network=dist_fn.description, space=space, w_avg=w_avg.float().cpu(),
                            w_std=w_std)


# ---------------------------------------------------------------------------------------------- files
def side_by_side_path(out: Union[str, os.PathLike]) -> Path:
    """The PNG written beside a projection ``.npz``: ``w.npz`` → ``w.png``."""
    return Path(out).with_suffix(".png")


def save_projection(path: Union[str, os.PathLike], result: ProjectionResult, target: torch.Tensor,
                    meta: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Write a projection as an ``.npz`` and its side-by-side PNG (target | projection, see
    :func:`side_by_side_path`), each atomically.

    ``.npz`` keys: ``w`` float32 [1, num_ws, w_dim]; ``noise/NAME`` float32 [1, 1, r, r] per noise input;
    ``target`` and ``projection`` uint8 [H, W, C]; ``meta``: a JSON string (format, space, steps, feature
    network, final losses, PSNR of projection vs target in dB, ``meta`` given here).

    Args:
        path: the ``.npz`` file.
        result: from :func:`project`.
        target: float32 [1, C, R, R] in [-1, 1], the projected image.
        meta: extra metadata (e.g. the run directory and source image).

    Returns:
        The metadata written.
    """
    path = Path(path)
    final = result.losses[-1] if result.losses else {}
    value = psnr(result.image, target)
    info = {"format": NPZ_FORMAT, "version": 1, "space": result.space, "steps": len(result.losses),
            "feature_network": result.feature_network, "final_losses": final,
            "psnr_db": value if math.isfinite(value) else None, "w_std": result.w_std,
            "noise_maps": list(result.noise), **(meta or {})}
    arrays: dict[str, Any] = {"w": result.ws.numpy().astype(np.float32),
                              "target": to_uint8_nhwc(target.cpu())[0], "projection": to_uint8_nhwc(result.image)[0],
                              "meta": np.array(json.dumps(info))}
    if result.w_avg is not None:
        arrays["w_avg"] = result.w_avg.numpy().astype(np.float32)
    for name, n in result.noise.items():
        arrays[f"noise/{name}"] = n.numpy().astype(np.float32)
    write_npz_atomic(path, arrays)
    save_png_atomic(make_grid(torch.cat([target.cpu().float(), result.image]), nrow=2), side_by_side_path(path))
    return info


def read_projection(path: Union[str, os.PathLike]) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, Any]]:
    """Read an ``.npz`` written by :func:`save_projection`.

    Returns:
        (ws float32 [1, num_ws, w_dim], noise ``{name: float32 [1, 1, r, r]}``, metadata dict).

    Raises:
        DataError: a missing file, or not a projection ``.npz``.
    """
    try:
        with np.load(path) as d:
            ws = torch.from_numpy(d["w"].astype(np.float32))
            noise = {k[len("noise/"):]: torch.from_numpy(d[k].astype(np.float32)) for k in d.files
                     if k.startswith("noise/")}
            meta = json.loads(str(d["meta"]))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; give the .npz written by `imagegen project`") from None
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path} is not a projection .npz ({type(e).__name__}); give the .npz written by "
                        "`imagegen project`") from None
    return ws, noise, meta


@dataclasses.dataclass
class ProjectedLatent:
    """A projection read back for use: its ws and noise maps, checked against the model that will use them.

    Attributes:
        ws: float32 [1, num_ws, w_dim] (space ``w``: every layer's w the same; ``w+``: one per layer).
        noise: ``{name: float32 [1, 1, r, r]}`` per noise input of the synthesis network.
        path: the ``.npz`` it came from (for messages).
    """

    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    path: str = ""


def load_projected_latent(model: Any, path: Union[str, os.PathLike]) -> ProjectedLatent:
    """Read a projection ``.npz`` (:func:`save_projection`) for ``model``: its ws and noise maps must
    have the model's shapes, so that ``synthesize`` with them (:func:`noise_loaded`) reproduces the
    projection.

    A projection made with another checkpoint of the same architecture loads, with a note on stderr
    (its images then differ from the projection; the shapes cannot tell).

    Raises:
        ConfigError: ``model`` has no mapping network.
        DataError: missing or unreadable file, not a projection, or one made with another kind of model
            or with ws / noise maps of other shapes (one line naming the file and the fix: use the run it
            was projected with).
    """
    check_style_model(model)
    ws, noise, meta = read_projection(path)
    if meta.get("model") not in (None, model.model_name):
        raise DataError(f"{path} was projected with a {meta['model']} run, not this {model.model_name} one; use the "
                        "run it was projected with")
    want = (1, model.num_ws, int(model.config.w_dim))
    if tuple(ws.shape) != want:
        raise DataError(f"{path}: its w is {list(ws.shape)}, this {model.model_name} run's is {list(want)} "
                        "(projected with another model); use the run it was projected with")
    if _noise_mismatch(model, noise):
        raise DataError(f"{path}: its noise maps do not fit this {model.model_name} run's noise inputs (projected "
                        "with another model); use the run it was projected with")
    here = (getattr(model, "checkpoint_meta", None) or {}).get("checkpoint")
    there = meta.get("checkpoint")
    if here and there and os.path.realpath(here) != os.path.realpath(there):
        print(f"note: {path} was projected with {there}, not {here}: with another checkpoint of the same "
              "architecture its images differ from the projection", file=sys.stderr)
    return ProjectedLatent(ws, noise, os.fspath(path))


@contextlib.contextmanager
def noise_loaded(model: Any, noise: Optional[Mapping[str, torch.Tensor]]) -> Iterator[None]:
    """Within the block, ``G_ema``'s constant noise buffers hold ``noise`` (:func:`load_noise`), so
    ``model.synthesize(ws, noise_mode="const")`` draws with a projection's noise maps; the model's own
    buffers are restored on exit. ``noise=None`` changes nothing.

    Raises:
        DataError: maps that do not fit the model's noise inputs (:func:`load_noise`).
    """
    if noise is None:
        yield
        return
    saved = {name: m.noise_const.clone() for name, m in noise_inputs(model).items()}
    try:
        load_noise(model, noise)
        yield
    finally:
        load_noise(model, saved)


__all__ = ["project", "ProjectedLatent", "load_projected_latent", "noise_loaded", "ProjectionResult", "ProjectionStep",
           "FeatureDistance", "resolve_features", "vgg_distance",
           "classifier_distance", "load_noise",
           "noise_inputs", "noise_regularization", "w_statistics", "lr_schedule", "psnr", "save_projection",
           "read_projection", "side_by_side_path", "check_style_model"]
