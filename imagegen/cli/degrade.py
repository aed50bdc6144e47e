"""``imagegen degrade``: write degraded copies of images (noise, bicubic downsampling, masks), the test
inputs of ``imagegen restore`` and of published-style comparisons.

The degradation is :class:`imagegen.data.degradations.Degradation`, the one restoration models train
with and evaluation applies; image i of the input (the i-th file of a folder or zip in sorted order,
0 for a single file) is degraded with a generator seeded ``item_seed(--seed, i)``, as image i of a
dataset is in ``imagegen evaluate``. Outputs are 8-bit PNGs at the input's channel count (greyscale
stays greyscale, everything else is RGB), so reading one back gives exactly the in-memory degraded
image.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Optional

import click
import numpy as np
import torch

from ..data.base import uint8_to_float
from ..data.degradations import MASK_KINDS, TASKS, Degradation, item_seed
from ..errors import ConfigError, DataError
from ..sampling.images import save_png_atomic, to_uint8_nhwc
from .options import check_out, explicit_params

#: options that belong to one task only
_TASK_OPTIONS = {"sigma": "denoise", "sigma_max": "denoise", "scale": "super-resolution", "mask": "inpaint",
                 "mask_fraction": "inpaint"}


def build_degradation(task: str, sigma: float, sigma_max: Optional[float], scale: int, mask: str,
                      mask_fraction: float) -> Degradation:
    """The :class:`Degradation` of the command's options (always quantised: PNGs hold 8 bits)."""
    if task == "denoise":
        return Degradation.denoise(sigma, sigma_max)
    if task == "super-resolution":
        return Degradation.super_resolution(scale)
    return Degradation.inpaint(mask, mask_fraction)


def _read(source, name: str, position: int) -> torch.Tensor:
    """Image ``name`` of an ImageSource as float32 [1, C, H, W] in [-1, 1] (C = 1 for greyscale, else 3).

    Raises:
        DataError: an unreadable or corrupt file, naming it.
    """
    from ..data.folder import decode_image

    try:
        arr = decode_image(source.open(name, position))  # [H, W, C] uint8
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for corrupt files
        msg = " ".join(str(e).split())[:160] or type(e).__name__
        raise DataError(f"{source.display(name)}: cannot read the image ({msg})") from None
    return uint8_to_float(torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0))


def mask_path(out: Path) -> Path:
    """Where the mask of an inpainting output ``out`` goes: ``NAME_mask.png`` beside it."""
    return out.with_name(out.stem + "_mask.png")


@click.command()
@click.option("--task", type=click.Choice(TASKS), required=True, help="the degradation")
@click.option("--sigma", type=float, default=25.0, show_default=True,
              help="denoise: Gaussian noise standard deviation on the 0-255 scale (or the lower end of the range "
                   "with --sigma-max)")
@click.option("--sigma-max", type=float, default=None,
              help="denoise: draw sigma per image uniformly in [--sigma, --sigma-max] (blind noise)")
@click.option("--scale", type=int, default=4, show_default=True,
              help="super-resolution: downsampling factor (bicubic, antialiased; the image is first cropped at the "
                   "bottom/right to a multiple of it)")
@click.option("--mask", type=click.Choice(MASK_KINDS), default="centre", show_default=True,
              help="inpaint: a centred rectangle, random rectangles or random brush strokes")
@click.option("--mask-fraction", type=float, default=0.25, show_default=True,
              help="inpaint: missing fraction of the image area (centre: exact; random masks: at least)")
@click.option("--seed", type=int, default=0, show_default=True,
              help="seed of the noise and masks (image i of the input: its own generator from (seed, i))")
@click.option("--input", "input_path", type=click.Path(path_type=Path), required=True,
              help="an image file, or a folder or .zip of images (searched recursively)")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="output .png for a file input; an output folder for a folder/zip (same relative names, .png)")
