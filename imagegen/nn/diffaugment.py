"""DiffAugment: differentiable augmentation of the discriminator's inputs.

Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020
(§3 "Method": §3.1 why augmenting only the reals, or only D's step, fails; §3.2 DiffAugment; the
three policies and their parameters from the authors' reference code ``DiffAugment_pytorch.py``). D
never sees an un-augmented image: every image it classifies, real or fake, in the D step *and*
in the G step, first goes through :func:`diff_augment`, and because every operation is
differentiable w.r.t. its input, G's gradient flows back through the augmentation::

    # D step                                     # G step
    logits_real = D(diff_augment(x, policy))     logits_fake = D(diff_augment(G(z), policy))
    logits_fake = D(diff_augment(G(z).detach(), policy))

"Applied identically to real and fake" in the paper means the same *policy* (the same family of
transformations T), not the same random draw: each call draws fresh parameters for every
image, so the real and the fake batch are augmented independently. Augmenting only the reals
makes G learn the augmented distribution; augmenting reals and fakes in D's step only (not in G's)
makes training collapse (§3.1).

Policies (parameters as in the authors' reference code, which works on images in [-1, 1] as here):

- ``color``: per image, in this order, brightness (add ``b ~ U(-0.5, 0.5)``), saturation (scale
  each pixel's deviation from its mean over channels by ``s ~ U(0, 2)``) and contrast (scale the
  deviation from the image's mean over channels and pixels by ``c ~ U(0.5, 1.5)``).
- ``translation``: shift each image by an integer ``(ty, tx)``, each uniform in
  ``{-round(H/8), …, round(H/8)}`` resp. ``{-round(W/8), …, round(W/8)}``; the uncovered border is
  filled with zeros (mid-grey).
- ``cutout``: zero a square of ``round(H/2) × round(W/2)`` pixels whose centre is uniform over the
  image; where it overhangs the border only the part inside is zeroed.

Values may leave [-1, 1] after ``color`` (as in the reference code); D does not mind.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..errors import ConfigError

#: the policy names accepted by :func:`diff_augment`, in their usual order
POLICIES: tuple[str, ...] = ("color", "translation", "cutout")

#: the default policy of the paper for unconditional generation with limited data
DEFAULT_POLICY = "color,translation,cutout"


def check_policy(policy: str) -> tuple[str, ...]:
    """Parse a comma-separated DiffAugment policy.

    Args:
        policy: names from :data:`POLICIES` separated by commas, e.g. ``"color,translation,cutout"``
            or ``"translation"``; spaces around names are ignored; ``""`` means no augmentation.
            A name given twice is applied twice, as in the reference code.

    Returns:
        The names in the order given (empty for ``""``).

    Raises:
        ConfigError: ``policy`` is not a string or contains a name not in :data:`POLICIES`.
    """
    if not isinstance(policy, str):
        raise ConfigError(f"DiffAugment policy must be a comma-separated string of "
                          f"{', '.join(POLICIES)}, not {policy!r}")
    names = tuple(name.strip() for name in policy.split(",")) if policy.strip() else ()
    bad = [name for name in names if name not in POLICIES]
    if bad:
        raise ConfigError(f"unknown DiffAugment policy {bad[0]!r} in {policy!r}: use a comma-separated "
                          f"list of {', '.join(POLICIES)} (e.g. {DEFAULT_POLICY!r})")
    return names


def diff_augment(img: torch.Tensor, policy: str = DEFAULT_POLICY,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Augment a batch with a DiffAugment policy (Zhao et al. 2020, §3.2).

    Every image gets its own random parameters. Apply it to every batch D sees, real and fake, in
    both D's and G's steps (see the module docstring); the output is differentiable w.r.t. ``img``
    (translation and cutout copy or zero pixels, so their gradient is the same copy or zero).

    Args:
        img: [N, C, H, W] float (float32 in [-1, 1] in this toolkit), any device, may require grad.
        policy: comma-separated policy names (see :func:`check_policy`); ``""`` returns ``img``.
        generator: source of randomness. Random numbers are drawn on the generator's device (a CPU
            generator is the usual choice) and moved to ``img``'s device, so a seeded generator gives
            the same augmentation on every device. None draws from torch's global RNG on ``img``'s
            device.

    Returns:
        [N, C, H, W], same dtype and device as ``img``; values not clamped (``color`` can leave
        [-1, 1]).

    Raises:
        ConfigError: ``policy`` names an unknown policy.
        ValueError: ``img`` is not 4-D.
    """
    names = check_policy(policy)
    if img.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {tuple(img.shape)}")
    for name in names:
        for fn in _AUGMENT_FNS[name]:
            img = fn(img, generator)
    return img


