"""Applying image-to-image models to a user's images at their own size: translation (CycleGAN, pix2pix:
:meth:`~imagegen.models.base.GenerativeModel.translate`) and restoration (denoising, super-resolution,
inpainting: ``model.restore``), behind ``imagegen translate`` and ``imagegen restore``.

Inputs (an image file, a folder or a zip), masks and output names: :mod:`imagegen.sampling.image_files`.
Padding to the model's size multiple and tiling: :mod:`imagegen.sampling.tiling`. Images whose padded
side exceeds ``tile`` pixels (default :data:`DEFAULT_TILE` = 1024) are tiled, with blending across
``tile // 8`` pixels of overlap; ``tile=0`` never tiles. Consecutive images of one size are batched.
An image smaller than ``size_multiple``, or one that the network itself cannot take (its own size
checks, or e.g. reflection padding deeper than the downsampled image), is a one-line
:class:`~imagegen.errors.ConfigError` naming the file. Optionally, a grid shows each input beside its
output.
"""
from __future__ import annotations

import dataclasses
import math
import re
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.base import GenerativeModel
from .image_files import (ImageInputs, MaskFn, channel_note, check_min_size, find_masks, open_inputs,
                          plan_outputs, read_image, scan_inputs, too_small_image, write_image)
from .images import save_grid
from .tiling import BatchFn, output_scale, pad_to_multiple, tiled

#: images whose padded side exceeds this many pixels are tiled (about 1 GB of activations per
#: 64-channel float32 layer at full resolution; a batch holds at most this many pixels squared)
DEFAULT_TILE = 1024
#: the restoration tasks a model may declare in ``restoration_task``
RESTORATION_TASKS = ("denoise", "super-resolution", "inpaint")
#: at most this many input/output pairs are drawn in the grid
GRID_MAX_IMAGES = 32
#: the long side of a grid cell, in pixels (images are resized to the first output's aspect)
GRID_CELL = 256

#: RuntimeError messages of PyTorch layers given an input too small for them
_TOO_SMALL = re.compile(r"padding size should be less than|kernel size can't be greater|output size is too small|"
                        r"expected more than 1 spatial element|smaller than kernel size|input size .* too small",
                        re.IGNORECASE)


@dataclasses.dataclass
class Summary:
    """What :func:`translate_images` / :func:`restore_images` did.

    Attributes:
        outputs: the written files, in input order.
        tiled: how many inputs were tiled.
        seconds: wall time of reading, the model and writing.
        grid: the grid file, if one was written.
        scale: the output/input size ratio (1, or 2/4 for super-resolution).
    """

    outputs: list[Path]
    tiled: int
    seconds: float
    grid: Optional[Path] = None
    scale: int = 1


