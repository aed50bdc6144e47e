"""Synthetic degradations for restoration: Gaussian noise, bicubic downsampling, masks.

Restoration models train on clean images degraded on the fly, ``imagegen degrade`` writes degraded
test inputs, and the paired evaluation degrades held-out images; all three go through
:meth:`Degradation.apply`, so a model, a degraded file and an evaluation see the same operation.

Conventions:

* images are float32 ``[N, C, H, W]`` in [-1, 1] (8-bit value v ↔ v / 127.5 − 1);
* σ of the noise is on the 0–255 scale (σ = 25 adds noise of standard deviation 25 / 255 of the
  full range, 25 / 127.5 in [-1, 1] units);
* masks are bool ``[N, 1, H, W]``, True = missing; missing pixels of the degraded image hold 0
  (mid-grey; 128 after 8-bit rounding), and restorers never read them;
* every random number comes from the ``torch.Generator`` passed in (None: torch's global RNG, which
  the trainer checkpoints); :meth:`Degradation.apply_seeded` degrades each image with its own seeded
  generator (:func:`item_seed`), so the result does not depend on batching.

The operations:

* ``denoise`` — additive white Gaussian noise, y = x + n, n ~ N(0, σ²) per pixel and channel
  (Zhang et al. 2017, "Beyond a Gaussian Denoiser", §III-A: y = x + v); σ fixed, or for blind
  denoising drawn per image uniformly in [σ, σ_max] (the paper's blind range is [0, 55], §IV-A).
* ``super-resolution`` — bicubic downsampling by an integer ``scale``: PyTorch's antialiased bicubic
  (``F.interpolate(mode="bicubic", antialias=True)``: the Keys kernel with a = −0.5, its support
  widened by the scale factor), which is Pillow's ``Image.BICUBIC`` resize computed in float (the
  two agree within one 8-bit level, see ``tests/test_degradations.py``); MATLAB's ``imresize``, used
  by many SR papers, has the same kernel but other border handling, so published numbers are not
  bit-comparable. H and W must be multiples of ``scale`` (``imagegen degrade`` crops the bottom and
  right rows and columns first, as SR benchmarks "modcrop" their ground truth).
* ``inpaint`` — a mask of missing pixels (Pathak et al. 2016, "Context Encoders", §3.3): ``centre``, a
  centred rectangle of ``mask_fraction`` of the image area (side = round(√fraction · H) by
  round(√fraction · W); 0.25 gives the paper's 64×64 hole in a 128×128 image); ``rectangles``, random
  axis-aligned rectangles with sides uniform in [S/8, S/2] (S = min(H, W)), possibly overlapping,
  added until at least ``mask_fraction`` of the image is missing (the paper's "random block"
  masks); ``strokes``, random free-form brush strokes (each a polyline of 4–8 segments with angles
  uniform in [0, 2π), lengths uniform in [S/8, S/4] and a brush width uniform in [S/16, S/8], at
  least 1 pixel; after Yu et al. 2019, "Free-Form Image Inpainting with Gated Convolution",
  Algorithm 1), added until at least ``mask_fraction`` is missing.

With ``quantize`` (the default) the degraded image is clipped to [-1, 1] and rounded to the 8-bit
grid: exactly what a saved 8-bit PNG holds, so a file written by ``imagegen degrade`` and read back
is bit-identical to the in-memory degradation. ``quantize=False`` keeps float values (Zhang et al.
add unclipped noise), which no 8-bit file can store.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import float_to_uint8, uint8_to_float

TASKS = ("denoise", "super-resolution", "inpaint")
MASK_KINDS = ("centre", "rectangles", "strokes")
#: the largest noise level accepted, on the 0–255 scale
MAX_SIGMA = 255.0
#: the largest ``mask_fraction`` of random masks (they are drawn until they cover it)
MAX_RANDOM_FRACTION = 0.9
#: missing pixels of an inpainting input (mid-grey in [-1, 1])
FILL_VALUE = 0.0


class Degraded(NamedTuple):
    """A degraded batch.

    Attributes:
        image: float32 [N, C, H', W'] in [-1, 1] (unclipped noise when ``quantize`` is off);
            H' = H / scale for super-resolution, else H.
        mask: bool [N, 1, H, W], True = missing (inpainting), else None.
    """

    image: torch.Tensor
    mask: Optional[torch.Tensor]


def item_seed(seed: int, index: int) -> int:
    """Seed of image ``index`` of a dataset or folder degraded with ``seed`` (both ≥ 0, index < 2³²):
    ``seed · 2³² + index``, so that every (seed, image) pair has its own noise and mask."""
    return (int(seed) << 32) + int(index)


def quantize_8bit(img: torch.Tensor) -> torch.Tensor:
    """Clip float [-1, 1] images to [-1, 1] and round them to the 8-bit grid (as saved and re-read)."""
    return uint8_to_float(float_to_uint8(img))


@dataclasses.dataclass(frozen=True)
class Degradation:
    """What a restoration model undoes: the task and its parameters (fields of other tasks are None).

    Build one with :meth:`denoise`, :meth:`super_resolution` or :meth:`inpaint`. It is saved in the
    model's config (``config.json``) and applied identically in training, by ``imagegen degrade``
    and in evaluation.

    Attributes:
        task: ``denoise``, ``super-resolution`` or ``inpaint``.
        sigma: denoise: noise standard deviation σ on the 0–255 scale (fixed), or the lower end of
            the blind range.
        sigma_max: denoise: upper end of the blind range (σ uniform in [sigma, sigma_max] per image),
            or None for a fixed σ.
        scale: super-resolution: the integer downsampling factor (2–8).
        mask: inpaint: ``centre``, ``rectangles`` or ``strokes``.
        mask_fraction: inpaint: fraction of the image area that is missing (exact for ``centre`` up
            to rounding, a lower bound for random masks).
        quantize: clip the degraded image to [-1, 1] and round it to the 8-bit grid.

    Raises:
        ConfigError: an unknown task, a value out of range, or a parameter of another task.
    """

    task: str
    sigma: Optional[float] = None
    sigma_max: Optional[float] = None
    scale: Optional[int] = None
    mask: Optional[str] = None
    mask_fraction: Optional[float] = None
    quantize: bool = True

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def denoise(cls, sigma: float = 25.0, sigma_max: Optional[float] = None, quantize: bool = True) -> "Degradation":
        """Additive Gaussian noise of σ (0–255 scale), or σ ~ U[sigma, sigma_max] per image (blind)."""
        return cls("denoise", sigma=float(sigma), sigma_max=None if sigma_max is None else float(sigma_max),
                   quantize=quantize)

    @classmethod
    def super_resolution(cls, scale: int = 4, quantize: bool = True) -> "Degradation":
        """Antialiased bicubic downsampling by ``scale``."""
        return cls("super-resolution", scale=int(scale), quantize=quantize)

    @classmethod
    def inpaint(cls, mask: str = "centre", mask_fraction: float = 0.25, quantize: bool = True) -> "Degradation":
        """Missing pixels under a ``centre``, ``rectangles`` or ``strokes`` mask covering ``mask_fraction``."""
        return cls("inpaint", mask=mask, mask_fraction=float(mask_fraction), quantize=quantize)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Degradation":
        """The inverse of ``dataclasses.asdict`` (e.g. from a run's ``config.json``).

        Raises:
            ConfigError: unknown keys or invalid values.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown degradation field(s) {unknown}; valid: {sorted(names)}")
        return cls(**data)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown restoration task {self.task!r}; use one of {', '.join(TASKS)}")
        own = {"denoise": ("sigma",), "super-resolution": ("scale",), "inpaint": ("mask", "mask_fraction")}[self.task]
        optional = ("sigma_max",) if self.task == "denoise" else ()
        for f in ("sigma", "sigma_max", "scale", "mask", "mask_fraction"):
            value = getattr(self, f)
            if f in own and value is None:
                raise ConfigError(f"the {self.task} degradation needs {_flag(f)}")
            if f not in own and f not in optional and value is not None:
                raise ConfigError(f"{_flag(f)} applies to another task than {self.task}; drop it")
        if self.task == "denoise":
            if not 0.0 <= self.sigma <= MAX_SIGMA:
                raise ConfigError(f"--sigma {self.sigma:g}: use a noise level in [0, {MAX_SIGMA:g}] (0–255 scale)")
            if self.sigma_max is not None and not self.sigma < self.sigma_max <= MAX_SIGMA:
                raise ConfigError(f"--sigma-max {self.sigma_max:g}: must exceed --sigma {self.sigma:g} and be at "
                                  f"most {MAX_SIGMA:g}; drop it for a fixed noise level")
        elif self.task == "super-resolution":
            if isinstance(self.scale, bool) or not isinstance(self.scale, int) or not 2 <= self.scale <= 8:
                raise ConfigError(f"--scale {self.scale}: use an integer factor from 2 to 8 (e.g. 2 or 4)")
        else:
            if self.mask not in MASK_KINDS:
                raise ConfigError(f"--mask {self.mask}: use one of {', '.join(MASK_KINDS)}")
            high = 1.0 if self.mask == "centre" else MAX_RANDOM_FRACTION
            if not 0.0 < self.mask_fraction < high:
                raise ConfigError(f"--mask-fraction {self.mask_fraction:g}: use a fraction of the image area in "
                                  f"(0, {high:g}) (e.g. 0.25)")

    # ---- facts -------------------------------------------------------------------------------------
    @property
    def blind(self) -> bool:
        """Whether σ varies per image (blind denoising)."""
        return self.sigma_max is not None

    def describe(self) -> str:
        """One line stating the operation and its parameters (recorded with evaluation results)."""
        q = ("; clipped to [0, 255] and rounded to 8 bits" if self.quantize
             else "; float values, not clipped or rounded")
        if self.task == "denoise":
            level = (f"sigma uniform in [{self.sigma:g}, {self.sigma_max:g}] per image" if self.blind
                     else f"sigma {self.sigma:g}")
            return f"additive white Gaussian noise, {level} (0-255 scale){q}"
        if self.task == "super-resolution":
            return (f"x{self.scale} bicubic downsampling (PyTorch antialiased bicubic, a = -0.5, as Pillow "
                    f"BICUBIC){q}")
        kind = {"centre": "a centred rectangle", "rectangles": "random rectangles (sides S/8-S/2)",
                "strokes": "random brush strokes"}[self.mask]
        cover = "covering" if self.mask == "centre" else "covering at least"
        return f"inpainting mask: {kind} {cover} {self.mask_fraction:.0%} of the image, missing pixels grey{q}"

    def degraded_size(self, height: int, width: int) -> tuple[int, int]:
        """Size (H', W') of the degraded image of an H×W clean one.

        Raises:
            ConfigError: super-resolution of a size that is not a multiple of ``scale``.
        """
        if self.task != "super-resolution":
            return height, width
        if height % self.scale or width % self.scale:
            raise ConfigError(f"images of {width}x{height} cannot be downsampled x{self.scale}: height and width "
                              f"must be multiples of {self.scale} (crop them first)")
        return height // self.scale, width // self.scale

    # ---- applying ----------------------------------------------------------------------------------
    def apply(self, clean: torch.Tensor, generator: Optional[torch.Generator] = None) -> Degraded:
        """Degrade a batch.

        Args:
            clean: float32 [N, C, H, W] in [-1, 1] (H, W multiples of ``scale`` for super-resolution).
            generator: source of the noise and random masks (on any device; None: torch's global RNG,
                the CPU one for masks). The noise of the whole batch comes from it, so the result
                depends on the batch's composition; see :meth:`apply_seeded`.

        Returns:
            :class:`Degraded` on ``clean``'s device.

        Raises:
            ConfigError: not [N, C, H, W], or a size that ``scale`` does not divide.
        """
        if clean.ndim != 4:
            raise ConfigError(f"expected images [N, C, H, W], got shape {tuple(clean.shape)}")
        n, _, h, w = clean.shape
        mask = None
        if self.task == "denoise":
            sigma = torch.full((n, 1, 1, 1), self.sigma, device=clean.device)
            if self.blind:
                u = _rand((n, 1, 1, 1), generator, clean.device)
                sigma = self.sigma + (self.sigma_max - self.sigma) * u  # σ ~ U[sigma, sigma_max]
            noise = _randn(tuple(clean.shape), generator, clean.device)
            out = clean + (sigma / 127.5) * noise  # σ on 0–255 → [-1, 1] units
        elif self.task == "super-resolution":
            hl, wl = self.degraded_size(h, w)
            out = F.interpolate(clean.float(), size=(hl, wl), mode="bicubic", align_corners=False, antialias=True)
        else:
            mask = make_masks(n, h, w, self.mask, self.mask_fraction, generator).to(clean.device)
            out = torch.where(mask, torch.full_like(clean, FILL_VALUE), clean)
        if self.quantize:
            out = quantize_8bit(out)
        return Degraded(out.float(), mask)

    def apply_seeded(self, clean: torch.Tensor, seeds: Sequence[int]) -> Degraded:
        """Degrade each image with its own generator (CPU, seeded with ``seeds[i]``): the result of an
        image does not depend on the batch it is in. Used by ``imagegen degrade`` and evaluation, with
        seeds :func:`item_seed` (seed, index).

        Args:
            clean: float32 [N, C, H, W] in [-1, 1].
            seeds: N integers.
        """
        if len(seeds) != len(clean):
            raise ValueError(f"{len(seeds)} seeds for {len(clean)} images")
        parts = [self.apply(clean[i:i + 1], torch.Generator().manual_seed(int(s))) for i, s in enumerate(seeds)]
        image = torch.cat([p.image for p in parts])
        mask = torch.cat([p.mask for p in parts]) if parts[0].mask is not None else None
        return Degraded(image, mask)

    def centre_mask(self, n: int, height: int, width: int, device: Any = "cpu") -> torch.Tensor:
        """The centre mask of ``mask_fraction`` (0.25 if the degradation is not inpainting):
        bool [n, 1, H, W], True = missing."""
        fraction = self.mask_fraction if self.task == "inpaint" else 0.25
        return make_masks(n, height, width, "centre", fraction).to(device)


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _rand(shape: tuple[int, ...], generator: Optional[torch.Generator], device: Any) -> torch.Tensor:
    """U[0, 1) from ``generator`` (drawn on its device, moved to ``device``) or the global RNG."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _randn(shape: tuple[int, ...], generator: Optional[torch.Generator], device: Any) -> torch.Tensor:
    """N(0, 1) from ``generator`` (drawn on its device, moved to ``device``) or the global RNG."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def _cpu_generator(generator: Optional[torch.Generator]) -> Optional[torch.Generator]:
    """A CPU generator for mask drawing: ``generator`` itself, or one seeded from it (CUDA), or None
    (the global CPU RNG)."""
    if generator is None or generator.device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return torch.Generator().manual_seed(seed)


def make_masks(n: int, height: int, width: int, kind: str = "centre", fraction: float = 0.25,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Inpainting masks (see the module docstring for each kind).

    Args:
        n, height, width: batch size and image size in pixels.
        kind: ``centre``, ``rectangles`` or ``strokes``.
        fraction: missing fraction of the area (exact up to rounding for ``centre``, a lower bound for
            the random kinds, which add shapes until they reach it).
        generator: random source of the random kinds (None: the global CPU RNG).

    Returns:
        bool [n, 1, H, W] on the CPU, True = missing.

    Raises:
        ConfigError: unknown kind.
    """
    if kind not in MASK_KINDS:
        raise ConfigError(f"--mask {kind}: use one of {', '.join(MASK_KINDS)}")
    mask = torch.zeros(n, 1, height, width, dtype=torch.bool)
    if kind == "centre":
        mh, mw = max(1, round(height * math.sqrt(fraction))), max(1, round(width * math.sqrt(fraction)))
        top, left = (height - mh) // 2, (width - mw) // 2
        mask[:, :, top:top + mh, left:left + mw] = True
        return mask
    gen = _cpu_generator(generator)
    target = math.ceil(fraction * height * width)
    draw = _draw_rectangle if kind == "rectangles" else _draw_stroke
    for i in range(n):
        m = mask[i, 0]
        for _ in range(10_000):  # each shape covers ≥ 1 pixel: the loop ends long before this bound
            if int(m.sum()) >= target:
                break
            draw(m, gen)
    return mask


def _draw_rectangle(m: torch.Tensor, gen: Optional[torch.Generator]) -> None:
    """Set one random rectangle of ``m`` (bool [H, W]) to True; sides uniform in [S/8, S/2]."""
    h, w = m.shape
    s = min(h, w)
    lo, hi = max(1, round(s / 8)), max(1, round(s / 2))
    u = torch.rand(4, generator=gen).tolist()
    rh, rw = lo + int(u[0] * (hi - lo + 1)), lo + int(u[1] * (hi - lo + 1))
    top, left = int(u[2] * (h - rh + 1)), int(u[3] * (w - rw + 1))
    m[top:top + rh, left:left + rw] = True


def _draw_stroke(m: torch.Tensor, gen: Optional[torch.Generator]) -> None:
    """Draw one random brush stroke into ``m`` (bool [H, W]): a polyline of 4–8 segments, angles
    uniform in [0, 2π), lengths in [S/8, S/4], brush width in [S/16, S/8] (≥ 1 px), end points kept
    inside the image."""
    h, w = m.shape
    s = min(h, w)
    head = torch.rand(4, generator=gen).tolist()
    num = 4 + int(head[0] * 5)
    width = max(1.0, s / 16 + head[1] * (s / 16))
    x, y = head[2] * w, head[3] * h
    seg = torch.rand(2 * num, generator=gen).tolist()
    ys = torch.arange(h, dtype=torch.float32)[:, None] + 0.5  # pixel centres
    xs = torch.arange(w, dtype=torch.float32)[None, :] + 0.5
    for k in range(num):
        angle, length = 2 * math.pi * seg[2 * k], s / 8 + seg[2 * k + 1] * (s / 8)
        nx = min(max(x + length * math.cos(angle), 0.0), float(w))
        ny = min(max(y + length * math.sin(angle), 0.0), float(h))
        dx, dy = nx - x, ny - y
        t = ((xs - x) * dx + (ys - y) * dy) / max(dx * dx + dy * dy, 1e-12)
        t = t.clamp(0.0, 1.0)  # the closest point of the segment to each pixel centre
        dist2 = (xs - (x + t * dx)) ** 2 + (ys - (y + t * dy)) ** 2
        m |= dist2 <= (width / 2) ** 2
        x, y = nx, ny
    if not m.any():  # a stroke thinner than a pixel centre's reach: mark the start pixel
        m[min(int(y), h - 1), min(int(x), w - 1)] = True