def rand_brightness(img: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Add ``b ~ U(-0.5, 0.5)`` to every value of each image.

    Args:
        img: [N, C, H, W] float.
        generator: source of randomness (draws N uniforms; see :func:`diff_augment`).

    Returns:
        [N, C, H, W], same dtype and device.
    """
    b = _uniform((img.shape[0], 1, 1, 1), generator, img) - 0.5  # [N, 1, 1, 1]
    return img + b


def rand_saturation(img: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Scale each pixel's deviation from its channel mean by ``s ~ U(0, 2)`` (0 = grey).

    Args:
        img: [N, C, H, W] float.
        generator: source of randomness (draws N uniforms; see :func:`diff_augment`).

    Returns:
        [N, C, H, W], same dtype and device.
    """
    s = _uniform((img.shape[0], 1, 1, 1), generator, img) * 2  # [N, 1, 1, 1]
    mean = img.mean(dim=1, keepdim=True)  # [N, 1, H, W]
    return (img - mean) * s + mean


def rand_contrast(img: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Scale each image's deviation from its mean (over channels and pixels) by ``c ~ U(0.5, 1.5)``.

    Args:
        img: [N, C, H, W] float.
        generator: source of randomness (draws N uniforms; see :func:`diff_augment`).

    Returns:
        [N, C, H, W], same dtype and device.
    """
    c = _uniform((img.shape[0], 1, 1, 1), generator, img) + 0.5  # [N, 1, 1, 1]
    mean = img.mean(dim=(1, 2, 3), keepdim=True)  # [N, 1, 1, 1]
    return (img - mean) * c + mean


def rand_translation(img: torch.Tensor, generator: Optional[torch.Generator] = None,
                     ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by a random integer offset, filling the uncovered border with zeros.

    The offset is ``ty`` uniform in ``{-a, …, a}`` with ``a = int(H·ratio + 0.5)`` rows and ``tx``
    likewise for columns, so ``out[n, :, i, j] = img[n, :, i + ty, j + tx]`` where that lies inside
    the image and 0 elsewhere (the reference code's convention).

    Args:
        img: [N, C, H, W] float.
        generator: source of randomness (draws 2·N integers; see :func:`diff_augment`).
        ratio: largest shift as a fraction of the image size.

    Returns:
        [N, C, H, W], same dtype and device.
    """
    N, C, H, W = img.shape
    shift_y, shift_x = int(H * ratio + 0.5), int(W * ratio + 0.5)
    ty = _randint(-shift_y, shift_y + 1, (N, 1), generator, img.device)  # [N, 1]
    tx = _randint(-shift_x, shift_x + 1, (N, 1), generator, img.device)  # [N, 1]
    rows = torch.arange(H, device=img.device) + ty  # [N, H] source row of each output row
    cols = torch.arange(W, device=img.device) + tx  # [N, W]
    inside = (((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :])  # [N, H, W]
    batch = torch.arange(N, device=img.device)[:, None, None]
    moved = img.permute(0, 2, 3, 1)[batch, rows.clamp(0, H - 1)[:, :, None],
                                    cols.clamp(0, W - 1)[:, None, :]]  # [N, H, W, C]
    moved = moved.permute(0, 3, 1, 2)  # [N, C, H, W]
    return moved * inside[:, None].to(img.dtype)


def rand_cutout(img: torch.Tensor, generator: Optional[torch.Generator] = None,
                ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``int(H·ratio + 0.5) × int(W·ratio + 0.5)`` pixels at a random place.

    As in the reference code, the square's centre row ``cy`` is uniform in ``{0, …, H - (h mod 2)}``
    (``h`` its height) and the square covers rows ``cy - h//2 … cy - h//2 + h - 1`` (columns
    likewise); only the part inside the image is zeroed, so near the border the zeroed region is a
    smaller rectangle. All channels are zeroed; the gradient there is zero.

    Args:
        img: [N, C, H, W] float.
        generator: source of randomness (draws 2·N integers; see :func:`diff_augment`).
        ratio: side of the square as a fraction of the image size.

    Returns:
        [N, C, H, W], same dtype and device.
    """
    N, C, H, W = img.shape
    h, w = int(H * ratio + 0.5), int(W * ratio + 0.5)
    cy = _randint(0, H + (1 - h % 2), (N, 1), generator, img.device)  # [N, 1]
    cx = _randint(0, W + (1 - w % 2), (N, 1), generator, img.device)  # [N, 1]
    top, left = cy - h // 2, cx - w // 2
    rows = torch.arange(H, device=img.device)  # [H]
    cols = torch.arange(W, device=img.device)  # [W]
    in_rows = (rows >= top) & (rows < top + h)  # [N, H]
    in_cols = (cols >= left) & (cols < left + w)  # [N, W]
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])  # [N, H, W]
    return img * keep[:, None].to(img.dtype)


_AugmentFn = Callable[[torch.Tensor, Optional[torch.Generator]], torch.Tensor]
_AUGMENT_FNS: dict[str, tuple[_AugmentFn, ...]] = {
    "color": (rand_brightness, rand_saturation, rand_contrast),
    "translation": (rand_translation,),
    "cutout": (rand_cutout,),
}


def _uniform(shape: tuple[int, ...], generator: Optional[torch.Generator],
             like: torch.Tensor) -> torch.Tensor:
    """U[0, 1) of ``shape`` drawn on the generator's device (float32), returned like ``like``."""
    device = generator.device if generator is not None else like.device
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
    return u.to(device=like.device, dtype=like.dtype)


def _randint(low: int, high: int, shape: tuple[int, ...], generator: Optional[torch.Generator],
             device: torch.device) -> torch.Tensor:
    """Integers uniform in [low, high) drawn on the generator's device, returned on ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.randint(low, high, shape, generator=generator, device=gen_device).to(device)