@click.option("--force", is_flag=True, help="overwrite existing outputs")
@click.pass_context
def degrade(ctx: click.Context, task: str, sigma: float, sigma_max: Optional[float], scale: int, mask: str,
            mask_fraction: float, seed: int, input_path: Path, out: Path, force: bool) -> None:
    """Write degraded copies of images: Gaussian noise (denoise), bicubic downsampling (super-resolution)
    or a mask (inpaint; the mask is written as NAME_mask.png, white = missing, and the missing pixels
    are grey).

    \b
    Examples:
      imagegen degrade --task denoise --sigma 25 --input photo.png --out noisy.png
      imagegen degrade --task super-resolution --scale 4 --input photos/ --out photos_x4/
      imagegen degrade --task inpaint --mask centre --mask-fraction 0.25 --input photos.zip --out holes/
    """
    from ..data.folder import ImageSource

    wrong = sorted(f"--{k.replace('_', '-')}" for k in explicit_params(ctx) if _TASK_OPTIONS.get(k, task) != task)
    if wrong:
        raise ConfigError(f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to --task {task}; "
                          f"drop {'it' if len(wrong) == 1 else 'them'}")
    if not 0 <= seed < 2**31:
        raise ConfigError(f"--seed {seed}: use an integer in [0, 2^31)")
    degradation = build_degradation(task, sigma, sigma_max, scale, mask, mask_fraction)
    if not input_path.exists():
        raise DataError(f"--input {input_path}: no such file or folder")

    if input_path.is_file() and input_path.suffix.lower() != ".zip":  # one image → one file
        check_out(out, force, exts=(".png",))
        if task == "inpaint":
            check_out(mask_path(out), force, exts=(".png",))
        source, names, targets = ImageSource(input_path.parent), [input_path.name], [out]
    else:  # a folder or zip → a folder of PNGs under the same relative names
        source = ImageSource(input_path)
        names = source.list_images()
        if not names:
            raise DataError(f"--input {input_path}: no images (PNG/JPEG/WebP) found")
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file; give a folder for a folder or zip input")
        if out.is_dir() and any(out.iterdir()) and not force:
            raise ConfigError(f"{out} exists and is not empty; pass --force to overwrite its files or choose another "
                              "--out")
        if not out.parent.exists():
            raise ConfigError(f"directory {out.parent} does not exist; create it or choose another --out")
        targets = [out / PurePosixPath(n).with_suffix(".png") for n in names]
        written = targets + ([mask_path(t) for t in targets] if task == "inpaint" else [])
        seen: set[Path] = set()
        for t in written:
            if t in seen:
                raise DataError(f"two inputs would both be written to {t} (same name, other extension); rename one")
            seen.add(t)

    cropped = 0
    with source:
        for i, (name, target) in enumerate(zip(names, targets)):
            img = _read(source, name, i)  # [1, C, H, W]
            h, w = img.shape[2:]
            if task == "super-resolution":
                if h < scale or w < scale:
                    raise DataError(f"{source.display(name)} is {w}x{h}, smaller than --scale {scale}")
                hc, wc = h - h % scale, w - w % scale  # "modcrop": bottom and right
                cropped += (hc, wc) != (h, w)
                img = img[:, :, :hc, :wc]
            d = degradation.apply_seeded(img, [item_seed(seed, i)])
            target.parent.mkdir(parents=True, exist_ok=True)
            save_png_atomic(to_uint8_nhwc(d.image)[0], target)
            if d.mask is not None:
                save_png_atomic(d.mask[0].permute(1, 2, 0).numpy().astype(np.uint8) * 255, mask_path(target))
    if cropped:
        click.echo(f"note: {cropped} image(s) cropped at the bottom/right to a multiple of {scale} before "
                   "downsampling", err=True)
    where = out if len(targets) == 1 and targets[0] == out else f"{out}/"
    click.echo(f"wrote {len(targets)} degraded image(s) to {where} ({degradation.describe()}; seed {seed})")


def register(cli: click.Group) -> None:
    cli.add_command(degrade)
