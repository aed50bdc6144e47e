"""``imagegen translate RUN`` and ``imagegen restore RUN``: apply an image-to-image model (CycleGAN,
pix2pix, a restoration model) to a user's images at their own size."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import click

from ..errors import ConfigError
from ..sampling import load_run
from ..sampling.translate import (DEFAULT_TILE, GRID_MAX_IMAGES, RESTORATION_TASKS, Summary, describe,
                                  restoration_task, restore_images, translate_images)
from .options import check_out

_INPUT_HELP = "an image file, a folder of images (searched recursively) or a .zip of images"
_OUT_HELP = ("output folder: one PNG per input under the input's relative path, the extension replaced by "
             ".png (a.jpg → OUT/a.png); or one image file (.png, .jpg, .webp) for a single input")


def _common(fn: Callable) -> Callable:
    """The options translate and restore share."""
    for opt in reversed([
        click.option("--grid", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help=f"also write a grid of inputs beside outputs (up to {GRID_MAX_IMAGES} pairs) to this image "
                          "file"),
        click.option("--tile", type=int, default=None,
                     help=f"tile images whose (padded) side exceeds N pixels into overlapping N×N tiles, blended "
                          f"across the overlap (N/8); 0 never tiles  [default: {DEFAULT_TILE}]"),
        click.option("--batch-size", type=int, default=16, show_default=True,
                     help="images (or tiles) of one size per forward pass, at most tile² pixels in all"),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--force", is_flag=True, help="write into a non-empty --out folder (replacing files of the "
                                                   "same names) or over an existing --out file / --grid"),
        click.option("--no-progress", is_flag=True, help="no progress bar"),
    ]):
        fn = opt(fn)
    return fn


def _with_progress(desc: str, disabled: bool, work: Callable[[Callable[[int, int], None]], Summary]) -> Summary:
    """Run ``work(progress)`` with a progress bar (on an interactive stderr) that ``progress(done, total)``
    advances."""
    from tqdm.auto import tqdm

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:  # started with the first image, so that option errors stay one line
            bar = tqdm(total=total, desc=desc, unit="img", disable=True if disabled else None, dynamic_ncols=True,
                       mininterval=0.5)
        bar.update(done - bar.n)

    try:
        return work(progress)
    finally:
        if bar is not None:
            bar.close()


def _check_grid(grid: Optional[Path], force: bool) -> None:
    """:func:`check_out` for ``--grid`` (messages name ``--grid``)."""
    if grid is not None:
        try:
            check_out(grid, force)
        except ConfigError as e:
            raise ConfigError(str(e).replace("--out", "--grid")) from None


def _note(msg: str) -> None:
    click.echo(msg, err=True)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--input", "input_path", type=click.Path(path_type=Path), required=True, help=_INPUT_HELP)
@click.option("--direction", default="AB", show_default=True, metavar="AB|BA",
              help="AB: domain A → B, BA: B → A (cyclegan has both, pix2pix and restorers AB)")
@click.option("--out", type=click.Path(path_type=Path), required=True, help=_OUT_HELP)
@click.option("--seed", type=int, default=0, show_default=True,
              help="seed of stochastic models (e.g. test-time dropout); deterministic models ignore it")
@_common
def translate(run_dir: Path, input_path: Path, direction: str, out: Path, seed: int, grid: Optional[Path],
              tile: Optional[int], batch_size: int, device: str, force: bool, no_progress: bool) -> None:
    """Translate images with the image-to-image model in RUN_DIR (cyclegan, pix2pix, ...), at each
    input's own size: reflect-padded to the network's size multiple and cropped back; large images are
    tiled. Inputs of another channel count are converted (and a note says so).

    \b
    Examples:
      imagegen translate runs/h2z --input photos/ --direction AB --out zebras/ --grid grid.png
      imagegen translate runs/h2z --input horse.jpg --direction AB --out zebra.png
      imagegen translate runs/usps2mnist --input usps_digits.zip --direction BA --out digits/
    """
    _check_grid(grid, force)
    model = load_run(run_dir, device=device)
    model.check_direction(direction)
    summary = _with_progress(f"translate {direction}", no_progress, lambda progress: translate_images(
        model, input_path, out, direction=direction, tile=tile, batch_size=batch_size, grid=grid, seed=seed,
        force=force, log=_note, progress=progress))
    click.echo(describe(summary, f"translated ({model.model_name} {direction})", out))


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--input", "input_path", type=click.Path(path_type=Path), required=True,
              help=f"degraded images: {_INPUT_HELP}")
@click.option("--out", type=click.Path(path_type=Path), required=True, help=_OUT_HELP)
@click.option("--mask", type=click.Path(path_type=Path), default=None,
              help="inpainting: a mask image (white = missing) for every input, or a folder/.zip of masks named "
                   "like the inputs (NAME.png or NAME_mask.png)  [default: NAME_mask.png beside each input, "
                   "as imagegen degrade writes, else the model's default mask]")
@click.option("--task", type=click.Choice(RESTORATION_TASKS), default=None,
              help="the task you expect; an error if the run was trained for another one")
@_common
def restore(run_dir: Path, input_path: Path, out: Path, mask: Optional[Path], task: Optional[str],
            grid: Optional[Path], tile: Optional[int], batch_size: int, device: str, force: bool,
            no_progress: bool) -> None:
    """Restore degraded images with the restoration model in RUN_DIR (denoising, super-resolution or
    inpainting, as the run was trained), at each input's own size (super-resolution: scale × larger).

    \b
    Examples:
      imagegen restore runs/dncnn --input noisy.png --out clean.png
      imagegen restore runs/sr-x2 --input small/ --out large/ --grid sr.png
      imagegen restore runs/inpaint --input damaged/ --mask masks/ --out repaired/ --task inpaint
    """
    _check_grid(grid, force)
    model = load_run(run_dir, device=device)
    have = restoration_task(model, task)
    summary = _with_progress(f"restore ({have})", no_progress, lambda progress: restore_images(
        model, input_path, out, masks=mask, task=task, tile=tile, batch_size=batch_size, grid=grid, force=force,
        log=_note, progress=progress))
    click.echo(describe(summary, f"restored ({model.model_name}, {have})", out))


def register(cli: click.Group) -> None:
    cli.add_command(translate)
    cli.add_command(restore)
