"""``imagegen project RUN --image photo.png --out w.npz``: find the w (or w+) of a real image by
optimisation (Karras et al. 2020, StyleGAN2 §5, Appendix D)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import click
from PIL import Image

from ..data.folder import native_channels
from ..data.transforms import RESIZE_METHODS
from ..errors import ConfigError, DataError
from ..sampling import load_run
from ..sampling.interpolate import load_images
from ..sampling.project import (FEATURES, ProjectionStep, check_style_model, project as project_image,
                                psnr, resolve_features, save_projection, side_by_side_path)
from .options import check_out

_KIND = {1: "grayscale", 3: "RGB"}


def check_image(path: Path, channels: int, resolution: int, resize: str) -> None:
    """Refuse an image file that is missing or unreadable, of another channel count than the model's,
    or (``resize="none"``) of another size than ``resolution`` × ``resolution``, reading its header only.

    Raises:
        DataError: missing or unreadable file; wrong channel count.
        ConfigError: wrong size without ``--resize``.
    """
    if not path.is_file():
        raise DataError(f"--image {path} does not exist; give a PNG/JPEG/WebP file")
    try:
        with Image.open(path) as im:
            size, c = im.size, native_channels(im)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read image {path} ({type(e).__name__}); give a PNG/JPEG/WebP file") from None
    if c != channels:
        raise DataError(f"{path} is {_KIND.get(c, c)} but the model generates {_KIND.get(channels, channels)} "
                        f"images; convert it to {_KIND.get(channels, channels)}")
    if resize == "none" and size != (resolution, resolution):
        raise ConfigError(f"{path} is {size[0]}x{size[1]} but the model generates {resolution}x{resolution} "
                          "images; resize the image or pass --resize bicubic (or pad)")


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the image to project (PNG/JPEG/WebP) with the model's channel count")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".npz: w [1, num_ws, w_dim], noise maps, target and projection (uint8 HWC), metadata; "
                   "a side-by-side OUT.png (target | projection) is written beside it")
@click.option("--steps", type=int, default=1000, show_default=True, help="optimisation steps")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", show_default=True,
              help="one w for every layer, or one per layer (W+: closer fits, less editable)")
@click.option("--features", type=click.Choice(FEATURES), default="auto", show_default=True,
              help="distance: VGG-19 (ImageNet weights needed), the run's dataset classifier (cached), or pixel "
                   "MSE; auto takes the first available")
@click.option("--vgg-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="torchvision's vgg19-dcbb9e9d.pth  [default: $IMAGEGEN_VGG19_WEIGHTS, then the cache]")
@click.option("--resize", type=click.Choice(["none", *RESIZE_METHODS]), default="none", show_default=True,
              help="an image of another size: refuse (none), resample (short side + centre crop) or pad")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the w̄ estimate and of the noise")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--no-progress", is_flag=True, help="no progress bar")
@click.option("--force", is_flag=True, help="overwrite --out and OUT.png if they exist")
def project(run_dir: Path, image: Path, out: Path, steps: int, space: str, features: str,
            vgg_weights: Optional[Path], resize: str, seed: int, device: str, no_progress: bool, force: bool) -> None:
    """Project --image into the latent space of the style-based model in RUN_DIR (stylegan2, stylegan):
    optimise w (or w+) and the noise maps from w̄ so that the generated image matches it (Karras et al.
    2020, §5 and Appendix D).

    \b
    Example:
      imagegen project runs/sg2 --image face.png --out face.npz --steps 1000
    """
    check_out(out, force, (".npz",))
    check_out(side_by_side_path(out), force, (".png",))
    if steps < 1:
        raise ConfigError(f"--steps {steps}: must be ≥ 1")
    model = load_run(run_dir, device=device)
    check_style_model(model)
    C, R = model.config.channels or 1, model.config.resolution
    check_image(image, C, R, resize)
    target = load_images([image], R, C, "bicubic" if resize == "none" else resize)  # [1, C, R, R]
    dist = resolve_features(model, features, vgg_weights=vgg_weights)
    click.echo(f"feature network: {dist.description}", err=True)
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc="project", unit="step", disable=no_progress, dynamic_ncols=True, mininterval=0.5)

    def report(p: ProjectionStep) -> None:
        bar.update(1)
        bar.set_postfix_str(f"distance {p.losses['distance']:.4g} loss {p.losses['loss']:.4g}", refresh=False)

    t0 = time.perf_counter()
    try:
        result = project_image(model, target, steps=steps, space=space, features=dist, seed=seed,  # type: ignore[arg-type]
                               progress=report)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    start = model.synthesize(result.w_avg[None], noise_mode="const")  # the starting point, for comparison
    info = save_projection(out, result, target, meta={"run": str(run_dir), "checkpoint": model.checkpoint_meta.get(  # type: ignore[attr-defined]
        "checkpoint"), "model": model.model_name, "image": str(image), "resize": resize, "seed": seed,
        "seconds": round(seconds, 2)})
    value = info["psnr_db"] if info["psnr_db"] is not None else float("inf")  # save_projection measured it
    click.echo(f"wrote {out} (w [1, {model.num_ws}, {model.config.w_dim}], space {space}, {steps} steps, "
               f"features {dist.name}) and {side_by_side_path(out)}; PSNR {value:.2f} dB vs the target "
               f"(w̄: {psnr(start, target):.2f} dB), final distance {info['final_losses']['distance']:.4g}, "
               f"{seconds:.1f} s")


def register(cli: click.Group) -> None:
    cli.add_command(project)