def map_images(fn: BatchFn, inputs: ImageInputs, plan: dict[str, Path], *, channels: int, multiple: int,
               tile: Optional[int] = None, overlap: Optional[int] = None, batch_size: int = 16,
               mask_of: Optional[MaskFn] = None, tile_without_mask: bool = True, grid: Optional[Path] = None,
               model_name: str = "the model", progress: Optional[Callable[[int, int], None]] = None) -> Summary:
    """Run ``fn`` on every input at its own size and write the outputs.

    Consecutive untiled images of one size are batched (at most ``batch_size`` images and
    ``tile``² pixels per batch); images larger than ``tile`` are tiled (their tiles batched alike).

    Args:
        fn: the batch function (see :data:`BatchFn`); called under ``torch.no_grad``.
        inputs: from :func:`open_inputs`.
        plan: from :func:`plan_outputs`.
        channels: the model's input channels (inputs are converted to it).
        multiple: the model's ``size_multiple`` (inputs are reflect-padded to it).
        tile: tile side in pixels; None: :data:`DEFAULT_TILE`; 0: never tile.
        overlap: pixels shared by neighbouring tiles; None: ``tile // 8`` (at least ``multiple``).
        batch_size: images or tiles per call of ``fn``.
        mask_of: the mask of each input (inpainting), or None.
        tile_without_mask: whether an input without a mask may be tiled (False for inpainting models,
            whose default mask is drawn on the whole image).
        grid: write inputs beside outputs to this image file (at most :data:`GRID_MAX_IMAGES` pairs).
        model_name: for messages.
        progress: called with (images written so far, number of inputs) after each write.

    Returns:
        A :class:`Summary`.

    Raises:
        ConfigError: bad ``tile``/``batch_size``; an image (or tile) the network cannot take.
        DataError: a corrupt input or mask.
    """
    tile = DEFAULT_TILE if tile is None else tile
    if tile < 0 or (tile and tile < multiple):
        raise ConfigError(f"--tile {tile}: give 0 (never tile) or at least {multiple} pixels (the model's "
                          "size multiple)")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be ≥ 1")
    overlap = max(multiple, tile // 8) if overlap is None else overlap
    budget = (tile or DEFAULT_TILE) ** 2  # pixels per batch
    t0 = time.perf_counter()
    pending: list[tuple[str, torch.Tensor, Optional[torch.Tensor], tuple[int, int, int, int]]] = []
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    written: list[Path] = []
    n_tiled, scale = 0, 1

    def finish(name: str, x: torch.Tensor, y: torch.Tensor, box: tuple[int, int, int, int]) -> None:
        nonlocal scale
        top, left, h, w = box
        scale = output_scale(y, x.shape[-2], x.shape[-1])
        y = y[..., scale * top:scale * (top + h), scale * left:scale * (left + w)]
        write_image(y, plan[name])
        written.append(plan[name])
        if grid is not None and len(pairs) < GRID_MAX_IMAGES:
            pairs.append(grid_pair(x[..., top:top + h, left:left + w], y, pairs[0][1].shape[-2:] if pairs else None))
        if progress is not None:
            progress(len(written), len(inputs.names))

    def flush() -> None:
        if not pending:
            return
        x = torch.cat([p[1] for p in pending])
        m = None if pending[0][2] is None else torch.cat([p[2] for p in pending])
        y = call(fn, x, m, inputs.display(pending[0][0]), model_name).float().cpu()
        for (name, xi, _, box), yi in zip(pending, y):
            finish(name, xi, yi[None], box)
        pending.clear()

    with torch.no_grad():
        for name in inputs.names:
            x = read_image(inputs, name, channels)  # [1, C, H, W]
            h, w = x.shape[-2:]
            if min(h, w) < multiple:
                raise too_small_image(inputs.display(name), w, h, multiple, model_name)
            mask = mask_of(name, (h, w)) if mask_of is not None else None
            xp, (top, left) = pad_to_multiple(x, multiple)
            mp = None if mask is None else pad_to_multiple(mask, multiple)[0]
            box = (top, left, h, w)
            if tile and max(xp.shape[-2:]) > tile and (mask is not None or tile_without_mask):
                flush()
                per_batch = max(1, min(batch_size, budget // (min(tile, xp.shape[-2]) * min(tile, xp.shape[-1]))))
                try:
                    y = tiled(fn, xp, mp, tile, overlap, multiple, per_batch)
                except (ConfigError, RuntimeError) as e:
                    raise model_error(e, f"--tile {tile}, on {inputs.display(name)}", model_name,
                                      "use a larger --tile") from None
                n_tiled += 1
                finish(name, xp, y, box)
                continue
            same = pending and pending[0][1].shape == xp.shape and (pending[0][2] is None) == (mp is None)
            if pending and (not same or len(pending) >= batch_size
                            or (len(pending) + 1) * xp.shape[-2] * xp.shape[-1] > budget):
                flush()
            pending.append((name, xp, mp, box))
        flush()
    if grid is not None and pairs:
        write_pair_grid(pairs, grid)
    return Summary(written, n_tiled, time.perf_counter() - t0, grid if pairs else None, scale)


def call(fn: BatchFn, x: torch.Tensor, mask: Optional[torch.Tensor], what: str, model_name: str) -> torch.Tensor:
    """``fn(x, mask)``, naming the image in the model's own errors (see :func:`model_error`)."""
    try:
        return fn(x, mask)
    except (ConfigError, RuntimeError) as e:
        raise model_error(e, f"{what} ({x.shape[-1]}x{x.shape[-2]} pixels after padding)", model_name,
                          "use a larger image (e.g. upscale it)") from None


def model_error(e: Exception, what: str, model_name: str, fix: str) -> Exception:
    """The one-line error for a model that refused an input: its ConfigError prefixed with ``what`` (the
    image), a PyTorch size error (e.g. reflection padding deeper than a downsampled map) as a ConfigError
    ending in ``fix``, or ``e`` itself for any other error."""
    if isinstance(e, ConfigError):
        return ConfigError(f"{what}: {e}")
    msg = " ".join(str(e).split())
    if not _TOO_SMALL.search(msg):
        return e
    return ConfigError(f"{what}: too small for {model_name} ({msg[:120]}); {fix}")


def grid_pair(x: torch.Tensor, y: torch.Tensor, cell: Optional[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """An input [1, C, H, W] and its output [1, C', H', W'] resized to one grid cell (the first output's
    aspect, long side at most :data:`GRID_CELL`; ``cell`` = (h, w) once known), 3 channels."""
    if cell is None:
        hh, ww = y.shape[-2:]
        f = min(1.0, GRID_CELL / max(hh, ww))
        cell = (max(1, round(hh * f)), max(1, round(ww * f)))
    return fit(x, cell), fit(y, cell)


def fit(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize float32 [1, C, H, W] to ``size`` (area-averaging down, nearest up, so that pixels of small
    inputs stay visible) and make it 3-channel: [1, 3, h, w]."""
    if tuple(img.shape[-2:]) != tuple(size):
        down = img.shape[-2] * img.shape[-1] > size[0] * size[1]
        img = F.interpolate(img, size=size, mode="area" if down else "nearest")
    return img.expand(-1, 3, -1, -1) if img.shape[1] == 1 else img


def write_pair_grid(pairs: list[tuple[torch.Tensor, torch.Tensor]], path: Path) -> None:
    """A grid of [input, output] pairs, up to four pairs per row, as one image file."""
    k = min(4, len(pairs))
    save_grid(torch.cat([t for pair in pairs for t in pair]), path, nrow=2 * k)


def model_channels(model: GenerativeModel) -> int:
    """The channel count a model's inputs are converted to: its config's ``channels`` (1 if unset)."""
    return int(getattr(model.config, "channels", None) or 1)


def _prepare(model: GenerativeModel, inputs: str | Path | ImageInputs, log: Optional[Callable[[str], None]]
             ) -> tuple[ImageInputs, int]:
    """Open and check the inputs (headers, minimum size) and report channel conversion."""
    inp = inputs if isinstance(inputs, ImageInputs) else open_inputs(inputs)
    infos = scan_inputs(inp)
    check_min_size(inp, infos, model.size_multiple, model.model_name)
    channels = model_channels(model)
    note = channel_note(infos, channels, model.model_name)
    if note and log is not None:
        log(note)
    return inp, channels


def translate_images(model: GenerativeModel, inputs: str | Path | ImageInputs, out: str | Path, *,
                     direction: str = "AB", tile: Optional[int] = None, overlap: Optional[int] = None,
                     batch_size: int = 16, grid: Optional[str | Path] = None, seed: int = 0, force: bool = False,
                     log: Optional[Callable[[str], None]] = None,
                     progress: Optional[Callable[[int, int], None]] = None) -> Summary:
    """Translate every image of ``inputs`` with :meth:`~imagegen.models.base.GenerativeModel.translate`
    and write the outputs at the inputs' sizes under their names (see the module docstring).

    Args:
        model: an image-to-image model (``directions`` non-empty), e.g. from :func:`~imagegen.load_run`.
        inputs: an image file, a folder or a ``.zip`` (or :func:`open_inputs`' result).
        out: an output folder, or one image file for a single input.
        direction: one of ``model.directions`` (``AB``: domain A → B; ``BA``: B → A).
        tile, overlap, batch_size: as for :func:`map_images`.
        grid: also write a grid of inputs beside outputs to this image file.
        seed: seed of the generator given to stochastic models (e.g. test-time dropout).
        force: write into an existing non-empty folder / over an existing file.
        log: receives one-line notes (channel conversion).
        progress: called with (images written so far, number of inputs) after each write.

    Returns:
        A :class:`Summary`; outputs are float32 model outputs in [-1, 1] written as 8-bit images.

    Raises:
        ConfigError: not a translator, a direction it does not have, an input (or tile) too small for
            the network, an output that exists (without ``force``) or would replace an input.
        DataError: a missing, empty or corrupt input.
    """
    model.check_direction(direction)
    inp, channels = _prepare(model, inputs, log)
    plan = plan_outputs(inp, out, force)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    model.eval()

    def fn(x: torch.Tensor, _mask: Optional[torch.Tensor]) -> torch.Tensor:
        return model.translate(x.to(model.device), direction, generator=gen)

    return map_images(fn, inp, plan, channels=channels, multiple=model.size_multiple, tile=tile, overlap=overlap,
                      batch_size=batch_size, grid=None if grid is None else Path(grid),
                      model_name=model.model_name, progress=progress)


def restoration_task(model: GenerativeModel, task: Optional[str] = None) -> str:
    """The model's ``restoration_task``, checked against ``task`` if given.

    Raises:
        ConfigError: the model is not a restoration model, or was trained for another task.
    """
    have = getattr(model, "restoration_task", None)
    if have not in RESTORATION_TASKS or not hasattr(model, "restore"):
        raise ConfigError(f"{model.model_name} is not a restoration model; restore needs a run of a denoising, "
                          "super-resolution or inpainting model (for cyclegan or pix2pix use imagegen translate)")
    if task is not None and task != have:
        raise ConfigError(f"--task {task}: this {model.model_name} run was trained for {have}"
                          f"{describe_degradation(model)}; use a run trained for {task}, or drop --task")
    return have


def describe_degradation(model: GenerativeModel) -> str:
    """`` (what the degradation is)`` from the model config's ``degradation`` (its ``describe()``, or
    ``key value, ...`` of a dataclass or dict), or ``""``."""
    deg = getattr(model.config, "degradation", None)
    if callable(getattr(deg, "describe", None)):
        return f" ({deg.describe()})"
    if dataclasses.is_dataclass(deg):
        deg = dataclasses.asdict(deg)
    if not isinstance(deg, dict):
        return ""
    items = [f"{k} {v}" for k, v in deg.items() if k != "task" and v is not None]
    return f" ({', '.join(items)})" if items else ""


def restore_images(model: GenerativeModel, inputs: str | Path | ImageInputs, out: str | Path, *,
                   masks: Optional[str | Path] = None, task: Optional[str] = None, tile: Optional[int] = None,
                   overlap: Optional[int] = None, batch_size: int = 16, grid: Optional[str | Path] = None,
                   force: bool = False, log: Optional[Callable[[str], None]] = None,
                   progress: Optional[Callable[[int, int], None]] = None) -> Summary:
    """Restore every image of ``inputs`` with the model's ``restore(degraded, mask=None)`` (denoising,
    super-resolution: outputs ``scale`` × larger, inpainting) and write the outputs under the inputs'
    names (see the module docstring).

    Args:
        model: a restoration model (``restoration_task`` in :data:`RESTORATION_TASKS`).
        inputs: degraded images: an image file, a folder or a ``.zip``.
        out: an output folder, or one image file for a single input.
        masks: inpainting only: a mask image for every input, or a folder/zip of masks named like the
            inputs (white = missing). Without it, ``NAME_mask.png`` files beside the inputs are used
            (and not restored themselves), else the model's default mask (such images are not tiled).
        task: the task the caller expects (``denoise``, ``super-resolution``, ``inpaint``); checked.
        tile, overlap, batch_size: as for :func:`map_images`.
        grid: also write a grid of inputs beside outputs to this image file.
        force: write into an existing non-empty folder / over an existing file.
        log: receives one-line notes (task, masks, channel conversion).
        progress: called with (images written so far, number of inputs) after each write.

    Returns:
        A :class:`Summary`.

    Raises:
        ConfigError: not a restoration model, another ``task``, masks for a model that does not inpaint,
            an input too small for the network, an output that exists (without ``force``) or would
            replace an input.
        DataError: missing, empty or corrupt inputs or masks; a mask of another size than its image.
    """
    have = restoration_task(model, task)
    inp = inputs if isinstance(inputs, ImageInputs) else open_inputs(inputs)
    mask_of: Optional[MaskFn] = None
    if have == "inpaint":
        inp, mask_of, how = find_masks(inp, masks)
        if log is not None:
            log(how)
    elif masks is not None:
        raise ConfigError(f"--mask: this {model.model_name} run restores by {have}, not inpainting; drop --mask")
    inp, channels = _prepare(model, inp, log)
    plan = plan_outputs(inp, out, force)
    model.eval()

    def fn(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        return model.restore(x.to(model.device), mask=None if mask is None else mask.to(model.device))

    return map_images(fn, inp, plan, channels=channels, multiple=model.size_multiple, tile=tile, overlap=overlap,
                      batch_size=batch_size, mask_of=mask_of, tile_without_mask=have != "inpaint",
                      grid=None if grid is None else Path(grid), model_name=model.model_name, progress=progress)


def describe(summary: Summary, what: str, out: str | Path) -> str:
    """One line about a finished run of :func:`translate_images` / :func:`restore_images`."""
    n = len(summary.outputs)
    rate = n / summary.seconds if summary.seconds > 0 else math.inf
    parts = [f"{what} {n} image{'s' if n != 1 else ''} to {out} in {summary.seconds:.1f} s ({rate:.2f} images/s)"]
    if summary.scale != 1:
        parts.append(f"×{summary.scale} size")
    if summary.tiled:
        parts.append(f"{summary.tiled} tiled")
    if summary.grid is not None:
        parts.append(f"grid: {summary.grid}")
    return "; ".join(parts)
